package controllers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/internal/pki"
)

// serveTestAcceptor serves a real acceptor on 127.0.0.1 with creds (nil:
// plaintext) and returns its address.
func serveTestAcceptor(t *testing.T, creds credentials.TransportCredentials) string {
	t.Helper()
	acc, err := acceptor.Open(acceptor.Options{Dir: t.TempDir(), CacheSize: 1 << 20, MemTableSize: 1 << 20, LockStripes: 8})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := acc.ServerOptions()
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	acc.Register(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
		_ = acc.Close()
	})
	return lis.Addr().String()
}

func mustPair(t *testing.T, ca *pki.CA, l pki.Leaf) tls.Certificate {
	t.Helper()
	crt, key, err := ca.Issue(l, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// TestDialerMutualTLS: the operator's dialler presents its certificate,
// verifies the acceptor's against the address dialled, refuses to dial TLS
// without material (saying why), dials plaintext pods in plaintext, and
// picks up new material on its existing connections.
func TestDialerMutualTLS(t *testing.T) {
	ca, err := pki.NewCA("kc-ca", 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	server := func(l pki.Leaf) credentials.TransportCredentials {
		return credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{mustPair(t, ca, l)}, ClientCAs: roots, ClientAuth: tls.RequireAndVerifyClientCert})
	}
	good := serveTestAcceptor(t, server(pki.Leaf{CommonName: "kc-0", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true, Validity: time.Hour}))
	wrongName := serveTestAcceptor(t, server(pki.Leaf{CommonName: "kc-1", DNSNames: []string{"kc-1.kc-peers.ns.svc"}, Server: true, Validity: time.Hour}))
	plain := serveTestAcceptor(t, nil)

	op := &ClientTLS{Certificate: mustPair(t, ca, pki.Leaf{CommonName: "kc-operator", Organization: []string{pki.OrgAdmin}, Client: true, Validity: time.Hour}), Roots: roots}
	g := &GRPCAcceptors{Timeout: 5 * time.Second}
	t.Cleanup(func() { _ = g.Close() })
	ctx := context.Background()

	acc := g.Dial(Transport{Cluster: "ns/kc", NoTLS: "Secret ns/kc-operator-tls does not exist yet"})
	if info := acc.Status(ctx, good); !strings.Contains(info.Err, "Secret ns/kc-operator-tls does not exist yet") {
		t.Fatalf("without material: %+v", info)
	}
	acc = g.Dial(Transport{Cluster: "ns/kc", TLS: op, Plaintext: map[string]bool{plain: true}})
	eventuallyReachable(t, acc, good)
	if info := acc.Status(ctx, plain); info.Err != "" {
		t.Fatalf("a plaintext pod: %+v", info)
	}
	if info := acc.Status(ctx, wrongName); !strings.Contains(info.Err, "certificate") {
		t.Fatalf("an acceptor whose certificate does not name 127.0.0.1 was accepted: %+v", info)
	}
	// The same acceptor, dialled in plaintext by the plain view of
	// GRPCAcceptors, does not answer.
	if info := g.Status(ctx, good); info.Err == "" {
		t.Fatal("a TLS acceptor answered a plaintext call")
	}
}

// eventuallyReachable retries Status until it succeeds: a connection that
// failed its handshake retries after a backoff.
func eventuallyReachable(t *testing.T, acc Acceptors, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info := acc.Status(context.Background(), addr)
		if info.Err == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s unreachable: %s", addr, info.Err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
