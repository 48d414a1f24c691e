package keyproc

import (
	"testing"
	"time"

	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// TestGCOp: the tombstone GC's write (docs/design.md §10) prepares with a
// fresh ballot, carries no 1RTT promise even when the policy has them, needs
// every member of S, and answers with its ballot.
func TestGCOp(t *testing.T) {
	cfg := membership.Stable(1, membership.Member{ID: "a", Addr: "a", Incarnation: 1},
		membership.Member{ID: "b", Addr: "b", Incarnation: 2}, membership.Member{ID: "c", Addr: "c", Incarnation: 3})
	env := &Shared{Clock: round.NewClock(7), Cache: round.NewCache(4), Rand: func() float64 { return 0 }}
	tomb := register.Value{Version: 3, Tombstone: true}
	env.Cache.Put("k", round.CacheEntry{Epoch: 1, Ballot: register.Ballot{Counter: 1, Proposer: 7}, Value: tomb})
	m := New("k", Config{OneRTT: true, RequestTimeout: time.Second}, env, cfg)
	op := GCOp()
	m.Submit(0, &op)
	rd := m.Ready()
	if rd.Send.Kind != Prepare {
		t.Fatalf("first send %v, want a prepare (no 1RTT)", rd.Send.Kind)
	}
	bal := rd.Send.Ballot
	for inc := uint64(1); inc <= 2; inc++ {
		m.OnPrepare(0, PrepareReply{Attempt: rd.Send.Attempt, Incarnation: inc, Reply: round.Ack, Accepted: bal, Value: tomb})
	}
	rd = m.Ready()
	if rd.Apply != nil {
		m.OnApplied(0, rd.Apply.Run())
		rd = m.Ready()
	}
	if rd.Send.Kind != Accept || !rd.Send.Next.IsZero() || len(rd.Send.To) != 3 {
		t.Fatalf("accept %+v, want one to all three without a next promise", rd.Send)
	}
	for inc := uint64(1); inc <= 2; inc++ {
		m.OnAccept(0, AcceptReply{Attempt: rd.Send.Attempt, Incarnation: inc, Answer: round.AcceptAnswer{OK: true}})
	}
	if got := m.Ready(); len(got.Answers) != 0 {
		t.Fatalf("answered after two of three accepts: %+v", got.Answers)
	}
	m.OnAccept(0, AcceptReply{Attempt: rd.Send.Attempt, Incarnation: 3, Answer: round.AcceptAnswer{OK: true}})
	rd = m.Ready()
	if len(rd.Answers) != 1 || rd.Answers[0].Outcome != round.Success || rd.Answers[0].Ballot != bal || !rd.Answers[0].Value.Equal(tomb) {
		t.Fatalf("answers %+v, want success with ballot %v and the tombstone", rd.Answers, bal)
	}
	if _, ok := env.Cache.Take("k"); ok {
		t.Fatal("a 1RTT promise was cached after the GC write")
	}
}
