package keyproc

import (
	"fmt"
	"time"

	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// Op is one caller's change of one key. The driver fills in the exported
// fields before Submit and never changes them after; the machine keeps its
// own state in the others.
type Op struct {
	// Change computes the new value (nil for a Resolve).
	Change round.Change
	// Identity: the change never alters the value (a read's fallback,
	// Touch, Resolve), so leaving early never leaves an unknown outcome.
	Identity bool
	// Fresh: prepare with a fresh ballot even when a 1RTT promise is cached
	// (Touch, the rescan of a membership change).
	Fresh bool
	// Above: the group's attempt must not propose below a ballot its
	// prepare replies showed (Touch, the rescan: round.Write.Outranked,
	// docs/design.md §5). An outranked attempt ends before its accept, a
	// definite failure, and the next one prepares above the ballot shown.
	Above bool
	// All: the group's accept must be acknowledged by every member of S,
	// and carries no 1RTT promise (the tombstone GC's write,
	// docs/design.md §10: afterwards promise == accepted == the ballot on
	// every member). Set with Identity and Fresh (GCOp). An attempt that
	// misses a member fails (or ends unknown, which for an identity change
	// is harmless) and is retried like any other.
	All bool
	// Resolve, when not nil, makes the op a Resolve of an unknown outcome
	// whose proposals these are: it runs alone, settles them with a fresh
	// ballot and an identity proposal, and answers with a Resolution.
	Resolve []round.Proposal
	// Ref is the driver's handle (its caller); the machine never looks at it.
	Ref any

	state    opState
	failures int
}

// TouchOp is the op of a touch, the rescan of one key (proposer.Client.Touch
// and Rescan, docs/design.md §5): an identity change that prepares with a
// fresh ballot and does not propose below a higher ballot its prepare
// replies showed. Every driver of a rescan submits this op.
func TouchOp() Op {
	return Op{Change: round.Identity, Identity: true, Fresh: true, Above: true}
}

// GCOp is the op of the tombstone GC's write of one key (docs/design.md
// §10): Touch's identity change with a fresh ballot, not proposed below a
// higher ballot its prepare showed, whose accept needs every member of S
// and carries no 1RTT promise. The answer's Value says whether the key was
// still a tombstone and Ballot at which ballot every member accepted it.
func GCOp() Op {
	return Op{Change: round.Identity, Identity: true, Fresh: true, Above: true, All: true}
}

type opState uint8

const (
	opNew       opState = iota
	opQueued            // in no proposal that was sent
	opProposed          // part of a proposal that was sent
	opDone              // answered
	opAbandoned         // its caller left
)

func (o *Op) live() bool { return o.state == opQueued || o.state == opProposed }

// Resolution is what a Resolve found out.
type Resolution int

const (
	// Undecided: other writers hid whether the change took effect; it will
	// not take effect later.
	Undecided Resolution = iota
	// Applied: the change took effect, once.
	Applied
	// NotApplied: the change did not take effect and never will.
	NotApplied
)

func (r Resolution) String() string {
	switch r {
	case Undecided:
		return "undecided"
	case Applied:
		return "applied"
	case NotApplied:
		return "not applied"
	}
	return fmt.Sprintf("Resolution(%d)", int(r))
}

// Answer is an op's final result.
type Answer struct {
	Op *Op
	// Outcome is round.Success, round.Failed (definite: the change did not
	// take effect and never will) or round.Unknown.
	Outcome round.Outcome
	// Value is the register's value right after the op's change (Success).
	Value register.Value
	// Ballot is the ballot of the proposal that succeeded (Success).
	Ballot register.Ballot
	// Err is, on Success, the change's own error (it rejected the value:
	// nothing changed, and that is authoritative); on Failed, why; on
	// Unknown, what ended the last attempt.
	Err error
	// NoQuorum: a Failed answer because attempts did not get a quorum;
	// Attempts is how many failed (0 when the machine gave up settling).
	// Otherwise Err is the cause the driver passed (Abandon, Close).
	NoQuorum bool
	Attempts int
	// Contention: a Failed answer because other proposers kept winning
	// the key (Config.MaxConflicts), not for want of a quorum.
	Contention bool
	// Sealed: an Unknown answer after the group froze the key (an identity
	// proposal above every pending proposal was chosen): the change either
	// has taken effect already or never will, and a Resolve's answer is
	// final.
	Sealed bool
	// Resolution is a Resolve's answer (Success).
	Resolution Resolution
	// Pending are the proposals that may still land (Unknown), and
	// Intended the op's value in the newest of them where its change did
	// not fail (HasIntended false when there is none).
	Pending     []round.Proposal
	Intended    register.Value
	HasIntended bool
}

// Kind is the kind of a request.
type Kind uint8

const (
	Prepare Kind = iota + 1
	Accept
	Read
)

func (k Kind) String() string {
	switch k {
	case Prepare:
		return "prepare"
	case Accept:
		return "accept"
	case Read:
		return "read"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Send is the request of one phase of an attempt, to each member of To.
// Replies name its Attempt.
type Send struct {
	Kind    Kind
	Attempt uint64
	Epoch   uint64
	Ballot  register.Ballot // prepare, accept
	Next    register.Ballot // accept: the 1RTT promise, zero for none
	Value   register.Value  // accept
	// To are the members to send it to; each request names the member's
	// incarnation (docs/design.md §4). Read only.
	To []membership.Member
}

// PrepareReply is one member's answer to a prepare, as round.Write.OnPrepare
// takes it, and the transport error, if any, for the error the machine
// reports.
type PrepareReply struct {
	Attempt     uint64
	Incarnation uint64
	Reply       round.Reply
	Accepted    register.Ballot
	Value       register.Value
	Conflict    register.Ballot
	Err         error
}

// AcceptReply is one member's answer to an accept as the wire carries it;
// the machine classifies it (round.ClassifyAccept). Refused: the request
// was refused as a whole before any key was looked at (a stale epoch,
// another incarnation). Conflict is the ballot a refusal showed, for the
// clock.
type AcceptReply struct {
	Attempt     uint64
	Incarnation uint64
	Answer      round.AcceptAnswer
	Refused     bool
	Conflict    register.Ballot
	Err         error
}

// Apply asks the driver to run the changes of Ops, in order, on Cur (with
// Run) and to pass the result to Machine.OnApplied.
type Apply struct {
	Attempt uint64
	Ops     []*Op
	Cur     register.Value
}

// Run applies the changes (round.ApplyAll). It calls the callers' code, so
// a driver that guards the machine with a lock runs it without the lock.
func (a *Apply) Run() ApplyResult {
	changes := make([]round.Change, len(a.Ops))
	for i, o := range a.Ops {
		changes[i] = o.Change
	}
	v, res := round.ApplyAll(a.Cur, changes)
	return ApplyResult{Attempt: a.Attempt, Ops: a.Ops, Value: v, Results: res}
}

// ApplyResult is the result of an Apply.
type ApplyResult struct {
	Attempt uint64
	Ops     []*Op
	Value   register.Value
	Results []round.Applied
}

// Proposal is an accept the machine sent: its ballot and value (and, while
// its outcome is unknown, the witnesses gathered about it, round.Witness),
// and the ops whose changes it carries with their results.
type Proposal struct {
	round.Proposal
	Ops     []*Op
	Results []round.Applied
}

// Settle says what an attempt did about earlier proposals of its group
// whose outcome was unknown (round.Settle).
type Settle uint8

const (
	// SettleNone: there were none.
	SettleNone Settle = iota
	// SettleOwn: the newest value contains one of them (round.Judge:
	// derived); the attempt proposes it again, unchanged.
	SettleOwn
	// SettleFresh: the newest value derives from none of them; the attempt
	// applies the changes afresh.
	SettleFresh
	// SettleAmbiguous: the newest value may derive from one; the attempt
	// freezes the key (an identity proposal) and the machine answers with
	// an unknown outcome, sealed if the freeze succeeded.
	SettleAmbiguous
)

func (s Settle) String() string {
	return [...]string{"none", "own", "fresh", "ambiguous"}[s]
}

// Round describes an attempt that ended, for metrics and tests.
type Round struct {
	Ballot register.Ballot
	// Fast: a 1RTT attempt (no prepare).
	Fast bool
	// Changes is the number of ops the attempt's proposal carried (the
	// group's size when it made none).
	Changes int
	// Outcome is round.Success, round.Failed or round.Unknown.
	Outcome  round.Outcome
	Settle   Settle
	Duration time.Duration
}

// Ready is what the machine asks of its driver after an input.
type Ready struct {
	// Send is the request to send now, if To is not empty.
	Send Send
	// Proposal is the proposal an accept in Send carries.
	Proposal *Proposal
	// Apply, when set, asks for the changes to be run (see Apply).
	Apply *Apply
	// Answers are final answers to ops.
	Answers []Answer
	// Rounds are the attempts that ended.
	Rounds []Round
	// Rediscover asks the driver to look for a newer configuration beyond
	// the members it knows (the library asks its bootstrap endpoints).
	Rediscover bool
}

// Empty reports whether r asks for nothing.
func (r *Ready) Empty() bool {
	return len(r.Send.To) == 0 && r.Apply == nil && len(r.Answers) == 0 && len(r.Rounds) == 0 && !r.Rediscover
}
