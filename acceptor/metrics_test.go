package acceptor

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/kshaka-io/kshaka/internal/wire"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// family returns the gathered metric family name (nil when absent).
func family(t *testing.T, g prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

// gauge returns the value of the gauge name whose labels include labels
// (name=value pairs); it fails the test when there is none.
func gauge(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	f := family(t, g, name)
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range f.GetMetric() {
		if hasLabels(m, labels...) {
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s series with labels %v", name, labels)
	return 0
}

func hasLabels(m *dto.Metric, labels ...string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := testOptions(t)
	opts.Registerer = reg
	n := startAdmitted(t, opts)
	ctx := context.Background()

	items := []*kshakav1.PrepareItem{prep("a", b(1, 1)), prep("b", b(1, 1)), prep("c", b(1, 1))}
	_, _ = n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: items})                       // ok, 1 sync
	_, _ = n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 0, Items: items})                       // stale
	_, _ = n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{{}}}) // invalid

	// The standard gRPC server metrics count by code; a stale reply is OK
	// on the wire and counted apart.
	for _, c := range []struct {
		code string
		want float64
	}{{"OK", 2}, {"InvalidArgument", 1}} {
		got := gauge(t, reg, "grpc_server_handled_total",
			"grpc_service", "kshaka.v1.Acceptor", "grpc_method", "Prepare", "grpc_code", c.code)
		if got != c.want {
			t.Errorf("grpc_server_handled_total{Prepare,%s} = %v, want %v", c.code, got, c.want)
		}
	}
	if f := family(t, reg, "grpc_server_handling_seconds"); f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("grpc_server_handling_seconds is missing or not a histogram: %v", f)
	}
	// InitializeMetrics: methods not called yet have zero series.
	if got := gauge(t, reg, "grpc_server_handled_total", "grpc_method", "ListKeys", "grpc_code", "OK"); got != 0 {
		t.Errorf("ListKeys handled = %v before any call", got)
	}
	m := n.acc.metrics
	if got := testutil.ToFloat64(m.staleReplies.WithLabelValues("Prepare")); got != 1 {
		t.Errorf("stale_epoch_replies_total{Prepare} = %v, want 1", got)
	}
	// Metadata (incarnation at Open, configuration at admit) and one batch.
	if got := testutil.ToFloat64(m.syncs); got != 3 {
		t.Errorf("syncs = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.healthy) + testutil.ToFloat64(m.admitted); got != 2 {
		t.Errorf("healthy + admitted = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.epoch); got != 1 {
		t.Errorf("epoch = %v", got)
	}
	if got := testutil.CollectAndCount(m.batchItems); got != 1 {
		t.Errorf("batch_items series = %d, want 1", got)
	}
	// Every metric is valid by the registry's and promlint's rules.
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}

	// A second acceptor cannot register the same metrics; after Close the
	// first one's are gone and a reopen registers again.
	other := testOptions(t)
	other.Registerer = reg
	if _, err := Open(other); err == nil {
		t.Fatal("second registration succeeded")
	}
	n.restart()
	if got := testutil.ToFloat64(n.acc.metrics.healthy); got != 1 {
		t.Errorf("healthy after reopen = %v", got)
	}
}

// TestStoreMetrics: the gauges read from Pebble and the file system on
// scrape, against a real store on disk, and the key and tombstone counts
// kept as records change and recounted at Open.
func TestStoreMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := testOptions(t)
	opts.Registerer = reg
	n := startAdmitted(t, opts)
	ctx := context.Background()
	accept := func(items ...*kshakav1.AcceptItem) {
		t.Helper()
		r, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: items})
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		for i, res := range r.GetResults() {
			if !res.GetOk() {
				t.Fatalf("Accept item %d refused: %v", i, res)
			}
		}
	}
	tomb := func(version uint64) *kshakav1.Value { return &kshakav1.Value{Version: version, Tombstone: true} }
	counts := func() (keys, tombstones float64) {
		t.Helper()
		return gauge(t, reg, "kshaka_acceptor_keys"), gauge(t, reg, "kshaka_acceptor_tombstones")
	}
	check := func(wantKeys, wantTombs float64) {
		t.Helper()
		if k, ts := counts(); k != wantKeys || ts != wantTombs {
			t.Fatalf("keys, tombstones = %v, %v; want %v, %v", k, ts, wantKeys, wantTombs)
		}
	}

	accept(acc("a", b(1, 1), val(1, "x"), nil), acc("b", b(1, 1), val(1, "y"), nil), acc("c", b(1, 1), tomb(1), nil))
	check(3, 1)
	// a is deleted, c written again, b deleted twice (counted once).
	accept(acc("a", b(2, 1), tomb(2), nil), acc("b", b(2, 1), tomb(2), nil), acc("c", b(2, 1), val(2, "z"), nil))
	accept(acc("b", b(3, 1), tomb(3), nil))
	check(3, 2)
	// A prepare of a new key creates a record that is not a tombstone.
	if _, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{prep("d", b(5, 1))}}); err != nil {
		t.Fatal(err)
	}
	check(4, 2)
	// The tombstone GC removes b under a configuration whose floors cover it.
	cfg := n.acc.Config()
	cfg.Epoch, cfg.RemovedBallot, cfg.VersionFloor = 2, wire.BallotFromProto(b(3, 1)), 3
	n.setConfig(cfg)
	if got := n.collect(citem("b", b(3, 1), 3)); got[0] != kshakav1.CollectVerdict_COLLECT_VERDICT_REMOVED {
		t.Fatalf("collect b: %v", got)
	}
	check(3, 1)
	if got := gauge(t, reg, "kshaka_acceptor_collected_tombstones_total"); got != 1 {
		t.Errorf("collected_tombstones_total = %v, want 1", got)
	}

	// Each synced commit is one WAL fsync or shares one (group commit);
	// nothing else synced the WAL yet.
	f := family(t, reg, "kshaka_acceptor_wal_fsync_duration_seconds")
	if f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("wal_fsync_duration_seconds missing or not a histogram: %v", f)
	}
	h := f.GetMetric()[0].GetHistogram()
	if h.GetSampleCount() == 0 || h.GetSampleCount() > n.acc.SyncCount() {
		t.Errorf("WAL fsyncs = %d, acceptor syncs = %d", h.GetSampleCount(), n.acc.SyncCount())
	}
	if s := h.GetSampleSum(); s <= 0 || s > 60 {
		t.Errorf("WAL fsync seconds sum = %v, want a few ms (seconds, not nanoseconds)", s)
	}

	// Flush the memtable so that L0 holds a table, then read the store gauges.
	if err := n.acc.store.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := gauge(t, reg, "kshaka_acceptor_l0_files"); got < 1 {
		t.Errorf("l0_files = %v after a flush", got)
	}
	if got := gauge(t, reg, "kshaka_acceptor_l0_sublevels"); got < 0 || got > gauge(t, reg, "kshaka_acceptor_l0_files") {
		t.Errorf("l0_sublevels = %v", got)
	}
	if got := gauge(t, reg, "kshaka_acceptor_disk_usage_bytes"); got <= 0 {
		t.Errorf("disk_usage_bytes = %v", got)
	}
	for _, name := range []string{"kshaka_acceptor_compaction_debt_bytes", "kshaka_acceptor_compactions_in_progress",
		"kshaka_acceptor_compactions_total", "kshaka_acceptor_read_amplification", "kshaka_acceptor_memtable_bytes"} {
		if got := gauge(t, reg, name); got < 0 || math.IsNaN(got) {
			t.Errorf("%s = %v", name, got)
		}
	}
	avail := gauge(t, reg, "kshaka_acceptor_filesystem_avail_bytes", "volume", "data")
	size := gauge(t, reg, "kshaka_acceptor_filesystem_size_bytes", "volume", "data")
	if avail <= 0 || size < avail {
		t.Errorf("filesystem avail, size = %v, %v", avail, size)
	}
	if f := family(t, reg, "kshaka_acceptor_filesystem_avail_bytes"); len(f.GetMetric()) != 1 {
		t.Errorf("filesystem_avail_bytes has %d series without a WAL directory, want 1 (data)", len(f.GetMetric()))
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}

	// Open recounts the same numbers from the records.
	n.restart()
	check(3, 1)

	// After Close the collector reports nothing about the store (and does
	// not touch the closed DB).
	c := newStoreCollector(n.acc.storeStats())
	n.stop()
	if got := testutil.CollectAndCount(c); got != 0 {
		t.Errorf("store collector after Close: %d metrics, want 0", got)
	}
}

// TestStoreMetricsWALVolume: with a WAL directory of its own, both volumes
// are reported.
func TestStoreMetricsWALVolume(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := testOptions(t)
	opts.Registerer = reg
	opts.WALDir = t.TempDir()
	start(t, opts)
	for _, v := range []string{"data", "wal"} {
		if got := gauge(t, reg, "kshaka_acceptor_filesystem_size_bytes", "volume", v); got <= 0 {
			t.Errorf("filesystem_size_bytes{volume=%q} = %v", v, got)
		}
	}
}

// TestWALFsyncHistogram: Pebble's nanosecond histogram becomes an exact
// histogram in seconds over a subset of its bounds.
func TestWALFsyncHistogram(t *testing.T) {
	if len(walFsyncBounds) < 10 || walFsyncBounds[0] != 100e-6 || walFsyncBounds[len(walFsyncBounds)-1] < 9 {
		t.Fatalf("walFsyncBounds = %v", walFsyncBounds)
	}
	src := prometheus.NewHistogram(prometheus.HistogramOpts{Buckets: pebble.FsyncLatencyBuckets})
	obs := []float64{50e3, 150e3, 900e3, 4e6, 30e6, 2e9, 20e9} // ns
	for _, v := range obs {
		src.Observe(v)
	}
	d := prometheus.NewDesc("x_seconds", "x", nil, nil)
	m, err := walFsyncHistogram(d, src)
	if err != nil {
		t.Fatal(err)
	}
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	h := pb.GetHistogram()
	if h.GetSampleCount() != uint64(len(obs)) {
		t.Errorf("count = %d, want %d", h.GetSampleCount(), len(obs))
	}
	var sum float64
	for _, v := range obs {
		sum += v / 1e9
	}
	if math.Abs(h.GetSampleSum()-sum) > 1e-9 {
		t.Errorf("sum = %v s, want %v s", h.GetSampleSum(), sum)
	}
	if len(h.GetBucket()) != len(walFsyncBounds) {
		t.Fatalf("%d buckets, want %d", len(h.GetBucket()), len(walFsyncBounds))
	}
	for _, bk := range h.GetBucket() {
		var want uint64
		for _, v := range obs {
			if v/1e9 <= bk.GetUpperBound()*(1+1e-9) {
				want++
			}
		}
		if bk.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v: %d, want %d", bk.GetUpperBound(), bk.GetCumulativeCount(), want)
		}
	}
}

// TestNoHandRolledRequestMetrics: the per-RPC request counters and latency
// are the standard gRPC ones; the old names are gone for good.
func TestNoHandRolledRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := testOptions(t)
	opts.Registerer = reg
	start(t, opts)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if name := f.GetName(); strings.HasPrefix(name, "kshaka_acceptor_request") {
			t.Errorf("%s is registered; RPC counts and latency are grpc_server_*", name)
		}
	}
}
