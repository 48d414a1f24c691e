package controllers

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/kshaka-io/kshaka/membership"
)

// rollOne carries a changed pod template to the pods, one pod at a time
// (docs/design.md §6): it deletes the highest-ordinal member pod built from an
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
