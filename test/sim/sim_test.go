package sim

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

var (
	flagSeed  = flag.Uint64("seed", 0, "replay this one seed (TestSim, TestSeedTrace)")
	flagSeeds = flag.Int("sim.seeds", 0, "number of random seeds for TestSim (default: $KSHAKA_SIM_SEEDS or the CI budget)")
	flagStart = flag.Uint64("sim.start", 1, "first seed for TestSim")
)

// defaultSeeds is the CI budget of random histories for TestSim; about a
// minute on two cores. Soak runs raise it with -sim.seeds or
// KSHAKA_SIM_SEEDS.
const defaultSeeds = 6000

// scenarioSeeds is how many seeds of each scripted scenario TestSim runs,
// gcSeeds how many random runs with the tombstone GC.
const (
	scenarioSeeds = 300
	gcSeeds       = 600
)

func seedBudget() int {
	if *flagSeeds > 0 {
		return *flagSeeds
	}
	if v, err := strconv.Atoi(os.Getenv("KSHAKA_SIM_SEEDS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return defaultSeeds / 10
	}
	return defaultSeeds
}

const checkTimeout = 30 * time.Second

type outcome struct {
	seed  uint64
	res   *Result
	check porcupine.CheckResult
}

// runSeeds runs options(seed) for seeds start … start+n-1 on all cores and
// reports each outcome to report, under a lock, until report returns true.
// Seeds already running when it does are still reported, so the lowest
// failing seed is exact.
func runSeeds(start uint64, n int, options func(seed uint64) Options, report func(outcome) bool) (ran int) {
	var next atomic.Uint64
	next.Store(start)
	var stop atomic.Bool
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				seed := next.Add(1) - 1
				if seed >= start+uint64(n) {
					return
				}
				res := Run(options(seed))
				chk := Check(res.Operations, checkTimeout)
				mu.Lock()
				ran++
				if report(outcome{seed: seed, res: res, check: chk}) {
					stop.Store(true)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ran
}

func failureDir() string {
	if d := os.Getenv("KSHAKA_SIM_FAILURES"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "kshaka-sim-failures")
}

// simCase is a family of runs TestSim checks.
type simCase struct {
	name    string
	start   uint64
	n       int
	options func(seed uint64) Options
	replay  string
}

// TestSim runs the budget of random seeds and of the scripted scenarios
// with the correct driver and checks every history with porcupine (docs/design.md
// §8), and the fence guarantee of docs/design.md §3 on the simulation's ghost
// state. With -seed=N it replays one random seed.
func TestSim(t *testing.T) {
	cases := []simCase{
		{"random", *flagStart, seedBudget(), func(s uint64) Options { return NewOptions(s, Faults{}) }, "-seed=%d"},
		{"fence-straddle", 1, scenarioSeeds, func(s uint64) Options { return FenceStraddle(s, Faults{}) }, ""},
		{"lost-promise", 1, scenarioSeeds, func(s uint64) Options { return LostPromise(s, Faults{}) }, ""},
		{"stale-duplicate", 1, scenarioSeeds, func(s uint64) Options { return StaleDuplicate(s, Faults{}) }, ""},
		{"duplicate-accept", 1, scenarioSeeds, func(s uint64) Options { return DuplicateAccept(s, Faults{}) }, ""},
		{"surviving-ballot", 1, scenarioSeeds, func(s uint64) Options { return SurvivingBallot(s, Faults{}) }, ""},
		{"rolled-back", 1, scenarioSeeds, func(s uint64) Options { return RolledBack(s, Faults{}) }, ""},
		{"gc", 1, gcSeeds, func(s uint64) Options { return GCOptions(s, Faults{}) }, ""},
		{"gc-collect-promised", 1, scenarioSeeds / 3, func(s uint64) Options { return CollectPromisedScenario(s, Faults{}) }, ""},
		{"duplicates", 1, scenarioSeeds, func(s uint64) Options {
			o := NewOptions(s, Faults{})
			o.Net.Duplicate = 0.3
			return o
		}, ""},
	}
	if *flagSeed != 0 {
		cases = cases[:1]
		cases[0].start, cases[0].n = *flagSeed, 1
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var total Stats
			failed, inconclusive := 0, 0
			t0 := time.Now()
			ran := runSeeds(c.start, c.n, c.options, func(o outcome) bool {
				addStats(&total, o.res.Stats)
				if o.res.Stats.AcceptsAfterFence > 0 {
					failed++
					t.Errorf("seed %d: %d acceptances from an older epoch after the fence (docs/design.md §3)", o.seed, o.res.Stats.AcceptsAfterFence)
				}
				switch o.check {
				case porcupine.Illegal:
					failed++
					path := filepath.Join(failureDir(), fmt.Sprintf("%s-seed-%d.html", c.name, o.seed))
					_ = os.MkdirAll(failureDir(), 0o755)
					if err := Visualize(o.res.Operations, path, checkTimeout); err != nil {
						path = "(visualization failed: " + err.Error() + ")"
					}
					t.Errorf("%s seed %d: history is not linearizable; visualization: %s\n  replay: go test ./test/sim -run 'TestSeedTrace' -seed=%d -v",
						c.name, o.seed, path, o.seed)
				case porcupine.Unknown:
					inconclusive++
					t.Logf("seed %d: the linearizability check timed out (inconclusive)", o.seed)
				}
				if *flagSeed != 0 {
					t.Logf("seed %d: %d operations, trace %016x, %+v", o.seed, len(o.res.Operations), o.res.TraceHash, o.res.Stats)
				}
				return failed >= 3
			})
			t.Logf("%d histories checked in %v; %d inconclusive; totals %+v", ran, time.Since(t0).Round(time.Millisecond), inconclusive, total)
			if inconclusive > ran/100 {
				t.Errorf("%d of %d checks were inconclusive", inconclusive, ran)
			}
		})
	}
}

// TestDeterminism: a seed replays exactly — same event trace, same
// history — and different seeds differ.
func TestDeterminism(t *testing.T) {
	for _, seed := range []uint64{7, 1234} {
		a, b := Run(NewOptions(seed, Faults{})), Run(NewOptions(seed, Faults{}))
		if a.TraceHash != b.TraceHash {
			t.Fatalf("seed %d: trace %016x then %016x", seed, a.TraceHash, b.TraceHash)
		}
		if fmt.Sprint(a.Operations) != fmt.Sprint(b.Operations) {
			t.Fatalf("seed %d: histories differ", seed)
		}
	}
	if Run(NewOptions(7, Faults{})).TraceHash == Run(NewOptions(8, Faults{})).TraceHash {
		t.Fatal("seeds 7 and 8 have the same trace")
	}
	a, b := Run(FenceStraddle(3, Faults{})), Run(FenceStraddle(3, Faults{}))
	if a.TraceHash != b.TraceHash {
		t.Fatal("the scripted scenario does not replay")
	}
}

// TestSeedTrace replays one seed (-seed=N, default 1; with -faults=name for
// a negative control), writes its event log, and prints the history of every
// key that is not linearizable. Without flags it checks that the replay tool
// works on seed 1: a non-empty event log and a linearizable history.
func TestSeedTrace(t *testing.T) {
	seed := *flagSeed
	if seed == 0 {
		seed = 1
	}
	var log []string
	opts := NewOptions(seed, controlFaults(*flagFaults))
	opts.Log = func(now int64, what string, nums []uint64) {
		log = append(log, fmt.Sprintf("%6d %s %v", now, what, nums))
	}
	res := Run(opts)
	if len(log) == 0 || len(res.Operations) == 0 {
		t.Fatalf("seed %d replayed with %d events and %d operations", seed, len(log), len(res.Operations))
	}
	path := filepath.Join(failureDir(), fmt.Sprintf("seed-%d.log", seed))
	_ = os.MkdirAll(failureDir(), 0o755)
	if err := os.WriteFile(path, []byte(strings.Join(log, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d: %d operations, trace %016x; event log: %s", seed, len(res.Operations), res.TraceHash, path)
	for _, part := range kvModel.Partition(res.Operations) {
		if porcupine.CheckOperations(kvModel, part) {
			continue
		}
		slices.SortFunc(part, func(a, b porcupine.Operation) int { return int(a.Call - b.Call) })
		var b strings.Builder
		for _, op := range part {
			ret := strconv.FormatInt(op.Return, 10)
			if op.Return == 1<<63-1 {
				ret = "∞"
			}
			fmt.Fprintf(&b, "  c%-3d [%5d, %5s] %s\n", op.ClientId, op.Call, ret, kvModel.DescribeOperation(op.Input, op.Output))
		}
		t.Errorf("key %s is not linearizable:\n%s", part[0].Input.(kvInput).Key, b.String())
	}
}

func addStats(t *Stats, s Stats) {
	t.Ops += s.Ops
	t.Unknown += s.Unknown
	t.Sealed += s.Sealed
	t.Failed += s.Failed
	t.Pruned += s.Pruned
	t.Lost += s.Lost
	t.Cut += s.Cut
	t.NotAdmitted += s.NotAdmitted
	t.FastWrites += s.FastWrites
	t.QuorumReads += s.QuorumReads
	t.ReadFallbacks += s.ReadFallbacks
	t.Retries += s.Retries
	t.Changes += s.Changes
	t.RescanSkips += s.RescanSkips
	t.RescanWrites += s.RescanWrites
	t.DiskLosses += s.DiskLosses
	t.OperatorCrashes += s.OperatorCrashes
	t.AcceptsAfterFence += s.AcceptsAfterFence
	t.LateAcked += s.LateAcked
	t.SettleRetries += s.SettleRetries
	t.Settled += s.Settled
	t.SettledOwn += s.SettledOwn
	t.SettleAmbiguous += s.SettleAmbiguous
	t.GC += s.GC
	t.GCCollected += s.GCCollected
	t.GCRemoved += s.GCRemoved
}
