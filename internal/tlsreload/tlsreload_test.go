package tlsreload

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kshaka-io/kshaka/internal/pki"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newCA(t *testing.T, name string) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(name, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *pki.CA, l pki.Leaf) (certPEM, keyPEM []byte) {
	t.Helper()
	if l.Validity == 0 {
		l.Validity = time.Hour
	}
	c, k, err := ca.Issue(l, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func serverLeaf(cn string) pki.Leaf {
	return pki.Leaf{CommonName: cn, IPs: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}, Server: true}
}

func clientLeaf(cn string) pki.Leaf {
	return pki.Leaf{CommonName: cn, Organization: []string{pki.OrgClient}, Client: true}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func concat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// errs collects what OnReload reports.
type errs struct {
	mu   sync.Mutex
	oks  int
	errs []error
}

func (e *errs) onReload(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil {
		e.oks++
		return
	}
	e.errs = append(e.errs, err)
}

func (e *errs) counts() (int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.oks, len(e.errs)
}

// serve accepts TLS connections with cfg until the test ends and records
// the verified client certificate's common name of each handshake.
func serve(t *testing.T, cfg *tls.Config) (addr string, clients chan string) {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	clients = make(chan string, 16)
	var wg sync.WaitGroup
	t.Cleanup(func() { lis.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				tc := conn.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					clients <- "handshake failed: " + err.Error()
					return
				}
				name := "-"
				if ch := tc.ConnectionState().VerifiedChains; len(ch) > 0 {
					name = ch[0][0].Subject.CommonName
				}
				clients <- name
				_, _ = tc.Write([]byte("x"))
			})
		}
	})
	return lis.Addr().String(), clients
}

// dial handshakes with addr and returns the server certificate's common
// name.
func dial(cfg *tls.Config, addr string) (string, error) {
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	buf := make([]byte, 1)
	if _, err := conn.Read(buf); err != nil {
		return "", err
	}
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func TestServerReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "ca")
	f := ServerFiles{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	c1, k1 := issue(t, ca, serverLeaf("first"))
	write(t, f.CertFile, c1)
	write(t, f.KeyFile, k1)
	var rep errs
	s, err := NewServer(f, Options{Interval: -1, OnReload: rep.onReload})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr, _ := serve(t, s.TLSConfig())
	client := &tls.Config{RootCAs: pool(ca.Cert), ServerName: "localhost"}
	if cn, err := dial(client, addr); err != nil || cn != "first" {
		t.Fatalf("first handshake: %q, %v", cn, err)
	}
	if s.Poll() {
		t.Error("Poll reloaded unchanged files")
	}

	// A half-written certificate keeps the old one, reported once.
	c2, k2 := issue(t, ca, serverLeaf("second"))
	write(t, f.CertFile, c2[:len(c2)/2])
	for range 3 {
		if s.Poll() {
			t.Fatal("Poll loaded a half-written certificate")
		}
	}
	if oks, bad := rep.counts(); oks != 0 || bad != 1 {
		t.Errorf("OnReload: %d reloads, %d errors; want 0, 1", oks, bad)
	}
	if cn, err := dial(client, addr); err != nil || cn != "first" {
		t.Fatalf("after a bad file: %q, %v; want the first certificate", cn, err)
	}
	// The new certificate with the old key does not load either.
	write(t, f.CertFile, c2)
	if s.Poll() {
		t.Fatal("Poll loaded a certificate with another's key")
	}
	if oks, bad := rep.counts(); oks != 0 || bad != 2 {
		t.Errorf("OnReload: %d reloads, %d errors; want 0, 2", oks, bad)
	}
	rep.mu.Lock()
	if msg := rep.errs[1].Error(); !strings.Contains(msg, "kept the current TLS material") || !strings.Contains(msg, f.CertFile) {
		t.Errorf("error %q does not say what was kept and which file", msg)
	}
	rep.mu.Unlock()

	write(t, f.KeyFile, k2)
	if !s.Poll() {
		t.Fatal("Poll did not load the new pair")
	}
	if cn, err := dial(client, addr); err != nil || cn != "second" {
		t.Fatalf("after rotation: %q, %v", cn, err)
	}
	if s.Certificate().Subject.CommonName != "second" {
		t.Errorf("Certificate() = %s", s.Certificate().Subject.CommonName)
	}
}

// kubeSecretDir lays files out as the kubelet's atomic writer does: the
// files in a timestamped directory, ..data a symlink to it, and each name a
// symlink into ..data. It returns a function that swaps in new contents.
func kubeSecretDir(t *testing.T, files map[string][]byte) (dir string, update func(map[string][]byte)) {
	t.Helper()
	dir = t.TempDir()
	gen := 0
	update = func(files map[string][]byte) {
		gen++
		ts := filepath.Join(dir, "..2026_01_01_00_00_0"+string(rune('0'+gen)))
		if err := os.Mkdir(ts, 0o700); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			write(t, filepath.Join(ts, name), b)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		for name := range files {
			link := filepath.Join(dir, name)
			if _, err := os.Lstat(link); err == nil {
				continue
			}
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	update(files)
	return dir, update
}

func TestClientReloadsThroughSymlinkSwap(t *testing.T) {
	oldCA, newCA := newCA(t, "old"), newCA(t, "new")
	// The server's certificate is from the new CA; the client trusts only
	// the old one at first.
	sc, sk := issue(t, newCA, serverLeaf("server"))
	srvPair, err := tls.X509KeyPair(sc, sk)
	if err != nil {
		t.Fatal(err)
	}
	addr, clients := serve(t, &tls.Config{
		Certificates: []tls.Certificate{srvPair}, ClientCAs: pool(oldCA.Cert, newCA.Cert), ClientAuth: tls.VerifyClientCertIfGiven,
	})
	cc1, ck1 := issue(t, oldCA, clientLeaf("client-1"))
	dir, update := kubeSecretDir(t, map[string][]byte{CAFileName: oldCA.CertPEM, CertFileName: cc1, KeyFileName: ck1})
	files, err := DirFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rep errs
	c, err := NewClient(files, Options{Interval: -1, OnReload: rep.onReload})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.HasCertificate() {
		t.Fatal("the client has no certificate")
	}
	if _, err := dial(c.Config("localhost"), addr); err == nil {
		t.Fatal("a server signed by a CA not in ca.crt was trusted")
	}
	<-clients

	// The bundle gains the new CA and the client certificate is reissued.
	cc2, ck2 := issue(t, newCA, clientLeaf("client-2"))
	update(map[string][]byte{CAFileName: concat(oldCA.CertPEM, newCA.CertPEM), CertFileName: cc2, KeyFileName: ck2})
	if !c.Poll() {
		t.Fatal("Poll did not see the swapped ..data")
	}
	if cn, err := dial(c.Config("localhost"), addr); err != nil || cn != "server" {
		t.Fatalf("after the swap: %q, %v", cn, err)
	}
	if got := <-clients; got != "client-2" {
		t.Errorf("the server saw client %q, want client-2", got)
	}
	// The name verified is the one asked for.
	if _, err := dial(c.Config("elsewhere.example"), addr); err == nil {
		t.Error("a certificate without the name was accepted")
	}
	if oks, bad := rep.counts(); oks != 1 || bad != 0 {
		t.Errorf("OnReload: %d reloads, %d errors", oks, bad)
	}
}

func TestServerTrustsEveryCAOfTheBundle(t *testing.T) {
	dir := t.TempDir()
	a, b, other := newCA(t, "a"), newCA(t, "b"), newCA(t, "other")
	sc, sk := issue(t, a, serverLeaf("server"))
	f := ServerFiles{CertFile: filepath.Join(dir, "s.crt"), KeyFile: filepath.Join(dir, "s.key"), ClientCAFile: filepath.Join(dir, "ca.crt")}
	write(t, f.CertFile, sc)
	write(t, f.KeyFile, sk)
	write(t, f.ClientCAFile, concat(a.CertPEM, b.CertPEM))
	s, err := NewServer(f, Options{Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.ClientCAs() != 2 {
		t.Errorf("ClientCAs() = %d, want 2", s.ClientCAs())
	}
	addr, clients := serve(t, s.TLSConfig())
	for _, tc := range []struct {
		ca   *pki.CA
		want string
	}{{a, "from-a"}, {b, "from-b"}, {nil, "-"}} {
		cfg := &tls.Config{RootCAs: pool(a.Cert), ServerName: "localhost"}
		if tc.ca != nil {
			cp, kp := issue(t, tc.ca, clientLeaf(tc.want))
			pair, _ := tls.X509KeyPair(cp, kp)
			cfg.Certificates = []tls.Certificate{pair}
		}
		if _, err := dial(cfg, addr); err != nil {
			t.Errorf("client %s: %v", tc.want, err)
		}
		if got := <-clients; got != tc.want {
			t.Errorf("server saw %q, want %q", got, tc.want)
		}
	}
	// A certificate from a CA outside the bundle is never verified (Go's
	// client does not even send one the server's CA list does not name).
	cp, kp := issue(t, other, clientLeaf("outsider"))
	pair, _ := tls.X509KeyPair(cp, kp)
	_, _ = dial(&tls.Config{RootCAs: pool(a.Cert), ServerName: "localhost", Certificates: []tls.Certificate{pair}}, addr)
	if got := <-clients; got != "-" && !strings.HasPrefix(got, "handshake failed") {
		t.Errorf("a client certificate from another CA: server verified %q", got)
	}
	// A server certificate cannot be used as a client certificate.
	sp, _ := tls.X509KeyPair(sc, sk)
	_, _ = dial(&tls.Config{RootCAs: pool(a.Cert), ServerName: "localhost", Certificates: []tls.Certificate{sp}}, addr)
	if got := <-clients; !strings.HasPrefix(got, "handshake failed") {
		t.Errorf("a server certificate as a client: server saw %q", got)
	}
}

func TestInitialLoadIsStrict(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "ca")
	c, k := issue(t, ca, serverLeaf("s"))
	cert, key, bundle := filepath.Join(dir, "c"), filepath.Join(dir, "k"), filepath.Join(dir, "ca")
	write(t, cert, c)
	write(t, key, k)
	write(t, bundle, []byte("not PEM"))
	for _, tc := range []struct {
		name string
		f    ServerFiles
		want string
	}{
		{"missing key", ServerFiles{CertFile: cert, KeyFile: filepath.Join(dir, "none")}, "none"},
		{"key for the certificate", ServerFiles{CertFile: cert, KeyFile: cert}, "while loading the certificate"},
		{"bad bundle", ServerFiles{CertFile: cert, KeyFile: key, ClientCAFile: bundle}, "client CA bundle " + bundle + ": no PEM certificate"},
		{"no files", ServerFiles{}, "needs a certificate file"},
	} {
		if _, err := NewServer(tc.f, Options{Interval: -1}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := DirFiles(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no ca.crt") {
		t.Errorf("DirFiles without ca.crt: %v", err)
	}
	only := t.TempDir()
	write(t, filepath.Join(only, CAFileName), ca.CertPEM)
	write(t, filepath.Join(only, CertFileName), c)
	if _, err := DirFiles(only); err == nil || !strings.Contains(err.Error(), "no tls.key") {
		t.Errorf("DirFiles with tls.crt only: %v", err)
	}
	os.Remove(filepath.Join(only, CertFileName))
	if f, err := DirFiles(only); err != nil || f.CertFile != "" {
		t.Errorf("DirFiles with ca.crt only: %+v, %v", f, err)
	}
}

// A missing file after the start keeps the material and is reported once;
// its return is a reload.
func TestFileRemovedAndRestored(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "ca")
	write(t, filepath.Join(dir, CAFileName), ca.CertPEM)
	f, _ := DirFiles(dir)
	var rep errs
	c, err := NewClient(f, Options{Interval: -1, OnReload: rep.onReload})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	os.Remove(f.CAFile)
	c.Poll()
	c.Poll()
	if oks, bad := rep.counts(); oks != 0 || bad != 1 || !errors.Is(rep.errs[0], os.ErrNotExist) {
		t.Errorf("after removal: %d reloads, errors %v", oks, rep.errs)
	}
	if c.Config("").RootCAs == nil {
		t.Error("the CA pool was dropped")
	}
	other := newCA(t, "other")
	write(t, f.CAFile, other.CertPEM)
	if !c.Poll() {
		t.Error("a restored file was not loaded")
	}
}

// The background poll finds a change by itself.
func TestBackgroundPoll(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "ca")
	write(t, filepath.Join(dir, CAFileName), ca.CertPEM)
	f, _ := DirFiles(dir)
	reloaded := make(chan error, 4)
	c, err := NewClient(f, Options{Interval: 10 * time.Millisecond, OnReload: func(err error) { reloaded <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write(t, f.CAFile, concat(ca.CertPEM, newCA(t, "second").CertPEM))
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the watcher did not reload within a minute")
	}
}
