package controllers

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// Operator metrics, served with controller-runtime's reconcile metrics on
// the manager's metrics endpoint.
var (
	stepsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kshaka_operator_membership_steps_total",
		Help: "Membership steps taken (one per Event the operator emits), by reason.",
	}, []string{"reason"})
	actionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kshaka_operator_actions_total",
		Help: "Actions carried out on acceptors and volumes, by kind and result.",
	}, []string{"action", "result"})
	actionSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kshaka_operator_action_duration_seconds",
		Help:    "Duration of the actions of membership steps (installs, rescan batches, pod and volume deletions), by kind.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	}, []string{"action"})
	rescannedKeysTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kshaka_operator_rescanned_keys_total",
		Help: "Keys touched by membership-change rescans (every key is touched).",
	})

	// clusterMetrics are the per-cluster gauges (kshaka_cluster_*).
	clusterMetrics = newClusterCollector(time.Now)

	// gcMetrics are the tombstone collection counters (kshaka_operator_gc_*).
	gcMetrics = newGCCounters()
)

func init() {
	metrics.Registry.MustRegister(stepsTotal, actionsTotal, actionSeconds, rescannedKeysTotal, clusterMetrics)
	gcMetrics.register(metrics.Registry)
}

// gcCounters are the tombstone collection passes' counters, by namespace
// and cluster (dropped with the cluster).
type gcCounters struct {
	passes                      *prometheus.CounterVec
	collected, skipped, scanned *prometheus.CounterVec
	duration                    *prometheus.HistogramVec
}

func newGCCounters() *gcCounters {
	labels := []string{"namespace", "cluster"}
	return &gcCounters{
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kshaka_operator_gc_passes_total",
			Help: "Tombstone collection passes, by result (ok, error).",
		}, append(labels, "result")),
		collected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kshaka_operator_gc_collected_total",
			Help: "Tombstones removed from every member by collection passes.",
		}, labels),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kshaka_operator_gc_skipped_total",
			Help: "Old tombstones a collection pass left for a later one (written since, not on every member, or refused by a member).",
		}, labels),
		scanned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kshaka_operator_gc_scanned_total",
			Help: "Candidate tombstones listed by collection passes.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kshaka_operator_gc_pass_duration_seconds",
			Help:    "Duration of tombstone collection passes, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, labels),
	}
}

func (g *gcCounters) register(reg prometheus.Registerer) {
	reg.MustRegister(g.passes, g.collected, g.skipped, g.scanned, g.duration)
}

// pass counts one pass of c.
func (g *gcCounters) pass(c *kshakav1alpha1.KshakaCluster, result string, res GCPassResult, d time.Duration) {
	ns, name := c.Namespace, c.Name
	g.passes.WithLabelValues(ns, name, result).Inc()
	g.collected.WithLabelValues(ns, name).Add(float64(res.Collected))
	g.skipped.WithLabelValues(ns, name).Add(float64(res.Skipped))
	g.scanned.WithLabelValues(ns, name).Add(float64(res.Scanned))
	g.duration.WithLabelValues(ns, name).Observe(d.Seconds())
}

// forget drops the series of a deleted cluster.
func (g *gcCounters) forget(key types.NamespacedName) {
	l := prometheus.Labels{"namespace": key.Namespace, "cluster": key.Name}
	g.passes.DeletePartialMatch(l)
	g.collected.DeletePartialMatch(l)
	g.skipped.DeletePartialMatch(l)
	g.scanned.DeletePartialMatch(l)
	g.duration.DeletePartialMatch(l)
}

// clusterSample is what the kshaka_cluster_* gauges report of one cluster:
// its status as the reconciler last wrote it, and the quorum arithmetic
// behind it.
type clusterSample struct {
	members, ready int32
	quorumState    string
	quorum         QuorumHealth
	epoch          int64
	paused         bool
	// The transition in progress (kind "" when none).
	kind       kshakav1alpha1.TransitionKind
	step       kshakav1alpha1.TransitionStep
	startedAt  time.Time
	rescanKeys int64
	// Certificate expiries; zero when not known.
	caNotAfter, acceptorsNotAfter, clientsNotAfter time.Time
	// Tombstone collection: failed passes in a row, whether a pass is
	// recorded as in progress, when the last one ended (zero: none).
	gcFailures  int32
	gcRunning   bool
	gcLastEnd   time.Time
	gcCollected int64
}

// sampleOf reads a sample from a cluster whose status was just written,
// with the quorum arithmetic of the plan that wrote it.
func sampleOf(c *kshakav1alpha1.KshakaCluster, q QuorumHealth) clusterSample {
	st := &c.Status
	s := clusterSample{
		members: st.Replicas, ready: st.ReadyReplicas, quorumState: st.Quorum, quorum: q, paused: c.Spec.Paused,
	}
	if s.quorumState == "" {
		s.quorumState = kshakav1alpha1.QuorumUnknown
	}
	if st.Configuration != nil {
		s.epoch = st.Configuration.Epoch
	}
	if tr := st.Transition; tr != nil {
		s.kind, s.step, s.rescanKeys = tr.Kind, tr.Step, tr.KeysRescanned
		s.startedAt = timeOf(tr.StartedAt)
	}
	if t := st.TLS; t != nil {
		s.caNotAfter, s.acceptorsNotAfter, s.clientsNotAfter = timeOf(t.CANotAfter), timeOf(t.AcceptorsNotAfter), timeOf(t.ClientsNotAfter)
	}
	if g := st.TombstoneGC; g != nil {
		s.gcFailures, s.gcRunning, s.gcLastEnd, s.gcCollected = g.ConsecutiveFailures, g.Pass != nil, timeOf(g.LastPassEnd), g.TotalCollected
	}
	return s
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

// clusterCollector reports the kshaka_cluster_* gauges of every cluster the
// reconciler has written the status of, with "namespace" and "cluster"
// labels. Ages are computed on scrape. A cluster's series go when it is
// deleted (forget).
type clusterCollector struct {
	now func() time.Time
	mu  struct {
		sync.Mutex
		clusters map[types.NamespacedName]clusterSample
	}

	members, ready, serving, quorumSize, tolerated, quorumState, epoch, paused,
	transition, transitionAge, rescanKeys, certExpiry,
	gcFailures, gcRunning, gcLastEnd, gcCollected *prometheus.Desc
	// helps are the help texts by name (tests).
	helps map[string]string
}

// quorumStates are the values of status.quorum, one series each.
var quorumStates = []string{kshakav1alpha1.QuorumHealthy, kshakav1alpha1.QuorumDegraded, kshakav1alpha1.QuorumLost,
	kshakav1alpha1.QuorumUnknown}

func newClusterCollector(now func() time.Time) *clusterCollector {
	helps := map[string]string{}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		helps["kshaka_cluster_"+name] = help
		return prometheus.NewDesc("kshaka_cluster_"+name, help, append([]string{"namespace", "cluster"}, labels...), nil)
	}
	c := &clusterCollector{
		now:     now,
		helps:   helps,
		members: desc("members", "Members of the installed configuration (P ∪ S)."),
		ready:   desc("members_ready", "Members of the installed configuration that serve it and whose pod is Ready."),
		serving: desc("members_serving",
			"Members of the prepare set (set=\"prepare\") or accept set (set=\"accept\") that serve the installed configuration.", "set"),
		quorumSize: desc("quorum_size",
			"Members a prepare (set=\"prepare\", qp) or an accept (set=\"accept\", qa) needs.", "set"),
		tolerated: desc("failures_tolerated",
			"How many more serving members may fail before no quorum is left: min(serving in P - qp, serving in S - qa); -1 when the quorum is lost."),
		quorumState: desc("quorum_state",
			"1 for the cluster's status.quorum (Healthy, Degraded, Lost or Unknown), 0 for the others.", "state"),
		epoch:  desc("config_epoch", "Epoch of the configuration the operator installed last (0: none)."),
		paused: desc("paused", "1 while spec.paused freezes every change the operator makes to the cluster."),
		transition: desc("transition_in_progress",
			"1 with the kind and step of the membership change in progress; 0 (empty labels) when none.", "kind", "step"),
		transitionAge: desc("transition_age_seconds",
			"Seconds since the membership change in progress started (status.transition.startedAt)."),
		rescanKeys: desc("rescan_keys",
			"Keys the membership change in progress has rescanned so far (status.transition.keysRescanned)."),
		certExpiry: desc("certificate_expiry_timestamp_seconds",
			"When the first certificate of a kind expires (Unix seconds): the CA (certificate=\"ca\"), the acceptors' or the clients' and the operator's.",
			"certificate"),
		gcFailures: desc("gc_consecutive_failures",
			"Tombstone collection passes that failed in a row (status.tombstoneGC.consecutiveFailures); 0 after a pass completes."),
		gcRunning: desc("gc_pass_in_progress",
			"1 while a tombstone collection pass is recorded as in progress (status.tombstoneGC.pass): membership changes wait for it."),
		gcLastEnd: desc("gc_last_pass_end_timestamp_seconds",
			"When the last tombstone collection pass ended (Unix seconds), successfully or not; absent before the first."),
		gcCollected: desc("gc_collected_tombstones",
			"Tombstones collected by every pass so far (status.tombstoneGC.totalCollected)."),
	}
	c.mu.clusters = map[types.NamespacedName]clusterSample{}
	return c
}

// record sets the sample of the cluster c, whose status was just written.
func (cc *clusterCollector) record(c *kshakav1alpha1.KshakaCluster, q QuorumHealth) {
	s := sampleOf(c, q)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.mu.clusters[types.NamespacedName{Namespace: c.Namespace, Name: c.Name}] = s
}

// recordTransition updates the sample of c after a rescan batch wrote its
// progress to the status, keeping the quorum arithmetic of the last plan.
func (cc *clusterCollector) recordTransition(c *kshakav1alpha1.KshakaCluster) {
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	s, ok := cc.mu.clusters[key]
	if !ok {
		return
	}
	cc.mu.clusters[key] = sampleOf(c, s.quorum)
}

// forget drops the series of a deleted cluster.
func (cc *clusterCollector) forget(key types.NamespacedName) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	delete(cc.mu.clusters, key)
}

func (cc *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cc.members, cc.ready, cc.serving, cc.quorumSize, cc.tolerated, cc.quorumState,
		cc.epoch, cc.paused, cc.transition, cc.transitionAge, cc.rescanKeys, cc.certExpiry,
		cc.gcFailures, cc.gcRunning, cc.gcLastEnd, cc.gcCollected} {
		ch <- d
	}
}

func (cc *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	now := cc.now()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for key, s := range cc.mu.clusters {
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{key.Namespace, key.Name}, labels...)...)
		}
		gauge(cc.members, float64(s.members))
		gauge(cc.ready, float64(s.ready))
		if q := s.quorum; q.Configured {
			gauge(cc.serving, float64(q.PrepareServing), "prepare")
			gauge(cc.serving, float64(q.AcceptServing), "accept")
			gauge(cc.quorumSize, float64(q.PrepareQuorum), "prepare")
			gauge(cc.quorumSize, float64(q.AcceptQuorum), "accept")
			gauge(cc.tolerated, float64(q.FailuresTolerated()))
		}
		for _, state := range quorumStates {
			gauge(cc.quorumState, boolGauge(s.quorumState == state), state)
		}
		gauge(cc.epoch, float64(s.epoch))
		gauge(cc.paused, boolGauge(s.paused))
		if s.kind == "" {
			gauge(cc.transition, 0, "", "")
		} else {
			gauge(cc.transition, 1, string(s.kind), string(s.step))
			gauge(cc.rescanKeys, float64(s.rescanKeys))
			if !s.startedAt.IsZero() {
				gauge(cc.transitionAge, max(now.Sub(s.startedAt).Seconds(), 0))
			}
		}
		gauge(cc.gcFailures, float64(s.gcFailures))
		gauge(cc.gcRunning, boolGauge(s.gcRunning))
		gauge(cc.gcCollected, float64(s.gcCollected))
		if !s.gcLastEnd.IsZero() {
			gauge(cc.gcLastEnd, float64(s.gcLastEnd.Unix()))
		}
		for _, cert := range []struct {
			name string
			at   time.Time
		}{{"ca", s.caNotAfter}, {"acceptors", s.acceptorsNotAfter}, {"clients", s.clientsNotAfter}} {
			if !cert.at.IsZero() {
				gauge(cc.certExpiry, float64(cert.at.Unix()), cert.name)
			}
		}
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
