package controllers

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kshaka-io/kshaka/membership/change"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

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
//
// The rescan's estimate (KeysEstimated), which the machine does not keep,
// is carried over while the transition is the same one.
func writeIntent(st *kshakav1alpha1.KshakaClusterStatus, in, out change.Intent) {
	old := st.Transition
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
		if sameTransition(old, t) {
			t.KeysEstimated = old.KeysEstimated
		}
		st.Transition = t
	}
	for _, inc := range out.Retired[len(in.Retired):] {
		st.RetiredIncarnations = append(st.RetiredIncarnations, FormatIncarnation(inc))
	}
}

// sameTransition reports whether a and b record the same change: kind,
// reason, member and start.
func sameTransition(a, b *kshakav1alpha1.Transition) bool {
	if a == nil || b == nil || a.Kind != b.Kind || a.Reason != b.Reason || (a.Member == nil) != (b.Member == nil) {
		return false
	}
	if a.Member != nil && a.Member.ID != b.Member.ID {
		return false
	}
	if (a.StartedAt == nil) != (b.StartedAt == nil) {
		return false
	}
	return a.StartedAt == nil || a.StartedAt.Equal(b.StartedAt)
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
		d.p.Quorum = QuorumHealth{Configured: true, PrepareServing: inP, AcceptServing: inS,
			PrepareQuorum: cfg.PrepareQuorum, AcceptQuorum: cfg.AcceptQuorum}
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
			if tr.KeysEstimated > 0 {
				msg += fmt.Sprintf(" of about %d", tr.KeysEstimated)
			}
		}
		set(kshakav1alpha1.ConditionMembershipChanging, metav1.ConditionTrue, string(tr.Step), msg)
	} else {
		set(kshakav1alpha1.ConditionMembershipChanging, metav1.ConditionFalse, ReasonStable, "no membership change in progress")
	}

	degraded := func(reason, msg string) {
		if d.p.SpecError != "" && reason == ReasonVolumeRolledBack {
			msg += "; the spec cannot be applied: " + d.p.SpecError
		} else if d.p.SpecError != "" {
			other := ""
			if reason != ReasonAsExpected {
				other = "; " + msg
			}
			set(kshakav1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonInvalidSpec,
				"the spec cannot be applied, the StatefulSet is left as it is: "+d.p.SpecError+other)
			return
		}
		if d.o.ResizeError != "" && len(d.p.Volumes.Grow) > 0 {
			other := ""
			if reason != ReasonAsExpected {
				other = "; " + msg
			}
			set(kshakav1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonVolumeExpansionFailed, d.o.ResizeError+other)
			return
		}
		status := metav1.ConditionTrue
		if reason == ReasonAsExpected {
			status = metav1.ConditionFalse
		}
		set(kshakav1alpha1.ConditionDegraded, status, reason, msg)
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
		degraded(ReasonVolumeRolledBack, msg)
	case kept != "":
		msg := kept
		if d.blocked != "" {
			msg += "; " + d.blocked
		}
		degraded(ReasonBlocked, msg)
	case d.blocked != "":
		degraded(d.blockedReason, d.blocked)
	case len(notServing) > 0:
		degraded(ReasonMemberNotServing, strings.Join(notServing, "; "))
	default:
		degraded(ReasonAsExpected, "every member is serving")
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
	case d.p.Volumes.InProgress():
		set(kshakav1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonResizing, resizeMessage(d.p.Volumes))
	default:
		set(kshakav1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonStable, "the cluster matches its spec")
	}
}

// Reasons of the Ready condition: ReasonReady when it is True, otherwise
// the first unmet requirement (ConditionReady's documentation lists them).
const (
	ReasonReady             = "Ready"
	ReasonNotAvailable      = "NotAvailable"
	ReasonMembersNotServing = "MembersNotServing"
	ReasonDegraded          = "Degraded"
	ReasonProgressing       = "Progressing"
	ReasonTLSNotReady       = "TLSNotReady"
	ReasonNetworkPolicy     = "NetworkPolicyNotReady"
	ReasonNotRestored       = "NotRestored"
)

// ReadyCondition computes the Ready condition from the rest of st (the
// other conditions must be set first) and c's spec. It is pure.
func ReadyCondition(c *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus) metav1.Condition {
	var reasons, msgs []string
	unmet := func(reason, msg string) {
		reasons = append(reasons, reason)
		msgs = append(msgs, msg)
	}
	cond := func(typ string) metav1.Condition {
		if x := meta.FindStatusCondition(st.Conditions, typ); x != nil {
			return *x
		}
		return metav1.Condition{Type: typ, Status: metav1.ConditionUnknown, Reason: "NotReported", Message: "not reported yet"}
	}
	describe := func(x metav1.Condition) string {
		return fmt.Sprintf("%s is %s (%s: %s)", x.Type, x.Status, x.Reason, x.Message)
	}
	deg := cond(kshakav1alpha1.ConditionDegraded)
	if deg.Reason == ReasonInvalidSpec {
		unmet(ReasonInvalidSpec, describe(deg))
	}
	if c.Spec.Paused {
		unmet(ReasonPaused, "spec.paused is set: the operator makes no changes")
	}
	if av := cond(kshakav1alpha1.ConditionAvailable); av.Status != metav1.ConditionTrue {
		unmet(ReasonNotAvailable, describe(av))
	} else if st.Quorum != kshakav1alpha1.QuorumHealthy || st.ReadyReplicas < st.Replicas {
		unmet(ReasonMembersNotServing, fmt.Sprintf("%d of %d members ready, quorum %s", st.ReadyReplicas, st.Replicas, st.Quorum))
	}
	if deg.Status == metav1.ConditionTrue && deg.Reason != ReasonInvalidSpec {
		unmet(ReasonDegraded, describe(deg))
	}
	if pr := cond(kshakav1alpha1.ConditionProgressing); pr.Status == metav1.ConditionTrue {
		unmet(ReasonProgressing, describe(pr))
	} else if st.Transition != nil {
		unmet(ReasonProgressing, fmt.Sprintf("a membership change is in progress: %s at step %s", st.Transition.Kind, st.Transition.Step))
	}
	if t := cond(kshakav1alpha1.ConditionTLSReady); t.Status != metav1.ConditionTrue && t.Reason != ReasonTLSDisabled {
		unmet(ReasonTLSNotReady, describe(t))
	}
	if np := cond(kshakav1alpha1.ConditionNetworkPolicyReady); np.Status != metav1.ConditionTrue && np.Reason != ReasonNetworkPolicyDisabled {
		unmet(ReasonNetworkPolicy, describe(np))
	}
	if b := c.Spec.Bootstrap; b != nil && b.FromBackup != nil {
		switch rs := st.Restore; {
		case rs == nil || rs.Phase == "":
			unmet(ReasonNotRestored, "spec.bootstrap.fromBackup: the restore has not started")
		case rs.Phase != kshakav1alpha1.BackupCompleted:
			msg := fmt.Sprintf("spec.bootstrap.fromBackup: the restore is %s", rs.Phase)
			if rs.Message != "" {
				msg += ": " + rs.Message
			}
			unmet(ReasonNotRestored, msg)
		}
	}
	out := metav1.Condition{Type: kshakav1alpha1.ConditionReady, ObservedGeneration: c.Generation}
	if len(reasons) == 0 {
		out.Status, out.Reason = metav1.ConditionTrue, ReasonReady
		out.Message = fmt.Sprintf("%d of %d members serving, nothing in progress", st.ReadyReplicas, st.Replicas)
		return out
	}
	out.Status, out.Reason, out.Message = metav1.ConditionFalse, reasons[0], strings.Join(msgs, "; ")
	return out
}
