package sim

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/membership/change"
	"github.com/kshaka-io/kshaka/register"
)

// ExploreChange is one membership change the explorer's operator is asked
// for, once the change before it is done.
type ExploreChange uint8

const (
	// ExploreAdd asks for one member more (the next free slot).
	ExploreAdd ExploreChange = iota + 1
	// ExploreRemove asks for one member less (the member in the last slot).
	ExploreRemove
	// ExploreLose loses one member's disk (the explorer tries each member):
	// the operator retires it and replaces it, a removal then an add.
	ExploreLose
)

func (c ExploreChange) String() string {
	switch c {
	case ExploreAdd:
		return "add"
	case ExploreRemove:
		return "remove"
	case ExploreLose:
		return "lose"
	}
	return fmt.Sprintf("ExploreChange(%d)", int(c))
}

// ExploreProposer is one proposer of the exploration.
type ExploreProposer struct {
	// Writes is how many writes it makes, one after the other.
	Writes int
	// Tries is how many attempts a write may take (default 1).
	Tries int
	// Atomic runs each phase of its rounds as one step (on one set of
	// acceptors at once) instead of message by message. A proposer that
	// is not atomic may have its accept land on any non-empty subset of S
	// (an unknown outcome on a minority), at any time.
	Atomic bool
	// Unknown lets an atomic proposer's accept also land on a minority of
	// S (1 … qa−1 members: an unknown outcome); otherwise on a quorum.
	Unknown bool
	// ClockOffset starts its ballot counter this far ahead (clocks far
	// apart).
	ClockOffset int
}

// ExploreOptions bound the exhaustive exploration of the membership
// procedure. Acceptors a, b, … start as the Members of a stable
// configuration; the operator — change.Machine, the operator's own
// transition machine, with the fence and the rescan of docs/design.md §3 and §5 —
// carries out Changes one after the other. Proposers start on epoch 1 and
// learn newer configurations only from rejections; every message may be
// delivered in any order, late (across epoch switches) or never, and an
// accept's reply may be lost.
type ExploreOptions struct {
	// Members is the initial number of members, 1..5 (default 3).
	Members int
	// Changes are asked for in order (default: add, lose).
	Changes []ExploreChange
	// Keys is 1 or 2. With 1 key both proposers write it; with 2 keys
	// proposer i writes key i.
	Keys int
	// P1 and P2 are the two proposers; one with no writes does not run.
	P1, P2 ExploreProposer
	// OperatorTries is how many attempts the rescan of a key may take
	// (default 1).
	OperatorTries int
	// DiskLossAnytime lets an ExploreLose happen at any point of the
	// change before it, not only once that change is done.
	DiskLossAnytime bool
	// Controls are the machine's negative controls.
	Controls change.Controls
	// Symmetry is how many of the first members are treated as
	// interchangeable when states are compared (at most 4; default as
	// many as the changes leave alone, at most 3). Each one multiplies the
	// work per state; it never changes what is explored.
	Symmetry int
	// MaxStates stops the search (0: no limit).
	MaxStates int
}

// ExploreResult is what the search found.
type ExploreResult struct {
	States, Transitions int
	MaxDepth            int
	// Violation is the broken invariant, with the trace that reaches it;
	// empty when none was found.
	Violation string
	Trace     []string
	Truncated bool
	// Changes is the most membership changes done on one path.
	Changes int
}

const (
	xSlots     = 6 // a … f
	xProposers = 2
	xOperator  = xProposers // sender index of the operator
	xMaxMsgs   = 40
	xMaxVals   = 12
	xMaxLog    = 12
	xNone      = 0xff
)

type xBallot struct{ C, P uint8 }

func (b xBallot) reg() register.Ballot {
	return register.Ballot{Counter: uint64(b.C), Proposer: uint64(b.P)}
}

func fromReg(b register.Ballot) xBallot { return xBallot{C: uint8(b.Counter), P: uint8(b.Proposer)} }

type xReg struct {
	Promise, Accepted xBallot
	Val               uint8 // value ID; 0 is the empty register
}

type xAcc struct {
	Lost bool  // the disk was lost: a new incarnation
	Gone bool  // the operator stopped it (removed)
	Cfg  uint8 // its configuration (cfgTable ID); 0 = none
	Keys [2]xReg
}

type msgK uint8

const (
	xPrepare msgK = iota + 1
	xAccept
	xInstall
)

type xMsg struct {
	Kind     msgK
	From, To uint8 // From: proposer index or xOperator
	Key      uint8
	Epoch    uint8 // a request's epoch
	Cfg      uint8 // an install's configuration
	B        xBallot
	Val      uint8
	Att      uint8 // the sender's attempt number
}

type xReply struct {
	Kind     msgK
	From     uint8 // acceptor slot
	Lost     bool  // from the acceptor's new incarnation
	Ok       bool
	Accepted xBallot
	Val      uint8
	Conflict xBallot
}

// xAttempt is a write (or, for the operator, the skip rule's read or a
// touch) of one key under one configuration. An asynchronous proposer's
// round.Write is rebuilt by replaying the replies it logged, the
// operator's touch machine by replaying its prepare replies
// (explore_touch.go).
type xAttempt struct {
	Active bool
	Read   bool
	Key    uint8
	Cfg    uint8
	B      xBallot
	Att    uint8
	Tries  uint8
	Val    uint8 // proposed value, once proposing; xNone before
	// Choose: the attempt is about to send its prepares or accepts; the
	// explorer picks the acceptors they reach (the others are lost).
	Choose msgK
	NLog   uint8
	Log    [xMaxLog]xReply
}

type xProp struct {
	Cfg    uint8
	Clock  uint8
	Writes uint8 // writes left to start
	A      xAttempt
}

// xTr is change.Transition, encoded.
type xTr struct {
	Kind, Reason, Step uint8 // indexes into trKinds, trReasons, trSteps; Kind 0: none
	Member             uint8 // slot; xNone for none
	MemberInc          uint8 // 0: not known yet; 1: the slot's first incarnation; 2: its second
	From               uint8 // cfgTable ID
	Cursor             uint8 // 0: from the first key; k+1: after key k
	Rescanned          uint8
}

type xAck struct {
	Has, Lost bool
	Epoch     uint8
}

// xOp is the operator: change.Intent encoded, the desired size, how far
// through ExploreOptions.Changes it is, and its rescan attempt.
type xOp struct {
	Cfg     uint8
	Tr      xTr
	Retired uint16 // bit 2*slot (+1 for the second incarnation)
	Acks    [xSlots]xAck
	Size    uint8
	Plan    uint8
	// Fenced is ghost state: the highest epoch the machine declared
	// fenced.
	Fenced  uint8
	Changes uint8 // changes done (for the result; not part of the state)
	Clock   uint8
	// Skip is the agreement the rescan's skip read needs (the machine's
	// Action.SkipAgreeing; negative controls only).
	Skip uint8
	A    xAttempt
}

type xAcked struct {
	Key, Val uint8
	B        xBallot
}

// xState is one global state. It holds only fixed-size arrays of bytes so
// it copies by value; canonical() sorts the messages for hashing.
type xState struct {
	Acc    [xSlots]xAcc
	NMsg   uint8
	Msgs   [xMaxMsgs]xMsg
	Props  [xProposers]xProp
	Op     xOp
	NVals  uint8
	Parent [xMaxVals]uint8
	Ver    [xMaxVals]uint8
	NAcked uint8
	Acked  [4]xAcked
	// LateAccept is ghost state: an acceptor accepted a request of an
	// epoch below one the operator had declared fenced (docs/design.md §3 says
	// none does); the accept's description.
	LateAccept string
}

var (
	trKinds   = []change.Kind{"", change.Bootstrap, change.Add, change.Remove, change.Readdress}
	trReasons = []change.Reason{"", change.ReasonBootstrap, change.ReasonScaleUp, change.ReasonScaleDown, change.ReasonReplace, change.ReasonAddressChanged}
	trSteps   = []change.Step{"", change.StepStartMember, change.StepInstallJoint, change.StepRescan, change.StepInstallFinal,
		change.StepStopMember, change.StepDeleteStorage}
)

func indexOf[T comparable](xs []T, x T) uint8 {
	i := slices.Index(xs, x)
	if i < 0 {
		panic(fmt.Sprintf("explore: %v is not encodable", x))
	}
	return uint8(i)
}

// cfgTable numbers the configurations the machine produces, so that a
// state holds a configuration as one byte.
type cfgTable struct {
	cfgs []membership.Config // by ID; 0 is none
	ids  map[string]uint8
	perm map[[2]uint8]uint8 // (ID, permutation index) → ID
}

func cfgKey(c membership.Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d/%d", c.Epoch, c.PrepareQuorum, c.AcceptQuorum)
	for _, m := range c.Members {
		fmt.Fprintf(&b, " %s:%d:%v:%v", m.ID, m.Incarnation, m.Prepare, m.Accept)
	}
	return b.String()
}

func (t *cfgTable) id(c membership.Config) uint8 {
	k := cfgKey(c)
	if id, ok := t.ids[k]; ok {
		return id
	}
	if len(t.cfgs) == 0xfe {
		panic("explore: too many configurations")
	}
	t.cfgs = append(t.cfgs, c.Clone())
	id := uint8(len(t.cfgs) - 1)
	t.ids[k] = id
	return id
}

type explorer struct {
	o     ExploreOptions
	m     change.Machine
	cfgs  cfgTable
	perms [][xSlots]uint8
	seen  map[[2]uint64]struct{}
	res   ExploreResult
	path  []string
	enc   []byte
	alt   []byte
	// memo caches the machine's decisions by encoded input.
	memo     map[string]xDecision
	memoScan map[string]xIntent
}

var slotNames = [xSlots]string{"a", "b", "c", "d", "e", "f"}

func incarnation(slot int, lost bool) uint64 {
	if lost {
		return uint64(10 + slot)
	}
	return uint64(1 + slot)
}

func member(slot int, lost bool) membership.Member {
	return membership.Member{ID: slotNames[slot], Addr: slotNames[slot], Incarnation: incarnation(slot, lost)}
}

func slotOf(m membership.Member) uint8 {
	for i, n := range slotNames {
		if m.ID == n {
			return uint8(i)
		}
	}
	panic("explore: unknown member " + m.ID)
}

func lostOf(inc uint64) bool { return inc >= 10 }

func (o *ExploreOptions) defaults() error {
	if o.Members == 0 {
		o.Members = 3
	}
	if o.Changes == nil {
		o.Changes = []ExploreChange{ExploreAdd, ExploreLose}
	}
	for _, p := range []*ExploreProposer{&o.P1, &o.P2} {
		if p.Tries == 0 {
			p.Tries = 1
		}
		if p.Writes < 0 || p.ClockOffset < 0 || p.ClockOffset > 100 {
			return errors.New("explore: a proposer needs Writes >= 0 and ClockOffset 0..100")
		}
	}
	if o.OperatorTries == 0 {
		o.OperatorTries = 1
	}
	adds := 0
	for _, c := range o.Changes {
		if c == ExploreAdd {
			adds++
		}
	}
	switch {
	case o.Keys < 1 || o.Keys > 2 || o.P1.Writes+o.P2.Writes < 1:
		return errors.New("explore: Keys must be 1 or 2, and some proposer must write")
	case o.Members < 1 || o.Members+adds > xSlots:
		return fmt.Errorf("explore: %d members and %d adds do not fit %d slots", o.Members, adds, xSlots)
	}
	removes := 0
	for _, c := range o.Changes {
		if c == ExploreRemove {
			removes++
		}
	}
	// The members a removal may pick (the last ones) are not
	// interchangeable with the others.
	free := max(o.Members-removes, 1)
	if o.Symmetry == 0 {
		o.Symmetry = min(free, 3)
	}
	o.Symmetry = min(o.Symmetry, free, 4)
	return nil
}

// Explore runs the bounded exhaustive search.
func Explore(o ExploreOptions) (ExploreResult, error) {
	if err := o.defaults(); err != nil {
		return ExploreResult{}, err
	}
	e := &explorer{
		o: o, m: change.Machine{Controls: o.Controls},
		cfgs: cfgTable{cfgs: []membership.Config{{}}, ids: map[string]uint8{}, perm: map[[2]uint8]uint8{}},
		seen: map[[2]uint64]struct{}{}, memo: map[string]xDecision{}, memoScan: map[string]xIntent{},
	}
	e.perms = permutations(o.Symmetry)
	var members []membership.Member
	for i := 0; i < o.Members; i++ {
		members = append(members, member(i, false))
	}
	c1 := e.cfgs.id(membership.Stable(1, members...))
	var s xState
	for i := 0; i < o.Members; i++ {
		s.Acc[i].Cfg = c1
	}
	s.NVals = 1 // value 0: the empty register
	for p, po := range e.proposers() {
		s.Props[p].Cfg = c1
		s.Props[p].Writes = uint8(po.Writes)
		s.Props[p].Clock = uint8(po.ClockOffset)
	}
	s.Op.Cfg = c1
	s.Op.Size = uint8(o.Members)
	s.Op.Tr.Member = xNone
	for i := 0; i < o.Members; i++ {
		s.Op.Acks[i] = xAck{Has: true, Epoch: 1}
	}
	s.Op.A.Val = xNone
	// A proposer's first write knows only epoch 1, and its messages can be
	// delivered arbitrarily late, so starting it now loses no behaviour.
	for p := range s.Props {
		if s.Props[p].Writes == 0 {
			continue
		}
		s.Props[p].Writes--
		key := uint8(0)
		if o.Keys == 2 {
			key = uint8(p)
		}
		e.startWrite(&s, p, key, 0)
	}
	e.operate(&s)
	e.dfs(s, 0)
	return e.res, nil
}

func (e *explorer) proposers() [xProposers]ExploreProposer {
	return [xProposers]ExploreProposer{e.o.P1, e.o.P2}
}

// permutations lists every permutation of the first n slots (the others
// stay in place).
func permutations(n int) [][xSlots]uint8 {
	var out [][xSlots]uint8
	var id [xSlots]uint8
	for i := range id {
		id[i] = uint8(i)
	}
	var rec func(k int, p [xSlots]uint8)
	rec = func(k int, p [xSlots]uint8) {
		if k == n {
			out = append(out, p)
			return
		}
		for i := k; i < n; i++ {
			p[k], p[i] = p[i], p[k]
			rec(k+1, p)
			p[k], p[i] = p[i], p[k]
		}
	}
	rec(0, id)
	// The identity first.
	slices.SortFunc(out, func(a, b [xSlots]uint8) int { return bytes.Compare(a[:], b[:]) })
	return out
}

func (e *explorer) cfg(id uint8) *membership.Config {
	if id == 0 {
		return nil
	}
	return &e.cfgs.cfgs[id]
}

func (e *explorer) epochOf(id uint8) uint8 {
	if id == 0 {
		return 0
	}
	return uint8(e.cfgs.cfgs[id].Epoch)
}

// permCfg is configuration id with slot i renamed to pi[i].
func (e *explorer) permCfg(id uint8, pi int) uint8 {
	if id == 0 || pi == 0 {
		return id
	}
	k := [2]uint8{id, uint8(pi)}
	if out, ok := e.cfgs.perm[k]; ok {
		return out
	}
	c := e.cfgs.cfgs[id].Clone()
	for i, m := range c.Members {
		sl := e.perms[pi][slotOf(m)]
		n := member(int(sl), lostOf(m.Incarnation))
		n.Prepare, n.Accept = m.Prepare, m.Accept
		c.Members[i] = n
	}
	slices.SortFunc(c.Members, func(a, b membership.Member) int { return strings.Compare(a.ID, b.ID) })
	out := e.cfgs.id(c)
	e.cfgs.perm[k] = out
	return out
}

func (e *explorer) send(s *xState, m xMsg) {
	if int(s.NMsg) == xMaxMsgs {
		panic("explore: too many messages in flight")
	}
	s.Msgs[s.NMsg] = m
	s.NMsg++
}

func (e *explorer) key(s *xState) [2]uint64 {
	e.prune(s)
	// The first Symmetry members play symmetric roles (the
	// configurations come from the machine over renamed members, every
	// choice enumerates all subsets and rounds decide on sets of
	// replies): the key is that of the least encoding over their
	// renamings.
	best := s.encode(e.enc[:0])
	e.enc = best
	for pi := 1; pi < len(e.perms); pi++ {
		t := e.permute(s, pi)
		b := t.encode(e.alt[:0])
		e.alt = b
		if bytes.Compare(b, best) < 0 {
			e.enc, e.alt = b, best
			best = b
		}
	}
	h1, h2 := fnv.New64a(), fnv.New64()
	h1.Write(best)
	h2.Write(best)
	return [2]uint64{h1.Sum64(), h2.Sum64()}
}

// permute renames acceptor slot i to perms[pi][i] everywhere in the state.
func (e *explorer) permute(s *xState, pi int) xState {
	p := e.perms[pi]
	t := *s
	for i := range s.Acc {
		a := s.Acc[i]
		a.Cfg = e.permCfg(a.Cfg, pi)
		t.Acc[p[i]] = a
	}
	for i := range t.Msgs[:t.NMsg] {
		t.Msgs[i].To = p[t.Msgs[i].To]
		t.Msgs[i].Cfg = e.permCfg(t.Msgs[i].Cfg, pi)
	}
	slices.SortFunc(t.Msgs[:t.NMsg], cmpMsg)
	relog := func(a *xAttempt) {
		a.Cfg = e.permCfg(a.Cfg, pi)
		for i := range a.Log[:a.NLog] {
			a.Log[i].From = p[a.Log[i].From]
		}
		slices.SortFunc(a.Log[:a.NLog], func(x, y xReply) int { return cmpBytes(x.bytes(), y.bytes()) })
	}
	for i := range t.Props {
		t.Props[i].Cfg = e.permCfg(t.Props[i].Cfg, pi)
		relog(&t.Props[i].A)
	}
	op := &t.Op
	relog(&op.A)
	op.Cfg = e.permCfg(op.Cfg, pi)
	op.Tr.From = e.permCfg(op.Tr.From, pi)
	if op.Tr.Member != xNone {
		op.Tr.Member = p[op.Tr.Member]
	}
	op.Retired = 0
	for i := 0; i < xSlots; i++ {
		op.Acks[p[i]] = s.Op.Acks[i]
		for g := 0; g < 2; g++ {
			if s.Op.Retired&(1<<(2*i+g)) != 0 {
				op.Retired |= 1 << (2*int(p[i]) + g)
			}
		}
	}
	return t
}

// prune drops messages whose delivery can change nothing: messages to a
// stopped acceptor, installs of an epoch the acceptor already has (or
// passed), and refused requests of senders that are done with them.
func (e *explorer) prune(s *xState) {
	n := 0
	for _, m := range s.Msgs[:s.NMsg] {
		a := s.Acc[m.To]
		switch {
		case a.Gone:
			continue
		case m.Kind == xInstall && e.epochOf(a.Cfg) >= e.epochOf(m.Cfg):
			continue
		case (m.Kind == xPrepare || m.Kind == xAccept) && m.From != xOperator &&
			!s.Props[m.From].A.Active && s.Props[m.From].Writes == 0 && e.refuses(s, m):
			// Its sender is done for good, and the acceptor would
			// refuse it: delivering it changes nothing.
			continue
		}
		s.Msgs[n] = m
		n++
	}
	for i := n; i < int(s.NMsg); i++ {
		s.Msgs[i] = xMsg{}
	}
	s.NMsg = uint8(n)
	slices.SortFunc(s.Msgs[:n], cmpMsg)
}

// refuses reports whether m's acceptor would refuse it now. Refusals never
// turn into acceptance later (ballots and epochs only grow), so a refused
// message of a finished proposer stays a no-op.
func (e *explorer) refuses(s *xState, m xMsg) bool {
	a := s.Acc[m.To]
	if e.cfg(a.Cfg).Check(incarnation(int(m.To), a.Lost), uint64(m.Epoch)) != nil {
		return true
	}
	st := register.State{Promise: a.Keys[m.Key].Promise.reg(), Accepted: a.Keys[m.Key].Accepted.reg()}
	if m.Kind == xPrepare {
		_, ok := st.Prepare(m.B.reg())
		return !ok
	}
	_, ok := st.Accept(m.B.reg(), register.Value{}, register.Ballot{})
	return !ok
}

func (m xMsg) bytes() [10]byte {
	return [10]byte{byte(m.Kind), m.From, m.To, m.Key, m.Epoch, m.Cfg, m.B.C, m.B.P, m.Val, m.Att}
}

func cmpMsg(a, b xMsg) int {
	x, y := a.bytes(), b.bytes()
	return bytes.Compare(x[:], y[:])
}

func (a *xAttempt) put(buf []byte) []byte {
	buf = append(buf, b2u(a.Active), b2u(a.Read), a.Key, a.Cfg, a.B.C, a.B.P, a.Att, a.Tries, a.Val, byte(a.Choose), a.NLog)
	for _, r := range a.Log[:a.NLog] {
		x := r.bytes()
		buf = append(buf, x[:9]...)
	}
	return buf
}

func (r xReply) bytes() [10]byte {
	return [10]byte{byte(r.Kind), r.From, b2u(r.Lost), b2u(r.Ok), r.Accepted.C, r.Accepted.P, r.Val, r.Conflict.C, r.Conflict.P}
}

func cmpBytes(x, y [10]byte) int { return bytes.Compare(x[:], y[:]) }

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// putIntent appends the operator's intent and desired size.
func (op *xOp) putIntent(buf []byte) []byte {
	t := op.Tr
	buf = append(buf, op.Cfg, t.Kind, t.Reason, t.Step, t.Member, t.MemberInc, t.From, t.Cursor, t.Rescanned,
		byte(op.Retired), byte(op.Retired>>8), op.Size)
	for _, a := range op.Acks {
		buf = append(buf, b2u(a.Has), b2u(a.Lost), a.Epoch)
	}
	return buf
}

// encode appends the state's canonical bytes (messages must be sorted).
func (s *xState) encode(buf []byte) []byte {
	for _, a := range s.Acc {
		buf = append(buf, b2u(a.Lost), b2u(a.Gone), a.Cfg)
		for _, k := range a.Keys {
			buf = append(buf, k.Promise.C, k.Promise.P, k.Accepted.C, k.Accepted.P, k.Val)
		}
	}
	buf = append(buf, s.NMsg)
	for _, m := range s.Msgs[:s.NMsg] {
		x := m.bytes()
		buf = append(buf, x[:]...)
	}
	for _, p := range s.Props {
		buf = append(buf, p.Cfg, p.Clock, p.Writes)
		buf = p.A.put(buf)
	}
	buf = s.Op.putIntent(buf)
	buf = append(buf, s.Op.Plan, s.Op.Fenced, s.Op.Clock, s.Op.Skip)
	buf = s.Op.A.put(buf)
	buf = append(buf, s.NVals)
	buf = append(buf, s.Parent[:s.NVals]...)
	buf = append(buf, s.Ver[:s.NVals]...)
	buf = append(buf, s.NAcked)
	for _, a := range s.Acked[:s.NAcked] {
		buf = append(buf, a.Key, a.Val, a.B.C, a.B.P)
	}
	return append(buf, s.LateAccept...)
}

func (e *explorer) dfs(s xState, depth int) {
	if e.res.Violation != "" || e.res.Truncated {
		return
	}
	k := e.key(&s) // prunes and sorts s.Msgs
	if _, ok := e.seen[k]; ok {
		return
	}
	e.seen[k] = struct{}{}
	e.res.States++
	e.res.MaxDepth = max(e.res.MaxDepth, depth)
	e.res.Changes = max(e.res.Changes, int(s.Op.Changes))
	if e.o.MaxStates > 0 && e.res.States >= e.o.MaxStates {
		e.res.Truncated = true
		return
	}
	if v := e.check(&s); v != "" {
		e.res.Violation = v
		e.res.Trace = slices.Clone(e.path)
		return
	}
	for who := uint8(0); who < xProposers; who++ {
		att := s.Props[who].A
		if !att.Active || att.Choose == 0 {
			continue
		}
		// An asynchronous proposer sends its prepares to a prepare
		// quorum, its accepts to any non-empty subset of S; messages to
		// the others are lost.
		cfg := e.cfg(att.Cfg)
		subs := e.subsets(&s, cfg.PrepareSet(), cfg.PrepareQuorum, cfg.PrepareQuorum)
		if att.Choose == xAccept {
			subs = e.subsets(&s, cfg.AcceptSet(), 1, len(cfg.AcceptSet()))
		}
		for _, sub := range subs {
			t := s
			desc := e.sendTo(&t, who, sub)
			e.step(t, depth, desc)
		}
		if len(subs) > 0 {
			return // the choice comes first: nothing else interleaves with it
		}
	}
	for who := uint8(0); who <= xOperator; who++ {
		att, _, _ := e.actor(&s, who)
		if !e.atomic(who) || !att.Active || att.Read {
			continue
		}
		// One phase of an atomic actor's round, on each possible set of
		// acceptors: a prepare quorum; for the accept, a quorum for the
		// operator, and for a client a quorum or, with AtomicUnknown, a
		// minority (an unknown outcome).
		cfg := e.cfg(att.Cfg)
		var subs [][]uint8
		switch {
		case att.Val == xNone:
			subs = e.subsets(&s, cfg.PrepareSet(), cfg.PrepareQuorum, cfg.PrepareQuorum)
		case who == xOperator:
			subs = e.subsets(&s, cfg.AcceptSet(), cfg.AcceptQuorum, cfg.AcceptQuorum)
		case e.proposers()[who].Unknown:
			subs = append(e.subsets(&s, cfg.AcceptSet(), cfg.AcceptQuorum, cfg.AcceptQuorum),
				e.subsets(&s, cfg.AcceptSet(), 1, cfg.AcceptQuorum-1)...)
		default:
			subs = e.subsets(&s, cfg.AcceptSet(), cfg.AcceptQuorum, cfg.AcceptQuorum)
		}
		for _, sub := range subs {
			t := s
			desc := e.phase(&t, who, sub)
			e.step(t, depth, desc)
		}
	}
	if s.Op.A.Active && s.Op.A.Read {
		// The rescan's skip read, as one snapshot of every member of S; or
		// it fails (replies missing) and the identity change follows.
		for _, fail := range []bool{false, true} {
			t := s
			desc := e.snapshotRead(&t, fail)
			e.step(t, depth, desc)
		}
	}
	for p := 0; p < xProposers; p++ {
		if s.Props[p].Writes > 0 && !s.Props[p].A.Active {
			t := s
			t.Props[p].Writes--
			key := uint8(0)
			if e.o.Keys == 2 {
				key = uint8(p)
			}
			desc := e.startWrite(&t, p, key, 0)
			e.step(t, depth, desc)
		}
	}
	// Deliver any message (identical messages once), with or without
	// its reply for accepts. (The order of the transitions tried changes
	// how soon a counterexample is found, never what is explored.)
	for i := 0; i < int(s.NMsg); i++ {
		if slices.Contains(s.Msgs[:i], s.Msgs[i]) {
			continue
		}
		replies := []bool{true}
		if s.Msgs[i].Kind == xAccept {
			replies = append(replies, false)
		}
		for _, reply := range replies {
			t := s
			m := t.Msgs[i]
			t.Msgs[i] = t.Msgs[t.NMsg-1]
			t.Msgs[t.NMsg-1] = xMsg{}
			t.NMsg--
			desc := e.deliver(&t, m, reply)
			e.step(t, depth, desc)
		}
	}
	for _, v := range e.lossVictims(&s) {
		t := s
		desc := e.diskLoss(&t, v)
		e.step(t, depth, desc)
	}
}

// step takes one transition: the operator then reacts at once.
func (e *explorer) step(t xState, depth int, desc string) {
	e.res.Transitions++
	e.path = append(e.path, desc)
	if more := e.operate(&t); more != "" {
		e.path = append(e.path, more)
		e.dfs(t, depth+1)
		e.path = e.path[:len(e.path)-1]
	} else {
		e.dfs(t, depth+1)
	}
	e.path = e.path[:len(e.path)-1]
}

// descends reports whether value v is a (reflexive) descendant of u.
func descends(s *xState, v, u uint8) bool {
	for i := 0; i <= xMaxVals; i++ {
		if v == u {
			return true
		}
		if v == 0 {
			return false
		}
		v = s.Parent[v]
	}
	return false
}

// check is the safety invariant: acknowledged values form a chain, and
// every value accepted — or being proposed — at a ballot above an
// acknowledged value's ballot descends from it (no acknowledged value is
// lost: paper, proof of safety; the P2b invariant of Paxos).
func (e *explorer) check(s *xState) string {
	if s.LateAccept != "" {
		return s.LateAccept
	}
	for i := 0; i < int(s.NAcked); i++ {
		ai := s.Acked[i]
		for j := 0; j < i; j++ {
			aj := s.Acked[j]
			if aj.Key != ai.Key {
				continue
			}
			if !descends(s, ai.Val, aj.Val) && !descends(s, aj.Val, ai.Val) {
				return fmt.Sprintf("acknowledged values v%d and v%d do not form a chain", ai.Val, aj.Val)
			}
		}
		for slot, a := range s.Acc {
			r := a.Keys[ai.Key]
			if ai.B.reg().Less(r.Accepted.reg()) && !descends(s, r.Val, ai.Val) {
				return fmt.Sprintf("acceptor %s accepted v%d at %v above acknowledged v%d at %v, not derived from it",
					slotNames[slot], r.Val, r.Accepted.reg(), ai.Val, ai.B.reg())
			}
		}
		if v := e.recoverable(s, ai); v != "" {
			return v
		}
		for _, m := range s.Msgs[:s.NMsg] {
			if m.Kind == xAccept && m.Key == ai.Key && ai.B.reg().Less(m.B.reg()) && !descends(s, m.Val, ai.Val) {
				return fmt.Sprintf("accept of v%d at %v proposed above acknowledged v%d at %v, not derived from it (v%d is lost)",
					m.Val, m.B.reg(), ai.Val, ai.B.reg(), ai.Val)
			}
		}
	}
	return ""
}

func (e *explorer) value(id uint8, s *xState) register.Value {
	if id == 0 {
		return register.Value{}
	}
	return register.Value{Version: uint64(s.Ver[id]), Data: []byte{id}}
}

func valueID(v register.Value) uint8 {
	if len(v.Data) == 0 {
		return 0
	}
	return v.Data[0]
}

// deliver hands m to its acceptor, applies the gate and the rule, and
// feeds the reply (unless lost) to the sender.
func (e *explorer) deliver(s *xState, m xMsg, reply bool) string {
	a := &s.Acc[m.To]
	name := slotNames[m.To]
	if m.Kind == xInstall {
		if e.epochOf(m.Cfg) > e.epochOf(a.Cfg) {
			a.Cfg = m.Cfg
		}
		return fmt.Sprintf("install epoch %d on %s", e.epochOf(m.Cfg), name)
	}
	desc := fmt.Sprintf("%s prepare(k%d, %v, epoch %d) at %s (epoch %d)", senderName(m.From), m.Key, m.B.reg(), m.Epoch, name, e.epochOf(a.Cfg))
	if m.Kind == xAccept {
		desc = fmt.Sprintf("%s accept(k%d, v%d at %v, epoch %d) at %s (epoch %d)", senderName(m.From), m.Key, m.Val, m.B.reg(), m.Epoch, name, e.epochOf(a.Cfg))
	}
	r := e.apply(s, m)
	if r.Ok {
		desc += ": ok"
		if f := s.Op.Fenced; m.Kind == xAccept && m.Epoch < f && s.LateAccept == "" {
			s.LateAccept = fmt.Sprintf("%s: accepted after epoch %d was fenced", desc, f)
		}
	} else {
		desc += ": refused"
	}
	if !reply {
		return desc + ", reply lost"
	}
	e.onReply(s, m, r, a.Cfg)
	return desc
}

// apply is the acceptor's side of a prepare or accept: the admission
// and epoch gate (membership.Config.Check), then the register rule.
func (e *explorer) apply(s *xState, m xMsg) xReply {
	a := &s.Acc[m.To]
	st := register.State{Promise: a.Keys[m.Key].Promise.reg(), Accepted: a.Keys[m.Key].Accepted.reg(), Value: e.value(a.Keys[m.Key].Val, s)}
	r := xReply{Kind: m.Kind, From: m.To, Lost: a.Lost}
	if a.Gone || e.cfg(a.Cfg).Check(incarnation(int(m.To), a.Lost), uint64(m.Epoch)) != nil {
		return r
	}
	switch m.Kind {
	case xPrepare:
		if next, ok := st.Prepare(m.B.reg()); ok {
			a.Keys[m.Key].Promise = fromReg(next.Promise)
			r.Ok, r.Accepted, r.Val = true, fromReg(st.Accepted), a.Keys[m.Key].Val
		} else {
			r.Conflict = fromReg(st.Highest())
		}
	case xAccept:
		if next, ok := st.Accept(m.B.reg(), e.value(m.Val, s), register.Ballot{}); ok {
			a.Keys[m.Key] = xReg{Promise: fromReg(next.Promise), Accepted: fromReg(next.Accepted), Val: m.Val}
			r.Ok = true
		} else {
			r.Conflict = fromReg(st.Highest())
		}
	}
	return r
}

func senderName(from uint8) string {
	if from == xOperator {
		return "operator"
	}
	return fmt.Sprintf("p%d", from+1)
}

// actor returns the sender's attempt, its clock and its configuration
// (nil for the operator, whose attempt carries the joint configuration).
func (e *explorer) actor(s *xState, who uint8) (att *xAttempt, clock *uint8, cfg *uint8) {
	if who == xOperator {
		return &s.Op.A, &s.Op.Clock, nil
	}
	p := &s.Props[who]
	return &p.A, &p.Clock, &p.Cfg
}

// adopt takes the acceptor's configuration when it is newer (docs/design.md §3:
// proposers adopt the highest epoch they see).
func (e *explorer) adopt(cfg *uint8, acc uint8) bool {
	if cfg == nil || e.epochOf(acc) <= e.epochOf(*cfg) {
		return false
	}
	*cfg = acc
	return true
}

func (e *explorer) onReply(s *xState, m xMsg, r xReply, accCfg uint8) {
	att, clock, cfg := e.actor(s, m.From)
	if !r.Conflict.reg().IsZero() && r.Conflict.C > *clock {
		*clock = r.Conflict.C
	}
	learned := e.adopt(cfg, accCfg)
	if !att.Active || att.Att != m.Att || int(att.NLog) == xMaxLog {
		return
	}
	if m.Kind == xPrepare && att.Val != xNone || m.Kind == xAccept && att.Val == xNone {
		return // a reply of the other phase
	}
	att.Log[att.NLog] = r
	att.NLog++
	// A round's decision depends only on the set of replies it logged
	// before deciding (one ballot carries one value), so the log is kept
	// sorted: orders that reach the same set are the same state.
	slices.SortFunc(att.Log[:att.NLog], func(x, y xReply) int {
		return cmpBytes(x.bytes(), y.bytes())
	})
	e.progress(s, m.From, learned)
}

// replay rebuilds an asynchronous proposer's round from its replies.
func (e *explorer) replay(s *xState, att *xAttempt) *round.Write {
	w := round.NewWrite(e.cfg(att.Cfg), att.B.reg())
	for _, r := range att.Log[:att.NLog] {
		inc := incarnation(int(r.From), r.Lost)
		rep := round.Nack
		if r.Ok {
			rep = round.Ack
		}
		switch r.Kind {
		case xPrepare:
			w.OnPrepare(inc, rep, r.Accepted.reg(), e.value(r.Val, s), r.Conflict.reg())
		case xAccept:
			if w.Phase() == round.Proposing {
				w.Propose(e.value(att.Val, s), register.Ballot{})
			}
			w.OnAccept(inc, rep, r.Conflict.reg())
		}
	}
	if w.Phase() == round.Proposing && att.Val != xNone {
		w.Propose(e.value(att.Val, s), register.Ballot{})
	}
	return w
}

func (e *explorer) progress(s *xState, who uint8, learned bool) {
	att, _, _ := e.actor(s, who)
	w := e.replay(s, att)
	if learned && w.Phase() == round.Preparing {
		w.Expire() // a newer configuration: retry under it
	}
	switch w.Phase() {
	case round.Proposing:
		att.Val = e.newValue(s, valueID(w.Current()))
		att.Choose = xAccept // see sendTo
	case round.Done:
		switch w.Outcome() {
		case round.Success:
			e.succeeded(s, who)
		case round.Failed:
			e.retry(s, who)
		case round.Unknown:
			att.Active = false
		}
	}
}

// startWrite starts a write attempt with a new ballot: a client write
// under its configuration, or the operator's touch of a rescan under the
// joint configuration its attempt carries (the ballot is the one its touch
// machine's Env hands out, touchEnv).
func (e *explorer) startWrite(s *xState, who int, key uint8, tries uint8) string {
	att, clock, cfg := e.actor(s, uint8(who))
	c := att.Cfg
	if cfg != nil {
		c = *cfg
	}
	*clock++
	n := att.Att + 1
	*att = xAttempt{Active: true, Key: key, Cfg: c, B: xBallot{C: *clock, P: uint8(who + 1)}, Att: n, Tries: tries + 1, Val: xNone}
	if !e.atomic(uint8(who)) {
		att.Choose = xPrepare // see sendTo
	}
	return fmt.Sprintf("%s starts writing k%d with %v under epoch %d", senderName(uint8(who)), key, att.B.reg(), e.epochOf(c))
}

// The operator.

// xDecision is a machine decision, encoded.
type xDecision struct {
	in     xIntent
	action change.ActionKind
	cfg    uint8  // Install, Rescan
	slots  uint8  // Install: bitmask of targets
	slot   uint8  // Recycle, Stop
	key    uint8  // Rescan: the key to touch next; xNone when done
	skip   uint8  // Rescan: SkipAgreeing
	fenced uint8  // Decision.Fenced
	steps  uint8  // final configurations fenced (changes done)
	desc   string // what the decision did, for traces
}

// xIntent is the part of xOp the machine writes.
type xIntent struct {
	Cfg     uint8
	Tr      xTr
	Retired uint16
	Acks    [xSlots]xAck
}

func (op *xOp) intent() xIntent {
	return xIntent{Cfg: op.Cfg, Tr: op.Tr, Retired: op.Retired, Acks: op.Acks}
}

func (op *xOp) setIntent(in xIntent) {
	op.Cfg, op.Tr, op.Retired, op.Acks = in.Cfg, in.Tr, in.Retired, in.Acks
}

// decodeIntent is the machine's intent of xIntent in.
func (e *explorer) decodeIntent(in xIntent) change.Intent {
	out := change.Intent{Acks: map[string]change.Ack{}}
	if c := e.cfg(in.Cfg); c != nil {
		cc := c.Clone()
		out.Config = &cc
	}
	if t := in.Tr; t.Kind != 0 {
		tr := &change.Transition{Kind: trKinds[t.Kind], Reason: trReasons[t.Reason], Step: trSteps[t.Step], Rescanned: int64(t.Rescanned)}
		if t.Member != xNone {
			tr.Member = membership.Member{ID: slotNames[t.Member]}
			if t.MemberInc != 0 {
				tr.Member = member(int(t.Member), t.MemberInc == 2)
			}
		}
		if c := e.cfg(t.From); c != nil {
			cc := c.Clone()
			tr.From = &cc
		}
		if t.Cursor > 0 {
			tr.Cursor = []byte(fmt.Sprintf("k%d", t.Cursor-1))
		}
		out.Transition = tr
	}
	for b := 0; b < 2*xSlots; b++ {
		if in.Retired&(1<<b) != 0 {
			out.Retired = append(out.Retired, incarnation(b/2, b%2 == 1))
		}
	}
	for i, a := range in.Acks {
		if a.Has {
			out.Acks[slotNames[i]] = change.Ack{Incarnation: incarnation(i, a.Lost), Epoch: uint64(a.Epoch)}
		}
	}
	return out
}

// encodeIntent is xIntent of the machine's intent in.
func (e *explorer) encodeIntent(in change.Intent) xIntent {
	var out xIntent
	if in.Config != nil {
		out.Cfg = e.cfgs.id(*in.Config)
	}
	out.Tr.Member = xNone
	if tr := in.Transition; tr != nil {
		out.Tr = xTr{Kind: indexOf(trKinds, tr.Kind), Reason: indexOf(trReasons, tr.Reason), Step: indexOf(trSteps, tr.Step),
			Member: xNone, Rescanned: uint8(tr.Rescanned)}
		if tr.Member.ID != "" {
			out.Tr.Member = slotOf(tr.Member)
			if tr.Member.Incarnation != 0 {
				out.Tr.MemberInc = 1 + b2u(lostOf(tr.Member.Incarnation))
			}
		}
		if tr.From != nil {
			out.Tr.From = e.cfgs.id(*tr.From)
		}
		if len(tr.Cursor) > 0 {
			out.Tr.Cursor = cursorKey(tr.Cursor) + 1
		}
	}
	for _, inc := range in.Retired {
		slot := int(inc - 1)
		if lostOf(inc) {
			slot = int(inc - 10)
		}
		out.Retired |= 1 << (2*slot + int(b2u(lostOf(inc))))
	}
	for id, a := range in.Acks {
		slot := slotOf(membership.Member{ID: id})
		out.Acks[slot] = xAck{Has: true, Lost: lostOf(a.Incarnation), Epoch: uint8(a.Epoch)}
	}
	return out
}

// cursorKey is the key index of a rescan cursor "k<i>".
func cursorKey(c []byte) uint8 {
	var k uint8
	if _, err := fmt.Sscanf(string(c), "k%d", &k); err != nil {
		panic("explore: bad cursor " + string(c))
	}
	return k
}

// observation is what the operator sees of the acceptors: each slot that
// has not been stopped answers at once with its incarnation and
// configuration (a snapshot: installs are what travels as messages). A
// slot that was never in a configuration counts as started only once a
// transition adds it (as a StatefulSet creates a new ordinal's pod).
func (e *explorer) observation(s *xState) change.Observation {
	obs := change.Observation{Size: int(s.Op.Size), Seen: map[string]change.Slot{}}
	for i, a := range s.Acc {
		if a.Gone {
			continue
		}
		name := slotNames[i]
		inc := incarnation(i, a.Lost)
		started := a.Cfg != 0 || a.Lost || s.Op.Tr.Member == uint8(i) || e.inPlay(s, name)
		sl := change.Slot{Exists: started, Running: started, HasStorage: true, Addr: name, Reachable: true, Healthy: true,
			Incarnation: inc, Epoch: uint64(e.epochOf(a.Cfg))}
		if c := e.cfg(a.Cfg); c != nil {
			_, sl.Admitted = c.Member(inc)
		}
		obs.Slots = append(obs.Slots, name)
		obs.Seen[name] = sl
	}
	return obs
}

// inPlay reports whether slot name is a member of the current
// configuration or of the one a transition started from.
func (e *explorer) inPlay(s *xState, name string) bool {
	for _, id := range []uint8{s.Op.Cfg, s.Op.Tr.From} {
		if c := e.cfg(id); c != nil {
			if _, ok := c.MemberByID(name); ok {
				return true
			}
		}
	}
	return false
}

// decide is the machine's decision on s, memoized on its input.
func (e *explorer) decide(s *xState) xDecision {
	key := s.Op.putIntent(nil)
	for _, a := range s.Acc {
		key = append(key, b2u(a.Gone), b2u(a.Lost), a.Cfg)
	}
	if d, ok := e.memo[string(key)]; ok {
		return d
	}
	dec := e.m.Next(e.decodeIntent(s.Op.intent()), e.observation(s))
	d := xDecision{in: e.encodeIntent(dec.Intent), action: dec.Action.Kind, fenced: uint8(dec.Fenced), key: xNone}
	var what []string
	for _, ev := range dec.Events {
		what = append(what, ev.Message)
		if ev.Reason == change.EventFinalInstalled {
			d.steps++
		}
	}
	a := dec.Action
	switch a.Kind {
	case change.Install:
		d.cfg = e.cfgs.id(a.Config)
		for _, t := range a.Targets {
			d.slots |= 1 << slotOf(membership.Member{ID: t.Slot})
		}
	case change.Rescan:
		d.cfg = e.cfgs.id(a.Config)
		d.skip = uint8(a.SkipAgreeing)
		next := uint8(0)
		if len(a.Cursor) > 0 {
			next = cursorKey(a.Cursor) + 1
		}
		if int(next) < e.o.Keys {
			d.key = next
		}
	case change.Recycle, change.Stop, change.DeleteStorage:
		d.slot = slotOf(membership.Member{ID: a.Slot})
	}
	d.desc = strings.Join(what, "; ")
	e.memo[string(key)] = d
	return d
}

// operate lets the operator react to the state at once: it applies the
// next requested change when idle and takes machine decisions until one
// changes nothing. It returns what it did, for traces.
func (e *explorer) operate(s *xState) string {
	var did []string
	for range 32 {
		changed := false
		if !e.busy(s) && int(s.Op.Plan) < len(e.o.Changes) {
			switch e.o.Changes[s.Op.Plan] {
			case ExploreAdd:
				s.Op.Size++
				s.Op.Plan++
				changed = true
				did = append(did, "asked to add a member")
			case ExploreRemove:
				s.Op.Size--
				s.Op.Plan++
				changed = true
				did = append(did, "asked to remove a member")
			}
		}
		d := e.decide(s)
		if d.in != s.Op.intent() {
			s.Op.setIntent(d.in)
			changed = true
			if d.desc != "" {
				did = append(did, d.desc)
			}
		}
		s.Op.Fenced = max(s.Op.Fenced, d.fenced)
		s.Op.Changes += d.steps
		switch d.action {
		case change.Install:
			for sl := uint8(0); sl < xSlots; sl++ {
				m := xMsg{Kind: xInstall, From: xOperator, To: sl, Cfg: d.cfg}
				if d.slots&(1<<sl) != 0 && !slices.Contains(s.Msgs[:s.NMsg], m) {
					e.send(s, m)
					changed = true
				}
			}
		case change.Rescan:
			if e.rescanKey(s, d) {
				changed = true
			}
		case change.Stop:
			if !s.Acc[d.slot].Gone {
				s.Acc[d.slot] = xAcc{Gone: true}
				changed = true
				did = append(did, "stop "+slotNames[d.slot])
			}
		case change.Recycle:
			s.Acc[d.slot] = xAcc{Lost: true}
			changed = true
		}
		if !changed {
			break
		}
	}
	return strings.Join(did, "; ")
}

// busy reports whether a change is in progress or asked for.
func (e *explorer) busy(s *xState) bool {
	if s.Op.Tr.Kind != 0 || s.Op.Retired != 0 && e.retiredMember(s) {
		return true
	}
	return len(e.cfg(s.Op.Cfg).Members) != int(s.Op.Size)
}

// retiredMember reports whether a member of the current configuration is
// retired.
func (e *explorer) retiredMember(s *xState) bool {
	for _, m := range e.cfg(s.Op.Cfg).Members {
		sl := slotOf(m)
		if s.Op.Retired&(1<<(2*int(sl)+int(b2u(lostOf(m.Incarnation))))) != 0 {
			return true
		}
	}
	return false
}

// rescanKey carries out the machine's Rescan action: it starts the rescan
// of the key after the cursor unless it runs already (or gave up). It
// reports whether it started one.
func (e *explorer) rescanKey(s *xState, d xDecision) bool {
	att := &s.Op.A
	if d.key == xNone {
		// Nothing left to touch: report the rescan complete.
		e.recordRescan(s, change.Progress{Done: true})
		return true
	}
	if att.Key == d.key && att.Cfg == d.cfg && (att.Active || att.Tries >= uint8(e.o.OperatorTries)+1) {
		return false // in flight, or stuck after its tries
	}
	n := att.Att + 1
	if d.skip > 0 {
		*att = xAttempt{Active: true, Read: true, Key: d.key, Cfg: d.cfg, Att: n, Val: xNone}
		s.Op.Skip = d.skip
		return true
	}
	att.Cfg = d.cfg
	e.startWrite(s, xOperator, d.key, 0)
	return true
}

// snapshotRead runs the withdrawn skip rule (skipRule; negative controls
// only) over the replies every member of the joint accept set would give
// now: a key whose accepted ballot agrees on the agreement the machine's
// action asked for (qa, or qa − 1) is skipped.
func (e *explorer) snapshotRead(s *xState, fail bool) string {
	att := &s.Op.A
	agree := int(s.Op.Skip)
	if fail {
		e.startWrite(s, xOperator, att.Key, 0)
		return fmt.Sprintf("operator's rescan read of k%d fails", att.Key)
	}
	weak := e.cfg(att.Cfg).Clone()
	weak.AcceptQuorum = agree
	sk := newSkipRule(&weak)
	for _, mb := range sk.Targets() {
		slot := slotOf(mb)
		a := s.Acc[slot]
		ok := !a.Gone && e.cfg(a.Cfg).Check(incarnation(int(slot), a.Lost), uint64(e.epochOf(att.Cfg))) == nil
		sk.OnRead(incarnation(int(slot), a.Lost), ok, a.Keys[att.Key].Accepted.reg())
	}
	sk.Expire()
	if sk.Outcome() == round.Success {
		key := att.Key
		e.rescanned(s)
		return fmt.Sprintf("operator's rescan read of k%d agrees on %v: skipped", key, sk.Ballot())
	}
	e.startWrite(s, xOperator, att.Key, 0)
	return fmt.Sprintf("operator's rescan read of k%d does not agree", att.Key)
}

// rescanned reports the operator's key done to the machine.
func (e *explorer) rescanned(s *xState) {
	att := &s.Op.A
	att.Active = false
	e.recordRescan(s, change.Progress{Cursor: []byte(fmt.Sprintf("k%d", att.Key)), Keys: 1, Done: int(att.Key)+1 >= e.o.Keys})
}

// recordRescan records rescan progress through Machine.Rescanned.
func (e *explorer) recordRescan(s *xState, p change.Progress) {
	key := s.Op.putIntent(nil)
	key = append(key, b2u(p.Done), byte(len(p.Cursor)))
	key = append(key, p.Cursor...)
	in, ok := e.memoScan[string(key)]
	if !ok {
		out, _, err := e.m.Rescanned(e.decodeIntent(s.Op.intent()), p)
		if err != nil {
			panic("explore: " + err.Error())
		}
		in = e.encodeIntent(out)
		e.memoScan[string(key)] = in
	}
	s.Op.setIntent(in)
}

// lossVictims lists the members that may lose their disk now: when the
// next requested change is a loss and the change before it is done (or,
// with DiskLossAnytime, at any point of it), every member of the current
// configuration (and the one a transition started from) that has its
// first disk.
func (e *explorer) lossVictims(s *xState) []int {
	if int(s.Op.Plan) >= len(e.o.Changes) || e.o.Changes[s.Op.Plan] != ExploreLose {
		return nil
	}
	if e.busy(s) && !e.o.DiskLossAnytime || s.Op.Retired != 0 && e.retiredMember(s) {
		return nil
	}
	var out []int
	add := func(c *membership.Config) {
		if c == nil {
			return
		}
		for _, m := range c.Members {
			sl := int(slotOf(m))
			if a := s.Acc[sl]; !a.Lost && !a.Gone && !slices.Contains(out, sl) {
				out = append(out, sl)
			}
		}
	}
	add(e.cfg(s.Op.Cfg))
	add(e.cfg(s.Op.Tr.From))
	slices.Sort(out)
	return out
}

// diskLoss wipes a member's disk: it comes back at once, empty, with a new
// incarnation; the operator finds out at its next look (docs/design.md §4,
// "Replace").
func (e *explorer) diskLoss(s *xState, v int) string {
	s.Acc[v] = xAcc{Lost: true}
	s.Op.Plan++
	return fmt.Sprintf("%s loses its disk", slotNames[v])
}

// atomic reports whether an actor runs each phase of its rounds as one
// step: the operator's rescan always, a proposer when it is Atomic.
func (e *explorer) atomic(who uint8) bool {
	return who == xOperator || e.proposers()[who].Atomic
}

// subsets lists the subsets of set, of lo..hi members whose acceptor is
// still the member (its incarnation, not stopped).
func (e *explorer) subsets(s *xState, set []membership.Member, lo, hi int) [][]uint8 {
	var slots []uint8
	for _, m := range set {
		sl := slotOf(m)
		if a := s.Acc[sl]; !a.Gone && incarnation(int(sl), a.Lost) == m.Incarnation {
			slots = append(slots, sl)
		}
	}
	var out [][]uint8
	for mask := 0; mask < 1<<len(slots); mask++ {
		if n := popcount(uint8(mask)); n < lo || n > hi {
			continue
		}
		var sub []uint8
		for i, sl := range slots {
			if mask&(1<<i) != 0 {
				sub = append(sub, sl)
			}
		}
		out = append(out, sub)
	}
	return out
}

func popcount(x uint8) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// phase runs one phase of an atomic actor's round on the members of sub at
// once: the operator's touch through the library's key machine
// (touchPhase), a proposer's write through round.Write.
func (e *explorer) phase(s *xState, who uint8, sub []uint8) string {
	if who == xOperator {
		return e.touchPhase(s, sub)
	}
	att, clock, pcfg := e.actor(s, who)
	cfg := e.cfg(att.Cfg)
	epoch := e.epochOf(att.Cfg)
	var names []string
	for _, sl := range sub {
		names = append(names, slotNames[sl])
	}
	hear := func(sl uint8, r xReply) round.Reply {
		*clock = max(*clock, r.Conflict.C)
		e.adopt(pcfg, s.Acc[sl].Cfg) // a failed try is retried under it
		if r.Ok {
			return round.Ack
		}
		return round.Nack
	}
	what := fmt.Sprintf("%s %%s of k%d at %v on {%s}", senderName(who), att.Key, att.B.reg(), strings.Join(names, ","))
	if att.Val == xNone {
		w := round.NewWrite(cfg, att.B.reg())
		for _, sl := range sub {
			r := e.apply(s, xMsg{Kind: xPrepare, From: who, To: sl, Key: att.Key, Epoch: epoch, B: att.B})
			w.OnPrepare(incarnation(int(sl), r.Lost), hear(sl, r), r.Accepted.reg(), e.value(r.Val, s), r.Conflict.reg())
		}
		if w.Phase() != round.Proposing {
			e.retry(s, who)
			return fmt.Sprintf(what, "prepare") + ": fails"
		}
		att.Val = e.newValue(s, valueID(w.Current()))
		return fmt.Sprintf(what, "prepare") + fmt.Sprintf(": proposes v%d", att.Val)
	}
	w := round.NewFastWrite(cfg, att.B.reg(), register.Value{})
	w.Propose(e.value(att.Val, s), register.Ballot{})
	for _, sl := range sub {
		m := xMsg{Kind: xAccept, From: who, To: sl, Key: att.Key, Epoch: epoch, B: att.B, Val: att.Val}
		r := e.apply(s, m)
		if r.Ok && epoch < s.Op.Fenced && s.LateAccept == "" {
			s.LateAccept = fmt.Sprintf("%s accept(k%d, v%d at %v, epoch %d) at %s: accepted after epoch %d was fenced",
				senderName(who), att.Key, att.Val, att.B.reg(), epoch, slotNames[sl], s.Op.Fenced)
		}
		w.OnAccept(incarnation(int(sl), r.Lost), hear(sl, r), r.Conflict.reg())
	}
	w.Expire() // the other members never answer
	desc := fmt.Sprintf(what, fmt.Sprintf("accept v%d", att.Val)) + ": " + w.Outcome().String()
	switch w.Outcome() {
	case round.Success:
		e.succeeded(s, who)
	case round.Failed:
		e.retry(s, who)
	default:
		att.Active = false
	}
	return desc
}

// newValue is the value a client write proposes over cur: a new value
// derived from it.
func (e *explorer) newValue(s *xState, cur uint8) uint8 {
	v := s.NVals
	if int(v) == xMaxVals {
		panic("explore: too many values")
	}
	s.NVals++
	s.Parent[v], s.Ver[v] = cur, s.Ver[cur]+1
	return v
}

// succeeded records a client write acknowledged.
func (e *explorer) succeeded(s *xState, who uint8) {
	att, _, _ := e.actor(s, who)
	s.Acked[s.NAcked] = xAcked{Key: att.Key, Val: att.Val, B: att.B}
	s.NAcked++
	att.Active = false
}

// retry starts the next attempt after a definite failure, if one is left.
func (e *explorer) retry(s *xState, who uint8) {
	att, _, _ := e.actor(s, who)
	var limit uint8
	if who == xOperator {
		limit = uint8(e.o.OperatorTries) + 1 // the identity after a failed read
	} else {
		limit = uint8(e.proposers()[who].Tries)
	}
	if att.Tries < limit {
		e.startWrite(s, int(who), att.Key, att.Tries)
		return
	}
	att.Active = false // gives up; for the operator: stuck in this change
}

// sendTo sends an asynchronous proposer's prepares or accepts to sub.
func (e *explorer) sendTo(s *xState, who uint8, sub []uint8) string {
	att := &s.Props[who].A
	kind := att.Choose
	att.Choose = 0
	epoch := e.epochOf(att.Cfg)
	var names []string
	for _, sl := range sub {
		names = append(names, slotNames[sl])
		e.send(s, xMsg{Kind: kind, From: who, To: sl, Key: att.Key, Epoch: epoch, B: att.B, Val: att.Val, Att: att.Att})
	}
	if kind == xPrepare {
		return fmt.Sprintf("%s sends prepare(k%d, %v, epoch %d) to {%s}", senderName(who), att.Key, att.B.reg(), epoch, strings.Join(names, ","))
	}
	return fmt.Sprintf("%s sends accept(k%d, v%d at %v, epoch %d) to {%s}", senderName(who), att.Key, att.Val, att.B.reg(), epoch, strings.Join(names, ","))
}

// recoverable checks, while the operator is between changes, that every
// prepare quorum of the current configuration (members with their disk)
// would read a descendant of the acknowledged value: what a read or write
// started now would find.
func (e *explorer) recoverable(s *xState, ai xAcked) string {
	if e.busy(s) {
		return ""
	}
	cfg := e.cfg(s.Op.Cfg)
	for _, q := range e.subsets(s, cfg.PrepareSet(), cfg.PrepareQuorum, cfg.PrepareQuorum) {
		var best xReg
		for _, sl := range q {
			if r := s.Acc[sl].Keys[ai.Key]; best.Accepted.reg().Less(r.Accepted.reg()) {
				best = r
			}
		}
		if !descends(s, best.Val, ai.Val) {
			var names []string
			for _, sl := range q {
				names = append(names, slotNames[sl])
			}
			return fmt.Sprintf("acknowledged v%d at %v is lost: prepare quorum {%s} of epoch %d reads v%d",
				ai.Val, ai.B.reg(), strings.Join(names, ","), cfg.Epoch, best.Val)
		}
	}
	return ""
}
