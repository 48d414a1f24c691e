package acceptortest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/internal/adminclient"
	"github.com/kshaka-io/kshaka/internal/tlsreload"
	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// gracefulTimeout bounds Stop's graceful phase; a test that leaves a stream
// open would otherwise hang it. After it, in-flight RPCs are cancelled.
const gracefulTimeout = 10 * time.Second

// Cluster is a set of real acceptors serving gRPC on 127.0.0.1. Its methods
// are safe for concurrent use; they fail the test on error.
type Cluster struct {
	t      testing.TB
	modify func(i int, o *acceptor.Options)
	pki    *clusterPKI // nil: plaintext

	mu    sync.Mutex
	nodes []*node
	cfg   membership.Config
}

type node struct {
	id    string
	token string // admin token of the running acceptor
	dir   string
	addr  string
	acc   *acceptor.Acceptor
	srv   *grpc.Server
	tls   *tlsreload.Server // nil: plaintext
	done  chan struct{}     // closed when Serve returns
}

func (n *node) running() bool { return n.srv != nil }

// StartCluster starts n acceptors with IDs "a0".."a<n-1>", each with its own
// data directory under t.TempDir() and its own grpc.Server on 127.0.0.1:0,
// and installs membership.Stable(1, members...) on all of them through the
// Admin SetConfig RPC. Everything is stopped when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartClusterWith(t, n, nil)
}

// StartClusterWith is StartCluster with a hook that adjusts each acceptor's
// Options (limits, admin token, FS...) before it is opened, at start and at
// every Restart. Dir and the Pebble sizes are set before the hook runs.
func StartClusterWith(t testing.TB, n int, modify func(i int, o *acceptor.Options)) *Cluster {
	t.Helper()
	return startCluster(t, n, modify, false)
}

// StartTLSCluster is StartClusterWith serving mutual TLS, as on Kubernetes
// (docs/design.md §9): the cluster makes a CA, a server certificate per
// acceptor for 127.0.0.1 and localhost, and an admin certificate it
// installs configurations with; every acceptor runs with
// acceptor.Options.MutualTLS. ClientDir issues client certificates.
func StartTLSCluster(t testing.TB, n int, modify func(i int, o *acceptor.Options)) *Cluster {
	t.Helper()
	return startCluster(t, n, modify, true)
}

func startCluster(t testing.TB, n int, modify func(i int, o *acceptor.Options), withTLS bool) *Cluster {
	t.Helper()
	c := &Cluster{t: t, modify: modify}
	t.Cleanup(c.shutdown)
	base := t.TempDir()
	if withTLS {
		c.pki = newClusterPKI(t, filepath.Join(base, "pki"))
	}
	var members []membership.Member
	for i := range n {
		nd := &node{id: fmt.Sprintf("a%d", i), dir: filepath.Join(base, fmt.Sprintf("a%d", i))}
		c.nodes = append(c.nodes, nd)
		c.start(i, "127.0.0.1:0")
		members = append(members, membership.Member{ID: nd.id, Addr: nd.addr, Incarnation: nd.acc.Incarnation()})
	}
	c.Install(membership.Stable(1, members...))
	return c
}

func (c *Cluster) options(i int) acceptor.Options {
	o := acceptor.Options{
		Dir:          c.nodes[i].dir,
		CacheSize:    4 << 20,
		MemTableSize: 4 << 20,
		LockStripes:  256,
	}
	o.MutualTLS = c.pki != nil
	if c.modify != nil {
		c.modify(i, &o)
	}
	return o
}

// start opens node i's acceptor and serves it on addr. Caller holds c.mu or
// has not shared c yet.
func (c *Cluster) start(i int, addr string) {
	c.t.Helper()
	nd := c.nodes[i]
	opts := c.options(i)
	nd.token = opts.AdminToken
	acc, err := acceptor.Open(opts)
	if err != nil {
		c.t.Fatalf("acceptortest: opening acceptor %s: %v", nd.id, err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		_ = acc.Close()
		c.t.Fatalf("acceptortest: listening for acceptor %s on %s: %v", nd.id, addr, err)
	}
	so := acc.ServerOptions()
	nd.tls = nil
	if c.pki != nil {
		src, err := tlsreload.NewServer(c.pki.serverFiles(nd.id), tlsreload.Options{Interval: -1})
		if err != nil {
			_ = lis.Close()
			_ = acc.Close()
			c.t.Fatalf("acceptortest: loading the TLS files of acceptor %s: %v", nd.id, err)
		}
		nd.tls = src
		so = append(so, grpc.Creds(credentials.NewTLS(src.TLSConfig())))
	}
	srv := grpc.NewServer(so...)
	acc.Register(srv)
	nd.acc, nd.srv, nd.addr, nd.done = acc, srv, lis.Addr().String(), make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		_ = srv.Serve(lis)
	}(nd.done)
}

// Addrs returns the acceptors' addresses, by index (stopped ones included).
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		out[i] = nd.addr
	}
	return out
}

// Config returns the configuration last installed by the cluster.
func (c *Cluster) Config() membership.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Clone()
}

// Acceptor returns acceptor i (nil while it is stopped).
func (c *Cluster) Acceptor(i int) *acceptor.Acceptor {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].acc
}

// Stop stops acceptor i gracefully (in-flight RPCs finish), then closes its
// store. Its data directory is kept for Restart.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stop(i, true)
}

// Kill stops acceptor i abruptly: its listener and connections are closed at
// once and in-flight RPCs are cancelled (clients see connection errors), then
// its store is closed. Pebble is still closed cleanly (it must be, to be
// reopened in the same process), but every acknowledged write was already
// synced, which is what survives a real crash; acceptor's own tests cover
// power loss with vfs.NewCrashableMem.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stop(i, false)
}

func (c *Cluster) stop(i int, graceful bool) {
	c.t.Helper()
	nd := c.nodes[i]
	if !nd.running() {
		return
	}
	if graceful {
		stopped := make(chan struct{})
		go func() { nd.srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(gracefulTimeout):
			nd.srv.Stop()
			<-stopped
		}
	} else {
		nd.srv.Stop()
	}
	<-nd.done
	if nd.tls != nil {
		nd.tls.Close()
	}
	if err := nd.acc.Close(); err != nil {
		c.t.Errorf("acceptortest: closing acceptor %s: %v", nd.id, err)
	}
	nd.acc, nd.srv, nd.tls = nil, nil, nil
}

// Restart reopens acceptor i on its data directory (it keeps its incarnation,
// configuration and data) on its previous address when that is free. When the
// port was taken meanwhile it listens on a new one and installs the next
// epoch, with the new address, on every running member.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stop(i, true)
	nd := c.nodes[i]
	if lis, err := net.Listen("tcp", nd.addr); err == nil {
		_ = lis.Close()
		c.start(i, nd.addr)
		return
	}
	c.moveLocked(i)
}

// Move restarts acceptor i on a new port (as a pod that comes back with a
// new IP) and installs the next epoch, with the new address, on every
// running member, as the operator does.
func (c *Cluster) Move(i int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stop(i, true)
	c.moveLocked(i)
}

// moveLocked starts the stopped acceptor i on a new port and installs the
// next epoch with its new address. Caller holds c.mu.
func (c *Cluster) moveLocked(i int) {
	nd := c.nodes[i]
	c.start(i, "127.0.0.1:0")
	cfg := c.cfg.Clone()
	cfg.Epoch++
	for j := range cfg.Members {
		if cfg.Members[j].ID == nd.id {
			cfg.Members[j].Addr = nd.addr
		}
	}
	c.install(cfg)
}

// Install installs cfg on every running acceptor through the Admin SetConfig
// RPC and records it as the cluster's configuration.
func (c *Cluster) Install(cfg membership.Config) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.install(cfg)
}

func (c *Cluster) install(cfg membership.Config) {
	c.t.Helper()
	for _, nd := range c.nodes {
		if !nd.running() {
			continue
		}
		if err := c.setConfig(nd.addr, nd.token, cfg); err != nil {
			c.t.Fatalf("acceptortest: installing %v on %s: %v", cfg, nd.id, err)
		}
	}
	c.cfg = cfg.Clone()
}

// SetConfig installs cfg on the acceptor at addr through the Admin SetConfig
// RPC, in plaintext, with the admin token when it is not empty.
func SetConfig(addr, token string, cfg membership.Config) error {
	return setConfig(addr, nil, token, cfg)
}

// setConfig installs cfg on the acceptor at addr as the cluster's admin.
func (c *Cluster) setConfig(addr, token string, cfg membership.Config) error {
	return setConfig(addr, c.AdminCredentials(), token, cfg)
}

func setConfig(addr string, creds credentials.TransportCredentials, token string, cfg membership.Config) error {
	conn, err := adminclient.Dial(addr, creds, token)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = conn.SetConfig(ctx, &kshakav1.SetConfigRequest{Config: wire.ConfigToProto(cfg)})
	return err
}

func (c *Cluster) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.nodes {
		c.stop(i, false)
	}
}
