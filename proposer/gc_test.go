package proposer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/proposer"
)

// TestCollectTombstones: on real acceptors, a deleted key's tombstone is
// written to every member, the floor epoch is installed and fenced, and the
// record is removed from every acceptor (docs/design.md §10). Afterwards the
// key is absent, a compare-and-swap on a version it had fails, and a
// recreated key's versions continue above every version it had, also for a
// client that still ran on the epoch before the GC.
func TestCollectTombstones(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs()[:1], nil)
	stale := newClient(t, cl.Addrs()[1:2], nil) // learns the floor epoch only from a refusal
	ctx := ctxT(t)
	mustPut(t, c, "old", "a")
	mustPut(t, c, "old", "b")
	if err := c.Delete(ctx, []byte("old")); err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, "other", "x")
	if err := c.Delete(ctx, []byte("other")); err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, "live", "x")
	if n := cl.Acceptor(0).Status().KeyCount; n != 3 {
		t.Fatalf("key count before GC %d, want 3", n)
	}
	mustGet(t, stale, "live")

	var progress []proposer.GCStats
	install := func(_ context.Context, cfg membership.Config) error {
		cl.Install(cfg)
		return nil
	}
	st, err := c.CollectTombstones(ctx, proposer.GCOptions{Retention: time.Microsecond, Install: install,
		Progress: func(s proposer.GCStats) { progress = append(progress, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if st.Scanned != 2 || st.Collected != 2 || st.Epochs != 1 || st.Skipped != 0 || len(progress) == 0 {
		t.Fatalf("stats %+v (progress %v), want 2 scanned, 2 collected, 1 epoch", st, progress)
	}
	cfg := cl.Config()
	if cfg.Epoch != 2 || cfg.VersionFloor != 3 || cfg.RemovedBallot.IsZero() || c.Config().Epoch != 2 {
		t.Fatalf("after GC the cluster runs %v (the client %v), want epoch 2 with VF=3", cfg, c.Config())
	}
	for i := range 3 {
		if n := cl.Acceptor(i).Status().KeyCount; n != 1 {
			t.Fatalf("acceptor %d holds %d keys after GC, want 1 (live)", i, n)
		}
	}

	if _, err := c.Get(ctx, []byte("old")); !errors.Is(err, proposer.ErrNotFound) {
		t.Fatalf("Get(old) = %v, want ErrNotFound", err)
	}
	for _, v := range []uint64{1, 2, 3} {
		if _, err := c.CompareAndSwap(ctx, []byte("old"), v, []byte("stale")); !errors.Is(err, proposer.ErrVersionMismatch) {
			t.Fatalf("CAS(old, v%d) = %v, want a version mismatch", v, err)
		}
	}
	v, err := c.CompareAndSwap(ctx, []byte("old"), 0, []byte("new"))
	if err != nil || v.Version <= 3 {
		t.Fatalf("recreating old: %v %v, want a version above 3", v, err)
	}
	if v2 := mustPut(t, c, "old", "newer"); v2.Version != v.Version+1 {
		t.Fatalf("next put on old: v%d, want v%d", v2.Version, v.Version+1)
	}
	// A client of the epoch before: refused, it adopts the floor epoch.
	w, err := stale.Put(ctx, []byte("other"), []byte("y"))
	if err != nil || w.Version <= 2 {
		t.Fatalf("stale client recreating other: %v %v, want a version above 2", w, err)
	}

	// Nothing left to collect.
	st, err = c.CollectTombstones(ctx, proposer.GCOptions{Retention: time.Microsecond, Install: install})
	if err != nil || st.Scanned != 0 || st.Epochs != 0 {
		t.Fatalf("second GC: %+v %v, want nothing to do", st, err)
	}
	if _, err := c.CollectTombstones(ctx, proposer.GCOptions{}); !errors.Is(err, proposer.ErrInvalidArgument) {
		t.Fatalf("GC without Install: %v, want ErrInvalidArgument", err)
	}
}

// TestCollectTombstonesNeedsEveryMember: with a member down the GC stops
// before it changes anything, and says which member it could not reach.
func TestCollectTombstonesNeedsEveryMember(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs()[:1], nil)
	ctx := ctxT(t)
	mustPut(t, c, "k", "a")
	if err := c.Delete(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	cl.Stop(2)
	install := func(context.Context, membership.Config) error {
		t.Fatal("the GC installed a configuration with a member down")
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := c.CollectTombstones(sctx, proposer.GCOptions{Retention: time.Microsecond, Install: install})
	if err == nil || !strings.Contains(err.Error(), "a2") {
		t.Fatalf("GC with a2 down: %v, want an error naming a2", err)
	}
	if n := cl.Acceptor(0).Status().KeyCount; n != 1 {
		t.Fatalf("acceptor a0 holds %d keys, want the tombstone still", n)
	}
}
