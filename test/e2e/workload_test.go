//go:build e2e

package e2e

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/kshaka-io/kshaka/proposer"
	"github.com/kshaka-io/kshaka/test/lincheck"
)

// workload runs clients through the proposer library and records every
// operation for the linearizability check (lincheck, version-based: the
// cas compares versions and every answer's version is checked).
type workload struct {
	t      *testing.T
	start  time.Time
	keys   []string
	rec    *lincheck.Recorder
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		acked, unknown, failed int
		// access counts operations refused for a TLS or role reason
		// (proposer.ErrAccess): during a certificate rotation, none may be.
		access                int
		reads, mismatches     int
		lastErr, firstUnknown error
	}
}

// startWorkload starts workers clients, each with its own proposer (so
// their ballots compete), writing and reading a few shared keys until stop.
func startWorkload(t *testing.T, endpoints []string, workers int, prefix string) *workload {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &workload{t: t, start: time.Now(), rec: lincheck.NewRecorder(), cancel: cancel}
	for i := range 3 {
		w.keys = append(w.keys, fmt.Sprintf("%s/k%d", prefix, i))
	}
	for i := range workers {
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
		c, err := proposer.New(dctx, clientConfig(endpoints))
		dcancel()
		if err != nil {
			cancel()
			w.wg.Wait()
			t.Fatalf("while connecting a client to %v: %v", endpoints, err)
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer c.Close()
			w.run(ctx, c, i)
		}()
	}
	return w
}

// run is one worker: gets, puts and compare-and-swaps at random, the cas
// expecting the last version this worker saw (so some of them mismatch).
func (w *workload) run(ctx context.Context, c *proposer.Client, id int) {
	seen := map[string]uint64{}
	for seq := 0; ctx.Err() == nil; seq++ {
		key := w.keys[rand.IntN(len(w.keys))]
		in := lincheck.Input{Key: key, Val: fmt.Sprintf("c%d-%d", id, seq)}
		switch r := rand.IntN(10); {
		case r < 4:
			in.Op, in.Val = lincheck.OpGet, ""
		case r < 7:
			in.Op = lincheck.OpPut
		default:
			in.Op, in.FromVersion = lincheck.OpCASVersion, seen[key]
		}
		out := w.do(ctx, c, id, in)
		if out.Status == lincheck.StatusOK && (in.Op != lincheck.OpCASVersion || out.CasOK) {
			seen[key] = out.Version
		}
		time.Sleep(time.Duration(5+rand.IntN(10)) * time.Millisecond)
	}
}

// do runs one operation and records it. A read that failed, or a write
// that definitely did not take effect (ErrNoQuorum), is recorded as
// StatusFail: the model ignores it.
func (w *workload) do(ctx context.Context, c *proposer.Client, client int, in lincheck.Input) lincheck.Output {
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	done := w.rec.Call(client, in)
	var v proposer.Value
	var err error
	switch in.Op {
	case lincheck.OpGet:
		v, err = c.Get(octx, []byte(in.Key))
	case lincheck.OpPut:
		v, err = c.Put(octx, []byte(in.Key), []byte(in.Val))
	case lincheck.OpCASVersion:
		v, err = c.CompareAndSwap(octx, []byte(in.Key), in.FromVersion, []byte(in.Val))
	}
	out := lincheck.Output{Versioned: true, Version: v.Version}
	if in.Op == lincheck.OpGet {
		out.Val = string(v.Data)
	}
	var mismatch *proposer.VersionMismatchError
	w.mu.Lock()
	if errors.Is(err, proposer.ErrAccess) {
		w.mu.access++
	}
	switch {
	case err == nil && in.Op == lincheck.OpGet:
		w.mu.reads++
	case err == nil:
		out.CasOK = true // a put, or a cas that swapped
		w.mu.acked++
	case in.Op == lincheck.OpGet && errors.Is(err, proposer.ErrNotFound):
		out = lincheck.Output{Versioned: true} // absent: "" at version 0
		w.mu.reads++
	case in.Op == lincheck.OpCASVersion && errors.As(err, &mismatch):
		// The authoritative current value, version 0 when absent.
		out = lincheck.Output{Versioned: true, Val: string(mismatch.Current.Data), Version: mismatch.Current.Version}
		w.mu.mismatches++
	case in.Op == lincheck.OpGet || errors.Is(err, proposer.ErrNoQuorum):
		// A failed read has no effect; ErrNoQuorum is definite.
		out = lincheck.Output{Status: lincheck.StatusFail}
		w.mu.failed++
		w.mu.lastErr = err
	default:
		// Unknown outcome, or an error the library does not call definite:
		// the write may take effect at any time from now on (the recorder
		// makes its return time +∞).
		out = lincheck.Output{Status: lincheck.StatusUnknown}
		w.mu.unknown++
		w.mu.lastErr = err
		if w.mu.firstUnknown == nil {
			w.mu.firstUnknown = err
		}
	}
	w.mu.Unlock()
	done(out)
	return out
}

// progress waits until the workload has acknowledged n more writes (at
// most settle), so a step runs under load for as long as it takes the load
// to make that much progress rather than for a fixed time.
func (w *workload) progress(n int) {
	t := w.t
	t.Helper()
	acked := func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.mu.acked
	}
	target := acked() + n
	deadline := time.Now().Add(settle)
	for acked() < target {
		if time.Now().After(deadline) {
			t.Fatalf("the workload acknowledged %d of %d more writes within %v", acked()-target+n, n, settle)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the workload, reads every key once more with a fresh client,
// and checks the whole history: it must be linearizable, which implies
// that no acknowledged write was lost. It also requires progress: at least
// minAcked acknowledged writes.
func (w *workload) stop(endpoints []string, minAcked int) {
	t := w.t
	t.Helper()
	w.cancel()
	w.wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := proposer.New(ctx, clientConfig(endpoints))
	if err != nil {
		t.Fatalf("while connecting the final reader to %v: %v", endpoints, err)
	}
	defer c.Close()
	for _, k := range w.keys {
		for {
			out := w.do(ctx, c, 99, lincheck.Input{Key: k, Op: lincheck.OpGet})
			if out.Status == lincheck.StatusOK || ctx.Err() != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	ops := w.rec.Operations()
	w.mu.Lock()
	acked, unknown, failed, reads, mism := w.mu.acked, w.mu.unknown, w.mu.failed, w.mu.reads, w.mu.mismatches
	lastErr, firstUnknown := w.mu.lastErr, w.mu.firstUnknown
	w.mu.Unlock()
	t.Logf("workload: %s, %d ops recorded: %d writes acknowledged, %d reads, %d cas mismatches, %d unknown outcomes (first: %v), %d failed (last error: %v)",
		time.Since(w.start).Round(time.Millisecond), len(ops), acked, reads, mism, unknown, firstUnknown, failed, lastErr)
	res := lincheck.Check(ops, 2*time.Minute)
	switch res {
	case porcupine.Ok:
		t.Logf("workload: history is linearizable (porcupine, lincheck's versioned CAS-register model)")
	case porcupine.Illegal:
		path := filepath.Join(artifactDir(t), "history.html")
		if err := lincheck.Visualize(ops, path, 2*time.Minute); err != nil {
			t.Logf("while writing the visualization: %v", err)
		}
		t.Errorf("the history is NOT linearizable (an acknowledged write was lost, a read saw a value never written, or a version broke the register's rules); see %s", path)
	default:
		t.Errorf("porcupine could not decide within 2m (%d ops); the history is unchecked", len(ops))
	}
	// Negative control on this very history: a prefix of it plus a final
	// read of an overwritten value must be illegal, or the check above
	// proved nothing. The prefix ends before the key's first unknown
	// outcome: with unknowns, proving illegality takes exponential time.
	if res == porcupine.Ok {
		switch bad, ok := staleReadControl(ops); {
		case !ok:
			t.Logf("negative control skipped: no key has two acknowledged writes before its first unknown outcome")
		default:
			switch lincheck.Check(bad, 20*time.Second) {
			case porcupine.Illegal:
				t.Logf("negative control: a read of an overwritten value is caught (%d ops)", len(bad))
			case porcupine.Ok:
				t.Errorf("negative control: the checker accepted a read of an overwritten value")
			default:
				t.Logf("negative control inconclusive: porcupine timed out")
			}
		}
	}
	if acked < minAcked {
		t.Errorf("only %d writes were acknowledged, want at least %d: the workload made no progress", acked, minAcked)
	}
}

// artifactDir is where a failing test leaves what explains it.
func artifactDir(t *testing.T) string {
	root := os.Getenv("E2E_ARTIFACTS")
	if root == "" {
		root = filepath.Join(os.TempDir(), "kshaka-e2e")
	}
	dir := filepath.Join(root, filepath.FromSlash(t.Name()))
	_ = os.MkdirAll(dir, 0o755)
	return dir
}

// staleReadControl returns, for the key with the longest such history, its
// operations called before its first unknown outcome plus a read, after all
// of them, of its first acknowledged write, which a later acknowledged write
// overwrote.
func staleReadControl(ops []porcupine.Operation) ([]porcupine.Operation, bool) {
	byKey := map[string][]porcupine.Operation{}
	for _, op := range ops {
		k := op.Input.(lincheck.Input).Key
		byKey[k] = append(byKey[k], op)
	}
	var best []porcupine.Operation
	for _, kops := range byKey {
		slices.SortFunc(kops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		cut := len(kops)
		for i, op := range kops {
			if op.Output.(lincheck.Output).Status == lincheck.StatusUnknown {
				cut = i
				break
			}
		}
		if cut > len(best) {
			best = kops[:cut]
		}
	}
	// acked reports whether op is an acknowledged write.
	acked := func(op porcupine.Operation) bool {
		out := op.Output.(lincheck.Output)
		return op.Input.(lincheck.Input).Op != lincheck.OpGet && out.Status == lincheck.StatusOK && out.CasOK
	}
	var first *porcupine.Operation
	var end int64
	for i := range best {
		op := &best[i]
		end = max(end, op.Return)
		if acked(*op) && (first == nil || op.Call < first.Call) {
			first = op
		}
	}
	overwritten := false
	for _, op := range best {
		if first != nil && acked(op) && op.Output.(lincheck.Output).Version > first.Output.(lincheck.Output).Version {
			overwritten = true
		}
	}
	if !overwritten {
		return nil, false
	}
	in := first.Input.(lincheck.Input)
	stale := porcupine.Operation{ClientId: 100, Call: end + 1, Return: end + 2,
		Input:  lincheck.Input{Key: in.Key, Op: lincheck.OpGet},
		Output: lincheck.Output{Val: in.Val, Version: first.Output.(lincheck.Output).Version, Versioned: true}}
	return append(slices.Clone(best), stale), true
}
