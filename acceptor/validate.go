package acceptor

import (
	"fmt"
	"strings"
	"time"

	"github.com/kshaka-io/kshaka/register"
)

// The operations of the core, in register types. The gRPC layer converts
// requests into them; a nil protobuf field becomes a missing flag, so that
// validation can tell "absent" from "zero".

type prepareOp struct {
	Key    []byte
	Ballot register.Ballot
}

type prepareOutcome struct {
	OK       bool
	Conflict register.Ballot // highest ballot seen, on conflict
	Accepted register.Ballot
	Value    register.Value
}

type acceptOp struct {
	Key      []byte
	Ballot   register.Ballot
	Value    register.Value
	HasValue bool
	// Next is the optional one-round-trip promise; zero when absent.
	Next register.Ballot
}

type acceptOutcome struct {
	OK       bool
	Conflict register.Ballot
	// Accepted is the accepted ballot when the accept was refused.
	Accepted register.Ballot
}

type readOutcome struct {
	Accepted register.Ballot
	Value    register.Value
}

// maxReported bounds how many problems one refusal lists.
const maxReported = 10

// problems collects what is wrong with a request.
type problems struct {
	list  []string
	extra int
	// ahead: a ballot was too far ahead of the clock, a refusal that a
	// later delivery of the same request may not get.
	ahead bool
}

func (p *problems) add(format string, args ...any) {
	if len(p.list) == maxReported {
		p.extra++
		return
	}
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	msg := strings.Join(p.list, "; ")
	if p.extra > 0 {
		msg += fmt.Sprintf("; and %d more", p.extra)
	}
	err := fmt.Errorf("%w: %s", ErrInvalidRequest, msg)
	if p.ahead {
		return aheadError{err}
	}
	return err
}

// aheadError is an invalid request with a ballot too far ahead of the
// clock: it is also register.ErrTooFarAhead, which statusErr reports.
type aheadError struct{ error }

func (e aheadError) Unwrap() []error { return []error{e.error, register.ErrTooFarAhead} }

// limits are the request limits of Options. lead is MaxBallotLead: a ballot
// counter more than lead ahead of the acceptor's clock is refused.
type limits struct {
	maxKey, maxValue, maxItems int
	lead                       time.Duration
}

// checkKeys checks the batch size, each key's size and that no key repeats.
func (l limits) checkKeys(p *problems, n int, key func(i int) []byte) {
	if n > l.maxItems {
		p.add("batch has %d items, more than the limit of %d", n, l.maxItems)
		return
	}
	seen := make(map[string]int, n)
	for i := range n {
		k := key(i)
		switch {
		case len(k) == 0:
			p.add("item %d: key is empty", i)
			continue
		case len(k) > l.maxKey:
			p.add("item %d: key is %d bytes, more than the limit of %d", i, len(k), l.maxKey)
			continue
		}
		if j, dup := seen[string(k)]; dup {
			p.add("item %d: key %s repeats item %d", i, quoteKey(k), j)
			continue
		}
		seen[string(k)] = i
	}
}

// checkBallot checks that b is a ballot a proposer can send, at most
// l.lead ahead of the acceptor's clock, which read now (DESIGN §2.1).
func (l limits) checkBallot(p *problems, i int, what string, b register.Ballot, now time.Time) {
	if !b.Valid() {
		p.add("item %d: %s %v is missing or invalid (counter and proposer must be non-zero)", i, what, b)
		return
	}
	if err := register.CheckLead(b.Counter, now, l.lead, "this acceptor's"); err != nil {
		p.add("item %d: %s %v: %v: check the clock of the proposer that sent it", i, what, b, err)
		p.ahead = true
	}
}

// checkPrepare validates a prepare whole; now is the acceptor's clock.
func (l limits) checkPrepare(ops []prepareOp, now time.Time) error {
	var p problems
	l.checkKeys(&p, len(ops), func(i int) []byte { return ops[i].Key })
	if len(ops) <= l.maxItems {
		for i, op := range ops {
			l.checkBallot(&p, i, "ballot", op.Ballot, now)
		}
	}
	return p.err()
}

// checkAccept validates an accept whole; now is the acceptor's clock.
func (l limits) checkAccept(ops []acceptOp, now time.Time) error {
	var p problems
	l.checkKeys(&p, len(ops), func(i int) []byte { return ops[i].Key })
	if len(ops) > l.maxItems {
		return p.err()
	}
	for i, op := range ops {
		l.checkBallot(&p, i, "ballot", op.Ballot, now)
		if !op.Next.IsZero() {
			l.checkBallot(&p, i, "next ballot", op.Next, now)
			if op.Next.Compare(op.Ballot) <= 0 {
				p.add("item %d: next ballot %v must be higher than ballot %v", i, op.Next, op.Ballot)
			}
		}
		switch {
		case !op.HasValue:
			p.add("item %d: value is missing", i)
		case len(op.Value.Data) > l.maxValue:
			p.add("item %d: value is %d bytes, more than the limit of %d", i, len(op.Value.Data), l.maxValue)
		case op.Value.Tombstone && len(op.Value.Data) > 0:
			p.add("item %d: a tombstone carries no data (got %d bytes)", i, len(op.Value.Data))
		}
	}
	return p.err()
}

func (l limits) checkRead(keys [][]byte) error {
	var p problems
	l.checkKeys(&p, len(keys), func(i int) []byte { return keys[i] })
	return p.err()
}

// quoteKey prints a key for an error message, shortened when long.
func quoteKey(k []byte) string {
	const max = 64
	if len(k) > max {
		return fmt.Sprintf("%q… (%d bytes)", k[:max], len(k))
	}
	return fmt.Sprintf("%q", k)
}
