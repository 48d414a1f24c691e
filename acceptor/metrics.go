package acceptor

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the acceptor's Prometheus metrics. They exist even without a
// Registerer, so that the code never checks for nil.
type metrics struct {
	reg           prometheus.Registerer
	collectors    []prometheus.Collector
	requests      *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	batchItems    *prometheus.HistogramVec
	syncs         prometheus.Counter
	syncLatency   prometheus.Histogram
	storageErrors prometheus.Counter
	healthy       prometheus.Gauge
	admitted      prometheus.Gauge
	epoch         prometheus.Gauge
}

const metricsNamespace = "kshaka_acceptor"

func newMetrics(reg prometheus.Registerer, keyCount func() float64) (*metrics, error) {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "requests_total",
			Help: "RPCs handled, by RPC and result (ok, stale, or a gRPC code name).",
		}, []string{"rpc", "result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "refused_calls_total",
			Help: "Calls refused by authorization before they were handled, by RPC and code (Unauthenticated, PermissionDenied).",
		}, []string{"rpc", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "request_duration_seconds",
			Help:    "RPC handling time, by RPC and result.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18),
		}, []string{"rpc", "result"}),
		batchItems: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "batch_items",
			Help:    "Items (keys) per data-path request.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}, []string{"rpc"}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "syncs_total",
			Help: "Storage batches committed with Sync (one per changing request).",
		}),
		syncLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "sync_duration_seconds",
			Help:    "Time to commit one storage batch with Sync.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 18),
		}),
		storageErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "storage_errors_total",
			Help: "Storage errors; the first one takes the acceptor out of service.",
		}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "healthy",
			Help: "1 until a storage error takes the acceptor out of service.",
		}),
		admitted: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "admitted",
			Help: "1 when the installed configuration lists this acceptor's incarnation.",
		}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "config_epoch",
			Help: "Epoch of the installed configuration (0: none).",
		}),
	}
	keys := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Name: "keys",
		Help: "Number of stored keys.",
	}, keyCount)
	m.collectors = []prometheus.Collector{m.requests, m.refusals, m.latency, m.batchItems, m.syncs, m.syncLatency,
		m.storageErrors, m.healthy, m.admitted, m.epoch, keys}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, r := range m.collectors[:i] {
				reg.Unregister(r)
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(rpc, result string, d time.Duration) {
	m.requests.WithLabelValues(rpc, result).Inc()
	m.latency.WithLabelValues(rpc, result).Observe(d.Seconds())
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
