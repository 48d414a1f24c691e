package acceptor

import (
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

func tombstone(version uint64) *kshakav1.Value {
	return &kshakav1.Value{Version: version, Tombstone: true}
}

// write prepares and accepts v at ballot on key, as the GC's write does.
func (n *node) write(key string, ballot *kshakav1.Ballot, v *kshakav1.Value, epoch uint64) {
	n.t.Helper()
	ctx := context.Background()
	if _, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: epoch, Items: []*kshakav1.PrepareItem{prep(key, ballot)}}); err != nil {
		n.t.Fatal(err)
	}
	resp, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: epoch, Items: []*kshakav1.AcceptItem{acc(key, ballot, v, nil)}})
	if err != nil || !resp.GetResults()[0].GetOk() {
		n.t.Fatalf("accept %s: %v %v", key, resp, err)
	}
}

func (n *node) collect(items ...*kshakav1.CollectItem) []kshakav1.CollectVerdict {
	n.t.Helper()
	resp, err := n.admin.Collect(context.Background(), &kshakav1.CollectRequest{Items: items})
	if err != nil {
		n.t.Fatalf("Collect: %v", err)
	}
	var out []kshakav1.CollectVerdict
	for _, r := range resp.GetResults() {
		out = append(out, r.GetVerdict())
	}
	return out
}

func citem(key string, ballot *kshakav1.Ballot, version uint64) *kshakav1.CollectItem {
	return &kshakav1.CollectItem{Key: []byte(key), Ballot: ballot, Version: version}
}

// TestCollect removes collected tombstones over gRPC on real Pebble
// (docs/design.md §10): only under a configuration whose floors cover them,
// only records that are still exactly the GC's write, durably; a refused
// Collect loses nothing, and an absent key then refuses every ballot up to
// the removed ballot.
func TestCollect(t *testing.T) {
	n := startAdmitted(t, testOptions(t))
	bg := b(100, 1)
	n.write("gone", bg, tombstone(3), 1)
	n.write("promised", bg, tombstone(3), 1)
	n.write("live", bg, val(3, "x"), 1)
	if _, err := n.data.Prepare(context.Background(), &kshakav1.PrepareRequest{Epoch: 1,
		Items: []*kshakav1.PrepareItem{prep("promised", b(200, 2))}}); err != nil {
		t.Fatal(err)
	}
	items := []*kshakav1.CollectItem{citem("gone", bg, 3), citem("promised", bg, 3), citem("live", bg, 3), citem("never", bg, 3)}

	// Under epoch 1 the floors are zero: nothing goes.
	before := n.contents()
	got := n.collect(items...)
	want := []kshakav1.CollectVerdict{kshakav1.CollectVerdict_COLLECT_VERDICT_FLOORS_NOT_INSTALLED,
		kshakav1.CollectVerdict_COLLECT_VERDICT_CHANGED, kshakav1.CollectVerdict_COLLECT_VERDICT_CHANGED,
		kshakav1.CollectVerdict_COLLECT_VERDICT_ABSENT}
	if !slices.Equal(got, want) {
		t.Fatalf("verdicts without floors %v, want %v", got, want)
	}
	if !maps.EqualFunc(before, n.contents(), statesEqual) {
		t.Fatal("a refused Collect changed the store")
	}

	// A malformed Collect is refused whole.
	_, err := n.admin.Collect(context.Background(), &kshakav1.CollectRequest{Items: []*kshakav1.CollectItem{citem("gone", bg, 0)}})
	wantCode(t, err, codes.InvalidArgument)

	// The floor epoch, then an attempt to lower the floors.
	cfg := n.acc.Config()
	cfg.Epoch, cfg.RemovedBallot, cfg.VersionFloor = 2, wire.BallotFromProto(bg), 3
	n.setConfig(cfg)
	lower := cfg.Clone()
	lower.Epoch, lower.VersionFloor = 3, 2
	_, err = n.admin.SetConfig(context.Background(), &kshakav1.SetConfigRequest{Config: wire.ConfigToProto(lower)})
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), "version floor 2 is below 3") || !errors.Is(membership.CheckFloors(cfg, lower), membership.ErrFloorsLowered) {
		t.Fatalf("lowering the floors: %v", err)
	}
	if got := n.acc.Config(); !got.Equal(cfg) {
		t.Fatalf("config after the refusal %v, want %v", got, cfg)
	}

	keysBefore := n.status().GetKeyCount()
	got = n.collect(items...)
	want[0] = kshakav1.CollectVerdict_COLLECT_VERDICT_REMOVED
	if !slices.Equal(got, want) {
		t.Fatalf("verdicts under the floor epoch %v, want %v", got, want)
	}
	if c := n.contents(); len(c) != 2 {
		t.Fatalf("after Collect the store holds %v, want promised and live only", c)
	}
	if k := n.status().GetKeyCount(); k != keysBefore-1 {
		t.Fatalf("key count %d, want %d", k, keysBefore-1)
	}

	// The absent key refuses every ballot up to R, and reports nothing.
	ctx := context.Background()
	pr, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 2, Items: []*kshakav1.PrepareItem{prep("gone", b(90, 7)), prep("never", bg)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pr.GetResults() {
		if r.GetOk() || wire.BallotFromProto(r.GetConflict()) != wire.BallotFromProto(bg) {
			t.Fatalf("prepare at or below R on an absent key: %v, want a conflict at %v", r, bg)
		}
	}
	ar, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 2, Items: []*kshakav1.AcceptItem{acc("gone", bg, tombstone(3), nil)}})
	if err != nil || ar.GetResults()[0].GetOk() {
		t.Fatalf("accept at R on the absent key: %v %v, want a conflict", ar, err)
	}
	pr, err = n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 2, Items: []*kshakav1.PrepareItem{prep("gone", b(101, 7))}})
	if err != nil || !pr.GetResults()[0].GetOk() || pr.GetResults()[0].GetValue().GetVersion() != 0 {
		t.Fatalf("prepare above R: %v %v, want ok with the empty value", pr, err)
	}

	// The removal was synced: after a restart the record of "gone" holds
	// only the promise made since, not the tombstone.
	n.restart()
	if st := n.contents()["gone"]; !st.Accepted.IsZero() || st.Value.Version != 0 {
		t.Fatalf("after a restart gone is %v, want only a promise", st)
	}
}

// TestListTombstones: ListKeys lists only tombstones, and only those
// accepted before a ballot counter, when asked; filtered pages say how far
// they looked, so sparse matches page correctly.
func TestListTombstones(t *testing.T) {
	n := startAdmitted(t, testOptions(t))
	var want []string
	for i := range 40 {
		k := string(rune('a'+i/26)) + string(rune('a'+i%26))
		switch i % 7 {
		case 0:
			n.write(k, b(uint64(10+i), 1), tombstone(2), 1)
			want = append(want, k)
		case 1:
			n.write(k, b(5000, 1), tombstone(2), 1) // too recent
		default:
			n.write(k, b(uint64(10+i), 1), val(1, "x"), 1)
		}
	}
	stream, err := n.admin.ListKeys(context.Background(), &kshakav1.ListKeysRequest{PageSize: 1, TombstonesOnly: true, AcceptedBefore: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range resp.GetKeys() {
			got = append(got, string(k))
		}
		if len(resp.GetKeys()) > 0 && string(resp.GetScannedThrough()) < string(resp.GetKeys()[len(resp.GetKeys())-1]) {
			t.Fatalf("page scanned through %q, before its last key", resp.GetScannedThrough())
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("tombstones %v, want %v", got, want)
	}
}
