package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/internal/pki"
	"github.com/kshaka-io/kshaka/membership"
)

// writePEM writes one PEM block to dir/name and returns the path.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testPKI makes a CA and a server certificate for 127.0.0.1; it returns the
// CA's PEM path and the server's certificate.
func testPKI(t *testing.T) (string, tls.Certificate) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kshaka test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "acceptor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caTmpl, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER), pair
}

// startTLSAcceptor serves one real acceptor over TLS, admitted by a
// one-member configuration, and returns its address.
func startTLSAcceptor(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	acc, err := acceptor.Open(acceptor.Options{Dir: t.TempDir(), CacheSize: 4 << 20, MemTableSize: 4 << 20, LockStripes: 64})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	srv := grpc.NewServer(append(acc.ServerOptions(), grpc.Creds(creds))...)
	acc.Register(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
		if err := acc.Close(); err != nil {
			t.Error(err)
		}
	})
	addr := lis.Addr().String()
	if _, err := acc.SetConfig(membership.Stable(1, membership.Member{ID: "a0", Addr: addr, Incarnation: acc.Incarnation()})); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestTLS(t *testing.T) {
	ca, cert := testPKI(t)
	ep := "--endpoints=" + startTLSAcceptor(t, cert)

	must(t, 0, "version 1\n", "put", "k", "secret", "--cacert", ca, ep)
	must(t, 0, "secret\n", "get", "k", "--cacert", ca, ep)
	must(t, 0, "Quorum: healthy", "status", "--cacert", ca, ep)
	must(t, 0, "secret\n", "get", "k", "--insecure-skip-verify", ep)
	t.Setenv("KSHAKA_CACERT", ca)
	must(t, 0, "secret\n", "get", "k", ep)
	t.Setenv("KSHAKA_CACERT", "")

	// Plaintext against TLS, and TLS without trusting the CA, fail as access
	// errors that say so.
	if r := run("", "get", "k", "--timeout", "2s", ep); r.code != ExitAccess || !strings.Contains(r.stderr, "plaintext") {
		t.Errorf("plaintext against TLS: %v", r)
	}
	if r := run("", "get", "k", "--tls", "--timeout", "2s", ep); r.code != ExitAccess || !strings.Contains(r.stderr, "not in the CA bundle") ||
		!strings.Contains(r.stderr, "Check --cacert") {
		t.Errorf("TLS without the CA: %v", r)
	}

	if r := run("", "get", "k", "--cacert", filepath.Join(t.TempDir(), "none.pem"), ep); r.code != ExitError || !strings.Contains(r.stderr, "--cacert") {
		t.Errorf("missing --cacert file: %v", r)
	}
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run("", "get", "k", "--cacert", notPEM, ep); r.code != ExitError || !strings.Contains(r.stderr, "holds no PEM certificate") {
		t.Errorf("non-PEM --cacert: %v", r)
	}
}

// Against mutual TLS, the client certificate's role decides: a client
// certificate reads and writes, status needs an admin one.
func TestMutualTLS(t *testing.T) {
	cl := acceptortest.StartTLSCluster(t, 3, nil)
	ep := endpointsFlag(cl)
	files := func(dir string) []string {
		return []string{"--cacert", filepath.Join(dir, "ca.crt"), "--cert", filepath.Join(dir, "tls.crt"), "--key", filepath.Join(dir, "tls.key")}
	}
	client, admin := files(cl.ClientDir("app", pki.OrgClient)), files(cl.ClientDir("operator", pki.OrgAdmin))
	must(t, 0, "version 1\n", append([]string{"put", "k", "v", ep}, client...)...)
	must(t, 0, "v\n", append([]string{"get", "k", ep}, client...)...)
	r := must(t, ExitUnreachable, "", append([]string{"status", ep}, client...)...)
	if !strings.Contains(r.stderr, "needs role admin") || !strings.Contains(r.stderr, "O=kshaka:admin") {
		t.Errorf("status with a client certificate does not say it needs the admin role:\n%v", r)
	}
	must(t, 0, "Quorum: healthy", append([]string{"status", ep}, admin...)...)

	// Without a client certificate: an access error naming the cause.
	r = run("", "get", "k", ep, "--cacert", filepath.Join(cl.ClientDir("x", pki.OrgClient), "ca.crt"))
	if r.code != ExitAccess || !strings.Contains(r.stderr, "client certificate required: none was presented") {
		t.Errorf("get without a client certificate: %v", r)
	}
	// A certificate without a role.
	r = run("", append([]string{"put", "k", "w", ep}, files(cl.ClientDir("nobody"))...)...)
	if r.code != ExitAccess || !strings.Contains(r.stderr, "has role none") {
		t.Errorf("put with a certificate without a role: %v", r)
	}
}
