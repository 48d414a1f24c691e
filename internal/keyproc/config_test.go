package keyproc

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	base, limit := 2*time.Millisecond, 500*time.Millisecond
	for _, tc := range []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{n: 0, r: 0.99, want: 0},
		{n: 1, r: 0, want: 0},
		{n: 1, r: 0.5, want: time.Millisecond},
		{n: 2, r: 0.5, want: 2 * time.Millisecond},
		{n: 3, r: 0.5, want: 4 * time.Millisecond},
		{n: 8, r: 0.5, want: 128 * time.Millisecond},
		{n: 9, r: 0.5, want: 250 * time.Millisecond}, // 512ms window capped at 500ms
		{n: 1000, r: 0.5, want: 250 * time.Millisecond},
		{n: 64, r: 0.999, want: time.Duration(0.999 * float64(limit))},
	} {
		if got := Backoff(tc.n, base, limit, tc.r); got != tc.want {
			t.Errorf("Backoff(%d, r=%v) = %v, want %v", tc.n, tc.r, got, tc.want)
		}
	}
	// The window never exceeds the limit and grows monotonically.
	prev := time.Duration(0)
	for n := 1; n < 100; n++ {
		w := Backoff(n, base, limit, 0.999999)
		if w > limit || w < prev {
			t.Fatalf("Backoff(%d) = %v after %v (limit %v)", n, w, prev, limit)
		}
		prev = w
	}
}

func TestAverage(t *testing.T) {
	if got := Average(0, 80); got != 80 {
		t.Errorf("Average(0, 80) = %v, want the first round itself", got)
	}
	if got := Average(80, 160); got != 90 {
		t.Errorf("Average(80, 160) = %v, want 90 (an eighth of the way)", got)
	}
}
