package controllers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kshaka-io/kshaka/proposer"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// TestEnvtestTombstoneGCValidation: spec.tombstoneGC defaults to GC on (24h
// retention, hourly passes, batches of 1000) so existing clusters stay
// valid, and the API server refuses bounds that cannot work.
func TestEnvtestTombstoneGCValidation(t *testing.T) {
	_, c := startEnv(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	create := func(name string, modify func(*kshakav1alpha1.TombstoneGCSpec)) error {
		kc := &kshakav1alpha1.KshakaCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		kc.Spec.Replicas = 3
		modify(&kc.Spec.TombstoneGC)
		return c.Create(ctx, kc)
	}
	d := func(s string) *metav1.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return &metav1.Duration{Duration: v}
	}
	if err := create("defaults", func(*kshakav1alpha1.TombstoneGCSpec) {}); err != nil {
		t.Fatal(err)
	}
	var kc kshakav1alpha1.KshakaCluster
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "defaults"}, &kc); err != nil {
		t.Fatal(err)
	}
	g := kc.Spec.TombstoneGC
	if g.Retention == nil || g.Retention.Duration != DefaultGCRetention || g.Interval == nil || g.Interval.Duration != DefaultGCInterval ||
		g.BatchSize != DefaultGCBatch || g.Suspend {
		t.Fatalf("defaults: %+v", g)
	}
	if s := GCSettingsOf(&kc); s != (GCSettings{Retention: DefaultGCRetention, Interval: DefaultGCInterval, Batch: DefaultGCBatch}) {
		t.Fatalf("settings of the defaults: %+v", s)
	}
	for _, tc := range []struct {
		name   string
		modify func(*kshakav1alpha1.TombstoneGCSpec)
		want   string
	}{
		{"short retention", func(s *kshakav1alpha1.TombstoneGCSpec) { s.Retention = d("30s") }, "tombstoneGC.retention must be at least 1m"},
		{"short interval", func(s *kshakav1alpha1.TombstoneGCSpec) { s.Interval = d("5s") }, "tombstoneGC.interval must be at least 10s"},
		{"negative batch", func(s *kshakav1alpha1.TombstoneGCSpec) { s.BatchSize = -1 }, "spec.tombstoneGC.batchSize"},
		{"huge batch", func(s *kshakav1alpha1.TombstoneGCSpec) { s.BatchSize = 1_000_000 }, "spec.tombstoneGC.batchSize"},
		{"negative rate", func(s *kshakav1alpha1.TombstoneGCSpec) { s.KeysPerSecond = -1 }, "spec.tombstoneGC.keysPerSecond"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := create("bad-"+strings.ReplaceAll(tc.name, " ", "-"), tc.modify)
			if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an Invalid error containing %q", err, tc.want)
			}
		})
	}
	if err := create("custom", func(s *kshakav1alpha1.TombstoneGCSpec) {
		s.Retention, s.Interval, s.BatchSize, s.KeysPerSecond, s.Suspend = d("1m"), d("10s"), 10, 500, true
	}); err != nil {
		t.Fatalf("a valid tombstoneGC: %v", err)
	}
}

// gcFixture is a three-member cluster with passes every 10s and a
// retention of 1m, whose operator measures tombstones' ages an hour ahead:
// every tombstone is old enough at once, and nothing waits for a clock.
func gcFixture(t *testing.T) *fixture {
	return newFixtureSpec(t, 3, kshakav1alpha1.AddressModePodIP, func(kc *kshakav1alpha1.KshakaCluster) {
		kc.Spec.TombstoneGC.Retention = &metav1.Duration{Duration: time.Minute}
		kc.Spec.TombstoneGC.Interval = &metav1.Duration{Duration: 10 * time.Second}
	}, func(r *Reconciler) { r.GCNow = func() time.Time { return time.Now().Add(time.Hour) } })
}

// adminKeys lists every key the acceptor at addr stores, with the
// operator's admin certificate (ListKeys needs the admin role).
func (f *fixture) adminKeys(addr string) []string {
	f.t.Helper()
	var sec corev1.Secret
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: OperatorTLSSecretName(f.get())}, &sec); err != nil {
		f.t.Fatalf("reading the operator's Secret: %v", err)
	}
	pair, err := tls.X509KeyPair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		f.t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(sec.Data[KeyCACert]) {
		f.t.Fatal("operator Secret: empty ca.crt")
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(credentials.NewTLS(
		&tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, MinVersion: tls.VersionTLS12})))
	if err != nil {
		f.t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := kshakav1.NewAdminClient(cc).ListKeys(ctx, &kshakav1.ListKeysRequest{})
	if err != nil {
		f.t.Fatalf("ListKeys of %s: %v", addr, err)
	}
	var keys []string
	for {
		page, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return keys
		}
		if err != nil {
			f.t.Fatalf("ListKeys of %s: %v", addr, err)
		}
		for _, k := range page.GetKeys() {
			keys = append(keys, string(k))
		}
	}
}

// TestEnvtestTombstoneGC: keys deleted on a running cluster are collected
// by the operator's passes (docs/design.md §10): the status and the
// metrics count them, no acceptor stores them any more, the configuration
// carries raised floors, and a recreated key's version is above every
// version it had while a compare-and-swap on an old version fails.
func TestEnvtestTombstoneGC(t *testing.T) {
	f := gcFixture(t)
	cfg := f.waitConverged()
	p := f.store(cfg)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := func(i int) []byte { return []byte(fmt.Sprintf("gc/%03d", i)) }
	for i := range 20 {
		if _, err := p.Put(ctx, key(i), []byte("v1")); err != nil {
			t.Fatal(err)
		}
	}
	var deletedVersion uint64
	for i := range 10 {
		if _, err := p.Put(ctx, key(i), []byte("v2")); err != nil {
			t.Fatal(err)
		}
		if err := p.Delete(ctx, key(i)); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := p.Export(ctx, key(0)); err != nil || !r.Deleted {
		t.Fatalf("export of a deleted key: %+v, %v", r, err)
	} else {
		deletedVersion = r.Version // put, put, delete: 3
	}
	before := f.get().Status.TombstoneGC
	var collectedBefore int64
	if before != nil {
		collectedBefore = before.TotalCollected
	}
	kc := f.eventually(90*time.Second, "a pass to collect the 10 tombstones", func(kc *kshakav1alpha1.KshakaCluster) bool {
		g := kc.Status.TombstoneGC
		return g != nil && g.Pass == nil && g.TotalCollected-collectedBefore >= 10
	})
	g := kc.Status.TombstoneGC
	if g.TotalCollected-collectedBefore != 10 || g.LastError != "" || g.ConsecutiveFailures != 0 {
		t.Fatalf("status.tombstoneGC: %+v", g)
	}
	if c := condition(Plan{Status: kc.Status}, kshakav1alpha1.ConditionTombstoneGC); c.Status != metav1.ConditionTrue || c.Reason != ReasonGCCompleted {
		t.Fatalf("TombstoneGC condition: %+v", c)
	}
	after, _ := ConfigFromStatus(kc.Status.Configuration)
	if after.Epoch <= cfg.Epoch || after.VersionFloor < deletedVersion || after.RemovedBallot.IsZero() || !slices.Equal(after.Members, cfg.Members) {
		t.Fatalf("configuration after the pass: %s (before %s)", after, cfg)
	}
	if got := testutil.ToFloat64(gcMetrics.collected.WithLabelValues(f.ns, "kc")); got < 10 {
		t.Fatalf("kshaka_operator_gc_collected_total = %v, want at least 10", got)
	}
	f.eventuallyEvents(EventGCPassCompleted)

	// The records are gone from every member; the live keys are not.
	for _, m := range after.Members {
		keys := f.adminKeys(m.Addr)
		for i := range 20 {
			if has := slices.Contains(keys, string(key(i))); has != (i >= 10) {
				t.Fatalf("%s lists %v; key %s present: %v", m.ID, keys, key(i), has)
			}
		}
	}

	// Versions never go back: a compare-and-swap on an old version fails,
	// a recreated key starts above every version it had.
	for _, v := range []uint64{1, 2, deletedVersion} {
		_, err := p.CompareAndSwap(ctx, key(1), v, []byte("stale"))
		if !errors.Is(err, proposer.ErrVersionMismatch) {
			t.Fatalf("CAS of collected key %s on old version %d: %v, want a version mismatch", key(1), v, err)
		}
	}
	got, err := p.CompareAndSwap(ctx, key(1), 0, []byte("again"))
	if err != nil || got.Version <= deletedVersion {
		t.Fatalf("recreating %s: version %d (had %d), %v", key(1), got.Version, deletedVersion, err)
	}
	got, err = p.Put(ctx, key(0), []byte("again"))
	if err != nil || got.Version <= deletedVersion {
		t.Fatalf("recreating %s with a put: version %d (had %d), %v", key(0), got.Version, deletedVersion, err)
	}
	for i := 10; i < 20; i++ {
		if v, err := p.Get(ctx, key(i)); err != nil || string(v.Data) != "v1" {
			t.Fatalf("live key %s: %+v, %v", key(i), v, err)
		}
	}
}

// TestEnvtestTombstoneGCResumesFloorEpoch: an operator that stopped after
// recording a pass's floor configuration, before installing it, installs
// and fences it when it starts again (the configuration is the intent,
// recorded first), then goes on; no membership change started meanwhile.
func TestEnvtestTombstoneGCResumesFloorEpoch(t *testing.T) {
	f := gcFixture(t)
	cfg := f.waitConverged()
	f.op.stop()
	kc := f.get()
	next := cfg.Clone()
	next.Epoch++
	next.VersionFloor = 7
	kc.Status.Configuration = ConfigToStatus(next)
	kc.Status.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{Pass: &kshakav1alpha1.TombstoneGCPass{
		Step: kshakav1alpha1.GCStepInstallFloor, StartedAt: metav1.Now(), FloorEpoch: int64(next.Epoch)}}
	if err := f.c.Status().Update(context.Background(), kc); err != nil {
		t.Fatal(err)
	}
	f.scale(4) // waits for the floor epoch
	f.op = startOperator(t, f.cfg, f.ns, f.acc, func(r *Reconciler) { r.GCNow = func() time.Time { return time.Now().Add(time.Hour) } })
	f.eventuallyEvents(EventGCFloorResumed)
	kc = f.eventually(90*time.Second, "four members after the floor epoch", func(kc *kshakav1alpha1.KshakaCluster) bool {
		got, ok := ConfigFromStatus(kc.Status.Configuration)
		return converged(kc) && ok && len(got.Members) == 4
	})
	got, _ := ConfigFromStatus(kc.Status.Configuration)
	if got.VersionFloor != 7 || got.Epoch < next.Epoch+2 {
		t.Fatalf("configuration after the add: %s; the floors must be kept (VF 7) and the add come after epoch %d", got, next.Epoch)
	}
	for _, m := range kc.Status.Members {
		if m.AcknowledgedEpoch < int64(got.Epoch) {
			t.Fatalf("%s acknowledged epoch %d, not %d", m.PodName, m.AcknowledgedEpoch, got.Epoch)
		}
	}
}
