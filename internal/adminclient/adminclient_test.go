package adminclient_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/internal/adminclient"
	"github.com/kshaka-io/kshaka/internal/pki"
	"github.com/kshaka-io/kshaka/internal/tlsreload"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs a real acceptor with opts on loopback, with creds (nil:
// plaintext).
func serve(t *testing.T, opts acceptor.Options, creds credentials.TransportCredentials) string {
	t.Helper()
	opts.Dir, opts.CacheSize, opts.MemTableSize, opts.LockStripes = t.TempDir(), 1<<20, 1<<20, 16
	acc, err := acceptor.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	so := acc.ServerOptions()
	if creds != nil {
		so = append(so, grpc.Creds(creds))
	}
	srv := grpc.NewServer(so...)
	acc.Register(srv)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done; _ = acc.Close() })
	return lis.Addr().String()
}

func statusOf(t *testing.T, c *adminclient.Conn) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Status(ctx, &kshakav1.StatusRequest{})
	return err
}

func TestTokenOnLoopback(t *testing.T) {
	addr := serve(t, acceptor.Options{AdminToken: "tok"}, nil)
	for _, tc := range []struct {
		token string
		want  codes.Code
	}{{"tok", codes.OK}, {"", codes.Unauthenticated}, {"wrong", codes.Unauthenticated}} {
		c, err := adminclient.Dial(addr, nil, tc.token)
		if err != nil {
			t.Fatal(err)
		}
		if err := statusOf(t, c); status.Code(err) != tc.want {
			t.Errorf("token %q: %v, want %v", tc.token, err, tc.want)
		}
		c.Close()
	}
}

func TestNoTokenInPlaintextElsewhere(t *testing.T) {
	_, err := adminclient.Dial("10.1.2.3:7400", nil, "tok")
	if err == nil || !strings.Contains(err.Error(), "refusing to send the admin token in plaintext to 10.1.2.3:7400") {
		t.Fatalf("Dial: %v", err)
	}
	c, err := adminclient.Dial("10.1.2.3:7400", nil, "")
	if err != nil {
		t.Fatalf("without a token: %v", err)
	}
	c.Close()
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "[::1]:1": true, "localhost:7400": true, "127.9.9.9:1": true,
		"10.0.0.1:1": false, "example.com:1": false, "kc-0.kc-peers.ns.svc:7400": false,
	} {
		if adminclient.IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%q) = %v", addr, !want)
		}
	}
}

// Over mutual TLS the admin certificate and the token both go.
func TestMutualTLSAndToken(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("ca", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sc, sk, err := ca.Issue(pki.Leaf{CommonName: "s", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true, Validity: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	src, err := tlsreload.NewServer(tlsreload.ServerFiles{CertFile: write("s.crt", sc), KeyFile: write("s.key", sk), ClientCAFile: write("ca.crt", ca.CertPEM)},
		tlsreload.Options{Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	addr := serve(t, acceptor.Options{AdminToken: "tok", MutualTLS: true}, credentials.NewTLS(src.TLSConfig()))

	ac, ak, err := ca.Issue(pki.Leaf{CommonName: "operator", Organization: []string{pki.OrgAdmin}, Client: true, Validity: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write("tls.crt", ac)
	write("tls.key", ak)
	files, err := tlsreload.DirFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := tlsreload.NewClient(files, tlsreload.Options{Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c, err := adminclient.Dial(addr, cl.Credentials(""), "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := statusOf(t, c); err != nil {
		t.Fatalf("Status with the admin certificate and token: %v", err)
	}
	if c.Addr() != addr {
		t.Errorf("Addr() = %q", c.Addr())
	}
}
