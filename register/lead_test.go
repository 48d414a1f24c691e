package register

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// TestCheckLead: a counter up to lead ahead of the clock passes, one more is
// refused with a message that names the clock, and no arithmetic wraps.
func TestCheckLead(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 40, 0, 0, time.UTC)
	clock := ClockCounter(now)
	lead := 10 * time.Minute
	leadUS := uint64(lead.Microseconds())
	// The latest time there is: UnixMicro is 2^63-1, and with the longest
	// lead the bound is still below 2^64-1.
	top, topLead := time.UnixMicro(math.MaxInt64), time.Duration(math.MaxInt64)
	tests := []struct {
		name    string
		counter uint64
		now     time.Time
		lead    time.Duration
		ok      bool
		msg     []string
	}{
		{"zero", 0, now, lead, true, nil},
		{"one", 1, now, lead, true, nil},
		{"the clock", clock, now, lead, true, nil},
		{"exactly the lead", clock + leadUS, now, lead, true, nil},
		{"one past the lead", clock + leadUS + 1, now, lead, false,
			[]string{"counter 1796291400000001 is 10m0.000001s ahead of this node's clock (2026-12-03T09:40:00Z, counter 1796290800000000); at most 10m0s is allowed"}},
		{"2^64-1", math.MaxUint64, now, lead, false,
			[]string{"counter 18446744073709551615 is 1.84e+13 s ahead", "(2026-12-03T09:40:00Z, counter 1796290800000000)", "at most 10m0s"}},
		{"zero lead: the clock itself", clock, now, 0, true, nil},
		{"zero lead: one past", clock + 1, now, 0, false, []string{"1µs ahead"}},
		{"negative lead counts as zero", clock + 1, now, -time.Hour, false, nil},
		{"clock before 1970", 1, time.Unix(-5, 0), 0, false, []string{"counter 0)"}},
		{"clock before 1970, counter 0", 0, time.Unix(-5, 0), 0, true, nil},
		{"the bound does not wrap at the top of time", math.MaxUint64, top, topLead, false, []string{"counter 9223372036854775807)"}},
		{"the top of time itself", math.MaxInt64, top, 0, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckLead(tt.counter, tt.now, tt.lead, "this node's")
			if (err == nil) != tt.ok {
				t.Fatalf("CheckLead(%d, %v, %v) = %v, want ok=%v", tt.counter, tt.now, tt.lead, err, tt.ok)
			}
			if err == nil {
				return
			}
			var le *LeadError
			if !errors.Is(err, ErrTooFarAhead) || !errors.As(err, &le) || le.Counter != tt.counter {
				t.Errorf("error %#v is not a LeadError for %d wrapping ErrTooFarAhead", err, tt.counter)
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
		})
	}
}

func TestMaxCounter(t *testing.T) {
	now := time.UnixMicro(1000)
	for _, tt := range []struct {
		now  time.Time
		lead time.Duration
		want uint64
	}{
		{now, 0, 1000},
		{now, time.Millisecond, 2000},
		{now, -time.Millisecond, 1000},
		{time.Unix(-1, 0), time.Millisecond, 1000},
		{time.UnixMicro(math.MaxInt64), time.Duration(math.MaxInt64), math.MaxInt64 + math.MaxInt64/1000},
	} {
		if got := MaxCounter(tt.now, tt.lead); got != tt.want {
			t.Errorf("MaxCounter(%v, %v) = %d, want %d", tt.now, tt.lead, got, tt.want)
		}
	}
}
