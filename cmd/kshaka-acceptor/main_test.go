package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/internal/pki"
	"github.com/kshaka-io/kshaka/internal/tlsreload"
	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c *config)
		wantErr []string
	}{
		{"defaults", []string{"--data-dir", "/d"}, nil, func(t *testing.T, c *config) {
			if c.listen != ":7400" || c.metricsListen != ":9400" || c.maxValueSize != 1<<20 || c.shutdownTimeout != 30*time.Second ||
				c.maxBallotLead != 10*time.Minute {
				t.Errorf("defaults = %+v", c)
			}
		}, nil},
		{"environment", nil, map[string]string{
			"KSHAKA_DATA_DIR": "/e", "KSHAKA_LISTEN": "127.0.0.1:1", "KSHAKA_METRICS_LISTEN": "",
			"KSHAKA_MAX_VALUE_SIZE": "2048", "KSHAKA_ADMIN_TOKEN": "t", "KSHAKA_WAL_MIN_SYNC_INTERVAL": "500us",
			"KSHAKA_MAX_BALLOT_LEAD": "1h",
		}, func(t *testing.T, c *config) {
			if c.dataDir != "/e" || c.listen != "127.0.0.1:1" || c.metricsListen != "" || c.maxValueSize != 2048 ||
				c.adminToken != "t" || c.walMinSyncIntv != 500*time.Microsecond || c.maxBallotLead != time.Hour {
				t.Errorf("config = %+v", c)
			}
		}, nil},
		{"flags win over the environment", []string{"--data-dir=/f", "--max-value-size=7", "--max-ballot-lead=90s"},
			map[string]string{"KSHAKA_DATA_DIR": "/e", "KSHAKA_MAX_VALUE_SIZE": "9", "KSHAKA_MAX_BALLOT_LEAD": "1h"}, func(t *testing.T, c *config) {
				if c.dataDir != "/f" || c.maxValueSize != 7 || c.maxBallotLead != 90*time.Second {
					t.Errorf("config = %+v", c)
				}
			}, nil},
		{"bad environment value", nil, map[string]string{"KSHAKA_MAX_VALUE_SIZE": "big"}, nil,
			[]string{"KSHAKA_MAX_VALUE_SIZE"}},
		{"bad flag", []string{"--data-dir=/d", "--nope"}, nil, nil, []string{"nope"}},
		{"stray argument", []string{"--data-dir=/d", "extra"}, nil, nil, []string{"unexpected arguments"}},
		{"every problem at once", []string{"--listen=", "--tls-key-file=k", "--log-level=loud", "--log-format=xml", "--shutdown-timeout=0s", "--max-ballot-lead=0s"}, nil, nil,
			[]string{"--data-dir", "--listen", "go together", "--log-level", "--log-format", "--shutdown-timeout", "--max-ballot-lead 0s must be positive"}},
		{"client CA without a certificate", []string{"--data-dir=/d", "--tls-client-ca-file=ca"}, nil, nil, []string{"--tls-client-ca-file needs"}},
		{"negative TLS wait", []string{"--data-dir=/d", "--tls-wait=-1s"}, nil, nil, []string{"--tls-wait -1s must not be negative"}},
		{"TLS wait and health from the environment", nil, map[string]string{"KSHAKA_DATA_DIR": "/d", "KSHAKA_TLS_WAIT": "1m", "KSHAKA_HEALTH_LISTEN": ":7401"},
			func(t *testing.T, c *config) {
				if c.tlsWait != time.Minute || c.healthListen != ":7401" {
					t.Errorf("config = %+v", c)
				}
			}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, env(tt.env), io.Discard)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, c)
				return
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not mention %q", err, w)
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, env(nil), &out, &errOut, nil); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for flagName, envName := range envVars {
		if !strings.Contains(out.String(), "--"+flagName+" (env "+envName+", default ") {
			t.Errorf("--help does not document --%s with %s:\n%s", flagName, envName, out.String())
		}
	}
}

func TestExitCodes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"bad flag", []string{"--bogus"}, 2, "bogus"},
		{"no data dir", nil, 2, "--data-dir (KSHAKA_DATA_DIR) is required"},
		{"unopenable data dir", []string{"--data-dir", file, "--listen=127.0.0.1:0", "--metrics-listen="}, 1, "not a directory"},
		{"missing TLS files", []string{"--data-dir", t.TempDir(), "--tls-cert-file=/nope.pem", "--tls-key-file=/nope.key", "--tls-wait=0s"}, 1, "/nope.pem"},
		{"TLS files that do not load", []string{"--data-dir", t.TempDir(), "--tls-cert-file", file, "--tls-key-file", file}, 1, "while loading the certificate"},
		{"missing token file", []string{"--data-dir", t.TempDir(), "--admin-token-file=/nope"}, 1, "--admin-token-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errOut bytes.Buffer
			code := run(context.Background(), tt.args, env(nil), io.Discard, &errOut, nil)
			if code != tt.code || !strings.Contains(errOut.String(), tt.msg) {
				t.Fatalf("exit %d, stderr %q; want %d mentioning %q", code, errOut.String(), tt.code, tt.msg)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the command's logging goroutines
// and the test reading it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// eventually polls cond every 20ms for up to a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// started is a command running in the background.
type started struct {
	serving
	log  *syncBuffer
	stop func() int
}

// runAsync runs the command until the returned stop function is called; it
// returns once the command serves.
func runAsync(t *testing.T, args []string, vars map[string]string) started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan serving, 1)
	exit := make(chan int, 1)
	errOut := &syncBuffer{}
	go func() {
		exit <- run(ctx, args, env(vars), io.Discard, errOut, func(s serving) { ready <- s })
	}()
	select {
	case a := <-ready:
		return started{serving: a, log: errOut, stop: func() int { cancel(); return <-exit }}
	case code := <-exit:
		cancel()
		t.Fatalf("exited early with %d: %s", code, errOut.String())
	}
	return started{}
}

func TestServeMetricsAndShutdown(t *testing.T) {
	st := runAsync(t, []string{"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"},
		map[string]string{"KSHAKA_DATA_DIR": t.TempDir(), "KSHAKA_ADMIN_TOKEN": "tok"})
	conn, err := grpc.NewClient(st.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer tok")
	gc, err := kshakav1.NewAdminClient(conn).GetConfig(ctx, &kshakav1.GetConfigRequest{})
	if err != nil || gc.Incarnation == 0 {
		t.Fatalf("GetConfig = %v, %v", gc, err)
	}
	resp, err := http.Get("http://" + st.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{
		`grpc_server_handled_total{grpc_code="OK",grpc_method="GetConfig",grpc_service="kshaka.v1.Admin",grpc_type="unary"} 1`,
		"kshaka_acceptor_healthy 1", "kshaka_acceptor_disk_usage_bytes ", `kshaka_acceptor_filesystem_avail_bytes{volume="data"} `,
		"go_goroutines",
	} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
	conn.Close()
	if code := st.stop(); code != 0 {
		t.Fatalf("exit code after shutdown = %d", code)
	}
}

// testPKI is a cluster CA and the acceptor's files in dir.
type testPKI struct {
	t   *testing.T
	dir string
	ca  *pki.CA
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, err := pki.NewCA("kshaka test CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{t: t, dir: t.TempDir(), ca: ca}
	p.write("ca.crt", ca.CertPEM)
	p.issueServer(ca, "acceptor-1")
	return p
}

func (p *testPKI) path(name string) string { return filepath.Join(p.dir, name) }

// write replaces the file atomically (a rename), as a Secret volume does.
func (p *testPKI) write(name string, b []byte) {
	p.t.Helper()
	tmp := p.path(name + ".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, p.path(name)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *testPKI) issueServer(ca *pki.CA, cn string) {
	p.t.Helper()
	c, k, err := ca.Issue(pki.Leaf{CommonName: cn, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true, Validity: time.Hour}, time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	// The key first: a reader between the two sees a mismatched pair,
	// which must be skipped, not served.
	p.write("tls.key", k)
	p.write("tls.crt", c)
}

func (p *testPKI) args() []string {
	return []string{"--tls-cert-file", p.path("tls.crt"), "--tls-key-file", p.path("tls.key"), "--tls-client-ca-file", p.path("ca.crt")}
}

// client returns TLS client credentials with a certificate from ca with
// organization org (no certificate when ca is nil), trusting roots.
func (p *testPKI) client(ca *pki.CA, org string, roots ...*pki.CA) credentials.TransportCredentials {
	p.t.Helper()
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r.Cert)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if ca != nil {
		c, k, err := ca.Issue(pki.Leaf{CommonName: "client " + org, Organization: []string{org}, Client: true, Validity: time.Hour}, time.Now())
		if err != nil {
			p.t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			p.t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(cfg)
}

// call dials addr with creds and calls GetConfig, or Status when admin.
// It returns the server certificate's common name.
func call(addr string, creds credentials.TransportCredentials, admin bool) (string, error) {
	var server string
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var p peer.Peer
	if admin {
		_, err = kshakav1.NewAdminClient(conn).Status(ctx, &kshakav1.StatusRequest{}, grpc.Peer(&p))
	} else {
		_, err = kshakav1.NewAdminClient(conn).GetConfig(ctx, &kshakav1.GetConfigRequest{}, grpc.Peer(&p))
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
		server = ti.State.PeerCertificates[0].Subject.CommonName
	}
	return server, err
}

func TestMutualTLSRoles(t *testing.T) {
	p := newTestPKI(t)
	st := runAsync(t, append([]string{"--data-dir", t.TempDir(), "--listen=127.0.0.1:0", "--metrics-listen="}, p.args()...), nil)
	defer st.stop()
	for _, tc := range []struct {
		name  string
		creds credentials.TransportCredentials
		admin bool
		want  codes.Code
	}{
		{"client certificate, GetConfig", p.client(p.ca, pki.OrgClient, p.ca), false, codes.OK},
		{"client certificate, Status", p.client(p.ca, pki.OrgClient, p.ca), true, codes.PermissionDenied},
		{"admin certificate, Status", p.client(p.ca, pki.OrgAdmin, p.ca), true, codes.OK},
		{"no role, GetConfig", p.client(p.ca, "system:masters", p.ca), false, codes.PermissionDenied},
		{"no certificate, GetConfig", p.client(nil, "", p.ca), false, codes.Unauthenticated},
	} {
		if _, err := call(st.grpc, tc.creds, tc.admin); status.Code(err) != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if !strings.Contains(st.log.String(), `"client_auth":true`) {
		t.Errorf("the log does not say client certificates are required:\n%s", st.log.String())
	}
}

// The server certificate and the client CA bundle are reloaded when their
// files change; a file that does not load keeps the previous material.
func TestTLSReload(t *testing.T) {
	tlsReloadInterval = 20 * time.Millisecond
	defer func() { tlsReloadInterval = tlsreload.DefaultInterval }()
	p := newTestPKI(t)
	st := runAsync(t, append([]string{"--data-dir", t.TempDir(), "--listen=127.0.0.1:0", "--metrics-listen="}, p.args()...), nil)
	defer st.stop()
	admin := p.client(p.ca, pki.OrgAdmin, p.ca)
	if cn, err := call(st.grpc, admin, true); err != nil || cn != "acceptor-1" {
		t.Fatalf("before rotation: %q, %v", cn, err)
	}

	// CA rotation: the bundle carries the old and the new CA; the server's
	// certificate is reissued by the new one; clients of both CAs work.
	next, err := pki.NewCA("kshaka test CA 2", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.write("ca.crt", append(append([]byte(nil), p.ca.CertPEM...), next.CertPEM...))
	p.issueServer(next, "acceptor-2")
	eventually(t, "the new server certificate is served", func() bool {
		cn, err := call(st.grpc, p.client(next, pki.OrgAdmin, p.ca, next), true)
		return err == nil && cn == "acceptor-2"
	})
	if _, err := call(st.grpc, p.client(p.ca, pki.OrgClient, p.ca, next), false); err != nil {
		t.Errorf("a client of the old CA after the rotation: %v", err)
	}
	if !strings.Contains(st.log.String(), "reloaded the TLS files") {
		t.Errorf("the reload is not logged:\n%s", st.log.String())
	}

	// A broken certificate file is logged once and the previous pair kept.
	// (A poll between the writes of a new key and its certificate may have
	// logged their mismatch already.)
	bad := func() int { return strings.Count(st.log.String(), "do not load") }
	before := bad()
	p.write("tls.crt", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"))
	eventually(t, "the bad file is logged", func() bool { return bad() > before })
	if cn, err := call(st.grpc, p.client(next, pki.OrgClient, next), false); err != nil || cn != "acceptor-2" {
		t.Errorf("after a bad file: %q, %v; want acceptor-2 still served", cn, err)
	}
	time.Sleep(10 * tlsReloadInterval) // ten more polls of the same bad file
	if n := bad() - before; n != 1 {
		t.Errorf("the bad file was logged %d times, want once", n)
	}
}

// At start the acceptor waits for its certificate files to appear.
func TestTLSWait(t *testing.T) {
	p := newTestPKI(t)
	dir := t.TempDir()
	args := []string{"--data-dir", filepath.Join(dir, "data"), "--listen=127.0.0.1:0", "--metrics-listen=", "--tls-wait=5m",
		"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-key-file", filepath.Join(dir, "tls.key"), "--tls-client-ca-file", p.path("ca.crt")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &syncBuffer{}
	ready := make(chan serving, 1)
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, args, env(nil), io.Discard, log, func(s serving) { ready <- s }) }()
	eventually(t, "it says it waits", func() bool { return strings.Contains(log.String(), "waiting for the TLS files to appear") })
	for _, name := range []string{"tls.key", "tls.crt"} {
		b, err := os.ReadFile(p.path(name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case s := <-ready:
		if _, err := call(s.grpc, p.client(p.ca, pki.OrgClient, p.ca), false); err != nil {
			t.Errorf("GetConfig after the wait: %v", err)
		}
	case code := <-exit:
		t.Fatalf("exited with %d: %s", code, log.String())
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// --health-listen serves the health service alone, in plaintext, with the
// acceptor's state.
func TestHealthListen(t *testing.T) {
	p := newTestPKI(t)
	st := runAsync(t, append([]string{"--data-dir", t.TempDir(), "--listen=127.0.0.1:0", "--metrics-listen=", "--health-listen=127.0.0.1:0"}, p.args()...), nil)
	defer st.stop()
	conn, err := grpc.NewClient(st.health, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	check := func() healthgrpc.HealthCheckResponse_ServingStatus {
		t.Helper()
		r, err := healthgrpc.NewHealthClient(conn).Check(ctx, &healthgrpc.HealthCheckRequest{Service: "kshaka.v1.Acceptor"})
		if err != nil {
			t.Fatalf("health Check on --health-listen: %v", err)
		}
		return r.Status
	}
	if s := check(); s != healthgrpc.HealthCheckResponse_NOT_SERVING {
		t.Errorf("before admission: %v", s)
	}
	_, err = kshakav1.NewAdminClient(conn).GetConfig(ctx, &kshakav1.GetConfigRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("GetConfig on the health port: %v, want Unimplemented", err)
	}

	// Admit it through the mutual-TLS port; the health port follows.
	aconn, err := grpc.NewClient(st.grpc, grpc.WithTransportCredentials(p.client(p.ca, pki.OrgAdmin, p.ca)))
	if err != nil {
		t.Fatal(err)
	}
	defer aconn.Close()
	admin := kshakav1.NewAdminClient(aconn)
	gc, err := admin.GetConfig(ctx, &kshakav1.GetConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := membership.Stable(1, membership.Member{ID: "a0", Addr: st.grpc, Incarnation: gc.Incarnation})
	if _, err := admin.SetConfig(ctx, &kshakav1.SetConfigRequest{Config: wire.ConfigToProto(cfg)}); err != nil {
		t.Fatal(err)
	}
	if s := check(); s != healthgrpc.HealthCheckResponse_SERVING {
		t.Errorf("after admission: %v", s)
	}
}

func TestGoMemoryLimit(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	withGOMEMLIMIT := func(k string) (string, bool) { return "200MiB", k == "GOMEMLIMIT" }
	for _, tc := range []struct {
		name   string
		c      config
		getenv func(string) (string, bool)
		want   int64
		ok     bool
	}{
		{"default: cache plus headroom", config{cacheSize: acceptor.DefaultCacheSize}, noEnv, acceptor.DefaultCacheSize + memoryLimitHeadroom, true},
		{"follows the cache", config{cacheSize: 256 << 20}, noEnv, 256<<20 + memoryLimitHeadroom, true},
		{"GOMEMLIMIT is left alone", config{cacheSize: acceptor.DefaultCacheSize}, withGOMEMLIMIT, 0, false},
		{"explicit wins over GOMEMLIMIT", config{memoryLimit: 1 << 30}, withGOMEMLIMIT, 1 << 30, true},
		{"negative: none", config{memoryLimit: -1}, noEnv, 0, false},
	} {
		got, ok := tc.c.goMemoryLimit(tc.getenv)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: goMemoryLimit = %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
