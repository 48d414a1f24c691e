package proposer

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

	"github.com/kshaka-io/kshaka/internal/adminclient"
	"github.com/kshaka-io/kshaka/internal/keyproc"
	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/membership/gc"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
	"github.com/kshaka-io/kshaka/register"
)

// Defaults of GCOptions.
const (
	DefaultGCRetention = 24 * time.Hour
	DefaultGCBatchSize = 1000
	// maxCollectItems bounds one Admin Collect call (below the acceptors'
	// default batch limit of 4096 items).
	maxCollectItems = 1000
)

// GCOptions configure Client.CollectTombstones.
type GCOptions struct {
	// Retention: only tombstones whose accepted ballot is older than this
	// are collected (ballot counters are wall-clock microseconds). Default
	// DefaultGCRetention (24 h).
	Retention time.Duration
	// BatchSize is how many candidate keys one floor epoch covers. Default
	// DefaultGCBatchSize.
	BatchSize int
	// Install installs a configuration on every member and returns once it
	// is installed (or fails). Configurations are owned by whoever runs
	// the cluster: the operator, or `kshaka local`'s control plane and the
	// CLI with Admin SetConfig. InstallWithSetConfig is one for a cluster
	// without an operator. Required unless DryRun.
	Install func(ctx context.Context, cfg membership.Config) error
	// AdminToken, when set, is sent as `authorization: Bearer <token>` with
	// the admin RPCs the GC makes (ListKeys, Collect); the client's
	// certificate must have the admin role when the acceptors require
	// mutual TLS.
	AdminToken string
	// DryRun only lists and counts the candidates.
	DryRun bool
	// FencePoll is how often the fence of the floor epoch is checked.
	// Default 50 ms. FenceTimeout bounds the wait for every member to
	// acknowledge it (a member down blocks GC); default 1 minute. The run
	// then fails, safely: the floor epoch stays installed and the
	// tombstones stay until a later run.
	FencePoll, FenceTimeout time.Duration
	// Progress, when set, is called after each batch with the totals so
	// far.
	Progress func(GCStats)
	// Now is the clock the retention is measured on. Default time.Now.
	Now func() time.Time
}

// GCStats count what CollectTombstones did.
type GCStats struct {
	// Scanned counts the candidate tombstones listed.
	Scanned int
	// Collected counts the keys removed from every member.
	Collected int
	// Live counts candidates written again since (not collected).
	Live int
	// Skipped counts candidates left for a later run: their write missed
	// a member, or a member kept the record.
	Skipped int
	// Epochs counts the floor epochs installed.
	Epochs int
}

// CollectTombstones is the tombstone GC of docs/design.md §10 (the
// procedure of package membership/gc) under the client's configuration,
// which must be stable: no membership change may run until it returns. In
// batches of candidate tombstones older than the retention, listed from
// every member, it writes each tombstone to every member with an identity
// change, installs (through opts.Install) the next epoch with the GC floors
// raised, waits until every member acknowledged it, and removes the
// records with Admin Collect. The client needs the admin role for ListKeys
// and Collect. Keys that could not be collected are left for a later run
// and counted as skipped; an error ends the run with the stats so far.
func (c *Client) CollectTombstones(ctx context.Context, opts GCOptions) (GCStats, error) {
	if opts.Retention == 0 {
		opts.Retention = DefaultGCRetention
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultGCBatchSize
	}
	if opts.FencePoll <= 0 {
		opts.FencePoll = 50 * time.Millisecond
	}
	if opts.FenceTimeout <= 0 {
		opts.FenceTimeout = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch {
	case opts.Retention < 0:
		return GCStats{}, invalidf("GC retention %v is negative", opts.Retention)
	case opts.Install == nil && !opts.DryRun:
		return GCStats{}, invalidf("GCOptions.Install is required: the GC installs a configuration that raises its floors")
	}
	if err := c.enter(); err != nil {
		return GCStats{}, err
	}
	defer c.wg.Done()
	g := &gcRun{c: c, opts: opts, before: register.ClockCounter(opts.Now().Add(-opts.Retention))}
	if opts.AdminToken != "" {
		if c.sec.creds == nil {
			for _, m := range c.config().Members {
				if !adminclient.IsLoopback(m.Addr) {
					return GCStats{}, invalidf("refusing to send the admin token in plaintext to %s (%s): use TLS, or loopback addresses", m.ID, m.Addr)
				}
			}
		}
		g.call = []grpc.CallOption{grpc.PerRPCCredentials(adminclient.Bearer(opts.AdminToken, c.sec.creds != nil))}
	}
	var after []byte
	for {
		keys, next, done, err := g.candidates(ctx, after)
		if err != nil {
			return g.stats, err
		}
		g.stats.Scanned += len(keys)
		if !opts.DryRun && len(keys) > 0 {
			if err := g.batch(ctx, keys); err != nil {
				return g.stats, err
			}
		}
		if opts.Progress != nil {
			opts.Progress(g.stats)
		}
		if done {
			return g.stats, nil
		}
		after = next
	}
}

// gcRun is one CollectTombstones call.
type gcRun struct {
	c      *Client
	opts   GCOptions
	before uint64 // accepted_before: the retention's ballot counter
	call   []grpc.CallOption
	stats  GCStats
}

// candidates lists the next batch: the tombstones every member lists after
// after, merged, cut at the lowest key through which every member has
// listed, so no key below the cut is missed. done: no member has more.
func (g *gcRun) candidates(ctx context.Context, after []byte) (keys [][]byte, next []byte, done bool, err error) {
	cfg := g.c.config()
	type listing struct {
		keys    [][]byte
		through []byte
		done    bool
		err     error
	}
	ms := cfg.Members
	ls := make([]listing, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			l := &ls[i]
			l.keys, l.through, l.done, l.err = g.list(ctx, m, after)
		})
	}
	wg.Wait()
	done = true
	var cut []byte
	for i, l := range ls {
		if l.err != nil {
			return nil, nil, false, fmt.Errorf("while listing the tombstones of %s (%s): %w", ms[i].ID, ms[i].Addr, l.err)
		}
		if !l.done {
			if done || bytes.Compare(l.through, cut) < 0 {
				cut = l.through
			}
			done = false
		}
	}
	seen := map[string]bool{}
	for _, l := range ls {
		for _, k := range l.keys {
			if (done || bytes.Compare(k, cut) <= 0) && !seen[string(k)] {
				seen[string(k)] = true
				keys = append(keys, k)
			}
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys, cut, done, nil
}

// list is one member's filtered ListKeys of up to BatchSize keys.
func (g *gcRun) list(ctx context.Context, m membership.Member, after []byte) (keys [][]byte, through []byte, done bool, err error) {
	admin, err := g.c.admin(m.Addr)
	if err != nil {
		return nil, nil, false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := admin.ListKeys(ctx, &kshakav1.ListKeysRequest{
		StartAfter: after, Limit: uint64(g.opts.BatchSize), PageSize: uint32(min(g.opts.BatchSize, 1000)),
		TombstonesOnly: true, AcceptedBefore: g.before,
	}, g.call...)
	if err != nil {
		return nil, nil, false, g.c.sec.describe(m.Addr, err)
	}
	through = after
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			// The stream ends at the store's end, or at the limit.
			return keys, through, len(keys) < g.opts.BatchSize, nil
		}
		if err != nil {
			return nil, nil, false, g.c.sec.describe(m.Addr, err)
		}
		keys = append(keys, resp.GetKeys()...)
		if t := resp.GetScannedThrough(); len(t) > 0 {
			through = t
		}
		if len(keys) > 0 && bytes.Compare(keys[len(keys)-1], through) > 0 {
			through = keys[len(keys)-1]
		}
	}
}

// batch runs the GC machine on one batch of candidates.
func (g *gcRun) batch(ctx context.Context, keys [][]byte) error {
	cfg := g.c.config()
	m, err := gc.New(cfg, keys, gc.Controls{})
	if err != nil {
		return err
	}
	for {
		a := m.Next()
		switch a.Step {
		case gc.StepWrite:
			g.write(ctx, m, a.Keys)
		case gc.StepInstall:
			if err := g.install(ctx, m, a); err != nil {
				return err
			}
		case gc.StepCollect:
			g.collect(ctx, m, a)
		case gc.StepDone:
			st := m.Stats()
			g.stats.Collected += st.Collected
			g.stats.Live += st.Live
			g.stats.Skipped += st.Unreached + st.Kept
			if st.Epoch > 0 {
				g.stats.Epochs++
			}
			return ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// write runs the GC write (keyproc.GCOp) on every key and feeds the results.
func (g *gcRun) write(ctx context.Context, m *gc.Machine, keys [][]byte) {
	res := make([]gc.WriteResult, len(keys))
	_ = g.c.eachKey(ctx, keys, func(ctx context.Context, k []byte) error {
		i := slices.IndexFunc(keys, func(o []byte) bool { return bytes.Equal(o, k) })
		r := g.c.do(ctx, clone(k), &op{Op: keyproc.GCOp()})
		if r.err == nil {
			res[i] = gc.WriteResult{OK: true, Value: r.value, Ballot: r.ballot}
		}
		return nil
	})
	for i, k := range keys {
		m.Written(k, res[i])
	}
}

// install installs the floor epoch through opts.Install, adopts it, and
// waits until every member acknowledged it (the fence).
func (g *gcRun) install(ctx context.Context, m *gc.Machine, a gc.Action) error {
	if err := g.opts.Install(ctx, a.Config); err != nil {
		return fmt.Errorf("while installing the GC floor epoch %d: %w", a.Config.Epoch, err)
	}
	g.c.adopt(a.Config.Clone())
	t := time.NewTicker(g.opts.FencePoll)
	defer t.Stop()
	deadline := time.NewTimer(g.opts.FenceTimeout)
	defer deadline.Stop()
	for {
		for _, mem := range m.Next().Targets {
			if e, err := g.epoch(ctx, mem); err == nil {
				m.Acked(mem.Incarnation, e)
			}
		}
		if m.Next().Step != gc.StepInstall {
			return nil
		}
		var waiting []string
		for _, mem := range m.Next().Targets {
			waiting = append(waiting, fmt.Sprintf("%s (%s)", mem.ID, mem.Addr))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("while waiting until every member acknowledged the GC floor epoch %d (waiting for %v): %w",
				a.Config.Epoch, waiting, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("%v did not acknowledge the GC floor epoch %d within %v: check that every member runs, then run the GC again",
				waiting, a.Config.Epoch, g.opts.FenceTimeout)
		case <-t.C:
		}
	}
}

func (g *gcRun) epoch(ctx context.Context, mem membership.Member) (uint64, error) {
	admin, err := g.c.admin(mem.Addr)
	if err != nil {
		return 0, err
	}
	resp, err := admin.GetConfig(ctx, &kshakav1.GetConfigRequest{})
	if err != nil {
		return 0, err
	}
	if resp.GetIncarnation() != mem.Incarnation {
		return 0, fmt.Errorf("%s answers with incarnation %x, not %x", mem.Addr, resp.GetIncarnation(), mem.Incarnation)
	}
	return resp.GetConfig().GetEpoch(), nil
}

// collect sends Admin Collect to every member and feeds the verdicts; a
// member that fails keeps its records.
func (g *gcRun) collect(ctx context.Context, m *gc.Machine, a gc.Action) {
	var wg sync.WaitGroup
	verdicts := make([][]gc.Verdict, len(a.Targets))
	for i, mem := range a.Targets {
		wg.Go(func() { verdicts[i] = g.collectOn(ctx, mem, a.Items) })
	}
	wg.Wait()
	for i, mem := range a.Targets {
		m.Collected(mem.Incarnation, verdicts[i])
	}
}

func (g *gcRun) collectOn(ctx context.Context, mem membership.Member, items []gc.Item) []gc.Verdict {
	admin, err := g.c.admin(mem.Addr)
	if err != nil {
		return nil
	}
	out := make([]gc.Verdict, 0, len(items))
	for chunk := range slices.Chunk(items, maxCollectItems) {
		req := &kshakav1.CollectRequest{Items: make([]*kshakav1.CollectItem, len(chunk))}
		for i, it := range chunk {
			req.Items[i] = &kshakav1.CollectItem{Key: it.Key, Ballot: wire.BallotToProto(it.Ballot), Version: it.Version}
		}
		resp, err := admin.Collect(ctx, req, g.call...)
		if err != nil || len(resp.GetResults()) != len(chunk) {
			return nil
		}
		for _, r := range resp.GetResults() {
			out = append(out, verdictFromProto(r.GetVerdict()))
		}
	}
	return out
}

func verdictFromProto(v kshakav1.CollectVerdict) gc.Verdict {
	switch v {
	case kshakav1.CollectVerdict_COLLECT_VERDICT_REMOVED:
		return gc.Removed
	case kshakav1.CollectVerdict_COLLECT_VERDICT_ABSENT:
		return gc.Absent
	case kshakav1.CollectVerdict_COLLECT_VERDICT_FLOORS_NOT_INSTALLED:
		return gc.FloorsNotInstalled
	}
	return gc.Changed
}

// InstallWithSetConfig returns a GCOptions.Install for a cluster without an
// operator (`kshaka local`, the CLI): Admin SetConfig on every member of
// the configuration, over connections dialled with dial (which must carry
// the admin identity and token). It fails when any member refuses or
// cannot be reached; a member that already has the configuration counts as
// installed.
func InstallWithSetConfig(dial func(addr string) (kshakav1.AdminClient, func() error, error)) func(context.Context, membership.Config) error {
	return func(ctx context.Context, cfg membership.Config) error {
		var errs []error
		for _, m := range cfg.Members {
			admin, closeFn, err := dial(m.Addr)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): %w", m.ID, m.Addr, err))
				continue
			}
			_, err = admin.SetConfig(ctx, &kshakav1.SetConfigRequest{Config: wire.ConfigToProto(cfg)})
			if cerr := closeFn(); err == nil {
				err = cerr
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("while installing epoch %d on %s (%s): %w", cfg.Epoch, m.ID, m.Addr, err))
			}
		}
		return errors.Join(errs...)
	}
}
