package cli

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/kshaka-io/kshaka/internal/pki"
	"github.com/kshaka-io/kshaka/internal/tlsreload"
)

// defaultLocalDir is kshaka local's default --dir; the CLI looks there for
// the admin token when every endpoint is on loopback.
const defaultLocalDir = "./kshaka-data"

// adminTokenFileName is the file, in kshaka local's directory, that holds
// the admin token it protects the acceptors' admin calls with.
const adminTokenFileName = "admin-token"

// ensureAdminToken returns the token in dir/admin-token, creating it (32
// random bytes, hex, mode 0600) when it does not exist.
func ensureAdminToken(dir string) (path, token string, created bool, err error) {
	path = filepath.Join(dir, adminTokenFileName)
	if tok, err := readToken(path); err == nil {
		return path, tok, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", "", false, fmt.Errorf("while reading the admin token: %w (delete %s to make a new one)", err, path)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", false, err
	}
	token = hex.EncodeToString(b[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", false, fmt.Errorf("while creating the admin token: %w", err)
	}
	_, err = f.WriteString(token + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", "", false, fmt.Errorf("while writing the admin token %s: %w", path, err)
	}
	return path, token, true, nil
}

// Validity of kshaka local's certificates; leaves are reissued at start
// when they expire within localRenewBefore.
const (
	localCAValidity   = 10 * 365 * 24 * time.Hour
	localLeafValidity = 90 * 24 * time.Hour
	localRenewBefore  = 7 * 24 * time.Hour
)

// localPKI is the CA and certificates of `kshaka local --tls`, under
// DIR/tls: ca.crt and ca.key; <id>.crt and <id>.key per acceptor (server
// certificates for 127.0.0.1 and localhost); admin/ and client/ in the
// kubernetes.io/tls layout (ca.crt, tls.crt, tls.key) with O=kshaka:admin
// and O=kshaka:client.
type localPKI struct {
	dir string
	// created lists what was issued this time (empty: all reused).
	created []string
}

func (p *localPKI) caFile() string              { return filepath.Join(p.dir, "ca.crt") }
func (p *localPKI) serverCert(id string) string { return filepath.Join(p.dir, id+".crt") }
func (p *localPKI) serverKey(id string) string  { return filepath.Join(p.dir, id+".key") }
func (p *localPKI) adminDir() string            { return filepath.Join(p.dir, "admin") }
func (p *localPKI) clientDir() string           { return filepath.Join(p.dir, "client") }

// ensureLocalPKI makes, or reuses, the CA and certificates for the
// acceptors ids under dir/tls. A certificate that does not load, is not
// signed by the CA or expires within a week is reissued; a CA that does
// not load or expires within a week is replaced, with every certificate.
func ensureLocalPKI(dir string, ids []string, now time.Time) (*localPKI, error) {
	p := &localPKI{dir: filepath.Join(dir, "tls")}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := p.ensureCA(now)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		leaf := pki.Leaf{CommonName: "kshaka local " + id, DNSNames: []string{"localhost"},
			IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true, Validity: localLeafValidity}
		if err := p.ensureLeaf(ca, leaf, p.serverCert(id), p.serverKey(id), now); err != nil {
			return nil, err
		}
	}
	for _, c := range []struct {
		dir, org string
	}{{p.adminDir(), pki.OrgAdmin}, {p.clientDir(), pki.OrgClient}} {
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			return nil, err
		}
		if err := writeFile(filepath.Join(c.dir, tlsreload.CAFileName), ca.CertPEM); err != nil {
			return nil, err
		}
		leaf := pki.Leaf{CommonName: "kshaka local " + filepath.Base(c.dir), Organization: []string{c.org}, Client: true, Validity: localLeafValidity}
		if err := p.ensureLeaf(ca, leaf, filepath.Join(c.dir, tlsreload.CertFileName), filepath.Join(c.dir, tlsreload.KeyFileName), now); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *localPKI) ensureCA(now time.Time) (*pki.CA, error) {
	certPEM, err1 := os.ReadFile(p.caFile())
	keyPEM, err2 := os.ReadFile(filepath.Join(p.dir, "ca.key"))
	if err1 == nil && err2 == nil {
		if ca, err := pki.ParseCA(certPEM, keyPEM); err == nil && !pki.NeedsRenewal(certPEM, now, localRenewBefore) {
			return ca, nil
		}
	}
	ca, err := pki.NewCA("kshaka local CA", localCAValidity, now)
	if err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(p.dir, "ca.key"), ca.KeyPEM); err != nil {
		return nil, err
	}
	if err := writeFile(p.caFile(), ca.CertPEM); err != nil {
		return nil, err
	}
	p.created = append(p.created, "CA")
	return ca, nil
}

// ensureLeaf keeps the pair in certFile and keyFile if it loads, is signed
// by ca and is not about to expire; otherwise it issues a new one.
func (p *localPKI) ensureLeaf(ca *pki.CA, l pki.Leaf, certFile, keyFile string, now time.Time) error {
	certPEM, err1 := os.ReadFile(certFile)
	keyPEM, err2 := os.ReadFile(keyFile)
	if err1 == nil && err2 == nil {
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err == nil && pki.SignedBy(certPEM, ca.CertPEM) &&
			!pki.NeedsRenewal(certPEM, now, localRenewBefore) {
			return nil
		}
	}
	certPEM, keyPEM, err := ca.Issue(l, now)
	if err != nil {
		return fmt.Errorf("while issuing the certificate %s: %w", certFile, err)
	}
	if err := writeFile(keyFile, keyPEM); err != nil {
		return err
	}
	if err := writeFile(certFile, certPEM); err != nil {
		return err
	}
	name, err := filepath.Rel(p.dir, certFile)
	if err != nil {
		name = certFile
	}
	p.created = append(p.created, name)
	return nil
}

// writeFile replaces path atomically with b, mode 0600.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// clientTLS returns the TLS configuration of the files of a client
// directory (ca.crt, tls.crt, tls.key).
func clientTLS(dir string) (*tls.Config, error) {
	files, err := tlsreload.DirFiles(dir)
	if err != nil {
		return nil, err
	}
	c, err := tlsreload.NewClient(files, tlsreload.Options{Interval: -1})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Config(""), nil
}

// localSec is how a `kshaka local` (or the cluster bench starts) protects
// its acceptors: always an admin token on the admin calls, and with --tls
// mutual TLS with its own CA.
type localSec struct {
	token string
	// tokenFile holds the token kshaka local generated ("" when the user
	// gave one); created is set when it was made now.
	tokenFile string
	created   bool
	// pki is nil without --tls; adminTLS is the admin certificate's
	// configuration, for kshaka local's own admin calls.
	pki      *localPKI
	adminTLS *tls.Config
}

// prepareLocalSecurity uses the admin token the user gave, or makes (or
// reuses) one in dir, and with withTLS the CA and certificates of the
// acceptors ids.
func prepareLocalSecurity(g *globals, dir string, ids []string, withTLS bool) (*localSec, error) {
	s := &localSec{}
	tok, err := g.client.token()
	if err != nil {
		return nil, err
	}
	if g.client.adminToken != "" || g.client.adminTokenFile != "" {
		s.token = tok
	} else if s.tokenFile, s.token, s.created, err = ensureAdminToken(dir); err != nil {
		return nil, err
	}
	if !withTLS {
		return s, nil
	}
	if s.pki, err = ensureLocalPKI(dir, ids, time.Now()); err != nil {
		return nil, err
	}
	if s.adminTLS, err = clientTLS(s.pki.adminDir()); err != nil {
		return nil, err
	}
	return s, nil
}

// acceptorArgs are the security flags of acceptor id.
func (s *localSec) acceptorArgs(id string) []string {
	var args []string
	if s.tokenFile != "" {
		args = append(args, "--admin-token-file", s.tokenFile)
	}
	if s.pki != nil {
		args = append(args, "--tls-cert-file", s.pki.serverCert(id), "--tls-key-file", s.pki.serverKey(id),
			"--tls-client-ca-file", s.pki.caFile(), "--tls-wait", "0s")
	}
	return args
}

// acceptorEnv is the environment a user-given token reaches the acceptors
// through (it has no file of kshaka local's).
func (s *localSec) acceptorEnv() []string {
	if s.tokenFile == "" && s.token != "" {
		return []string{"KSHAKA_ADMIN_TOKEN=" + s.token}
	}
	return nil
}
