//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
	"github.com/kshaka-io/kshaka/localkube"
	"github.com/kshaka-io/kshaka/proposer"
)

const (
	ns   = "e2e"
	name = "kc"
	// settle bounds every wait for the operator to reach a state.
	settle = 4 * time.Minute
)

// TestHelm installs the operator with Helm and takes one KshakaCluster
// through its life, each step under a checked client workload. The steps
// share the cluster and run in order; a failed step stops the rest.
func TestHelm(t *testing.T) {
	e := newEnv(t)
	steps := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"InstallWithHelm", testInstallHelm},
		{"Create3Available", testCreate},
		{"TLSIdentitiesAndRoles", testTLSRoles},
		{"NetworkPolicyObject", testNetworkPolicy},
		{"Scale3To5To3UnderLoad", testScale},
		{"RotateCAUnderLoad", testRotateCA},
		{"DeletePodKeepsIdentity", testDeletePod},
		{"ImageChangeRollsOnePodAtATime", testRollingUpdate},
		{"DiskLossReplacesMember", testDiskLoss},
		{"KubectlPluginStatusReport", testPlugin},
		{"OperatorKilledMidChangeResumes", testOperatorKilled},
		{"PausedFreezesChanges", testPaused},
		{"UninstallKeepsDataReinstallResumes", testUninstall},
		{"BackupRestoreIntoNewCluster", testBackupRestore},
	}
	for _, s := range steps {
		start := time.Now()
		ok := t.Run(s.name, func(t *testing.T) { s.fn(t, e) })
		t.Logf("%s: %v in %s", s.name, map[bool]string{true: "PASS", false: "FAIL"}[ok], time.Since(start).Round(time.Second))
		if !ok {
			return
		}
	}
}

// TestInstaller installs the operator from dist/install.yaml (make
// build-installer) with kubectl apply --server-side.
func TestInstaller(t *testing.T) {
	e := newEnv(t)
	e.run(t, "kubectl", "apply", "--server-side", "-f", filepath.Join(e.repo, "dist", "install.yaml"))
	e.waitOperator(t)
	// TestHelm runs the default address mode (DNS); this shorter scenario
	// keeps PodIP covered.
	e.createCluster(t, ns, name, 3, kshakav1alpha1.AddressModePodIP)
	kc := e.waitStable(t, ns, name, 3, settle)
	if a := endpoints(kc)[0]; !strings.HasPrefix(a, "127.") {
		t.Errorf("PodIP mode: member address %s, want a pod IP", a)
	}
	w := startWorkload(t, endpoints(kc), 3, "installer")
	time.Sleep(10 * time.Second)
	w.stop(endpoints(kc), 20)
}

func testInstallHelm(t *testing.T, e *env) {
	e.helmInstall(t)
	out := e.run(t, "kubectl", "get", "crd", "kshakaclusters.kshaka.io", "-o", "name")
	if !strings.Contains(out, "kshakaclusters.kshaka.io") {
		t.Fatalf("the CRD is not installed: %s", out)
	}
}

// testCreate creates the cluster in the default address mode, DNS: every
// member's address is its pod's name under the peer Service, which the
// operator (in a pod) and the tests' clients (on the host, through
// localkube's DNS) resolve, with TLS checking those names.
func testCreate(t *testing.T, e *env) {
	e.createCluster(t, ns, name, 3, "")
	kc := e.waitStable(t, ns, name, 3, settle)
	for _, a := range endpoints(kc) {
		if suffix := fmt.Sprintf(".%s-peers.%s.svc", name, ns); !strings.HasPrefix(a, name+"-") || !strings.Contains(a, suffix+":") {
			t.Errorf("member address %s, want %s-N%s:PORT (the default DNS mode)", a, name, suffix)
		}
	}
	if kc.Status.Quorum != kshakav1alpha1.QuorumHealthy {
		t.Errorf("quorum %q, want %q", kc.Status.Quorum, kshakav1alpha1.QuorumHealthy)
	}
	w := startWorkload(t, endpoints(kc), 3, "create")
	time.Sleep(5 * time.Second)
	w.stop(endpoints(kc), 10)
}

func testScale(t *testing.T, e *env) {
	before := e.get(t, ns, name)
	w := startWorkload(t, endpoints(before), 3, "scale")
	obs := e.observe(ns, name)
	time.Sleep(3 * time.Second)
	e.update(t, ns, name, func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Replicas = 5 })
	e.waitStable(t, ns, name, 5, settle)
	time.Sleep(2 * time.Second)
	e.update(t, ns, name, func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Replicas = 3 })
	after := e.waitStable(t, ns, name, 3, settle)
	time.Sleep(2 * time.Second)
	steps := obs.stop()
	w.stop(endpoints(after), 50)
	t.Logf("transitions: %s", strings.Join(steps, " → "))
	if k := kinds(steps); !slices.Contains(k, "Add") || !slices.Contains(k, "Remove") {
		t.Errorf("transition kinds %v, want Add and Remove", k)
	}
	if got, want := after.Status.Configuration.Epoch, before.Status.Configuration.Epoch+8; got < want {
		t.Errorf("epoch %d, want ≥ %d (4 one-member changes, 2 epochs each)", got, want)
	}
	// Scale down removes the PVC last.
	e.eventually(t, time.Minute, "the PVCs of the removed members are deleted", func(ctx context.Context) (bool, error) {
		var pvcs corev1.PersistentVolumeClaimList
		err := e.cl.List(ctx, &pvcs, client.InNamespace(ns))
		return err == nil && len(pvcs.Items) == 3, err
	})
}

// pod returns the pod, failing the test if it cannot be read.
func (e *env) pod(t *testing.T, podName string) *corev1.Pod {
	t.Helper()
	var p corev1.Pod
	must(t, e.cl.Get(ctxT(t, 30*time.Second), client.ObjectKey{Namespace: ns, Name: podName}, &p))
	return &p
}

// waitNewPod waits until podName is a different, ready pod than old.
func (e *env) waitNewPod(t *testing.T, podName string, old *corev1.Pod) {
	t.Helper()
	e.eventually(t, settle, podName+" is recreated and ready", func(ctx context.Context) (bool, error) {
		var p corev1.Pod
		err := e.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: podName}, &p)
		return err == nil && p.UID != old.UID && localkube.PodReady(&p), nil
	})
}

func testDeletePod(t *testing.T, e *env) {
	before := e.get(t, ns, name)
	var pvc corev1.PersistentVolumeClaim
	must(t, e.cl.Get(ctxT(t, 30*time.Second), client.ObjectKey{Namespace: ns, Name: "data-" + name + "-1"}, &pvc))
	old := e.pod(t, name+"-1")
	w := startWorkload(t, endpoints(before), 3, "podkill")
	obs := e.observe(ns, name)
	time.Sleep(3 * time.Second)
	must(t, e.cl.Delete(ctxT(t, 30*time.Second), old))
	e.waitNewPod(t, name+"-1", old)
	after := e.waitStable(t, ns, name, 3, settle)
	time.Sleep(3 * time.Second)
	steps := obs.stop()
	w.stop(endpoints(after), 30)
	t.Logf("transitions: %v", steps)

	if !mapsEqual(members(before), members(after)) {
		t.Errorf("members changed: before %v, after %v", members(before), members(after))
	}
	// In the DNS mode of this scenario the address of a recreated pod is
	// its unchanged DNS name, so nothing needs to change; in PodIP mode the
	// operator would install the same membership with the new IP
	// (Readdress, one epoch). Anything else is a membership change.
	for _, k := range kinds(steps) {
		if k != string(kshakav1alpha1.TransitionReaddress) {
			t.Errorf("transition %s after a pod restart; want none or Readdress", k)
		}
	}
	if d := after.Status.Configuration.Epoch - before.Status.Configuration.Epoch; d > 1 {
		t.Errorf("epoch went from %d to %d; a restart with the same volume needs at most one Readdress",
			before.Status.Configuration.Epoch, after.Status.Configuration.Epoch)
	}
	var pvc2 corev1.PersistentVolumeClaim
	must(t, e.cl.Get(ctxT(t, 30*time.Second), client.ObjectKey{Namespace: ns, Name: pvc.Name}, &pvc2))
	if pvc2.UID != pvc.UID {
		t.Errorf("the PVC was replaced")
	}
}

// testRollingUpdate changes the acceptor image tag: the operator must
// restart the pods one at a time (never more than one missing or unready),
// keep members and incarnations, and keep a quorum serving throughout, while
// a checked workload runs.
func testRollingUpdate(t *testing.T, e *env) {
	before := e.get(t, ns, name)
	old := map[string]types.UID{}
	for i := range 3 {
		p := e.pod(t, fmt.Sprintf("%s-%d", name, i))
		old[p.Name] = p.UID
	}
	w := startWorkload(t, endpoints(before), 3, "rolling")
	obs := e.observe(ns, name)
	e.update(t, ns, name, func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Version = "v0.1.1" })

	maxDown := 0
	e.eventually(t, settle, "every acceptor pod is recreated from the new template", func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := e.cl.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/instance": name}); err != nil {
			return false, err
		}
		down, renewed := 3, 0
		for i := range pods.Items {
			p := &pods.Items[i]
			if localkube.PodReady(p) && p.DeletionTimestamp == nil {
				down--
			}
			if old[p.Name] != "" && p.UID != old[p.Name] && localkube.PodReady(p) {
				renewed++
			}
		}
		maxDown = max(maxDown, down)
		return renewed == 3, nil
	})
	after := e.waitStable(t, ns, name, 3, settle)
	steps := obs.stop()
	w.stop(endpoints(after), 30)
	t.Logf("transitions: %v; at most %d pod(s) down at once", steps, maxDown)
	if maxDown > 1 {
		t.Errorf("%d pods were down at once during the rolling update; want at most 1", maxDown)
	}
	if !mapsEqual(members(before), members(after)) {
		t.Errorf("members changed: before %v, after %v", members(before), members(after))
	}
	for _, k := range kinds(steps) {
		if k != string(kshakav1alpha1.TransitionReaddress) {
			t.Errorf("transition %s during a rolling update; want none or Readdress", k)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func testDiskLoss(t *testing.T, e *env) {
	before := e.get(t, ns, name)
	victim := name + "-1"
	oldInc := members(before)[victim]
	old := e.pod(t, victim)
	w := startWorkload(t, endpoints(before), 3, "diskloss")
	obs := e.observe(ns, name)
	time.Sleep(3 * time.Second)
	// The claim stays Terminating until its pod is gone; then the
	// StatefulSet controller creates the pod with a fresh, empty claim.
	must(t, e.cl.Delete(ctxT(t, 30*time.Second), &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-" + victim}}))
	must(t, e.cl.Delete(ctxT(t, 30*time.Second), old))
	e.waitNewPod(t, victim, old)
	var after *kshakav1alpha1.KshakaCluster
	e.eventually(t, settle, victim+" is a member again with a new incarnation", func(ctx context.Context) (bool, error) {
		kc := e.get(t, ns, name)
		inc, ok := members(kc)[victim]
		after = kc
		return stable(kc, 3) && ok && inc != "" && inc != oldInc, nil
	})
	time.Sleep(3 * time.Second)
	steps := obs.stop()
	w.stop(endpoints(after), 30)
	t.Logf("transitions: %s", strings.Join(steps, " → "))
	t.Logf("%s: incarnation %s → %s; %s", victim, oldInc, members(after)[victim], describe(after))
	k := kinds(steps)
	if !slices.Contains(k, "Remove") || !slices.Contains(k, "Add") {
		t.Errorf("transition kinds %v, want Remove and Add", k)
	}
	if !slices.ContainsFunc(steps, func(s string) bool { return strings.Contains(s, "/Replace/") }) {
		t.Errorf("no transition with reason Replace in %v", steps)
	}
	if !slices.Contains(after.Status.RetiredIncarnations, oldInc) {
		t.Logf("note: old incarnation %s is not listed in status.retiredIncarnations %v", oldInc, after.Status.RetiredIncarnations)
	}
}

func testOperatorKilled(t *testing.T, e *env) {
	before := e.get(t, ns, name)
	op := e.waitOperator(t)
	// Enough keys that the rescan takes a few batches, so the operator can
	// be killed in the middle of it.
	seed(t, endpoints(before), "opkill-seed", 3000)
	w := startWorkload(t, endpoints(before), 3, "opkill")
	time.Sleep(2 * time.Second)
	e.update(t, ns, name, func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Replicas = 4 })
	// Kill the operator as soon as the change is past its first step: the
	// joint configuration is being installed or the keys rescanned.
	mid := e.waitFor(t, 2*time.Minute, "the Add is past StartMember", func(kc *kshakav1alpha1.KshakaCluster) bool {
		tr := kc.Status.Transition
		if tr == nil && stable(kc, 4) {
			t.Fatalf("the Add finished before it could be interrupted")
		}
		return tr != nil && tr.Kind == kshakav1alpha1.TransitionAdd &&
			(tr.Step == kshakav1alpha1.StepRescan || tr.Step == kshakav1alpha1.StepInstallFinal)
	})
	zero := int64(0)
	must(t, e.cl.Delete(ctxT(t, 30*time.Second), op, &client.DeleteOptions{GracePeriodSeconds: &zero}))
	tr := mid.Status.Transition
	t.Logf("killed operator pod %s at %s/%s (epoch %d, %d keys rescanned)", op.Name, tr.Kind, tr.Step,
		mid.Status.Configuration.Epoch, tr.KeysRescanned)
	e.eventually(t, settle, "a new operator pod is ready", func(ctx context.Context) (bool, error) {
		p := e.waitOperator(t)
		return p.Name != op.Name, nil
	})
	if tr := e.get(t, ns, name).Status.Transition; tr != nil {
		t.Logf("the new operator found the transition at %s/%s", tr.Kind, tr.Step)
	}
	after := e.waitStable(t, ns, name, 4, settle)
	checkSeeded(t, endpoints(after), "opkill-seed", 3000)
	if got, want := after.Status.Configuration.Epoch, before.Status.Configuration.Epoch+2; got != want {
		t.Errorf("epoch %d after the resumed Add, want %d (joint and final, installed once)", got, want)
	}
	e.update(t, ns, name, func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Replicas = 3 })
	after = e.waitStable(t, ns, name, 3, settle)
	w.stop(endpoints(after), 30)
}

// checkSeeded reads back every key seed wrote: each must still be there at
// version 1, whatever the interrupted rescan did.
func checkSeeded(t *testing.T, eps []string, prefix string, n int) {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	c, err := proposer.New(ctx, clientConfig(eps))
	must(t, err)
	defer c.Close()
	sem := make(chan struct{}, 32)
	bad := make(chan string, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			k := fmt.Sprintf("%s/%05d", prefix, i)
			if v, err := c.Get(ctx, []byte(k)); err != nil || v.Version != 1 || string(v.Data) != "x" {
				bad <- fmt.Sprintf("%s: %q v%d %v", k, v.Data, v.Version, err)
			}
		}()
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	close(bad)
	var msgs []string
	for m := range bad {
		msgs = append(msgs, m)
	}
	if len(msgs) > 0 {
		t.Errorf("%d of %d seeded keys are wrong, e.g. %s", len(msgs), n, msgs[0])
	} else {
		t.Logf("all %d seeded keys read back at version 1", n)
	}
}

// seed writes n keys, 32 at a time.
func seed(t *testing.T, eps []string, prefix string, n int) {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	c, err := proposer.New(ctx, clientConfig(eps))
	must(t, err)
	defer c.Close()
	start := time.Now()
	sem := make(chan struct{}, 32)
	errs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := c.Put(ctx, []byte(fmt.Sprintf("%s/%05d", prefix, i)), []byte("x"))
			errs <- err
		}()
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("while seeding keys: %v", err)
		}
	}
	t.Logf("seeded %d keys in %s", n, time.Since(start).Round(time.Millisecond))
}

func testPaused(t *testing.T, e *env) {
	before := e.get(t, ns, name)
	w := startWorkload(t, endpoints(before), 3, "paused")
	e.update(t, ns, name, func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Paused = true; kc.Spec.Replicas = 4 })
	obs := e.observe(ns, name)
	time.Sleep(15 * time.Second)
	steps := obs.stop()
	frozen := e.get(t, ns, name)
	if len(steps) > 0 || frozen.Status.Configuration.Epoch != before.Status.Configuration.Epoch {
		t.Errorf("paused, yet transitions %v and epoch %d → %d", steps, before.Status.Configuration.Epoch, frozen.Status.Configuration.Epoch)
	}
	var sts appsv1.StatefulSet
	must(t, e.cl.Get(ctxT(t, 30*time.Second), client.ObjectKey{Namespace: ns, Name: name}, &sts))
	if sts.Spec.Replicas != nil && *sts.Spec.Replicas != 3 {
		t.Errorf("paused, yet the StatefulSet has %d replicas", *sts.Spec.Replicas)
	}
	e.update(t, ns, name, func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Paused = false })
	e.waitStable(t, ns, name, 4, settle)
	e.update(t, ns, name, func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Replicas = 3 })
	after := e.waitStable(t, ns, name, 3, settle)
	w.stop(endpoints(after), 30)
}

func testUninstall(t *testing.T, e *env) {
	before := e.get(t, ns, name)
	w := startWorkload(t, endpoints(before), 2, "uninstall")
	time.Sleep(2 * time.Second)
	e.run(t, "helm", "uninstall", "kshaka-operator", "--namespace", operatorNamespace, "--wait", "--timeout", "2m")
	e.eventually(t, 2*time.Minute, "the operator pods are gone", func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		err := e.cl.List(ctx, &pods, client.InNamespace(operatorNamespace))
		return err == nil && len(pods.Items) == 0, err
	})
	if out := e.run(t, "kubectl", "get", "crd", "kshakaclusters.kshaka.io", "-o", "name"); !strings.Contains(out, "kshakaclusters") {
		t.Fatalf("the CRD is gone after helm uninstall: %s", out)
	}
	kept := e.get(t, ns, name) // fails the test if the cluster object is gone
	var pods corev1.PodList
	must(t, e.cl.List(ctxT(t, 30*time.Second), &pods, client.InNamespace(ns)))
	if len(pods.Items) != 3 {
		t.Errorf("%d acceptor pods after uninstall, want 3", len(pods.Items))
	}
	time.Sleep(5 * time.Second) // the data path does not need the operator
	e.helmInstall(t)
	e.update(t, ns, name, func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Replicas = 4 })
	after := e.waitStable(t, ns, name, 4, settle)
	w.stop(endpoints(after), 20)
	if kept.Status.Configuration.Epoch >= after.Status.Configuration.Epoch {
		t.Errorf("the reinstalled operator did not change the configuration (epoch %d → %d)",
			kept.Status.Configuration.Epoch, after.Status.Configuration.Epoch)
	}
}
