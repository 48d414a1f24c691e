package controllers

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/proposer"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// The envtest suite runs the operator against a real kube-apiserver and
// etcd (bin/k8s, built by `make kube-binaries`), with real acceptors standing
// in for the pods (kubelet_test.go). It never skips: without the binaries
// every envtest test fails and says how to build them.

var (
	envOnce sync.Once
	envRest *rest.Config
	envErr  error
	testEnv *envtest.Environment
	scheme  = runtime.NewScheme()
	nsSeq   atomic.Int32
)

func init() {
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := kshakav1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testEnv != nil {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}
	os.Exit(code)
}

// kubeAssets finds etcd and kube-apiserver: $KUBEBUILDER_ASSETS, else the
// repository's bin/k8s.
func kubeAssets() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join("..", "bin", "k8s")
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

// startEnv starts the shared API server once and returns a client of it.
func startEnv(t *testing.T) (*rest.Config, client.Client) {
	t.Helper()
	envOnce.Do(func() {
		ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()})))
		assets, err := kubeAssets()
		if err != nil {
			envErr = err
			return
		}
		testEnv = &envtest.Environment{
			CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
			ErrorIfCRDPathMissing: true,
			BinaryAssetsDirectory: assets,
		}
		envRest, envErr = testEnv.Start()
		if envErr != nil {
			envErr = fmt.Errorf("starting envtest with the binaries in %s: %w", assets, envErr)
		}
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	c, err := client.New(envRest, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return envRest, c
}

// logLevel: set KSHAKA_TEST_LOG=1 to see the operator's debug log.
func logLevel() slog.Level {
	if os.Getenv("KSHAKA_TEST_LOG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelError
}

// newNamespace creates a namespace of its own for a test.
func newNamespace(t *testing.T, c client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("kshaka-test-%d", nsSeq.Add(1))}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// operator is one running operator process (a manager with the reconciler).
type operator struct {
	cancel context.CancelFunc
	done   chan error
}

func startOperator(t *testing.T, cfg *rest.Config, ns string, acc Acceptors, opts ...func(*Reconciler)) *operator {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{
		Client:            mgr.GetClient(),
		Scheme:            mgr.GetScheme(),
		Recorder:          mgr.GetEventRecorder("kshaka-operator"),
		Acceptors:         acc,
		RescanBatch:       7, // several batches per rescan
		NowInterval:       20 * time.Millisecond,
		WaitInterval:      100 * time.Millisecond,
		IdleInterval:      time.Second,
		OperatorNamespace: "kshaka-system",
		// The fake kubelet's Secret volumes are current at once.
		TrustPropagation: time.Millisecond,
	}
	for _, o := range opts {
		o(r)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	op := &operator{cancel: cancel, done: make(chan error, 1)}
	go func() { op.done <- mgr.Start(ctx) }()
	t.Cleanup(op.stop)
	return op
}

func (op *operator) stop() {
	if op.cancel == nil {
		return
	}
	op.cancel()
	<-op.done
	op.cancel = nil
}

// fixture is one KshakaCluster under test with its pods and operator.
type fixture struct {
	t   *testing.T
	cfg *rest.Config
	c   client.Client
	ns  string
	kl  *kubelet
	acc *GRPCAcceptors
	op  *operator
	kc  types.NamespacedName
}

func newFixture(t *testing.T, replicas int32) *fixture {
	return newFixtureMode(t, replicas, kshakav1alpha1.AddressModePodIP)
}

func newFixtureMode(t *testing.T, replicas int32, mode kshakav1alpha1.AddressMode, opts ...func(*Reconciler)) *fixture {
	return newFixtureSpec(t, replicas, mode, nil, opts...)
}

// newFixtureSpec creates the cluster with spec changed by modify (nil:
// none), so with the API server's defaults: mutual TLS in mode Operator.
func newFixtureSpec(t *testing.T, replicas int32, mode kshakav1alpha1.AddressMode, modify func(*kshakav1alpha1.KshakaCluster), opts ...func(*Reconciler)) *fixture {
	cfg, c := startEnv(t)
	f := &fixture{t: t, cfg: cfg, c: c, ns: newNamespace(t, c), acc: &GRPCAcceptors{}}
	t.Cleanup(func() { _ = f.acc.Close() })
	f.kc = types.NamespacedName{Namespace: f.ns, Name: "kc"}
	port := freePort(t)
	kc := &kshakav1alpha1.KshakaCluster{
		ObjectMeta: metav1.ObjectMeta{Name: f.kc.Name, Namespace: f.ns},
		Spec: kshakav1alpha1.KshakaClusterSpec{
			Replicas:    replicas,
			AddressMode: mode,
			Service:     kshakav1alpha1.ServiceSpec{Port: port},
		},
	}
	if modify != nil {
		modify(kc)
	}
	if err := c.Create(context.Background(), kc); err != nil {
		t.Fatal(err)
	}
	f.kl = startKubelet(t, c, f.ns, "kc", port)
	f.op = startOperator(t, cfg, f.ns, f.acc, opts...)
	return f
}

func (f *fixture) get() *kshakav1alpha1.KshakaCluster {
	f.t.Helper()
	var kc kshakav1alpha1.KshakaCluster
	if err := f.c.Get(context.Background(), f.kc, &kc); err != nil {
		f.t.Fatal(err)
	}
	return &kc
}

// eventually polls cond until it holds or timeout passes.
func (f *fixture) eventually(timeout time.Duration, what string, cond func(kc *kshakav1alpha1.KshakaCluster) bool) *kshakav1alpha1.KshakaCluster {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		kc := f.get()
		if cond(kc) {
			return kc
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out after %v waiting for %s\nkubelet error: %v\nstatus: %s", timeout, what, f.kl.err(), dumpStatus(kc))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dumpStatus(kc *kshakav1alpha1.KshakaCluster) string {
	var b strings.Builder
	fmt.Fprintf(&b, "spec.replicas=%d generation=%d observed=%d quorum=%s\n", kc.Spec.Replicas, kc.Generation, kc.Status.ObservedGeneration, kc.Status.Quorum)
	if cfg, ok := ConfigFromStatus(kc.Status.Configuration); ok {
		fmt.Fprintf(&b, "configuration: %s\n", cfg)
	}
	if tr := kc.Status.Transition; tr != nil {
		fmt.Fprintf(&b, "transition: %s %s member=%+v step=%s keys=%d\n", tr.Kind, tr.Reason, tr.Member, tr.Step, tr.KeysRescanned)
	}
	for _, c := range kc.Status.Conditions {
		fmt.Fprintf(&b, "condition %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	for _, m := range kc.Status.Members {
		fmt.Fprintf(&b, "member %+v\n", m)
	}
	return b.String()
}

// converged: spec.replicas members in a stable configuration, no transition,
// every member serving, the spec observed.
func converged(kc *kshakav1alpha1.KshakaCluster) bool {
	cfg, ok := ConfigFromStatus(kc.Status.Configuration)
	return ok && kc.Status.Transition == nil && cfg.IsStable() && int32(len(cfg.Members)) == kc.Spec.Replicas &&
		kc.Status.ObservedGeneration == kc.Generation && kc.Status.Quorum == kshakav1alpha1.QuorumHealthy &&
		kc.Status.ReadyReplicas == kc.Spec.Replicas &&
		meta.IsStatusConditionTrue(kc.Status.Conditions, kshakav1alpha1.ConditionAvailable)
}

func (f *fixture) waitConverged() membership.Config {
	f.t.Helper()
	kc := f.eventually(90*time.Second, "the cluster to converge", converged)
	cfg, _ := ConfigFromStatus(kc.Status.Configuration)
	return cfg
}

func (f *fixture) scale(n int32) {
	f.t.Helper()
	kc := f.get()
	patch := client.MergeFrom(kc.DeepCopy())
	kc.Spec.Replicas = n
	if err := f.c.Patch(context.Background(), kc, patch); err != nil {
		f.t.Fatal(err)
	}
}

// store is a proposer client of the cluster, bootstrapped from its members.
func (f *fixture) store(cfg membership.Config) *proposer.Client {
	f.t.Helper()
	var eps []string
	for _, m := range cfg.Members {
		eps = append(eps, m.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := proposer.New(ctx, proposer.Config{Endpoints: eps, TLS: f.clientTLS()})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// clientTLS is what an application mounting <cluster>-client-tls
// configures: its certificate (the client role) and the bundle; nil when
// the cluster runs without TLS.
func (f *fixture) clientTLS() *tls.Config {
	f.t.Helper()
	if !TLSEnabled(f.get()) {
		return nil
	}
	var sec corev1.Secret
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "kc-client-tls"}, &sec); err != nil {
		f.t.Fatalf("reading the client Secret: %v", err)
	}
	pair, err := tls.X509KeyPair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		f.t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(sec.Data[KeyCACert]) {
		f.t.Fatal("kc-client-tls: empty ca.crt")
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// write puts n keys with the given prefix and returns them with their values.
func (f *fixture) write(cfg membership.Config, prefix string, n int, into map[string][]byte) {
	f.t.Helper()
	p := f.store(cfg)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		k, v := fmt.Sprintf("%s/%03d", prefix, i), []byte(fmt.Sprintf("value of %s/%03d", prefix, i))
		if _, err := p.Put(ctx, []byte(k), v); err != nil {
			f.t.Fatalf("put %s: %v", k, err)
		}
		into[k] = v
	}
}

// checkAll reads every key back through a fresh proposer.
func (f *fixture) checkAll(cfg membership.Config, want map[string][]byte) {
	f.t.Helper()
	p := f.store(cfg)
	defer p.Close()
	if got := p.Config().Epoch; got != cfg.Epoch {
		f.t.Fatalf("proposer sees epoch %d, status says %d", got, cfg.Epoch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for k, v := range want {
		got, err := p.Get(ctx, []byte(k))
		if err != nil {
			f.t.Fatalf("get %s: %v", k, err)
		}
		if !bytes.Equal(got.Data, v) {
			f.t.Fatalf("get %s = %q, want %q", k, got.Data, v)
		}
	}
}

func (f *fixture) events() []string {
	f.t.Helper()
	var list eventsv1.EventList
	if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason)
	}
	return out
}

func (f *fixture) pvcExists(name string) bool {
	var pvc corev1.PersistentVolumeClaim
	err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, &pvc)
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return pvc.DeletionTimestamp.IsZero()
}

func (f *fixture) podExists(name string) bool {
	var pod corev1.Pod
	err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, &pod)
	return err == nil
}

func memberIDs(cfg membership.Config) []string {
	var out []string
	for _, m := range cfg.Members {
		out = append(out, m.ID)
	}
	return out
}

// TestEnvtestCreateScaleUpDown: create → Available; scale 3→4→3 with keys
// written before each change and every key readable after it.
func TestEnvtestCreateScaleUpDown(t *testing.T) {
	f := newFixture(t, 3)
	cfg := f.waitConverged()
	if cfg.Epoch != 1 || !slices.Equal(memberIDs(cfg), []string{"kc-0", "kc-1", "kc-2"}) {
		t.Fatalf("first configuration %s", cfg)
	}
	kc := f.get()
	if kc.Status.Selector == "" || kc.Status.Replicas != 3 {
		t.Fatalf("status %s", dumpStatus(kc))
	}
	for _, m := range kc.Status.Members {
		if !m.Ready || !m.Admitted || m.AcknowledgedEpoch != 1 || m.Incarnation != FormatIncarnation(f.kl.incarnation(m.PodName)) {
			t.Fatalf("member %+v", m)
		}
	}

	keys := map[string][]byte{}
	f.write(cfg, "before-4", 30, keys)
	f.scale(4)
	cfg = f.waitConverged()
	if cfg.Epoch != 3 || len(cfg.Members) != 4 {
		t.Fatalf("after scaling to 4: %s", cfg)
	}
	f.checkAll(cfg, keys)

	f.write(cfg, "before-3", 30, keys)
	f.scale(3)
	cfg = f.waitConverged()
	if cfg.Epoch != 5 || !slices.Equal(memberIDs(cfg), []string{"kc-0", "kc-1", "kc-2"}) {
		t.Fatalf("after scaling back to 3: %s", cfg)
	}
	f.checkAll(cfg, keys)
	if f.podExists("kc-3") || f.pvcExists("data-kc-3") {
		t.Fatal("the removed member's pod or volume claim is still there")
	}
	kc = f.get()
	if len(kc.Status.RetiredIncarnations) != 1 {
		t.Fatalf("retired %v, want the removed member's incarnation", kc.Status.RetiredIncarnations)
	}
	f.eventuallyEvents(EventBootstrapped, EventJointInstalled, EventRescanned, EventFinalInstalled, EventMemberAdded, EventMemberRetired, EventDeleteVolume, EventMemberRemoved)
}

func (f *fixture) eventuallyEvents(want ...string) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f.events()
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return slices.Contains(got, w) })
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("events %v lack %v", got, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEnvtestRestartMidStep stops the operator in the middle of the rescan
// of 3→4, starts a new one, and checks that it resumes (from the recorded
// cursor) and that 4→5→4→3 follows with every key intact.
func TestEnvtestRestartMidStep(t *testing.T) {
	f := newFixture(t, 3)
	cfg := f.waitConverged()
	keys := map[string][]byte{}
	f.write(cfg, "k", 60, keys)

	f.scale(4)
	kc := f.eventually(60*time.Second, "the rescan to be under way", func(kc *kshakav1alpha1.KshakaCluster) bool {
		tr := kc.Status.Transition
		return tr != nil && tr.Step == kshakav1alpha1.StepRescan && tr.KeysRescanned > 0
	})
	f.op.stop()
	stoppedAt := kc.Status.Transition.KeysRescanned
	// Every one of the 60 keys is on an accept quorum (2 of 3), so the
	// acceptor with the most keys holds at least 40 of them, and none more.
	if e := kc.Status.Transition.KeysEstimated; e < 40 || e > 60 {
		t.Fatalf("keysEstimated %d for 60 keys on 3 acceptors, want 40..60", e)
	}
	time.Sleep(300 * time.Millisecond)
	if tr := f.get().Status.Transition; tr == nil || tr.Step != kshakav1alpha1.StepRescan {
		t.Fatalf("the stopped operator moved on: %+v", tr)
	}
	f.op = startOperator(t, f.cfg, f.ns, f.acc)
	cfg = f.waitConverged()
	if cfg.Epoch != 3 || len(cfg.Members) != 4 {
		t.Fatalf("after the restart: %s", cfg)
	}
	t.Logf("operator stopped after %d rescanned keys", stoppedAt)
	f.checkAll(cfg, keys)

	for _, n := range []int32{5, 4, 3} {
		f.write(cfg, fmt.Sprintf("before-%d", n), 10, keys)
		f.scale(n)
		cfg = f.waitConverged()
		f.checkAll(cfg, keys)
	}
	if cfg.Epoch != 9 {
		t.Fatalf("epoch %d after four changes, want 9", cfg.Epoch)
	}
}

// TestEnvtestDiskLoss replaces a member whose volume is lost: its pod comes
// back with a new incarnation; the old one is retired and removed, the new
// one added, and no key is lost.
func TestEnvtestDiskLoss(t *testing.T) {
	f := newFixture(t, 3)
	cfg := f.waitConverged()
	keys := map[string][]byte{}
	f.write(cfg, "k", 20, keys)
	old := f.kl.incarnation("kc-1")

	// The disk of kc-1 is gone: its claim and pod are deleted (as a person
	// or a failed node would), and the StatefulSet recreates both, empty.
	ctx := context.Background()
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "data-kc-1"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "kc-1"}}
	if err := f.c.Delete(ctx, pvc); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	f.eventually(60*time.Second, "kc-1's old incarnation to be retired", func(kc *kshakav1alpha1.KshakaCluster) bool {
		return slices.Contains(kc.Status.RetiredIncarnations, FormatIncarnation(old))
	})
	cfg = f.waitConverged()
	m, ok := cfg.MemberByID("kc-1")
	if !ok || m.Incarnation == old || m.Incarnation != f.kl.incarnation("kc-1") {
		t.Fatalf("kc-1 in %s: %+v, old incarnation %x", cfg, m, old)
	}
	if cfg.Epoch != 5 {
		t.Fatalf("epoch %d, want 5 (remove then add)", cfg.Epoch)
	}
	f.checkAll(cfg, keys)
	f.eventuallyEvents(ReasonDiskLost)
}

// TestEnvtestRolledBackVolume: kc-1's volume is copied while it is stopped
// at epoch 1; the cluster moves on to epoch 3 (3 → 4 members); kc-1 is
// stopped, its volume restored from the copy in place, and started. It
// answers with its incarnation and epoch 1, so it lost promises and
// accepts: the operator retires the incarnation, recycles the volume and
// replaces the member as for a lost disk (docs/design.md §4 "Rolled-back disks"),
// and every key written before, between and after stays readable.
func TestEnvtestRolledBackVolume(t *testing.T) {
	f := newFixture(t, 3)
	cfg := f.waitConverged()
	keys := map[string][]byte{}
	f.write(cfg, "before-copy", 10, keys)
	old := f.kl.incarnation("kc-1")
	snap := f.kl.snapshot("kc-1")
	cfg = f.waitConverged()
	f.write(cfg, "after-copy", 10, keys)

	f.scale(4)
	cfg = f.waitConverged()
	if cfg.Epoch != 3 {
		t.Fatalf("after scaling to 4: %s", cfg)
	}
	f.write(cfg, "epoch-3", 10, keys)
	f.eventually(30*time.Second, "kc-1's acknowledgement of epoch 3 to be recorded", func(kc *kshakav1alpha1.KshakaCluster) bool {
		rec := kc.Status.Members[1].HighestAcknowledged
		return rec != nil && rec.Incarnation == FormatIncarnation(old) && rec.Epoch == 3
	})

	f.kl.restore("kc-1", snap)
	f.eventually(60*time.Second, "kc-1's rolled-back incarnation to be retired", func(kc *kshakav1alpha1.KshakaCluster) bool {
		return slices.Contains(kc.Status.RetiredIncarnations, FormatIncarnation(old))
	})
	kc := f.eventually(90*time.Second, "kc-1 to be replaced", func(kc *kshakav1alpha1.KshakaCluster) bool {
		cfg, _ := ConfigFromStatus(kc.Status.Configuration)
		m, ok := cfg.MemberByID("kc-1")
		return converged(kc) && ok && m.Incarnation != old
	})
	cfg, _ = ConfigFromStatus(kc.Status.Configuration)
	m, _ := cfg.MemberByID("kc-1")
	if m.Incarnation != f.kl.incarnation("kc-1") || cfg.Epoch != 7 {
		t.Fatalf("kc-1 in %s: %+v, running incarnation %x; want a new incarnation at epoch 7 (remove, then add)",
			cfg, m, f.kl.incarnation("kc-1"))
	}
	f.checkAll(cfg, keys)
	f.write(cfg, "replaced", 10, keys)
	f.checkAll(cfg, keys)
	f.eventuallyEvents(ReasonVolumeRolledBack, EventRecycle, EventMemberRemoved, EventMemberAdded)
}

// TestEnvtestUnreachableMemberBlocks: with a member's pod not answering, a
// scale up waits and says why.
func TestEnvtestUnreachableMemberBlocks(t *testing.T) {
	f := newFixture(t, 3)
	f.waitConverged()
	f.kl.pause("kc-2")
	f.eventually(30*time.Second, "the operator to notice kc-2 is down", func(kc *kshakav1alpha1.KshakaCluster) bool {
		return kc.Status.Quorum == kshakav1alpha1.QuorumDegraded
	})
	f.scale(4)
	kc := f.eventually(30*time.Second, "a Degraded condition naming kc-2", func(kc *kshakav1alpha1.KshakaCluster) bool {
		c := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionDegraded)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == ReasonMemberNotServing &&
			strings.HasPrefix(c.Message, "cannot add a member: kc-2 is unreachable") && kc.Status.ObservedGeneration == kc.Generation
	})
	if kc.Status.Transition != nil || kc.Status.Configuration.Epoch != 1 {
		t.Fatalf("a change started without kc-2: %s", dumpStatus(kc))
	}
	f.kl.resume("kc-2")
	f.waitConverged()
}

// TestEnvtestPausedKeepsStatusFresh: a paused cluster gets no new objects
// but its status is still refreshed.
func TestEnvtestPaused(t *testing.T) {
	f := newFixture(t, 3)
	f.waitConverged()
	kc := f.get()
	patch := client.MergeFrom(kc.DeepCopy())
	kc.Spec.Paused = true
	kc.Spec.Replicas = 4
	if err := f.c.Patch(context.Background(), kc, patch); err != nil {
		t.Fatal(err)
	}
	f.eventually(30*time.Second, "Progressing=False/Paused", func(kc *kshakav1alpha1.KshakaCluster) bool {
		c := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionProgressing)
		return c != nil && c.Reason == ReasonPaused && kc.Status.ObservedGeneration == kc.Generation
	})
	f.kl.pause("kc-0")
	f.eventually(30*time.Second, "the paused cluster's status to notice kc-0", func(kc *kshakav1alpha1.KshakaCluster) bool {
		return kc.Status.Quorum == kshakav1alpha1.QuorumDegraded
	})
	time.Sleep(500 * time.Millisecond)
	if f.podExists("kc-3") || f.get().Status.Transition != nil {
		t.Fatal("the paused cluster was changed")
	}
	f.kl.resume("kc-0")
}

// TestEnvtestValidation: the API server refuses invalid clusters with a
// readable message.
func TestEnvtestValidation(t *testing.T) {
	_, c := startEnv(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	create := func(name string, modify func(*kshakav1alpha1.KshakaCluster)) error {
		kc := &kshakav1alpha1.KshakaCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		kc.Spec.Replicas = 3
		modify(kc)
		return c.Create(ctx, kc)
	}
	for _, tc := range []struct {
		name   string
		modify func(*kshakav1alpha1.KshakaCluster)
		want   string
	}{
		{"zero", func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Replicas = -1 }, "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 1"},
		{"sixteen", func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Replicas = 16 }, "spec.replicas in body should be less than or equal to 15"},
		{"mode", func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.AddressMode = "Hostname" }, `spec.addressMode: Unsupported value: "Hostname": supported values: "DNS", "PodIP"`},
		{"size", func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Storage.Size = ptr.To(resource.MustParse("0")) }, "storage.size must be positive"},
		{"port", func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Service.Port = 70000 }, "spec.service.port in body should be less than or equal to 65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := create("bad-"+tc.name, tc.modify)
			if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an Invalid error containing %q", err, tc.want)
			}
		})
	}

	// Defaults, then immutability.
	if err := create("good", func(*kshakav1alpha1.KshakaCluster) {}); err != nil {
		t.Fatal(err)
	}
	var kc kshakav1alpha1.KshakaCluster
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "good"}, &kc); err != nil {
		t.Fatal(err)
	}
	if kc.Spec.AddressMode != kshakav1alpha1.AddressModeDNS || kc.Spec.Service.Port != 7400 || kc.Spec.Service.Type != corev1.ServiceTypeClusterIP ||
		kc.Spec.Image == "" || kc.Spec.Version == "" || kc.Spec.Storage.Size.String() != "1Gi" {
		t.Fatalf("defaults not applied: %+v", kc.Spec)
	}
	for _, tc := range []struct {
		name   string
		modify func(*kshakav1alpha1.KshakaCluster)
		want   string
	}{
		{"storage shrinks", func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Storage.Size = ptr.To(resource.MustParse("512Mi")) }, "storage.size cannot shrink"},
		{"storage class", func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Storage.StorageClassName = ptr.To("fast") }, "storage.storageClassName is immutable"},
		{"WAL added", func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Storage.WAL = &kshakav1alpha1.VolumeSpec{} }, "storage.wal cannot be added or removed"},
		{"address mode", func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.AddressMode = kshakav1alpha1.AddressModePodIP }, "addressMode is immutable"},
		{"port", func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.Service.Port = 9000 }, "service.port is immutable"},
	} {
		t.Run("immutable "+tc.name, func(t *testing.T) {
			upd := kc.DeepCopy()
			tc.modify(upd)
			err := c.Update(ctx, upd)
			if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an Invalid error containing %q", err, tc.want)
			}
		})
	}
	// storage.size grows; a WAL volume's class is immutable and its size
	// never shrinks either.
	grown := kc.DeepCopy()
	grown.Spec.Storage.Size = ptr.To(resource.MustParse("2Gi"))
	if err := c.Update(ctx, grown); err != nil {
		t.Fatalf("growing storage.size: %v", err)
	}
	kc = *grown
	if err := create("wal", func(kc *kshakav1alpha1.KshakaCluster) {
		kc.Spec.Storage.WAL = &kshakav1alpha1.VolumeSpec{Size: ptr.To(resource.MustParse("1Gi"))}
	}); err != nil {
		t.Fatal(err)
	}
	var wal kshakav1alpha1.KshakaCluster
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "wal"}, &wal); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		modify func(*kshakav1alpha1.VolumeSpec)
		want   string
	}{
		{"shrinks", func(v *kshakav1alpha1.VolumeSpec) { v.Size = ptr.To(resource.MustParse("1Mi")) }, "size cannot shrink"},
		{"class", func(v *kshakav1alpha1.VolumeSpec) { v.StorageClassName = ptr.To("fast") }, "storageClassName is immutable"},
	} {
		upd := wal.DeepCopy()
		tc.modify(upd.Spec.Storage.WAL)
		if err := c.Update(ctx, upd); err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("WAL %s: got %v, want an Invalid error containing %q", tc.name, err, tc.want)
		}
	}
	upd := wal.DeepCopy()
	upd.Spec.Storage.WAL.Size = ptr.To(resource.MustParse("3Gi"))
	if err := c.Update(ctx, upd); err != nil {
		t.Fatalf("growing storage.wal.size: %v", err)
	}

	// The samples in config/samples are valid, to the API server and to
	// ValidateSpec.
	for _, file := range []string{"kshaka_v1alpha1_kshakacluster.yaml", "kshaka_v1alpha1_kshakacluster_tuned.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "config", "samples", file))
		if err != nil {
			t.Fatal(err)
		}
		var sample kshakav1alpha1.KshakaCluster
		if err := yaml.UnmarshalStrict(b, &sample); err != nil {
			t.Fatalf("config/samples/%s: %v", file, err)
		}
		sample.Namespace = ns
		if err := c.Create(ctx, &sample); err != nil || sample.Spec.Replicas != 3 {
			t.Fatalf("creating the sample %s (replicas %d): %v", file, sample.Spec.Replicas, err)
		}
		if err := ValidateSpec(&sample); err != nil {
			t.Fatalf("config/samples/%s: %v", file, err)
		}
	}

	// The scale subresource (kubectl scale).
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 5}}
	if err := c.SubResource("scale").Update(ctx, &kc, client.WithSubResourceBody(scale)); err != nil {
		t.Fatalf("scaling through the scale subresource: %v", err)
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "good"}, &kc); err != nil || kc.Spec.Replicas != 5 {
		t.Fatalf("after scaling: replicas %d, %v", kc.Spec.Replicas, err)
	}
	scale.Spec.Replicas = 16
	if err := c.SubResource("scale").Update(ctx, &kc, client.WithSubResourceBody(scale)); err == nil {
		t.Fatal("scaling to 16 through the scale subresource was accepted")
	}
}

// TestEnvtestDNSModeAndResolverHook: in DNS mode the operator dials
// <pod>.<cluster>-peers.<ns>.svc:<port>, which does not resolve here, so
// nothing is installed and the status says why. An operator started with an
// AddressResolver that points the pods at their in-process acceptors then
// bootstraps the cluster.
func TestEnvtestDNSModeAndResolverHook(t *testing.T) {
	f := newFixtureMode(t, 3, kshakav1alpha1.AddressModeDNS)
	port := f.get().Spec.Service.Port
	want := fmt.Sprintf("kc-0.kc-peers.%s.svc:%d", f.ns, port)
	f.eventually(30*time.Second, "kc-0 reported unreachable at its DNS name", func(kc *kshakav1alpha1.KshakaCluster) bool {
		return len(kc.Status.Members) == 3 && kc.Status.Members[0].Address == want && !kc.Status.Members[0].Reachable
	})
	if kc := f.get(); kc.Status.Configuration != nil {
		t.Fatalf("configuration installed without reachable acceptors: %s", dumpStatus(kc))
	}
	f.op.stop()
	f.op = startOperator(t, f.cfg, f.ns, f.acc, func(r *Reconciler) {
		r.Resolver = func(c *kshakav1alpha1.KshakaCluster, pod *corev1.Pod) string { return f.kl.addr(pod.Name) }
	})
	cfg := f.waitConverged()
	keys := map[string][]byte{}
	f.write(cfg, "k", 5, keys)
	f.checkAll(cfg, keys)
}
