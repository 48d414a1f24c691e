package controllers

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kshaka-io/kshaka/acceptor"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

func TestFailuresTolerated(t *testing.T) {
	for _, tc := range []struct {
		q    QuorumHealth
		want int
	}{
		{QuorumHealth{}, -1}, // no configuration
		{QuorumHealth{Configured: true, PrepareServing: 3, AcceptServing: 3, PrepareQuorum: 2, AcceptQuorum: 2}, 1},
		{QuorumHealth{Configured: true, PrepareServing: 5, AcceptServing: 5, PrepareQuorum: 3, AcceptQuorum: 3}, 2},
		{QuorumHealth{Configured: true, PrepareServing: 2, AcceptServing: 2, PrepareQuorum: 2, AcceptQuorum: 2}, 0},
		{QuorumHealth{Configured: true, PrepareServing: 1, AcceptServing: 1, PrepareQuorum: 2, AcceptQuorum: 2}, -1},
		{QuorumHealth{Configured: true, PrepareServing: 0, AcceptServing: 0, PrepareQuorum: 3, AcceptQuorum: 3}, -1},
		// A joint configuration of an add (P: 3, qp 2; S: 4, qa 3).
		{QuorumHealth{Configured: true, PrepareServing: 3, AcceptServing: 4, PrepareQuorum: 2, AcceptQuorum: 3}, 1},
		{QuorumHealth{Configured: true, PrepareServing: 3, AcceptServing: 3, PrepareQuorum: 2, AcceptQuorum: 3}, 0},
	} {
		if got := tc.q.FailuresTolerated(); got != tc.want {
			t.Errorf("%+v: FailuresTolerated = %d, want %d", tc.q, got, tc.want)
		}
	}
}

// clusterGauges are the kshaka_cluster_* names, for CollectAndCompare.
var clusterGauges = []string{"kshaka_cluster_members", "kshaka_cluster_members_ready", "kshaka_cluster_members_serving",
	"kshaka_cluster_quorum_size", "kshaka_cluster_failures_tolerated", "kshaka_cluster_quorum_state",
	"kshaka_cluster_config_epoch", "kshaka_cluster_paused", "kshaka_cluster_transition_in_progress",
	"kshaka_cluster_transition_age_seconds", "kshaka_cluster_rescan_keys", "kshaka_cluster_certificate_expiry_timestamp_seconds"}

// gaugeText is the exposition of gauge name for cluster ns/kc with extra
// labels (`name="value"` items, comma-separated) and value.
func gaugeText(name, labels string, v float64) string {
	all := []string{`cluster="kc"`, `namespace="ns"`}
	if labels != "" {
		all = append(all, strings.Split(labels, ",")...)
	}
	slices.Sort(all)
	return fmt.Sprintf("%s{%s} %v\n", name, strings.Join(all, ","), v)
}

// expect builds the expected exposition of every cluster gauge of ns/kc.
type expect map[string][]string

func (e expect) add(name, labels string, v float64) expect {
	e[name] = append(e[name], gaugeText(name, labels, v))
	return e
}

func (e expect) text(c *clusterCollector) string {
	var b strings.Builder
	for _, name := range clusterGauges {
		lines, ok := e[name]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, c.helps[name], name)
		for _, l := range lines {
			b.WriteString(l)
		}
	}
	return b.String()
}

// TestClusterMetrics drives a cluster through Decide (the reconciler's
// status path, in the model of sim_test.go) and checks the gauges recorded
// from each plan: quorum health as members fail, a membership change with
// its age and rescan progress, certificate expiry, pause, and deletion.
func TestClusterMetrics(t *testing.T) {
	s := stable(t, 3)
	now := s.now
	cc := newClusterCollector(func() time.Time { return now })
	record := func() Plan {
		t.Helper()
		p := s.step(noCrash)
		c := s.c.DeepCopy()
		c.Status = *p.Status.DeepCopy()
		cc.record(c, p.Quorum)
		return p
	}
	compare := func(what string, e expect) {
		t.Helper()
		if err := testutil.CollectAndCompare(cc, strings.NewReader(e.text(cc)), clusterGauges...); err != nil {
			t.Errorf("%s:\n%v", what, err)
		}
	}
	base := func(ready, servingP, servingS, tolerated float64, state string) expect {
		e := expect{}
		e.add("kshaka_cluster_members", "", 3).add("kshaka_cluster_members_ready", "", ready).
			add("kshaka_cluster_members_serving", `set="accept"`, servingS).
			add("kshaka_cluster_members_serving", `set="prepare"`, servingP).
			add("kshaka_cluster_quorum_size", `set="accept"`, 2).add("kshaka_cluster_quorum_size", `set="prepare"`, 2).
			add("kshaka_cluster_failures_tolerated", "", tolerated).
			add("kshaka_cluster_config_epoch", "", 1).add("kshaka_cluster_paused", "", 0).
			add("kshaka_cluster_transition_in_progress", `kind="",step=""`, 0)
		for _, st := range []string{"Degraded", "Healthy", "Lost", "Unknown"} {
			e.add("kshaka_cluster_quorum_state", fmt.Sprintf("state=%q", st), boolGauge(st == state))
		}
		return e
	}

	record()
	compare("healthy", base(3, 3, 3, 1, "Healthy"))
	s.pods[1].down = true
	record()
	compare("one member down", base(2, 2, 2, 0, "Degraded"))
	s.pods[2].down = true
	record()
	compare("two members down", base(1, 1, 1, -1, "Lost"))
	s.pods[1].down, s.pods[2].down = false, false
	record()

	// A scale-up: the transition, its age on scrape and its rescan.
	s.c.Spec.Replicas = 4
	p := record()
	started := p.Status.Transition.StartedAt.Time
	now = started.Add(90 * time.Second)
	e := base(3, 3, 3, 1, "Healthy")
	e["kshaka_cluster_transition_in_progress"] = nil
	e.add("kshaka_cluster_transition_in_progress", `kind="Add",step="StartMember"`, 1).
		add("kshaka_cluster_transition_age_seconds", "", 90).add("kshaka_cluster_rescan_keys", "", 0)
	compare("scale-up started", e)

	// recordTransition (after a rescan batch) keeps the quorum arithmetic.
	c := s.c.DeepCopy()
	c.Status = *p.Status.DeepCopy()
	c.Status.Transition.Step = kshakav1alpha1.StepRescan
	c.Status.Transition.KeysRescanned = 1234
	cc.recordTransition(c)
	e["kshaka_cluster_transition_in_progress"] = nil
	e["kshaka_cluster_rescan_keys"] = nil
	e.add("kshaka_cluster_transition_in_progress", `kind="Add",step="Rescan"`, 1).add("kshaka_cluster_rescan_keys", "", 1234)
	compare("rescanning", e)

	// Certificates and pause.
	exp := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	c.Status.TLS = &kshakav1alpha1.TLSStatus{CANotAfter: &metav1.Time{Time: exp}, AcceptorsNotAfter: &metav1.Time{Time: exp.Add(-time.Hour)},
		ClientsNotAfter: &metav1.Time{Time: exp.Add(-2 * time.Hour)}}
	c.Spec.Paused = true
	cc.record(c, p.Quorum)
	e["kshaka_cluster_paused"] = nil
	e.add("kshaka_cluster_paused", "", 1).
		add("kshaka_cluster_certificate_expiry_timestamp_seconds", `certificate="acceptors"`, float64(exp.Add(-time.Hour).Unix())).
		add("kshaka_cluster_certificate_expiry_timestamp_seconds", `certificate="ca"`, float64(exp.Unix())).
		add("kshaka_cluster_certificate_expiry_timestamp_seconds", `certificate="clients"`, float64(exp.Add(-2*time.Hour).Unix()))
	compare("certificates and pause", e)

	// Another cluster has series of its own; deleting one drops only its.
	other := s.c.DeepCopy()
	other.Name = "other"
	cc.record(other, QuorumHealth{})
	if n := testutil.CollectAndCount(cc, "kshaka_cluster_failures_tolerated"); n != 1 {
		t.Errorf("failures_tolerated series = %d, want 1 (none without a configuration)", n)
	}
	cc.forget(types.NamespacedName{Namespace: "ns", Name: "kc"})
	if n := testutil.CollectAndCount(cc, "kshaka_cluster_members"); n != 1 {
		t.Errorf("kshaka_cluster_members series after deleting kc = %d, want 1", n)
	}
	cc.forget(types.NamespacedName{Namespace: "ns", Name: "other"})
	if n := testutil.CollectAndCount(cc); n != 0 {
		t.Errorf("%d series after every cluster is deleted", n)
	}
	if probs, err := testutil.CollectAndLint(newClusterCollector(time.Now)); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
}

// descRecorder is a prometheus.Registerer that records the names of the
// metrics its collectors describe.
type descRecorder map[string]bool

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r descRecorder) describe(c prometheus.Collector) {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r[m[1]] = true
		}
	}
}

func (r descRecorder) Register(c prometheus.Collector) error { r.describe(c); return nil }
func (r descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		r.describe(c)
	}
}
func (r descRecorder) Unregister(prometheus.Collector) bool { return true }

// TestAlertsAndDashboardUseRealMetrics: every kshaka_* and grpc_server_*
// metric the alerts (charts/kshaka-operator/files/prometheus-rules.yaml)
// and the dashboard (charts/kshaka-operator/dashboards/kshaka.json) query
// is one the acceptor or the operator exports, so a renamed metric cannot
// leave an alert that never fires.
func TestAlertsAndDashboardUseRealMetrics(t *testing.T) {
	known := descRecorder{}
	acc, err := acceptor.Open(acceptor.Options{Dir: t.TempDir(), CacheSize: 1 << 20, MemTableSize: 1 << 20, Registerer: known})
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.Close(); err != nil {
		t.Fatal(err)
	}
	known.MustRegister(stepsTotal, actionsTotal, actionSeconds, rescannedKeysTotal, newClusterCollector(time.Now))
	newGCCounters().register(known)
	if !known["grpc_server_handled_total"] || !known["kshaka_acceptor_wal_fsync_duration_seconds"] || !known["kshaka_cluster_failures_tolerated"] {
		t.Fatalf("the recorder missed metrics: %v", known)
	}
	name := regexp.MustCompile(`\b(kshaka_[a-z0-9_]+|grpc_server_[a-z0-9_]+)\b`)
	for _, f := range []string{"files/prometheus-rules.yaml", "dashboards/kshaka.json"} {
		b, err := os.ReadFile(filepath.Join("..", "charts", "kshaka-operator", f))
		if err != nil {
			t.Fatal(err)
		}
		used := map[string]bool{}
		for _, m := range name.FindAllString(string(b), -1) {
			used[m] = true
		}
		if len(used) < 5 {
			t.Fatalf("%s names only %v", f, used)
		}
		for m := range used {
			base := m
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if s, ok := strings.CutSuffix(m, suffix); ok && known[s] {
					base = s
				}
			}
			// kshaka_cluster_* in prose ("the kshaka_cluster_* alerts").
			if !known[base] && !strings.HasSuffix(m, "_") {
				t.Errorf("%s uses %s, which nothing exports", f, m)
			}
		}
	}
}
