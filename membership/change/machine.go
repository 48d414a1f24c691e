package change

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kshaka-io/kshaka/membership"
)

// Controls are negative controls: each one breaks the procedure on purpose
// so that the simulation and the explorer can show that they catch the
// break (docs/design.md §8: a checker that cannot catch them proves nothing). The
// zero value is the correct procedure. Production never sets one: the
// operator builds its Machine with no controls and refuses a rescan that
// asks to skip keys.
type Controls struct {
	// MajorityFence counts an epoch as fenced once a majority of the
	// members that must acknowledge it have (docs/design.md §3 requires all of
	// them), both before the rescan and before the final configuration.
	MajorityFence bool
	// SkipRescan goes from the fenced joint configuration straight to the
	// final one, without the rescan (docs/design.md §5).
	SkipRescan bool
	// RescanSkip brings back the withdrawn rescan skip rule: the rescan may
	// skip a key whose accepted ballot agrees on qa members of the joint
	// accept set (Action.SkipAgreeing = qa). The counterexample needs five
	// members (docs/design.md, "The rescan touches every key").
	RescanSkip bool
	// SkipBelowAcceptQuorum lets the rescan skip a key that agrees on
	// qa − 1 members of the joint accept set: a weaker form of RescanSkip.
	SkipBelowAcceptQuorum bool
	// IgnoreRolledBack does not compare what a member reports with the
	// highest epoch recorded as acknowledged by its incarnation: a volume
	// restored from an older copy keeps serving as the member it was, with
	// the promises and accepts it lost (docs/design.md §4 "Rolled-back disks").
	IgnoreRolledBack bool
}

// Machine is the membership transition procedure of docs/design.md §3–§5: the
// bootstrap, one add or remove at a time (each through membership.Steps'
// joint and final configurations, the fence and the rescan), the
// replacement of a lost or rolled-back disk, retirement and the rescan
// cursor. It is pure: Next maps an intent and an observation to a decision,
// and the caller does all I/O in the order observe → Next → record the
// decision's intent → act. The zero Machine is the correct procedure.
type Machine struct {
	Controls Controls
}

// Next computes the next step from the recorded intent in and one
// observation. It is pure and does not modify in: the same input gives the
// same decision. The caller records Decision.Intent before it carries out
// Decision.Action; every action is idempotent and the next decision
// re-checks what it did, so a caller that crashes anywhere resumes
// correctly from the recorded intent.
func (m Machine) Next(in Intent, obs Observation) Decision {
	d := newDecider(m, in, obs)
	d.observeAcks()
	d.retire()
	switch {
	case obs.Paused:
		d.pace(PaceIdle)
	case d.recycleRetiredMember():
	case d.in.Transition != nil:
		d.continueTransition()
	case d.in.Config == nil:
		d.bootstrap()
	default:
		d.nextChange()
	}
	d.out.Intent = d.in
	d.out.view = d.v
	return d.out
}

// Progress is what one rescan batch did.
type Progress struct {
	// Cursor is the last key covered; the next batch starts after it.
	// Nil keeps the recorded cursor.
	Cursor []byte
	// Keys is the number of keys rescanned (each one touched).
	Keys int
	// Done: no key is left after Cursor.
	Done bool
}

// Rescanned records a rescan batch in the intent, which must be at the
// Rescan step, and once the rescan is complete moves on to installing the
// final configuration. It returns the new intent (in is not modified) and
// the events of the step. The caller records the new intent before the
// next batch.
func (m Machine) Rescanned(in Intent, p Progress) (Intent, []Event, error) {
	tr := in.Transition
	if tr == nil || tr.Step != StepRescan {
		return in, nil, fmt.Errorf("while recording a rescan batch: the transition is not at the Rescan step")
	}
	out := in.Clone()
	tr = out.Transition
	tr.Rescanned += int64(p.Keys)
	if len(p.Cursor) > 0 {
		tr.Cursor = slices.Clone(p.Cursor)
	}
	if !p.Done {
		return out, nil, nil
	}
	_, _, final, err := steps(tr)
	if err != nil {
		return in, nil, fmt.Errorf("while planning the final configuration: %w", err)
	}
	tr.Step = StepInstallFinal
	out.Config = &final
	return out, []Event{{Reason: EventRescanned,
		Message: fmt.Sprintf("Rescanned %d keys; installing final configuration %s", tr.Rescanned, final)}}, nil
}

// decider carries one Next call.
type decider struct {
	m   Machine
	obs Observation
	in  Intent
	v   View
	out Decision
	// pos is each slot's position in obs.Slots.
	pos map[string]int
}

func newDecider(m Machine, in Intent, obs Observation) *decider {
	d := &decider{m: m, obs: obs, in: in.Clone(), pos: map[string]int{}}
	d.v = NewView(d.in, obs)
	for i, s := range obs.Slots {
		if _, dup := d.pos[s]; !dup {
			d.pos[s] = i
		}
	}
	return d
}

func (d *decider) pace(p Pace) { d.out.Pace = max(d.out.Pace, p) }

func (d *decider) event(warning bool, reason, format string, args ...any) {
	d.out.Events = append(d.out.Events, Event{Warning: warning, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

func (d *decider) block(reason, format string, args ...any) {
	d.out.Blocked, d.out.BlockedReason = fmt.Sprintf(format, args...), reason
	d.pace(PaceWait)
}

func (d *decider) wait(format string, args ...any) {
	d.out.Waiting = fmt.Sprintf(format, args...)
	d.pace(PaceWait)
}

// position of a slot in obs.Slots; -1 when it is not one.
func (d *decider) position(id string) int {
	if p, ok := d.pos[id]; ok {
		return p
	}
	return -1
}

func (d *decider) target(m membership.Member) Target {
	return Target{Slot: m.ID, Addr: d.obs.Seen[m.ID].Addr, Incarnation: m.Incarnation}
}

// inPlay returns every member of the configurations the cluster may be
// using: the current one, the one the transition started from, and the
// member being added.
func (d *decider) inPlay() []membership.Member {
	var out []membership.Member
	seen := map[uint64]bool{}
	add := func(ms ...membership.Member) {
		for _, m := range ms {
			if m.Incarnation != 0 && !seen[m.Incarnation] {
				seen[m.Incarnation] = true
				out = append(out, m)
			}
		}
	}
	if c := d.in.Config; c != nil {
		add(c.Members...)
	}
	if tr := d.in.Transition; tr != nil {
		if tr.From != nil {
			add(tr.From.Members...)
		}
		add(tr.Member)
	}
	return out
}

// observeAcks updates the record of the highest acknowledged epoch of every
// slot that was observed or holds a member (NextAck), and drops the
// records of the others.
func (d *decider) observeAcks() {
	keep := map[uint64]bool{}
	for _, m := range d.inPlay() {
		if !d.v.Retired(m.Incarnation) {
			keep[m.Incarnation] = true
		}
	}
	slots := map[string]bool{}
	for s := range d.obs.Seen {
		slots[s] = true
	}
	if c := d.in.Config; c != nil {
		for _, m := range c.Members {
			slots[m.ID] = true
		}
	}
	acks := map[string]Ack{}
	for s := range slots {
		old, had := d.in.Acks[s]
		if rec, ok := NextAck(old, had, d.obs.Seen[s], keep); ok {
			acks[s] = rec
		}
	}
	d.in.Acks = acks
}

// NextAck is a slot's record of the highest acknowledged epoch after one
// observation a of it (old, when had, is the record before). The record
// is kept while the acceptor cannot be reached and never lowered for the
// same incarnation. An answer with another incarnation starts a new
// record, except while the recorded incarnation is still a non-retired
// member in play (keep): its record is what detects that member's volume
// coming back rolled back.
func NextAck(old Ack, had bool, a Slot, keep map[uint64]bool) (Ack, bool) {
	if !a.Reachable || a.Incarnation == 0 {
		return old, had
	}
	switch {
	case had && old.Incarnation == a.Incarnation:
		return Ack{Incarnation: a.Incarnation, Epoch: max(old.Epoch, a.Epoch)}, true
	case had && keep[old.Incarnation]:
		return old, true
	}
	return Ack{Incarnation: a.Incarnation, Epoch: a.Epoch}, true
}

// rolledBackFrom reports whether m's acceptor answers with m's incarnation
// and an epoch lower than the one recorded as acknowledged by that
// incarnation: its storage was restored from an older copy and lost the
// promises and accepts made since (docs/design.md §4 "Rolled-back disks").
func (d *decider) rolledBackFrom(m membership.Member) (acked, now uint64, ok bool) {
	a, reached := d.v.acceptor(m)
	if !reached || a.Incarnation != m.Incarnation {
		return 0, 0, false
	}
	rec, have := d.in.Acks[m.ID]
	if !have || rec.Incarnation != m.Incarnation || rec.Epoch <= a.Epoch {
		return 0, 0, false
	}
	return rec.Epoch, a.Epoch, true
}

// RolledBackMessage says what a rolled-back volume reported.
func RolledBackMessage(acked, now uint64) string {
	return fmt.Sprintf("volume rolled back: acknowledged epoch %d, now reports %d", acked, now)
}

// retire retires members whose storage is known to be gone (docs/design.md §4): the
// member's slot answers with another incarnation and empty storage (epoch
// 0, not admitted), or with the member's incarnation and a lower epoch than
// it acknowledged before (its storage was rolled back), or a person
// asserted the incarnation. An unreachable member is never retired here.
func (d *decider) retire() {
	asserted := map[uint64]bool{}
	for _, inc := range d.obs.Asserted {
		if inc != 0 {
			asserted[inc] = true
		}
	}
	for _, m := range d.inPlay() {
		if acked, now, ok := d.rolledBackFrom(m); ok && !d.m.Controls.IgnoreRolledBack {
			d.out.RolledBack = append(d.out.RolledBack, fmt.Sprintf("%s: %s", m.ID, RolledBackMessage(acked, now)))
			if !d.v.Retired(m.Incarnation) {
				// Exactly a lost disk: retired now, its storage recreated
				// empty (recycleRetiredMember), then removed and added back
				// as a new member.
				d.retireIncarnation(m.Incarnation)
				d.event(true, ReasonVolumeRolledBack,
					"%s: %s: it lost the promises and accepts made since, so incarnation %s is retired like a lost disk; "+
						"its storage is recreated empty, then it is removed and added again as a new member",
					m.ID, RolledBackMessage(acked, now), FormatIncarnation(m.Incarnation))
			}
			continue
		}
		if d.v.Retired(m.Incarnation) {
			continue
		}
		if asserted[m.Incarnation] {
			d.retireIncarnation(m.Incarnation)
			d.event(true, EventMemberRetired,
				"Retired %s (incarnation %s) as asserted by a person", m.ID, FormatIncarnation(m.Incarnation))
			continue
		}
		a, ok := d.v.acceptor(m)
		if ok && a.Incarnation != m.Incarnation && a.Epoch == 0 && !a.Admitted {
			d.retireIncarnation(m.Incarnation)
			d.event(true, ReasonDiskLost,
				"%s came back with empty storage (incarnation %s): retired incarnation %s; it will be removed and added again as a new member",
				m.ID, FormatIncarnation(a.Incarnation), FormatIncarnation(m.Incarnation))
		}
	}
}

func (d *decider) retireIncarnation(inc uint64) {
	if d.v.Retired(inc) {
		return
	}
	d.v.retired[inc] = true
	d.in.Retired = append(d.in.Retired, inc)
	d.pace(PaceNow)
}

// bootstrap installs the first configuration, membership.Stable(1, ...), on
// the first Size slots once each reports an empty acceptor's incarnation.
func (d *decider) bootstrap() {
	n := d.obs.Size
	if n > len(d.obs.Slots) {
		d.block(ReasonBlocked, "cannot bootstrap %d members from %d slots", n, len(d.obs.Slots))
		return
	}
	var members []membership.Member
	for _, name := range d.obs.Slots[:n] {
		a := d.obs.Seen[name]
		switch {
		case !a.Running:
			d.wait("waiting for %s to start", name)
			d.out.Action = Action{Kind: Start, Slot: name}
			return
		case !a.Reachable:
			d.wait("waiting for %s to report its incarnation", name)
			return
		case d.v.Retired(a.Incarnation):
			d.recycle(name, a.Incarnation)
			return
		case a.Epoch != 0:
			d.block(ReasonBlocked, "%s already holds a configuration (epoch %d) that the recorded intent does not; "+
				"clear its storage if the data is not needed", name, a.Epoch)
			return
		}
		members = append(members, membership.Member{ID: name, Addr: a.Addr, Incarnation: a.Incarnation})
	}
	cfg := membership.Stable(1, members...)
	if err := cfg.Validate(); err != nil {
		d.block(ReasonBlocked, "cannot form the first configuration: %v", err)
		return
	}
	d.in.Config = &cfg
	d.in.Transition = &Transition{Kind: Bootstrap, Reason: ReasonBootstrap, Step: StepInstallFinal, StartedAt: d.obs.Now}
	d.event(false, EventBootstrap, "Installing the first configuration: %s", cfg)
	d.installStep(nil, cfg, "")
}

// recycleRetiredMember recycles the slot of a member of the current
// configuration whose incarnation is retired but which still answers with
// it (a rolled-back volume, or one retired by assertion that came back): it
// would serve every proposer that names it with the storage it has. The
// slot comes back empty with a new incarnation, which is the disk-loss case
// from there on. It reports whether it did.
//
// The storage is deleted only while the other members still hold every
// chosen value (fewer than an accept quorum of S is retired, in the current
// configuration and in the one a transition started from); otherwise the
// retired storage may hold the only copy of some value, and it is kept for
// a person to recover from (Decision.Kept) while the rest of the decision
// goes on as for a lost disk.
func (d *decider) recycleRetiredMember() bool {
	cfg := d.in.Config
	if cfg == nil {
		return false
	}
	for _, m := range cfg.Members {
		if !d.v.Retired(m.Incarnation) {
			continue
		}
		a, ok := d.v.acceptor(m)
		if !ok || a.Incarnation != m.Incarnation {
			continue
		}
		if why := d.lastCopies(); why != "" {
			d.out.Kept = fmt.Sprintf("%s answers with retired incarnation %s; its volume is kept, not recycled, because %s: "+
				"it may hold the only copy of some values", m.ID, FormatIncarnation(m.Incarnation), why)
			d.pace(PaceWait)
			return false
		}
		d.recycle(m.ID, m.Incarnation)
		return true
	}
	return false
}

// lastCopies explains why retired members may hold the only copy of a
// chosen value: an accept quorum of S of the current configuration (or of
// the one the transition started from) is retired. "" when none is.
func (d *decider) lastCopies() string {
	cfgs := []*membership.Config{d.in.Config}
	if tr := d.in.Transition; tr != nil {
		cfgs = append(cfgs, tr.From)
	}
	for _, cfg := range cfgs {
		if cfg == nil {
			continue
		}
		retired := 0
		for _, m := range cfg.AcceptSet() {
			if d.v.Retired(m.Incarnation) {
				retired++
			}
		}
		if retired >= cfg.AcceptQuorum {
			return fmt.Sprintf("%d of the %d members of the accept set of epoch %d are retired, as many as an accept quorum",
				retired, len(cfg.AcceptSet()), cfg.Epoch)
		}
	}
	return ""
}

// recycle deletes the storage and the process of slot, whose acceptor came
// up with a retired incarnation.
func (d *decider) recycle(slot string, inc uint64) {
	d.event(true, EventRecycle,
		"%s came up with retired incarnation %s: recreating its storage empty", slot, FormatIncarnation(inc))
	d.out.Action = Action{Kind: Recycle, Slot: slot, Incarnation: inc}
	d.pace(PaceNow)
}

// nextChange picks the next membership change of a stable cluster: replace a
// retired member, re-address members whose address changed, then add or
// remove one member towards Size.
func (d *decider) nextChange() {
	cfg := d.in.Config.Clone()
	if !cfg.IsStable() {
		d.block(ReasonBlocked, "configuration epoch %d is in the middle of a change but no transition is recorded; restore the recorded transition", cfg.Epoch)
		return
	}
	for _, m := range cfg.Members {
		if d.v.Retired(m.Incarnation) {
			if !d.othersServing(cfg, m, "replace "+m.ID) {
				return
			}
			d.startChange(cfg, membership.Change{Kind: membership.Remove, Member: m}, ReasonReplace)
			return
		}
	}
	if d.readdress(cfg) {
		return
	}
	n := len(cfg.Members)
	switch want := d.obs.Size; {
	case n < want:
		if !d.othersServing(cfg, membership.Member{}, "add a member") {
			return
		}
		slot, ok := d.freeSlot(cfg)
		if !ok {
			d.block(ReasonBlocked, "cannot add a member: every slot holds one")
			return
		}
		// A free slot that is occupied is a replaced member coming back
		// with a new incarnation; otherwise the cluster grows.
		reason := ReasonScaleUp
		if d.obs.Seen[slot].Exists {
			reason = ReasonReplace
		}
		d.in.Transition = &Transition{Kind: Add, Reason: reason, Member: membership.Member{ID: slot},
			Step: StepStartMember, From: &cfg, StartedAt: d.obs.Now}
		d.event(false, EventChangeStarted, "Adding %s (%s, %d → %d members): waiting for it to start", slot, reason, n, n+1)
		d.pace(PaceNow)
	case n > want:
		x := d.lastMember(cfg)
		if !d.othersServing(cfg, membership.Member{}, "remove "+x.ID) {
			return
		}
		d.startChange(cfg, membership.Change{Kind: membership.Remove, Member: x}, ReasonScaleDown)
	default:
		d.out.Idle = true
	}
}

// othersServing checks the gate before a change: every non-retired member
// other than except serves the configuration's epoch.
func (d *decider) othersServing(cfg membership.Config, except membership.Member, what string) bool {
	if ok, why := d.v.OthersServing(cfg, except); !ok {
		d.block(ReasonMemberNotServing, "cannot %s: %s", what, why)
		return false
	}
	return true
}

// freeSlot is the first slot that holds no member of cfg.
func (d *decider) freeSlot(cfg membership.Config) (string, bool) {
	for _, s := range d.obs.Slots {
		if _, used := cfg.MemberByID(s); !used {
			return s, true
		}
	}
	return "", false
}

// lastMember is the member whose slot comes last in obs.Slots.
func (d *decider) lastMember(cfg membership.Config) membership.Member {
	best := cfg.Members[0]
	for _, m := range cfg.Members[1:] {
		if d.position(m.ID) > d.position(best.ID) {
			best = m
		}
	}
	return best
}

// readdress installs the same membership at epoch+1 with updated addresses
// when a member's slot answers with the member's incarnation at another
// address. It reports whether it started one (or is blocked starting it).
func (d *decider) readdress(cfg membership.Config) bool {
	next := cfg.Clone()
	changed := false
	for i, m := range next.Members {
		a, ok := d.v.acceptor(m)
		if ok && a.Incarnation == m.Incarnation && a.Addr != "" && a.Addr != m.Addr {
			next.Members[i].Addr = a.Addr
			changed = true
		}
	}
	if !changed {
		return false
	}
	next.Epoch++
	for _, m := range cfg.Members {
		if !d.v.Retired(m.Incarnation) && !d.v.Acked(m, cfg.Epoch) {
			d.block(ReasonMemberNotServing, "cannot update member addresses: %s", d.v.WhyNot(m, cfg.Epoch))
			return true
		}
	}
	d.in.Config = &next
	d.in.Transition = &Transition{Kind: Readdress, Reason: ReasonAddressChanged, Step: StepInstallFinal, From: &cfg, StartedAt: d.obs.Now}
	d.event(false, EventChangeStarted, "Member addresses changed: installing %s", next)
	d.installStep(&cfg, next, "")
	return true
}

// startChange records an add or remove whose member is known and installs
// its joint configuration.
func (d *decider) startChange(cfg membership.Config, ch membership.Change, reason Reason) {
	joint, _, err := membership.Steps(cfg, ch)
	if err != nil {
		d.block(ReasonBlocked, "cannot %s %s: %v", ch.Kind, ch.Member.ID, err)
		return
	}
	m := ch.Member
	m.Prepare, m.Accept = false, false
	kind := Add
	if ch.Kind == membership.Remove {
		kind = Remove
	}
	d.in.Transition = &Transition{Kind: kind, Reason: reason, Member: m, Step: StepInstallJoint, From: &cfg, StartedAt: d.obs.Now}
	d.in.Config = &joint
	d.event(false, EventChangeStarted, "%s %s (%s): installing joint configuration %s", titleKind(ch.Kind), ch.Member.ID, reason, joint)
	first := ""
	if ch.Kind == membership.Add {
		first = ch.Member.ID
	}
	d.installStep(&cfg, joint, first)
}

func titleKind(k membership.ChangeKind) string {
	if k == membership.Add {
		return "Adding"
	}
	return "Removing"
}

// steps recomputes the joint and final configurations of a recorded add or
// remove with the shared planner.
func steps(tr *Transition) (from, joint, final membership.Config, err error) {
	if tr.From == nil {
		return from, joint, final, fmt.Errorf("transition %s has no starting configuration", tr.Kind)
	}
	ch := membership.Change{Kind: membership.Add, Member: tr.Member}
	if tr.Kind == Remove {
		ch.Kind = membership.Remove
	}
	from = tr.From.Clone()
	joint, final, err = membership.Steps(from, ch)
	return from, joint, final, err
}

func (d *decider) continueTransition() {
	tr := d.in.Transition
	if d.in.Config == nil {
		d.block(ReasonBlocked, "the recorded %s has no configuration", tr.Kind)
		return
	}
	switch tr.Kind {
	case Bootstrap:
		d.installStep(nil, d.in.Config.Clone(), "")
		return
	case Readdress:
		var prev *membership.Config
		if tr.From != nil {
			from := tr.From.Clone()
			prev = &from
		}
		d.installStep(prev, d.in.Config.Clone(), "")
		return
	}
	switch tr.Step {
	case StepStartMember:
		d.startMember()
		return
	case StepStopMember, StepDeleteStorage:
		d.removeTail()
		return
	}
	from, joint, final, err := steps(tr)
	if err != nil {
		d.block(ReasonBlocked, "cannot replan the recorded %s of %s: %v", tr.Kind, tr.Member.ID, err)
		return
	}
	first := ""
	if tr.Kind == Add {
		first = tr.Member.ID
	}
	switch tr.Step {
	case StepInstallJoint:
		d.installStep(&from, joint, first)
	case StepRescan:
		d.rescan(from, joint)
	case StepInstallFinal:
		d.installStep(&joint, final, "")
	default:
		d.block(ReasonBlocked, "unknown transition step %q", tr.Step)
	}
}

// startMember waits for the new member's slot to report an empty
// acceptor's incarnation, then plans the change and installs the joint
// configuration (on the new member first).
func (d *decider) startMember() {
	tr := d.in.Transition
	id := tr.Member.ID
	if tr.From == nil {
		d.block(ReasonBlocked, "the recorded add of %s has no starting configuration", id)
		return
	}
	from := tr.From.Clone()
	if tr.Reason == ReasonScaleUp && d.obs.Size <= len(from.Members) {
		d.in.Transition = nil
		d.event(false, EventCancelled, "Cancelled adding %s: the desired size is %d again", id, d.obs.Size)
		d.pace(PaceNow)
		return
	}
	a := d.obs.Seen[id]
	switch {
	case d.position(id) < 0:
		d.block(ReasonBlocked, "member ID %q is not a slot of this cluster", id)
		return
	case !a.Running:
		d.wait("waiting for %s to start", id)
		d.out.Action = Action{Kind: Start, Slot: id}
		return
	case !a.Reachable:
		d.wait("waiting for %s to report its incarnation", id)
		return
	case d.v.Retired(a.Incarnation):
		d.recycle(id, a.Incarnation)
		return
	case a.Epoch != 0 || a.Admitted:
		d.block(ReasonBlocked, "new member %s holds a configuration (epoch %d) already; clear its storage so it starts empty", id, a.Epoch)
		return
	}
	m := membership.Member{ID: id, Addr: a.Addr, Incarnation: a.Incarnation}
	joint, _, err := membership.Steps(from, membership.Change{Kind: membership.Add, Member: m})
	if err != nil {
		d.block(ReasonBlocked, "cannot add %s: %v", id, err)
		return
	}
	tr.Member = m
	tr.Step = StepInstallJoint
	d.in.Config = &joint
	d.event(false, EventChangeStarted, "Adding %s (incarnation %s): installing joint configuration %s", id, FormatIncarnation(m.Incarnation), joint)
	d.installStep(&from, joint, id)
}

// fence counts the members of targets that acknowledged epoch e and
// reports whether e is fenced: every one of them has (docs/design.md §3), or with
// Controls.MajorityFence a majority.
func (d *decider) fence(targets []membership.Member, e uint64) (acked []bool, fenced bool) {
	n := 0
	acked = make([]bool, len(targets))
	for i, m := range targets {
		if d.v.Acked(m, e) {
			acked[i] = true
			n++
		}
	}
	need := len(targets)
	if d.m.Controls.MajorityFence {
		need = membership.Majority(need)
	}
	return acked, n >= need
}

// installStep installs next and waits for its fence: every non-retired
// member of prev and next has acknowledged next's epoch (docs/design.md §3). first,
// when set, is the member that must have it before anyone else (the member
// being added): until it has, it is the only target. When the fence holds
// the transition moves on.
func (d *decider) installStep(prev *membership.Config, next membership.Config, first string) {
	targets := d.fenceTargets(prev, next)
	acked, fenced := d.fence(targets, next.Epoch)
	if fenced {
		d.fenced(next)
		return
	}
	var pending, unreachable []membership.Member
	for i, m := range targets {
		if acked[i] {
			continue
		}
		pending = append(pending, m)
		if a, ok := d.v.acceptor(m); !ok || a.Incarnation != m.Incarnation {
			unreachable = append(unreachable, m)
		}
	}
	var why []string
	for _, m := range unreachable {
		why = append(why, d.v.WhyNot(m, next.Epoch))
	}
	if len(why) > 0 {
		d.block(ReasonMemberUnreachable, "epoch %d is not fenced: %s", next.Epoch, strings.Join(why, "; "))
	}
	var install []Target
	for _, m := range pending {
		reachable := !slices.ContainsFunc(unreachable, func(u membership.Member) bool { return u.Incarnation == m.Incarnation })
		if m.ID == first {
			if !reachable {
				return // the new member must have the configuration first
			}
			// The new member gets the configuration before anyone else.
			install = []Target{d.target(m)}
			break
		}
		if reachable {
			install = append(install, d.target(m))
		}
	}
	if len(install) == 0 {
		return
	}
	d.out.Action = Action{Kind: Install, Config: next, Targets: install}
	d.pace(PaceNow)
}

// fenceTargets returns the non-retired members of prev and next, by
// incarnation, sorted by ID.
func (d *decider) fenceTargets(prev *membership.Config, next membership.Config) []membership.Member {
	seen := map[uint64]bool{}
	var out []membership.Member
	add := func(ms []membership.Member) {
		for _, m := range ms {
			if !seen[m.Incarnation] && !d.v.Retired(m.Incarnation) {
				seen[m.Incarnation] = true
				out = append(out, m)
			}
		}
	}
	if prev != nil {
		add(prev.Members)
	}
	add(next.Members)
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// fenced moves the transition past the installation of next.
func (d *decider) fenced(next membership.Config) {
	tr := d.in.Transition
	d.out.Fenced = next.Epoch
	d.pace(PaceNow)
	switch {
	case tr.Kind == Bootstrap:
		d.in.Transition = nil
		d.event(false, EventBootstrapped, "Epoch %d is installed on every member", next.Epoch)
	case tr.Kind == Readdress:
		d.in.Transition = nil
		d.event(false, EventReaddressed, "Epoch %d with the new addresses is fenced", next.Epoch)
	case tr.Step == StepInstallJoint && d.m.Controls.SkipRescan:
		// Negative control: no rescan.
		_, _, final, err := steps(tr)
		if err != nil {
			d.block(ReasonBlocked, "cannot plan the final configuration: %v", err)
			return
		}
		tr.Step = StepInstallFinal
		d.in.Config = &final
		d.event(false, EventJointInstalled, "Joint epoch %d is fenced; skipping the rescan (negative control)", next.Epoch)
	case tr.Step == StepInstallJoint:
		tr.Step = StepRescan
		tr.Cursor = nil
		tr.Rescanned = 0
		d.event(false, EventJointInstalled, "Joint epoch %d is fenced; rescanning every key", next.Epoch)
	case tr.Step == StepInstallFinal:
		d.finalFenced(next)
	}
}

func (d *decider) finalFenced(final membership.Config) {
	tr := d.in.Transition
	id := tr.Member.ID
	inc := FormatIncarnation(tr.Member.Incarnation)
	d.event(false, EventFinalInstalled, "Final epoch %d is fenced: %s", final.Epoch, final)
	switch {
	case tr.Kind == Add:
		d.in.Transition = nil
		d.event(false, EventMemberAdded, "Added %s (incarnation %s)", id, inc)
	case tr.Reason == ReasonScaleDown:
		d.retireIncarnation(tr.Member.Incarnation)
		tr.Step = StepStopMember
		d.event(false, EventMemberRetired, "Retired %s (incarnation %s); stopping it", id, inc)
	default:
		// Replace: the incarnation was retired when its storage was found
		// gone. The slot stays and joins again at once as a new member, so
		// members keep their slots whatever the desired size says
		// meanwhile.
		d.event(false, EventMemberRemoved, "Removed %s (incarnation %s); adding it back as a new member", id, inc)
		f := final.Clone()
		d.in.Transition = &Transition{Kind: Add, Reason: ReasonReplace, Member: membership.Member{ID: id},
			Step: StepStartMember, From: &f, StartedAt: d.obs.Now}
	}
}

// rescan asks for the identity change on every key under joint, from the
// recorded cursor. joint is fenced; every non-retired member of from and
// joint must still have acknowledged it, so that no key is missed.
func (d *decider) rescan(from, joint membership.Config) {
	tr := d.in.Transition
	targets := d.fenceTargets(&from, joint)
	acked, fenced := d.fence(targets, joint.Epoch)
	if !fenced {
		for i, m := range targets {
			if !acked[i] {
				d.block(ReasonMemberUnreachable, "rescan under epoch %d is waiting: %s", joint.Epoch, d.v.WhyNot(m, joint.Epoch))
				return
			}
		}
	}
	// Keys are listed from every member of both configurations (the one
	// leaving too, while it is there): a key lives on an accept quorum of
	// from, which may include the leaving member.
	var sources []Target
	for i, m := range targets {
		if acked[i] {
			sources = append(sources, d.target(m))
		}
	}
	var endpoints []string
	for _, m := range joint.Members {
		if !d.v.Retired(m.Incarnation) {
			endpoints = append(endpoints, d.target(m).Addr)
		}
	}
	a := Action{Kind: Rescan, Config: joint, Targets: sources, Cursor: slices.Clone(tr.Cursor), Endpoints: endpoints}
	switch c := d.m.Controls; {
	case c.RescanSkip:
		a.SkipAgreeing = joint.AcceptQuorum
	case c.SkipBelowAcceptQuorum:
		a.SkipAgreeing = max(1, joint.AcceptQuorum-1)
	}
	d.out.Action = a
	d.pace(PaceNow)
}

// removeTail finishes a scale down once the final configuration is fenced:
// stop the removed member's process, wait until it is gone, then delete its
// storage.
func (d *decider) removeTail() {
	tr := d.in.Transition
	id := tr.Member.ID
	a := d.obs.Seen[id]
	switch tr.Step {
	case StepStopMember:
		if a.Exists {
			d.wait("waiting for %s to be gone", id)
			d.out.Action = Action{Kind: Stop, Slot: id}
			return
		}
		tr.Step = StepDeleteStorage
		d.pace(PaceNow)
		if a.HasStorage {
			d.event(false, EventDeleteStorage, "%s is gone; deleting its storage", id)
			d.out.Action = Action{Kind: DeleteStorage, Slot: id}
		}
	case StepDeleteStorage:
		if a.Exists {
			// The slot is in use again (the cluster grew): its storage
			// is its own now. The removed member is retired either way.
			d.in.Transition = nil
			d.event(false, EventMemberRemoved, "Removed %s", id)
			d.pace(PaceNow)
			return
		}
		if a.HasStorage {
			d.out.Action = Action{Kind: DeleteStorage, Slot: id}
			d.pace(PaceNow)
			return
		}
		d.in.Transition = nil
		d.event(false, EventMemberRemoved, "Removed %s: membership, process and storage", id)
		d.pace(PaceNow)
	}
}
