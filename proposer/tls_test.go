package proposer_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/internal/pki"
	"github.com/kshaka-io/kshaka/proposer"
)

// newTLSClient connects to cl with the files of dir.
func newTLSClient(t *testing.T, cl *acceptortest.Cluster, dir string, mod func(*proposer.Config)) (*proposer.Client, error) {
	t.Helper()
	cfg := proposer.Config{Endpoints: cl.Addrs(), TLSDir: dir, DialTimeout: time.Minute}
	if mod != nil {
		mod(&cfg)
	}
	c, err := proposer.New(ctxT(t), cfg)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func TestTLSDir(t *testing.T) {
	cl := acceptortest.StartTLSCluster(t, 3, nil)
	c, err := newTLSClient(t, cl, cl.ClientDir("app", pki.OrgClient), nil)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, "k", "over mutual TLS")
	if v := mustGet(t, c, "k"); string(v.Data) != "over mutual TLS" {
		t.Errorf("Get = %q", v.Data)
	}
	// An admin certificate may do what a client may.
	admin, err := newTLSClient(t, cl, cl.ClientDir("operator", pki.OrgAdmin), func(cfg *proposer.Config) { cfg.TLSServerName = "localhost" })
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, admin, "k", "by the admin")
}

// The errors of a misconfigured client say what is wrong, at once, from New.
func TestTLSErrors(t *testing.T) {
	cl := acceptortest.StartTLSCluster(t, 3, nil)
	good := cl.ClientDir("app", pki.OrgClient)
	other, err := pki.NewCA("another CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wrongCA := copyDir(t, good)
	writeFile(t, filepath.Join(wrongCA, "ca.crt"), other.CertPEM)
	noCert := t.TempDir()
	writeFile(t, filepath.Join(noCert, "ca.crt"), cl.CA().CertPEM)
	for _, tc := range []struct {
		name string
		dir  string
		mod  func(*proposer.Config)
		want []string
	}{
		{"wrong CA", wrongCA, nil, []string{"failed the TLS handshake", `signed by "acceptortest CA", which is not in the CA bundle`}},
		{"no client certificate", noCert, nil, []string{"refused the client certificate", "client certificate required: none was presented"}},
		{"certificate without a role", cl.ClientDir("nobody"), nil, []string{"refused the call", "has role none", "GetConfig needs role client"}},
		{"wrong server name", good, func(c *proposer.Config) { c.TLSServerName = "kshaka.example" }, []string{`not valid for "kshaka.example"`}},
		{"plaintext", "", nil, []string{"plaintext"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newTLSClient(t, cl, tc.dir, tc.mod)
			if !errors.Is(err, proposer.ErrAccess) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("New: %v; want an access error, not a timeout", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "acceptor 127.0.0.1:") {
				t.Errorf("error %q does not name the acceptor", err)
			}
		})
	}
	t.Run("expired acceptor certificates", func(t *testing.T) {
		for i := range 3 {
			cl.IssueServerCertificate(i, time.Now().Add(-2*time.Hour), time.Hour)
		}
		_, err := newTLSClient(t, cl, good, nil)
		if !errors.Is(err, proposer.ErrAccess) || !strings.Contains(err.Error(), "certificate has expired") {
			t.Fatalf("New: %v; want an expired certificate", err)
		}
	})
}

// TLS to a plaintext acceptor says so.
func TestTLSToPlaintext(t *testing.T) {
	cl := acceptortest.StartCluster(t, 1)
	pool := x509.NewCertPool()
	_, err := proposer.New(ctxT(t), proposer.Config{Endpoints: cl.Addrs(), TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	if !errors.Is(err, proposer.ErrAccess) || !strings.Contains(err.Error(), "does not speak TLS") {
		t.Fatalf("New: %v", err)
	}
}

func TestTLSConfigExclusive(t *testing.T) {
	_, err := proposer.New(context.Background(), proposer.Config{Endpoints: []string{"x:1"}, TLSDir: "/d", TLS: &tls.Config{}})
	if !errors.Is(err, proposer.ErrInvalidArgument) || !strings.Contains(err.Error(), "set TLS or TLSDir, not both") {
		t.Errorf("TLS and TLSDir: %v", err)
	}
	_, err = proposer.New(context.Background(), proposer.Config{Endpoints: []string{"x:1"}, TLSServerName: "n"})
	if !errors.Is(err, proposer.ErrInvalidArgument) || !strings.Contains(err.Error(), "TLSServerName needs TLS or TLSDir") {
		t.Errorf("TLSServerName alone: %v", err)
	}
	_, err = proposer.New(context.Background(), proposer.Config{Endpoints: []string{"x:1"}, TLSDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "has no ca.crt") {
		t.Errorf("an empty TLSDir: %v", err)
	}
}

// The client certificate in TLSDir is reloaded: a certificate without a
// role, once the connections are new, makes operations fail with an error
// that says so; a valid one again makes them work.
func TestTLSDirReload(t *testing.T) {
	cl := acceptortest.StartTLSCluster(t, 3, nil)
	dir := copyDir(t, cl.ClientDir("app", pki.OrgClient))
	reloaded := make(chan error, 8)
	c, err := newTLSClient(t, cl, dir, func(cfg *proposer.Config) {
		cfg.Events.TLSReload = func(err error) { reloaded <- err }
		cfg.RequestTimeout = 5 * time.Second
	})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, "k", "v1")

	rotate := func(from string) {
		t.Helper()
		for _, f := range []string{"tls.key", "tls.crt"} {
			b, err := os.ReadFile(filepath.Join(from, f))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, f+".tmp"), b)
			if err := os.Rename(filepath.Join(dir, f+".tmp"), filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
		// Wait for the reload of the whole pair.
		for {
			select {
			case err := <-reloaded:
				if err == nil {
					return
				}
			case <-time.After(time.Minute):
				t.Fatal("TLSDir was not reloaded within a minute")
			}
		}
	}
	rotate(cl.ClientDir("nobody"))
	for i := range 3 {
		cl.Restart(i) // the connections are made anew, with the new certificate
	}
	ctx, cancel := context.WithTimeout(ctxT(t), 30*time.Second)
	defer cancel()
	_, err = c.Put(ctx, []byte("k"), []byte("v2"))
	if !errors.Is(err, proposer.ErrAccess) || !strings.Contains(err.Error(), "has role none") {
		t.Fatalf("Put with a certificate without a role: %v", err)
	}
	rotate(cl.ClientDir("app-2", pki.OrgClient))
	for i := range 3 {
		cl.Restart(i)
	}
	mustPut(t, c, "k", "v3")
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the files of dir into a new directory.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(out, e.Name()), b)
	}
	return out
}
