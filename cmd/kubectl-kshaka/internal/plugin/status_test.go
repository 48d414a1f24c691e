package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

func TestRescanPercent(t *testing.T) {
	start := metav1.NewTime(now.Add(-time.Minute))
	for _, tc := range []struct {
		kind           kshakav1alpha1.TransitionKind
		step           kshakav1alpha1.TransitionStep
		rescanned, est int64
		want           int // -1: null
	}{
		{kshakav1alpha1.TransitionAdd, kshakav1alpha1.StepInstallJoint, 0, 0, -1},
		{kshakav1alpha1.TransitionAdd, kshakav1alpha1.StepRescan, 0, 0, -1},
		{kshakav1alpha1.TransitionAdd, kshakav1alpha1.StepRescan, 0, 200, 0},
		{kshakav1alpha1.TransitionAdd, kshakav1alpha1.StepRescan, 50, 200, 25},
		// Keys written since the estimate: never 100 before the rescan is done.
		{kshakav1alpha1.TransitionRemove, kshakav1alpha1.StepRescan, 260, 200, 99},
		{kshakav1alpha1.TransitionRemove, kshakav1alpha1.StepInstallFinal, 260, 200, 100},
		{kshakav1alpha1.TransitionRemove, kshakav1alpha1.StepDeleteVolume, 0, 0, 100},
		{kshakav1alpha1.TransitionBootstrap, kshakav1alpha1.StepInstallFinal, 0, 0, -1},
	} {
		tr := buildTransition(&kshakav1alpha1.Transition{Kind: tc.kind, Step: tc.step, KeysRescanned: tc.rescanned, KeysEstimated: tc.est, StartedAt: &start}, now)
		got := -1
		if tr.RescanPercent != nil {
			got = *tr.RescanPercent
		}
		if got != tc.want || tr.AgeSeconds != 60 {
			t.Errorf("%s at %s, %d of %d: percent %d (age %ds), want %d", tc.kind, tc.step, tc.rescanned, tc.est, got, tr.AgeSeconds, tc.want)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 8}
	for _, s := range []string{"0123", "4567", "89ab"} {
		if _, err := tb.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(tb.bytes()); !strings.HasSuffix(got, "\n456789ab") || !strings.Contains(got, "the first 4 bytes of this log were left out") {
		t.Fatalf("%q", got)
	}
	small := &tailBuffer{max: 8}
	_, _ = small.Write([]byte("abc"))
	if !bytes.Equal(small.bytes(), []byte("abc")) {
		t.Fatalf("%q", small.bytes())
	}
}

func TestExpiry(t *testing.T) {
	if got := expiry(&Expiry{NotAfter: now.Add(-49 * time.Hour)}, now); !strings.HasPrefix(got, "EXPIRED 2d ago") {
		t.Fatal(got)
	}
	if got := expiry(&Expiry{NotAfter: now.Add(89*24*time.Hour + time.Hour)}, now); !strings.HasPrefix(got, "in 89d (") {
		t.Fatal(got)
	}
	if got := expiry(nil, now); got != "unknown" {
		t.Fatal(got)
	}
}
