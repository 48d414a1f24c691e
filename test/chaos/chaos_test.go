package chaos

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.uber.org/goleak"

	"github.com/kshaka-io/kshaka/proposer"
	"github.com/kshaka-io/kshaka/test/lincheck"
)

var flagDuration = flag.Duration("chaos.duration", 0,
	"how long the chaos run lasts (default: $KSHAKA_CHAOS_DURATION, else 12s)")

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "kshaka-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	acceptorBin, err = buildAcceptor(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// runDuration is the flag, else the environment, else 12s.
func runDuration(t *testing.T) time.Duration {
	if *flagDuration > 0 {
		return *flagDuration
	}
	if s := os.Getenv("KSHAKA_CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("KSHAKA_CHAOS_DURATION: %v", err)
		}
		return d
	}
	return 12 * time.Second
}

const (
	numAcceptors = 3
	numClients   = 3 // proposer.Client instances
	workersEach  = 2 // goroutines per client
	numKeys      = 4
	opTimeout    = 3 * time.Second
	// checkTimeout bounds porcupine. A legal history checks in well under a
	// second; proving an illegal one with dozens of open unknowns per key can
	// take far longer, and a timeout (porcupine.Unknown) fails the test too.
	checkTimeout = 2 * time.Minute
)

// TestChaos runs concurrent clients against three acceptor processes while
// the nemesis kills and restarts one acceptor at a time, then checks the
// history, closed with a final read of every key, for linearizability.
func TestChaos(t *testing.T) {
	start := time.Now()
	dur := runDuration(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), dur+2*time.Minute)
	defer cancel()
	cl, err := startCluster(ctx, dir, numAcceptors)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.stop()

	clients := make([]*proposer.Client, numClients)
	for i := range clients {
		c, err := proposer.New(ctx, proposer.Config{Endpoints: cl.endpoints(), RequestTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}

	rec := lincheck.NewRecorder()
	var st stats
	runCtx, stopRun := context.WithTimeout(ctx, dur)
	defer stopRun()
	var wg sync.WaitGroup
	nemErr := make(chan error, 1)
	wg.Go(func() { nemErr <- nemesis(runCtx, cl, &st) })
	var ids atomic.Int64
	for w := range numClients * workersEach {
		wg.Go(func() {
			wk := &worker{c: clients[w%numClients], rec: rec, st: &st, ids: &ids, name: fmt.Sprintf("w%d", w)}
			wk.id = int(ids.Add(1))
			r := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for runCtx.Err() == nil {
				wk.step(runCtx, r)
			}
		})
	}
	wg.Wait()
	if err := <-nemErr; err != nil {
		t.Fatalf("nemesis: %v", err)
	}

	// Every acceptor is up: read every key through a fresh client.
	final, err := proposer.New(ctx, proposer.Config{Endpoints: cl.endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer final.Close()
	fw := &worker{c: final, rec: rec, st: &st, ids: &ids, name: "final"}
	fw.id = int(ids.Add(1))
	for k := range numKeys {
		if out := fw.get(ctx, key(k)); out.Status != lincheck.StatusOK {
			t.Fatalf("final read of %s failed with every acceptor up", key(k))
		}
	}

	ops := rec.Operations()
	t.Logf("%d operations (%d ok, %d failed, %d unknown), %d kills, in %v",
		len(ops), st.ok.Load(), st.failed.Load(), st.unknown.Load(), st.kills.Load(), dur)
	t.Logf("unknown changes: %d ErrUnknownOutcome, %d deadline or cancelled, %d other errors",
		st.unknownOutcome.Load(), st.deadline.Load(), st.otherErr.Load())
	checkStart := time.Now()
	res := lincheck.Check(ops, checkTimeout)
	t.Logf("porcupine: %v in %v; wall time %v", res, time.Since(checkStart).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("kshaka-chaos-%d.html", time.Now().UnixNano()))
		if err := lincheck.Visualize(ops, path, checkTimeout); err != nil {
			t.Errorf("writing the visualization: %v", err)
		}
		t.Fatalf("history is not linearizable (porcupine: %v); visualization: %s; acceptor logs in %s", res, path, dir)
	}
}

func key(i int) string { return fmt.Sprintf("chaos/k%d", i) }

type stats struct {
	ok, failed, unknown, kills atomic.Int64
	// Why changes ended unknown.
	unknownOutcome, deadline, otherErr atomic.Int64
}

func (s *stats) count(st lincheck.Status) {
	switch st {
	case lincheck.StatusOK:
		s.ok.Add(1)
	case lincheck.StatusFail:
		s.failed.Add(1)
	default:
		s.unknown.Add(1)
	}
}

// worker issues one operation at a time through a shared client. After an
// unknown outcome it takes a new porcupine client ID, since that operation
// stays open.
type worker struct {
	c    *proposer.Client
	rec  *lincheck.Recorder
	st   *stats
	ids  *atomic.Int64
	name string
	id   int
	seq  int
}

// value returns a new, unique value.
func (w *worker) value() string {
	w.seq++
	return fmt.Sprintf("%s-%d", w.name, w.seq)
}

// record runs do under the operation timeout and records it as in.
func (w *worker) record(ctx context.Context, in lincheck.Input, do func(ctx context.Context) lincheck.Output) lincheck.Output {
	done := w.rec.Call(w.id, in)
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	out := do(octx)
	cancel()
	done(out)
	w.st.count(out.Status)
	if out.Status == lincheck.StatusUnknown {
		w.id = int(w.ids.Add(1))
	}
	return out
}

// step runs one random operation: get, put, delete, or a get followed by a
// CAS from the version read.
func (w *worker) step(ctx context.Context, r *rand.Rand) {
	k := key(r.IntN(numKeys))
	switch n := r.IntN(100); {
	case n < 30:
		w.get(ctx, k)
	case n < 55:
		v := w.value()
		w.record(ctx, lincheck.Input{Op: lincheck.OpPut, Key: k, Val: v}, func(ctx context.Context) lincheck.Output {
			nv, err := w.c.Put(ctx, []byte(k), []byte(v))
			return w.writeOutput(nv, err)
		})
	case n < 65:
		w.record(ctx, lincheck.Input{Op: lincheck.OpDelete, Key: k}, func(ctx context.Context) lincheck.Output {
			out := w.writeOutput(proposer.Value{}, w.c.Delete(ctx, []byte(k)))
			out.Versioned = false // a delete reports no version
			return out
		})
	default:
		w.cas(ctx, k)
	}
}

// get records a Get with the version read; a key that is absent reads as
// "" at version 0.
func (w *worker) get(ctx context.Context, k string) lincheck.Output {
	return w.record(ctx, lincheck.Input{Op: lincheck.OpGet, Key: k}, func(ctx context.Context) lincheck.Output {
		v, err := w.c.Get(ctx, []byte(k))
		switch {
		case err == nil:
			return lincheck.Output{Val: string(v.Data), Version: v.Version, Versioned: true}
		case errors.Is(err, proposer.ErrNotFound):
			return lincheck.Output{Versioned: true}
		}
		// A read that failed took no effect and tells nothing.
		return lincheck.Output{Status: lincheck.StatusFail}
	})
}

// cas reads k, then swaps it from the version read (0 for absent), and
// records the version written or, on a mismatch, the current value.
func (w *worker) cas(ctx context.Context, k string) {
	read := w.get(ctx, k)
	if read.Status != lincheck.StatusOK || ctx.Err() != nil {
		return
	}
	version, v := read.Version, w.value()
	w.record(ctx, lincheck.Input{Op: lincheck.OpCASVersion, Key: k, FromVersion: version, Val: v}, func(ctx context.Context) lincheck.Output {
		nv, err := w.c.CompareAndSwap(ctx, []byte(k), version, []byte(v))
		if m, ok := errors.AsType[*proposer.VersionMismatchError](err); ok {
			return lincheck.Output{Val: string(m.Current.Data), Version: m.Current.Version, Versioned: true}
		}
		return w.writeOutput(nv, err)
	})
}

// writeOutput classifies the outcome of a change: nil is done (at version
// nv.Version); ErrNoQuorum is a definite failure; anything else
// (ErrUnknownOutcome, a deadline, a cancellation) may or may not take
// effect.
func (w *worker) writeOutput(nv proposer.Value, err error) lincheck.Output {
	switch {
	case err == nil:
		return lincheck.Output{CasOK: true, Version: nv.Version, Versioned: true}
	case errors.Is(err, proposer.ErrNoQuorum):
		return lincheck.Output{Status: lincheck.StatusFail}
	case errors.Is(err, proposer.ErrUnknownOutcome):
		w.st.unknownOutcome.Add(1)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		w.st.deadline.Add(1)
	default:
		w.st.otherErr.Add(1)
	}
	return lincheck.Output{Status: lincheck.StatusUnknown}
}

// nemesis kills a random acceptor, waits, restarts it, waits until it
// answers, and pauses before the next kill, until ctx ends. At most one
// acceptor (a minority of three) is down at a time. The waits are the
// fault schedule, not decisions of the system under test.
func nemesis(ctx context.Context, cl *cluster, st *stats) error {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for {
		if !wait(ctx, jitter(r, 100*time.Millisecond, 600*time.Millisecond)) {
			return nil
		}
		p := cl.procs[r.IntN(len(cl.procs))]
		p.kill()
		st.kills.Add(1)
		wait(ctx, jitter(r, 50*time.Millisecond, 500*time.Millisecond))
		if err := p.start(); err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, _, err := p.waitReady(rctx)
		cancel()
		if err != nil {
			return err
		}
	}
}

func jitter(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

// wait waits d; false if ctx ended first.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
