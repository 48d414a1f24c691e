package round

import (
	"testing"

	"github.com/kshaka-io/kshaka/register"
)

// TestRequireAll: the tombstone GC's write (docs/design.md §10) succeeds only
// when every member of S accepted.
func TestRequireAll(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replies []acceptReply
		want    Outcome
	}{
		{"a quorum is not enough", []acceptReply{{a, Ack}, {b, Ack}}, Pending},
		{"every member", []acceptReply{{a, Ack}, {b, Ack}, {c, Ack}}, Success},
		{"one refusal after acks", []acceptReply{{a, Ack}, {b, Ack}, {c, Nack}}, Unknown},
		{"every member refused", []acceptReply{{a, Nack}, {b, Nack}, {c, Nack}}, Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWrite(stable3(), register.Ballot{Counter: 5, Proposer: 1})
			for _, inc := range []uint64{a, b} {
				w.OnPrepare(inc, Ack, zb, register.Value{}, zb)
			}
			w.RequireAll()
			w.Propose(register.Value{Version: 3, Tombstone: true}, zb)
			for _, r := range tc.replies {
				w.OnAccept(r.inc, r.r, zb)
			}
			if w.Outcome() != tc.want {
				t.Fatalf("outcome %v, want %v", w.Outcome(), tc.want)
			}
		})
	}
}

// TestFloored: under a configuration's GC floors, a prepare quorum that
// shows nothing live below the version floor stands for the tombstone at
// the floor, and no accepted ballot stands for the removed ballot.
func TestFloored(t *testing.T) {
	cfg := stable3()
	r := register.Ballot{Counter: 40, Proposer: 2}
	cfg.RemovedBallot, cfg.VersionFloor = r, 7
	tomb := func(v uint64) register.Value { return register.Value{Version: v, Tombstone: true} }
	live := register.Value{Version: 3, Data: []byte("x")}
	b50 := register.Ballot{Counter: 50, Proposer: 1}
	for _, tc := range []struct {
		name      string
		best      register.Ballot
		cur       register.Value
		wantBest  register.Ballot
		wantValue register.Value
	}{
		{"absent", zb, register.Value{}, r, tomb(7)},
		{"an old tombstone", b50, tomb(5), b50, tomb(7)},
		{"a tombstone at the floor", b50, tomb(7), b50, tomb(7)},
		{"a newer tombstone", b50, tomb(9), b50, tomb(9)},
		{"a live value below the floor stays", b50, live, b50, live},
	} {
		t.Run(tc.name, func(t *testing.T) {
			best, cur := Floored(cfg, tc.best, tc.cur)
			if best != tc.wantBest || !cur.Equal(tc.wantValue) {
				t.Fatalf("Floored = %v %v, want %v %v", best, cur, tc.wantBest, tc.wantValue)
			}
		})
	}
	// A recreated key's first version is above the floor.
	w := NewWrite(cfg, register.Ballot{Counter: 60, Proposer: 1})
	w.OnPrepare(a, Ack, zb, register.Value{}, zb)
	w.OnPrepare(b, Ack, zb, register.Value{}, zb)
	if got := w.Current().Put([]byte("y")); got.Version != 8 {
		t.Fatalf("recreated at v%d, want v8", got.Version)
	}
	if best, v := w.Reported(); !best.IsZero() || v.Version != 0 {
		t.Fatalf("Reported = %v %v, want what the quorum showed", best, v)
	}
	// Without floors nothing changes.
	if best, cur := Floored(stable3(), zb, register.Value{}); !best.IsZero() || cur.Version != 0 {
		t.Fatalf("Floored without floors = %v %v", best, cur)
	}
}
