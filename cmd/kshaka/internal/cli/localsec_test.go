package cli

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kshaka-io/kshaka/internal/pki"
)

func TestEnsureAdminToken(t *testing.T) {
	dir := t.TempDir()
	path, tok, created, err := ensureAdminToken(dir)
	if err != nil || !created || len(tok) != 64 {
		t.Fatalf("first: %q, %q, %v, %v", path, tok, created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the token file: %v, %v", st, err)
	}
	_, again, created, err := ensureAdminToken(dir)
	if err != nil || created || again != tok {
		t.Errorf("second: %q, %v, %v; want the same token reused", again, created, err)
	}
	if err := os.WriteFile(path, []byte("  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ensureAdminToken(dir); err == nil {
		t.Error("an empty token file was accepted")
	}
}

func leaf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCertificates(b)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func TestEnsureLocalPKI(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	p, err := ensureLocalPKI(dir, []string{"a0", "a1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.created) != 5 { // CA, two acceptors, admin, client
		t.Errorf("created %v", p.created)
	}
	srv := leaf(t, p.serverCert("a1"))
	if !slices.Contains(srv.DNSNames, "localhost") || len(srv.IPAddresses) != 1 || !srv.IPAddresses[0].IsLoopback() {
		t.Errorf("server certificate names %v %v", srv.DNSNames, srv.IPAddresses)
	}
	for dir, want := range map[string]pki.Role{p.adminDir(): pki.RoleAdmin, p.clientDir(): pki.RoleClient} {
		if got := pki.RoleOf(leaf(t, filepath.Join(dir, "tls.crt"))); got != want {
			t.Errorf("%s: role %v, want %v", dir, got, want)
		}
		if _, err := clientTLS(dir); err != nil {
			t.Errorf("%s does not load: %v", dir, err)
		}
	}
	for _, f := range []string{"ca.key", "a0.key", "admin/tls.key"} {
		if st, err := os.Stat(filepath.Join(p.dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v", f, st, err)
		}
	}

	// Again: everything is reused.
	again, err := ensureLocalPKI(dir, []string{"a0", "a1"}, now)
	if err != nil || len(again.created) != 0 {
		t.Fatalf("second run created %v, %v", again.created, err)
	}
	// Near the leaves' expiry they are reissued by the same CA.
	later := now.Add(localLeafValidity - 24*time.Hour)
	third, err := ensureLocalPKI(dir, []string{"a0", "a1", "a2"}, later)
	if err != nil {
		t.Fatal(err)
	}
	if len(third.created) != 5 || slices.Contains(third.created, "CA") {
		t.Errorf("near expiry created %v; want the four leaves and a2, not the CA", third.created)
	}
}
