package acceptor

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// walSyncCounter counts fsyncs of WAL files through an errorfs injector that
// never injects anything.
type walSyncCounter struct{ n atomic.Int64 }

func (c *walSyncCounter) fs(base vfs.FS) vfs.FS {
	return errorfs.Wrap(base, errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if strings.HasSuffix(op.Path, ".log") {
				c.n.Add(1)
			}
		}
		return nil
	}))
}

// TestBatchIsOneSync checks docs/design.md §2.6: a batch RPC of N items is one Pebble
// batch committed with one Sync, i.e. one WAL fsync.
func TestBatchIsOneSync(t *testing.T) {
	var walSyncs walSyncCounter
	opts := testOptions(t)
	opts.FS = walSyncs.fs(vfs.Default)
	n := startAdmitted(t, opts)
	const items = 200

	prepare := &kshakav1.PrepareRequest{Epoch: 1}
	accept := &kshakav1.AcceptRequest{Epoch: 1}
	read := &kshakav1.ReadRequest{Epoch: 1}
	for i := range items {
		k := []byte(fmt.Sprintf("key-%03d", i))
		prepare.Items = append(prepare.Items, &kshakav1.PrepareItem{Key: k, Ballot: b(1, 1)})
		accept.Items = append(accept.Items, &kshakav1.AcceptItem{Key: k, Ballot: b(1, 1), Value: val(1, "v"), Next: b(2, 1)})
		read.Keys = append(read.Keys, k)
	}
	ctx := context.Background()
	steps := []struct {
		name      string
		call      func() error
		wantSyncs uint64
	}{
		{"prepare of all keys", func() error { _, err := n.data.Prepare(ctx, prepare); return err }, 1},
		{"accept of all keys", func() error { _, err := n.data.Accept(ctx, accept); return err }, 1},
		{"read of all keys", func() error { _, err := n.data.Read(ctx, read); return err }, 0},
		{"prepare that conflicts on every key", func() error { _, err := n.data.Prepare(ctx, prepare); return err }, 0},
		// The first prepare raised the promise floor to 1+PromiseFloorStep:
		// prepares below it are not synced, the first one at it is.
		{"prepare below the promise floor", func() error { return prepareAll(n, prepare, b(3, 1)) }, 0},
		{"prepare at the promise floor", func() error { return prepareAll(n, prepare, b(1+DefaultPromiseFloorStep, 1)) }, 1},
		{"prepare below the raised floor", func() error { return prepareAll(n, prepare, b(2+DefaultPromiseFloorStep, 1)) }, 0},
	}
	for _, s := range steps {
		before, beforeWAL := n.acc.SyncCount(), walSyncs.n.Load()
		if err := s.call(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := n.acc.SyncCount() - before; got != s.wantSyncs {
			t.Errorf("%s: %d synced commits, want %d", s.name, got, s.wantSyncs)
		}
		if got := walSyncs.n.Load() - beforeWAL; got != int64(s.wantSyncs) {
			t.Errorf("%s: %d WAL fsyncs, want %d", s.name, got, s.wantSyncs)
		}
	}
	if got := n.status().KeyCount; got != items {
		t.Errorf("key count = %d, want %d", got, items)
	}
}

// prepareAll sends req again with every item at ballot bal and checks that
// every item was promised.
func prepareAll(n *node, req *kshakav1.PrepareRequest, bal *kshakav1.Ballot) error {
	for _, it := range req.Items {
		it.Ballot = bal
	}
	r, err := n.data.Prepare(context.Background(), req)
	if err != nil {
		return err
	}
	for i, res := range r.Results {
		if !res.Ok {
			return fmt.Errorf("item %d not promised: %v", i, res)
		}
	}
	return nil
}
