package acceptor

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

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

	m := n.acc.metrics
	for _, c := range []struct {
		result string
		want   float64
	}{{"ok", 1}, {"stale", 1}, {"InvalidArgument", 1}} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues("Prepare", c.result)); got != c.want {
			t.Errorf("requests{Prepare,%s} = %v, want %v", c.result, got, c.want)
		}
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
	names, err := reg.Gather()
	if err != nil || len(names) < 8 {
		t.Fatalf("Gather = %d families, %v", len(names), err)
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
