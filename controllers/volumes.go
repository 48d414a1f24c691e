package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// Volume expansion (spec.storage.size and spec.storage.wal.size may grow):
//
//  1. Every existing claim whose request is below the spec is patched to
//     the new size; the StorageClass's provisioner expands the volume (the
//     class must have allowVolumeExpansion: true, or the API server refuses
//     the patch, which the Degraded condition reports with reason
//     VolumeExpansionFailed).
//  2. A StatefulSet's claim templates cannot change, so once no membership
//     change is in progress the StatefulSet is deleted with propagation
//     Orphan (kubectl delete --cascade=orphan): its pods keep running, and
//     the operator creates it again with the new templates, which adopts
//     them. The pod template is unchanged, so no pod is restarted. Claims
//     made afterwards (a new member, a replaced disk) get the new size.
//  3. Until every claim's capacity has reached its request, Progressing is
//     True with reason Resizing (and Ready is False while steps 1–2 are
//     pending). A volume whose file system waits for the pod to restart
//     (FileSystemResizePending) is named; restarting that pod completes it.

// Condition reasons of a resize.
const (
	// ReasonResizing: volume claims are being expanded (Progressing).
	ReasonResizing = "Resizing"
	// ReasonVolumeExpansionFailed: the API server refused a claim's new
	// size (Degraded); the message says why.
	ReasonVolumeExpansionFailed = "VolumeExpansionFailed"
	// ReasonInvalidSpec: spec.podMetadata, spec.extraArgs, spec.env or
	// spec.storage.wal cannot be applied (Degraded); the StatefulSet is
	// left as it is.
	ReasonInvalidSpec = "InvalidSpec"
	// EventInvalidSpec is the Warning event of an invalid spec.
	EventInvalidSpec = "InvalidSpec"
	// EventVolumeExpansion is the event of a claim's new size and of a
	// StatefulSet recreated for new claim templates.
	EventVolumeExpansion = "VolumeExpansion"
	// EventVolumeExpansionFailed is the Warning event of a refused resize.
	EventVolumeExpansionFailed = ReasonVolumeExpansionFailed
)

// ClaimInfo is what the operator needs of one member's volume claim.
type ClaimInfo struct {
	// Name of the claim: <template>-<pod>.
	Name string
	// Template is the claim template it was made from: data or wal.
	Template string
	// Ordinal of the member's pod.
	Ordinal int32
	// Requested is spec.resources.requests.storage.
	Requested resource.Quantity
	// Capacity is status.capacity.storage; nil while the claim is not
	// bound.
	Capacity *resource.Quantity
	// FileSystemResizePending: the volume is expanded, its file system
	// waits for the pod to restart.
	FileSystemResizePending bool
}

// ClaimGrow is one claim to patch to a new size.
type ClaimGrow struct {
	Name string
	From resource.Quantity
	To   resource.Quantity
}

// VolumePlan is what the operator does about volume sizes.
type VolumePlan struct {
	// Grow are the claims whose request is below the spec.
	Grow []ClaimGrow
	// RecreateStatefulSet: the StatefulSet's claim templates ask for other
	// sizes than the spec; it is deleted with its pods orphaned and created
	// again.
	RecreateStatefulSet bool
	// Expanding names the claims whose capacity is below their request.
	Expanding []string
	// Orphans are the pods no StatefulSet controls yet, after a
	// recreation (set by Decide).
	Orphans []string
	// Mismatch, when set, says why the StatefulSet's claim templates cannot
	// follow the spec (a WAL volume added or removed after creation); the
	// spec is then invalid.
	Mismatch string
}

// Pending reports whether the operator still has something to do: a claim
// to patch or the StatefulSet to recreate.
func (v VolumePlan) Pending() bool { return len(v.Grow) > 0 || v.RecreateStatefulSet }

// InProgress reports whether a resize is still under way: Pending, or a
// claim still expanding, or a pod not yet adopted by the recreated
// StatefulSet.
func (v VolumePlan) InProgress() bool {
	return v.Pending() || len(v.Expanding) > 0 || len(v.Orphans) > 0
}

// wantSizes are the sizes the spec asks for, by claim template.
func wantSizes(c *kshakav1alpha1.KshakaCluster) map[string]resource.Quantity {
	w := map[string]resource.Quantity{volumeName: StorageSize(c)}
	if q, ok := WALSize(c); ok {
		w[walVolumeName] = q
	}
	return w
}

// PlanVolumes compares the claims and the StatefulSet's claim templates
// with the sizes of spec.storage. It is pure. Claims only grow: one larger
// than the spec (expanded by hand) is left alone.
func PlanVolumes(c *kshakav1alpha1.KshakaCluster, sts *appsv1.StatefulSet, claims []ClaimInfo) VolumePlan {
	var p VolumePlan
	want := wantSizes(c)
	for _, cl := range claims {
		w, ok := want[cl.Template]
		if !ok {
			continue
		}
		switch {
		case cl.Requested.Cmp(w) < 0:
			p.Grow = append(p.Grow, ClaimGrow{Name: cl.Name, From: cl.Requested, To: w})
		case cl.Capacity != nil && cl.Capacity.Cmp(cl.Requested) < 0:
			msg := fmt.Sprintf("%s (%s of %s)", cl.Name, cl.Capacity.String(), cl.Requested.String())
			if cl.FileSystemResizePending {
				msg += fmt.Sprintf(": the file system is resized when pod %s restarts", PodName(c, cl.Ordinal))
			}
			p.Expanding = append(p.Expanding, msg)
		}
	}
	if sts == nil {
		return p
	}
	have := map[string]resource.Quantity{}
	for _, t := range sts.Spec.VolumeClaimTemplates {
		have[t.Name] = t.Spec.Resources.Requests[corev1.ResourceStorage]
	}
	_, haveWAL := have[walVolumeName]
	_, wantWAL := want[walVolumeName]
	switch {
	case wantWAL && !haveWAL:
		p.Mismatch = fmt.Sprintf("spec.storage.wal is set, but StatefulSet %s was created without a WAL volume: "+
			"moving the acceptors' write-ahead logs would lose their unflushed writes; remove spec.storage.wal", sts.Name)
		return p
	case haveWAL && !wantWAL:
		p.Mismatch = fmt.Sprintf("StatefulSet %s has a WAL volume, but spec.storage.wal is unset: "+
			"the acceptors' write-ahead logs are on it; set spec.storage.wal again", sts.Name)
		return p
	}
	for name, w := range want {
		if h := have[name]; h.Cmp(w) != 0 {
			p.RecreateStatefulSet = true
		}
	}
	return p
}

// resizeMessage is the Progressing message of a resize.
func resizeMessage(v VolumePlan) string {
	var parts []string
	if len(v.Grow) > 0 {
		var g []string
		for _, c := range v.Grow {
			g = append(g, fmt.Sprintf("%s %s → %s", c.Name, c.From.String(), c.To.String()))
		}
		parts = append(parts, "requesting "+strings.Join(g, ", "))
	}
	if v.RecreateStatefulSet {
		parts = append(parts, "recreating the StatefulSet with the new volume sizes (its pods keep running)")
	}
	if len(v.Orphans) > 0 {
		parts = append(parts, "waiting for the StatefulSet to adopt pods "+strings.Join(v.Orphans, ", "))
	}
	if len(v.Expanding) > 0 {
		parts = append(parts, "waiting for the volumes to be expanded: "+strings.Join(v.Expanding, ", "))
	}
	return strings.Join(parts, "; ")
}

// claimInfo reads a claim of c's; ok is false for a claim that is not one
// of its members' (data-<pod> or wal-<pod>).
func claimInfo(c *kshakav1alpha1.KshakaCluster, pvc *corev1.PersistentVolumeClaim) (ClaimInfo, bool) {
	for _, tmpl := range []string{volumeName, walVolumeName} {
		rest, ok := strings.CutPrefix(pvc.Name, tmpl+"-")
		if !ok {
			continue
		}
		ord, ok := Ordinal(c, rest)
		if !ok {
			return ClaimInfo{}, false
		}
		info := ClaimInfo{Name: pvc.Name, Template: tmpl, Ordinal: ord, Requested: pvc.Spec.Resources.Requests[corev1.ResourceStorage]}
		if q, ok := pvc.Status.Capacity[corev1.ResourceStorage]; ok && pvc.Status.Phase == corev1.ClaimBound {
			info.Capacity = &q
		}
		for _, cond := range pvc.Status.Conditions {
			if cond.Type == corev1.PersistentVolumeClaimFileSystemResizePending && cond.Status == corev1.ConditionTrue {
				info.FileSystemResizePending = true
			}
		}
		return info, true
	}
	return ClaimInfo{}, false
}

// resize carries out a VolumePlan: it patches each claim to its new size
// and, when recreate is allowed (no membership change in progress), deletes
// the StatefulSet with its pods orphaned, so that applyObjects creates it
// again with the new claim templates. It returns the events of what it did;
// a refused patch is returned as an error that says what to do.
func (r *Reconciler) resize(ctx context.Context, c *kshakav1alpha1.KshakaCluster, v VolumePlan, recreate bool) ([]Event, error) {
	var events []Event
	for _, g := range v.Grow {
		pvc := &corev1.PersistentVolumeClaim{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: g.Name}, pvc); err != nil {
			if client.IgnoreNotFound(err) == nil {
				continue
			}
			return events, fmt.Errorf("while reading volume claim %s: %w", g.Name, err)
		}
		if pvc.Labels[LabelClusterUID] != string(c.UID) {
			continue
		}
		if cur := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; cur.Cmp(g.To) >= 0 {
			continue
		}
		patch := client.MergeFromWithOptions(pvc.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if pvc.Spec.Resources.Requests == nil {
			pvc.Spec.Resources.Requests = corev1.ResourceList{}
		}
		pvc.Spec.Resources.Requests[corev1.ResourceStorage] = g.To
		if err := r.Patch(ctx, pvc, patch); err != nil {
			fix := "its StorageClass must have allowVolumeExpansion: true"
			if cls := pvc.Spec.StorageClassName; cls != nil && *cls != "" {
				fix = fmt.Sprintf("StorageClass %s must have allowVolumeExpansion: true (kubectl patch storageclass %s -p '{\"allowVolumeExpansion\":true}')", *cls, *cls)
			}
			return events, fmt.Errorf("while requesting %s for volume claim %s (now %s): %w; the claim must be bound and %s; the operator retries",
				g.To.String(), g.Name, g.From.String(), err, fix)
		}
		events = append(events, Event{Type: corev1.EventTypeNormal, Reason: EventVolumeExpansion,
			Message: fmt.Sprintf("Requested %s for volume claim %s (was %s)", g.To.String(), g.Name, g.From.String())})
	}
	if !v.RecreateStatefulSet || !recreate {
		return events, nil
	}
	sts := &appsv1.StatefulSet{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: StatefulSetName(c)}, sts); err != nil {
		return events, client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(sts, c) || !sts.DeletionTimestamp.IsZero() {
		return events, nil
	}
	if err := r.Delete(ctx, sts, client.Preconditions{UID: &sts.UID}, client.PropagationPolicy(metav1.DeletePropagationOrphan)); err != nil {
		return events, client.IgnoreNotFound(err)
	}
	events = append(events, Event{Type: corev1.EventTypeNormal, Reason: EventVolumeExpansion,
		Message: fmt.Sprintf("Recreating StatefulSet %s with the new volume sizes; its pods keep running", sts.Name)})
	return events, nil
}

// claimNames are the names of the volume claims of the member with the
// given ordinal, data first.
func claimNames(c *kshakav1alpha1.KshakaCluster, ord int32) []string {
	return []string{PVCName(c, ord), WALPVCName(c, ord)}
}

// sortedClaims returns claims sorted by name, for a stable plan.
func sortedClaims(m map[string]ClaimInfo) []ClaimInfo {
	out := make([]ClaimInfo, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ClaimInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
