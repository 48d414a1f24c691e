package acceptor

import (
	"errors"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metrics are the acceptor's Prometheus metrics (docs/design.md §14 lists
// them). They exist even without a Registerer, so that the code never checks
// for nil.
//
// RPC counts and latencies are the standard gRPC server metrics of
// go-grpc-middleware (grpc_server_started_total, grpc_server_handled_total,
// grpc_server_handling_seconds, by grpc_service, grpc_method and
// grpc_code); the kshaka_acceptor_* ones are what only the acceptor knows:
// refusals, stale-epoch replies, batch sizes, syncs, health and the store
// (storeCollector).
type metrics struct {
	reg           prometheus.Registerer
	collectors    []prometheus.Collector
	grpc          *grpcprom.ServerMetrics
	refusals      *prometheus.CounterVec
	staleReplies  *prometheus.CounterVec
	batchItems    *prometheus.HistogramVec
	syncs         prometheus.Counter
	syncLatency   prometheus.Histogram
	storageErrors prometheus.Counter
	writeStalls   prometheus.Counter
	collected     prometheus.Counter
	healthy       prometheus.Gauge
	admitted      prometheus.Gauge
	epoch         prometheus.Gauge
}

const metricsNamespace = "kshaka_acceptor"

// storeStats are the acceptor's sources for the gauges that are read on
// scrape: the key and tombstone counters and the open store.
type storeStats struct {
	keys       func() float64
	tombstones func() float64
	// withDB calls fn with the open store, or does nothing (and returns
	// false) before Open finished or after Close began.
	withDB func(fn func(db *pebble.DB)) bool
	// fs and volumes: the file systems of the data (and WAL) directories.
	fs      vfs.FS
	volumes []volume
}

// volume is a directory whose file system's size and free space are
// reported, with the value of the "volume" label.
type volume struct{ name, dir string }

func newMetrics(reg prometheus.Registerer, st storeStats) (*metrics, error) {
	m := &metrics{
		reg: reg,
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(prometheus.ExponentialBuckets(50e-6, 2, 18)))),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "refused_calls_total",
			Help: "Calls refused by authorization before they were handled, by RPC and code (Unauthenticated, PermissionDenied).",
		}, []string{"rpc", "code"}),
		staleReplies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "stale_epoch_replies_total",
			Help: "Data-path requests refused whole because their epoch is older than the installed configuration's (answered OK with stale_config), by RPC.",
		}, []string{"rpc"}),
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
			Help:    "Time to commit one storage batch with Sync, including the wait for the group commit's WAL fsync.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 18),
		}),
		storageErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "storage_errors_total",
			Help: "Storage errors; the first one takes the acceptor out of service.",
		}),
		writeStalls: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "write_stalls_total",
			Help: "Times Pebble stopped writes because flushes or L0 compactions fell behind.",
		}),
		collected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "collected_tombstones_total",
			Help: "Tombstone records removed by Admin Collect (tombstone GC, docs/design.md §10).",
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
		Help: "Stored keys (records), tombstones included.",
	}, st.keys)
	tombstones := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Name: "tombstones",
		Help: "Stored keys whose accepted value is a tombstone (deleted; the record stays). Counted at Open and kept as records change.",
	}, st.tombstones)
	m.collectors = []prometheus.Collector{m.grpc, m.refusals, m.staleReplies, m.batchItems, m.syncs, m.syncLatency,
		m.storageErrors, m.writeStalls, m.collected, m.healthy, m.admitted, m.epoch, keys, tombstones, newStoreCollector(st)}
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

// storeCollector reads Pebble's metrics and the file systems' usage on each
// scrape (no goroutine polls them). It reports nothing about the store
// before Open finished or after Close began.
type storeCollector struct {
	st storeStats

	diskUsage, compactionDebt, compactions, compactionsTotal, l0Files, l0Sublevels,
	memtableBytes, readAmp, walFsync, fsAvail, fsSize *prometheus.Desc
}

func newStoreCollector(st storeStats) *storeCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, "", name), help, labels, nil)
	}
	return &storeCollector{
		st: st,
		diskUsage: desc("disk_usage_bytes",
			"Bytes the store occupies on disk: live and obsolete sstables, blob files, WAL, manifest and options, and compactions in progress."),
		compactionDebt: desc("compaction_debt_bytes",
			"Pebble's estimate of the bytes compactions must rewrite to bring the LSM to a stable shape."),
		compactions: desc("compactions_in_progress", "Compactions running now."),
		compactionsTotal: desc("compactions_total",
			"Compactions Pebble started since Open."),
		l0Files:     desc("l0_files", "Sstables in level 0 (writes stall at L0StopWritesThreshold sublevels)."),
		l0Sublevels: desc("l0_sublevels", "Sublevels of level 0, the read amplification of L0."),
		memtableBytes: desc("memtable_bytes",
			"Bytes allocated by memtables (and large batches queued as memtables)."),
		readAmp: desc("read_amplification", "Pebble's read amplification: L0 sublevels plus non-empty lower levels."),
		walFsync: desc("wal_fsync_duration_seconds",
			"Latency of Pebble's WAL fsyncs; one fsync serves every commit of a group commit."),
		fsAvail: desc("filesystem_avail_bytes",
			"Bytes available to the acceptor on the file system of its data (volume=\"data\") or WAL (volume=\"wal\") directory.", "volume"),
		fsSize: desc("filesystem_size_bytes",
			"Size in bytes of the file system of the data (volume=\"data\") or WAL (volume=\"wal\") directory.", "volume"),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.diskUsage, c.compactionDebt, c.compactions, c.compactionsTotal, c.l0Files,
		c.l0Sublevels, c.memtableBytes, c.readAmp, c.walFsync, c.fsAvail, c.fsSize} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	var pm *pebble.Metrics
	if !c.st.withDB(func(db *pebble.DB) { pm = db.Metrics() }) {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.diskUsage, float64(pm.DiskSpaceUsage()))
	gauge(c.compactionDebt, float64(pm.Compact.EstimatedDebt))
	gauge(c.compactions, float64(pm.Compact.NumInProgress))
	ch <- prometheus.MustNewConstMetric(c.compactionsTotal, prometheus.CounterValue, float64(pm.Compact.Count))
	gauge(c.l0Files, float64(pm.Levels[0].TablesCount))
	gauge(c.l0Sublevels, float64(pm.Levels[0].Sublevels))
	gauge(c.memtableBytes, float64(pm.MemTable.Size))
	gauge(c.readAmp, float64(pm.ReadAmp()))
	if h := pm.LogWriter.FsyncLatency; h != nil {
		if m, err := walFsyncHistogram(c.walFsync, h); err == nil {
			ch <- m
		}
	}
	for _, v := range c.st.volumes {
		u, err := c.st.fs.GetDiskUsage(v.dir)
		if err != nil {
			continue // an in-memory FS in tests, or a directory that is gone
		}
		gauge(c.fsAvail, float64(u.AvailBytes), v.name)
		gauge(c.fsSize, float64(u.TotalBytes), v.name)
	}
}

// walFsyncBounds are the bucket upper bounds (seconds) of
// kshaka_acceptor_wal_fsync_duration_seconds: the subset of Pebble's own
// FsyncLatencyBuckets (100 buckets, in nanoseconds) nearest to round
// targets from 100µs to 10s. Buckets are cumulative, so a subset of the
// bounds loses resolution but no exactness; above 5ms Pebble's bounds are
// exponential and not round (e.g. 0.0236).
var walFsyncBounds = nearestBounds(pebble.FsyncLatencyBuckets, []float64{100e-6, 200e-6, 500e-6, 1e-3, 2e-3,
	3e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10})

// nearestBounds returns, for each target (seconds, ascending), the bound of
// nanos (nanoseconds, ascending) nearest to it, in seconds, without repeats.
func nearestBounds(nanos, targets []float64) []float64 {
	var out []float64
	for _, t := range targets {
		best := math.Inf(1)
		for _, b := range nanos {
			if b <= 0 {
				continue
			}
			if s := b / 1e9; math.Abs(s-t) < math.Abs(best-t) {
				best = s
			}
		}
		if len(out) == 0 || best > out[len(out)-1] {
			out = append(out, best)
		}
	}
	return out
}

// walFsyncHistogram converts Pebble's WAL fsync histogram, which observes
// nanoseconds, into a constant histogram in seconds over walFsyncBounds.
func walFsyncHistogram(d *prometheus.Desc, h prometheus.Histogram) (prometheus.Metric, error) {
	var pb dto.Metric
	if err := h.Write(&pb); err != nil {
		return nil, err
	}
	ph := pb.GetHistogram()
	if ph == nil {
		return nil, errors.New("pebble's WAL fsync latency is not a histogram")
	}
	out := make(map[float64]uint64, len(walFsyncBounds))
	src := ph.GetBucket()
	for _, le := range walFsyncBounds {
		for _, b := range src {
			// Pebble's bound converted to seconds is le up to rounding.
			if s := b.GetUpperBound() / 1e9; math.Abs(s-le) <= le*1e-9 {
				out[le] = b.GetCumulativeCount()
				break
			}
		}
	}
	return prometheus.NewConstHistogram(d, ph.GetSampleCount(), ph.GetSampleSum()/1e9, out)
}
