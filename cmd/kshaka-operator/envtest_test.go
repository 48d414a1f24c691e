package main

import (
	"context"
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
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
	"github.com/kshaka-io/kshaka/controllers"
)

// These tests run the operator's own manager (newManager, setup) against a
// real kube-apiserver and etcd (envtest; bin/k8s, built by `make
// kube-binaries`), as the chart's service account with exactly the RBAC the
// chart renders. The API server enforces RBAC and runs the
// OwnerReferencesPermissionEnforcement admission plugin, as OpenShift and
// hardened clusters do. Like the controllers' envtest suite, they never
// skip: without the binaries they fail and say how to build them.

var (
	envOnce    sync.Once
	envRest    *rest.Config
	envErr     error
	testEnv    *envtest.Environment
	testScheme = runtime.NewScheme()
	nsSeq      atomic.Int32
)

func init() {
	if err := clientgoscheme.AddToScheme(testScheme); err != nil {
		panic(err)
	}
	if err := kshakav1alpha1.AddToScheme(testScheme); err != nil {
		panic(err)
	}
}

func TestMain(m *testing.M) {
	// The operator's log: errors only (a Forbidden is one), everything with
	// KSHAKA_TEST_LOG=1.
	level := slog.LevelError
	if os.Getenv("KSHAKA_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
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
		dir = filepath.Join("..", "..", "bin", "k8s")
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

// startEnv starts the shared API server once and returns an admin client.
func startEnv(t *testing.T) (*rest.Config, client.Client) {
	t.Helper()
	envOnce.Do(func() {
		assets, err := kubeAssets()
		if err != nil {
			envErr = err
			return
		}
		testEnv = &envtest.Environment{
			CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
			ErrorIfCRDPathMissing: true,
			BinaryAssetsDirectory: assets,
		}
		testEnv.ControlPlane.GetAPIServer().Configure().Append("enable-admission-plugins", "OwnerReferencesPermissionEnforcement")
		envRest, envErr = testEnv.Start()
		if envErr != nil {
			envErr = fmt.Errorf("starting envtest with the binaries in %s: %w", assets, envErr)
		}
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	c, err := client.New(envRest, client.Options{Scheme: testScheme})
	if err != nil {
		t.Fatal(err)
	}
	return envRest, c
}

func newNamespace(t *testing.T, c client.Client, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, nsSeq.Add(1))}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// eventually polls cond every 100ms until it returns nil, and fails the test
// with cond's last error after d: d bounds a wait, it is not what is tested.
func eventually(t *testing.T, d time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		err := cond(ctx)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startManager starts mgr until the test ends.
func startManager(t *testing.T, mgr manager.Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the manager stopped with %v", err)
		}
	})
}

// testOptions are the operator's options for args, without the metrics and
// probe servers (several managers run in one test process).
func testOptions(t *testing.T, args ...string) *options {
	t.Helper()
	o, err := parseFlags(args, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	o.metricsAddr, o.probeAddr = "0", "0"
	o.skipNameValidation = true
	return o
}

var managedLabels = map[string]string{controllers.LabelManagedBy: "kshaka-operator"}

// TestCacheSeesOnlyManagedObjects: the operator's client answers from a
// cache that holds only the Secrets, Pods and PersistentVolumeClaims
// labelled app.kubernetes.io/managed-by=kshaka-operator. An unlabelled one
// is NotFound to it and absent from lists, until it is given the label.
func TestCacheSeesOnlyManagedObjects(t *testing.T) {
	cfg, c := startEnv(t)
	ns := newNamespace(t, c, "cache")
	o := testOptions(t, "--watch-namespaces="+ns)
	mgr, err := newManager(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	startManager(t, mgr)
	cached := mgr.GetClient()

	for _, kind := range []struct {
		name string
		make func(name string, labels map[string]string) client.Object
		list client.ObjectList
	}{
		{"Secret", func(name string, l map[string]string) client.Object {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l}, StringData: map[string]string{"k": "v"}}
		}, &corev1.SecretList{}},
		{"Pod", func(name string, l map[string]string) client.Object {
			return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/c"}}}}
		}, &corev1.PodList{}},
		{"PersistentVolumeClaim", func(name string, l map[string]string) client.Object {
			return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				}}
		}, &corev1.PersistentVolumeClaimList{}},
	} {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			plain := kind.make("plain", map[string]string{"app": "someone-else"})
			managed := kind.make("managed", managedLabels)
			// plain first: once managed is in the cache, the cache has seen
			// every event up to it, plain's creation included.
			for _, obj := range []client.Object{plain, managed} {
				if err := c.Create(ctx, obj); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, time.Minute, "the labelled "+kind.name+" in the cache", func(ctx context.Context) error {
				return cached.Get(ctx, client.ObjectKeyFromObject(managed), kind.make("", nil))
			})
			if err := cached.Get(ctx, client.ObjectKeyFromObject(plain), kind.make("", nil)); !apierrors.IsNotFound(err) {
				t.Errorf("the unlabelled %s: Get answered %v, want NotFound", kind.name, err)
			}
			if err := cached.List(ctx, kind.list, client.InNamespace(ns)); err != nil {
				t.Fatal(err)
			}
			if names := listNames(t, kind.list); !slices.Equal(names, []string{"managed"}) {
				t.Errorf("the operator lists %s %v, want only the labelled one", kind.name, names)
			}
			// The label is what hides it: labelled, it appears.
			patch := client.MergeFrom(plain.DeepCopyObject().(client.Object))
			plain.SetLabels(managedLabels)
			if err := c.Patch(ctx, plain, patch); err != nil {
				t.Fatal(err)
			}
			eventually(t, time.Minute, "the newly labelled "+kind.name+" in the cache", func(ctx context.Context) error {
				return cached.Get(ctx, client.ObjectKeyFromObject(plain), kind.make("", nil))
			})
		})
	}
}

func listNames(t *testing.T, l client.ObjectList) []string {
	t.Helper()
	var names []string
	switch l := l.(type) {
	case *corev1.SecretList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *corev1.PodList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case *corev1.PersistentVolumeClaimList:
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	default:
		t.Fatalf("list type %T", l)
	}
	slices.Sort(names)
	return names
}

// install creates the chart's service account and RBAC objects (nothing
// else: the CRD is envtest's, the operator runs in the test).
func install(t *testing.T, c client.Client, release, namespace string, set ...string) []string {
	t.Helper()
	var created []string
	for _, u := range renderChart(t, release, namespace, set...) {
		switch u.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		default:
			continue
		}
		if err := c.Create(context.Background(), u); err != nil {
			t.Fatalf("creating the chart's %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		created = append(created, u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName())
	}
	return created
}

// serviceAccountUser is how the API server sees the chart's service account.
func serviceAccountUser(t *testing.T, namespace, name string) (envtest.User, *rest.Config) {
	t.Helper()
	u := envtest.User{
		Name:   "system:serviceaccount:" + namespace + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace},
	}
	au, err := testEnv.AddUser(u, envRest)
	if err != nil {
		t.Fatal(err)
	}
	return u, au.Config()
}

// allowed asks the API server whether user may do verb on the resource in
// namespace.
func allowed(ctx context.Context, c client.Client, u envtest.User, namespace string, g grant, verb string) (bool, error) {
	res, sub, _ := strings.Cut(g.resource, "/")
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: u.Name, Groups: u.Groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verb, Group: g.group, Resource: res, Subresource: sub},
	}}
	if err := c.Create(ctx, sar); err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}

// checkAccess: u may do every verb of grants in namespace when want, none
// of them when not. RBAC changes reach the authorizer through its informers,
// so this waits for the answer to settle on want.
func checkAccess(t *testing.T, c client.Client, u envtest.User, namespace string, grants []grant, want bool) {
	t.Helper()
	for _, g := range grants {
		for _, verb := range g.verbs {
			eventually(t, time.Minute, fmt.Sprintf("%s to be allowed=%v to %s %s in %s", u.Name, want, verb, resourceKey{g.group, g.resource}, namespace),
				func(ctx context.Context) error {
					ok, err := allowed(ctx, c, u, namespace, g, verb)
					if err != nil || ok == want {
						return err
					}
					return fmt.Errorf("allowed=%v", ok)
				})
		}
	}
}

// TestChartRBACRunsTheOperator installs the chart's RBAC, checks what it
// allows where, and runs the operator as the chart's service account with
// the chart's args until it has created a KshakaCluster's objects and
// recorded its status. Namespaced, the operator may do nothing outside the
// watched namespace.
func TestChartRBACRunsTheOperator(t *testing.T) {
	_, c := startEnv(t)
	for _, mode := range []struct {
		name       string
		namespaced bool
	}{{"AllNamespaces", false}, {"WatchNamespaces", true}} {
		t.Run(mode.name, func(t *testing.T) {
			release := strings.ToLower(mode.name)
			fullname := release + "-kshaka-operator"
			system := newNamespace(t, c, release+"-system")
			watched := newNamespace(t, c, "watched")
			other := newNamespace(t, c, "other")
			var set []string
			if mode.namespaced {
				set = append(set, "watchNamespaces={"+watched+"}")
			}
			created := install(t, c, release, system, set...)
			t.Logf("installed %s", strings.Join(created, ", "))

			u, userCfg := serviceAccountUser(t, system, fullname)
			checkAccess(t, c, u, watched, managerGrants, true)
			checkAccess(t, c, u, system, leaderElectionGrants, true)
			if mode.namespaced {
				checkAccess(t, c, u, other, slices.Concat(managerGrants, pendingGrants), false)
				checkAccess(t, c, u, system, managerGrants, false)
			} else {
				checkAccess(t, c, u, other, managerGrants, true)
			}
			// Nothing beyond its list, anywhere: not even reading Secrets
			// or ConfigMaps, nor the verbs it does not use.
			for _, ns := range []string{watched, other, system} {
				checkAccess(t, c, u, ns, []grant{
					{"", "configmaps", []string{"get", "list"}, ""},
					{"kshaka.io", "kshakaclusters", []string{"create", "update", "patch", "delete"}, ""},
					{"apps", "statefulsets", []string{"patch"}, ""},
					{"", "services", []string{"patch", "delete"}, ""},
				}, false)
			}

			objs := renderChart(t, release, system, set...)
			o := operatorOptions(t, objs, system, fullname)
			o.metricsAddr, o.probeAddr, o.skipNameValidation = "0", "0", true
			mgr, err := newManager(userCfg, o)
			if err != nil {
				t.Fatal(err)
			}
			acc := &controllers.GRPCAcceptors{}
			t.Cleanup(func() { _ = acc.Close() })
			if err := setup(mgr, o, acc); err != nil {
				t.Fatal(err)
			}
			startManager(t, mgr)
			runCluster(t, c, watched)
		})
	}
}

// runCluster creates a KshakaCluster in ns and waits for the operator to
// create its Services, StatefulSet and PodDisruptionBudget (each with a
// controller reference that blocks owner deletion, which the admission
// plugin admits only with kshakaclusters/finalizers update) and to record
// its status; then scales it to 1, below which the PodDisruptionBudget is
// deleted. No kubelet or StatefulSet controller
// runs, so there are no pods and no membership.
func runCluster(t *testing.T, c client.Client, ns string) {
	t.Helper()
	ctx := context.Background()
	kc := &kshakav1alpha1.KshakaCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "kc", Namespace: ns},
		Spec:       kshakav1alpha1.KshakaClusterSpec{Replicas: 3},
	}
	if err := c.Create(ctx, kc); err != nil {
		t.Fatal(err)
	}
	owned := func(ctx context.Context, obj client.Object, name string) error {
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
			return err
		}
		if !metav1.IsControlledBy(obj, kc) {
			return fmt.Errorf("%T %s is not controlled by the KshakaCluster", obj, name)
		}
		return nil
	}
	eventually(t, 2*time.Minute, "the operator to create the cluster's objects and record its status", func(ctx context.Context) error {
		for _, o := range []struct {
			obj  client.Object
			name string
		}{
			{&corev1.Service{}, controllers.ClientServiceName(kc)},
			{&corev1.Service{}, controllers.PeerServiceName(kc)},
			{&appsv1.StatefulSet{}, controllers.StatefulSetName(kc)},
			{&policyv1.PodDisruptionBudget{}, controllers.PDBName(kc)},
		} {
			if err := owned(ctx, o.obj, o.name); err != nil {
				return err
			}
		}
		var got kshakav1alpha1.KshakaCluster
		if err := c.Get(ctx, client.ObjectKeyFromObject(kc), &got); err != nil {
			return err
		}
		if got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("status.observedGeneration %d, generation %d", got.Status.ObservedGeneration, got.Generation)
		}
		return nil
	})

	patch := client.MergeFrom(kc.DeepCopy())
	kc.Spec.Replicas = 1
	if err := c.Patch(ctx, kc, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "the operator to delete the PodDisruptionBudget of a one-acceptor cluster", func(ctx context.Context) error {
		err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: controllers.PDBName(kc)}, &policyv1.PodDisruptionBudget{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			return fmt.Errorf("the PodDisruptionBudget is still there")
		}
		return err
	})
}

// TestOwnerReferencesNeedFinalizersUpdate is why the manager role grants
// kshakaclusters/finalizers update although the operator adds no
// finalizer: its objects' controller references set blockOwnerDeletion,
// and with OwnerReferencesPermissionEnforcement (on in OpenShift and
// hardened clusters) the API server admits that only from who may update
// the owner's finalizers.
func TestOwnerReferencesNeedFinalizersUpdate(t *testing.T) {
	_, c := startEnv(t)
	ctx := context.Background()
	ns := newNamespace(t, c, "finalizers")
	kc := &kshakav1alpha1.KshakaCluster{ObjectMeta: metav1.ObjectMeta{Name: "kc", Namespace: ns}, Spec: kshakav1alpha1.KshakaClusterSpec{Replicas: 3}}
	if err := c.Create(ctx, kc); err != nil {
		t.Fatal(err)
	}
	u, userCfg := serviceAccountUser(t, ns, "without-finalizers")
	uc, err := client.New(userCfg, client.Options{Scheme: testScheme})
	if err != nil {
		t.Fatal(err)
	}
	var rules []rbacv1.PolicyRule
	for _, r := range readRules(t, "config/rbac/role.yaml") {
		r.Resources = slices.DeleteFunc(slices.Clone(r.Resources), func(res string) bool { return res == "kshakaclusters/finalizers" })
		if len(r.Resources) > 0 {
			rules = append(rules, r)
		}
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "manager", Namespace: ns}, Rules: rules}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "manager", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "manager"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "without-finalizers", Namespace: ns}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	checkAccess(t, c, u, ns, []grant{{"", "services", []string{"create"}, ""}}, true)

	svc := controllers.ClientService(kc)
	err = uc.Create(ctx, svc.DeepCopy())
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "blockOwnerDeletion") {
		t.Fatalf("creating a Service controlled by the cluster without kshakaclusters/finalizers update: %v, want Forbidden (blockOwnerDeletion)", err)
	}

	role.Rules = readRules(t, "config/rbac/role.yaml")
	if err := c.Update(ctx, role); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the Service to be admitted with kshakaclusters/finalizers update", func(ctx context.Context) error {
		return uc.Create(ctx, svc.DeepCopy())
	})
}
