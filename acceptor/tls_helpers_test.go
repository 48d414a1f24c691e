package acceptor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/kshaka-io/kshaka/internal/pki"
	"github.com/kshaka-io/kshaka/internal/tlsreload"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// identity is who a test client is.
type identity string

const (
	anonymous  identity = "no certificate"
	noRole     identity = "certificate without a role"
	clientRole identity = "client certificate"
	adminRole  identity = "admin certificate"
	otherCA    identity = "admin certificate of another CA"
)

// testPKI is a cluster CA with certificates written to files.
type testPKI struct {
	t   testing.TB
	dir string
	ca  *pki.CA
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca, err := pki.NewCA("kshaka test CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{t: t, dir: t.TempDir(), ca: ca}
	p.write("ca.crt", ca.CertPEM)
	return p
}

func (p *testPKI) write(name string, b []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// serverFiles issues the acceptor's certificate for 127.0.0.1.
func (p *testPKI) serverFiles() tlsreload.ServerFiles {
	p.t.Helper()
	c, k, err := p.ca.Issue(pki.Leaf{CommonName: "acceptor", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true, Validity: time.Hour}, time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	return tlsreload.ServerFiles{CertFile: p.write("server.crt", c), KeyFile: p.write("server.key", k), ClientCAFile: filepath.Join(p.dir, "ca.crt")}
}

// clientTLS returns the TLS configuration of a client with identity id.
func (p *testPKI) clientTLS(id identity) *tls.Config {
	p.t.Helper()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: newPool(p.t, p.ca.CertPEM)}
	issuer, org := p.ca, []string(nil)
	switch id {
	case anonymous:
		issuer = nil
	case clientRole:
		org = []string{pki.OrgClient}
	case adminRole:
		org = []string{pki.OrgAdmin}
	case otherCA:
		other, err := pki.NewCA("another CA", time.Hour, time.Now())
		if err != nil {
			p.t.Fatal(err)
		}
		issuer, org = other, []string{pki.OrgAdmin}
	}
	if issuer != nil {
		c, k, err := issuer.Issue(pki.Leaf{CommonName: string(id), Organization: org, Client: true, Validity: time.Hour}, time.Now())
		if err != nil {
			p.t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			p.t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

func newPool(t testing.TB, pemBytes []byte) *x509.CertPool {
	t.Helper()
	certs, err := pki.ParseCertificates(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

// tlsServer serves an acceptor (opened with opts, MutualTLS set) over mutual
// TLS with the PKI's files; stopped at cleanup.
type tlsServer struct {
	t    testing.TB
	acc  *Acceptor
	addr string
	pki  *testPKI
}

func startTLS(t testing.TB, opts Options) *tlsServer {
	t.Helper()
	p := newTestPKI(t)
	opts.MutualTLS = true
	acc, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	src, err := tlsreload.NewServer(p.serverFiles(), tlsreload.Options{Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(acc.ServerOptions(), grpc.Creds(credentials.NewTLS(src.TLSConfig())))...)
	acc.Register(srv)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		<-done
		src.Close()
		if err := acc.Close(); err != nil {
			t.Error(err)
		}
	})
	return &tlsServer{t: t, acc: acc, addr: lis.Addr().String(), pki: p}
}

// dial connects to the server as id (insecure: plaintext).
func (s *tlsServer) dial(id identity) *grpc.ClientConn {
	s.t.Helper()
	creds := insecure.NewCredentials()
	if id != "plaintext" {
		creds = credentials.NewTLS(s.pki.clientTLS(id))
	}
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.Close() })
	return conn
}

// rpc is one RPC of a service the acceptor serves, found from its
// grpc.ServiceDesc, with its message types from the protobuf registry.
type rpc struct {
	full         string
	in, out      protoreflect.MessageType
	serverStream bool
}

// servedServices are the services Register registers.
var servedServices = []grpc.ServiceDesc{kshakav1.Acceptor_ServiceDesc, kshakav1.Admin_ServiceDesc, healthgrpc.Health_ServiceDesc}

// allRPCs enumerates every RPC of every service the acceptor serves.
func allRPCs(t testing.TB) []rpc {
	t.Helper()
	var out []rpc
	for _, sd := range servedServices {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(sd.ServiceName))
		if err != nil {
			t.Fatalf("service %s: %v", sd.ServiceName, err)
		}
		svc := d.(protoreflect.ServiceDescriptor)
		add := func(name string, stream bool) {
			m := svc.Methods().ByName(protoreflect.Name(name))
			if m == nil {
				t.Fatalf("%s has no method %s", sd.ServiceName, name)
			}
			in, err1 := protoregistry.GlobalTypes.FindMessageByName(m.Input().FullName())
			out2, err2 := protoregistry.GlobalTypes.FindMessageByName(m.Output().FullName())
			if err := errors.Join(err1, err2); err != nil {
				t.Fatal(err)
			}
			out = append(out, rpc{full: "/" + sd.ServiceName + "/" + name, in: in, out: out2, serverStream: stream})
		}
		for _, m := range sd.Methods {
			add(m.MethodName, false)
		}
		for _, s := range sd.Streams {
			add(s.StreamName, true)
		}
	}
	return out
}

// call sends req; a server stream is read up to its first message.
func (r rpc) call(ctx context.Context, conn *grpc.ClientConn, req proto.Message) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !r.serverStream {
		return conn.Invoke(ctx, r.full, req, r.out.New().Interface())
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, r.full)
	if err != nil {
		return err
	}
	if err := s.SendMsg(req); err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	if err := s.RecvMsg(r.out.New().Interface()); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
