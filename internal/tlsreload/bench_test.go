package tlsreload

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kshaka-io/kshaka/internal/pki"
)

var errNoChain = errors.New("the server verified no client certificate")

func benchCA(b *testing.B) *pki.CA {
	b.Helper()
	ca, err := pki.NewCA("bench", time.Hour, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return ca
}

func nowForBench() time.Time { return time.Now() }

// BenchmarkHandshake measures one mutual-TLS handshake as the acceptors
// and proposers make them (ECDSA P-256 certificates from internal/pki, TLS
// 1.3, the client certificate verified against the CA bundle), over an
// loopback TCP connection, through the reloading configurations of this
// package: what a new connection costs, its TCP connect included.
func BenchmarkHandshake(b *testing.B) {
	dir := b.TempDir()
	ca := benchCA(b)
	l := serverLeaf("acceptor")
	l.Validity = time.Hour
	sc, sk, err := ca.Issue(l, nowForBench())
	if err != nil {
		b.Fatal(err)
	}
	cl := clientLeaf("proposer")
	cl.Validity = time.Hour
	cc, ck, err := ca.Issue(cl, nowForBench())
	if err != nil {
		b.Fatal(err)
	}
	for name, content := range map[string][]byte{"s.crt": sc, "s.key": sk, CAFileName: ca.CertPEM, CertFileName: cc, KeyFileName: ck} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := NewServer(ServerFiles{CertFile: filepath.Join(dir, "s.crt"), KeyFile: filepath.Join(dir, "s.key"),
		ClientCAFile: filepath.Join(dir, CAFileName)}, Options{Interval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	files, err := DirFiles(dir)
	if err != nil {
		b.Fatal(err)
	}
	cli, err := NewClient(files, Options{Interval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer lis.Close()
	errc := make(chan error, 1)
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			s := conn.(*tls.Conn)
			err = s.Handshake()
			if err == nil && len(s.ConnectionState().VerifiedChains) == 0 {
				err = errNoChain
			}
			s.Close()
			errc <- err
		}
	}()
	addr := lis.Addr().String()
	b.ReportAllocs()
	for b.Loop() {
		c, err := tls.Dial("tcp", addr, cli.Config("localhost"))
		if err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
