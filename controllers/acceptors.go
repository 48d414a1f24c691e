package controllers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/kshaka-io/kshaka/internal/adminclient"
	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/proposer"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// Acceptors is how the operator talks to acceptors: the Admin RPCs and the
// rescan's proposer. GRPCAcceptors is the implementation; tests may wrap it
// to inject failures.
type Acceptors interface {
	// Status asks the acceptor at addr for its identity, epoch and health.
	// A failure is reported in AcceptorInfo.Err.
	Status(ctx context.Context, addr string) AcceptorInfo
	// SetConfig installs cfg on the acceptor at addr.
	SetConfig(ctx context.Context, addr string, cfg membership.Config) error
	// ListKeys returns up to limit keys stored at addr after the key after,
	// in ascending order.
	ListKeys(ctx context.Context, addr string, after []byte, limit int) ([][]byte, error)
	// Rescan rescans keys with a proposer that bootstraps from endpoints
	// (proposer.Client.Rescan): every key gets the identity change, with a
	// fresh ballot above every ballot its prepare shows. It reports how
	// many keys were touched.
	Rescan(ctx context.Context, endpoints []string, keys [][]byte) (proposer.RescanStats, error)
	// CollectTombstones runs one tombstone collection pass (docs/design.md
	// §10) over the members of cfg, the installed stable configuration:
	// old tombstones are written to every member, install installs the
	// next epoch with raised floors and returns once it is fenced, then the
	// records are removed from every member. It reports what it did, also
	// when it fails part way.
	CollectTombstones(ctx context.Context, cfg membership.Config, opts GCPassOptions, install FloorInstaller) (GCPassResult, error)
}

// GRPCAcceptors talks to acceptors over gRPC. Connections are cached per
// cluster and address. Used directly, it dials every acceptor in
// plaintext; Dial gives the view of one cluster, whose connections use that
// cluster's Transport (mutual TLS with the operator's certificate). The zero
// value is ready to use.
type GRPCAcceptors struct {
	// DialOptions are added to every connection, Admin and the rescan's;
	// tests use grpc.WithContextDialer to reach in-process acceptors.
	DialOptions []grpc.DialOption
	// AdminToken is sent as `authorization: Bearer <token>` when set.
	AdminToken string
	// Timeout bounds each Admin call. Default 2s.
	Timeout time.Duration

	mu struct {
		sync.Mutex
		conns map[connKey]*grpc.ClientConn
		// states are the clusters' transports, which their connections'
		// credentials read at each handshake.
		states map[string]*transportState
		plain  *transportState
	}
}

type connKey struct{ cluster, addr string }

var (
	_ Acceptors = (*GRPCAcceptors)(nil)
	_ Dialer    = (*GRPCAcceptors)(nil)
)

// clusterAcceptors are the Acceptors of one cluster (GRPCAcceptors.Dial).
type clusterAcceptors struct {
	g       *GRPCAcceptors
	cluster string
	state   *transportState
}

// Dial implements Dialer: it records t as the cluster's transport, used
// from the next handshake on by every connection to the cluster's
// acceptors, and returns the cluster's Acceptors.
func (g *GRPCAcceptors) Dial(t Transport) Acceptors {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.states == nil {
		g.mu.states = map[string]*transportState{}
	}
	s, ok := g.mu.states[t.Cluster]
	if !ok {
		s = &transportState{}
		g.mu.states[t.Cluster] = s
	}
	s.set(t)
	return &clusterAcceptors{g: g, cluster: t.Cluster, state: s}
}

// plain is the all-plaintext view GRPCAcceptors' own methods use.
func (g *GRPCAcceptors) plain() *clusterAcceptors {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.plain == nil {
		g.mu.plain = &transportState{allPlaintext: true}
	}
	return &clusterAcceptors{g: g, cluster: "\x00plaintext", state: g.mu.plain}
}

func (a *clusterAcceptors) creds() grpc.DialOption {
	return grpc.WithTransportCredentials(clusterCredentials{state: a.state})
}

func (a *clusterAcceptors) admin(addr string) (kshakav1.AdminClient, error) {
	g := a.g
	g.mu.Lock()
	defer g.mu.Unlock()
	k := connKey{a.cluster, addr}
	if cc, ok := g.mu.conns[k]; ok {
		return kshakav1.NewAdminClient(cc), nil
	}
	// One dialer for the Admin service (internal/adminclient). The
	// credentials pick TLS or plaintext per pod at each handshake, so the
	// token goes as per-call credentials that do not insist on TLS: a pod
	// of a cluster in mode Disabled is plaintext, and that mode says loudly
	// that its traffic is unauthenticated.
	var opts []grpc.DialOption
	if g.AdminToken != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(adminclient.Bearer(g.AdminToken, false)))
	}
	conn, err := adminclient.Dial(addr, clusterCredentials{state: a.state}, "", append(opts, g.DialOptions...)...)
	if err != nil {
		return nil, err
	}
	cc := conn.ClientConn()
	if g.mu.conns == nil {
		g.mu.conns = map[connKey]*grpc.ClientConn{}
	}
	g.mu.conns[k] = cc
	return kshakav1.NewAdminClient(cc), nil
}

func (g *GRPCAcceptors) call(ctx context.Context) (context.Context, context.CancelFunc) {
	t := g.Timeout
	if t == 0 {
		t = 2 * time.Second
	}
	return context.WithTimeout(ctx, t)
}

// Status implements Acceptors, in plaintext.
func (g *GRPCAcceptors) Status(ctx context.Context, addr string) AcceptorInfo {
	return g.plain().Status(ctx, addr)
}

// SetConfig implements Acceptors, in plaintext.
func (g *GRPCAcceptors) SetConfig(ctx context.Context, addr string, cfg membership.Config) error {
	return g.plain().SetConfig(ctx, addr, cfg)
}

// ListKeys implements Acceptors, in plaintext.
func (g *GRPCAcceptors) ListKeys(ctx context.Context, addr string, after []byte, limit int) ([][]byte, error) {
	return g.plain().ListKeys(ctx, addr, after, limit)
}

// Rescan implements Acceptors, in plaintext.
func (g *GRPCAcceptors) Rescan(ctx context.Context, endpoints []string, keys [][]byte) (proposer.RescanStats, error) {
	return g.plain().Rescan(ctx, endpoints, keys)
}

// CollectTombstones implements Acceptors, in plaintext.
func (g *GRPCAcceptors) CollectTombstones(ctx context.Context, cfg membership.Config, opts GCPassOptions, install FloorInstaller) (GCPassResult, error) {
	return g.plain().CollectTombstones(ctx, cfg, opts, install)
}

// CollectTombstones implements Acceptors with the library's procedure
// (proposer.Client.CollectTombstones) on a proposer that lives for one
// pass, dialled with the cluster's credentials: the operator's certificate
// has the admin role that ListKeys and Collect need. The proposer must see
// cfg's epoch, so that the floor epoch it asks for follows the recorded
// configuration.
func (a *clusterAcceptors) CollectTombstones(ctx context.Context, cfg membership.Config, opts GCPassOptions, install FloorInstaller) (GCPassResult, error) {
	var endpoints []string
	for _, m := range cfg.Members {
		endpoints = append(endpoints, m.Addr)
	}
	dial := append([]grpc.DialOption{a.creds()}, a.g.DialOptions...)
	p, err := proposer.New(ctx, proposer.Config{Endpoints: endpoints, DialOptions: dial})
	if err != nil {
		return GCPassResult{}, fmt.Errorf("while starting the tombstone collection's proposer: %w", err)
	}
	defer func() { _ = p.Close() }()
	if got := p.Config().Epoch; got != cfg.Epoch {
		return GCPassResult{}, fmt.Errorf("the acceptors serve epoch %d, the recorded configuration is epoch %d: no pass until they agree", got, cfg.Epoch)
	}
	gopts := proposer.GCOptions{
		Retention:  opts.Retention,
		BatchSize:  opts.Batch,
		Install:    install,
		AdminToken: a.g.AdminToken,
		Now:        opts.Now,
	}
	if pace := GCPacer(ctx, opts.KeysPerSecond); pace != nil {
		gopts.Progress = func(st proposer.GCStats) { pace(st.Scanned) }
	}
	st, err := p.CollectTombstones(ctx, gopts)
	res := GCPassResult{Scanned: int64(st.Scanned), Collected: int64(st.Collected), Skipped: int64(st.Skipped), Live: int64(st.Live), FloorEpochs: st.Epochs}
	if err != nil {
		return res, fmt.Errorf("while collecting tombstones (%d collected so far): %w", st.Collected, err)
	}
	return res, nil
}

// Status implements Acceptors.
func (a *clusterAcceptors) Status(ctx context.Context, addr string) AcceptorInfo {
	c, err := a.admin(addr)
	if err != nil {
		return AcceptorInfo{Err: err.Error()}
	}
	ctx, cancel := a.g.call(ctx)
	defer cancel()
	r, err := c.Status(ctx, &kshakav1.StatusRequest{})
	if err != nil {
		return AcceptorInfo{Err: status.Convert(err).Message()}
	}
	if r.GetIncarnation() == 0 {
		return AcceptorInfo{Err: "the acceptor reported incarnation 0"}
	}
	return AcceptorInfo{
		Incarnation: r.GetIncarnation(),
		Epoch:       r.GetEpoch(),
		Admitted:    r.GetAdmitted(),
		Healthy:     r.GetHealthy(),
		Reason:      r.GetReason(),
		KeyCount:    r.GetKeyCount(),
	}
}

// SetConfig implements Acceptors.
func (a *clusterAcceptors) SetConfig(ctx context.Context, addr string, cfg membership.Config) error {
	c, err := a.admin(addr)
	if err != nil {
		return err
	}
	ctx, cancel := a.g.call(ctx)
	defer cancel()
	if _, err := c.SetConfig(ctx, &kshakav1.SetConfigRequest{Config: wire.ConfigToProto(cfg)}); err != nil {
		return fmt.Errorf("while installing epoch %d on %s: %w", cfg.Epoch, addr, err)
	}
	return nil
}

// ListKeys implements Acceptors.
func (a *clusterAcceptors) ListKeys(ctx context.Context, addr string, after []byte, limit int) ([][]byte, error) {
	c, err := a.admin(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := a.g.call(ctx)
	defer cancel()
	stream, err := c.ListKeys(ctx, &kshakav1.ListKeysRequest{StartAfter: after, Limit: uint64(limit), PageSize: uint32(min(limit, 1000))})
	if err != nil {
		return nil, fmt.Errorf("while listing keys of %s: %w", addr, err)
	}
	var keys [][]byte
	for {
		page, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return keys, nil
		}
		if err != nil {
			return nil, fmt.Errorf("while listing keys of %s: %w", addr, err)
		}
		keys = append(keys, page.GetKeys()...)
	}
}

// Rescan implements Acceptors with a proposer.Client that lives for one
// call. It dials with the cluster's credentials (the operator's admin
// certificate: the admin role may also use the data path).
func (a *clusterAcceptors) Rescan(ctx context.Context, endpoints []string, keys [][]byte) (proposer.RescanStats, error) {
	opts := append([]grpc.DialOption{a.creds()}, a.g.DialOptions...)
	p, err := proposer.New(ctx, proposer.Config{Endpoints: endpoints, DialOptions: opts})
	if err != nil {
		return proposer.RescanStats{}, fmt.Errorf("while starting the rescan's proposer: %w", err)
	}
	defer func() { _ = p.Close() }()
	return p.Rescan(ctx, keys...)
}

// Close closes the cached connections.
func (g *GRPCAcceptors) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for k, cc := range g.mu.conns {
		errs = append(errs, cc.Close())
		delete(g.mu.conns, k)
	}
	return errors.Join(errs...)
}

// MergeKeyPages merges what each acceptor listed after the same cursor, each
// page holding up to limit keys in ascending order. An acceptor that
// returned fewer than limit keys has no more; one that returned limit keys
// may have more after its last one, so the merged batch stops at the
// smallest such last key: every key up to there is listed by every acceptor
// that holds it. It returns the sorted, deduplicated keys of the batch, the
// new cursor, and whether the listing is complete.
func MergeKeyPages(pages [][][]byte, limit int) (keys [][]byte, cursor []byte, done bool) {
	var bound []byte
	done = true
	for _, p := range pages {
		if len(p) >= limit && limit > 0 {
			last := p[len(p)-1]
			if done || bytes.Compare(last, bound) < 0 {
				bound = last
			}
			done = false
		}
	}
	for _, p := range pages {
		for _, k := range p {
			if done || bytes.Compare(k, bound) <= 0 {
				keys = append(keys, k)
			}
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	keys = slices.CompactFunc(keys, bytes.Equal)
	switch {
	case !done:
		cursor = bound
	case len(keys) > 0:
		cursor = keys[len(keys)-1]
	}
	return keys, cursor, done
}

// RescanBatch carries out an ActionRescan: it checks that each source is
// still the expected incarnation, lists up to batch keys after the cursor
// from every source, and rescans the merged batch under a.Config: every key
// is touched (docs/design.md §5).
func RescanBatch(ctx context.Context, acc Acceptors, a Action, batch int) (RescanResult, error) {
	pages := make([][][]byte, len(a.Targets))
	for i, t := range a.Targets {
		if info := acc.Status(ctx, t.Addr); info.Err != "" || info.Incarnation != t.Incarnation || info.Epoch < a.Config.Epoch {
			return RescanResult{}, fmt.Errorf("while rescanning: %s is not incarnation %s at epoch %d any more (%+v)",
				t.PodName, FormatIncarnation(t.Incarnation), a.Config.Epoch, info)
		}
		keys, err := acc.ListKeys(ctx, t.Addr, a.Cursor, batch)
		if err != nil {
			return RescanResult{}, fmt.Errorf("while rescanning: %w", err)
		}
		pages[i] = keys
	}
	keys, cursor, done := MergeKeyPages(pages, batch)
	var st proposer.RescanStats
	if len(keys) > 0 {
		var err error
		if st, err = acc.Rescan(ctx, a.Endpoints, keys); err != nil {
			return RescanResult{}, fmt.Errorf("while rescanning %d keys (%d touched): %w", len(keys), st.Touched, err)
		}
	}
	return RescanResult{Cursor: cursor, Keys: len(keys), Done: done}, nil
}

// Install carries out an ActionInstall: on each target in order, check its
// incarnation, then install the configuration. It stops at the first
// failure.
func Install(ctx context.Context, acc Acceptors, a Action) error {
	for _, t := range a.Targets {
		info := acc.Status(ctx, t.Addr)
		if info.Err != "" {
			return fmt.Errorf("while installing epoch %d: %s is unreachable: %s", a.Config.Epoch, t.PodName, info.Err)
		}
		if info.Incarnation != t.Incarnation {
			return fmt.Errorf("while installing epoch %d: %s reports incarnation %s, want %s",
				a.Config.Epoch, t.PodName, FormatIncarnation(info.Incarnation), FormatIncarnation(t.Incarnation))
		}
		if info.Epoch >= a.Config.Epoch {
			continue
		}
		if err := acc.SetConfig(ctx, t.Addr, a.Config); err != nil {
			return err
		}
	}
	return nil
}
