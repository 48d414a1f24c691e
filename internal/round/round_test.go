package round

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// Incarnations of the test acceptors.
const (
	a uint64 = iota + 1
	b
	c
	d
	stranger uint64 = 99
)

func mem(id string, inc uint64, p, s bool) membership.Member {
	return membership.Member{ID: id, Addr: id + ":1", Incarnation: inc, Prepare: p, Accept: s}
}

// stable3 is P = S = {a,b,c}, quorums 2.
func stable3() *membership.Config {
	cfg := membership.Stable(1, mem("a", a, true, true), mem("b", b, true, true), mem("c", c, true, true))
	return &cfg
}

// addJoint is the joint configuration of adding d to {a,b,c} (docs/design.md §5):
// P = {a,b,c}, qp = 2; S = {a,b,c,d}, qa = 3.
func addJoint() *membership.Config {
	return &membership.Config{Epoch: 2, PrepareQuorum: 2, AcceptQuorum: 3, Members: []membership.Member{
		mem("a", a, true, true), mem("b", b, true, true), mem("c", c, true, true), mem("d", d, false, true)}}
}

// removeJoint is the joint configuration of removing c from {a,b,c}:
// P = {a,b}, qp = 2; S = {a,b,c}, qa = 2.
func removeJoint() *membership.Config {
	return &membership.Config{Epoch: 2, PrepareQuorum: 2, AcceptQuorum: 2, Members: []membership.Member{
		mem("a", a, true, true), mem("b", b, true, true), mem("c", c, false, true)}}
}

// flexible is P = S = {a,b,c,d} with qp = 2 < qa = 3 (paper §"Flexible
// quorums").
func flexible() *membership.Config {
	return &membership.Config{Epoch: 1, PrepareQuorum: 2, AcceptQuorum: 3, Members: []membership.Member{
		mem("a", a, true, true), mem("b", b, true, true), mem("c", c, true, true), mem("d", d, true, true)}}
}

func TestConfigsAreValid(t *testing.T) {
	for _, cfg := range []*membership.Config{stable3(), addJoint(), removeJoint(), flexible()} {
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%v: %v", cfg, err)
		}
	}
}

func bl(c, p uint64) register.Ballot { return register.Ballot{Counter: c, Proposer: p} }

func val(s string, version uint64) register.Value {
	return register.Value{Version: version, Data: []byte(s)}
}

var zb register.Ballot

// TestPrepareQuorum: a change waits for qp promises and takes the value
// with the highest accepted ballot among them (docs/design.md §2.3 step 2, paper
// §"Core algorithm"), whatever order they arrive in.
func TestPrepareQuorum(t *testing.T) {
	for _, order := range [][]uint64{{a, b}, {b, a}} {
		w := NewWrite(stable3(), bl(5, 1))
		replies := map[uint64]struct {
			acc register.Ballot
			v   register.Value
		}{a: {bl(3, 7), val("newer", 2)}, b: {bl(2, 9), val("older", 1)}}
		for i, inc := range order {
			r := replies[inc]
			w.OnPrepare(inc, Ack, r.acc, r.v, zb)
			if want := map[bool]Phase{false: Preparing, true: Proposing}[i == 1]; w.Phase() != want {
				t.Fatalf("after %d promises: phase %d", i+1, w.Phase())
			}
		}
		if string(w.Current().Data) != "newer" {
			t.Fatalf("order %v: current %v, want the value of the highest ballot", order, w.Current())
		}
	}
	// All promises report nothing accepted: the empty value.
	w := NewWrite(stable3(), bl(5, 1))
	w.OnPrepare(c, Ack, zb, register.Value{}, zb)
	w.OnPrepare(a, Ack, zb, register.Value{}, zb)
	if w.Phase() != Proposing || w.Current().Version != 0 {
		t.Fatalf("empty register: phase %d current %v", w.Phase(), w.Current())
	}
}

func TestPrepareFailsDefinitely(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replies []Reply
	}{
		{"two conflicts", []Reply{Nack, Nack}},
		{"conflict and lost", []Reply{Nack, Lost}},
		{"two lost", []Reply{Lost, Lost}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWrite(stable3(), bl(5, 1))
			w.OnPrepare(a, tc.replies[0], zb, register.Value{}, bl(8, 2))
			if w.Phase() != Preparing {
				t.Fatal("decided after one refusal")
			}
			w.OnPrepare(b, tc.replies[1], zb, register.Value{}, bl(6, 3))
			if w.Phase() != Done || w.Outcome() != Failed {
				t.Fatalf("phase %d outcome %v", w.Phase(), w.Outcome())
			}
			if w.Conflict() != bl(8, 2) {
				t.Fatalf("conflict %v, want the highest shown", w.Conflict())
			}
		})
	}
	// A refusal, then a promise, then a refusal of the last: 1 < qp.
	w := NewWrite(stable3(), bl(5, 1))
	w.OnPrepare(a, Nack, zb, register.Value{}, zb)
	w.OnPrepare(b, Ack, zb, register.Value{}, zb)
	w.OnPrepare(c, Lost, zb, register.Value{}, zb)
	if w.Outcome() != Failed {
		t.Fatalf("outcome %v", w.Outcome())
	}
}

// TestOutranked: a prepare quorum that comes in beside a refusal showing a
// higher ballot is outranked (the rescan's touch goes again above it); a
// refusal that shows the attempt's own ballot (a duplicated prepare) is
// not.
func TestOutranked(t *testing.T) {
	w := NewWrite(stable3(), bl(5, 1))
	w.OnPrepare(a, Ack, bl(1, 1), val("s", 1), zb)
	if w.Outranked() {
		t.Fatal("outranked without a conflict")
	}
	w.OnPrepare(c, Nack, zb, register.Value{}, bl(9, 3))
	w.OnPrepare(b, Ack, bl(1, 1), val("s", 1), zb)
	if w.Phase() != Proposing || !w.Outranked() {
		t.Fatalf("phase %d, outranked %v; want a quorum that is outranked by 9.3", w.Phase(), w.Outranked())
	}
	w = NewWrite(stable3(), bl(5, 1))
	w.OnPrepare(a, Ack, zb, register.Value{}, zb)
	w.OnPrepare(a, Nack, zb, register.Value{}, bl(5, 1)) // our own prepare, duplicated
	if w.Outranked() {
		t.Fatal("outranked by its own ballot")
	}
	if NewFastWrite(stable3(), bl(5, 1), val("s", 1)).Outranked() {
		t.Fatal("a 1RTT attempt is outranked before any reply")
	}
}

// TestPrepareIgnores: replies from non-members (including accept-only
// members of a joint configuration), repeated replies and replies after the
// phase are ignored; conflicts are remembered from all of them.
func TestPrepareIgnores(t *testing.T) {
	w := NewWrite(addJoint(), bl(5, 1))
	w.OnPrepare(stranger, Ack, zb, register.Value{}, zb)
	w.OnPrepare(d, Ack, zb, register.Value{}, zb) // d is not in P
	w.OnPrepare(a, Ack, zb, register.Value{}, zb)
	w.OnPrepare(a, Ack, zb, register.Value{}, zb) // duplicate
	if w.Phase() != Preparing {
		t.Fatalf("quorum reached from ignored replies: phase %d", w.Phase())
	}
	w.OnPrepare(a, Nack, zb, register.Value{}, zb) // duplicate with another answer
	w.OnPrepare(b, Ack, bl(1, 1), val("x", 1), zb)
	if w.Phase() != Proposing || string(w.Current().Data) != "x" {
		t.Fatalf("phase %d current %v", w.Phase(), w.Current())
	}
	w.OnPrepare(c, Ack, bl(4, 4), val("late", 9), bl(9, 9))
	if string(w.Current().Data) != "x" {
		t.Fatal("a late promise changed the current value")
	}
	if w.Conflict() != bl(9, 9) {
		t.Fatalf("late conflict not remembered: %v", w.Conflict())
	}
	if got := len(w.PrepareTargets()); got != 3 {
		t.Fatalf("PrepareTargets: %d", got)
	}
	if got := len(w.AcceptTargets()); got != 4 {
		t.Fatalf("AcceptTargets: %d", got)
	}
}

func proposing(cfg *membership.Config, next register.Ballot) *Write {
	w := NewFastWrite(cfg, bl(5, 1), val("cur", 1))
	w.Propose(val("new", 2), next)
	return w
}

type acceptReply struct {
	inc uint64
	r   Reply
}

// TestAcceptOutcomes: the three outcomes of docs/design.md §2.3 from the replies of
// the accept phase, including lost replies and duplicates.
func TestAcceptOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     func() *membership.Config
		replies []acceptReply
		expire  bool
		want    Outcome
	}{
		{"accept quorum", stable3, []acceptReply{{a, Ack}, {c, Ack}}, false, Success},
		{"quorum after a conflict", stable3, []acceptReply{{a, Nack}, {b, Ack}, {c, Ack}}, false, Success},
		{"all conflicts: nothing accepted anywhere", stable3, []acceptReply{{a, Nack}, {b, Nack}, {c, Nack}}, false, Failed},
		{"one ack, two conflicts", stable3, []acceptReply{{a, Ack}, {b, Nack}, {c, Nack}}, false, Unknown},
		{"conflicts and a lost reply", stable3, []acceptReply{{a, Nack}, {b, Lost}, {c, Nack}}, false, Unknown},
		{"one ack, two lost", stable3, []acceptReply{{a, Ack}, {b, Lost}, {c, Lost}}, false, Unknown},
		{"two lost decide early", stable3, []acceptReply{{b, Lost}, {c, Lost}}, false, Unknown},
		{"duplicate ack counts once", stable3, []acceptReply{{a, Ack}, {a, Ack}}, false, Pending},
		{"duplicate ack then expiry", stable3, []acceptReply{{a, Ack}, {a, Ack}}, true, Unknown},
		{"non-members ignored", stable3, []acceptReply{{a, Ack}, {stranger, Ack}, {stranger, Ack}}, false, Pending},
		{"two conflicts, one missing: still pending", stable3, []acceptReply{{a, Nack}, {b, Nack}}, false, Pending},
		{"two conflicts, one missing, expired: the missing one may have landed", stable3, []acceptReply{{a, Nack}, {b, Nack}}, true, Unknown},
		{"nothing heard, expired", stable3, nil, true, Unknown},
		{"joint add needs 3 of 4", addJoint, []acceptReply{{a, Ack}, {b, Ack}}, false, Pending},
		{"joint add, new member completes the quorum", addJoint, []acceptReply{{a, Ack}, {b, Ack}, {d, Ack}}, false, Success},
		{"joint add, two refusals", addJoint, []acceptReply{{a, Ack}, {b, Nack}, {d, Nack}}, false, Unknown},
		{"joint remove, leaving member counts in S", removeJoint, []acceptReply{{a, Ack}, {c, Ack}}, false, Success},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := proposing(tc.cfg(), zb)
			for _, r := range tc.replies {
				w.OnAccept(r.inc, r.r, zb)
			}
			if tc.expire {
				w.Expire()
			}
			if w.Outcome() != tc.want {
				t.Fatalf("outcome %v, want %v", w.Outcome(), tc.want)
			}
			if (tc.want == Pending) != (w.Phase() == Accepting) {
				t.Fatalf("phase %d with outcome %v", w.Phase(), w.Outcome())
			}
			// Once decided, nothing changes it.
			if tc.want != Pending {
				for _, inc := range []uint64{a, b, c, d} {
					w.OnAccept(inc, Ack, zb)
				}
				w.Expire()
				if w.Outcome() != tc.want {
					t.Fatalf("outcome changed after the decision: %v", w.Outcome())
				}
			}
		})
	}
}

func TestAcceptIgnoresPrepareOnlyMembers(t *testing.T) {
	cfg := &membership.Config{Epoch: 1, PrepareQuorum: 2, AcceptQuorum: 2, Members: []membership.Member{
		mem("a", a, true, true), mem("b", b, true, true), mem("c", c, true, false)}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w := proposing(cfg, zb)
	w.OnAccept(c, Ack, zb)
	w.OnAccept(a, Ack, zb)
	if w.Outcome() != Pending {
		t.Fatalf("an ack from outside S counted: %v", w.Outcome())
	}
	w.OnAccept(b, Nack, bl(7, 7))
	if w.Outcome() != Unknown || w.Conflict() != bl(7, 7) {
		t.Fatalf("outcome %v conflict %v", w.Outcome(), w.Conflict())
	}
}

func TestExpireBeforeAccept(t *testing.T) {
	w := NewWrite(stable3(), bl(5, 1))
	w.OnPrepare(a, Ack, zb, register.Value{}, zb)
	w.Expire()
	if w.Outcome() != Failed {
		t.Fatalf("expired prepare: %v", w.Outcome())
	}
	w = NewFastWrite(stable3(), bl(5, 1), val("cur", 1))
	w.Expire()
	if w.Outcome() != Failed {
		t.Fatalf("expired before Propose: %v", w.Outcome())
	}
}

func TestProposeOutsideProposingPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Propose in Preparing did not panic")
		}
	}()
	NewWrite(stable3(), bl(1, 1)).Propose(val("x", 1), zb)
}

// TestFastWrite: a 1RTT attempt starts at Proposing with the cached value
// (docs/design.md §2.4) and records what it proposed.
func TestFastWrite(t *testing.T) {
	w := NewFastWrite(stable3(), bl(6, 1), val("cached", 3))
	if w.Phase() != Proposing || w.Ballot() != bl(6, 1) || string(w.Current().Data) != "cached" {
		t.Fatalf("fast write: phase %d ballot %v current %v", w.Phase(), w.Ballot(), w.Current())
	}
	w.Propose(val("next", 4), bl(7, 1))
	if w.Phase() != Accepting || w.Next() != bl(7, 1) || string(w.Proposed().Data) != "next" {
		t.Fatalf("after Propose: %d %v %v", w.Phase(), w.Next(), w.Proposed())
	}
}

// TestCacheable: the 1RTT promise is usable only after full success, with a
// next ballot, and when the acknowledging acceptors include a prepare
// quorum of P (docs/design.md §2.4; with P ≠ S an accept quorum alone is not
// enough).
func TestCacheable(t *testing.T) {
	next := bl(6, 1)
	for _, tc := range []struct {
		name string
		cfg  func() *membership.Config
		next register.Ballot
		acks []uint64
		lost []uint64
		want bool
	}{
		{"stable, success", stable3, next, []uint64{a, b}, nil, true},
		{"stable, no next", stable3, zb, []uint64{a, b}, nil, false},
		{"stable, unknown", stable3, next, []uint64{a}, []uint64{b, c}, false},
		{"joint remove, acks {a,c}: one of P", removeJoint, next, []uint64{a, c}, nil, false},
		{"joint remove, acks {a,b}: all of P", removeJoint, next, []uint64{a, b}, nil, true},
		{"joint add, acks {a,b,d}", addJoint, next, []uint64{a, b, d}, nil, true},
		{"joint add, acks {a,d,c}", addJoint, next, []uint64{a, d, c}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := proposing(tc.cfg(), tc.next)
			for _, inc := range tc.acks {
				w.OnAccept(inc, Ack, zb)
			}
			for _, inc := range tc.lost {
				w.OnAccept(inc, Lost, zb)
			}
			if got := w.Cacheable(); got != tc.want {
				t.Fatalf("Cacheable() = %v with outcome %v", got, w.Outcome())
			}
		})
	}
}

type readReply struct {
	inc uint64
	ok  bool
	acc register.Ballot
}

// TestReadAgreement: a quorum read succeeds only when the replies reporting
// one accepted ballot include both qp of P and qa of S (docs/design.md §2.5;
// scylladb#6299 for reads that skip the accept quorum).
func TestReadAgreement(t *testing.T) {
	b1, b2, b3 := bl(1, 1), bl(2, 1), bl(3, 1)
	for _, tc := range []struct {
		name    string
		cfg     func() *membership.Config
		replies []readReply
		expire  bool
		want    Outcome
		ballot  register.Ballot
	}{
		{"stable, two agree", stable3, []readReply{{a, true, b1}, {b, true, b1}}, false, Success, b1},
		{"stable, agreement after a disagreement", stable3, []readReply{{a, true, b1}, {b, true, b2}, {c, true, b1}}, false, Success, b1},
		{"stable, three ballots", stable3, []readReply{{a, true, b1}, {b, true, b2}, {c, true, b3}}, false, Failed, zb},
		{"stable, one reply then two errors", stable3, []readReply{{a, true, b1}, {b, false, zb}, {c, false, zb}}, false, Failed, zb},
		{"stable, empty register", stable3, []readReply{{a, true, zb}, {c, true, zb}}, false, Success, zb},
		{"stable, first reply alone is not enough", stable3, []readReply{{a, true, b3}}, false, Pending, zb},
		{"stable, duplicates count once", stable3, []readReply{{a, true, b1}, {a, true, b1}}, false, Pending, zb},
		{"stable, non-members ignored", stable3, []readReply{{a, true, b1}, {stranger, true, b1}}, false, Pending, zb},
		{"stable, expired", stable3, []readReply{{a, true, b1}}, true, Failed, zb},
		// qp < qa: two of P agree on b2, which may sit on too few
		// acceptors to be chosen.
		{"flexible, prepare quorum only", flexible, []readReply{{a, true, b2}, {b, true, b2}}, false, Pending, zb},
		{"flexible, prepare quorum only, rest older", flexible, []readReply{{a, true, b2}, {b, true, b2}, {c, true, b1}, {d, true, b1}}, false, Failed, zb},
		{"flexible, accept quorum", flexible, []readReply{{a, true, b2}, {b, true, b2}, {c, true, b1}, {d, true, b2}}, false, Success, b2},
		{"joint add, P agrees but S does not", addJoint, []readReply{{a, true, b2}, {b, true, b2}, {c, true, b1}, {d, false, zb}}, false, Failed, zb},
		{"joint add, qa of S via the new member", addJoint, []readReply{{a, true, b2}, {d, true, b2}, {b, true, b2}}, false, Success, b2},
		{"joint add, S agrees but only one of P", addJoint, []readReply{{a, true, b2}, {d, true, b2}, {b, true, b1}, {c, true, b1}}, false, Failed, zb},
		{"joint remove, leaving member is not in P", removeJoint, []readReply{{a, true, b2}, {c, true, b2}}, false, Pending, zb},
		{"joint remove, P and S", removeJoint, []readReply{{a, true, b2}, {c, true, b2}, {b, true, b2}}, false, Success, b2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRead(tc.cfg())
			for _, rep := range tc.replies {
				r.OnRead(rep.inc, rep.ok, rep.acc, val(rep.acc.String(), rep.acc.Counter))
			}
			if tc.expire {
				r.Expire()
			}
			if r.Outcome() != tc.want {
				t.Fatalf("outcome %v, want %v", r.Outcome(), tc.want)
			}
			if tc.want == Success && (r.Ballot() != tc.ballot || string(r.Value().Data) != tc.ballot.String()) {
				t.Fatalf("read %v at %v, want ballot %v", r.Value(), r.Ballot(), tc.ballot)
			}
		})
	}
	if got := len(NewRead(addJoint()).Targets()); got != 4 {
		t.Fatalf("Targets: %d, want P ∪ S", got)
	}
}

// TestClock: every ballot is new, and Observe moves past any ballot shown
// (docs/design.md §2.1).
func TestClock(t *testing.T) {
	clk := NewClock(5)
	prev := mustNext(t, clk)
	for i := 0; i < 100; i++ {
		if i%10 == 0 {
			observe(t, clk, bl(prev.Counter+uint64(i), 9)) // a higher proposer ID on the same counter
		}
		if i%7 == 0 {
			observe(t, clk, bl(1, 1)) // lower: no effect
		}
		shown := bl(prev.Counter, 9)
		next := mustNext(t, clk)
		if !prev.Less(next) || next.Proposer != 5 || clk.ID() != 5 {
			t.Fatalf("Next() = %v after %v", next, prev)
		}
		if i%10 == 0 && !shown.Less(next) {
			t.Fatalf("Next() = %v is not above observed %v", next, shown)
		}
		prev = next
	}
	defer func() {
		if recover() == nil {
			t.Fatal("NewClock(0) did not panic")
		}
	}()
	NewClock(0)
}

func mustNext(t *testing.T, c *Clock) register.Ballot {
	t.Helper()
	b, err := c.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return b
}

func observe(t *testing.T, c *Clock, b register.Ballot) {
	t.Helper()
	if err := c.Observe(b); err != nil {
		t.Fatalf("Observe(%v): %v", b, err)
	}
}

// TestCache: entries are handed out once, bounded LRU (docs/design.md §2.4).
func TestCache(t *testing.T) {
	c := NewCache(2)
	c.Put("x", CacheEntry{Epoch: 1, Ballot: bl(1, 1)})
	c.Put("y", CacheEntry{Epoch: 1, Ballot: bl(2, 1)})
	c.Put("x", CacheEntry{Epoch: 1, Ballot: bl(3, 1)}) // refresh x
	c.Put("z", CacheEntry{Epoch: 1, Ballot: bl(4, 1)}) // evicts y
	if c.Len() != 2 {
		t.Fatalf("Len = %d", c.Len())
	}
	if _, ok := c.Take("y"); ok {
		t.Fatal("y not evicted")
	}
	if e, ok := c.Take("x"); !ok || e.Ballot != bl(3, 1) {
		t.Fatalf("Take(x) = %v %v", e, ok)
	}
	if _, ok := c.Take("x"); ok {
		t.Fatal("an entry was handed out twice")
	}
	c.Drop("z")
	if c.Len() != 0 {
		t.Fatal("Drop")
	}
	c.Put("a", CacheEntry{})
	c.Clear()
	if _, ok := c.Take("a"); ok || c.Len() != 0 {
		t.Fatal("Clear")
	}
	off := NewCache(0)
	off.Put("a", CacheEntry{})
	if _, ok := off.Take("a"); ok {
		t.Fatal("a disabled cache stored an entry")
	}
}

var errMismatch = errors.New("mismatch")

// TestApplyAll: same-key combining applies changes in order, each to the
// result of the one before; a rejected change leaves the value and reports
// its error (docs/design.md §2.3, §2.6).
func TestApplyAll(t *testing.T) {
	put := func(s string) Change {
		return func(cur register.Value) (register.Value, error) { return cur.Put([]byte(s)), nil }
	}
	casFrom := func(from, to string) Change {
		return func(cur register.Value) (register.Value, error) {
			if string(cur.Data) != from {
				return cur, errMismatch
			}
			return cur.Put([]byte(to)), nil
		}
	}
	start := val("s", 1)
	final, res := ApplyAll(start, []Change{put("a"), casFrom("s", "x"), casFrom("a", "b"), Identity, func(cur register.Value) (register.Value, error) { return cur.Delete(), nil }})
	if !final.Tombstone || final.Version != 4 {
		t.Fatalf("final %v", final)
	}
	want := []struct {
		v   string
		err error
	}{{`v2:"a"`, nil}, {`v2:"a"`, errMismatch}, {`v3:"b"`, nil}, {`v3:"b"`, nil}, {"v4:deleted", nil}}
	for i, w := range want {
		if res[i].Value.String() != w.v || !errors.Is(res[i].Err, w.err) || (w.err == nil) != (res[i].Err == nil) {
			t.Fatalf("result %d = %v %v, want %s %v", i, res[i].Value, res[i].Err, w.v, w.err)
		}
	}
	if v, err := Identity(start); err != nil || !v.Equal(start) {
		t.Fatal("Identity")
	}
	if v, res := ApplyAll(start, nil); !v.Equal(start) || len(res) != 0 {
		t.Fatal("empty batch")
	}
	for _, o := range []Outcome{Pending, Success, Failed, Unknown, Outcome(9)} {
		if o.String() == "" {
			t.Fatal("Outcome.String")
		}
	}
}

// TestRefusalOfDuplicateAccept documents what a Nack must mean (docs/design.md
// §2.3: a definite failure is "nothing was accepted anywhere"). If an
// accept request is delivered twice, the acceptor refuses the copy of a
// ballot it already accepted (register: b <= accepted), and a proposer that
// maps every refusal to Nack reports Failed — a retryable definite failure
// — for a value that sits on an acceptor and may still be chosen. The
// deterministic simulation found this with duplicated requests. A refusal
// is definite only when the acceptor's accepted ballot is below the
// attempt's (accepted ballots only grow); otherwise it must count as Lost.
func TestRefusalOfDuplicateAccept(t *testing.T) {
	b5, next := bl(5, 1), bl(6, 1)
	v := val("new", 2)
	acceptors := map[uint64]register.State{
		a: {Promise: bl(4, 2)},
		b: {Promise: bl(7, 2)}, // moved on: refuses
		c: {Promise: bl(7, 2)}, // moved on: refuses
	}
	// The first copy of the accept lands on a; its reply is lost.
	st, ok := acceptors[a].Accept(b5, v, next)
	if !ok {
		t.Fatal("first copy refused")
	}
	acceptors[a] = st
	// The duplicate is refused by a, as are the accepts at b and c.
	for _, naive := range []bool{true, false} {
		w := NewFastWrite(stable3(), b5, val("cur", 1))
		w.Propose(v, next)
		for _, inc := range []uint64{a, b, c} {
			s := acceptors[inc]
			if _, ok := s.Accept(b5, v, next); ok {
				t.Fatalf("acceptor %d accepted", inc)
			}
			r := Nack
			if !naive && !s.Accepted.Less(b5) {
				r = Lost // it may have accepted an earlier copy
			}
			w.OnAccept(inc, r, s.Highest())
		}
		want := map[bool]Outcome{true: Failed, false: Unknown}[naive]
		if w.Outcome() != want {
			t.Fatalf("naive=%v: outcome %v, want %v", naive, w.Outcome(), want)
		}
	}
	if got := acceptors[a]; got.Accepted != b5 || !got.Value.Equal(v) {
		t.Fatalf("the value is on acceptor a: %+v", got)
	}
}

// TestClassifyAccept checks that an accept refusal proves nothing landed
// only when the request was invalid or the acceptor's accepted ballot is
// below the refused one (a duplicate of the same accept may have landed
// before a later ballot replaced it, or before the acceptor moved to a
// later epoch).
func TestClassifyAccept(t *testing.T) {
	b := register.Ballot{Counter: 5, Proposer: 2}
	conflict := func(accepted register.Ballot) AcceptAnswer {
		return AcceptAnswer{Conflict: true, Accepted: accepted}
	}
	for _, tc := range []struct {
		name string
		a    AcceptAnswer
		want Reply
	}{
		{"accepted", AcceptAnswer{OK: true}, Ack},
		{"conflict, nothing accepted", conflict(register.Ballot{}), Nack},
		{"conflict below", conflict(register.Ballot{Counter: 5, Proposer: 1}), Nack},
		{"conflict at the ballot", conflict(b), Lost},
		{"conflict just above", conflict(register.Ballot{Counter: 5, Proposer: 3}), Lost},
		{"conflict above", conflict(register.Ballot{Counter: 9, Proposer: 1}), Lost},
		{"invalid request", AcceptAnswer{Invalid: true}, Nack},
		{"stale epoch, not admitted, no answer", AcceptAnswer{}, Lost},
		{"stale epoch with a lower accepted ballot it did not vouch for", AcceptAnswer{Accepted: register.Ballot{Counter: 1}}, Lost},
	} {
		if got := ClassifyAccept(b, tc.a); got != tc.want {
			t.Errorf("%s: ClassifyAccept(%v, %+v) = %v, want %v", tc.name, b, tc.a, got, tc.want)
		}
	}
}

// TestClockAt: a clock started at a counter issues ballots above it, and a
// restart at a later start is above everything the earlier clock issued.
func TestClockAt(t *testing.T) {
	c := NewClockAt(7, 1000)
	first := mustNext(t, c)
	if first != (register.Ballot{Counter: 1001, Proposer: 7}) {
		t.Fatalf("first ballot = %v, want 1001.7", first)
	}
	for range 10 {
		mustNext(t, c)
	}
	last := mustNext(t, c)
	restarted := mustNext(t, NewClockAt(7, 2000))
	if !last.Less(restarted) {
		t.Fatalf("restarted clock issued %v, not above %v", restarted, last)
	}
	if got := mustNext(t, NewClock(7)); got.Counter != 1 {
		t.Fatalf("NewClock starts at %v, want counter 1", got)
	}
}

// TestClockNeverWraps: a clock at the top of the counter space must fail,
// never wrap to a ballot below the ones it issued (docs/design.md §2.1).
func TestClockNeverWraps(t *testing.T) {
	c := NewClockAt(7, math.MaxUint64-1)
	last := mustNext(t, c)
	if last.Counter != math.MaxUint64 {
		t.Fatalf("first ballot = %v, want counter 2^64-1", last)
	}
	for range 3 {
		next, err := c.Next()
		if !errors.Is(err, ErrClockExhausted) || !next.IsZero() {
			t.Fatalf("Next() after %v = %v, %v; want ErrClockExhausted", last, next, err)
		}
	}
	// An unbounded clock shown 2^64-1 is exhausted too, not wrapped.
	u := NewClock(8)
	observe(t, u, bl(math.MaxUint64, 1))
	if next, err := u.Next(); !errors.Is(err, ErrClockExhausted) {
		t.Fatalf("Next() after observing 2^64-1 = %v, %v; want ErrClockExhausted", next, err)
	}
}

// TestWallClock: a proposer's clock starts at its wall clock and does not
// fast-forward to a ballot more than its lead ahead of it; it says so and
// keeps its counter, so every other key goes on at ordinary ballots.
func TestWallClock(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 40, 0, 0, time.UTC)
	clock := uint64(now.UnixMicro())
	c := NewWallClock(9, func() time.Time { return now }, time.Minute)
	if first := mustNext(t, c); first != bl(clock+1, 9) {
		t.Fatalf("first ballot = %v, want %d.9", first, clock+1)
	}
	// Within the lead: followed.
	near := bl(clock+uint64(time.Minute.Microseconds()), 3)
	observe(t, c, near)
	if next := mustNext(t, c); !near.Less(next) {
		t.Fatalf("Next() = %v, not above %v", next, near)
	}
	for _, far := range []register.Ballot{bl(clock+uint64(time.Minute.Microseconds())+2, 3), bl(math.MaxUint64, 3)} {
		before := mustNext(t, c)
		err := c.Observe(far)
		if !errors.Is(err, register.ErrTooFarAhead) || !strings.Contains(err.Error(), "ahead of this proposer's clock") {
			t.Fatalf("Observe(%v) = %v; want a LeadError naming the proposer's clock", far, err)
		}
		if next := mustNext(t, c); next.Counter != before.Counter+1 {
			t.Fatalf("after refusing %v the clock went from %v to %v", far, before, next)
		}
	}
	// Time passes: the same ballot is within the lead now.
	now = now.Add(time.Hour)
	observe(t, c, bl(clock+uint64(time.Minute.Microseconds())+2, 3))
	// And the counter follows the time: a proposer that waited comes back
	// above the ballots others issued meanwhile.
	if next, want := mustNext(t, c), uint64(now.UnixMicro()); next.Counter != want {
		t.Fatalf("an hour later Next() = %v, want counter %d", next, want)
	}
}
