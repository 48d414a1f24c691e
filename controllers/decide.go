package controllers

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kshaka-io/kshaka/membership"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// PodInfo is what Decide needs to know about one acceptor pod.
type PodInfo struct {
	// Name of the pod.
	Name string
	// Address the acceptor is dialled at; "" while unknown (PodIP mode
	// before the pod has an IP).
	Address string
	// Ready: the pod's Ready condition is true.
	Ready bool
	// Terminating: the pod has a deletion timestamp.
	Terminating bool
	// Revision is the StatefulSet revision the pod was created from (its
	// controller-revision-hash label); "" when unknown.
	Revision string
}

// AcceptorInfo is one acceptor's answer to Admin.Status.
type AcceptorInfo struct {
	// Err is why the acceptor could not be reached; "" when it answered.
	Err string
	// Incarnation, Epoch, Admitted, Healthy and Reason are its answer.
	Incarnation uint64
	Epoch       uint64
	Admitted    bool
	Healthy     bool
	Reason      string
}

// Reachable reports whether the acceptor answered.
func (a AcceptorInfo) Reachable() bool { return a.Err == "" && a.Incarnation != 0 }

// Observed is everything Decide looks at, gathered once per reconcile.
type Observed struct {
	// Cluster is the KshakaCluster with its recorded status.
	Cluster *kshakav1alpha1.KshakaCluster
	// StatefulSet is the acceptors' StatefulSet; nil when absent.
	StatefulSet *appsv1.StatefulSet
	// Pods are the StatefulSet's pods, by ordinal.
	Pods map[int32]PodInfo
	// PVCs are the ordinals whose volume claim exists and is not being
	// deleted.
	PVCs map[int32]bool
	// Acceptors are the Admin.Status answers of the pods that have an
	// address, by ordinal.
	Acceptors map[int32]AcceptorInfo
	// Now is the time of the observation (condition timestamps).
	Now time.Time
}

// ActionKind is the kind of the one action a Plan carries.
type ActionKind string

// Actions.
const (
	// ActionNone: nothing to do but record status.
	ActionNone ActionKind = ""
	// ActionInstall: SetConfig(Config) on each of Targets, in order,
	// stopping at the first failure. Before each, the target's reported
	// incarnation is checked against the expected one.
	ActionInstall ActionKind = "Install"
	// ActionRescan: list the keys after Cursor from every one of Targets,
	// touch one batch of them under Config, and report the new cursor
	// (AfterRescan).
	ActionRescan ActionKind = "Rescan"
	// ActionRecycle: delete the volume claim and then the pod of Ordinal; the
	// StatefulSet recreates both, empty. Used when a new member's pod comes
	// up with a retired incarnation.
	ActionRecycle ActionKind = "Recycle"
	// ActionDeletePVC: delete the volume claim of Ordinal.
	ActionDeletePVC ActionKind = "DeletePVC"
	// ActionRollPod: delete the pod of Ordinal, built from an outdated pod
	// template, so the StatefulSet recreates it from the current one with
	// the same volume (a rolling update, one pod at a time).
	ActionRollPod ActionKind = "RollPod"
)

// Target is an acceptor an action talks to.
type Target struct {
	// Ordinal and PodName identify the pod.
	Ordinal int32
	PodName string
	// Addr is where the operator dials it.
	Addr string
	// Incarnation is the expected incarnation.
	Incarnation uint64
}

// Action is one thing for the reconciler to do after recording the plan's
// status.
type Action struct {
	Kind    ActionKind
	Config  membership.Config
	Targets []Target
	Cursor  []byte
	// Endpoints are where the rescan's proposer bootstraps (GetConfig).
	Endpoints []string
	Ordinal   int32
	PodName   string
	PVCName   string
}

// Event is a Kubernetes Event to emit once the plan's status is recorded.
type Event struct {
	Type    string
	Reason  string
	Message string
}

// Pace tells the reconciler when to look again.
type Pace int

const (
	// PaceIdle: nothing is in progress; refresh the status now and then.
	PaceIdle Pace = iota
	// PaceWait: waiting for something outside the operator (a pod, an
	// acceptor, a fence); poll.
	PaceWait
	// PaceNow: a step was recorded or an action taken; look again promptly.
	PaceNow
)

// Plan is Decide's answer: the status to record (the intent, written before
// the action), the StatefulSet size, at most one action, the events of the
// steps taken, and when to look again.
type Plan struct {
	Status              kshakav1alpha1.KshakaClusterStatus
	StatefulSetReplicas int32
	Action              Action
	Events              []Event
	Pace                Pace
}

// Condition reasons.
const (
	ReasonQuorumAvailable   = "QuorumAvailable"
	ReasonQuorumLost        = "QuorumLost"
	ReasonNoConfiguration   = "NoConfiguration"
	ReasonStable            = "Stable"
	ReasonPaused            = "Paused"
	ReasonAsExpected        = "AsExpected"
	ReasonMemberNotServing  = "MemberNotServing"
	ReasonMemberUnreachable = "MemberUnreachable"
	ReasonDiskLost          = "DiskLost"
	// ReasonVolumeRolledBack: a member's acceptor reports its incarnation
	// with a lower epoch than it acknowledged before (DESIGN §4
	// "Rolled-back disks"). Also the reason of the event.
	ReasonVolumeRolledBack  = "VolumeRolledBack"
	ReasonBlocked           = "Blocked"
	ReasonWaitingForMembers = "WaitingForMembers"
	ReasonScaling           = "Scaling"
)

// Event reasons, one per membership step.
const (
	EventBootstrap      = "Bootstrap"
	EventBootstrapped   = "Bootstrapped"
	EventChangeStarted  = "MembershipChangeStarted"
	EventJointInstalled = "JointConfigurationFenced"
	EventRescanned      = "RescanComplete"
	EventFinalInstalled = "FinalConfigurationFenced"
	EventMemberAdded    = "MemberAdded"
	EventMemberRemoved  = "MemberRemoved"
	EventMemberRetired  = "MemberRetired"
	EventReaddressed    = "MembersReaddressed"
	EventRecycle        = "RecycleMember"
	EventRollPod        = "RollingUpdate"
	EventDeleteVolume   = "DeleteVolume"
	EventCancelled      = "MembershipChangeCancelled"
	EventBlocked        = "MembershipChangeBlocked"
)

// Decide computes the next step of c's reconciliation from one observation.
// It is pure: same input, same plan. The reconciler records Plan.Status
// before carrying out Plan.Action, so every action is preceded by its intent
// in status; each step re-checks live state, so repeating one is harmless.
func Decide(o Observed) Plan {
	d := newDecider(o)
	d.observeMembers()
	d.retire()
	switch {
	case o.Cluster.Spec.Paused:
		d.pace(PaceIdle)
	case d.recycleRetiredMember():
	case d.st.Transition != nil:
		d.continueTransition()
	case d.st.Configuration == nil:
		d.bootstrap()
	default:
		d.nextChange()
	}
	d.p.StatefulSetReplicas = d.statefulSetReplicas()
	d.summarise()
	return d.p
}

// decider carries one Decide call.
type decider struct {
	o       Observed
	c       *kshakav1alpha1.KshakaCluster
	p       Plan
	st      *kshakav1alpha1.KshakaClusterStatus
	retired map[uint64]bool
	// blocked, when set, explains why the next step cannot be taken.
	blocked, blockedReason string
	// waiting, when set, says what the operator waits for.
	waiting string
	// acks is the record of the highest acknowledged epoch of each
	// ordinal's row after this observation (status.members).
	acks map[int32]kshakav1alpha1.AcknowledgedEpochRecord
	// rolledBack explains each member whose volume was found rolled back.
	rolledBack []string
	// kept, when set, says why a retired member's volume is not recycled.
	kept string
}

func newDecider(o Observed) *decider {
	d := &decider{o: o, c: o.Cluster, retired: map[uint64]bool{}, acks: map[int32]kshakav1alpha1.AcknowledgedEpochRecord{}}
	d.p.Status = *o.Cluster.Status.DeepCopy()
	d.st = &d.p.Status
	for _, s := range d.st.RetiredIncarnations {
		if v, err := ParseIncarnation(s); err == nil {
			d.retired[v] = true
		}
	}
	return d
}

func (d *decider) pace(p Pace) { d.p.Pace = max(d.p.Pace, p) }

func (d *decider) event(typ, reason, format string, args ...any) {
	d.p.Events = append(d.p.Events, Event{Type: typ, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

func (d *decider) block(reason, format string, args ...any) {
	d.blocked, d.blockedReason = fmt.Sprintf(format, args...), reason
	d.pace(PaceWait)
}

func (d *decider) wait(format string, args ...any) {
	d.waiting = fmt.Sprintf(format, args...)
	d.pace(PaceWait)
}

// config returns the recorded current configuration.
func (d *decider) config() (membership.Config, bool) { return ConfigFromStatus(d.st.Configuration) }

// ordinal of a member ID; -1 when the ID is not one of the cluster's pods.
func (d *decider) ordinal(id string) int32 {
	if n, ok := Ordinal(d.c, id); ok {
		return n
	}
	return -1
}

// acceptor returns what the acceptor at m's pod answered, when its pod
// exists, is not terminating and answered.
func (d *decider) acceptor(m membership.Member) (AcceptorInfo, bool) {
	ord := d.ordinal(m.ID)
	pod, ok := d.o.Pods[ord]
	if !ok || pod.Terminating {
		return AcceptorInfo{}, false
	}
	a, ok := d.o.Acceptors[ord]
	if !ok || !a.Reachable() {
		return a, false
	}
	return a, true
}

// acked reports whether member m's acceptor (same incarnation) has
// acknowledged epoch e or later.
func (d *decider) acked(m membership.Member, e uint64) bool {
	a, ok := d.acceptor(m)
	return ok && a.Incarnation == m.Incarnation && a.Epoch >= e
}

// serving reports whether m's acceptor answers as an admitted, healthy
// member with m's incarnation, and that incarnation is not retired (a
// rolled-back volume keeps answering as the member it was).
func (d *decider) serving(m membership.Member) bool {
	a, ok := d.acceptor(m)
	return ok && a.Incarnation == m.Incarnation && a.Admitted && a.Healthy && !d.retired[m.Incarnation]
}

// rolledBackFrom reports whether m's acceptor answers with m's incarnation
// and an epoch lower than the one recorded as acknowledged by that
// incarnation: its volume was restored from an older copy and lost the
// promises and accepts made since (DESIGN §4 "Rolled-back disks"). The
// acceptor's own epoch only grows (package acceptor), so this is the only
// way it can go down.
func (d *decider) rolledBackFrom(m membership.Member) (acked, now uint64, ok bool) {
	a, reached := d.acceptor(m)
	if !reached || a.Incarnation != m.Incarnation {
		return 0, 0, false
	}
	rec, have := d.acks[d.ordinal(m.ID)]
	if !have || rec.Incarnation != FormatIncarnation(m.Incarnation) || uint64(rec.Epoch) <= a.Epoch {
		return 0, 0, false
	}
	return uint64(rec.Epoch), a.Epoch, true
}

func rolledBackMessage(acked, now uint64) string {
	return fmt.Sprintf("volume rolled back: acknowledged epoch %d, now reports %d", acked, now)
}

// whyNot explains why m is not serving (or not acknowledging epoch e when
// e > 0).
func (d *decider) whyNot(m membership.Member, e uint64) string {
	ord := d.ordinal(m.ID)
	pod, ok := d.o.Pods[ord]
	switch {
	case d.retired[m.Incarnation]:
		return fmt.Sprintf("%s is retired", m.ID)
	case !ok:
		return fmt.Sprintf("pod %s does not exist", m.ID)
	case pod.Terminating:
		return fmt.Sprintf("pod %s is terminating", m.ID)
	}
	a, ok := d.o.Acceptors[ord]
	switch {
	case !ok || pod.Address == "":
		return fmt.Sprintf("pod %s has no address yet", m.ID)
	case a.Err != "":
		return fmt.Sprintf("%s is unreachable: %s", m.ID, a.Err)
	case a.Incarnation != m.Incarnation:
		return fmt.Sprintf("%s reports incarnation %s, not the member's %s", m.ID, FormatIncarnation(a.Incarnation), FormatIncarnation(m.Incarnation))
	case !a.Healthy:
		return fmt.Sprintf("%s is unhealthy: %s", m.ID, a.Reason)
	case e > 0 && a.Epoch < e:
		return fmt.Sprintf("%s has acknowledged epoch %d, not %d", m.ID, a.Epoch, e)
	case !a.Admitted:
		return fmt.Sprintf("%s is not admitted: %s", m.ID, a.Reason)
	}
	return ""
}

func (d *decider) target(m membership.Member) Target {
	ord := d.ordinal(m.ID)
	return Target{Ordinal: ord, PodName: m.ID, Addr: d.o.Pods[ord].Address, Incarnation: m.Incarnation}
}

// observeMembers fills status.members from the pods and acceptors, carrying
// each row's record of the highest acknowledged epoch over (nextAck).
func (d *decider) observeMembers() {
	prev := map[int32]*kshakav1alpha1.AcknowledgedEpochRecord{}
	for _, row := range d.st.Members {
		if row.HighestAcknowledged != nil {
			prev[row.Ordinal] = row.HighestAcknowledged.DeepCopy()
		}
	}
	keep := map[string]bool{}
	for _, m := range d.inPlay() {
		if !d.retired[m.Incarnation] {
			keep[FormatIncarnation(m.Incarnation)] = true
		}
	}
	ords := map[int32]bool{}
	for ord := range d.o.Pods {
		ords[ord] = true
	}
	if cfg, ok := d.config(); ok {
		for _, m := range cfg.Members {
			if ord := d.ordinal(m.ID); ord >= 0 {
				ords[ord] = true
			}
		}
	}
	sorted := make([]int32, 0, len(ords))
	for ord := range ords {
		sorted = append(sorted, ord)
	}
	slices.Sort(sorted)
	var ms []kshakav1alpha1.MemberStatus
	for _, ord := range sorted {
		pod, havePod := d.o.Pods[ord]
		row := kshakav1alpha1.MemberStatus{Ordinal: ord, PodName: PodName(d.c, ord)}
		a, dialled := d.o.Acceptors[ord]
		reached := havePod && !pod.Terminating && dialled && a.Err == ""
		row.HighestAcknowledged = nextAck(prev[ord], a, reached, keep)
		if rec := row.HighestAcknowledged; rec != nil {
			d.acks[ord] = *rec
		}
		if !havePod {
			row.Message = "pod does not exist"
			ms = append(ms, row)
			continue
		}
		row.Address = pod.Address
		row.Ready = pod.Ready
		switch {
		case pod.Terminating:
			row.Message = "pod is terminating"
		case !dialled:
			row.Message = "pod has no address yet"
		case a.Err != "":
			row.Message = "unreachable: " + a.Err
		default:
			row.Reachable = true
			row.Incarnation = FormatIncarnation(a.Incarnation)
			row.AcknowledgedEpoch = int64(a.Epoch)
			row.Admitted = a.Admitted
			rec := row.HighestAcknowledged
			switch {
			case rec != nil && rec.Incarnation == row.Incarnation && rec.Epoch > row.AcknowledgedEpoch:
				row.Message = rolledBackMessage(uint64(rec.Epoch), a.Epoch)
			case d.retired[a.Incarnation]:
				row.Message = "incarnation is retired"
			case !a.Healthy:
				row.Message = "unhealthy: " + a.Reason
			case !a.Admitted:
				row.Message = "not admitted"
				if a.Reason != "" {
					row.Message += ": " + a.Reason
				}
			}
		}
		ms = append(ms, row)
	}
	d.st.Members = ms
}

// nextAck is a row's record of the highest acknowledged epoch after one
// observation of its acceptor a (reached: it answered). The record is kept
// while the acceptor cannot be reached and never lowered for the same
// incarnation. An answer with another incarnation starts a new record,
// except while the recorded incarnation is still a non-retired member in
// play (keep): its record is what detects that member's volume coming back
// rolled back.
func nextAck(old *kshakav1alpha1.AcknowledgedEpochRecord, a AcceptorInfo, reached bool, keep map[string]bool) *kshakav1alpha1.AcknowledgedEpochRecord {
	if !reached || a.Incarnation == 0 {
		return old
	}
	inc := FormatIncarnation(a.Incarnation)
	switch {
	case old != nil && old.Incarnation == inc:
		return &kshakav1alpha1.AcknowledgedEpochRecord{Incarnation: inc, Epoch: max(old.Epoch, int64(a.Epoch))}
	case old != nil && keep[old.Incarnation]:
		return old
	}
	return &kshakav1alpha1.AcknowledgedEpochRecord{Incarnation: inc, Epoch: int64(a.Epoch)}
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
	if cfg, ok := d.config(); ok {
		add(cfg.Members...)
	}
	if tr := d.st.Transition; tr != nil {
		if from, ok := ConfigFromStatus(tr.From); ok {
			add(from.Members...)
		}
		if tr.Member != nil {
			add(memberFromStatus(*tr.Member))
		}
	}
	return out
}

// retire retires members whose storage is known to be gone (DESIGN §4): the
// member's pod answers with another incarnation and empty storage (epoch 0,
// not admitted), or with the member's incarnation and a lower epoch than it
// acknowledged before (its volume was rolled back), or a person listed the
// incarnation in the retire annotation. An unreachable member is never
// retired here.
func (d *decider) retire() {
	asserted := map[uint64]bool{}
	for _, s := range strings.Split(d.c.Annotations[AnnotationRetire], ",") {
		if v, err := ParseIncarnation(strings.TrimSpace(s)); err == nil && v != 0 {
			asserted[v] = true
		}
	}
	for _, m := range d.inPlay() {
		if acked, now, ok := d.rolledBackFrom(m); ok {
			d.rolledBack = append(d.rolledBack, fmt.Sprintf("%s: %s", m.ID, rolledBackMessage(acked, now)))
			if !d.retired[m.Incarnation] {
				// Exactly a lost disk: retired now, its volume recreated
				// empty (recycleRetiredMember), then removed and added back
				// as a new member.
				d.retireIncarnation(m.Incarnation)
				d.event(corev1.EventTypeWarning, ReasonVolumeRolledBack,
					"%s: %s: it lost the promises and accepts made since, so incarnation %s is retired like a lost disk; "+
						"its volume claim and pod are recreated empty, then it is removed and added again as a new member",
					m.ID, rolledBackMessage(acked, now), FormatIncarnation(m.Incarnation))
			}
			continue
		}
		if d.retired[m.Incarnation] {
			continue
		}
		if asserted[m.Incarnation] {
			d.retireIncarnation(m.Incarnation)
			d.event(corev1.EventTypeWarning, EventMemberRetired,
				"Retired %s (incarnation %s) as asserted by the %s annotation", m.ID, FormatIncarnation(m.Incarnation), AnnotationRetire)
			continue
		}
		a, ok := d.acceptor(m)
		if ok && a.Incarnation != m.Incarnation && a.Epoch == 0 && !a.Admitted {
			d.retireIncarnation(m.Incarnation)
			d.event(corev1.EventTypeWarning, ReasonDiskLost,
				"%s came back with empty storage (incarnation %s): retired incarnation %s; it will be removed and the pod added again as a new member",
				m.ID, FormatIncarnation(a.Incarnation), FormatIncarnation(m.Incarnation))
		}
	}
}

func (d *decider) retireIncarnation(inc uint64) {
	if d.retired[inc] {
		return
	}
	d.retired[inc] = true
	d.st.RetiredIncarnations = append(d.st.RetiredIncarnations, FormatIncarnation(inc))
	d.pace(PaceNow)
}

// bootstrap installs the first configuration, membership.Stable(1, ...), once
// every initial acceptor reports its incarnation and empty storage.
func (d *decider) bootstrap() {
	n := d.c.Spec.Replicas
	var members []membership.Member
	for ord := range n {
		name := PodName(d.c, ord)
		pod, ok := d.o.Pods[ord]
		a := d.o.Acceptors[ord]
		switch {
		case !ok || pod.Terminating:
			d.wait("waiting for pod %s", name)
			return
		case pod.Address == "" || !a.Reachable():
			d.wait("waiting for %s to report its incarnation", name)
			return
		case d.retired[a.Incarnation]:
			d.recycle(ord, a.Incarnation)
			return
		case a.Epoch != 0:
			d.block(ReasonBlocked, "%s already holds a configuration (epoch %d) that this cluster's status does not record; "+
				"delete its PersistentVolumeClaim if the data is not needed", name, a.Epoch)
			return
		}
		members = append(members, membership.Member{ID: name, Addr: pod.Address, Incarnation: a.Incarnation})
	}
	cfg := membership.Stable(1, members...)
	if err := cfg.Validate(); err != nil {
		d.block(ReasonBlocked, "cannot form the first configuration: %v", err)
		return
	}
	d.st.Configuration = ConfigToStatus(cfg)
	d.st.Transition = &kshakav1alpha1.Transition{
		Kind:      kshakav1alpha1.TransitionBootstrap,
		Reason:    kshakav1alpha1.ReasonBootstrap,
		Step:      kshakav1alpha1.StepInstallFinal,
		StartedAt: &metav1.Time{Time: d.o.Now},
	}
	d.event(corev1.EventTypeNormal, EventBootstrap, "Installing the first configuration: %s", cfg)
	d.installStep(nil, cfg, "")
}

// recycleRetiredMember recycles the pod of a member of the current
// configuration whose incarnation is retired but which still answers with
// it (a rolled-back volume, or one retired by annotation that came back):
// it would serve every proposer that names it with the storage it has. The
// StatefulSet brings the pod back empty with a new incarnation, which is the
// disk-loss case from there on. It reports whether it did.
//
// The volume is deleted only while the other members still hold every
// chosen value (fewer than an accept quorum of S is retired, in the current
// configuration and in the one a transition started from); otherwise the
// retired volume may hold the only copy of some value, and it is kept for a
// person to recover from (said in the Degraded condition) while the rest of
// the decision goes on as for a lost disk.
func (d *decider) recycleRetiredMember() bool {
	cfg, ok := d.config()
	if !ok {
		return false
	}
	for _, m := range cfg.Members {
		if !d.retired[m.Incarnation] {
			continue
		}
		a, ok := d.acceptor(m)
		if !ok || a.Incarnation != m.Incarnation {
			continue
		}
		if why := d.lastCopies(); why != "" {
			d.kept = fmt.Sprintf("%s answers with retired incarnation %s; its volume is kept, not recycled, because %s: "+
				"it may hold the only copy of some values", m.ID, FormatIncarnation(m.Incarnation), why)
			d.pace(PaceWait)
			return false
		}
		d.recycle(d.ordinal(m.ID), m.Incarnation)
		return true
	}
	return false
}

// lastCopies explains why retired members may hold the only copy of a
// chosen value: an accept quorum of S of the current configuration (or of
// the one the transition started from) is retired. "" when none is.
func (d *decider) lastCopies() string {
	cfgs := []*kshakav1alpha1.Configuration{d.st.Configuration}
	if tr := d.st.Transition; tr != nil {
		cfgs = append(cfgs, tr.From)
	}
	for _, st := range cfgs {
		cfg, ok := ConfigFromStatus(st)
		if !ok {
			continue
		}
		retired := 0
		for _, m := range cfg.AcceptSet() {
			if d.retired[m.Incarnation] {
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

// recycle deletes the volume and the pod of ordinal ord, whose acceptor came
// up with a retired incarnation.
func (d *decider) recycle(ord int32, inc uint64) {
	d.event(corev1.EventTypeWarning, EventRecycle,
		"%s came up with retired incarnation %s: deleting its volume claim and pod so it starts empty", PodName(d.c, ord), FormatIncarnation(inc))
	d.p.Action = Action{Kind: ActionRecycle, Ordinal: ord, PodName: PodName(d.c, ord), PVCName: PVCName(d.c, ord)}
	d.pace(PaceNow)
}

// nextChange picks the next membership change of a stable cluster: replace a
// retired member, re-address members whose address changed, then scale by
// one member towards spec.replicas.
func (d *decider) nextChange() {
	cfg, _ := d.config()
	if !cfg.IsStable() {
		d.block(ReasonBlocked, "configuration epoch %d is in the middle of a change but no transition is recorded; restore status.transition", cfg.Epoch)
		return
	}
	for _, m := range cfg.Members {
		if d.retired[m.Incarnation] {
			if !d.othersServing(cfg, m, "replace "+m.ID) {
				return
			}
			d.startChange(cfg, membership.Change{Kind: membership.Remove, Member: m}, kshakav1alpha1.ReasonReplace)
			return
		}
	}
	if d.readdress(cfg) {
		return
	}
	n := int32(len(cfg.Members))
	switch want := d.c.Spec.Replicas; {
	case n < want:
		if !d.othersServing(cfg, membership.Member{}, "add a member") {
			return
		}
		ord := d.freeOrdinal(cfg)
		// A free ordinal whose pod runs is a replaced member coming back
		// with a new incarnation; otherwise the cluster grows.
		reason := kshakav1alpha1.ReasonScaleUp
		if _, ok := d.o.Pods[ord]; ok {
			reason = kshakav1alpha1.ReasonReplace
		}
		d.st.Transition = &kshakav1alpha1.Transition{
			Kind:      kshakav1alpha1.TransitionAdd,
			Reason:    reason,
			Member:    &kshakav1alpha1.ConfigMember{ID: PodName(d.c, ord)},
			Step:      kshakav1alpha1.StepStartMember,
			From:      ConfigToStatus(cfg),
			StartedAt: &metav1.Time{Time: d.o.Now},
		}
		d.event(corev1.EventTypeNormal, EventChangeStarted, "Adding %s (%s, %d → %d members): waiting for its pod", PodName(d.c, ord), reason, n, n+1)
		d.pace(PaceNow)
	case n > want:
		x := d.highestMember(cfg)
		if !d.othersServing(cfg, membership.Member{}, "remove "+x.ID) {
			return
		}
		d.startChange(cfg, membership.Change{Kind: membership.Remove, Member: x}, kshakav1alpha1.ReasonScaleDown)
	default:
		d.rollOne(cfg)
	}
}

// rollOne carries a changed pod template to the pods, one pod at a time
// (DESIGN §6): it deletes the highest-ordinal member pod built from an
// outdated revision, only when no pod is terminating and every other member
// is ready and serving the current epoch. The pod comes back with its
// volume, hence its incarnation, and rejoins without a membership change.
func (d *decider) rollOne(cfg membership.Config) {
	sts := d.o.StatefulSet
	if sts == nil || sts.Status.UpdateRevision == "" {
		return
	}
	want := sts.Status.UpdateRevision
	var outdated []membership.Member
	for _, m := range cfg.Members {
		pod, ok := d.o.Pods[d.ordinal(m.ID)]
		if ok && pod.Revision != "" && pod.Revision != want {
			outdated = append(outdated, m)
		}
	}
	if len(outdated) == 0 {
		return
	}
	// One at a time: the pod restarted last must be back and ready, as
	// every other, before the next goes.
	for _, m := range cfg.Members {
		pod, ok := d.o.Pods[d.ordinal(m.ID)]
		if !ok || pod.Terminating || !pod.Ready {
			d.wait("rolling update: waiting for pod %s to be ready", PodName(d.c, d.ordinal(m.ID)))
			return
		}
	}
	if sts.Status.ObservedGeneration < sts.Generation || sts.Status.ReadyReplicas < int32(len(cfg.Members)) {
		d.wait("rolling update: waiting for the StatefulSet to report every pod ready")
		return
	}
	slices.SortFunc(outdated, func(a, b membership.Member) int { return cmp.Compare(d.ordinal(b.ID), d.ordinal(a.ID)) })
	m := outdated[0]
	if !d.othersServing(cfg, m, "restart "+m.ID+" for a rolling update") {
		return
	}
	ord := d.ordinal(m.ID)
	d.event(corev1.EventTypeNormal, EventRollPod, "Restarting %s to apply pod template revision %s (%d outdated)", PodName(d.c, ord), want, len(outdated))
	d.p.Action = Action{Kind: ActionRollPod, Ordinal: ord, PodName: PodName(d.c, ord)}
	d.pace(PaceNow)
}

// othersServing checks the gate before a change: every non-retired member
// other than except serves the configuration's epoch.
func (d *decider) othersServing(cfg membership.Config, except membership.Member, what string) bool {
	for _, m := range cfg.Members {
		if m.Incarnation == except.Incarnation || d.retired[m.Incarnation] {
			continue
		}
		if !d.serving(m) || !d.acked(m, cfg.Epoch) {
			d.block(ReasonMemberNotServing, "cannot %s: %s", what, d.whyNot(m, cfg.Epoch))
			return false
		}
	}
	return true
}

func (d *decider) freeOrdinal(cfg membership.Config) int32 {
	used := map[int32]bool{}
	for _, m := range cfg.Members {
		used[d.ordinal(m.ID)] = true
	}
	var ord int32
	for used[ord] {
		ord++
	}
	return ord
}

func (d *decider) highestMember(cfg membership.Config) membership.Member {
	best := cfg.Members[0]
	for _, m := range cfg.Members[1:] {
		if d.ordinal(m.ID) > d.ordinal(best.ID) {
			best = m
		}
	}
	return best
}

// readdress installs the same membership at epoch+1 with updated addresses
// when a member's pod answers with the member's incarnation at another
// address (PodIP mode, after the pod was recreated). It reports whether it
// started one.
func (d *decider) readdress(cfg membership.Config) bool {
	next := cfg.Clone()
	changed := false
	for i, m := range next.Members {
		a, ok := d.acceptor(m)
		addr := d.o.Pods[d.ordinal(m.ID)].Address
		if ok && a.Incarnation == m.Incarnation && addr != "" && addr != m.Addr {
			next.Members[i].Addr = addr
			changed = true
		}
	}
	if !changed {
		return false
	}
	next.Epoch++
	for _, m := range cfg.Members {
		if !d.retired[m.Incarnation] && !d.acked(m, cfg.Epoch) {
			d.block(ReasonMemberNotServing, "cannot update member addresses: %s", d.whyNot(m, cfg.Epoch))
			return true
		}
	}
	d.st.Configuration = ConfigToStatus(next)
	d.st.Transition = &kshakav1alpha1.Transition{
		Kind:      kshakav1alpha1.TransitionReaddress,
		Reason:    kshakav1alpha1.ReasonAddressChanged,
		Step:      kshakav1alpha1.StepInstallFinal,
		From:      ConfigToStatus(cfg),
		StartedAt: &metav1.Time{Time: d.o.Now},
	}
	d.event(corev1.EventTypeNormal, EventChangeStarted, "Member addresses changed: installing %s", next)
	d.installStep(&cfg, next, "")
	return true
}

// startChange records an add or remove whose member is known and installs
// its joint configuration.
func (d *decider) startChange(cfg membership.Config, ch membership.Change, reason kshakav1alpha1.TransitionReason) {
	joint, _, err := membership.Steps(cfg, ch)
	if err != nil {
		d.block(ReasonBlocked, "cannot %s %s: %v", ch.Kind, ch.Member.ID, err)
		return
	}
	m := memberToStatus(ch.Member)
	m.Prepare, m.Accept = false, false
	kind := kshakav1alpha1.TransitionAdd
	if ch.Kind == membership.Remove {
		kind = kshakav1alpha1.TransitionRemove
	}
	d.st.Transition = &kshakav1alpha1.Transition{
		Kind:      kind,
		Reason:    reason,
		Member:    &m,
		Step:      kshakav1alpha1.StepInstallJoint,
		From:      ConfigToStatus(cfg),
		StartedAt: &metav1.Time{Time: d.o.Now},
	}
	d.st.Configuration = ConfigToStatus(joint)
	d.event(corev1.EventTypeNormal, EventChangeStarted, "%s %s (%s): installing joint configuration %s", titleKind(ch.Kind), ch.Member.ID, reason, joint)
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

// change returns the membership change a recorded Add or Remove transition
// carries out.
func change(tr *kshakav1alpha1.Transition) membership.Change {
	ch := membership.Change{Kind: membership.Add}
	if tr.Kind == kshakav1alpha1.TransitionRemove {
		ch.Kind = membership.Remove
	}
	if tr.Member != nil {
		ch.Member = memberFromStatus(*tr.Member)
	}
	return ch
}

// steps recomputes the joint and final configurations of the recorded
// transition with the shared planner.
func (d *decider) steps() (from, joint, final membership.Config, err error) {
	tr := d.st.Transition
	from, ok := ConfigFromStatus(tr.From)
	if !ok {
		return from, joint, final, fmt.Errorf("transition %s has no starting configuration", tr.Kind)
	}
	joint, final, err = membership.Steps(from, change(tr))
	return from, joint, final, err
}

func (d *decider) continueTransition() {
	tr := d.st.Transition
	switch tr.Kind {
	case kshakav1alpha1.TransitionBootstrap:
		cfg, _ := d.config()
		d.installStep(nil, cfg, "")
		return
	case kshakav1alpha1.TransitionReaddress:
		from, _ := ConfigFromStatus(tr.From)
		cfg, _ := d.config()
		d.installStep(&from, cfg, "")
		return
	}
	if tr.Step == kshakav1alpha1.StepStartMember {
		d.startMember()
		return
	}
	if tr.Step == kshakav1alpha1.StepRemovePod || tr.Step == kshakav1alpha1.StepDeleteVolume {
		d.removeTail()
		return
	}
	from, joint, final, err := d.steps()
	if err != nil {
		d.block(ReasonBlocked, "cannot replan the recorded %s of %s: %v", tr.Kind, tr.Member.ID, err)
		return
	}
	first := ""
	if tr.Kind == kshakav1alpha1.TransitionAdd {
		first = tr.Member.ID
	}
	switch tr.Step {
	case kshakav1alpha1.StepInstallJoint:
		d.installStep(&from, joint, first)
	case kshakav1alpha1.StepRescan:
		d.rescan(from, joint)
	case kshakav1alpha1.StepInstallFinal:
		d.installStep(&joint, final, "")
	default:
		d.block(ReasonBlocked, "unknown transition step %q", tr.Step)
	}
}

// startMember waits for the new member's pod to report its incarnation and
// empty storage, then plans the change and installs the joint configuration
// (on the new member first).
func (d *decider) startMember() {
	tr := d.st.Transition
	from, _ := ConfigFromStatus(tr.From)
	id := tr.Member.ID
	ord := d.ordinal(id)
	if tr.Reason == kshakav1alpha1.ReasonScaleUp && d.c.Spec.Replicas <= int32(len(from.Members)) {
		d.st.Transition = nil
		d.event(corev1.EventTypeNormal, EventCancelled, "Cancelled adding %s: spec.replicas is %d again", id, d.c.Spec.Replicas)
		d.pace(PaceNow)
		return
	}
	pod, ok := d.o.Pods[ord]
	a := d.o.Acceptors[ord]
	switch {
	case ord < 0:
		d.block(ReasonBlocked, "member ID %q is not a pod of this cluster", id)
		return
	case !ok || pod.Terminating:
		d.wait("waiting for pod %s", id)
		return
	case pod.Address == "" || !a.Reachable():
		d.wait("waiting for %s to report its incarnation", id)
		return
	case d.retired[a.Incarnation]:
		d.recycle(ord, a.Incarnation)
		return
	case a.Epoch != 0 || a.Admitted:
		d.block(ReasonBlocked, "new member %s holds a configuration (epoch %d) already; delete its PersistentVolumeClaim so it starts empty", id, a.Epoch)
		return
	}
	m := membership.Member{ID: id, Addr: pod.Address, Incarnation: a.Incarnation}
	joint, _, err := membership.Steps(from, membership.Change{Kind: membership.Add, Member: m})
	if err != nil {
		d.block(ReasonBlocked, "cannot add %s: %v", id, err)
		return
	}
	sm := memberToStatus(m)
	tr.Member = &sm
	tr.Step = kshakav1alpha1.StepInstallJoint
	d.st.Configuration = ConfigToStatus(joint)
	d.event(corev1.EventTypeNormal, EventChangeStarted, "Adding %s (incarnation %s): installing joint configuration %s", id, sm.Incarnation, joint)
	d.installStep(&from, joint, id)
}

// installStep installs next and waits for its fence: every non-retired
// member of prev and next has acknowledged next's epoch (DESIGN §3). first,
// when set, is the member that must have it before anyone else (the member
// being added). When the fence holds it moves the transition on.
func (d *decider) installStep(prev *membership.Config, next membership.Config, first string) {
	targets := d.fenceTargets(prev, next)
	var pending, unreachable []membership.Member
	for _, m := range targets {
		if d.acked(m, next.Epoch) {
			continue
		}
		pending = append(pending, m)
		if a, ok := d.acceptor(m); !ok || a.Incarnation != m.Incarnation {
			unreachable = append(unreachable, m)
		}
	}
	if len(pending) == 0 {
		d.fenced(next)
		return
	}
	var why []string
	for _, m := range unreachable {
		why = append(why, d.whyNot(m, next.Epoch))
	}
	if len(why) > 0 {
		d.block(ReasonMemberUnreachable, "epoch %d is not fenced: %s", next.Epoch, strings.Join(why, "; "))
	}
	var install []Target
	for _, m := range pending {
		if slices.ContainsFunc(unreachable, func(u membership.Member) bool { return u.Incarnation == m.Incarnation }) {
			if m.ID == first {
				// The new member must have the configuration first.
				return
			}
			continue
		}
		t := d.target(m)
		if m.ID == first {
			install = append([]Target{t}, install...)
		} else {
			install = append(install, t)
		}
	}
	if len(install) == 0 {
		return
	}
	d.p.Action = Action{Kind: ActionInstall, Config: next, Targets: install}
	d.pace(PaceNow)
}

// fenceTargets returns the non-retired members of prev and next, by
// incarnation, sorted by ID.
func (d *decider) fenceTargets(prev *membership.Config, next membership.Config) []membership.Member {
	seen := map[uint64]bool{}
	var out []membership.Member
	add := func(ms []membership.Member) {
		for _, m := range ms {
			if !seen[m.Incarnation] && !d.retired[m.Incarnation] {
				seen[m.Incarnation] = true
				out = append(out, m)
			}
		}
	}
	if prev != nil {
		add(prev.Members)
	}
	add(next.Members)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// fenced moves the transition past the installation of next.
func (d *decider) fenced(next membership.Config) {
	tr := d.st.Transition
	d.pace(PaceNow)
	switch {
	case tr.Kind == kshakav1alpha1.TransitionBootstrap:
		d.st.Transition = nil
		d.event(corev1.EventTypeNormal, EventBootstrapped, "Epoch %d is installed on every member", next.Epoch)
	case tr.Kind == kshakav1alpha1.TransitionReaddress:
		d.st.Transition = nil
		d.event(corev1.EventTypeNormal, EventReaddressed, "Epoch %d with the new addresses is fenced", next.Epoch)
	case tr.Step == kshakav1alpha1.StepInstallJoint:
		tr.Step = kshakav1alpha1.StepRescan
		tr.RescanCursor = nil
		tr.KeysRescanned = 0
		d.event(corev1.EventTypeNormal, EventJointInstalled, "Joint epoch %d is fenced; rescanning every key", next.Epoch)
	case tr.Step == kshakav1alpha1.StepInstallFinal:
		d.finalFenced(next)
	}
}

func (d *decider) finalFenced(final membership.Config) {
	tr := d.st.Transition
	id := tr.Member.ID
	d.event(corev1.EventTypeNormal, EventFinalInstalled, "Final epoch %d is fenced: %s", final.Epoch, final)
	switch {
	case tr.Kind == kshakav1alpha1.TransitionAdd:
		d.st.Transition = nil
		d.event(corev1.EventTypeNormal, EventMemberAdded, "Added %s (incarnation %s)", id, tr.Member.Incarnation)
	case tr.Reason == kshakav1alpha1.ReasonScaleDown:
		d.retireIncarnation(mustParseIncarnation(tr.Member.Incarnation))
		tr.Step = kshakav1alpha1.StepRemovePod
		d.event(corev1.EventTypeNormal, EventMemberRetired, "Retired %s (incarnation %s); removing its pod", id, tr.Member.Incarnation)
	default:
		// Replace: the incarnation was retired when its disk was found lost.
		// The pod stays and joins again at once as a new member, so members
		// keep the ordinals 0..n-1 whatever spec.replicas says meanwhile.
		d.event(corev1.EventTypeNormal, EventMemberRemoved, "Removed %s (incarnation %s); adding its pod back as a new member", id, tr.Member.Incarnation)
		d.st.Transition = &kshakav1alpha1.Transition{
			Kind:      kshakav1alpha1.TransitionAdd,
			Reason:    kshakav1alpha1.ReasonReplace,
			Member:    &kshakav1alpha1.ConfigMember{ID: id},
			Step:      kshakav1alpha1.StepStartMember,
			From:      ConfigToStatus(final),
			StartedAt: &metav1.Time{Time: d.o.Now},
		}
	}
}

// rescan runs the identity change on one batch of keys under joint, which is
// fenced; every non-retired member of joint must be reachable so that no
// key is missed.
func (d *decider) rescan(from, joint membership.Config) {
	tr := d.st.Transition
	var sources []Target
	var endpoints []string
	for _, m := range d.fenceTargets(&from, joint) {
		if !d.acked(m, joint.Epoch) {
			d.block(ReasonMemberUnreachable, "rescan under epoch %d is waiting: %s", joint.Epoch, d.whyNot(m, joint.Epoch))
			return
		}
	}
	// Keys are listed from every member of both configurations (the one
	// leaving too, while it is there): a key lives on an accept quorum of
	// from, which may include the leaving member.
	for _, m := range d.fenceTargets(&from, joint) {
		sources = append(sources, d.target(m))
	}
	for _, m := range joint.Members {
		if !d.retired[m.Incarnation] {
			endpoints = append(endpoints, d.target(m).Addr)
		}
	}
	d.p.Action = Action{Kind: ActionRescan, Config: joint, Targets: sources, Cursor: tr.RescanCursor, Endpoints: endpoints}
	d.pace(PaceNow)
}

// RescanResult is what one rescan batch did.
type RescanResult struct {
	// Cursor is the last key covered; the next batch starts after it.
	Cursor []byte
	// Keys is the number of keys rescanned (each one touched).
	Keys int
	// Done: no key is left after Cursor.
	Done bool
}

// AfterRescan records a rescan batch in st (which must be at the Rescan
// step) and, when the rescan is complete, moves on to installing the final
// configuration. It returns the events of the step.
func AfterRescan(c *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus, res RescanResult) ([]Event, error) {
	tr := st.Transition
	if tr == nil || tr.Step != kshakav1alpha1.StepRescan {
		return nil, fmt.Errorf("while recording a rescan batch: the transition is not at the Rescan step")
	}
	tr.KeysRescanned += int64(res.Keys)
	if len(res.Cursor) > 0 {
		tr.RescanCursor = slices.Clone(res.Cursor)
	}
	if !res.Done {
		return nil, nil
	}
	d := &decider{c: c, st: st}
	_, _, final, err := d.steps()
	if err != nil {
		return nil, fmt.Errorf("while planning the final configuration: %w", err)
	}
	tr.Step = kshakav1alpha1.StepInstallFinal
	st.Configuration = ConfigToStatus(final)
	return []Event{{
		Type: corev1.EventTypeNormal, Reason: EventRescanned,
		Message: fmt.Sprintf("Rescanned %d keys; installing final configuration %s", tr.KeysRescanned, final),
	}}, nil
}

// removeTail finishes a scale down once the final configuration is fenced:
// wait until the StatefulSet has removed the pod, then delete its volume
// claim.
func (d *decider) removeTail() {
	tr := d.st.Transition
	ord := d.ordinal(tr.Member.ID)
	switch tr.Step {
	case kshakav1alpha1.StepRemovePod:
		if _, ok := d.o.Pods[ord]; ok {
			d.wait("waiting for pod %s to be gone", tr.Member.ID)
			return
		}
		tr.Step = kshakav1alpha1.StepDeleteVolume
		d.pace(PaceNow)
		if d.o.PVCs[ord] {
			d.event(corev1.EventTypeNormal, EventDeleteVolume, "Pod %s is gone; deleting its volume claim %s", tr.Member.ID, PVCName(d.c, ord))
			d.p.Action = Action{Kind: ActionDeletePVC, Ordinal: ord, PVCName: PVCName(d.c, ord)}
		}
	case kshakav1alpha1.StepDeleteVolume:
		if _, ok := d.o.Pods[ord]; ok {
			// A pod with this ordinal is back (scale up): its claim is its
			// own now. The removed member's data is retired either way.
			d.st.Transition = nil
			d.event(corev1.EventTypeNormal, EventMemberRemoved, "Removed %s", tr.Member.ID)
			d.pace(PaceNow)
			return
		}
		if d.o.PVCs[ord] {
			d.p.Action = Action{Kind: ActionDeletePVC, Ordinal: ord, PVCName: PVCName(d.c, ord)}
			d.pace(PaceNow)
			return
		}
		d.st.Transition = nil
		d.event(corev1.EventTypeNormal, EventMemberRemoved, "Removed %s: membership, pod and volume claim", tr.Member.ID)
		d.pace(PaceNow)
	}
}

// statefulSetReplicas is the StatefulSet size: large enough for every
// member in play, and otherwise spec.replicas, but never shrinking below a
// member that is still being removed.
func (d *decider) statefulSetReplicas() int32 {
	spec := d.c.Spec.Replicas
	cfg, ok := d.config()
	if !ok {
		return spec
	}
	tr := d.st.Transition
	var leaving int32 = -1
	if tr != nil && tr.Kind == kshakav1alpha1.TransitionRemove && tr.Reason == kshakav1alpha1.ReasonScaleDown &&
		(tr.Step == kshakav1alpha1.StepRemovePod || tr.Step == kshakav1alpha1.StepDeleteVolume) {
		leaving = d.ordinal(tr.Member.ID)
	}
	var n int32
	note := func(id string) {
		if ord := d.ordinal(id); ord >= 0 && ord != leaving {
			n = max(n, ord+1)
		}
	}
	for _, m := range cfg.Members {
		note(m.ID)
	}
	if tr != nil {
		if from, ok := ConfigFromStatus(tr.From); ok {
			for _, m := range from.Members {
				note(m.ID)
			}
		}
		if tr.Member != nil {
			note(tr.Member.ID)
		}
	}
	cur := n
	if d.o.StatefulSet != nil && d.o.StatefulSet.Spec.Replicas != nil {
		cur = *d.o.StatefulSet.Spec.Replicas
	}
	return max(n, min(spec, cur))
}

// summarise fills in the counters, the quorum summary and the conditions.
func (d *decider) summarise() {
	st, c := d.st, d.c
	st.ObservedGeneration = c.Generation
	st.Selector = labels.SelectorFromSet(SelectorLabels(c)).String()
	now := metav1.NewTime(d.o.Now)
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: msg,
			ObservedGeneration: c.Generation, LastTransitionTime: now,
		})
	}

	cfg, haveCfg := d.config()
	var notServing []string
	if haveCfg {
		st.Replicas = int32(len(cfg.Members))
		var ready, inP, inS int
		for _, m := range cfg.Members {
			if !d.serving(m) {
				notServing = append(notServing, d.whyNot(m, 0))
				continue
			}
			if d.o.Pods[d.ordinal(m.ID)].Ready {
				ready++
			}
			if m.Prepare {
				inP++
			}
			if m.Accept {
				inS++
			}
		}
		st.ReadyReplicas = int32(ready)
		available := inP >= cfg.PrepareQuorum && inS >= cfg.AcceptQuorum
		msg := fmt.Sprintf("%d of %d members serving epoch %d (prepare quorum %d, accept quorum %d)",
			len(cfg.Members)-len(notServing), len(cfg.Members), cfg.Epoch, cfg.PrepareQuorum, cfg.AcceptQuorum)
		switch {
		case !available:
			st.Quorum = kshakav1alpha1.QuorumLost
			set(kshakav1alpha1.ConditionAvailable, metav1.ConditionFalse, ReasonQuorumLost, msg)
		case len(notServing) > 0:
			st.Quorum = kshakav1alpha1.QuorumDegraded
			set(kshakav1alpha1.ConditionAvailable, metav1.ConditionTrue, ReasonQuorumAvailable, msg)
		default:
			st.Quorum = kshakav1alpha1.QuorumHealthy
			set(kshakav1alpha1.ConditionAvailable, metav1.ConditionTrue, ReasonQuorumAvailable, msg)
		}
	} else {
		st.Replicas, st.ReadyReplicas = 0, 0
		st.Quorum = kshakav1alpha1.QuorumUnknown
		set(kshakav1alpha1.ConditionAvailable, metav1.ConditionFalse, ReasonNoConfiguration, "no configuration is installed yet")
	}

	tr := st.Transition
	if tr != nil {
		who := ""
		if tr.Member != nil {
			who = " " + tr.Member.ID
		}
		msg := fmt.Sprintf("%s%s (%s): step %s", tr.Kind, who, tr.Reason, tr.Step)
		if tr.Step == kshakav1alpha1.StepRescan {
			msg += fmt.Sprintf(", %d keys rescanned", tr.KeysRescanned)
		}
		set(kshakav1alpha1.ConditionMembershipChanging, metav1.ConditionTrue, string(tr.Step), msg)
	} else {
		set(kshakav1alpha1.ConditionMembershipChanging, metav1.ConditionFalse, ReasonStable, "no membership change in progress")
	}

	switch {
	case len(d.rolledBack) > 0:
		msg := strings.Join(d.rolledBack, "; ") + "; retired like a lost disk, to be replaced"
		for _, more := range []string{d.kept, d.blocked} {
			if more != "" {
				msg += "; " + more
			}
		}
		set(kshakav1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonVolumeRolledBack, msg)
	case d.kept != "":
		msg := d.kept
		if d.blocked != "" {
			msg += "; " + d.blocked
		}
		set(kshakav1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonBlocked, msg)
	case d.blocked != "":
		set(kshakav1alpha1.ConditionDegraded, metav1.ConditionTrue, d.blockedReason, d.blocked)
	case len(notServing) > 0:
		set(kshakav1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonMemberNotServing, strings.Join(notServing, "; "))
	default:
		set(kshakav1alpha1.ConditionDegraded, metav1.ConditionFalse, ReasonAsExpected, "every member is serving")
	}

	switch {
	case c.Spec.Paused:
		set(kshakav1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonPaused, "spec.paused is set: no changes are made")
	case tr != nil:
		msg := fmt.Sprintf("%s of %s", tr.Step, tr.Kind)
		if d.waiting != "" {
			msg += ": " + d.waiting
		}
		set(kshakav1alpha1.ConditionProgressing, metav1.ConditionTrue, string(tr.Kind), msg)
	case d.waiting != "":
		set(kshakav1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonWaitingForMembers, d.waiting)
	case haveCfg && int32(len(cfg.Members)) != c.Spec.Replicas:
		set(kshakav1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonScaling,
			fmt.Sprintf("%d members, %d wanted", len(cfg.Members), c.Spec.Replicas))
	default:
		set(kshakav1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonStable, "the cluster matches its spec")
	}
}
