package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kshaka-io/kshaka/proposer"
)

// memContender is an in-memory Contender for testing the workload's
// counting: every fault-th write fails in the way fail says.
type memContender struct {
	mu struct {
		sync.Mutex
		vals   map[string]int64
		vers   map[string]uint64
		writes int
	}
	fault int
	// fail is called on a faulty write; it returns the error and whether
	// the write takes effect anyway.
	fail func() (error, bool)
}

func newMemContender(fault int, fail func() (error, bool)) *memContender {
	c := &memContender{fault: fault, fail: fail}
	c.mu.vals, c.mu.vers = map[string]int64{}, map[string]uint64{}
	return c
}

func (c *memContender) Name() string { return "mem" }

func (c *memContender) ReadCounter(_ context.Context, key []byte) (int64, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.vals[string(key)], c.mu.vers[string(key)], nil
}

// write applies an increment unless a fault says otherwise; callers hold mu.
func (c *memContender) write(key string) error {
	c.mu.writes++
	var err error
	apply := true
	if c.fault > 0 && c.mu.writes%c.fault == 0 {
		err, apply = c.fail()
	}
	if apply {
		c.mu.vals[key]++
		c.mu.vers[key]++
	}
	return err
}

func (c *memContender) CASCounter(_ context.Context, key []byte, version uint64, _ int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.vers[string(key)] != version {
		return fmt.Errorf("%w: at %d", ErrMismatch, c.mu.vers[string(key)])
	}
	return c.write(string(key))
}

func (c *memContender) ChangeCounter(_ context.Context, key []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return 0, c.write(string(key))
}

func (c *memContender) counters(n int) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int64, n)
	for i := range out {
		out[i] = c.mu.vals[string(ContentionKey(i))]
	}
	return out
}

// runMem runs two "processes" of the workload against c, one after the
// other (RunContention in parallel would race on nothing here but the
// mutex), and summarizes them.
func runMem(t *testing.T, c *memContender, o ContentionOptions) Result {
	t.Helper()
	initial := c.counters(o.HotKeys)
	var reps []WorkerReport
	for i := range 2 {
		o.Seed = uint64(i)
		rep, err := RunContention(context.Background(), c, o)
		if err != nil {
			t.Fatal(err)
		}
		reps = append(reps, rep)
	}
	return SummarizeContention(ContentionRun{Target: c.Name(), Options: o, Procs: 2, Reports: reps,
		Initial: initial, Final: c.counters(o.HotKeys)})
}

func checkSums(t *testing.T, r Result) {
	t.Helper()
	s := r.Contention
	if r.Ops == 0 || s.CASOps == 0 || s.ChangeOps == 0 {
		t.Fatalf("no operations of both kinds: %+v", s)
	}
	if got := s.Successes + s.Mismatches + s.Unknown + s.GiveUps; got != r.Ops {
		t.Errorf("outcomes add up to %d, ops %d: %+v", got, r.Ops, s)
	}
	if s.CASOps+s.ChangeOps != r.Ops || int64(len(r.Latencies)) != r.Ops {
		t.Errorf("ops %d, CAS %d + Change %d, latencies %d", r.Ops, s.CASOps, s.ChangeOps, len(r.Latencies))
	}
	if s.CASUnknown > s.Unknown || s.CASGiveUps > s.GiveUps {
		t.Errorf("more CAS unknowns or give-ups than in all: %+v", s)
	}
	if r.Errors != s.GiveUps || r.Unknown != s.Unknown || s.NoQuorum > s.GiveUps {
		t.Errorf("Result and ContentionStats disagree: %+v / %+v", r, s)
	}
}

var memOptions = ContentionOptions{Goroutines: 3, HotKeys: 2, CASPercent: 50, Warmup: 10 * time.Millisecond, Duration: 50 * time.Millisecond}

func TestContentionCountsWithoutFaults(t *testing.T) {
	c := newMemContender(0, nil)
	r := runMem(t, c, memOptions)
	checkSums(t, r)
	s := r.Contention
	if !s.Verified || CheckContention(r) != nil || s.Unknown != 0 || s.GiveUps != 0 {
		t.Fatalf("a faultless store failed: %+v %v", s, CheckContention(r))
	}
	// Without faults, the counters hold exactly the acknowledged increments
	// of every phase, warm-up included.
	for _, k := range s.Keys {
		if k.Final-k.Initial != k.Acked || k.Maybe != 0 {
			t.Errorf("%v", k)
		}
	}
	if r.Workload != WorkloadContention || r.Clients != 2 || len(s.Keys) != 2 {
		t.Errorf("result: %+v", r)
	}
}

func TestContentionCountsUnknownAndGiveUps(t *testing.T) {
	var mu sync.Mutex
	n := 0
	// Faults in turn: unknown and applied, unknown and not applied, no
	// quorum, another error.
	c := newMemContender(5, func() (error, bool) {
		mu.Lock()
		defer mu.Unlock()
		n++
		switch n % 4 {
		case 0:
			return fmt.Errorf("%w: lost replies", ErrUnknown), true
		case 1:
			return fmt.Errorf("%w: timeout", ErrUnknown), false
		case 2:
			return fmt.Errorf("while writing: %w", proposer.ErrNoQuorum), false
		default:
			return errors.New("access denied"), false
		}
	})
	r := runMem(t, c, memOptions)
	checkSums(t, r)
	s := r.Contention
	if s.Unknown == 0 || s.GiveUps == 0 || s.NoQuorum == 0 || s.NoQuorum == s.GiveUps {
		t.Fatalf("faults not counted apart: %+v", s)
	}
	if !s.Verified {
		t.Fatalf("unknown outcomes that landed failed the check: %+v", s.Keys)
	}
	if r.FirstError == "" || s.FirstUnknown == "" || s.UnknownPer10k <= 0 || s.GiveUpsPer10k <= 0 {
		t.Errorf("first errors or rates missing: %+v", r)
	}
}

// The negative controls: a store that loses an acknowledged increment, or
// applies one that failed definitely, fails the check, and the error names
// the key.
func TestContentionCheckCatchesLostAndInventedIncrements(t *testing.T) {
	for name, apply := range map[string]bool{"lost": false, "invented": true} {
		t.Run(name, func(t *testing.T) {
			c := newMemContender(7, func() (error, bool) {
				if apply {
					return errors.New("refused"), true // a definite error that took effect
				}
				return nil, false // acknowledged, never applied
			})
			r := runMem(t, c, memOptions)
			if r.Contention.Verified {
				t.Fatalf("the check passed: %+v", r.Contention.Keys)
			}
			err := CheckContention(r)
			if err == nil || !strings.Contains(err.Error(), "bench/contention/") {
				t.Fatalf("CheckContention = %v", err)
			}
		})
	}
}

func TestContentionRejectsNonCounter(t *testing.T) {
	if _, err := parseCounter([]byte("k"), []byte("hello")); err == nil || !strings.Contains(err.Error(), "not a decimal counter") {
		t.Fatalf("parseCounter accepted a non-counter: %v", err)
	}
	if n, err := parseCounter([]byte("k"), nil); n != 0 || err != nil {
		t.Fatalf("an absent value: %d %v", n, err)
	}
	if n, _ := parseCounter([]byte("k"), []byte(strconv.Itoa(42))); n != 42 {
		t.Fatalf("parseCounter(42) = %d", n)
	}
}

func TestContentionOptionsValidate(t *testing.T) {
	err := ContentionOptions{Goroutines: -1, HotKeys: -1, CASPercent: 101}.Validate()
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"goroutines", "hot keys", "CAS percentage"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not report %s", err, want)
		}
	}
}
