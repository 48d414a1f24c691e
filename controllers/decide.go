package controllers

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/membership/change"

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
	// StatefulSet recreates both, empty. Used when a member's pod answers
	// with a retired incarnation.
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
type Pace = change.Pace

// Paces.
const (
	// PaceIdle: nothing is in progress; refresh the status now and then.
	PaceIdle = change.PaceIdle
	// PaceWait: waiting for something outside the operator (a pod, an
	// acceptor, a fence); poll.
	PaceWait = change.PaceWait
	// PaceNow: a step was recorded or an action taken; look again promptly.
	PaceNow = change.PaceNow
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
	ReasonMemberNotServing  = change.ReasonMemberNotServing
	ReasonMemberUnreachable = change.ReasonMemberUnreachable
	ReasonDiskLost          = change.ReasonDiskLost
	// ReasonVolumeRolledBack: a member's acceptor reports its incarnation
	// with a lower epoch than it acknowledged before (DESIGN §4
	// "Rolled-back disks"). Also the reason of the event.
	ReasonVolumeRolledBack  = change.ReasonVolumeRolledBack
	ReasonBlocked           = change.ReasonBlocked
	ReasonWaitingForMembers = "WaitingForMembers"
	ReasonScaling           = "Scaling"
)

// Event reasons, one per membership step (see package change).
const (
	EventBootstrap      = change.EventBootstrap
	EventBootstrapped   = change.EventBootstrapped
	EventChangeStarted  = change.EventChangeStarted
	EventJointInstalled = change.EventJointInstalled
	EventRescanned      = change.EventRescanned
	EventFinalInstalled = change.EventFinalInstalled
	EventMemberAdded    = change.EventMemberAdded
	EventMemberRemoved  = change.EventMemberRemoved
	EventMemberRetired  = change.EventMemberRetired
	EventReaddressed    = change.EventReaddressed
	EventRecycle        = change.EventRecycle
	EventRollPod        = "RollingUpdate"
	EventDeleteVolume   = change.EventDeleteStorage
	EventCancelled      = change.EventCancelled
	EventBlocked        = "MembershipChangeBlocked"
)

// machine is the operator's transition machine: the correct procedure,
// with no negative control set.
var machine = change.Machine{}

// Decide computes the next step of c's reconciliation from one observation.
// It is pure: same input, same plan. The membership procedure is
// change.Machine's: Decide translates the recorded status into the
// machine's intent and the pods, volume claims and acceptors into its
// observation, and the machine's decision back into status, a StatefulSet
// size and one action. The reconciler records Plan.Status before carrying
// out Plan.Action, so every action is preceded by its intent in status;
// each step re-checks live state, so repeating one is harmless.
func Decide(o Observed) Plan {
	c := o.Cluster
	in := intentFromStatus(c, &c.Status)
	obs := observation(o, in)
	dec := machine.Next(in, obs)

	d := &decider{o: o, c: c, dec: dec, view: dec.View(), blocked: dec.Blocked, blockedReason: dec.BlockedReason, waiting: dec.Waiting}
	d.p.Status = *c.Status.DeepCopy()
	d.st = &d.p.Status
	writeIntent(d.st, in, dec.Intent)
	d.st.Members = memberRows(o, dec.Intent, change.NewView(in, obs))
	d.p.Pace = dec.Pace
	for _, e := range dec.Events {
		d.p.Events = append(d.p.Events, kubeEvent(e))
	}
	d.p.Action = d.action(dec.Action)
	if dec.Idle && !c.Spec.Paused {
		cfg, _ := d.config()
		d.rollOne(cfg)
	}
	d.p.StatefulSetReplicas = d.statefulSetReplicas()
	d.summarise()
	return d.p
}

func kubeEvent(e change.Event) Event {
	typ := corev1.EventTypeNormal
	if e.Warning {
		typ = corev1.EventTypeWarning
	}
	return Event{Type: typ, Reason: e.Reason, Message: e.Message}
}

// decider carries one Decide call after the machine's decision: the parts
// that are Kubernetes' (the StatefulSet, rolling updates, status).
type decider struct {
	o    Observed
	c    *kshakav1alpha1.KshakaCluster
	p    Plan
	st   *kshakav1alpha1.KshakaClusterStatus
	dec  change.Decision
	view change.View
	// blocked, when set, explains why the next step cannot be taken.
	blocked, blockedReason string
	// waiting, when set, says what the operator waits for.
	waiting string
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

// action turns the machine's action into the reconciler's.
func (d *decider) action(a change.Action) Action {
	targets := func() []Target {
		var out []Target
		for _, t := range a.Targets {
			out = append(out, Target{Ordinal: d.ordinal(t.Slot), PodName: t.Slot, Addr: t.Addr, Incarnation: t.Incarnation})
		}
		return out
	}
	ord := d.ordinal(a.Slot)
	switch a.Kind {
	case change.Install:
		return Action{Kind: ActionInstall, Config: a.Config, Targets: targets()}
	case change.Rescan:
		if a.SkipAgreeing != 0 {
			// Only a negative control asks for it; the operator never
			// sets one.
			d.block(ReasonBlocked, "refusing a rescan that skips keys (a negative control of package change)")
			return Action{}
		}
		return Action{Kind: ActionRescan, Config: a.Config, Targets: targets(), Cursor: a.Cursor, Endpoints: a.Endpoints}
	case change.Recycle:
		return Action{Kind: ActionRecycle, Ordinal: ord, PodName: a.Slot, PVCName: PVCName(d.c, ord)}
	case change.DeleteStorage:
		return Action{Kind: ActionDeletePVC, Ordinal: ord, PVCName: PVCName(d.c, ord)}
	}
	// change.Stop: the StatefulSet's size (statefulSetReplicas) removes
	// the pod.
	return Action{}
}

// observation translates the pods, volume claims and acceptors into the
// machine's observation. Slots are the pod names by ordinal: the bootstrap
// takes ordinals 0..spec.replicas-1, an add the lowest ordinal without a
// member, a scale down the member with the highest ordinal.
func observation(o Observed, in change.Intent) change.Observation {
	c := o.Cluster
	n := c.Spec.Replicas
	note := func(id string) {
		if ord, ok := Ordinal(c, id); ok {
			n = max(n, ord+2)
		}
	}
	for _, cfg := range []*membership.Config{in.Config, transitionFrom(in)} {
		if cfg != nil {
			n = max(n, int32(len(cfg.Members))+1)
			for _, m := range cfg.Members {
				note(m.ID)
			}
		}
	}
	if tr := in.Transition; tr != nil {
		note(tr.Member.ID)
	}
	ords := map[int32]bool{}
	for ord := range o.Pods {
		ords[ord] = true
		n = max(n, ord+1)
	}
	for ord := range o.PVCs {
		ords[ord] = true
	}
	obs := change.Observation{Size: int(c.Spec.Replicas), Seen: map[string]change.Slot{}, Paused: c.Spec.Paused, Now: o.Now}
	for ord := range n {
		obs.Slots = append(obs.Slots, PodName(c, ord))
	}
	for ord := range ords {
		obs.Seen[PodName(c, ord)] = slot(o, ord)
	}
	for _, s := range strings.Split(c.Annotations[AnnotationRetire], ",") {
		if v, err := ParseIncarnation(strings.TrimSpace(s)); err == nil && v != 0 {
			obs.Asserted = append(obs.Asserted, v)
		}
	}
	return obs
}

func transitionFrom(in change.Intent) *membership.Config {
	if in.Transition == nil {
		return nil
	}
	return in.Transition.From
}

// slot is what the pod, volume claim and acceptor of ordinal ord show.
func slot(o Observed, ord int32) change.Slot {
	name := PodName(o.Cluster, ord)
	pod, havePod := o.Pods[ord]
	a, dialled := o.Acceptors[ord]
	s := change.Slot{Exists: havePod, Running: havePod && !pod.Terminating, HasStorage: o.PVCs[ord], Addr: pod.Address}
	switch {
	case !havePod:
		s.Why = fmt.Sprintf("pod %s does not exist", name)
	case pod.Terminating:
		s.Why = fmt.Sprintf("pod %s is terminating", name)
	case !dialled || pod.Address == "":
		s.Why = fmt.Sprintf("pod %s has no address yet", name)
	case a.Err != "":
		s.Why = fmt.Sprintf("%s is unreachable: %s", name, a.Err)
	case a.Incarnation == 0:
		s.Why = fmt.Sprintf("%s reported incarnation 0", name)
	default:
		s.Reachable = true
		s.Incarnation, s.Epoch, s.Admitted, s.Healthy, s.Reason = a.Incarnation, a.Epoch, a.Admitted, a.Healthy, a.Reason
	}
	return s
}

// intentFromStatus reads the machine's intent from the recorded status:
// the configuration, the transition, the retired incarnations and each
// member row's record of the highest acknowledged epoch.
func intentFromStatus(c *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus) change.Intent {
	var in change.Intent
	if cfg, ok := ConfigFromStatus(st.Configuration); ok {
		in.Config = &cfg
	}
	if tr := st.Transition; tr != nil {
		t := &change.Transition{
			Kind:      change.Kind(tr.Kind),
			Reason:    change.Reason(tr.Reason),
			Step:      stepFromStatus(tr.Step),
			Cursor:    slices.Clone(tr.RescanCursor),
			Rescanned: tr.KeysRescanned,
		}
		if tr.Member != nil {
			t.Member = memberFromStatus(*tr.Member)
		}
		if from, ok := ConfigFromStatus(tr.From); ok {
			t.From = &from
		}
		if tr.StartedAt != nil {
			t.StartedAt = tr.StartedAt.Time
		}
		in.Transition = t
	}
	for _, s := range st.RetiredIncarnations {
		if v, err := ParseIncarnation(s); err == nil && v != 0 {
			in.Retired = append(in.Retired, v)
		}
	}
	in.Acks = map[string]change.Ack{}
	for _, row := range st.Members {
		rec := row.HighestAcknowledged
		if rec == nil {
			continue
		}
		if inc, err := ParseIncarnation(rec.Incarnation); err == nil && inc != 0 {
			in.Acks[PodName(c, row.Ordinal)] = change.Ack{Incarnation: inc, Epoch: uint64(max(rec.Epoch, 0))}
		}
	}
	return in
}

// writeIntent records the machine's new intent out in st, whose intent was
// in: the configuration, the transition and the incarnations retired since.
// The member rows (and their records) are written by memberRows.
func writeIntent(st *kshakav1alpha1.KshakaClusterStatus, in, out change.Intent) {
	st.Configuration = nil
	if out.Config != nil {
		st.Configuration = ConfigToStatus(*out.Config)
	}
	st.Transition = nil
	if tr := out.Transition; tr != nil {
		t := &kshakav1alpha1.Transition{
			Kind:          kshakav1alpha1.TransitionKind(tr.Kind),
			Reason:        kshakav1alpha1.TransitionReason(tr.Reason),
			Step:          stepToStatus(tr.Step),
			RescanCursor:  slices.Clone(tr.Cursor),
			KeysRescanned: tr.Rescanned,
		}
		if tr.Member.ID != "" {
			m := memberToStatus(tr.Member)
			t.Member = &m
		}
		if tr.From != nil {
			t.From = ConfigToStatus(*tr.From)
		}
		if !tr.StartedAt.IsZero() {
			t.StartedAt = &metav1.Time{Time: tr.StartedAt}
		}
		st.Transition = t
	}
	for _, inc := range out.Retired[len(in.Retired):] {
		st.RetiredIncarnations = append(st.RetiredIncarnations, FormatIncarnation(inc))
	}
}

func stepFromStatus(s kshakav1alpha1.TransitionStep) change.Step {
	switch s {
	case kshakav1alpha1.StepRemovePod:
		return change.StepStopMember
	case kshakav1alpha1.StepDeleteVolume:
		return change.StepDeleteStorage
	}
	return change.Step(s)
}

func stepToStatus(s change.Step) kshakav1alpha1.TransitionStep {
	switch s {
	case change.StepStopMember:
		return kshakav1alpha1.StepRemovePod
	case change.StepDeleteStorage:
		return kshakav1alpha1.StepDeleteVolume
	}
	return kshakav1alpha1.TransitionStep(s)
}

// memberRows fills status.members from the pods and acceptors, with each
// row's record of the highest acknowledged epoch from the machine's intent.
// view is the view before this decision's retirements.
func memberRows(o Observed, in change.Intent, view change.View) []kshakav1alpha1.MemberStatus {
	c := o.Cluster
	ords := map[int32]bool{}
	for ord := range o.Pods {
		ords[ord] = true
	}
	if in.Config != nil {
		for _, m := range in.Config.Members {
			if ord, ok := Ordinal(c, m.ID); ok {
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
		pod, havePod := o.Pods[ord]
		row := kshakav1alpha1.MemberStatus{Ordinal: ord, PodName: PodName(c, ord)}
		if rec, ok := in.Acks[row.PodName]; ok {
			row.HighestAcknowledged = &kshakav1alpha1.AcknowledgedEpochRecord{Incarnation: FormatIncarnation(rec.Incarnation), Epoch: int64(rec.Epoch)}
		}
		a, dialled := o.Acceptors[ord]
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
				row.Message = change.RolledBackMessage(uint64(rec.Epoch), a.Epoch)
			case view.Retired(a.Incarnation):
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
	return ms
}

// AfterRescan records a rescan batch in st (which must be at the Rescan
// step) and, when the rescan is complete, moves on to installing the final
// configuration (change.Machine.Rescanned). It returns the events of the
// step.
func AfterRescan(c *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus, res RescanResult) ([]Event, error) {
	in := intentFromStatus(c, st)
	out, events, err := machine.Rescanned(in, change.Progress{Cursor: res.Cursor, Keys: res.Keys, Done: res.Done})
	if err != nil {
		return nil, err
	}
	writeIntent(st, in, out)
	var evs []Event
	for _, e := range events {
		evs = append(evs, kubeEvent(e))
	}
	return evs, nil
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
	if ok, why := d.view.OthersServing(cfg, m); !ok {
		d.block(ReasonMemberNotServing, "cannot restart %s for a rolling update: %s", m.ID, why)
		return
	}
	ord := d.ordinal(m.ID)
	d.event(corev1.EventTypeNormal, EventRollPod, "Restarting %s to apply pod template revision %s (%d outdated)", PodName(d.c, ord), want, len(outdated))
	d.p.Action = Action{Kind: ActionRollPod, Ordinal: ord, PodName: PodName(d.c, ord)}
	d.pace(PaceNow)
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
			if !d.view.Serving(m) {
				notServing = append(notServing, d.view.WhyNot(m, 0))
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

	kept := d.dec.Kept
	switch {
	case len(d.dec.RolledBack) > 0:
		msg := strings.Join(d.dec.RolledBack, "; ") + "; retired like a lost disk, to be replaced"
		for _, more := range []string{kept, d.blocked} {
			if more != "" {
				msg += "; " + more
			}
		}
		set(kshakav1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonVolumeRolledBack, msg)
	case kept != "":
		msg := kept
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
