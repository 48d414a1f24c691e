package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"
)

func TestIssueAndVerify(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("kc", 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseCA(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatalf("ParseCA of a fresh CA: %v", err)
	}
	certPEM, keyPEM, err := again.Issue(Leaf{CommonName: "kc-0", DNSNames: []string{"kc-0.kc-peers.ns.svc"},
		IPs: []net.IP{net.ParseIP("10.0.0.7")}, Server: true, Validity: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("issued pair does not load: %v", err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, name := range []string{"kc-0.kc-peers.ns.svc", "10.0.0.7"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("a server certificate verified as a client certificate")
	}
	if !SignedBy(certPEM, ca.CertPEM) {
		t.Error("SignedBy(leaf, its CA) = false")
	}
	other, _ := NewCA("other", time.Hour, now)
	if SignedBy(certPEM, other.CertPEM) {
		t.Error("SignedBy(leaf, another CA) = true")
	}
	if NeedsRenewal(certPEM, now, 30*time.Minute) {
		t.Error("a fresh 1h certificate needs renewal 30m before expiry")
	}
	if !NeedsRenewal(certPEM, now.Add(31*time.Minute), 30*time.Minute) {
		t.Error("a 1h certificate does not need renewal 29m before expiry")
	}
	if !NeedsRenewal([]byte("garbage"), now, 0) {
		t.Error("an unreadable certificate does not need renewal")
	}
}

func TestIssueNeverOutlivesTheCA(t *testing.T) {
	now := time.Now()
	ca, _ := NewCA("kc", time.Hour, now)
	certPEM, _, err := ca.Issue(Leaf{CommonName: "c", Client: true, Validity: 100 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := Expiry(certPEM)
	if exp.After(ca.Cert.NotAfter) {
		t.Errorf("leaf expires %v, after its CA %v", exp, ca.Cert.NotAfter)
	}
}

func TestRoleOf(t *testing.T) {
	now := time.Now()
	ca, _ := NewCA("kc", time.Hour, now)
	for _, tc := range []struct {
		org  []string
		want Role
	}{
		{nil, RoleNone},
		{[]string{"system:masters"}, RoleNone},
		{[]string{OrgClient}, RoleClient},
		{[]string{OrgClient, OrgAdmin}, RoleAdmin},
	} {
		certPEM, _, err := ca.Issue(Leaf{CommonName: "x", Organization: tc.org, Client: true, Validity: time.Hour}, now)
		if err != nil {
			t.Fatal(err)
		}
		certs, _ := ParseCertificates(certPEM)
		if got := RoleOf(certs[0]); got != tc.want {
			t.Errorf("RoleOf(O=%v) = %v, want %v", tc.org, got, tc.want)
		}
	}
	if RoleOf(nil) != RoleNone {
		t.Error("RoleOf(nil) is not none")
	}
}

func TestParseCARejectsMismatchedKey(t *testing.T) {
	now := time.Now()
	a, _ := NewCA("a", time.Hour, now)
	b, _ := NewCA("b", time.Hour, now)
	if _, err := ParseCA(a.CertPEM, b.KeyPEM); err == nil {
		t.Error("ParseCA accepted another CA's key")
	}
	leafPEM, leafKey, _ := a.Issue(Leaf{CommonName: "l", Server: true, Validity: time.Hour}, now)
	if _, err := ParseCA(leafPEM, leafKey); err == nil {
		t.Error("ParseCA accepted a leaf certificate")
	}
}
