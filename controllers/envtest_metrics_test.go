package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// clusterSeries returns the kshaka_cluster_* series of the cluster ns/kc the
// running reconciler recorded: value by metric name and extra label value
// (e.g. "kshaka_cluster_certificate_expiry_timestamp_seconds/ca").
func clusterSeries(t *testing.T, ns string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(clusterMetrics)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			extra := ""
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
				if n := lp.GetName(); n == "certificate" || n == "set" || n == "state" {
					extra = "/" + lp.GetValue()
				}
			}
			if labels["namespace"] == ns && labels["cluster"] == "kc" {
				out[f.GetName()+extra] = gaugeValue(m)
			}
		}
	}
	return out
}

func gaugeValue(m *dto.Metric) float64 { return m.GetGauge().GetValue() }

// TestEnvtestClusterMetrics: the reconciler records the cluster gauges where
// it writes status (quorum health of a converged cluster, its epoch and
// certificates), and drops them when the cluster is deleted.
func TestEnvtestClusterMetrics(t *testing.T) {
	f := newFixture(t, 3)
	cfg := f.waitConverged()
	var got map[string]float64
	poll(t, 30*time.Second, fmt.Sprintf("the cluster gauges of a converged 3-member cluster at epoch %d", cfg.Epoch), func() (bool, string) {
		got = clusterSeries(t, f.ns)
		return got["kshaka_cluster_failures_tolerated"] == 1 && got["kshaka_cluster_members_ready"] == 3 &&
			got["kshaka_cluster_config_epoch"] == float64(cfg.Epoch) && got["kshaka_cluster_quorum_state/Healthy"] == 1, fmt.Sprint(got)
	})
	for _, k := range []string{"kshaka_cluster_quorum_size/prepare", "kshaka_cluster_quorum_size/accept"} {
		if got[k] != 2 {
			t.Errorf("%s = %v, want 2", k, got[k])
		}
	}
	kc := f.get()
	if tls := kc.Status.TLS; tls == nil || tls.CANotAfter == nil {
		t.Fatalf("the cluster has no TLS status: %s", dumpStatus(kc))
	}
	if want := float64(kc.Status.TLS.CANotAfter.Unix()); got["kshaka_cluster_certificate_expiry_timestamp_seconds/ca"] != want {
		t.Errorf("CA expiry gauge %v, status says %v", got["kshaka_cluster_certificate_expiry_timestamp_seconds/ca"], want)
	}
	if _, ok := got["kshaka_cluster_transition_age_seconds"]; ok || got["kshaka_cluster_transition_in_progress"] != 0 {
		t.Errorf("a converged cluster reports a transition: %v", got)
	}

	if err := f.c.Delete(context.Background(), kc); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "the deleted cluster's gauges to go", func() (bool, string) {
		got := clusterSeries(t, f.ns)
		return len(got) == 0, fmt.Sprint(got)
	})
}
