//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
	"github.com/kshaka-io/kshaka/localkube"
)

// operatorNamespace is where both installers put the operator.
const operatorNamespace = "kshaka-system"

// env is one local control plane and what the tests need of it.
type env struct {
	t    *testing.T
	kube *localkube.Cluster
	cl   client.Client
	wcl  client.WithWatch
	repo string
}

// newEnv starts a local control plane for the test (stopped when it ends).
func newEnv(t *testing.T) *env {
	t.Helper()
	repo, err := localkube.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"kshaka-acceptor", "kshaka-operator", "helm"} {
		if _, err := os.Stat(filepath.Join(repo, "bin", b)); err != nil {
			t.Fatalf("bin/%s is missing: run `make build` and `hack/install-tools.sh helm` (or `make e2e`)", b)
		}
	}
	kube := localkube.StartT(t, localkube.Config{})
	// The tests' clients run on the host, outside pods: they reach the
	// acceptors' DNS names through localkube's DNS, keeping the names as
	// TLS server names.
	clientDialOptions = kube.Resolver().GRPCDialOptions()
	scheme := runtime.NewScheme()
	must(t, clientgoscheme.AddToScheme(scheme))
	must(t, kshakav1alpha1.AddToScheme(scheme))
	wcl, err := client.NewWithWatch(kube.RESTConfig(), client.Options{Scheme: scheme})
	must(t, err)
	return &env{t: t, kube: kube, cl: wcl, wcl: wcl, repo: repo}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// run runs a command (kubectl, helm) and fails the test if it fails.
func (e *env) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx := ctxT(t, 5*time.Minute)
	cmd := e.kube.Kubectl(ctx, args...)
	if name == "helm" {
		cmd = e.kube.Helm(ctx, args...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// helmInstall installs the operator chart; the operator image maps to
// bin/kshaka-operator on the local node.
func (e *env) helmInstall(t *testing.T) {
	t.Helper()
	e.run(t, "helm", "install", "kshaka-operator", filepath.Join(e.repo, "charts", "kshaka-operator"),
		"--namespace", operatorNamespace, "--create-namespace",
		"--set", "image.repository=ghcr.io/kshaka-io/kshaka-operator", "--set", "image.tag=v0.1.0",
		// A CA rotation waits this long per step for Secret volumes to
		// refresh; localkube refreshes them every 2 s.
		"--set", "trustPropagation=10s",
		"--wait", "--timeout", "3m")
	e.waitOperator(t)
}

// waitOperator waits until one operator pod is ready.
func (e *env) waitOperator(t *testing.T) *corev1.Pod {
	t.Helper()
	var ready *corev1.Pod
	e.eventually(t, 3*time.Minute, "an operator pod is ready", func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := e.cl.List(ctx, &pods, client.InNamespace(operatorNamespace)); err != nil {
			return false, err
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp == nil && localkube.PodReady(p) {
				ready = p
				return true, nil
			}
		}
		return false, nil
	})
	return ready
}

// eventually polls cond every 500ms until it holds, failing the test after d.
func (e *env) eventually(t *testing.T, d time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx := ctxT(t, d)
	var lastErr error
	for {
		ok, err := cond(ctx)
		if ok {
			return
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting until %s (last error: %v)", d, what, lastErr)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// createCluster creates a KshakaCluster in the given address mode ("" for
// the default, DNS).
func (e *env) createCluster(t *testing.T, ns, name string, replicas int32, mode kshakav1alpha1.AddressMode) {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	if err := e.cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	size := resource.MustParse("64Mi")
	kc := &kshakav1alpha1.KshakaCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kshakav1alpha1.KshakaClusterSpec{
			Replicas: replicas, Image: "ghcr.io/kshaka-io/kshaka-acceptor", Version: "v0.1.0",
			AddressMode: mode,
			Storage:     kshakav1alpha1.StorageSpec{Size: &size},
		},
	}
	must(t, e.cl.Create(ctx, kc))
	clientTLSDir = e.mountSecret(ns, name+"-client-tls")
}

func (e *env) get(t *testing.T, ns, name string) *kshakav1alpha1.KshakaCluster {
	t.Helper()
	var kc kshakav1alpha1.KshakaCluster
	must(t, e.cl.Get(ctxT(t, 30*time.Second), client.ObjectKey{Namespace: ns, Name: name}, &kc))
	return &kc
}

// update applies mutate to the cluster's spec, retrying on conflicts.
func (e *env) update(t *testing.T, ns, name string, mutate func(*kshakav1alpha1.KshakaCluster)) {
	t.Helper()
	for range 10 {
		kc := e.get(t, ns, name)
		mutate(kc)
		err := e.cl.Update(ctxT(t, 30*time.Second), kc)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
	t.Fatal("too many conflicts updating the KshakaCluster")
}

// stable reports whether the cluster has settled at replicas members: the
// spec observed, the configuration and ready pods at that size, Available,
// and no transition in progress.
func stable(kc *kshakav1alpha1.KshakaCluster, replicas int) bool {
	s := kc.Status
	return s.ObservedGeneration == kc.Generation && s.Transition == nil &&
		s.Configuration != nil && len(s.Configuration.Members) == replicas &&
		int(s.ReadyReplicas) == replicas &&
		meta.IsStatusConditionTrue(s.Conditions, kshakav1alpha1.ConditionAvailable)
}

// waitStable waits until the cluster is stable at replicas members.
func (e *env) waitStable(t *testing.T, ns, name string, replicas int, d time.Duration) *kshakav1alpha1.KshakaCluster {
	t.Helper()
	var kc kshakav1alpha1.KshakaCluster
	e.eventually(t, d, fmt.Sprintf("%s/%s is stable at %d members", ns, name, replicas), func(ctx context.Context) (bool, error) {
		if err := e.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &kc); err != nil {
			return false, err
		}
		return stable(&kc, replicas), nil
	})
	t.Logf("%s/%s stable: %s", ns, name, describe(&kc))
	return &kc
}

func describe(kc *kshakav1alpha1.KshakaCluster) string {
	s := kc.Status
	if s.Configuration == nil {
		return "no configuration"
	}
	var ms []string
	for _, m := range s.Configuration.Members {
		ms = append(ms, m.ID+"@"+m.Address+"#"+m.Incarnation)
	}
	return fmt.Sprintf("epoch %d, members %s, quorum %s", s.Configuration.Epoch, strings.Join(ms, " "), s.Quorum)
}

// endpoints are the acceptors' addresses in the current configuration.
func endpoints(kc *kshakav1alpha1.KshakaCluster) []string {
	var eps []string
	for _, m := range kc.Status.Configuration.Members {
		eps = append(eps, m.Address)
	}
	return eps
}

// members maps member ID to incarnation.
func members(kc *kshakav1alpha1.KshakaCluster) map[string]string {
	m := map[string]string{}
	for _, c := range kc.Status.Configuration.Members {
		m[c.ID] = c.Incarnation
	}
	return m
}

// waitFor watches the cluster until cond holds for it and returns it; a
// watch sees every status update, even short-lived ones.
func (e *env) waitFor(t *testing.T, d time.Duration, what string, cond func(*kshakav1alpha1.KshakaCluster) bool) *kshakav1alpha1.KshakaCluster {
	t.Helper()
	ctx := ctxT(t, d)
	for ctx.Err() == nil {
		var list kshakav1alpha1.KshakaClusterList
		w, err := e.wcl.Watch(ctx, &list, client.InNamespace(ns))
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			if kc, ok := ev.Object.(*kshakav1alpha1.KshakaCluster); ok && kc.Name == name && cond(kc) {
				w.Stop()
				return kc
			}
		}
		w.Stop()
	}
	t.Fatalf("timed out after %v waiting until %s", d, what)
	return nil
}

// observer records every transition step the operator writes into status.
type observer struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	steps  []string // "Kind/Reason/Step", in order, without repeats
}

// observe watches the cluster and records every transition step written
// into its status (a watch, so that short steps are not missed).
func (e *env) observe(ns, name string) *observer {
	ctx, cancel := context.WithCancel(context.Background())
	o := &observer{cancel: cancel}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for ctx.Err() == nil {
			var list kshakav1alpha1.KshakaClusterList
			w, err := e.wcl.Watch(ctx, &list, client.InNamespace(ns))
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				kc, ok := ev.Object.(*kshakav1alpha1.KshakaCluster)
				if ok && kc.Name == name && kc.Status.Transition != nil {
					o.record(kc.Status.Transition)
				}
			}
			w.Stop()
		}
	}()
	return o
}

func (o *observer) record(tr *kshakav1alpha1.Transition) {
	s := fmt.Sprintf("%s/%s/%s", tr.Kind, tr.Reason, tr.Step)
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.steps) == 0 || o.steps[len(o.steps)-1] != s {
		o.steps = append(o.steps, s)
	}
}

// stop returns the steps seen.
func (o *observer) stop() []string {
	o.cancel()
	o.wg.Wait()
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.steps)
}

// kinds returns the distinct transition kinds among steps.
func kinds(steps []string) []string {
	var ks []string
	for _, s := range steps {
		k, _, _ := strings.Cut(s, "/")
		if !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	return ks
}
