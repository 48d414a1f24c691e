package membership

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kshaka-io/kshaka/register"
)

// Member is one acceptor of a configuration. Incarnation identifies the
// acceptor's storage (docs/design.md §4): an acceptor that lost its disk comes back
// with a new incarnation and is a new member.
type Member struct {
	// ID is a stable, human-readable name (the pod name), unique within a
	// configuration.
	ID string
	// Addr is the dialable host:port of the acceptor's gRPC server.
	Addr string
	// Incarnation is the acceptor's storage identity; never zero.
	Incarnation uint64
	// Prepare is true when the member is in the prepare set P.
	Prepare bool
	// Accept is true when the member is in the accept set S.
	Accept bool
}

// Config is one configuration of the cluster.
type Config struct {
	// Epoch orders configurations; each new configuration has a higher one.
	Epoch uint64
	// Members are the acceptors of P ∪ S, sorted by ID.
	Members []Member
	// PrepareQuorum (qp) is how many members of P a prepare needs.
	PrepareQuorum int
	// AcceptQuorum (qa) is how many members of S an accept needs.
	AcceptQuorum int

	// RemovedBallot (R) and VersionFloor (VF) are the floors of tombstone
	// GC (docs/design.md §10). They only grow from one epoch to the next
	// (CheckFloors). An acceptor under this configuration treats a key it
	// has no record of as promised at least R, so no ballot ≤ R is promised
	// or accepted on it, and it removes a collected tombstone only when its
	// ballot is ≤ R and its version ≤ VF. A proposer whose prepare quorum
	// shows no live value below version VF builds on a tombstone at VF, so
	// a recreated key's versions start above VF. Zero: no GC yet.
	RemovedBallot register.Ballot
	VersionFloor  uint64
}

// Sentinel errors of this package.
var (
	// ErrInvalid is wrapped by every validation error.
	ErrInvalid = errors.New("invalid configuration")
	// ErrStaleEpoch: a request carries an epoch lower than the acceptor's.
	ErrStaleEpoch = errors.New("stale configuration epoch")
	// ErrNotAdmitted: the acceptor's configuration does not list its incarnation.
	ErrNotAdmitted = errors.New("acceptor not admitted by its configuration")
	// ErrFloorsLowered is wrapped by CheckFloors' refusal (and so by
	// Compatible's): a configuration may not lower the GC floors of the one
	// before it.
	ErrFloorsLowered = errors.New("configuration lowers the GC floors")
)

// Majority returns q(n) = ⌊n/2⌋ + 1.
func Majority(n int) int { return n/2 + 1 }

// Stable returns the configuration where P = S = members with majority
// quorums. Members are copied and sorted by ID.
func Stable(epoch uint64, members ...Member) Config {
	ms := make([]Member, len(members))
	for i, m := range members {
		m.Prepare, m.Accept = true, true
		ms[i] = m
	}
	sortMembers(ms)
	return Config{Epoch: epoch, Members: ms, PrepareQuorum: Majority(len(ms)), AcceptQuorum: Majority(len(ms))}
}

func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
}

// Clone returns a deep copy of c.
func (c Config) Clone() Config {
	c.Members = slices.Clone(c.Members)
	return c
}

// Equal reports whether c and o are the same configuration, floors included.
func (c Config) Equal(o Config) bool {
	return c.Epoch == o.Epoch && c.PrepareQuorum == o.PrepareQuorum && c.AcceptQuorum == o.AcceptQuorum &&
		c.RemovedBallot == o.RemovedBallot && c.VersionFloor == o.VersionFloor && slices.Equal(c.Members, o.Members)
}

// PrepareSet returns the members of P.
func (c Config) PrepareSet() []Member { return c.filter(func(m Member) bool { return m.Prepare }) }

// AcceptSet returns the members of S.
func (c Config) AcceptSet() []Member { return c.filter(func(m Member) bool { return m.Accept }) }

func (c Config) filter(keep func(Member) bool) []Member {
	var out []Member
	for _, m := range c.Members {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// Member returns the member with the given incarnation.
func (c Config) Member(incarnation uint64) (Member, bool) {
	for _, m := range c.Members {
		if m.Incarnation == incarnation {
			return m, true
		}
	}
	return Member{}, false
}

// MemberByID returns the member with the given ID.
func (c Config) MemberByID(id string) (Member, bool) {
	for _, m := range c.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// IsStable reports whether P = S = all members with majority quorums.
func (c Config) IsStable() bool {
	for _, m := range c.Members {
		if !m.Prepare || !m.Accept {
			return false
		}
	}
	q := Majority(len(c.Members))
	return c.PrepareQuorum == q && c.AcceptQuorum == q
}

// Validate reports every problem of c at once, each wrapped with ErrInvalid.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...)))
	}
	if c.Epoch == 0 {
		bad("epoch must be positive")
	}
	ids := map[string]bool{}
	incs := map[uint64]bool{}
	var np, ns int
	for i, m := range c.Members {
		switch {
		case m.ID == "":
			bad("member %d has an empty ID", i)
		case ids[m.ID]:
			bad("member ID %q appears twice", m.ID)
		}
		ids[m.ID] = true
		switch {
		case m.Incarnation == 0:
			bad("member %q has incarnation 0", m.ID)
		case incs[m.Incarnation]:
			bad("incarnation %x appears twice", m.Incarnation)
		}
		incs[m.Incarnation] = true
		if m.Addr == "" {
			bad("member %q has no address", m.ID)
		}
		if !m.Prepare && !m.Accept {
			bad("member %q is in neither the prepare nor the accept set", m.ID)
		}
		if m.Prepare {
			np++
		}
		if m.Accept {
			ns++
		}
	}
	if !slices.IsSortedFunc(c.Members, func(a, b Member) int { return strings.Compare(a.ID, b.ID) }) {
		bad("members are not sorted by ID")
	}
	if c.PrepareQuorum < 1 || c.PrepareQuorum > np {
		bad("prepare quorum %d is outside 1..%d (the prepare set's size)", c.PrepareQuorum, np)
	}
	if c.AcceptQuorum < 1 || c.AcceptQuorum > ns {
		bad("accept quorum %d is outside 1..%d (the accept set's size)", c.AcceptQuorum, ns)
	}
	if len(errs) == 0 && !Intersect(c, c) {
		bad("some prepare quorum (%d of %d) misses some accept quorum (%d of %d)", c.PrepareQuorum, np, c.AcceptQuorum, ns)
	}
	return errors.Join(errs...)
}

// Intersect reports whether every prepare quorum of a intersects every accept
// quorum of b. Members are matched by incarnation.
//
// With x = |Pa \ Sb|, y = |Sb \ Pa| and z = |Pa ∩ Sb|, a disjoint pair of
// quorums exists exactly when the quorums fit beside each other:
// max(0, qp−x) + max(0, qa−y) ≤ z.
func Intersect(a, b Config) bool {
	inS := map[uint64]bool{}
	for _, m := range b.Members {
		if m.Accept {
			inS[m.Incarnation] = true
		}
	}
	var x, z int
	for _, m := range a.Members {
		if !m.Prepare {
			continue
		}
		if inS[m.Incarnation] {
			z++
		} else {
			x++
		}
	}
	y := len(inS) - z
	return max(0, a.PrepareQuorum-x)+max(0, b.AcceptQuorum-y) > z
}

// Compatible reports whether configurations a and b may follow each other:
// each is valid on its own and the quorums of each intersect those of the
// other in both directions (docs/design.md §3).
func Compatible(a, b Config) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if err := b.Validate(); err != nil {
		return err
	}
	if !Intersect(a, b) || !Intersect(b, a) {
		return fmt.Errorf("%w: quorums of epochs %d and %d do not intersect", ErrInvalid, a.Epoch, b.Epoch)
	}
	return CheckFloors(a, b)
}

// CheckFloors checks that next, which follows prev, keeps prev's GC floors
// or raises them (docs/design.md §10): lowering RemovedBallot would let a
// ballot at or below a collected tombstone's be accepted on the absent key,
// lowering VersionFloor would let a recreated key reuse versions. The error
// wraps ErrInvalid and ErrFloorsLowered and names both floors.
func CheckFloors(prev, next Config) error {
	var bad []string
	if next.RemovedBallot.Less(prev.RemovedBallot) {
		bad = append(bad, fmt.Sprintf("removed ballot %v is below %v", next.RemovedBallot, prev.RemovedBallot))
	}
	if next.VersionFloor < prev.VersionFloor {
		bad = append(bad, fmt.Sprintf("version floor %d is below %d", next.VersionFloor, prev.VersionFloor))
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w: epoch %d after epoch %d: %s; carry the floors of the installed configuration forward",
		ErrInvalid, ErrFloorsLowered, next.Epoch, prev.Epoch, strings.Join(bad, ", "))
}

// WithFloorsOf returns c with the GC floors of prev where c's are lower, so
// a configuration built from members alone (Stable) keeps the floors of
// the one it follows.
func (c Config) WithFloorsOf(prev Config) Config {
	c.RemovedBallot = c.RemovedBallot.Max(prev.RemovedBallot)
	c.VersionFloor = max(c.VersionFloor, prev.VersionFloor)
	return c
}

// Check is the gate an acceptor with the given incarnation and configuration
// applies to every prepare, accept and read carrying reqEpoch (docs/design.md §3–§4).
// It returns ErrNotAdmitted when c does not list the incarnation and
// ErrStaleEpoch when reqEpoch is lower than c's epoch. Higher epochs pass: that
// is the paper's mixed state during a step.
func (c *Config) Check(incarnation, reqEpoch uint64) error {
	if c == nil || c.Epoch == 0 {
		return ErrNotAdmitted
	}
	if _, ok := c.Member(incarnation); !ok {
		return ErrNotAdmitted
	}
	if reqEpoch < c.Epoch {
		return ErrStaleEpoch
	}
	return nil
}

func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d P{", c.Epoch)
	sep := ""
	for _, m := range c.PrepareSet() {
		b.WriteString(sep + m.ID)
		sep = ","
	}
	fmt.Fprintf(&b, "}/%d S{", c.PrepareQuorum)
	sep = ""
	for _, m := range c.AcceptSet() {
		b.WriteString(sep + m.ID)
		sep = ","
	}
	fmt.Fprintf(&b, "}/%d", c.AcceptQuorum)
	if !c.RemovedBallot.IsZero() || c.VersionFloor > 0 {
		fmt.Fprintf(&b, " R=%v VF=%d", c.RemovedBallot, c.VersionFloor)
	}
	return b.String()
}
