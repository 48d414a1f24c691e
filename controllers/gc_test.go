package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kshaka-io/kshaka/membership"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// gcPlanFixture is a stable three-member cluster at epoch 4 and the plan of
// a reconcile that found nothing to do.
func gcPlanFixture() (*kshakav1alpha1.KshakaCluster, Plan) {
	c := &kshakav1alpha1.KshakaCluster{ObjectMeta: metav1.ObjectMeta{Name: "kc", Namespace: "ns"}}
	c.Spec.Replicas = 3
	var ms []membership.Member
	var rows []kshakav1alpha1.MemberStatus
	for i := range int32(3) {
		id := PodName(c, i)
		ms = append(ms, membership.Member{ID: id, Addr: podIP(i) + ":7400", Incarnation: uint64(0x10 + i)})
		rows = append(rows, kshakav1alpha1.MemberStatus{Ordinal: i, PodName: id, AcknowledgedEpoch: 4, Reachable: true, Admitted: true})
	}
	p := Plan{}
	p.Status.Configuration = ConfigToStatus(membership.Stable(4, ms...))
	p.Status.Quorum = kshakav1alpha1.QuorumHealthy
	p.Status.Members = rows
	return c, p
}

// TestPlanGC checks when a tombstone collection pass runs (docs/design.md
// §10, "The operator's passes"): only on a stable cluster, when due and not
// suspended; an interrupted floor epoch is finished even when the cluster
// is not stable (it holds the membership machine); any other interrupted
// step is started again, or forgotten when the cluster is not stable.
func TestPlanGC(t *testing.T) {
	now := time.Date(2026, 12, 4, 5, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	for _, tc := range []struct {
		name   string
		modify func(c *kshakav1alpha1.KshakaCluster, p *Plan)
		want   GCDo
		reason string // of the condition, when no pass runs
		due    time.Time
	}{
		{"first pass runs at once", func(*kshakav1alpha1.KshakaCluster, *Plan) {}, GCRun, "", time.Time{}},
		{"not due", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) {
			p.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{LastPassStart: at(-30 * time.Minute), LastPassEnd: at(-29 * time.Minute)}
		}, GCNothing, ReasonGCWaiting, now.Add(30 * time.Minute)},
		{"due", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) {
			p.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{LastPassStart: at(-61 * time.Minute), LastPassEnd: at(-60 * time.Minute)}
		}, GCRun, "", time.Time{}},
		{"shorter interval", func(c *kshakav1alpha1.KshakaCluster, p *Plan) {
			c.Spec.TombstoneGC.Interval = &metav1.Duration{Duration: 10 * time.Minute}
			p.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{LastPassStart: at(-11 * time.Minute)}
		}, GCRun, "", time.Time{}},
		{"after a failure, a minute later", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) {
			p.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{LastPassStart: at(-2 * time.Minute), LastPassEnd: at(-90 * time.Second), ConsecutiveFailures: 1}
		}, GCRun, "", time.Time{}},
		{"after three failures, four minutes later", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) {
			p.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{LastPassStart: at(-2 * time.Minute), LastPassEnd: at(-90 * time.Second), ConsecutiveFailures: 3}
		}, GCNothing, ReasonGCWaiting, now.Add(-90*time.Second + 4*time.Minute)},
		{"suspended", func(c *kshakav1alpha1.KshakaCluster, _ *Plan) { c.Spec.TombstoneGC.Suspend = true }, GCNothing, ReasonGCSuspended, time.Time{}},
		{"paused", func(c *kshakav1alpha1.KshakaCluster, _ *Plan) { c.Spec.Paused = true }, GCNothing, ReasonGCWaiting, time.Time{}},
		{"membership change", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) {
			p.Status.Transition = &kshakav1alpha1.Transition{Kind: kshakav1alpha1.TransitionAdd, Step: kshakav1alpha1.StepRescan}
		}, GCNothing, ReasonGCWaiting, time.Time{}},
		{"an action", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) { p.Action.Kind = ActionRollPod }, GCNothing, ReasonGCWaiting, time.Time{}},
		{"quorum degraded", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) { p.Status.Quorum = kshakav1alpha1.QuorumDegraded }, GCNothing, ReasonGCWaiting, time.Time{}},
		{"a member behind", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) { p.Status.Members[1].AcknowledgedEpoch = 3 }, GCNothing, ReasonGCWaiting, time.Time{}},
		{"invalid spec", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) { p.SpecError = "bad" }, GCNothing, ReasonGCWaiting, time.Time{}},
		{"resizing", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) { p.Volumes.Orphans = []string{"kc-0"} }, GCNothing, ReasonGCWaiting, time.Time{}},
		{"restoring", func(c *kshakav1alpha1.KshakaCluster, _ *Plan) {
			c.Spec.Bootstrap = &kshakav1alpha1.BootstrapSpec{FromBackup: &kshakav1alpha1.BackupSource{BackupName: "b"}}
		}, GCNothing, ReasonGCWaiting, time.Time{}},
		{"no configuration", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) { p.Status.Configuration = nil }, GCNothing, ReasonGCWaiting, time.Time{}},
		{"interrupted floor epoch, unstable", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) {
			p.Status.Quorum = kshakav1alpha1.QuorumDegraded
			p.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{Pass: &kshakav1alpha1.TombstoneGCPass{Step: kshakav1alpha1.GCStepInstallFloor, FloorEpoch: 5}}
		}, GCFinishFloor, "", time.Time{}},
		{"interrupted floor epoch, suspended", func(c *kshakav1alpha1.KshakaCluster, p *Plan) {
			c.Spec.TombstoneGC.Suspend = true
			p.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{Pass: &kshakav1alpha1.TombstoneGCPass{Step: kshakav1alpha1.GCStepInstallFloor, FloorEpoch: 5}}
		}, GCFinishFloor, "", time.Time{}},
		{"interrupted floor epoch, paused", func(c *kshakav1alpha1.KshakaCluster, p *Plan) {
			c.Spec.Paused = true
			p.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{Pass: &kshakav1alpha1.TombstoneGCPass{Step: kshakav1alpha1.GCStepInstallFloor, FloorEpoch: 5}}
		}, GCNothing, ReasonGCWaiting, time.Time{}},
		{"interrupted listing, stable: again", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) {
			p.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{LastPassStart: at(-time.Minute),
				Pass: &kshakav1alpha1.TombstoneGCPass{Step: kshakav1alpha1.GCStepTombstones}}
		}, GCRun, "", time.Time{}},
		{"interrupted collect, unstable: abandoned", func(_ *kshakav1alpha1.KshakaCluster, p *Plan) {
			p.Status.Quorum = kshakav1alpha1.QuorumLost
			p.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{Pass: &kshakav1alpha1.TombstoneGCPass{Step: kshakav1alpha1.GCStepCollect}}
		}, GCAbandon, ReasonGCWaiting, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := gcPlanFixture()
			tc.modify(c, &p)
			got := PlanGC(c, p, now)
			if got.Do != tc.want {
				t.Fatalf("Do = %v, want %v (condition %+v)", got.Do, tc.want, got.Condition)
			}
			if tc.reason != "" && got.Condition.Reason != tc.reason {
				t.Errorf("condition %+v, want reason %s", got.Condition, tc.reason)
			}
			if got.Do == GCNothing && (got.Condition.Type != kshakav1alpha1.ConditionTombstoneGC || got.Condition.Message == "") {
				t.Errorf("no pass and no explanation: %+v", got.Condition)
			}
			if !got.Due.Equal(tc.due) {
				t.Errorf("due %v, want %v", got.Due, tc.due)
			}
		})
	}
}

// TestPlanGCKeepsLastOutcome: while waiting for the next pass the
// condition keeps saying how the last one went.
func TestPlanGCKeepsLastOutcome(t *testing.T) {
	now := time.Date(2026, 12, 4, 5, 0, 0, 0, time.UTC)
	c, p := gcPlanFixture()
	p.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{LastPassStart: &metav1.Time{Time: now.Add(-time.Minute)}}
	p.Status.Conditions = []metav1.Condition{{Type: kshakav1alpha1.ConditionTombstoneGC, Status: metav1.ConditionTrue,
		Reason: ReasonGCCompleted, Message: "the pass of … collected 7 tombstones"}}
	got := PlanGC(c, p, now)
	if got.Do != GCNothing || got.Condition.Reason != ReasonGCCompleted || !strings.Contains(got.Condition.Message, "7 tombstones") {
		t.Fatalf("got %+v", got)
	}
}

// TestGCHoldsMembershipMachine: with a pass recorded, Decide starts no
// membership change (a scale up waits), like spec.paused.
func TestGCHoldsMembershipMachine(t *testing.T) {
	c, p := gcPlanFixture()
	c.Spec.Replicas = 4
	c.Status = p.Status
	c.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{Pass: &kshakav1alpha1.TombstoneGCPass{Step: kshakav1alpha1.GCStepCollect}}
	o := Observed{Cluster: c, Pods: map[int32]PodInfo{}, PVCs: map[int32]bool{}, Claims: map[string]ClaimInfo{},
		Acceptors: map[int32]AcceptorInfo{}, Now: time.Now()}
	cfg, _ := ConfigFromStatus(c.Status.Configuration)
	for i, m := range cfg.Members {
		ord := int32(i)
		o.Pods[ord] = PodInfo{Name: m.ID, Address: m.Addr, Ready: true}
		o.PVCs[ord] = true
		o.Acceptors[ord] = AcceptorInfo{Incarnation: m.Incarnation, Epoch: cfg.Epoch, Admitted: true, Healthy: true}
	}
	if plan := Decide(o); plan.Status.Transition != nil || plan.Action.Kind != ActionNone {
		t.Fatalf("a change started beside a pass: transition %+v, action %s", plan.Status.Transition, plan.Action.Kind)
	}
	c.Status.TombstoneGC = nil
	if plan := Decide(o); plan.Status.Transition == nil {
		t.Fatalf("without a pass the scale up does not start: %s", dumpStatus(&kshakav1alpha1.KshakaCluster{Status: plan.Status}))
	}
}

// TestCheckFloorConfig: a pass installs only the installed configuration
// at the next epoch with its floors raised.
func TestCheckFloorConfig(t *testing.T) {
	_, p := gcPlanFixture()
	cur, _ := ConfigFromStatus(p.Status.Configuration)
	next := cur.Clone()
	next.Epoch++
	if err := checkFloorConfig(cur, next); err != nil {
		t.Fatalf("the next epoch: %v", err)
	}
	skip := next.Clone()
	skip.Epoch++
	other := next.Clone()
	other.Members = other.Members[:2]
	other.PrepareQuorum, other.AcceptQuorum = 2, 2
	for name, bad := range map[string]membership.Config{"an epoch skipped": skip, "a member dropped": other, "the same epoch": cur} {
		if err := checkFloorConfig(cur, bad); err == nil {
			t.Errorf("%s: accepted %s after %s", name, bad, cur)
		}
	}
}

// TestGCMetrics: the pass counters carry the cluster's labels and go with
// the cluster; the cluster gauges follow status.tombstoneGC.
func TestGCMetrics(t *testing.T) {
	g := newGCCounters()
	c := &kshakav1alpha1.KshakaCluster{ObjectMeta: metav1.ObjectMeta{Name: "kc", Namespace: "ns"}}
	g.pass(c, "ok", GCPassResult{Scanned: 12, Collected: 10, Skipped: 2}, time.Second)
	g.pass(c, "error", GCPassResult{Scanned: 3, Collected: 1}, time.Second)
	for name, want := range map[string]float64{
		"collected": testutil.ToFloat64(g.collected.WithLabelValues("ns", "kc")),
		"skipped":   testutil.ToFloat64(g.skipped.WithLabelValues("ns", "kc")),
		"scanned":   testutil.ToFloat64(g.scanned.WithLabelValues("ns", "kc")),
		"ok":        testutil.ToFloat64(g.passes.WithLabelValues("ns", "kc", "ok")),
		"error":     testutil.ToFloat64(g.passes.WithLabelValues("ns", "kc", "error")),
	} {
		exp := map[string]float64{"collected": 11, "skipped": 2, "scanned": 15, "ok": 1, "error": 1}[name]
		if want != exp {
			t.Errorf("%s = %v, want %v", name, want, exp)
		}
	}
	g.forget(types.NamespacedName{Namespace: "ns", Name: "kc"})
	if n := testutil.CollectAndCount(g.passes) + testutil.CollectAndCount(g.collected) + testutil.CollectAndCount(g.duration); n != 0 {
		t.Fatalf("%d series left after the cluster was deleted", n)
	}

	cc := newClusterCollector(time.Now)
	c.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{ConsecutiveFailures: 3, TotalCollected: 42,
		LastPassEnd: &metav1.Time{Time: time.Unix(1700000000, 0)}, Pass: &kshakav1alpha1.TombstoneGCPass{Step: kshakav1alpha1.GCStepCollect}}
	cc.record(c, QuorumHealth{})
	want := `# HELP kshaka_cluster_gc_consecutive_failures ` + cc.helps["kshaka_cluster_gc_consecutive_failures"] + `
# TYPE kshaka_cluster_gc_consecutive_failures gauge
kshaka_cluster_gc_consecutive_failures{cluster="kc",namespace="ns"} 3
# HELP kshaka_cluster_gc_collected_tombstones ` + cc.helps["kshaka_cluster_gc_collected_tombstones"] + `
# TYPE kshaka_cluster_gc_collected_tombstones gauge
kshaka_cluster_gc_collected_tombstones{cluster="kc",namespace="ns"} 42
# HELP kshaka_cluster_gc_pass_in_progress ` + cc.helps["kshaka_cluster_gc_pass_in_progress"] + `
# TYPE kshaka_cluster_gc_pass_in_progress gauge
kshaka_cluster_gc_pass_in_progress{cluster="kc",namespace="ns"} 1
# HELP kshaka_cluster_gc_last_pass_end_timestamp_seconds ` + cc.helps["kshaka_cluster_gc_last_pass_end_timestamp_seconds"] + `
# TYPE kshaka_cluster_gc_last_pass_end_timestamp_seconds gauge
kshaka_cluster_gc_last_pass_end_timestamp_seconds{cluster="kc",namespace="ns"} 1.7e+09
`
	if err := testutil.CollectAndCompare(cc, strings.NewReader(want), "kshaka_cluster_gc_consecutive_failures",
		"kshaka_cluster_gc_collected_tombstones", "kshaka_cluster_gc_pass_in_progress", "kshaka_cluster_gc_last_pass_end_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
}

// TestGCPacer: no pacing without a rate; a paced wait ends with its
// context (the rate itself is a wait, which is not asserted on).
func TestGCPacer(t *testing.T) {
	if GCPacer(context.Background(), 0) != nil || GCPacer(context.Background(), -5) != nil {
		t.Fatal("a pacer without a positive rate")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pace := GCPacer(ctx, 1)
	pace(1_000_000) // would wait a million seconds; returns as ctx is done
}
