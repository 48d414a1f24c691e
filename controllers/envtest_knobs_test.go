package controllers

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// ready: the Ready condition is True for the current generation.
func ready(kc *kshakav1alpha1.KshakaCluster) bool {
	c := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == kc.Generation
}

func (f *fixture) patch(modify func(kc *kshakav1alpha1.KshakaCluster)) {
	f.t.Helper()
	kc := f.get()
	patch := client.MergeFrom(kc.DeepCopy())
	modify(kc)
	if err := f.c.Patch(context.Background(), kc, patch); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) statefulSet() *appsv1.StatefulSet {
	f.t.Helper()
	var sts appsv1.StatefulSet
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "kc"}, &sts); err != nil {
		f.t.Fatal(err)
	}
	return &sts
}

func (f *fixture) pods() map[string]corev1.Pod {
	f.t.Helper()
	var list corev1.PodList
	if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	out := map[string]corev1.Pod{}
	for _, p := range list.Items {
		out[p.Name] = p
	}
	return out
}

func (f *fixture) claims() map[string]corev1.PersistentVolumeClaim {
	f.t.Helper()
	var list corev1.PersistentVolumeClaimList
	if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	out := map[string]corev1.PersistentVolumeClaim{}
	for _, p := range list.Items {
		if p.DeletionTimestamp.IsZero() {
			out[p.Name] = p
		}
	}
	return out
}

// storageClass creates a StorageClass of the test's own (they are cluster
// scoped), allowing volume expansion or not.
func storageClass(t *testing.T, c client.Client, name string, expand bool) *storagev1.StorageClass {
	t.Helper()
	sc := &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: name},
		Provisioner:          "kshaka.io/envtest",
		AllowVolumeExpansion: ptr.To(expand),
	}
	if err := c.Create(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), sc) })
	return sc
}

// TestEnvtestKnobs: spec.podMetadata, spec.extraArgs, spec.env and a WAL
// volume reach the pods; the cluster becomes Ready; the WAL claim of a
// removed member is deleted with its data claim; an argument that overrides
// the operator's is refused (Degraded/InvalidSpec, not Ready, a Warning
// event) and leaves the StatefulSet as it was, until it is removed.
func TestEnvtestKnobs(t *testing.T) {
	f := newFixtureSpec(t, 3, kshakav1alpha1.AddressModePodIP, func(kc *kshakav1alpha1.KshakaCluster) {
		kc.Spec.PodMetadata = &kshakav1alpha1.PodMetadata{
			Labels:      map[string]string{"team": "storage"},
			Annotations: map[string]string{"example.com/backup": "skip"},
		}
		kc.Spec.ExtraArgs = []string{"--cache-size=8388608"}
		kc.Spec.Env = []corev1.EnvVar{{Name: "GOMAXPROCS", Value: "2"}}
		kc.Spec.Storage.WAL = &kshakav1alpha1.VolumeSpec{Size: ptr.To(resource.MustParse("512Mi"))}
	})
	cfg := f.waitConverged()
	kc := f.eventually(30*time.Second, "Ready", ready)
	if c := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionReady); c.Reason != ReasonReady {
		t.Fatalf("Ready %+v", c)
	}
	pods := f.pods()
	for _, name := range []string{"kc-0", "kc-1", "kc-2"} {
		p := pods[name]
		ctr := p.Spec.Containers[0]
		if p.Labels["team"] != "storage" || p.Labels[LabelInstance] != "kc" || p.Annotations["example.com/backup"] != "skip" {
			t.Fatalf("pod %s metadata %v %v", name, p.Labels, p.Annotations)
		}
		if !slices.Contains(ctr.Args, "--cache-size=8388608") || !slices.Contains(ctr.Args, "--wal-dir=/var/lib/kshaka-wal") ||
			!slices.ContainsFunc(ctr.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMAXPROCS" && e.Value == "2" }) {
			t.Fatalf("pod %s args %v env %v", name, ctr.Args, ctr.Env)
		}
	}
	claims := f.claims()
	for _, name := range []string{"wal-kc-0", "wal-kc-1", "wal-kc-2"} {
		if cl, ok := claims[name]; !ok || cl.Labels[LabelClusterUID] != string(kc.UID) || !cl.Spec.Resources.Requests.Storage().Equal(resource.MustParse("512Mi")) {
			t.Fatalf("claim %s: %+v", name, cl)
		}
	}
	keys := map[string][]byte{}
	f.write(cfg, "k", 10, keys)

	// A member removed takes both its claims with it.
	f.scale(4)
	f.waitConverged()
	f.scale(3)
	cfg = f.waitConverged()
	f.eventually(30*time.Second, "kc-3's claims to be deleted", func(*kshakav1alpha1.KshakaCluster) bool {
		return !f.pvcExists("data-kc-3") && !f.pvcExists("wal-kc-3")
	})
	f.checkAll(cfg, keys)

	// An argument the operator sets is refused.
	before := f.statefulSet()
	f.patch(func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.ExtraArgs = append(kc.Spec.ExtraArgs, "--listen=:1") })
	kc = f.eventually(30*time.Second, "Degraded/InvalidSpec", func(kc *kshakav1alpha1.KshakaCluster) bool {
		c := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionDegraded)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == ReasonInvalidSpec && c.ObservedGeneration == kc.Generation
	})
	if c := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionDegraded); !strings.Contains(c.Message, `spec.extraArgs[1]: "--listen=:1" sets --listen, which the operator sets itself`) {
		t.Fatalf("Degraded message %q", c.Message)
	}
	if c := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != ReasonInvalidSpec {
		t.Fatalf("Ready %+v", c)
	}
	f.eventuallyEvents(EventInvalidSpec)
	if after := f.statefulSet(); after.Annotations[AnnotationSpecHash] != before.Annotations[AnnotationSpecHash] ||
		slices.Contains(after.Spec.Template.Spec.Containers[0].Args, "--listen=:1") {
		t.Fatalf("the StatefulSet was changed by an invalid spec: args %v", after.Spec.Template.Spec.Containers[0].Args)
	}
	f.patch(func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.ExtraArgs = kc.Spec.ExtraArgs[:1] })
	f.eventually(30*time.Second, "Ready again", ready)
}

// TestEnvtestVolumeExpansion grows storage.size and storage.wal.size: every
// claim gets the new request, the StatefulSet is recreated with the new
// claim templates while its pods keep running (same pods, same
// incarnations, no membership change), a member added afterwards gets the
// new size, and the cluster is Ready again with every key intact.
func TestEnvtestVolumeExpansion(t *testing.T) {
	_, c := startEnv(t)
	class := "expandable-" + newNamespace(t, c)
	storageClass(t, c, class, true)
	f := newFixtureSpec(t, 3, kshakav1alpha1.AddressModePodIP, func(kc *kshakav1alpha1.KshakaCluster) {
		kc.Spec.Storage.StorageClassName = ptr.To(class)
		kc.Spec.Storage.WAL = &kshakav1alpha1.VolumeSpec{StorageClassName: ptr.To(class), Size: ptr.To(resource.MustParse("1Gi"))}
	})
	cfg := f.waitConverged()
	f.eventually(30*time.Second, "Ready", ready)
	keys := map[string][]byte{}
	f.write(cfg, "k", 20, keys)
	oldSTS := f.statefulSet()
	oldPods := f.pods()
	incarnations := map[string]uint64{}
	for _, m := range cfg.Members {
		incarnations[m.ID] = m.Incarnation
	}

	f.patch(func(kc *kshakav1alpha1.KshakaCluster) {
		kc.Spec.Storage.Size = ptr.To(resource.MustParse("2Gi"))
		kc.Spec.Storage.WAL.Size = ptr.To(resource.MustParse("3Gi"))
	})
	want := map[string]resource.Quantity{"data": resource.MustParse("2Gi"), "wal": resource.MustParse("3Gi")}
	kc := f.eventually(60*time.Second, "every claim and the StatefulSet to have the new sizes, and Ready", func(kc *kshakav1alpha1.KshakaCluster) bool {
		for name, cl := range f.claims() {
			tmpl, _, _ := strings.Cut(name, "-")
			if w := want[tmpl]; !cl.Spec.Resources.Requests.Storage().Equal(w) || !cl.Status.Capacity.Storage().Equal(w) {
				return false
			}
		}
		var sts appsv1.StatefulSet
		if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "kc"}, &sts); err != nil || sts.UID == oldSTS.UID {
			return false
		}
		for _, tmpl := range sts.Spec.VolumeClaimTemplates {
			if !tmpl.Spec.Resources.Requests.Storage().Equal(want[tmpl.Name]) {
				return false
			}
		}
		if ready(kc) {
			// Ready waits for the new StatefulSet to adopt every pod.
			for name, p := range f.pods() {
				if !metav1.IsControlledBy(&p, &sts) {
					t.Fatalf("Ready while pod %s is not adopted: owners %+v\n%s", name, p.OwnerReferences, dumpStatus(kc))
				}
			}
			return true
		}
		return false
	})
	if uint64(kc.Status.Configuration.Epoch) != cfg.Epoch {
		t.Fatalf("epoch %d after a resize, want %d: the membership must not change", kc.Status.Configuration.Epoch, cfg.Epoch)
	}
	sts := f.statefulSet()
	for name, p := range f.pods() {
		if old, ok := oldPods[name]; !ok || old.UID != p.UID || !metav1.IsControlledBy(&p, sts) {
			t.Fatalf("pod %s was restarted or not adopted by the new StatefulSet: uid %s (was %s), owners %+v", name, p.UID, old.UID, p.OwnerReferences)
		}
	}
	for id, inc := range incarnations {
		if got := f.kl.incarnation(id); got != inc {
			t.Fatalf("%s runs incarnation %x, was %x", id, got, inc)
		}
	}
	f.eventuallyEvents(EventVolumeExpansion)
	f.checkAll(cfg, keys)

	// A member added now gets the new sizes.
	f.scale(4)
	cfg = f.waitConverged()
	claims := f.claims()
	data, wal := claims["data-kc-3"].Spec.Resources.Requests, claims["wal-kc-3"].Spec.Resources.Requests
	if !data.Storage().Equal(want["data"]) || !wal.Storage().Equal(want["wal"]) {
		t.Fatalf("kc-3's claims request %v and %v", data, wal)
	}
	f.checkAll(cfg, keys)
}

// TestEnvtestVolumeExpansionRefused: with a StorageClass that does not
// allow expansion, the API server refuses the new size; the cluster says
// so (Degraded/VolumeExpansionFailed, not Ready) and keeps serving. Once
// the class allows expansion, the resize completes.
func TestEnvtestVolumeExpansionRefused(t *testing.T) {
	_, c := startEnv(t)
	class := "fixed-" + newNamespace(t, c)
	sc := storageClass(t, c, class, false)
	f := newFixtureSpec(t, 3, kshakav1alpha1.AddressModePodIP, func(kc *kshakav1alpha1.KshakaCluster) {
		kc.Spec.Storage.StorageClassName = ptr.To(class)
	})
	f.waitConverged()
	f.patch(func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Storage.Size = ptr.To(resource.MustParse("2Gi")) })
	kc := f.eventually(30*time.Second, "Degraded/VolumeExpansionFailed", func(kc *kshakav1alpha1.KshakaCluster) bool {
		c := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionDegraded)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == ReasonVolumeExpansionFailed
	})
	deg := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionDegraded)
	if !strings.Contains(deg.Message, "StorageClass "+class+" must have allowVolumeExpansion: true") {
		t.Fatalf("Degraded message %q", deg.Message)
	}
	if r := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionReady); r.Status != metav1.ConditionFalse {
		t.Fatalf("Ready %+v", r)
	}
	if !meta.IsStatusConditionTrue(kc.Status.Conditions, kshakav1alpha1.ConditionAvailable) || kc.Status.Quorum != kshakav1alpha1.QuorumHealthy {
		t.Fatalf("a refused resize took the cluster down: %s", dumpStatus(kc))
	}
	f.eventuallyEvents(EventVolumeExpansionFailed)

	patch := client.MergeFrom(sc.DeepCopy())
	sc.AllowVolumeExpansion = ptr.To(true)
	if err := c.Patch(context.Background(), sc, patch); err != nil {
		t.Fatal(err)
	}
	f.eventually(60*time.Second, "the resize to complete and Ready", func(kc *kshakav1alpha1.KshakaCluster) bool {
		for _, cl := range f.claims() {
			if !cl.Spec.Resources.Requests.Storage().Equal(resource.MustParse("2Gi")) {
				return false
			}
		}
		return ready(kc)
	})
}

// TestEnvtestQuorumLoss: two of three acceptors stop (their disks intact):
// the status says the quorum is lost (quorum Lost, Available False, Ready
// False), nothing is retired or changed; when they return, the cluster is
// Ready again with every key.
func TestEnvtestQuorumLoss(t *testing.T) {
	f := newFixture(t, 3)
	cfg := f.waitConverged()
	keys := map[string][]byte{}
	f.write(cfg, "k", 10, keys)
	f.kl.pause("kc-1")
	f.kl.pause("kc-2")
	kc := f.eventually(30*time.Second, "quorum Lost", func(kc *kshakav1alpha1.KshakaCluster) bool {
		return kc.Status.Quorum == kshakav1alpha1.QuorumLost
	})
	av := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionAvailable)
	if av.Status != metav1.ConditionFalse || av.Reason != ReasonQuorumLost || !strings.Contains(av.Message, "1 of 3 members serving") {
		t.Fatalf("Available %+v", av)
	}
	if r := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionReady); r.Status != metav1.ConditionFalse || r.Reason != ReasonNotAvailable {
		t.Fatalf("Ready %+v", r)
	}
	if len(kc.Status.RetiredIncarnations) != 0 || kc.Status.Transition != nil || uint64(kc.Status.Configuration.Epoch) != cfg.Epoch {
		t.Fatalf("the operator acted on a lost quorum: %s", dumpStatus(kc))
	}
	f.kl.resume("kc-1")
	f.kl.resume("kc-2")
	f.waitConverged()
	f.eventually(30*time.Second, "Ready", ready)
	f.checkAll(cfg, keys)
}

// TestEnvtestKubectlWaitReady: `kubectl wait --for=condition=Ready
// kshakacluster/NAME`, what GitOps pipelines run, returns once the cluster
// is Ready, and `--for=condition=Ready=false` once it loses its quorum.
func TestEnvtestKubectlWaitReady(t *testing.T) {
	f := newFixture(t, 3)
	assets, err := kubeAssets()
	if err != nil {
		t.Fatal(err)
	}
	user, err := testEnv.AddUser(envtest.User{Name: "kubectl-wait", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubectl, err := user.Kubectl()
	if err != nil {
		t.Fatal(err)
	}
	kubectl.Path = filepath.Join(assets, "kubectl")
	if _, err := os.Stat(kubectl.Path); err != nil {
		t.Fatalf("this test runs kubectl from %s (KUBEBUILDER_ASSETS or bin/k8s): run `make kube-binaries` first: %v", assets, err)
	}
	wait := func(cond string) {
		t.Helper()
		stdout, stderr, err := kubectl.Run("wait", "--for=condition="+cond, "kshakacluster/kc", "-n", f.ns, "--timeout=120s")
		if err != nil {
			out, _ := io.ReadAll(stdout)
			msg, _ := io.ReadAll(stderr)
			t.Fatalf("kubectl wait --for=condition=%s: %v\n%s%s\nstatus: %s", cond, err, out, msg, dumpStatus(f.get()))
		}
	}
	wait("Ready")
	if kc := f.get(); !ready(kc) || !converged(kc) {
		t.Fatalf("kubectl wait returned before the cluster was Ready: %s", dumpStatus(kc))
	}
	f.kl.pause("kc-1")
	f.kl.pause("kc-2")
	wait("Ready=false")
	f.kl.resume("kc-1")
	f.kl.resume("kc-2")
	wait("Ready")
}

// TestEnvtestStuckMembershipChange: a member stops in the middle of an add
// (during the rescan). The change waits — it is neither finished nor
// cancelled, nothing is retired — and the status names the member
// (Degraded, reason MemberUnreachable; the transition's step). When the
// member returns, the change completes with every key.
func TestEnvtestStuckMembershipChange(t *testing.T) {
	f := newFixture(t, 3)
	cfg := f.waitConverged()
	keys := map[string][]byte{}
	f.write(cfg, "k", 60, keys)
	f.scale(4)
	f.eventually(60*time.Second, "the rescan to be under way", func(kc *kshakav1alpha1.KshakaCluster) bool {
		tr := kc.Status.Transition
		return tr != nil && tr.Step == kshakav1alpha1.StepRescan && tr.KeysRescanned > 0
	})
	f.kl.pause("kc-0")
	kc := f.eventually(60*time.Second, "Degraded/MemberUnreachable naming kc-0", func(kc *kshakav1alpha1.KshakaCluster) bool {
		c := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionDegraded)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == ReasonMemberUnreachable && strings.Contains(c.Message, "kc-0")
	})
	tr := kc.Status.Transition
	if tr == nil || tr.Kind != kshakav1alpha1.TransitionAdd || len(kc.Status.RetiredIncarnations) != 0 {
		t.Fatalf("the change did not wait for kc-0: %s", dumpStatus(kc))
	}
	if r := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionReady); r.Status != metav1.ConditionFalse {
		t.Fatalf("Ready %+v during a stuck change", r)
	}
	t.Logf("stuck at step %s: %s", tr.Step, meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionDegraded).Message)
	f.kl.resume("kc-0")
	cfg = f.waitConverged()
	if len(cfg.Members) != 4 || cfg.Epoch != 3 {
		t.Fatalf("after kc-0 returned: %s", cfg)
	}
	f.checkAll(cfg, keys)
}
