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
)

// Workload names.
const (
	WorkloadPut    = "put"     // random keys from the keyspace
	WorkloadGet    = "get"     // linearizable reads of random preloaded keys
	WorkloadCASHot = "cas-hot" // CAS increments of one hot key
	WorkloadMixed  = "mixed"   // 50% get, 50% put
)

// Workloads lists every workload in report order.
var Workloads = []string{WorkloadPut, WorkloadGet, WorkloadCASHot, WorkloadMixed}

// Options configures one run.
type Options struct {
	Workload  string
	Clients   int           // concurrent workers; default 1
	Duration  time.Duration // measured time; default 10s
	Warmup    time.Duration // unmeasured time before it; default 1s
	ValueSize int           // bytes; default 256
	Keys      int           // keyspace size; default 10,000
	// ServerPids are the server processes behind the target, when the
	// harness started them. Their resident memory is sampled from the
	// start of the warm-up to the end of the measured phase (RSSSampler)
	// and reported in the Result.
	ServerPids []int
	// Progress, when set, is called about once a second during the
	// measured phase.
	Progress func(Progress)
}

// Progress is a running run's state so far.
type Progress struct {
	// Done counts the operations completed in the measured phase.
	Done    int64
	Elapsed time.Duration
	// ServerRSSMiB is the largest current RSS of the ServerPids; 0 if none.
	ServerRSSMiB float64
}

func (o *Options) ensureDefaults() {
	if o.Clients <= 0 {
		o.Clients = 1
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	}
	if o.ValueSize <= 0 {
		o.ValueSize = 256
	}
	if o.Keys <= 0 {
		o.Keys = 10000
	}
}

// Validate reports every problem of o at once.
func (o Options) Validate() error {
	var errs []error
	if !slices.Contains(Workloads, o.Workload) {
		errs = append(errs, fmt.Errorf("unknown workload %q (one of %v)", o.Workload, Workloads))
	}
	if o.Clients < 0 || o.Keys < 0 || o.ValueSize < 0 || o.Duration < 0 {
		errs = append(errs, errors.New("clients, keys, value size and duration must not be negative"))
	}
	return errors.Join(errs...)
}

// Key returns the i-th key of the keyspace.
func Key(i int) []byte { return []byte("bench/" + strconv.Itoa(i)) }

// HotKey is the key of the cas-hot workload.
var HotKey = []byte("bench/hot")

// PreloadOptions configures Preload.
type PreloadOptions struct {
	Keys      int // keyspace size; default 10,000
	ValueSize int // bytes; default 256
	Clients   int // concurrent writers; default 64
	// Progress, when set, is called about once a second with the keys
	// written so far.
	Progress func(Progress)
}

// preloadAttempts is how often Preload tries one key. Writing a key is
// idempotent here (every key gets the same value), so an error, even an
// unknown outcome, is simply retried.
const preloadAttempts = 3

// Preload writes every key of the keyspace once, so that get and mixed read
// existing values and put overwrites a store of the intended size.
func Preload(ctx context.Context, t Target, o PreloadOptions) error {
	if o.Keys <= 0 {
		o.Keys = 10000
	}
	if o.ValueSize <= 0 {
		o.ValueSize = 256
	}
	if o.Clients <= 0 {
		o.Clients = 64
	}
	value := make([]byte, o.ValueSize)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, o.Clients)
	for range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= o.Keys || ctx.Err() != nil {
					return
				}
				var err error
				for range preloadAttempts {
					if err = t.Put(ctx, Key(i), value); err == nil || ctx.Err() != nil {
						break
					}
				}
				if err != nil {
					errc <- fmt.Errorf("while preloading key %d: %w", i, err)
					cancel()
					return
				}
				done.Add(1)
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	began := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if o.Progress != nil {
				o.Progress(Progress{Done: done.Load(), Elapsed: time.Since(began)})
			}
		case <-finished:
			close(errc)
			if err := <-errc; err != nil {
				return err
			}
			return ctx.Err()
		}
	}
}

// Run drives o.Workload against t and returns the measured result.
func Run(ctx context.Context, t Target, o Options) (Result, error) {
	o.ensureDefaults()
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	value := make([]byte, o.ValueSize)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	var measuring atomic.Bool
	var done atomic.Int64
	workers := make([]*worker, o.Clients)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rss := StartRSSSampler(o.ServerPids)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{rng: rand.New(rand.NewPCG(uint64(i), 42))}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				conflicts, err := w.op(ctx, t, o, value)
				if ctx.Err() != nil {
					return
				}
				if !measuring.Load() {
					continue
				}
				w.record(time.Since(start), conflicts, err)
				done.Add(1)
			}
		}()
	}
	if err := sleepCtx(ctx, o.Warmup); err != nil {
		rss.Stop()
		return Result{}, err
	}
	measuring.Store(true)
	began := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.NewTimer(o.Duration)
	defer deadline.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			rss.Stop()
			return Result{}, ctx.Err()
		case <-tick.C:
			if o.Progress != nil {
				o.Progress(Progress{Done: done.Load(), Elapsed: time.Since(began), ServerRSSMiB: rss.CurrentMaxMiB()})
			}
		case <-deadline.C:
			break loop
		}
	}
	measuring.Store(false)
	elapsed := time.Since(began)
	mem := rss.Stop()
	cancel()
	wg.Wait()
	r := summarize(t.Name(), o, elapsed, workers)
	if len(o.ServerPids) > 0 {
		r.SetRSS(mem)
	}
	return r, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type worker struct {
	rng       *rand.Rand
	lat       []time.Duration
	errors    int64
	unknown   int64
	conflicts int64
	firstErr  error
}

func (w *worker) op(ctx context.Context, t Target, o Options, value []byte) (int, error) {
	switch o.Workload {
	case WorkloadPut:
		return 0, t.Put(ctx, Key(w.rng.IntN(o.Keys)), value)
	case WorkloadGet:
		return 0, t.Get(ctx, Key(w.rng.IntN(o.Keys)))
	case WorkloadCASHot:
		return t.Increment(ctx, HotKey)
	default: // mixed
		if w.rng.IntN(2) == 0 {
			return 0, t.Get(ctx, Key(w.rng.IntN(o.Keys)))
		}
		return 0, t.Put(ctx, Key(w.rng.IntN(o.Keys)), value)
	}
}

func (w *worker) record(d time.Duration, conflicts int, err error) {
	w.conflicts += int64(conflicts)
	switch {
	case err == nil:
		w.lat = append(w.lat, d)
	case errors.Is(err, ErrUnknown):
		w.unknown++
	default:
		w.errors++
		if w.firstErr == nil {
			w.firstErr = err
		}
	}
}
