package plugin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// The tests run the plugin against a real kube-apiserver and etcd
// (envtest; bin/k8s, built by `make kube-binaries`) through a kubeconfig
// file, as a user runs it. Nothing plays the operator: the tests write the
// status the operator would. Without the binaries every test fails and says
// how to build them.

var (
	envOnce    sync.Once
	envErr     error
	testEnv    *envtest.Environment
	kubeconfig string
	adminCl    client.Client
	nsSeq      atomic.Int32
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testEnv != nil {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}
	if kubeconfig != "" {
		_ = os.RemoveAll(filepath.Dir(kubeconfig))
	}
	os.Exit(code)
}

const repoRoot = "../../../.."

func kubeAssets() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(repoRoot, "bin", "k8s")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(abs, b)); err != nil {
			return "", fmt.Errorf("envtest needs %s in %s (KUBEBUILDER_ASSETS or bin/k8s): "+
				"run `make kube-binaries` (hack/build-kube-binaries.sh) first", b, abs)
		}
	}
	return abs, nil
}

// startEnv starts the shared API server once and writes a kubeconfig for
// it.
func startEnv(t *testing.T) {
	t.Helper()
	envOnce.Do(func() {
		assets, err := kubeAssets()
		if err != nil {
			envErr = err
			return
		}
		testEnv = &envtest.Environment{
			CRDDirectoryPaths:     []string{filepath.Join(repoRoot, "config", "crd", "bases")},
			ErrorIfCRDPathMissing: true,
			BinaryAssetsDirectory: assets,
		}
		cfg, err := testEnv.Start()
		if err != nil {
			envErr = fmt.Errorf("starting envtest with the binaries in %s: %w", assets, err)
			return
		}
		if adminCl, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
			envErr = err
			return
		}
		user, err := testEnv.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
		if err != nil {
			envErr = err
			return
		}
		b, err := user.KubeConfig()
		if err != nil {
			envErr = err
			return
		}
		dir, err := os.MkdirTemp("", "kubectl-kshaka-test-")
		if err != nil {
			envErr = err
			return
		}
		kubeconfig = filepath.Join(dir, "kubeconfig")
		envErr = os.WriteFile(kubeconfig, b, 0o600)
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
}

// now is the plugin's clock in the tests.
var now = time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC)

// fixture is one test's namespace.
type fixture struct {
	t  *testing.T
	ns string
}

func newFixture(t *testing.T) *fixture {
	return newFixtureIn(t, fmt.Sprintf("plugin-%d", nsSeq.Add(1)))
}

// newFixtureIn is newFixture in namespace ns, for output that names it.
func newFixtureIn(t *testing.T, ns string) *fixture {
	startEnv(t)
	f := &fixture{t: t, ns: ns}
	f.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}})
	return f
}

func (f *fixture) create(obj client.Object) {
	f.t.Helper()
	if err := adminCl.Create(context.Background(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
		f.t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// result is what one run of the plugin did.
type result struct {
	out, err string
	code     int
}

// run runs the plugin in f's namespace with stdin; interactive says
// whether stdin counts as a terminal.
func (f *fixture) runIn(stdin string, interactive bool, args ...string) result {
	f.t.Helper()
	var out, errw bytes.Buffer
	stdio := IO{In: strings.NewReader(stdin), Out: &out, Err: &errw}
	if interactive {
		stdio.Interactive = func() bool { return true }
	}
	o := &options{io: stdio, now: func() time.Time { return now }, pollEvery: 20 * time.Millisecond}
	code := run(context.Background(), append([]string{"--kubeconfig", kubeconfig, "-n", f.ns}, args...), o)
	return result{out: out.String(), err: errw.String(), code: code}
}

func (f *fixture) run(args ...string) result {
	f.t.Helper()
	return f.runIn("", false, args...)
}

func (f *fixture) cluster(name string) *kshakav1alpha1.KshakaCluster {
	f.t.Helper()
	var c kshakav1alpha1.KshakaCluster
	if err := adminCl.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, &c); err != nil {
		f.t.Fatal(err)
	}
	return &c
}

// Incarnations of the fixture's members.
const (
	inc0 = "0a0a0a0a0a0a0a0a"
	inc1 = "1b1b1b1b1b1b1b1b"
	inc2 = "2c2c2c2c2c2c2c2c"
	inc3 = "3d3d3d3d3d3d3d3d"
)

// makeCluster creates KshakaCluster name with the status of an operator
// in the middle of adding kc-3 (3 → 4): the joint configuration is
// installed, the rescan is 45% done, and kc-2 is unreachable.
func (f *fixture) makeCluster(name string) *kshakav1alpha1.KshakaCluster {
	f.t.Helper()
	c := &kshakav1alpha1.KshakaCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec:       kshakav1alpha1.KshakaClusterSpec{Replicas: 4},
	}
	f.create(c)
	addr := func(i int) string { return fmt.Sprintf("%s-%d.%s-peers.%s.svc:7400", name, i, name, f.ns) }
	pod := func(i int) string { return fmt.Sprintf("%s-%d", name, i) }
	member := func(i int, inc string, p bool) kshakav1alpha1.ConfigMember {
		return kshakav1alpha1.ConfigMember{ID: pod(i), Address: addr(i), Incarnation: inc, Prepare: p, Accept: true}
	}
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(d)) }
	started := at(-2 * time.Minute)
	c.Status = kshakav1alpha1.KshakaClusterStatus{
		ObservedGeneration: c.Generation,
		Replicas:           4, ReadyReplicas: 3, Quorum: kshakav1alpha1.QuorumDegraded,
		Configuration: &kshakav1alpha1.Configuration{Epoch: 6, PrepareQuorum: 2, AcceptQuorum: 3, Members: []kshakav1alpha1.ConfigMember{
			member(0, inc0, true), member(1, inc1, true), member(2, inc2, true), member(3, inc3, false)}},
		Members: []kshakav1alpha1.MemberStatus{
			{Ordinal: 0, PodName: pod(0), Address: addr(0), Incarnation: inc0, AcknowledgedEpoch: 6, Ready: true, Reachable: true, Admitted: true},
			{Ordinal: 1, PodName: pod(1), Address: addr(1), Incarnation: inc1, AcknowledgedEpoch: 6, Ready: true, Reachable: true, Admitted: true},
			{Ordinal: 2, PodName: pod(2), Address: addr(2), Message: "unreachable: connection refused"},
			{Ordinal: 3, PodName: pod(3), Address: addr(3), Incarnation: inc3, AcknowledgedEpoch: 6, Ready: true, Reachable: true, Admitted: true},
		},
		RetiredIncarnations: []string{"00000000000000aa"},
		Transition: &kshakav1alpha1.Transition{
			Kind: kshakav1alpha1.TransitionAdd, Reason: kshakav1alpha1.ReasonScaleUp, Step: kshakav1alpha1.StepRescan,
			Member: &kshakav1alpha1.ConfigMember{ID: pod(3), Address: addr(3), Incarnation: inc3, Accept: true},
			From: &kshakav1alpha1.Configuration{Epoch: 5, PrepareQuorum: 2, AcceptQuorum: 2, Members: []kshakav1alpha1.ConfigMember{
				member(0, inc0, true), member(1, inc1, true), member(2, inc2, true)}},
			RescanCursor: []byte("k04500"), KeysRescanned: 4500, KeysEstimated: 10000, StartedAt: &started,
		},
		TLS: &kshakav1alpha1.TLSStatus{
			Mode: kshakav1alpha1.TLSModeOperator, ClientSecretName: name + "-client-tls",
			CANotAfter: ptrTime(at(3650 * 24 * time.Hour)), AcceptorsNotAfter: ptrTime(at(89 * 24 * time.Hour)),
			ClientsNotAfter: ptrTime(at(89*24*time.Hour + 12*time.Hour)),
		},
		TombstoneGC: &kshakav1alpha1.TombstoneGCStatus{
			LastPassStart: ptrTime(at(-31 * time.Minute)), LastPassEnd: ptrTime(at(-30 * time.Minute)),
			KeysScanned: 1200, TombstonesCollected: 1150, Skipped: 50, TotalCollected: 98000,
		},
		Conditions: []metav1.Condition{
			{Type: kshakav1alpha1.ConditionAvailable, Status: metav1.ConditionTrue, Reason: "QuorumAvailable", LastTransitionTime: at(-time.Hour),
				Message: "3 of 4 members serving epoch 6 (prepare quorum 2, accept quorum 3)"},
			{Type: kshakav1alpha1.ConditionDegraded, Status: metav1.ConditionTrue, Reason: "MemberUnreachable", LastTransitionTime: at(-time.Minute),
				Message: name + "-2 is unreachable: connection refused"},
		},
	}
	if err := adminCl.Status().Update(context.Background(), c); err != nil {
		f.t.Fatal(err)
	}
	return f.cluster(name)
}

func ptrTime(t metav1.Time) *metav1.Time { return &t }

// event records an event about kind/name.
func (f *fixture) event(name, typ, kind, obj, reason, msg string, ago time.Duration) {
	f.t.Helper()
	ts := metav1.NewTime(now.Add(-ago))
	f.create(&corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: f.ns, Name: name},
		InvolvedObject: corev1.ObjectReference{Kind: kind, Name: obj, Namespace: f.ns},
		Type:           typ, Reason: reason, Message: msg, Count: 1,
		FirstTimestamp: ts, LastTimestamp: ts, Source: corev1.EventSource{Component: "test"},
	})
}

func (f *fixture) pvc(name string) {
	f.create(&corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	})
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
