package controllers

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/membership/change"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

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
	// A tombstone collection pass in progress holds the machine like
	// spec.paused: no membership change starts between its steps
	// (retirements are still recorded).
	obs := change.Observation{Size: int(c.Spec.Replicas), Seen: map[string]change.Slot{}, Paused: c.Spec.Paused || gcHolds(&c.Status), Now: o.Now}
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
