package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kshaka-io/kshaka/proposer"
)

// WorkloadContention is N client processes, each its own proposer, racing
// on a few hot keys with CAS and Change increments (issue 14). Its runs are
// WORKLOAD:PROCS: the number after the colon is the number of processes.
const WorkloadContention = "contention"

// ErrMismatch is wrapped by a Contender's error when a compare-and-swap
// found another version: a definite, normal outcome under contention.
var ErrMismatch = errors.New("version mismatch")

// Contender is a store as the contention workload uses it: a decimal
// counter under each hot key, incremented two ways. Its methods must be
// safe for concurrent use. Errors wrap ErrUnknown when the increment may or
// may not have taken effect; every other error means it did not.
type Contender interface {
	// Name identifies the target in reports.
	Name() string
	// ReadCounter reads key linearizably: its counter (0 when the key does
	// not exist) and the version to compare-and-swap from. A value that is
	// not a decimal counter is an error.
	ReadCounter(ctx context.Context, key []byte) (n int64, version uint64, err error)
	// CASCounter writes n+1 under key if its version is still version, in
	// one attempt; another version is an error wrapping ErrMismatch.
	CASCounter(ctx context.Context, key []byte, version uint64, n int64) error
	// ChangeCounter adds one to the counter under key in one
	// read-modify-write of the store (Kshaka: Client.Change; etcd: a
	// transaction retried on conflicts, which it returns).
	ChangeCounter(ctx context.Context, key []byte) (conflicts int, err error)
}

// ContentionKey returns the i-th hot key of the contention workload.
func ContentionKey(i int) []byte { return []byte("bench/contention/" + strconv.Itoa(i)) }

// parseCounter reads a counter value; an absent or empty value is 0.
func parseCounter(key, data []byte) (int64, error) {
	if len(data) == 0 {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("key %q holds %.40q, not a decimal counter: delete it, or run bench on another --dir or cluster", key, data)
	}
	return n, nil
}

// ContentionOptions configures one process of the contention workload.
type ContentionOptions struct {
	// Goroutines is the number of concurrent operations; default 4.
	Goroutines int
	// HotKeys is the number of hot keys (ContentionKey(0..HotKeys-1));
	// default 3.
	HotKeys int
	// CASPercent is the share of operations (0..100) that are one CAS
	// attempt; the others are Change increments. Taken as given: 0 means
	// Change only (the CLI's default is 50).
	CASPercent int
	// Warmup is the unmeasured time before Duration, during which the
	// operations run and count for the final check but not in the
	// statistics.
	Warmup time.Duration
	// Duration is the measured time; default 10s.
	Duration time.Duration
	// OpTimeout bounds each operation; default 30s. An operation cut off by
	// it counts as whatever the store answers (Kshaka: usually unknown).
	OpTimeout time.Duration
	// Seed makes the choice of keys and operations reproducible.
	Seed uint64
}

// EnsureDefaults fills the zero fields with their defaults. CASPercent is
// taken as given (0..100); the CLI's default is 50.
func (o *ContentionOptions) EnsureDefaults() {
	if o.Goroutines <= 0 {
		o.Goroutines = 4
	}
	if o.HotKeys <= 0 {
		o.HotKeys = 3
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 30 * time.Second
	}
}

// Validate reports every problem of o at once.
func (o ContentionOptions) Validate() error {
	var errs []error
	if o.Goroutines < 0 {
		errs = append(errs, fmt.Errorf("goroutines must not be negative, not %d", o.Goroutines))
	}
	if o.HotKeys < 0 {
		errs = append(errs, fmt.Errorf("hot keys must not be negative, not %d", o.HotKeys))
	}
	if o.CASPercent < 0 || o.CASPercent > 100 {
		errs = append(errs, fmt.Errorf("the CAS percentage must be 0..100, not %d", o.CASPercent))
	}
	if o.Duration < 0 || o.Warmup < 0 || o.OpTimeout < 0 {
		errs = append(errs, errors.New("duration, warm-up and operation timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// WorkerReport is what one process of the contention workload measured. It
// is the JSON line a worker process sends to the parent.
type WorkerReport struct {
	// Counts of the operations started in the measured phase.
	Ops        int64 `json:"ops"`
	CASOps     int64 `json:"cas_ops"`
	ChangeOps  int64 `json:"change_ops"`
	Successes  int64 `json:"successes"`
	Mismatches int64 `json:"mismatches"`
	Unknown    int64 `json:"unknown"`
	// GiveUps are the operations that ended in any other error; NoQuorum
	// counts those that were proposer.ErrNoQuorum.
	GiveUps   int64 `json:"give_ups"`
	NoQuorum  int64 `json:"no_quorum"`
	Conflicts int64 `json:"conflicts,omitempty"`
	// CASUnknown and CASGiveUps are the unknown outcomes and give-ups of
	// the CAS operations (their read included); the rest are Change's.
	CASUnknown int64 `json:"cas_unknown"`
	CASGiveUps int64 `json:"cas_give_ups"`
	// FirstError describes the first give-up, and FirstUnknown the first
	// unknown outcome, of any phase.
	FirstError   string `json:"first_error,omitempty"`
	FirstUnknown string `json:"first_unknown,omitempty"`
	// ElapsedS is the measured time.
	ElapsedS float64 `json:"elapsed_s"`
	// LatenciesUS are the measured operations' latencies, whatever their
	// outcome, in microseconds.
	LatenciesUS []int64 `json:"latencies_us"`
	// Acked and Maybe count, per hot key and over every phase, the
	// increments acknowledged and those whose outcome is unknown: the
	// bounds of the final check.
	Acked []int64 `json:"acked"`
	Maybe []int64 `json:"maybe"`
}

// outcome of one operation.
type outcome int

const (
	outSuccess outcome = iota
	outMismatch
	outUnknown
	outNoQuorum
	outGiveUp
)

func classify(err error) outcome {
	switch {
	case err == nil:
		return outSuccess
	case errors.Is(err, ErrMismatch):
		return outMismatch
	case errors.Is(err, ErrUnknown):
		return outUnknown
	case errors.Is(err, proposer.ErrNoQuorum):
		return outNoQuorum
	default:
		return outGiveUp
	}
}

// contentionWorker is one goroutine's tally; merged into the report at the
// end, so the operations share nothing.
type contentionWorker struct {
	rng *rand.Rand
	r   WorkerReport
}

// RunContention runs one process's share of the contention workload
// against c: o.Goroutines goroutines, each choosing a hot key and an
// operation at random, for o.Warmup and then o.Duration. Operations in
// flight at the end are finished, never cancelled, so the report's Acked
// and Maybe cover every increment this process made. It returns early only
// if ctx ends (with ctx's error).
func RunContention(ctx context.Context, c Contender, o ContentionOptions) (WorkerReport, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return WorkerReport{}, err
	}
	var measuring, stop atomic.Bool
	ws := make([]*contentionWorker, o.Goroutines)
	var wg sync.WaitGroup
	for i := range ws {
		w := &contentionWorker{rng: rand.New(rand.NewPCG(o.Seed, uint64(i))),
			r: WorkerReport{Acked: make([]int64, o.HotKeys), Maybe: make([]int64, o.HotKeys)}}
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && ctx.Err() == nil {
				w.op(c, o, measuring.Load())
			}
		}()
	}
	finish := func() { stop.Store(true); wg.Wait() }
	if err := sleepCtx(ctx, o.Warmup); err != nil {
		finish()
		return WorkerReport{}, err
	}
	measuring.Store(true)
	began := time.Now()
	err := sleepCtx(ctx, o.Duration)
	measuring.Store(false)
	elapsed := time.Since(began)
	finish()
	if err != nil {
		return WorkerReport{}, err
	}
	r := WorkerReport{Acked: make([]int64, o.HotKeys), Maybe: make([]int64, o.HotKeys), ElapsedS: elapsed.Seconds()}
	for _, w := range ws {
		r.merge(w.r)
	}
	return r, nil
}

// op runs one operation and tallies it; measured says whether it counts in
// the statistics (it always counts in Acked and Maybe).
func (w *contentionWorker) op(c Contender, o ContentionOptions, measured bool) {
	k := w.rng.IntN(o.HotKeys)
	key := ContentionKey(k)
	cas := w.rng.IntN(100) < o.CASPercent
	ctx, cancel := context.WithTimeout(context.Background(), o.OpTimeout)
	defer cancel()
	start := time.Now()
	var err error
	var conflicts int
	wrote := true // whether an increment was attempted (a failed read attempts none)
	if cas {
		var n int64
		var ver uint64
		if n, ver, err = c.ReadCounter(ctx, key); err == nil {
			err = c.CASCounter(ctx, key, ver, n)
		} else {
			wrote = false
		}
	} else {
		conflicts, err = c.ChangeCounter(ctx, key)
	}
	lat := time.Since(start)
	out := classify(err)
	switch {
	case out == outSuccess:
		w.r.Acked[k]++
	case out == outUnknown && wrote:
		w.r.Maybe[k]++
	}
	if out == outUnknown && w.r.FirstUnknown == "" {
		w.r.FirstUnknown = err.Error()
	}
	if (out == outNoQuorum || out == outGiveUp) && w.r.FirstError == "" {
		w.r.FirstError = err.Error()
	}
	if !measured {
		return
	}
	r := &w.r
	r.Ops++
	if cas {
		r.CASOps++
	} else {
		r.ChangeOps++
	}
	r.Conflicts += int64(conflicts)
	r.LatenciesUS = append(r.LatenciesUS, lat.Microseconds())
	switch out {
	case outSuccess:
		r.Successes++
	case outMismatch:
		r.Mismatches++
	case outUnknown:
		r.Unknown++
		if cas {
			r.CASUnknown++
		}
	default:
		r.GiveUps++
		if out == outNoQuorum {
			r.NoQuorum++
		}
		if cas {
			r.CASGiveUps++
		}
	}
}

// merge adds o's counts to r. ElapsedS is kept.
func (r *WorkerReport) merge(o WorkerReport) {
	r.Ops += o.Ops
	r.CASOps += o.CASOps
	r.ChangeOps += o.ChangeOps
	r.Successes += o.Successes
	r.Mismatches += o.Mismatches
	r.Unknown += o.Unknown
	r.GiveUps += o.GiveUps
	r.NoQuorum += o.NoQuorum
	r.Conflicts += o.Conflicts
	r.CASUnknown += o.CASUnknown
	r.CASGiveUps += o.CASGiveUps
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
	if r.FirstUnknown == "" {
		r.FirstUnknown = o.FirstUnknown
	}
	r.LatenciesUS = append(r.LatenciesUS, o.LatenciesUS...)
	for len(r.Acked) < len(o.Acked) {
		r.Acked = append(r.Acked, 0)
	}
	for len(r.Maybe) < len(o.Maybe) {
		r.Maybe = append(r.Maybe, 0)
	}
	for i, v := range o.Acked {
		r.Acked[i] += v
	}
	for i, v := range o.Maybe {
		r.Maybe[i] += v
	}
}

// ContentionStats is the contention workload's part of a Result.
type ContentionStats struct {
	Procs      int `json:"procs"`
	Goroutines int `json:"goroutines"`
	HotKeys    int `json:"hot_keys"`
	CASPercent int `json:"cas_percent"`

	CASOps     int64 `json:"cas_ops"`
	ChangeOps  int64 `json:"change_ops"`
	Successes  int64 `json:"successes"`
	Mismatches int64 `json:"mismatches"`
	Unknown    int64 `json:"unknown"`
	GiveUps    int64 `json:"give_ups"`
	NoQuorum   int64 `json:"no_quorum"`
	// CASUnknown and CASGiveUps are those of the CAS operations; the rest
	// are Change's.
	CASUnknown int64 `json:"cas_unknown"`
	CASGiveUps int64 `json:"cas_give_ups"`
	// Per 10,000 operations of the measured phase.
	MismatchesPer10k float64 `json:"mismatches_per_10k"`
	UnknownPer10k    float64 `json:"unknown_per_10k"`
	GiveUpsPer10k    float64 `json:"give_ups_per_10k"`
	// IncrementsPerSec is the acknowledged increments (successful CAS and
	// Change) per second of the measured phase.
	IncrementsPerSec float64 `json:"increments_per_sec"`
	FirstUnknown     string  `json:"first_unknown,omitempty"`

	// Keys is the final check, per hot key; Verified is true when every
	// key passed it.
	Keys     []KeyCheck `json:"keys"`
	Verified bool       `json:"verified"`
}

// KeyCheck is the final check of one hot key: the counter grew by at least
// the acknowledged increments (none was lost) and at most those plus the
// ones whose outcome is unknown (none was applied twice, or invented).
type KeyCheck struct {
	Key     string `json:"key"`
	Initial int64  `json:"initial"`
	Final   int64  `json:"final"`
	Acked   int64  `json:"acked"`
	Maybe   int64  `json:"maybe"`
	OK      bool   `json:"ok"`
}

// check sets OK.
func (k *KeyCheck) check() {
	grew := k.Final - k.Initial
	k.OK = grew >= k.Acked && grew <= k.Acked+k.Maybe
}

func (k KeyCheck) String() string {
	return fmt.Sprintf("%s: counter went from %d to %d (+%d); acknowledged increments %d, unknown %d: want +%d..+%d",
		k.Key, k.Initial, k.Final, k.Final-k.Initial, k.Acked, k.Maybe, k.Acked, k.Acked+k.Maybe)
}

// ContentionRun describes a finished contention run for SummarizeContention.
type ContentionRun struct {
	Target  string
	Options ContentionOptions
	Procs   int
	// Reports are the processes' reports.
	Reports []WorkerReport
	// Initial and Final are the hot keys' counters before the first
	// process started and after the last one exited.
	Initial, Final []int64
}

// SummarizeContention aggregates the processes' reports into a Result and
// checks every hot key's counter against the increments acknowledged.
func SummarizeContention(cr ContentionRun) Result {
	o := cr.Options
	var all WorkerReport
	var elapsed float64
	for _, r := range cr.Reports {
		all.merge(r)
		elapsed += r.ElapsedS
	}
	if len(cr.Reports) > 0 {
		elapsed /= float64(len(cr.Reports))
	}
	st := &ContentionStats{
		Procs: cr.Procs, Goroutines: o.Goroutines, HotKeys: o.HotKeys, CASPercent: o.CASPercent,
		CASOps: all.CASOps, ChangeOps: all.ChangeOps, Successes: all.Successes, Mismatches: all.Mismatches,
		Unknown: all.Unknown, GiveUps: all.GiveUps, NoQuorum: all.NoQuorum, FirstUnknown: all.FirstUnknown,
		CASUnknown: all.CASUnknown, CASGiveUps: all.CASGiveUps,
		Verified: true,
	}
	if all.Ops > 0 {
		per := func(n int64) float64 { return math10k(n, all.Ops) }
		st.MismatchesPer10k, st.UnknownPer10k, st.GiveUpsPer10k = per(all.Mismatches), per(all.Unknown), per(all.GiveUps)
	}
	for i := range o.HotKeys {
		k := KeyCheck{Key: string(ContentionKey(i))}
		if i < len(cr.Initial) {
			k.Initial = cr.Initial[i]
		}
		if i < len(cr.Final) {
			k.Final = cr.Final[i]
		}
		if i < len(all.Acked) {
			k.Acked, k.Maybe = all.Acked[i], all.Maybe[i]
		}
		k.check()
		st.Verified = st.Verified && k.OK
		st.Keys = append(st.Keys, k)
	}
	r := Result{
		Target: cr.Target, Workload: WorkloadContention, Clients: cr.Procs, Keys: o.HotKeys,
		DurationS: elapsed, Ops: all.Ops, Errors: all.GiveUps, Unknown: all.Unknown,
		Conflicts: all.Conflicts, FirstError: all.FirstError, Contention: st,
	}
	r.Latencies = make([]time.Duration, len(all.LatenciesUS))
	for i, v := range all.LatenciesUS {
		r.Latencies[i] = time.Duration(v) * time.Microsecond
	}
	slices.Sort(r.Latencies)
	if elapsed > 0 {
		r.OpsPerSec = float64(all.Ops) / elapsed
		st.IncrementsPerSec = float64(all.Successes) / elapsed
	}
	r.P50us = us(Percentile(r.Latencies, 0.50))
	r.P99us = us(Percentile(r.Latencies, 0.99))
	r.P999us = us(Percentile(r.Latencies, 0.999))
	return r
}

func math10k(n, ops int64) float64 { return round1(float64(n) * 10000 / float64(ops)) }

// CheckContention returns an error naming every hot key of r whose counter
// failed the final check; nil for a result without one or that passed.
func CheckContention(r Result) error {
	if r.Contention == nil || r.Contention.Verified {
		return nil
	}
	var errs []error
	for _, k := range r.Contention.Keys {
		if !k.OK {
			errs = append(errs, errors.New(k.String()))
		}
	}
	return fmt.Errorf("%s contention procs=%d: the final counters do not match the acknowledged increments:\n%w",
		r.Target, r.Clients, errors.Join(errs...))
}
