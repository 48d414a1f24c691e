package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/kshaka-io/kshaka/acceptor"
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
		{"missing TLS files", []string{"--data-dir", t.TempDir(), "--tls-cert-file=/nope.pem", "--tls-key-file=/nope.key"}, 1, "--tls-cert-file"},
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

// runAsync runs the command until the returned stop function is called; it
// returns the gRPC and metrics addresses once serving.
func runAsync(t *testing.T, args []string, vars map[string]string) (grpcAddr, metricsAddr string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ g, m string }
	ready := make(chan addrs, 1)
	exit := make(chan int, 1)
	var errOut bytes.Buffer
	go func() {
		exit <- run(ctx, args, env(vars), io.Discard, &errOut, func(g, m string) { ready <- addrs{g, m} })
	}()
	select {
	case a := <-ready:
		return a.g, a.m, func() int { cancel(); return <-exit }
	case code := <-exit:
		cancel()
		t.Fatalf("exited early with %d: %s", code, errOut.String())
	}
	return "", "", nil
}

func TestServeMetricsAndShutdown(t *testing.T) {
	grpcAddr, metricsAddr, stop := runAsync(t, []string{"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"},
		map[string]string{"KSHAKA_DATA_DIR": t.TempDir(), "KSHAKA_ADMIN_TOKEN": "tok"})
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer tok")
	gc, err := kshakav1.NewAdminClient(conn).GetConfig(ctx, &kshakav1.GetConfigRequest{})
	if err != nil || gc.Incarnation == 0 {
		t.Fatalf("GetConfig = %v, %v", gc, err)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`kshaka_acceptor_requests_total{result="ok",rpc="GetConfig"} 1`, "kshaka_acceptor_healthy 1", "go_goroutines"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
	conn.Close()
	if code := stop(); code != 0 {
		t.Fatalf("exit code after shutdown = %d", code)
	}
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, nil, nil, "ca")
	srvCert, srvKey := newCert(t, ca, caKey, "server")
	cliCert, cliKey := newCert(t, ca, caKey, "client")
	write := func(name string, blocks ...*pem.Block) string {
		var buf bytes.Buffer
		for _, b := range blocks {
			_ = pem.Encode(&buf, b)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	grpcAddr, _, stop := runAsync(t, []string{"--data-dir", filepath.Join(dir, "data"), "--listen=127.0.0.1:0", "--metrics-listen=",
		"--tls-cert-file", write("srv.pem", srvCert), "--tls-key-file", write("srv.key", srvKey),
		"--tls-client-ca-file", write("ca.pem", ca)}, nil)
	defer stop()

	pool := x509.NewCertPool()
	caParsed, _ := x509.ParseCertificate(ca.Bytes)
	pool.AddCert(caParsed)
	clientPair, err := tls.X509KeyPair(pem.EncodeToMemory(cliCert), pem.EncodeToMemory(cliKey))
	if err != nil {
		t.Fatal(err)
	}
	call := func(tc *tls.Config) error {
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = kshakav1.NewAdminClient(conn).GetConfig(context.Background(), &kshakav1.GetConfigRequest{})
		return err
	}
	if err := call(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientPair}}); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	if err := call(&tls.Config{RootCAs: pool}); err == nil {
		t.Fatal("a client without a certificate was served")
	}
}

// newCert makes a certificate for 127.0.0.1 signed by parent (self-signed CA
// when parent is nil); it returns the certificate and key PEM blocks.
func newCert(t *testing.T, parent *pem.Block, parentKey *pem.Block, name string) (*pem.Block, *pem.Block) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	signer, signerCert := any(key), tmpl
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	} else {
		pc, err := x509.ParseCertificate(parent.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		pk, err := x509.ParseECPrivateKey(parentKey.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		signer, signerCert = pk, pc
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "CERTIFICATE", Bytes: der}, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}
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
