package acceptortest_test

import (
	"context"
	"net"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/internal/pki"
	"github.com/kshaka-io/kshaka/internal/tlsreload"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func client(t *testing.T, addr string) kshakav1.AcceptorClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return kshakav1.NewAcceptorClient(conn)
}

func accept(t *testing.T, c kshakav1.AcceptorClient, epoch, counter uint64, data string) *kshakav1.AcceptResponse {
	t.Helper()
	resp, err := c.Accept(context.Background(), &kshakav1.AcceptRequest{Epoch: epoch, Items: []*kshakav1.AcceptItem{{
		Key: []byte("k"), Ballot: &kshakav1.Ballot{Counter: counter, Proposer: 7},
		Value: &kshakav1.Value{Version: counter, Data: []byte(data)},
	}}})
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	return resp
}

func read(t *testing.T, c kshakav1.AcceptorClient, epoch uint64) string {
	t.Helper()
	resp, err := c.Read(context.Background(), &kshakav1.ReadRequest{Epoch: epoch, Keys: [][]byte{[]byte("k")}})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(resp.Results[0].GetValue().GetData())
}

func TestClusterLifecycle(t *testing.T) {
	c := acceptortest.StartCluster(t, 3)
	cfg := c.Config()
	if cfg.Epoch != 1 || len(cfg.Members) != 3 || !cfg.IsStable() {
		t.Fatalf("config = %v", cfg)
	}
	for i, addr := range c.Addrs() {
		m, ok := cfg.MemberByID([]string{"a0", "a1", "a2"}[i])
		if !ok || m.Addr != addr || m.Incarnation != c.Acceptor(i).Incarnation() {
			t.Fatalf("member %d = %+v, addr %s", i, m, addr)
		}
		if r := accept(t, client(t, addr), 1, 1, "one"); !r.Results[0].Ok {
			t.Fatalf("accept on %d: %v", i, r)
		}
	}

	inc0 := c.Acceptor(0).Incarnation()
	c.Stop(0)
	if c.Acceptor(0) != nil {
		t.Fatal("stopped acceptor still listed")
	}
	c.Restart(0)
	c.Kill(1)
	c.Restart(1)
	if got := c.Acceptor(0).Incarnation(); got != inc0 {
		t.Fatalf("incarnation after restart = %x, want %x", got, inc0)
	}
	epoch := c.Config().Epoch
	for i, addr := range c.Addrs() {
		if got := read(t, client(t, addr), epoch); got != "one" {
			t.Fatalf("acceptor %d after restart read %q", i, got)
		}
	}

	next := c.Config()
	next.Epoch++
	c.Install(next)
	r := accept(t, client(t, c.Addrs()[2]), epoch, 2, "two")
	if r.StaleConfig.GetEpoch() != next.Epoch {
		t.Fatalf("old epoch not refused: %v", r)
	}
}

// TestRestartOnATakenPort: when the old port is taken, Restart listens on a
// new one and installs the next epoch with the new address.
func TestRestartOnATakenPort(t *testing.T) {
	c := acceptortest.StartCluster(t, 3)
	old := c.Addrs()[1]
	c.Stop(1)
	lis, err := net.Listen("tcp", old)
	if err != nil {
		t.Skipf("cannot take the old port: %v", err)
	}
	defer lis.Close()
	c.Restart(1)
	addr := c.Addrs()[1]
	cfg := c.Config()
	m, _ := cfg.MemberByID("a1")
	if addr == old || m.Addr != addr || cfg.Epoch != 2 {
		t.Fatalf("addr %s (old %s), config %v / %+v", addr, old, cfg, m)
	}
	for i, a := range c.Addrs() {
		if r := accept(t, client(t, a), 2, 1, "x"); !r.Results[0].Ok {
			t.Fatalf("acceptor %d: %v", i, r)
		}
	}
}

func TestAdminTokenCluster(t *testing.T) {
	c := acceptortest.StartClusterWith(t, 2, func(i int, o *acceptor.Options) { o.AdminToken = "tok" })
	if got := c.Acceptor(1).Config().Epoch; got != 1 {
		t.Fatalf("epoch = %d", got)
	}
}

// A TLS cluster serves mutual TLS: a client certificate from ClientDir
// works, a plaintext client does not.
func TestTLSCluster(t *testing.T) {
	cl := acceptortest.StartTLSCluster(t, 3, nil)
	files, err := tlsreload.DirFiles(cl.ClientDir("app", pki.OrgClient))
	if err != nil {
		t.Fatal(err)
	}
	src, err := tlsreload.NewClient(files, tlsreload.Options{Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	conn, err := grpc.NewClient(cl.Addrs()[0], grpc.WithTransportCredentials(src.Credentials("")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	accept(t, kshakav1.NewAcceptorClient(conn), 1, 3, "over TLS")
	if got := read(t, kshakav1.NewAcceptorClient(conn), 1); got != "over TLS" {
		t.Errorf("read %q", got)
	}
	if _, err := client(t, cl.Addrs()[1]).Read(context.Background(), &kshakav1.ReadRequest{Epoch: 1, Keys: [][]byte{[]byte("k")}}); err == nil {
		t.Error("a plaintext client was served")
	}
	cl.Restart(1) // the restarted acceptor serves TLS again
	cl.Install(cl.Config())
}
