package acceptortest

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/kshaka-io/kshaka/internal/pki"
	"github.com/kshaka-io/kshaka/internal/tlsreload"
)

// certValidity is how long the certificates of a TLS cluster are valid.
const certValidity = 24 * time.Hour

// clusterPKI is the CA of a TLS cluster and its files: dir/acceptor holds
// ca.crt and <id>.crt, <id>.key per acceptor (as the kc-acceptor-tls Secret
// does); dir/admin the certificate the cluster installs configurations with.
type clusterPKI struct {
	t     testing.TB
	dir   string
	ca    *pki.CA
	admin *tlsreload.Client
}

func newClusterPKI(t testing.TB, dir string) *clusterPKI {
	t.Helper()
	ca, err := pki.NewCA("acceptortest CA", certValidity, time.Now())
	if err != nil {
		t.Fatalf("acceptortest: %v", err)
	}
	p := &clusterPKI{t: t, dir: dir, ca: ca}
	p.write(filepath.Join("acceptor", tlsreload.CAFileName), ca.CertPEM)
	adminDir := p.clientDir("admin", pki.OrgAdmin)
	files, err := tlsreload.DirFiles(adminDir)
	if err != nil {
		t.Fatalf("acceptortest: %v", err)
	}
	if p.admin, err = tlsreload.NewClient(files, tlsreload.Options{Interval: -1}); err != nil {
		t.Fatalf("acceptortest: %v", err)
	}
	t.Cleanup(p.admin.Close)
	return p
}

func (p *clusterPKI) write(rel string, b []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		p.t.Fatalf("acceptortest: %v", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		p.t.Fatalf("acceptortest: %v", err)
	}
	return path
}

// serverFiles returns acceptor id's files, issuing its certificate (for
// 127.0.0.1 and localhost) the first time.
func (p *clusterPKI) serverFiles(id string) tlsreload.ServerFiles {
	p.t.Helper()
	f := tlsreload.ServerFiles{
		CertFile:     filepath.Join(p.dir, "acceptor", id+".crt"),
		KeyFile:      filepath.Join(p.dir, "acceptor", id+".key"),
		ClientCAFile: filepath.Join(p.dir, "acceptor", tlsreload.CAFileName),
	}
	if _, err := os.Stat(f.CertFile); err == nil {
		return f
	}
	c, k := p.issueServer(id, time.Now(), certValidity)
	p.write(filepath.Join("acceptor", id+".key"), k)
	p.write(filepath.Join("acceptor", id+".crt"), c)
	return f
}

func (p *clusterPKI) issueServer(id string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte) {
	p.t.Helper()
	c, k, err := p.ca.Issue(pki.Leaf{
		CommonName: id, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")},
		Server: true, Validity: validity,
	}, now)
	if err != nil {
		p.t.Fatalf("acceptortest: issuing the certificate of %s: %v", id, err)
	}
	return c, k
}

// clientDir writes a client certificate with organizations orgs into
// dir/name in the kubernetes.io/tls layout and returns the directory.
func (p *clusterPKI) clientDir(name string, orgs ...string) string {
	p.t.Helper()
	c, k, err := p.ca.Issue(pki.Leaf{CommonName: name, Organization: orgs, Client: true, Validity: certValidity}, time.Now())
	if err != nil {
		p.t.Fatalf("acceptortest: issuing the client certificate %s: %v", name, err)
	}
	p.write(filepath.Join(name, tlsreload.CAFileName), p.ca.CertPEM)
	p.write(filepath.Join(name, tlsreload.KeyFileName), k)
	p.write(filepath.Join(name, tlsreload.CertFileName), c)
	return filepath.Join(p.dir, name)
}

// CA returns the CA of a cluster started with StartTLSCluster (nil for a
// plaintext cluster).
func (c *Cluster) CA() *pki.CA {
	if c.pki == nil {
		return nil
	}
	return c.pki.ca
}

// ClientDir issues a client certificate of a TLS cluster whose Subject
// Organization is orgs (pki.OrgClient, pki.OrgAdmin, or none: no role) and
// writes it, with the cluster's CA, into a new directory in the
// kubernetes.io/tls layout (ca.crt, tls.crt, tls.key), which it returns:
// what proposer.Config.TLSDir takes.
func (c *Cluster) ClientDir(name string, orgs ...string) string {
	c.t.Helper()
	if c.pki == nil {
		c.t.Fatal("acceptortest: ClientDir of a plaintext cluster")
	}
	return c.pki.clientDir(name, orgs...)
}

// AdminCredentials returns the transport credentials of the cluster's admin
// certificate, nil for a plaintext cluster.
func (c *Cluster) AdminCredentials() credentials.TransportCredentials {
	if c.pki == nil {
		return nil
	}
	return c.pki.admin.Credentials("")
}

// SetServerCertificate replaces the server certificate and key of acceptor
// i of a TLS cluster, as the operator rewriting its Secret does, and has the
// running acceptor reload them. It fails the test when they do not load.
func (c *Cluster) SetServerCertificate(i int, certPEM, keyPEM []byte) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	nd := c.nodes[i]
	f := c.pki.serverFiles(nd.id)
	c.pki.write(filepath.Join("acceptor", nd.id+".key"), keyPEM)
	c.pki.write(filepath.Join("acceptor", nd.id+".crt"), certPEM)
	if nd.tls != nil && !nd.tls.Poll() {
		c.t.Fatalf("acceptortest: acceptor %s did not load its new certificate %s", nd.id, f.CertFile)
	}
}

// IssueServerCertificate issues a server certificate for acceptor i valid
// from now (less a minute) for validity, from the cluster's CA, and
// installs it with SetServerCertificate. A now in the past makes an
// expired certificate.
func (c *Cluster) IssueServerCertificate(i int, now time.Time, validity time.Duration) {
	c.t.Helper()
	c.mu.Lock()
	id := c.nodes[i].id
	c.mu.Unlock()
	cert, key := c.pki.issueServer(id, now, validity)
	c.SetServerCertificate(i, cert, key)
}
