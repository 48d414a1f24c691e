package controllers

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

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
	// IP is the pod's IP; "" until it has one.
	IP string
	// TLS: the pod's acceptor was started with TLS (--tls-cert-file).
	TLS bool
	// Orphan: the pod has no controller: its StatefulSet was deleted with
	// propagation Orphan (a resize) and the new one has not adopted it yet.
	Orphan bool
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
	// KeyCount is the acceptor's count of the keys it stores (key_count),
	// which estimates a rescan's length (status.transition.keysEstimated).
	KeyCount uint64
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
	// PVCs are the ordinals with a volume claim (data, or the WAL's) that
	// exists and is not being deleted.
	PVCs map[int32]bool
	// Claims are those volume claims, by name.
	Claims map[string]ClaimInfo
	// ResizeError is why the last attempt to grow a volume claim failed;
	// "" when it did not.
	ResizeError string
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
	// Volumes is what to do about volume sizes (volumes.go).
	Volumes VolumePlan
	// SpecError, when set, says why the spec cannot be applied
	// (ValidateSpec, or a WAL volume added or removed): the StatefulSet's
	// pod template and claim templates are then left as they are.
	SpecError string
	// Quorum is the quorum arithmetic behind Status.Quorum, for the
	// cluster gauges (metrics.go).
	Quorum QuorumHealth
}

// QuorumHealth is the quorum arithmetic of the configuration in status: how
// many members of the prepare set P and of the accept set S serve it, and
// how many each quorum needs.
type QuorumHealth struct {
	// Configured: a configuration is installed (else the rest is zero).
	Configured                    bool
	PrepareServing, AcceptServing int
	PrepareQuorum, AcceptQuorum   int
}

// FailuresTolerated is how many more serving members may fail before no
// quorum of P or of S is left: min(|P serving| - qp, |S serving| - qa),
// and -1 once the quorum is lost (or with no configuration).
func (q QuorumHealth) FailuresTolerated() int {
	if !q.Configured {
		return -1
	}
	return max(min(q.PrepareServing-q.PrepareQuorum, q.AcceptServing-q.AcceptQuorum), -1)
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
	// with a lower epoch than it acknowledged before (docs/design.md §4
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
	estimateKeys(d.st.Transition, o.Acceptors)
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
	d.p.Volumes = PlanVolumes(c, o.StatefulSet, sortedClaims(o.Claims))
	for ord, pod := range o.Pods {
		if pod.Orphan {
			d.p.Volumes.Orphans = append(d.p.Volumes.Orphans, PodName(c, ord))
		}
	}
	slices.Sort(d.p.Volumes.Orphans)
	d.p.SpecError = specError(c, d.p.Volumes)
	if d.p.SpecError != "" || d.p.Volumes.Pending() {
		d.pace(PaceWait)
	}
	d.summarise()
	return d.p
}

// estimateKeys fills tr.KeysEstimated when a rescan starts (or has no
// estimate yet): the most keys any acceptor it can reach stores. Every key
// is on an accept quorum, so that is at most the number of keys to rescan
// plus those written since; it is only for a progress percentage and never
// decides anything. Once set, it is kept for the rest of the transition
// (writeIntent), so the percentage does not jump.
func estimateKeys(tr *kshakav1alpha1.Transition, acceptors map[int32]AcceptorInfo) {
	if tr == nil || tr.Step != kshakav1alpha1.StepRescan || tr.KeysEstimated > 0 {
		return
	}
	var n uint64
	for _, a := range acceptors {
		if a.Reachable() {
			n = max(n, a.KeyCount)
		}
	}
	tr.KeysEstimated = int64(min(n, math.MaxInt64))
}

// specError joins ValidateSpec's problems and a claim template mismatch.
func specError(c *kshakav1alpha1.KshakaCluster, v VolumePlan) string {
	var parts []string
	if err := ValidateSpec(c); err != nil {
		parts = append(parts, err.Error())
	}
	if v.Mismatch != "" {
		parts = append(parts, v.Mismatch)
	}
	return strings.Join(parts, "; ")
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
	// change.Start and change.Stop: the StatefulSet's size
	// (statefulSetReplicas) creates and removes the pod.
	return Action{}
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
