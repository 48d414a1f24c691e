package acceptcore

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kshaka-io/kshaka/register"
)

// ErrInvalidRequest is wrapped by every refusal of malformed input: empty
// or oversized keys and values, invalid ballots or ballots more than
// Options.MaxBallotLead ahead of the clock, oversized batches, duplicate
// keys, missing values, malformed lineages (register.CheckLineage), and a floor raise that would saturate. Nothing may
// be written for a refused request. Package acceptor's ErrInvalidRequest
// is this error.
var ErrInvalidRequest = errors.New("invalid request")

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
// clock: it is also register.ErrTooFarAhead, which the gRPC layer reports
// (a proposer counts it as a lost reply, not as a definite refusal).
type aheadError struct{ error }

func (e aheadError) Unwrap() []error { return []error{e.error, register.ErrTooFarAhead} }

// checkKeys checks the batch size, each key's size and that no key repeats.
func (c *Core) checkKeys(p *problems, n int, key func(i int) []byte) {
	if n > c.opts.MaxBatchItems {
		p.add("batch has %d items, more than the limit of %d", n, c.opts.MaxBatchItems)
		return
	}
	seen := make(map[string]int, n)
	for i := range n {
		k := key(i)
		switch {
		case len(k) == 0:
			p.add("item %d: key is empty", i)
			continue
		case len(k) > c.opts.MaxKeySize:
			p.add("item %d: key is %d bytes, more than the limit of %d", i, len(k), c.opts.MaxKeySize)
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
// MaxBallotLead ahead of the clock that read now (docs/design.md §2.1).
func (c *Core) checkBallot(p *problems, i int, what string, b register.Ballot, now time.Time) {
	if !b.Valid() {
		p.add("item %d: %s %v is missing or invalid (counter and proposer must be non-zero)", i, what, b)
		return
	}
	if c.opts.LogicalCounters {
		return
	}
	if err := register.CheckLead(b.Counter, now, c.opts.MaxBallotLead, "this acceptor's"); err != nil {
		p.add("item %d: %s %v: %v: check the clock of the proposer that sent it", i, what, b, err)
		p.ahead = true
	}
}

// CheckPrepare validates a prepare whole; now is the acceptor's clock. The
// error wraps ErrInvalidRequest, and also register.ErrTooFarAhead when a
// ballot is beyond the lead.
func (c *Core) CheckPrepare(items []PrepareItem, now time.Time) error {
	var p problems
	c.checkKeys(&p, len(items), func(i int) []byte { return items[i].Key })
	if len(items) <= c.opts.MaxBatchItems {
		for i, it := range items {
			c.checkBallot(&p, i, "ballot", it.Ballot, now)
		}
	}
	return p.err()
}

// CheckAccept validates an accept whole; now is the acceptor's clock. The
// error is like CheckPrepare's.
func (c *Core) CheckAccept(items []AcceptItem, now time.Time) error {
	var p problems
	c.checkKeys(&p, len(items), func(i int) []byte { return items[i].Key })
	if len(items) > c.opts.MaxBatchItems {
		return p.err()
	}
	for i, it := range items {
		c.checkBallot(&p, i, "ballot", it.Ballot, now)
		if !it.Next.IsZero() {
			c.checkBallot(&p, i, "next ballot", it.Next, now)
			if it.Next.Compare(it.Ballot) <= 0 {
				p.add("item %d: next ballot %v must be higher than ballot %v", i, it.Next, it.Ballot)
			}
		}
		switch {
		case !it.HasValue:
			p.add("item %d: value is missing", i)
		case len(it.Value.Data) > c.opts.MaxValueSize:
			p.add("item %d: value is %d bytes, more than the limit of %d", i, len(it.Value.Data), c.opts.MaxValueSize)
		case it.Value.Tombstone && len(it.Value.Data) > 0:
			p.add("item %d: a tombstone carries no data (got %d bytes)", i, len(it.Value.Data))
		}
		if it.HasValue {
			if err := register.CheckLineage(it.Value); err != nil {
				p.add("item %d: %v", i, err)
			}
		}
	}
	return p.err()
}

// CheckRead validates a read whole.
func (c *Core) CheckRead(keys [][]byte) error {
	var p problems
	c.checkKeys(&p, len(keys), func(i int) []byte { return keys[i] })
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
