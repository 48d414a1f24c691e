package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
	"github.com/kshaka-io/kshaka/controllers"
)

// The monitoring objects of the chart (templates/podmonitor.yaml,
// servicemonitor.yaml, prometheusrule.yaml, grafana-dashboard.yaml) and of
// config/prometheus, decoded strictly into the Prometheus operator's own
// types and checked against what the operator actually runs.

// strict decodes u into T, refusing any field T does not have.
func strict[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	b, err := json.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	out := new(T)
	if err := dec.Decode(out); err != nil {
		t.Fatalf("%s %s does not decode strictly into %T: %v", u.GetKind(), u.GetName(), out, err)
	}
	return out
}

// helmTemplateWith renders the chart with extra arguments (e.g.
// --api-versions) and decodes every object in it.
func helmTemplateWith(t *testing.T, extra []string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helmTemplateArgs(t, testRelease, testNamespace, extra, set...)
	if err != nil {
		t.Fatalf("helm template %v %v: %v", extra, set, err)
	}
	return decodeObjects(t, out)
}

var monitoringKinds = []string{"PodMonitor", "ServiceMonitor", "PrometheusRule"}

func countKinds(objs []*unstructured.Unstructured, kinds ...string) int {
	n := 0
	for _, k := range kinds {
		n += len(ofKind(objs, k))
	}
	return n
}

// TestChartMonitoringIsOffUnlessAsked: the monitors and the rule render only
// with monitoring.enabled=true, or with "auto" (the default) when the
// cluster serves monitoring.coreos.com/v1; false turns them off either way.
func TestChartMonitoringIsOffUnlessAsked(t *testing.T) {
	crds := []string{"--api-versions", "monitoring.coreos.com/v1/PodMonitor", "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
		"--api-versions", "monitoring.coreos.com/v1/PrometheusRule"}
	for _, tc := range []struct {
		name  string
		extra []string
		set   []string
		want  int
	}{
		{"default, no CRDs", nil, nil, 0},
		{"default, CRDs served", crds, nil, 3},
		{"enabled", nil, []string{"monitoring.enabled=true"}, 3},
		{"disabled, CRDs served", crds, []string{"monitoring.enabled=false"}, 0},
		{"enabled, only the rule", nil, []string{"monitoring.enabled=true", "monitoring.podMonitor.enabled=false", "monitoring.serviceMonitor.enabled=false"}, 1},
		{"enabled, operator metrics off", nil, []string{"monitoring.enabled=true", "metrics.enabled=false"}, 2},
	} {
		objs := helmTemplateWith(t, tc.extra, tc.set...)
		if got := countKinds(objs, monitoringKinds...); got != tc.want {
			t.Errorf("%s: %d monitoring objects, want %d", tc.name, got, tc.want)
		}
		if n := len(ofKind(objs, "ConfigMap")); n != 0 {
			t.Errorf("%s: the dashboard ConfigMap renders without monitoring.grafanaDashboard.enabled", tc.name)
		}
	}
	if _, err := helmTemplate(t, testRelease, testNamespace, "monitoring.enabled=yes"); err == nil || !strings.Contains(err.Error(), "monitoring") {
		t.Errorf("monitoring.enabled=yes: error %v, want the schema to refuse it", err)
	}
}

// acceptorPod is the pod template of the acceptors the operator runs.
func acceptorPod() *corev1.PodTemplateSpec {
	kc := &kshakav1alpha1.KshakaCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "kc", Namespace: "team-a", UID: types.UID("uid-1")},
		Spec:       kshakav1alpha1.KshakaClusterSpec{Replicas: 3},
	}
	return &controllers.StatefulSet(kc, 3).Spec.Template
}

// checkPodMonitor: pm selects the acceptor pods by the labels the operator
// sets, scrapes their metrics port, and labels the series with the cluster.
func checkPodMonitor(t *testing.T, where string, pm *monitoringv1.PodMonitor) {
	t.Helper()
	pod := acceptorPod()
	sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
	if err != nil {
		t.Fatalf("%s: PodMonitor selector: %v", where, err)
	}
	if sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("%s: the PodMonitor's selector %s does not match the acceptor pods' labels %v", where, sel, pod.Labels)
	}
	// It does not select the operator's own pods.
	if sel.Matches(labels.Set{"app.kubernetes.io/name": "kshaka-operator", "control-plane": "controller-manager"}) {
		t.Errorf("%s: the PodMonitor's selector %s matches the operator's pods", where, sel)
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("%s: %d podMetricsEndpoints, want 1", where, len(pm.Spec.PodMetricsEndpoints))
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	var port *corev1.ContainerPort
	for _, c := range pod.Spec.Containers {
		for i, p := range c.Ports {
			if ep.Port != nil && p.Name == *ep.Port {
				port = &c.Ports[i]
			}
		}
	}
	if port == nil || port.ContainerPort != controllers.MetricsPort || ep.Path != "/metrics" {
		t.Errorf("%s: the PodMonitor scrapes port %v path %q; the acceptor's metrics port is %d (%v)", where, ep.Port, ep.Path, controllers.MetricsPort, port)
	}
	relabels := map[string]monitoringv1.RelabelConfig{}
	for _, r := range ep.RelabelConfigs {
		relabels[r.TargetLabel] = r
	}
	cl, ok := relabels["cluster"]
	if !ok || len(cl.SourceLabels) != 1 {
		t.Fatalf("%s: no relabeling sets the cluster label: %+v", where, ep.RelabelConfigs)
	}
	const prefix = "__meta_kubernetes_pod_label_"
	src := strings.TrimPrefix(string(cl.SourceLabels[0]), prefix)
	if v := pod.Labels[controllers.LabelInstance]; src != sanitize(controllers.LabelInstance) || v != "kc" {
		t.Errorf("%s: the cluster label comes from %s, want %s%s (the pod label %s, the cluster's name; got %q)",
			where, cl.SourceLabels[0], prefix, sanitize(controllers.LabelInstance), controllers.LabelInstance, v)
	}
	if j, ok := relabels["job"]; !ok || j.Replacement == nil || *j.Replacement != "kshaka-acceptor" {
		t.Errorf("%s: the acceptors' job label is not kshaka-acceptor: %+v", where, relabels["job"])
	}
}

// sanitize turns a Kubernetes label name into its Prometheus meta label form.
func sanitize(label string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, label)
}

// rulesFile is the one source of the alerts, as the Prometheus operator's type.
func rulesFile(t *testing.T) monitoringv1.PrometheusRuleSpec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "charts", "kshaka-operator", "files", "prometheus-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var spec monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(b, &spec); err != nil {
		t.Fatalf("files/prometheus-rules.yaml: %v", err)
	}
	if len(spec.Groups) == 0 || len(spec.Groups[0].Rules) < 9 {
		t.Fatalf("files/prometheus-rules.yaml has %d groups", len(spec.Groups))
	}
	return spec
}

// checkRules: every alert carries a severity and the annotations an on-call
// person needs, with a runbook under docs/operations.
func checkRules(t *testing.T, spec monitoringv1.PrometheusRuleSpec) {
	t.Helper()
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s has a rule that is not an alert (%s)", g.Name, r.Record)
				continue
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s has no %s annotation", r.Alert, a)
				}
			}
			checkRunbook(t, r.Alert, r.Annotations["runbook_url"])
		}
	}
}

// checkRunbook: url is an anchor of a page in docs/operations; once that
// page exists (the runbooks are written apart from the alerts), it has a
// heading with that anchor.
func checkRunbook(t *testing.T, alert, url string) {
	t.Helper()
	const base = "https://github.com/kshaka-io/kshaka/blob/main/docs/operations/"
	page, anchor, ok := strings.Cut(strings.TrimPrefix(url, base), "#")
	if !strings.HasPrefix(url, base) || !ok || !strings.HasSuffix(page, ".md") || anchor == "" {
		t.Errorf("%s: runbook_url %q is not an anchor in docs/operations", alert, url)
		return
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations", page))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok && githubAnchor(strings.TrimLeft(h, "#")) == anchor {
			return
		}
	}
	t.Errorf("%s: docs/operations/%s has no heading with the anchor #%s", alert, page, anchor)
}

// githubAnchor is the anchor GitHub gives a Markdown heading: lower case,
// punctuation dropped, spaces as hyphens.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestChartMonitoringObjects decodes the rendered monitors and rule strictly
// into the Prometheus operator's v1 types and checks them against the
// operator: the PodMonitor selects the acceptor pods controllers.StatefulSet
// makes, the ServiceMonitor the chart's metrics Service, and the rule is the
// rules file unchanged.
func TestChartMonitoringObjects(t *testing.T) {
	objs := helmTemplateWith(t, nil, "monitoring.enabled=true", "monitoring.labels.release=prom", "monitoring.interval=30s")
	pmU := mustFind(t, objs, "PodMonitor", testNamespace, testFullname+"-acceptors")
	smU := mustFind(t, objs, "ServiceMonitor", testNamespace, testFullname+"-operator")
	prU := mustFind(t, objs, "PrometheusRule", testNamespace, testFullname+"-alerts")
	pm := strict[monitoringv1.PodMonitor](t, pmU)
	sm := strict[monitoringv1.ServiceMonitor](t, smU)
	pr := strict[monitoringv1.PrometheusRule](t, prU)
	for _, m := range []metav1.ObjectMeta{pm.ObjectMeta, sm.ObjectMeta, pr.ObjectMeta} {
		if m.Labels["release"] != "prom" {
			t.Errorf("%s lacks monitoring.labels: %v", m.Name, m.Labels)
		}
	}

	checkPodMonitor(t, "chart", pm)
	if !pm.Spec.NamespaceSelector.Any {
		t.Errorf("without watchNamespaces the PodMonitor should watch every namespace: %+v", pm.Spec.NamespaceSelector)
	}
	if pm.Spec.PodMetricsEndpoints[0].Interval != "30s" {
		t.Errorf("monitoring.interval not applied: %+v", pm.Spec.PodMetricsEndpoints[0])
	}
	objs2 := helmTemplateWith(t, nil, "monitoring.enabled=true", "watchNamespaces={team-a,team-b}")
	pm2 := strict[monitoringv1.PodMonitor](t, mustFind(t, objs2, "PodMonitor", testNamespace, testFullname+"-acceptors"))
	if pm2.Spec.NamespaceSelector.Any || !slices.Equal(pm2.Spec.NamespaceSelector.MatchNames, []string{"team-a", "team-b"}) {
		t.Errorf("with watchNamespaces the PodMonitor watches %+v", pm2.Spec.NamespaceSelector)
	}

	// The ServiceMonitor selects exactly the metrics Service, by its port.
	svc := convert[corev1.Service](t, mustFind(t, objs, "Service", testNamespace, testFullname+"-metrics"))
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ofKind(objs, "Service") {
		if matches := sel.Matches(labels.Set(s.GetLabels())); matches != (s.GetName() == svc.Name) {
			t.Errorf("the ServiceMonitor's selector %s matches Service %s: %v", sel, s.GetName(), matches)
		}
	}
	if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{testNamespace}) {
		t.Errorf("ServiceMonitor namespaces %+v", sm.Spec.NamespaceSelector)
	}
	if len(sm.Spec.Endpoints) != 1 || len(svc.Spec.Ports) != 1 {
		t.Fatalf("ServiceMonitor endpoints %+v, Service ports %+v", sm.Spec.Endpoints, svc.Spec.Ports)
	}
	ep := sm.Spec.Endpoints[0]
	// bearerTokenFile is deprecated in favour of authorization, which needs
	// a Secret; the operator's TokenReview wants Prometheus' own service
	// account token, which only the file gives (as kubebuilder's monitor).
	//nolint:staticcheck // see above
	if ep.Port != svc.Spec.Ports[0].Name || ep.Scheme == nil || ep.Scheme.String() != "https" || ep.BearerTokenFile == "" {
		t.Errorf("the ServiceMonitor scrapes %+v; the Service serves %+v over HTTPS with token auth", ep, svc.Spec.Ports[0])
	}
	if len(ep.RelabelConfigs) != 1 || ep.RelabelConfigs[0].TargetLabel != "job" || *ep.RelabelConfigs[0].Replacement != "kshaka-operator" {
		t.Errorf("the operator's job label is not kshaka-operator: %+v", ep.RelabelConfigs)
	}
	insecure := helmTemplateWith(t, nil, "monitoring.enabled=true", "metrics.secure=false")
	ep = strict[monitoringv1.ServiceMonitor](t, mustFind(t, insecure, "ServiceMonitor", testNamespace, testFullname+"-operator")).Spec.Endpoints[0]
	//nolint:staticcheck // bearerTokenFile: see above
	if ep.Port != "http" || ep.Scheme.String() != "http" || ep.BearerTokenFile != "" || ep.TLSConfig != nil {
		t.Errorf("with metrics.secure=false the ServiceMonitor scrapes %+v", ep)
	}

	// The rule is the rules file, unchanged.
	want := rulesFile(t)
	checkRules(t, want)
	if !reflect.DeepEqual(pr.Spec, want) {
		t.Errorf("the chart's PrometheusRule differs from files/prometheus-rules.yaml")
	}
}

// TestKustomizePrometheus: config/prometheus's monitors and rule decode
// strictly, select what the chart's do, and its rule is generated from the
// same rules file (make manifests; verify-generated checks freshness).
func TestKustomizePrometheus(t *testing.T) {
	dir := filepath.Join("..", "..", "config", "prometheus")
	var objs []*unstructured.Unstructured
	for _, f := range []string{"monitor.yaml", "rules.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, decodeObjects(t, b)...)
	}
	if got := countKinds(objs, monitoringKinds...); got != 3 {
		t.Fatalf("config/prometheus has %d monitoring objects, want 3", got)
	}
	checkPodMonitor(t, "config/prometheus", strict[monitoringv1.PodMonitor](t, ofKind(objs, "PodMonitor")[0]))
	sm := strict[monitoringv1.ServiceMonitor](t, ofKind(objs, "ServiceMonitor")[0])
	svcObjs := decodeObjects(t, mustRead(t, filepath.Join("..", "..", "config", "default", "metrics_service.yaml")))
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if svc := svcObjs[0]; !sel.Matches(labels.Set(svc.GetLabels())) {
		t.Errorf("config/prometheus's ServiceMonitor selector %s does not match the metrics Service's labels %v", sel, svc.GetLabels())
	}
	pr := strict[monitoringv1.PrometheusRule](t, ofKind(objs, "PrometheusRule")[0])
	if !reflect.DeepEqual(pr.Spec, rulesFile(t)) {
		t.Errorf("config/prometheus/rules.yaml differs from charts/kshaka-operator/files/prometheus-rules.yaml: run `make manifests`")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestChartGrafanaDashboard: the dashboard ConfigMap carries the sidecar's
// label and the dashboard file unchanged, which is valid JSON.
func TestChartGrafanaDashboard(t *testing.T) {
	objs := helmTemplateWith(t, nil, "monitoring.grafanaDashboard.enabled=true", "monitoring.grafanaDashboard.namespace=grafana")
	cm := convert[corev1.ConfigMap](t, mustFind(t, objs, "ConfigMap", "grafana", testFullname+"-dashboard"))
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels %v lack grafana_dashboard: \"1\"", cm.Labels)
	}
	file := mustRead(t, filepath.Join("..", "..", "charts", "kshaka-operator", "dashboards", "kshaka.json"))
	if cm.Data["kshaka.json"] != strings.TrimRight(string(file), "\n") {
		t.Errorf("the ConfigMap's kshaka.json differs from dashboards/kshaka.json")
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(file, &d); err != nil || d.UID == "" || len(d.Panels) < 10 {
		t.Fatalf("dashboards/kshaka.json: uid %q, %d panels, %v", d.UID, len(d.Panels), err)
	}
	for i, p := range d.Panels {
		if p.Type != "row" && (len(p.Targets) == 0 || p.Targets[0].Expr == "") {
			t.Errorf("panel %d (%s) has no query", i, p.Type)
		}
	}
}
