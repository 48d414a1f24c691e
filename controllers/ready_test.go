package controllers

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// readyStatus is the status of a healthy, converged cluster of 3 as the
// reconciler records it (Decide's conditions, then TLSReady and
// NetworkPolicyReady).
func readyStatus(t *testing.T) (*kshakav1alpha1.KshakaCluster, *kshakav1alpha1.KshakaClusterStatus) {
	t.Helper()
	s := stable(t, 3)
	p := s.step(noCrash)
	st := p.Status.DeepCopy()
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kshakav1alpha1.ConditionTLSReady, Status: metav1.ConditionTrue, Reason: ReasonCertificatesValid})
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kshakav1alpha1.ConditionNetworkPolicyReady, Status: metav1.ConditionTrue, Reason: ReasonNetworkPolicyApplied})
	return s.c.DeepCopy(), st
}

func TestReadyCondition(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(c *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus)
		reason string // "" : Ready
		msg    string
	}{
		{name: "healthy", modify: func(*kshakav1alpha1.KshakaCluster, *kshakav1alpha1.KshakaClusterStatus) {}},
		{name: "TLS disabled is ready", modify: func(_ *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus) {
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kshakav1alpha1.ConditionTLSReady, Status: metav1.ConditionFalse, Reason: ReasonTLSDisabled})
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kshakav1alpha1.ConditionNetworkPolicyReady, Status: metav1.ConditionFalse, Reason: ReasonNetworkPolicyDisabled})
		}},
		{name: "paused", modify: func(c *kshakav1alpha1.KshakaCluster, _ *kshakav1alpha1.KshakaClusterStatus) { c.Spec.Paused = true },
			reason: ReasonPaused, msg: "spec.paused is set"},
		{name: "quorum lost", modify: func(_ *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus) {
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kshakav1alpha1.ConditionAvailable, Status: metav1.ConditionFalse, Reason: ReasonQuorumLost, Message: "1 of 3 members serving"})
			st.Quorum = kshakav1alpha1.QuorumLost
		}, reason: ReasonNotAvailable, msg: "Available is False (QuorumLost: 1 of 3 members serving)"},
		{name: "one member down", modify: func(_ *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus) {
			st.Quorum, st.ReadyReplicas = kshakav1alpha1.QuorumDegraded, 2
		}, reason: ReasonMembersNotServing, msg: "2 of 3 members ready, quorum Degraded"},
		{name: "membership change", modify: func(_ *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus) {
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kshakav1alpha1.ConditionProgressing, Status: metav1.ConditionTrue, Reason: "Add", Message: "Rescan of Add"})
		}, reason: ReasonProgressing, msg: "Progressing is True (Add: Rescan of Add)"},
		{name: "certificates missing", modify: func(_ *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus) {
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kshakav1alpha1.ConditionTLSReady, Status: metav1.ConditionFalse, Reason: ReasonWaitingForCertManager, Message: "waiting"})
		}, reason: ReasonTLSNotReady},
		{name: "network policy failed", modify: func(_ *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus) {
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kshakav1alpha1.ConditionNetworkPolicyReady, Status: metav1.ConditionFalse, Reason: ReasonOperatorNamespaceUnknown})
		}, reason: ReasonNetworkPolicy},
		{name: "restore not started", modify: func(c *kshakav1alpha1.KshakaCluster, _ *kshakav1alpha1.KshakaClusterStatus) {
			c.Spec.Bootstrap = &kshakav1alpha1.BootstrapSpec{FromBackup: &kshakav1alpha1.BackupSource{BackupName: "b"}}
		}, reason: ReasonNotRestored, msg: "the restore has not started"},
		{name: "restore running", modify: func(c *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus) {
			c.Spec.Bootstrap = &kshakav1alpha1.BootstrapSpec{FromBackup: &kshakav1alpha1.BackupSource{BackupName: "b"}}
			st.Restore = &kshakav1alpha1.RestoreStatus{Phase: kshakav1alpha1.BackupRunning, Message: "42%"}
		}, reason: ReasonNotRestored, msg: "the restore is Running: 42%"},
		{name: "restored", modify: func(c *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus) {
			c.Spec.Bootstrap = &kshakav1alpha1.BootstrapSpec{FromBackup: &kshakav1alpha1.BackupSource{BackupName: "b"}}
			st.Restore = &kshakav1alpha1.RestoreStatus{Phase: kshakav1alpha1.BackupCompleted}
		}},
		{name: "every unmet requirement is named, the first is the reason", modify: func(c *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus) {
			c.Spec.Paused = true
			st.Quorum, st.ReadyReplicas = kshakav1alpha1.QuorumDegraded, 2
		}, reason: ReasonPaused, msg: "spec.paused is set: the operator makes no changes; 2 of 3 members ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, st := readyStatus(t)
			tc.modify(c, st)
			got := ReadyCondition(c, st)
			if got.Type != kshakav1alpha1.ConditionReady || got.ObservedGeneration != c.Generation {
				t.Fatalf("condition %+v", got)
			}
			if tc.reason == "" {
				if got.Status != metav1.ConditionTrue || got.Reason != ReasonReady {
					t.Fatalf("Ready %+v, want True", got)
				}
				return
			}
			if got.Status != metav1.ConditionFalse || got.Reason != tc.reason || !strings.Contains(got.Message, tc.msg) {
				t.Fatalf("Ready %+v, want False/%s with %q", got, tc.reason, tc.msg)
			}
		})
	}
}

// TestDecideInvalidSpec: an invalid knob makes the cluster Degraded
// (InvalidSpec) and not Ready, and the plan carries the error so the
// reconciler leaves the StatefulSet alone; a resize shows as Progressing.
func TestDecideInvalidSpec(t *testing.T) {
	s := stable(t, 3)
	s.c.Spec.ExtraArgs = []string{"--listen=:9999"}
	s.c.Generation++
	p := s.step(noCrash)
	if !strings.Contains(p.SpecError, `"--listen=:9999" sets --listen`) {
		t.Fatalf("SpecError %q", p.SpecError)
	}
	if c := condition(p, kshakav1alpha1.ConditionDegraded); c.Status != metav1.ConditionTrue || c.Reason != ReasonInvalidSpec || !strings.Contains(c.Message, "--listen") {
		t.Fatalf("Degraded %+v", c)
	}
	if r := ReadyCondition(s.c, &p.Status); r.Status != metav1.ConditionFalse || r.Reason != ReasonInvalidSpec {
		t.Fatalf("Ready %+v", r)
	}

	s.c.Spec.ExtraArgs = nil
	s.step(noCrash)
	// The sim's StatefulSet follows the spec at once; the one observed
	// here still has the old claim template.
	o := s.observe()
	o.Cluster.Spec.Storage.Size = ptr.To(resource.MustParse("2Gi"))
	p = Decide(o)
	if p.SpecError != "" || !p.Volumes.RecreateStatefulSet {
		t.Fatalf("plan %+v", p)
	}
	if c := condition(p, kshakav1alpha1.ConditionProgressing); c.Status != metav1.ConditionTrue || c.Reason != ReasonResizing ||
		!strings.Contains(c.Message, "recreating the StatefulSet") {
		t.Fatalf("Progressing %+v", c)
	}
	if c := condition(p, kshakav1alpha1.ConditionDegraded); c.Status != metav1.ConditionFalse {
		t.Fatalf("Degraded %+v", c)
	}
}

// TestDecideOrphanedPods: after the StatefulSet is recreated for new claim
// templates, pods it has not adopted yet keep the resize in progress.
func TestDecideOrphanedPods(t *testing.T) {
	s := stable(t, 3)
	o := s.observe()
	pod := o.Pods[1]
	pod.Orphan = true
	o.Pods[1] = pod
	p := Decide(o)
	if c := condition(p, kshakav1alpha1.ConditionProgressing); c.Status != metav1.ConditionTrue || c.Reason != ReasonResizing ||
		!strings.Contains(c.Message, "waiting for the StatefulSet to adopt pods kc-1") {
		t.Fatalf("Progressing %+v", c)
	}
	if p.Volumes.Pending() {
		t.Fatalf("nothing to patch or recreate: %+v", p.Volumes)
	}
}
