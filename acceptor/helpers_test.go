package acceptor

import (
	"context"
	"net"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
	"github.com/kshaka-io/kshaka/register"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// node is one acceptor served over real gRPC on loopback, with clients.
type node struct {
	t      testing.TB
	opts   Options
	acc    *Acceptor
	srv    *grpc.Server
	conn   *grpc.ClientConn
	data   kshakav1.AcceptorClient
	admin  kshakav1.AdminClient
	health healthgrpc.HealthClient
	done   chan struct{}
}

// testOptions are small Pebble settings for tests, on a real directory.
func testOptions(t testing.TB) Options {
	return Options{Dir: t.TempDir(), CacheSize: 1 << 20, MemTableSize: 1 << 20, LockStripes: 64}
}

// memOptions puts the store on fs under "/data".
func memOptions(fs vfs.FS) Options {
	return Options{Dir: "/data", FS: fs, CacheSize: 1 << 20, MemTableSize: 1 << 20, LockStripes: 64}
}

// start opens an acceptor with opts and serves it; stopped at cleanup.
func start(t testing.TB, opts Options) *node {
	t.Helper()
	n := &node{t: t, opts: opts}
	n.open()
	t.Cleanup(n.stop)
	return n
}

func (n *node) open() {
	n.t.Helper()
	acc, err := Open(n.opts)
	if err != nil {
		n.t.Fatalf("Open: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.t.Fatal(err)
	}
	srv := grpc.NewServer(acc.ServerOptions()...)
	acc.Register(srv)
	n.acc, n.srv, n.done = acc, srv, make(chan struct{})
	go func(done chan struct{}) { defer close(done); _ = srv.Serve(lis) }(n.done)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		n.t.Fatal(err)
	}
	n.conn = conn
	n.data = kshakav1.NewAcceptorClient(conn)
	n.admin = kshakav1.NewAdminClient(conn)
	n.health = healthgrpc.NewHealthClient(conn)
}

// stop stops the server gracefully and closes the acceptor; idempotent.
func (n *node) stop() {
	if n.acc == nil {
		return
	}
	n.conn.Close()
	n.srv.GracefulStop()
	<-n.done
	if err := n.acc.Close(); err != nil {
		n.t.Errorf("Close: %v", err)
	}
	n.acc = nil
}

func (n *node) restart() {
	n.t.Helper()
	n.stop()
	n.open()
}

// admit installs a stable configuration of epoch that lists this acceptor.
func (n *node) admit(epoch uint64) membership.Config {
	n.t.Helper()
	cfg := membership.Stable(epoch, membership.Member{ID: "a0", Addr: "127.0.0.1:1", Incarnation: n.acc.Incarnation()})
	n.setConfig(cfg)
	return cfg
}

func (n *node) setConfig(cfg membership.Config) {
	n.t.Helper()
	if _, err := n.admin.SetConfig(context.Background(), &kshakav1.SetConfigRequest{Config: wire.ConfigToProto(cfg)}); err != nil {
		n.t.Fatalf("SetConfig(%v): %v", cfg, err)
	}
}

// startAdmitted is start followed by admit(1).
func startAdmitted(t testing.TB, opts Options) *node {
	t.Helper()
	n := start(t, opts)
	n.admit(1)
	return n
}

func (n *node) status() *kshakav1.StatusResponse {
	n.t.Helper()
	st, err := n.admin.Status(context.Background(), &kshakav1.StatusRequest{})
	if err != nil {
		n.t.Fatalf("Status: %v", err)
	}
	return st
}

func (n *node) healthStatus(service string) healthgrpc.HealthCheckResponse_ServingStatus {
	n.t.Helper()
	resp, err := n.health.Check(context.Background(), &healthgrpc.HealthCheckRequest{Service: service})
	if err != nil {
		n.t.Fatalf("health Check: %v", err)
	}
	return resp.Status
}

// contents returns every stored user record, for "nothing was written"
// assertions; it reads the store directly.
func (n *node) contents() map[string]register.State {
	n.t.Helper()
	out := map[string]register.State{}
	var keys [][]byte
	if err := n.acc.store.scan(nil, func(k []byte) bool { keys = append(keys, append([]byte(nil), k...)); return true }); err != nil {
		n.t.Fatal(err)
	}
	for _, k := range keys {
		st, _, err := n.acc.store.get(storageKey(nil, k))
		if err != nil {
			n.t.Fatal(err)
		}
		out[string(k)] = st
	}
	return out
}

func b(counter, proposer uint64) *kshakav1.Ballot {
	return &kshakav1.Ballot{Counter: counter, Proposer: proposer}
}

func val(version uint64, data string) *kshakav1.Value {
	return &kshakav1.Value{Version: version, Data: []byte(data)}
}

func code(err error) codes.Code { return status.Code(err) }

func wantCode(t testing.TB, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("error = %v, want code %v", err, want)
	}
}
