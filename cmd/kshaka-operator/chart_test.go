package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The chart's render tests live next to the operator's main: what they check
// is that the chart runs this binary as it expects — the Deployment's args
// parse with parseFlags, and its RBAC is what the code needs (rbac_test.go)
// in the namespaces it watches. They run the pinned helm (bin/helm, built by
// `hack/install-tools.sh helm`; `make test` builds it) and never skip.

const (
	testRelease   = "kshaka"
	testNamespace = "kshaka-system"
	// testFullname is the chart's fullname for testRelease.
	testFullname = "kshaka-kshaka-operator"
)

func helmBin(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	h, err := filepath.Abs(filepath.Join("..", "..", "bin", "helm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h); err != nil {
		t.Fatalf("the chart tests need helm at %s (or $HELM): run `hack/install-tools.sh helm` first", h)
	}
	return h
}

// helmTemplate runs `helm template` on the chart with the given --set
// values and returns its output and error.
func helmTemplate(t *testing.T, release, namespace string, set ...string) ([]byte, error) {
	t.Helper()
	return helmTemplateArgs(t, release, namespace, nil, set...)
}

// helmTemplateArgs is helmTemplate with extra arguments (e.g.
// --api-versions) before the --set values.
func helmTemplateArgs(t *testing.T, release, namespace string, extra []string, set ...string) ([]byte, error) {
	t.Helper()
	chart := filepath.Join("..", "..", "charts", "kshaka-operator")
	// helm reads the chart in another process; reading it here too puts
	// its files in `go test`'s cache key, so a chart change reruns the tests.
	if err := filepath.WalkDir(chart, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		_, err = os.ReadFile(path)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"template", release, chart, "--namespace", namespace}, extra...)
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(helmBin(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(stderr.String())
	}
	return out, nil
}

// renderChart renders the chart and decodes every object in it.
func renderChart(t *testing.T, release, namespace string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helmTemplate(t, release, namespace, set...)
	if err != nil {
		t.Fatalf("helm template %v: %v", set, err)
	}
	return decodeObjects(t, out)
}

// decodeObjects decodes a multi-document YAML stream.
func decodeObjects(t *testing.T, b []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decoding YAML: %v", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func find(objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range ofKind(objs, kind) {
		if o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	return nil
}

func mustFind(t *testing.T, objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	o := find(objs, kind, namespace, name)
	if o == nil {
		t.Fatalf("the chart renders no %s %s/%s", kind, namespace, name)
	}
	return o
}

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

// generatedRules are config/rbac/role.yaml's rules, which the chart's copy
// (files/manager-role.yaml) must equal (controllers' manifests test).
func generatedRules(t *testing.T) []rbacv1.PolicyRule {
	return readRules(t, "config/rbac/role.yaml")
}

// checkBinding: b binds roleKind/roleName to the chart's service account.
func checkBinding(t *testing.T, roleKind, roleName string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
	t.Helper()
	want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: testFullname, Namespace: testNamespace}}
	if ref.Kind != roleKind || ref.Name != roleName || !reflect.DeepEqual(subjects, want) {
		t.Errorf("binding of %s %s: roleRef %+v subjects %+v; want the service account %s/%s", roleKind, roleName, ref, subjects, testNamespace, testFullname)
	}
}

// operatorOptions parses the args of the Deployment the chart renders for a
// release (fullname, in namespace) with the operator's own flags,
// POD_NAMESPACE being what the downward API gives it; it fails unless the
// Deployment passes that env var.
func operatorOptions(t *testing.T, objs []*unstructured.Unstructured, namespace, fullname string) *options {
	t.Helper()
	d := convert[appsv1.Deployment](t, mustFind(t, objs, "Deployment", namespace, fullname))
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", n)
	}
	c := d.Spec.Template.Spec.Containers[0]
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "POD_NAMESPACE" })
	if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.FieldRef == nil || c.Env[i].ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Fatalf("the operator container does not get POD_NAMESPACE from metadata.namespace: env %+v", c.Env)
	}
	o, err := parseFlags(c.Args, func(k string) string {
		if k == "POD_NAMESPACE" {
			return namespace
		}
		return ""
	})
	if err != nil {
		t.Fatalf("the chart's args %q do not parse: %v", c.Args, err)
	}
	return o
}

// clusterWideOnlyForMetrics: every ClusterRole but the manager's grants
// only the cluster-scoped reviews of the secure metrics endpoint, or
// non-resource URLs.
func clusterWideOnlyForMetrics(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range ofKind(objs, "ClusterRole") {
		if u.GetName() == testFullname+"-manager" {
			continue
		}
		for _, r := range convert[rbacv1.ClusterRole](t, u).Rules {
			metricsAuth := slices.Equal(r.Verbs, []string{"create"}) && len(r.Resources) == 1 &&
				(slices.Equal(r.APIGroups, []string{"authentication.k8s.io"}) && r.Resources[0] == "tokenreviews" ||
					slices.Equal(r.APIGroups, []string{"authorization.k8s.io"}) && r.Resources[0] == "subjectaccessreviews")
			if !metricsAuth && len(r.Resources) > 0 {
				t.Errorf("ClusterRole %s grants %+v cluster-wide", u.GetName(), r)
			}
		}
	}
}

// TestChartAllNamespaces: by default the chart binds the generated rules
// cluster-wide and runs the operator on every namespace.
func TestChartAllNamespaces(t *testing.T) {
	objs := renderChart(t, testRelease, testNamespace)
	cr := convert[rbacv1.ClusterRole](t, mustFind(t, objs, "ClusterRole", "", testFullname+"-manager"))
	if !reflect.DeepEqual(cr.Rules, generatedRules(t)) {
		t.Errorf("the manager ClusterRole's rules differ from config/rbac/role.yaml:\n%+v", cr.Rules)
	}
	checkGrants(t, "the chart's manager ClusterRole", cr.Rules, managerGrants, pendingGrants)
	crb := convert[rbacv1.ClusterRoleBinding](t, mustFind(t, objs, "ClusterRoleBinding", "", testFullname+"-manager"))
	checkBinding(t, "ClusterRole", testFullname+"-manager", crb.RoleRef, crb.Subjects)
	for _, kind := range []string{"Role", "RoleBinding"} {
		for _, u := range ofKind(objs, kind) {
			if strings.HasSuffix(u.GetName(), "-manager") {
				t.Errorf("without watchNamespaces the chart renders %s %s/%s", kind, u.GetNamespace(), u.GetName())
			}
		}
	}
	clusterWideOnlyForMetrics(t, objs)

	le := convert[rbacv1.Role](t, mustFind(t, objs, "Role", testNamespace, testFullname+"-leader-election"))
	checkGrants(t, "the chart's leader-election Role", le.Rules, leaderElectionGrants, nil)
	leb := convert[rbacv1.RoleBinding](t, mustFind(t, objs, "RoleBinding", testNamespace, testFullname+"-leader-election"))
	checkBinding(t, "Role", testFullname+"-leader-election", leb.RoleRef, leb.Subjects)

	o := operatorOptions(t, objs, testNamespace, testFullname)
	if o.watchNamespaces != nil || o.operatorNamespace != testNamespace || o.leaderElectionNS != testNamespace || !o.leaderElect {
		t.Errorf("the chart runs the operator with %+v", o)
	}
}

// TestChartWatchNamespaces: with watchNamespaces the manager's rules are a
// Role in each watched namespace, the operator watches exactly those, and
// nothing but the metrics reviews is granted cluster-wide.
func TestChartWatchNamespaces(t *testing.T) {
	watched := []string{"team-a", "team-b"}
	objs := renderChart(t, testRelease, testNamespace, "watchNamespaces={team-a,team-b}")
	for _, ns := range watched {
		r := convert[rbacv1.Role](t, mustFind(t, objs, "Role", ns, testFullname+"-manager"))
		if !reflect.DeepEqual(r.Rules, generatedRules(t)) {
			t.Errorf("the manager Role in %s: rules differ from config/rbac/role.yaml:\n%+v", ns, r.Rules)
		}
		rb := convert[rbacv1.RoleBinding](t, mustFind(t, objs, "RoleBinding", ns, testFullname+"-manager"))
		checkBinding(t, "Role", testFullname+"-manager", rb.RoleRef, rb.Subjects)
	}
	for _, kind := range []string{"Role", "RoleBinding"} {
		for _, u := range ofKind(objs, kind) {
			if strings.HasSuffix(u.GetName(), "-manager") && !slices.Contains(watched, u.GetNamespace()) {
				t.Errorf("%s %s/%s is outside the watched namespaces", kind, u.GetNamespace(), u.GetName())
			}
		}
	}
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding"} {
		if u := find(objs, kind, "", testFullname+"-manager"); u != nil {
			t.Errorf("with watchNamespaces the chart still renders the %s %s", kind, u.GetName())
		}
	}
	clusterWideOnlyForMetrics(t, objs)
	mustFind(t, objs, "Role", testNamespace, testFullname+"-leader-election")

	o := operatorOptions(t, objs, testNamespace, testFullname)
	if !slices.Equal(o.watchNamespaces, watched) || o.operatorNamespace != testNamespace {
		t.Errorf("the chart runs the operator with %+v, want it to watch %v", o, watched)
	}

	// Without secure metrics nothing at all is cluster-wide but the CRD.
	objs = renderChart(t, testRelease, testNamespace, "watchNamespaces={team-a}", "metrics.secure=false")
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding"} {
		for _, u := range ofKind(objs, kind) {
			t.Errorf("with watchNamespaces and metrics.secure=false the chart renders the %s %s", kind, u.GetName())
		}
	}
}

func TestChartWithoutRBAC(t *testing.T) {
	for _, set := range [][]string{{"rbac.create=false"}, {"rbac.create=false", "watchNamespaces={team-a}"}} {
		objs := renderChart(t, testRelease, testNamespace, set...)
		for _, kind := range []string{"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
			for _, u := range ofKind(objs, kind) {
				t.Errorf("%v: renders %s %s/%s", set, kind, u.GetNamespace(), u.GetName())
			}
		}
	}
}

// TestChartRejectsBadWatchNamespaces: values.schema.json refuses what the
// operator's --watch-namespaces would refuse, before anything is installed.
func TestChartRejectsBadWatchNamespaces(t *testing.T) {
	for _, bad := range []string{"watchNamespaces={Team_A}", "watchNamespaces={a,a}", `watchNamespaces={""}`, "watchNamespaces=team-a"} {
		_, err := helmTemplate(t, testRelease, testNamespace, bad)
		if err == nil {
			t.Errorf("--set %s rendered", bad)
			continue
		}
		if !strings.Contains(err.Error(), "watchNamespaces") {
			t.Errorf("--set %s: error does not name watchNamespaces:\n%v", bad, err)
		}
	}
}

// TestKustomizeManager: the kustomize Deployment (config/manager, the base
// of dist/install.yaml) runs the operator with args it parses and passes
// POD_NAMESPACE, as the chart does.
func TestKustomizeManager(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "manager", "manager.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	o := operatorOptions(t, decodeObjects(t, b), "system", "controller-manager")
	if o.operatorNamespace != "system" || o.leaderElectionNS != "system" || !o.leaderElect || o.watchNamespaces != nil {
		t.Errorf("config/manager runs the operator with %+v", o)
	}
}
