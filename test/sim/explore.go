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
	"github.com/kshaka-io/kshaka/register"
)

// ExploreOptions bound the exhaustive exploration of the membership
// procedure: acceptors a, b, c; the operator adds d (3 → 4), one member
// loses its disk, and the operator removes it (4 → 3), each change planned
// by membership.Steps and carried out with the fence and the rescan of
// DESIGN §3 and §5. Two proposers start on epoch 1 and learn newer
// configurations only from rejections; every message may be delivered in
// any order, late (across epoch switches) or never, and an accept's reply
// may be lost.
type ExploreOptions struct {
	// Keys is 1 or 2. With 1 key both proposers write it; with 2 keys
	// proposer i writes key i.
	Keys int
	// Writes is how many writes each proposer makes.
	Writes int
	// Proposers is 1 or 2 (default 2).
	Proposers int
	// SyncProposer2 runs proposer 2's phases atomically (each on one
	// set of acceptors at once) instead of message by message; proposer
	// 1 stays fully asynchronous.
	SyncProposer2 bool
	// Proposer2Unknown lets proposer 2's atomic accept also land on a
	// single member (an unknown outcome); otherwise on a quorum.
	Proposer2Unknown bool
	// Tries is how many attempts a write or a rescan of a key may take.
	Tries int
	// DiskLossAnytime lets the disk loss happen at any point of the
	// first change, not only once it is done.
	DiskLossAnytime bool
	// MajorityFence breaks the fence: a majority of the members acknowledged.
	MajorityFence bool
	// SkipRescan breaks the procedure: no rescan between joint and final.
	SkipRescan bool
	// SkipBelowAcceptQuorum breaks the rescan: it reads each key from the
	// joint accept set first and skips a key that agrees on qa − 1 of its
	// members (a weaker form of the withdrawn skip rule, skipRule).
	SkipBelowAcceptQuorum bool
	// RescanSkip brings back the withdrawn skip rule itself: a key that
	// agrees on qa members of the joint accept set is skipped. Its
	// counterexample needs five members (SurvivingBallot); this model has
	// at most four, so the explorer is no check of it.
	RescanSkip bool
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
}

const (
	xAcceptors = 4 // a, b, c, d
	xProposers = 2
	xOperator  = xProposers // sender index of the operator
	xMaxMsgs   = 28
	xMaxVals   = 12
	xMaxLog    = 8
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
	Lost  bool  // the disk was lost: a new incarnation
	Epoch uint8 // its configuration; 0 = none
	Keys  [2]xReg
}

type msgK uint8

const (
	xPrepare msgK = iota + 1
	xAccept
	xRead
	xInstall
)

type xMsg struct {
	Kind     msgK
	From, To uint8 // From: proposer index or xOperator
	Key      uint8
	Epoch    uint8
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

// xAttempt is a write (or, for the operator, a rescan read or identity
// write) of one key under one epoch. Its round.Write / round.Read is
// rebuilt by replaying the replies in the order they came.
type xAttempt struct {
	Active bool
	Read   bool
	Key    uint8
	Epoch  uint8
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
	Epoch  uint8
	Clock  uint8
	Writes uint8 // writes left to start
	A      xAttempt
}

// Operator stages.
const (
	oInstallNew uint8 = iota // joint of the add, to d first
	oFenceJoint1
	oRescan1
	oFenceFinal1
	oStable1 // 4 members; the disk loss and the removal follow
	oFenceJoint2
	oRescan2
	oFenceFinal2
	oDone
)

type xOp struct {
	Stage  uint8
	Cursor uint8
	Acks   uint8 // bitmask of slots that acknowledged the stage's epoch
	Victim uint8 // slot that lost its disk; xNone before
	Clock  uint8
	A      xAttempt
}

type xAcked struct {
	Key, Val uint8
	B        xBallot
}

// xState is one global state. It holds only fixed-size arrays of bytes so
// it copies by value; canonical() sorts the messages for hashing.
type xState struct {
	Acc    [xAcceptors]xAcc
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
	// epoch below one the operator had declared fenced (DESIGN §3 says
	// none does); the accept's description.
	LateAccept string
}

type explorer struct {
	o      ExploreOptions
	cfgs   [6]*membership.Config // by epoch; 4 and 5 per victim
	remove [xAcceptors][2]*membership.Config
	seen   map[[2]uint64]struct{}
	res    ExploreResult
	path   []string
	enc    []byte
	alt    []byte
}

var slotNames = [xAcceptors]string{"a", "b", "c", "d"}

func incarnation(slot int, lost bool) uint64 {
	if lost {
		return uint64(10 + slot)
	}
	return uint64(1 + slot)
}

func member(slot int) membership.Member {
	return membership.Member{ID: slotNames[slot], Addr: slotNames[slot], Incarnation: incarnation(slot, false)}
}

// Explore runs the bounded exhaustive search.
func Explore(o ExploreOptions) (ExploreResult, error) {
	if o.Keys < 1 || o.Keys > 2 || o.Writes < 1 || o.Tries < 1 {
		return ExploreResult{}, errors.New("explore: bad options")
	}
	e := &explorer{o: o, seen: map[[2]uint64]struct{}{}}
	c1 := membership.Stable(1, member(0), member(1), member(2))
	j, f, err := membership.Steps(c1, membership.Change{Kind: membership.Add, Member: member(3)})
	if err != nil {
		return ExploreResult{}, err
	}
	e.cfgs[1], e.cfgs[2], e.cfgs[3] = &c1, &j, &f
	for v := 0; v < xAcceptors; v++ {
		j2, f2, err := membership.Steps(f, membership.Change{Kind: membership.Remove, Member: member(v)})
		if err != nil {
			return ExploreResult{}, err
		}
		e.remove[v] = [2]*membership.Config{&j2, &f2}
	}
	var s xState
	for i := 0; i < 3; i++ {
		s.Acc[i].Epoch = 1
	}
	s.NVals = 1 // value 0: the empty register
	for p := range s.Props {
		s.Props[p].Epoch = 1
		s.Props[p].Writes = uint8(o.Writes)
	}
	s.Op.Victim = xNone
	s.Op.A.Val = xNone
	e.send(&s, xMsg{Kind: xInstall, From: xOperator, To: 3, Epoch: 2})
	// A proposer's first write knows only epoch 1, and its messages can be
	// delivered arbitrarily late, so starting it now loses no behaviour.
	for p := range s.Props {
		if o.Proposers == 1 && p == 1 {
			s.Props[p].Writes = 0
			continue
		}
		s.Props[p].Writes--
		key := uint8(0)
		if o.Keys == 2 {
			key = uint8(p)
		}
		e.startWrite(&s, p, key, 0)
	}
	e.dfs(s, 0)
	return e.res, nil
}

func (e *explorer) cfg(s *xState, epoch uint8) *membership.Config {
	switch {
	case epoch == 0:
		return nil
	case epoch <= 3:
		return e.cfgs[epoch]
	}
	return e.remove[s.Op.Victim][epoch-4]
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
	// a, b and c play symmetric roles (the configurations come from
	// Steps over renamed members, every choice enumerates all subsets and
	// rounds decide on sets of replies): the key is that of the least
	// encoding over the six renamings of {a, b, c}.
	best := s.encode(e.enc[:0])
	e.enc = best
	for _, pi := range perms[1:] {
		t := s.permute(pi)
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

var perms = [6][xAcceptors]uint8{{0, 1, 2, 3}, {0, 2, 1, 3}, {1, 0, 2, 3}, {1, 2, 0, 3}, {2, 0, 1, 3}, {2, 1, 0, 3}}

// permute renames acceptor slot i to pi[i] everywhere in the state.
func (s *xState) permute(pi [xAcceptors]uint8) xState {
	t := *s
	for i := range s.Acc {
		t.Acc[pi[i]] = s.Acc[i]
	}
	for i := range t.Msgs[:t.NMsg] {
		t.Msgs[i].To = pi[t.Msgs[i].To]
	}
	slices.SortFunc(t.Msgs[:t.NMsg], cmpMsg)
	relog := func(a *xAttempt) {
		for i := range a.Log[:a.NLog] {
			a.Log[i].From = pi[a.Log[i].From]
		}
		slices.SortFunc(a.Log[:a.NLog], func(x, y xReply) int { return cmpBytes(x.bytes(), y.bytes()) })
	}
	for p := range t.Props {
		relog(&t.Props[p].A)
	}
	relog(&t.Op.A)
	var acks uint8
	for i := 0; i < xAcceptors; i++ {
		if s.Op.Acks&(1<<i) != 0 {
			acks |= 1 << pi[i]
		}
	}
	t.Op.Acks = acks
	if t.Op.Victim != xNone {
		t.Op.Victim = pi[t.Op.Victim]
	}
	return t
}

// prune drops messages whose delivery can change nothing: reads of a
// rescan attempt that is over, and installs older than the operator's
// current target to acceptors already past them (the current install to the
// same member has the same effect).
func (e *explorer) prune(s *xState) {
	target, _ := e.stageEpoch(s)
	n := 0
	for _, m := range s.Msgs[:s.NMsg] {
		switch {
		case m.Kind == xRead && (!s.Op.A.Active || !s.Op.A.Read || s.Op.A.Att != m.Att):
			continue
		case m.Kind == xInstall && m.Epoch < target && s.Acc[m.To].Epoch >= m.Epoch:
			continue
		case m.Kind == xInstall && target == 0 && s.Acc[m.To].Epoch >= m.Epoch:
			continue
		case (m.Kind == xPrepare || m.Kind == xAccept) && m.From != xOperator &&
			!s.Props[m.From].A.Active && s.Props[m.From].Writes == 0 && e.refuses(s, m):
			// Its sender is done for good, and the acceptor would
			// refuse it: delivering it changes nothing.
			continue
		case (m.Kind == xPrepare || m.Kind == xAccept) && m.From == xOperator &&
			(!s.Op.A.Active || s.Op.A.Att != m.Att) && e.refuses(s, m):
			continue // the operator ignores replies of its old attempts
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
	if e.cfg(s, a.Epoch).Check(incarnation(int(m.To), a.Lost), uint64(m.Epoch)) != nil {
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
	return [10]byte{byte(m.Kind), m.From, m.To, m.Key, m.Epoch, m.B.C, m.B.P, m.Val, m.Att, 0}
}

func cmpMsg(a, b xMsg) int {
	x, y := a.bytes(), b.bytes()
	return bytes.Compare(x[:], y[:])
}

func (a *xAttempt) put(buf []byte) []byte {
	buf = append(buf, b2u(a.Active), b2u(a.Read), a.Key, a.Epoch, a.B.C, a.B.P, a.Att, a.Tries, a.Val, byte(a.Choose), a.NLog)
	for _, r := range a.Log[:a.NLog] {
		buf = append(buf, byte(r.Kind), r.From, b2u(r.Lost), b2u(r.Ok), r.Accepted.C, r.Accepted.P, r.Val, r.Conflict.C, r.Conflict.P)
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

// encode appends the state's canonical bytes (messages must be sorted).
func (s *xState) encode(buf []byte) []byte {
	for _, a := range s.Acc {
		buf = append(buf, b2u(a.Lost), a.Epoch)
		for _, k := range a.Keys {
			buf = append(buf, k.Promise.C, k.Promise.P, k.Accepted.C, k.Accepted.P, k.Val)
		}
	}
	buf = append(buf, s.NMsg)
	for _, m := range s.Msgs[:s.NMsg] {
		x := m.bytes()
		buf = append(buf, x[:9]...)
	}
	for _, p := range s.Props {
		buf = append(buf, p.Epoch, p.Clock, p.Writes)
		buf = p.A.put(buf)
	}
	buf = append(buf, s.Op.Stage, s.Op.Cursor, s.Op.Acks, s.Op.Victim, s.Op.Clock)
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
	if e.o.MaxStates > 0 && e.res.States >= e.o.MaxStates {
		e.res.Truncated = true
		return
	}
	if v := e.check(&s); v != "" {
		e.res.Violation = v
		e.res.Trace = slices.Clone(e.path)
		return
	}
	// Deliver any message (identical messages once), with or without
	// its reply for accepts.
	for i := 0; i < int(s.NMsg); i++ {
		if slices.Contains(s.Msgs[:i], s.Msgs[i]) {
			continue
		}
		replies := []bool{true}
		if s.Msgs[i].Kind == xAccept && s.Msgs[i].From != xOperator {
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
	for who := uint8(0); who < xProposers; who++ {
		att := s.Props[who].A
		if !att.Active || att.Choose == 0 {
			continue
		}
		// An asynchronous proposer sends its prepares to a prepare
		// quorum, its accepts to any non-empty subset of S; messages to
		// the others are lost.
		cfg := e.cfg(&s, att.Epoch)
		subs := subsets(&s, cfg.PrepareSet(), cfg.PrepareQuorum, cfg.PrepareQuorum)
		if att.Choose == xAccept {
			subs = subsets(&s, cfg.AcceptSet(), 1, len(cfg.AcceptSet()))
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
		// acceptors: a prepare quorum; for the accept, any non-empty
		// subset for a client (fewer than a quorum: unknown outcome)
		// and a quorum for the operator.
		cfg := e.cfg(&s, att.Epoch)
		var subs [][]uint8
		switch {
		case att.Val == xNone:
			subs = subsets(&s, cfg.PrepareSet(), cfg.PrepareQuorum, cfg.PrepareQuorum)
		case who == xOperator:
			subs = subsets(&s, cfg.AcceptSet(), cfg.AcceptQuorum, cfg.AcceptQuorum)
		case e.o.Proposer2Unknown:
			// A quorum, or a single member (an unknown outcome).
			subs = append(subsets(&s, cfg.AcceptSet(), cfg.AcceptQuorum, cfg.AcceptQuorum),
				subsets(&s, cfg.AcceptSet(), 1, 1)...)
		default:
			subs = subsets(&s, cfg.AcceptSet(), cfg.AcceptQuorum, cfg.AcceptQuorum)
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
	if s.Op.Victim == xNone && (s.Op.Stage == oStable1 || (e.o.DiskLossAnytime && s.Op.Stage < oStable1)) {
		for v := 0; v < xAcceptors; v++ {
			if v == 3 && s.Op.Stage < oFenceJoint1 {
				continue // d has not joined yet
			}
			t := s
			desc := e.diskLoss(&t, v)
			e.step(t, depth, desc)
		}
	}
}

func (e *explorer) step(t xState, depth int, desc string) {
	e.res.Transitions++
	e.path = append(e.path, desc)
	e.dfs(t, depth+1)
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
		if m.Epoch > a.Epoch {
			a.Epoch = m.Epoch
		}
		e.installAck(s, int(m.To), a.Epoch)
		return fmt.Sprintf("install epoch %d on %s", m.Epoch, name)
	}
	desc := fmt.Sprintf("%s prepare(k%d, %v, epoch %d) at %s (epoch %d)", senderName(m.From), m.Key, m.B.reg(), m.Epoch, name, a.Epoch)
	if m.Kind == xAccept {
		desc = fmt.Sprintf("%s accept(k%d, v%d at %v, epoch %d) at %s (epoch %d)", senderName(m.From), m.Key, m.Val, m.B.reg(), m.Epoch, name, a.Epoch)
	}
	r := e.apply(s, m)
	if r.Ok {
		desc += ": ok"
		if f := fencedEpoch(s.Op.Stage); m.Kind == xAccept && m.Epoch < f && s.LateAccept == "" {
			s.LateAccept = fmt.Sprintf("%s: accepted after epoch %d was fenced", desc, f)
		}
	} else {
		desc += ": refused"
	}
	if !reply {
		return desc + ", reply lost"
	}
	e.onReply(s, m, r, a.Epoch)
	return desc
}

// apply is the acceptor's side of a prepare, accept or read: the admission
// and epoch gate (membership.Config.Check), then the register rule.
func (e *explorer) apply(s *xState, m xMsg) xReply {
	a := &s.Acc[m.To]
	st := register.State{Promise: a.Keys[m.Key].Promise.reg(), Accepted: a.Keys[m.Key].Accepted.reg(), Value: e.value(a.Keys[m.Key].Val, s)}
	r := xReply{Kind: m.Kind, From: m.To, Lost: a.Lost}
	if e.cfg(s, a.Epoch).Check(incarnation(int(m.To), a.Lost), uint64(m.Epoch)) != nil {
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
	case xRead:
		r.Ok, r.Accepted, r.Val = true, fromReg(st.Accepted), a.Keys[m.Key].Val
	}
	return r
}

func senderName(from uint8) string {
	if from == xOperator {
		return "operator"
	}
	return fmt.Sprintf("p%d", from+1)
}

// attempt returns the sender's attempt, its clock and its epoch.
func (e *explorer) actor(s *xState, who uint8) (att *xAttempt, clock *uint8, epoch *uint8) {
	if who == xOperator {
		return &s.Op.A, &s.Op.Clock, nil
	}
	p := &s.Props[who]
	return &p.A, &p.Clock, &p.Epoch
}

func (e *explorer) onReply(s *xState, m xMsg, r xReply, accEpoch uint8) {
	att, clock, epoch := e.actor(s, m.From)
	if m.From == xOperator && (!att.Active || att.Att != m.Att) {
		return // like the simulated operator: replies of old attempts are dropped
	}
	if !r.Conflict.reg().IsZero() && r.Conflict.C > *clock {
		*clock = r.Conflict.C
	}
	learned := false
	if epoch != nil && accEpoch > *epoch {
		*epoch, learned = accEpoch, true // adopt the newer configuration
	}
	if !att.Active || att.Att != m.Att || att.Read != (m.Kind == xRead) || int(att.NLog) == xMaxLog {
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

// replay rebuilds the attempt's round from its replies.
func (e *explorer) replay(s *xState, att *xAttempt) (*round.Write, *round.Read) {
	cfg := e.cfg(s, att.Epoch)
	if att.Read {
		rd := round.NewRead(cfg)
		for _, r := range att.Log[:att.NLog] {
			rd.OnRead(incarnation(int(r.From), r.Lost), r.Ok, r.Accepted.reg(), e.value(r.Val, s))
		}
		return nil, rd
	}
	w := round.NewWrite(cfg, att.B.reg())
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
	return w, nil
}

func (e *explorer) progress(s *xState, who uint8, learned bool) {
	att, _, _ := e.actor(s, who)
	w, rd := e.replay(s, att)
	if rd != nil {
		switch rd.Outcome() {
		case round.Success:
			e.rescanned(s)
		case round.Failed:
			e.startWrite(s, int(who), att.Key, 0)
		}
		return
	}
	if learned && w.Phase() == round.Preparing {
		w.Expire() // a newer configuration: retry under it
	}
	switch w.Phase() {
	case round.Proposing:
		att.Val = e.newValue(s, who, valueID(w.Current()))
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

func slotOf(m membership.Member) uint8 {
	for i, n := range slotNames {
		if m.ID == n {
			return uint8(i)
		}
	}
	panic("explore: unknown member " + m.ID)
}

// startWrite starts a write attempt with a new ballot: a client write, or
// the operator's identity change of a rescan.
func (e *explorer) startWrite(s *xState, who int, key uint8, tries uint8) string {
	att, clock, epoch := e.actor(s, uint8(who))
	ep := uint8(0)
	if epoch != nil {
		ep = *epoch
	} else {
		ep = e.opEpoch(s)
	}
	*clock++
	n := att.Att + 1
	*att = xAttempt{Active: true, Key: key, Epoch: ep, B: xBallot{C: *clock, P: uint8(who + 1)}, Att: n, Tries: tries + 1, Val: xNone}
	if !e.atomic(uint8(who)) {
		att.Choose = xPrepare // see sendTo
	}
	return fmt.Sprintf("%s starts writing k%d with %v under epoch %d", senderName(uint8(who)), key, att.B.reg(), ep)
}

// opEpoch is the joint epoch the operator's rescan runs under.
func (e *explorer) opEpoch(s *xState) uint8 {
	if s.Op.Stage <= oFenceFinal1 {
		return 2
	}
	return 4
}

// The operator.

func (e *explorer) fenceSet(s *xState, prev, next uint8) uint8 {
	var set uint8
	for _, ep := range []uint8{prev, next} {
		for _, mb := range e.cfg(s, ep).Members {
			slot := slotOf(mb)
			if s.Op.Victim == slot {
				continue // retired
			}
			set |= 1 << slot
		}
	}
	return set
}

// fencedEpoch is the highest epoch the operator has declared fenced at
// stage st: the epoch whose installation the previous fence stage waited
// for (1, the initial configuration, before the first fence).
func fencedEpoch(st uint8) uint8 {
	switch {
	case st >= oDone:
		return 5
	case st >= oRescan2:
		return 4
	case st >= oStable1:
		return 3
	case st >= oRescan1:
		return 2
	}
	return 1
}

func (e *explorer) stageEpoch(s *xState) (target, prev uint8) {
	switch s.Op.Stage {
	case oInstallNew, oFenceJoint1:
		return 2, 1
	case oFenceFinal1:
		return 3, 2
	case oFenceJoint2:
		return 4, 3
	case oFenceFinal2:
		return 5, 4
	}
	return 0, 0
}

func (e *explorer) installAck(s *xState, slot int, epoch uint8) {
	target, prev := e.stageEpoch(s)
	if target == 0 || epoch < target {
		return
	}
	s.Op.Acks |= 1 << slot
	if s.Op.Stage == oInstallNew {
		if slot == 3 {
			e.advance(s, oFenceJoint1)
		}
		return
	}
	set := e.fenceSet(s, prev, target)
	acked := popcount(s.Op.Acks & set)
	need := popcount(set)
	if e.o.MajorityFence {
		need = membership.Majority(need)
	}
	if acked >= need {
		e.advance(s, s.Op.Stage+1)
	}
}

func popcount(x uint8) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// advance moves the operator to stage st and sends what it needs.
func (e *explorer) advance(s *xState, st uint8) {
	s.Op.Stage = st
	s.Op.Acks = 0
	switch st {
	case oFenceJoint1, oFenceFinal1, oFenceJoint2, oFenceFinal2:
		target, prev := e.stageEpoch(s)
		set := e.fenceSet(s, prev, target)
		for slot := 0; slot < xAcceptors; slot++ {
			if set&(1<<slot) == 0 {
				continue
			}
			e.send(s, xMsg{Kind: xInstall, From: xOperator, To: uint8(slot), Epoch: target})
		}
	case oStable1:
		if s.Op.Victim != xNone {
			e.advance(s, oFenceJoint2) // the disk was lost during the first change
		}
	case oRescan1, oRescan2:
		if e.o.SkipRescan {
			e.advance(s, st+1)
			return
		}
		s.Op.Cursor = 0
		e.rescanKey(s)
	}
}

// rescanKey starts the rescan of the key at the cursor: the identity change
// (DESIGN §5 step 3). With a skip option (negative controls), a read of the
// joint accept set comes first, then the identity change if the skip rule
// does not skip the key.
func (e *explorer) rescanKey(s *xState) {
	if int(s.Op.Cursor) >= e.o.Keys {
		e.advance(s, s.Op.Stage+1)
		return
	}
	if !e.o.RescanSkip && !e.o.SkipBelowAcceptQuorum {
		e.startWrite(s, xOperator, s.Op.Cursor, 0)
		return
	}
	ep := e.opEpoch(s)
	n := s.Op.A.Att + 1
	s.Op.A = xAttempt{Active: true, Read: true, Key: s.Op.Cursor, Epoch: ep, Att: n, Val: xNone}
}

// snapshotRead runs the withdrawn skip rule (skipRule; negative controls
// only) over the replies every member of the joint accept set would give
// now: a key whose accepted ballot agrees on qa members of S, or qa − 1
// with SkipBelowAcceptQuorum, is skipped.
func (e *explorer) snapshotRead(s *xState, fail bool) string {
	att := &s.Op.A
	if fail {
		e.startWrite(s, xOperator, att.Key, 0)
		return fmt.Sprintf("operator's rescan read of k%d fails", att.Key)
	}
	cfg := e.cfg(s, att.Epoch)
	if e.o.SkipBelowAcceptQuorum && cfg.AcceptQuorum > 1 {
		weak := cfg.Clone()
		weak.AcceptQuorum--
		cfg = &weak
	}
	sk := newSkipRule(cfg)
	for _, mb := range sk.Targets() {
		slot := slotOf(mb)
		a := s.Acc[slot]
		ok := e.cfg(s, a.Epoch).Check(incarnation(int(slot), a.Lost), uint64(att.Epoch)) == nil
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

func (e *explorer) rescanned(s *xState) {
	s.Op.A.Active = false
	s.Op.Cursor++
	e.rescanKey(s)
}

// diskLoss wipes a member's disk; the operator retires it and, once the
// first change is done, removes it (DESIGN §4, "Replace").
func (e *explorer) diskLoss(s *xState, v int) string {
	s.Acc[v] = xAcc{Lost: true}
	s.Op.Victim = uint8(v)
	if s.Op.Stage == oStable1 {
		e.advance(s, oFenceJoint2)
	}
	return fmt.Sprintf("%s loses its disk (retired)", slotNames[v])
}

// atomic reports whether an actor runs each phase of its rounds as one
// step: the operator's rescan always, proposer 2 with SyncProposer2.
func (e *explorer) atomic(who uint8) bool {
	return who == xOperator || (who == 1 && e.o.SyncProposer2)
}

// subsets lists the subsets of set, of lo..hi members that have not lost
// their disk.
func subsets(s *xState, set []membership.Member, lo, hi int) [][]uint8 {
	var slots []uint8
	for _, m := range set {
		if sl := slotOf(m); !s.Acc[sl].Lost {
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

// phase runs one phase of an atomic actor's round on the members of sub at
// once, through round.Write.
func (e *explorer) phase(s *xState, who uint8, sub []uint8) string {
	att, clock, epoch := e.actor(s, who)
	cfg := e.cfg(s, att.Epoch)
	var names []string
	for _, sl := range sub {
		names = append(names, slotNames[sl])
	}
	hear := func(sl uint8, r xReply) round.Reply {
		*clock = max(*clock, r.Conflict.C)
		if epoch != nil && s.Acc[sl].Epoch > *epoch {
			*epoch = s.Acc[sl].Epoch // a failed try is retried under it
		}
		if r.Ok {
			return round.Ack
		}
		return round.Nack
	}
	what := fmt.Sprintf("%s %%s of k%d at %v on {%s}", senderName(who), att.Key, att.B.reg(), strings.Join(names, ","))
	if att.Val == xNone {
		w := round.NewWrite(cfg, att.B.reg())
		for _, sl := range sub {
			r := e.apply(s, xMsg{Kind: xPrepare, From: who, To: sl, Key: att.Key, Epoch: att.Epoch, B: att.B})
			w.OnPrepare(incarnation(int(sl), r.Lost), hear(sl, r), r.Accepted.reg(), e.value(r.Val, s), r.Conflict.reg())
		}
		if w.Phase() != round.Proposing {
			e.retry(s, who)
			return fmt.Sprintf(what, "prepare") + ": fails"
		}
		att.Val = e.newValue(s, who, valueID(w.Current()))
		return fmt.Sprintf(what, "prepare") + fmt.Sprintf(": proposes v%d", att.Val)
	}
	w := round.NewFastWrite(cfg, att.B.reg(), register.Value{})
	w.Propose(e.value(att.Val, s), register.Ballot{})
	for _, sl := range sub {
		r := e.apply(s, xMsg{Kind: xAccept, From: who, To: sl, Key: att.Key, Epoch: att.Epoch, B: att.B, Val: att.Val})
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
		if who == xOperator {
			e.retry(s, who)
		} else {
			att.Active = false
		}
	}
	return desc
}

// newValue is the value an actor proposes over cur: the identity for the
// operator's rescan, a new value derived from cur for a client write.
func (e *explorer) newValue(s *xState, who uint8, cur uint8) uint8 {
	if who == xOperator {
		return cur
	}
	v := s.NVals
	if int(v) == xMaxVals {
		panic("explore: too many values")
	}
	s.NVals++
	s.Parent[v], s.Ver[v] = cur, s.Ver[cur]+1
	return v
}

func (e *explorer) succeeded(s *xState, who uint8) {
	if who == xOperator {
		e.rescanned(s)
		return
	}
	att, _, _ := e.actor(s, who)
	s.Acked[s.NAcked] = xAcked{Key: att.Key, Val: att.Val, B: att.B}
	s.NAcked++
	att.Active = false
}

// retry starts the next attempt after a definite failure, if one is left.
func (e *explorer) retry(s *xState, who uint8) {
	att, _, _ := e.actor(s, who)
	limit := uint8(e.o.Tries)
	if who == xOperator {
		limit++ // the identity after a failed read
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
	var names []string
	for _, sl := range sub {
		names = append(names, slotNames[sl])
		e.send(s, xMsg{Kind: kind, From: who, To: sl, Key: att.Key, Epoch: att.Epoch, B: att.B, Val: att.Val, Att: att.Att})
	}
	if kind == xPrepare {
		return fmt.Sprintf("%s sends prepare(k%d, %v, epoch %d) to {%s}", senderName(who), att.Key, att.B.reg(), att.Epoch, strings.Join(names, ","))
	}
	return fmt.Sprintf("%s sends accept(k%d, v%d at %v, epoch %d) to {%s}", senderName(who), att.Key, att.Val, att.B.reg(), att.Epoch, strings.Join(names, ","))
}

// recoverable checks, while the operator is between changes, that every
// prepare quorum of the current configuration (members with their disk)
// would read a descendant of the acknowledged value: what a read or write
// started now would find.
func (e *explorer) recoverable(s *xState, ai xAcked) string {
	var epoch uint8
	switch s.Op.Stage {
	case oStable1:
		epoch = 3
	case oDone:
		epoch = 5
	default:
		return ""
	}
	cfg := e.cfg(s, epoch)
	for _, q := range subsets(s, cfg.PrepareSet(), cfg.PrepareQuorum, cfg.PrepareQuorum) {
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
				ai.Val, ai.B.reg(), strings.Join(names, ","), epoch, best.Val)
		}
	}
	return ""
}
