package acceptor

import (
	"context"
	"errors"
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kshaka-io/kshaka/internal/acceptcore"
	"github.com/kshaka-io/kshaka/internal/wire"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
	"github.com/kshaka-io/kshaka/register"
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
// every key refused every ballot (docs/design.md §2.1, "Ballots are bounded"). Such
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
		} else if !hasReason(err, register.TooFarAheadReason) {
			t.Errorf("%s: error %v does not carry the reason %s (proposers count it as lost, not definite)", r.name, err, register.TooFarAheadReason)
		}
		if !maps.EqualFunc(before, n.contents(), statesEqual) || n.acc.SyncCount() != syncs {
			t.Errorf("%s: the refused request wrote records: %v, was %v", r.name, n.contents(), before)
		}
		if got := n.floorOnDisk(); got != floor {
			t.Errorf("%s: the promise floor moved from %d to %d", r.name, floor, got)
		}
	}

	// After a restart every key, old or new, is writable at the wall clock:
	// a prepare there is refused at most once, by the restart floor, which
	// is close to the clock, and the proposer's next ballot above it wins.
	n.restart()
	for i, key := range []string{"seed", "victim", "fine", "other"} {
		bal := b(wallCounter(), uint64(10+i))
		pr, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{prep(key, bal)}})
		if err != nil {
			t.Errorf("after the restart, prepare %s at %v: %v", key, bal, err)
			continue
		}
		if !pr.Results[0].Ok {
			conflict := wire.BallotFromProto(pr.Results[0].Conflict)
			if limit := wallCounter() + uint64(DefaultMaxBallotLead.Microseconds()); conflict.Counter >= limit {
				t.Errorf("after the restart, prepare %s at %v is refused with conflict %v, beyond the lead of the clock", key, bal, conflict)
				continue
			}
			bal = b(conflict.Counter+1, uint64(10+i))
			if pr, err = n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{prep(key, bal)}}); err != nil || !pr.Results[0].Ok {
				t.Errorf("after the restart, prepare %s at %v, above the conflict: %v, %v", key, bal, pr, err)
				continue
			}
		}
		ar, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{acc(key, bal, val(9, "after"), nil)}})
		if err != nil || !ar.Results[0].Ok {
			t.Errorf("after the restart, accept %s at %v: %v, %v", key, bal, ar, err)
		}
	}
}

// TestBallotLeadUsesTheAcceptorsClock: the bound is the injected clock plus
// MaxBallotLead, to the microsecond, and the refusal names that clock.
func TestBallotLeadUsesTheAcceptorsClock(t *testing.T) {
	at := time.Date(2026, 12, 3, 9, 40, 0, 0, time.UTC)
	opts := testOptions(t)
	opts.Now = func() time.Time { return at }
	opts.MaxBallotLead = time.Minute
	n := startAdmitted(t, opts)
	ctx := context.Background()
	limit := uint64(at.UnixMicro() + time.Minute.Microseconds())

	r, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{prep("k", b(limit, 1))}})
	if err != nil || !r.Results[0].Ok {
		t.Fatalf("prepare at the limit: %v, %v", r, err)
	}
	_, err = n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{prep("k", b(limit+1, 1))}})
	wantCode(t, err, codes.InvalidArgument)
	want := "counter 1796290860000001 is 1m0.000001s ahead of this acceptor's clock (2026-12-03T09:40:00Z, counter 1796290800000000); " +
		"at most 1m0s is allowed: check the clock of the proposer that sent it"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// TestFloorNeverSaturates: a floor raise that would pass 2^64-1 refuses the
// request instead of clamping, commits nothing and leaves the acceptor in
// service. (Validation keeps counters within the lead, so only a direct call
// reaches it.)
func TestFloorNeverSaturates(t *testing.T) {
	n := startAdmitted(t, testOptions(t))
	floor := n.floorOnDisk()
	batch := n.acc.store.db.NewBatch()
	defer batch.Close()
	if err := batch.Set(storageKey(nil, []byte("k")), []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	err := n.acc.commit(batch, acceptcore.Ready{Write: []int{0}, Promised: math.MaxUint64 - DefaultPromiseFloorStep + 1})
	if !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("commit of a promise near 2^64-1 = %v, want ErrInvalidRequest", err)
	}
	if got := n.floorOnDisk(); got != floor || n.acc.floor.durable.Load() != floor {
		t.Fatalf("floor moved from %d to %d (in memory %d)", floor, got, n.acc.floor.durable.Load())
	}
	if len(n.contents()) != 0 || n.acc.Err() != nil {
		t.Fatalf("contents %v, acceptor error %v", n.contents(), n.acc.Err())
	}
}

// hasReason reports whether err's status carries a google.rpc.ErrorInfo
// with reason in the project's domain.
func hasReason(err error, reason string) bool {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == register.ErrorDomain && info.GetReason() == reason {
			return true
		}
	}
	return false
}
