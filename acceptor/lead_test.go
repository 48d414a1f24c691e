package acceptor

import (
	"context"
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// wallCounter is a ballot counter at the wall clock, as a proposer starts.
func wallCounter() uint64 { return uint64(time.Now().UnixMicro()) }

// floorOnDisk reads the durable promise floor from the store.
func (n *node) floorOnDisk() uint64 {
	n.t.Helper()
	f, err := n.acc.store.loadFloor()
	if err != nil {
		n.t.Fatal(err)
	}
	return f
}

// TestFarFutureBallotIsRefused: one request with ballot counter 2^64-1 used
// to raise the durable promise floor to 2^64-1, and after the next restart
// every key refused every ballot (DESIGN §2.1, "Ballots are bounded"). Such
// a ballot, in a prepare, in an accept or as an accept's next ballot, must
// be refused with INVALID_ARGUMENT and nothing written, so that after a
// restart every key is still writable at a wall-clock ballot.
func TestFarFutureBallotIsRefused(t *testing.T) {
	n := startAdmitted(t, testOptions(t))
	ctx := context.Background()
	if r, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{
		acc("seed", b(wallCounter(), 1), val(1, "s"), nil),
	}}); err != nil || !r.Results[0].Ok {
		t.Fatalf("seeding: %v, %v", r, err)
	}
	if _, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{prep("seed", b(wallCounter(), 1))}}); err != nil {
		t.Fatalf("seeding the floor: %v", err)
	}

	huge := b(math.MaxUint64, 2)
	requests := []struct {
		name string
		send func() error
	}{
		{"prepare", func() error {
			_, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{prep("victim", huge)}})
			return err
		}},
		{"prepare in a batch", func() error {
			_, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{
				prep("fine", b(wallCounter(), 2)), prep("victim", huge),
			}})
			return err
		}},
		{"accept", func() error {
			_, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("victim", huge, val(1, "x"), nil)}})
			return err
		}},
		{"accept's next ballot", func() error {
			_, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{
				acc("victim", b(wallCounter(), 2), val(1, "x"), huge),
			}})
			return err
		}},
	}
	for _, r := range requests {
		before, floor, syncs := n.contents(), n.floorOnDisk(), n.acc.SyncCount()
		err := r.send()
		if code(err) != codes.InvalidArgument {
			t.Errorf("%s at counter 2^64-1: error = %v, want INVALID_ARGUMENT", r.name, err)
		} else if !strings.Contains(err.Error(), "ahead of this acceptor's clock") {
			t.Errorf("%s: error %q does not say the ballot is ahead of the acceptor's clock", r.name, err)
		}
		if !maps.EqualFunc(before, n.contents(), statesEqual) || n.acc.SyncCount() != syncs {
			t.Errorf("%s: the refused request wrote records: %v, was %v", r.name, n.contents(), before)
		}
		if got := n.floorOnDisk(); got != floor {
			t.Errorf("%s: the promise floor moved from %d to %d", r.name, floor, got)
		}
	}

	// After a restart every key, old or new, is writable at the wall clock.
	n.restart()
	for i, key := range []string{"seed", "victim", "fine", "other"} {
		bal := b(wallCounter(), uint64(10+i))
		pr, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{prep(key, bal)}})
		if err != nil || !pr.Results[0].Ok {
			t.Errorf("after the restart, prepare %s at %v: %v, %v", key, bal, pr, err)
			continue
		}
		ar, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{acc(key, bal, val(9, "after"), nil)}})
		if err != nil || !ar.Results[0].Ok {
			t.Errorf("after the restart, accept %s at %v: %v, %v", key, bal, ar, err)
		}
	}
}
