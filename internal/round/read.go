package round

import (
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// Read is a one-round-trip quorum read of one key (docs/design.md §2.5): Read
// requests go to P ∪ S. It succeeds when the replies that report one
// accepted ballot b include both a prepare quorum of P and an accept quorum
// of S: the accept quorum means b is chosen, the prepare quorum means no
// later ballot had been chosen when the read started. Agreement of a prepare
// quorum alone is not enough when qp < qa. When agreement becomes impossible
// the outcome is Failed and the caller falls back to an identity change.
type Read struct {
	cfg     *membership.Config
	replied map[uint64]bool
	byBal   map[register.Ballot]*tally
	// pending members of P and of S that have not replied.
	pendingP, pendingS int
	outcome            Outcome
	ballot             register.Ballot
	value              register.Value
}

type tally struct {
	inP, inS int
	value    register.Value
}

// NewRead starts a quorum read under cfg.
func NewRead(cfg *membership.Config) *Read {
	return &Read{
		cfg:      cfg,
		replied:  map[uint64]bool{},
		byBal:    map[register.Ballot]*tally{},
		pendingP: len(cfg.PrepareSet()),
		pendingS: len(cfg.AcceptSet()),
	}
}

// Targets are the members to send the read to: P ∪ S.
func (r *Read) Targets() []membership.Member { return r.cfg.Members }

// Outcome is Pending, Success or Failed.
func (r *Read) Outcome() Outcome { return r.outcome }

// Value is the value read, valid on Success, and Ballot its accepted ballot.
func (r *Read) Value() register.Value   { return r.value }
func (r *Read) Ballot() register.Ballot { return r.ballot }

// OnRead feeds one acceptor's reply: ok with its accepted ballot and value,
// or !ok for an error or a lost reply. Non-members and repeats are ignored.
func (r *Read) OnRead(incarnation uint64, ok bool, accepted register.Ballot, v register.Value) {
	if r.outcome != Pending || r.replied[incarnation] {
		return
	}
	m, member := r.cfg.Member(incarnation)
	if !member {
		return
	}
	r.replied[incarnation] = true
	if m.Prepare {
		r.pendingP--
	}
	if m.Accept {
		r.pendingS--
	}
	if ok {
		t := r.byBal[accepted]
		if t == nil {
			t = &tally{value: v}
			r.byBal[accepted] = t
		}
		if m.Prepare {
			t.inP++
		}
		if m.Accept {
			t.inS++
		}
		if t.inP >= r.cfg.PrepareQuorum && t.inS >= r.cfg.AcceptQuorum {
			r.outcome, r.ballot, r.value = Success, accepted, t.value
			return
		}
	}
	if !r.possible() {
		r.outcome = Failed
	}
}

func (r *Read) possible() bool {
	if r.pendingP >= r.cfg.PrepareQuorum && r.pendingS >= r.cfg.AcceptQuorum {
		return true // a ballot nobody reported yet could still win
	}
	for _, t := range r.byBal {
		if t.inP+r.pendingP >= r.cfg.PrepareQuorum && t.inS+r.pendingS >= r.cfg.AcceptQuorum {
			return true
		}
	}
	return false
}

// Expire ends a read whose replies did not all come in time.
func (r *Read) Expire() {
	if r.outcome == Pending {
		r.outcome = Failed
	}
}
