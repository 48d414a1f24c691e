package proposer_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/membership"
)

// endpoints are the addresses of the cluster the examples use, started by
// TestMain (an Example has no testing.T to start an acceptortest cluster).
var endpoints []string

func TestMain(m *testing.M) {
	lc, err := startLocal(3)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the example cluster:", err)
		os.Exit(1)
	}
	endpoints = lc.addrs
	code := m.Run()
	lc.stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// localCluster is a small acceptortest.Cluster without a testing.TB: real
// acceptors with Pebble in a temporary directory, served on loopback.
type localCluster struct {
	dir   string
	addrs []string
	accs  []*acceptor.Acceptor
	srvs  []*grpc.Server
	done  []chan struct{}
}

func startLocal(n int) (_ *localCluster, err error) {
	dir, err := os.MkdirTemp("", "kshaka-proposer-")
	if err != nil {
		return nil, err
	}
	lc := &localCluster{dir: dir}
	defer func() {
		if err != nil {
			lc.stop()
		}
	}()
	var members []membership.Member
	for i := range n {
		acc, err := acceptor.Open(acceptor.Options{
			Dir: filepath.Join(dir, fmt.Sprint(i)), CacheSize: 4 << 20, MemTableSize: 4 << 20, LockStripes: 256,
		})
		if err != nil {
			return nil, err
		}
		lc.accs = append(lc.accs, acc)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		srv := grpc.NewServer(acc.ServerOptions()...)
		acc.Register(srv)
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(lis) }()
		lc.srvs, lc.done = append(lc.srvs, srv), append(lc.done, done)
		lc.addrs = append(lc.addrs, lis.Addr().String())
		members = append(members, membership.Member{ID: fmt.Sprintf("a%d", i), Addr: lis.Addr().String(), Incarnation: acc.Incarnation()})
	}
	cfg := membership.Stable(1, members...)
	for _, a := range lc.addrs {
		if err := acceptortest.SetConfig(a, "", cfg); err != nil {
			return nil, err
		}
	}
	return lc, nil
}

func (lc *localCluster) stop() {
	for i, srv := range lc.srvs {
		srv.Stop()
		<-lc.done[i]
	}
	for _, acc := range lc.accs {
		_ = acc.Close()
	}
	_ = os.RemoveAll(lc.dir)
}
