package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

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
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := create("bad-"+strings.ReplaceAll(tc.name, " ", "-"), tc.modify)
			if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an Invalid error containing %q", err, tc.want)
			}
		})
	}
	if err := create("custom", func(s *kshakav1alpha1.TombstoneGCSpec) {
		s.Retention, s.Interval, s.BatchSize, s.Suspend = d("1m"), d("10s"), 10, true
	}); err != nil {
		t.Fatalf("a valid tombstoneGC: %v", err)
	}
}
