package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kshaka-io/kshaka/cmd/kshaka/internal/bench"
	"github.com/kshaka-io/kshaka/proposer"
)

// The contention workload runs each proposer in its own process: the
// parent starts N copies of this binary as 'kshaka bench worker', hands
// each a benchWorkerSpec as one JSON line on its stdin, waits until every
// one has connected ({"ready":true} on its stdout), then writes "go" to
// all at once; each answers with its bench.WorkerReport as one JSON line
// and exits. The parent reads the hot keys before and after, through its
// own client, and checks them against the reports.

// benchWorkerSpec is what a worker process is told to do.
type benchWorkerSpec struct {
	Index int `json:"index"`
	// Target is "kshaka" or "etcd"; Name names it in errors.
	Target    string   `json:"target"`
	Name      string   `json:"name"`
	Endpoints []string `json:"endpoints"`
	// TLSDir is the client TLS directory of a cluster bench started; for a
	// running one, the TLS fields are the CLI's global TLS flags.
	TLSDir             string                  `json:"tls_dir,omitempty"`
	TLS                bool                    `json:"tls,omitempty"`
	CACert             string                  `json:"cacert,omitempty"`
	Cert               string                  `json:"cert,omitempty"`
	Key                string                  `json:"key,omitempty"`
	ServerName         string                  `json:"server_name,omitempty"`
	InsecureSkipVerify bool                    `json:"insecure_skip_verify,omitempty"`
	Options            bench.ContentionOptions `json:"options"`
}

// workerReady is a worker's first line.
type workerReady struct {
	Ready bool `json:"ready"`
}

// benchWorkerCmd returns the command of one worker process: this binary's
// hidden 'bench worker'. Tests replace it (their binary is not kshaka).
var benchWorkerCmd = func() (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("while finding the kshaka binary to start the contention workers: %w", err)
	}
	return exec.Command(exe, "bench", "worker"), nil
}

func newBenchWorkerCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "worker",
		Short:  "One process of the contention workload (started by kshaka bench; not for direct use)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchWorker(cmd.Context(), g)
		},
	}
}

// runBenchWorker is the worker side of the protocol above.
func runBenchWorker(ctx context.Context, g *globals) error {
	in := bufio.NewReader(g.in)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("bench worker: while reading the spec from stdin: %w (this command is started by 'kshaka bench')", err)
	}
	var spec benchWorkerSpec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("bench worker: the spec on stdin is not valid: %w", err)
	}
	c, closeTarget, err := dialContender(ctx, spec)
	if err != nil {
		return err
	}
	defer closeTarget()
	enc := json.NewEncoder(g.out)
	if err := enc.Encode(workerReady{Ready: true}); err != nil {
		return err
	}
	if line, err := in.ReadString('\n'); err != nil || strings.TrimSpace(line) != "go" {
		return fmt.Errorf("bench worker %d: expected \"go\" on stdin, got %q (%v)", spec.Index, line, err)
	}
	rep, err := bench.RunContention(ctx, c, spec.Options)
	if err != nil {
		return fmt.Errorf("bench worker %d: %w", spec.Index, err)
	}
	return enc.Encode(rep)
}

// dialContender connects the worker's own client (one proposer) to the
// target of spec.
func dialContender(ctx context.Context, spec benchWorkerSpec) (bench.Contender, func(), error) {
	switch spec.Target {
	case "etcd":
		e, err := bench.NewEtcd(ctx, spec.Endpoints, 1)
		if err != nil {
			return nil, nil, err
		}
		return e, func() { _ = e.Close() }, nil
	case "kshaka":
		// ID marks the worker's ballots (the other 48 bits stay random).
		base := proposer.Config{TLSDir: spec.TLSDir, ID: uint64(spec.Index + 1)}
		if spec.TLSDir == "" { // the TLS flags; all unset: plaintext
			co := clientOptions{tls: spec.TLS, caCert: spec.CACert, cert: spec.Cert, key: spec.Key,
				serverName: spec.ServerName, insecureSkipVerify: spec.InsecureSkipVerify}
			var err error
			if base.TLS, err = co.tlsConfig(); err != nil {
				return nil, nil, err
			}
		}
		k, err := bench.NewKshaka(ctx, spec.Name, spec.Endpoints, 1, base)
		if err != nil {
			return nil, nil, err
		}
		return k, func() { _ = k.Close() }, nil
	}
	return nil, nil, fmt.Errorf("bench worker: unknown target %q", spec.Target)
}

// workerSpec is the spec of t's workers (Index and Options left to fill).
func (t *benchTarget) workerSpec(g *globals) benchWorkerSpec {
	s := benchWorkerSpec{Target: t.kind, Name: t.Name(), Endpoints: t.endpoints, TLSDir: t.tlsDir}
	if t.clientTLS {
		co := g.client
		s.TLS, s.CACert, s.Cert, s.Key = co.tls, co.caCert, co.cert, co.key
		s.ServerName, s.InsecureSkipVerify = co.serverName, co.insecureSkipVerify
	}
	return s
}

// workerProc is one running worker.
type workerProc struct {
	index  int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailBuffer
	// lines receives each JSON line of its stdout, then closes.
	lines chan []byte
}

// tailBuffer keeps the last bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailBytes = 4096

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > tailBytes {
		b.buf = b.buf[len(b.buf)-tailBytes:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.buf))
}

func startWorker(i int, spec benchWorkerSpec) (*workerProc, error) {
	cmd, err := benchWorkerCmd()
	if err != nil {
		return nil, err
	}
	if cmd.Env == nil {
		cmd.Env = childEnv(nil)
	}
	cmd.SysProcAttr = childProcAttr()
	w := &workerProc{index: i, cmd: cmd, stderr: &tailBuffer{}, lines: make(chan []byte, 2)}
	cmd.Stderr = w.stderr
	if w.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("while starting contention worker %d (%s): %w", i, cmd.Path, err)
	}
	go func() {
		defer close(w.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 256<<20) // a report holds every latency
		for sc.Scan() {
			w.lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	spec.Index, spec.Options.Seed = i, uint64(i)
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	if _, err := w.stdin.Write(append(b, '\n')); err != nil {
		return w, fmt.Errorf("while sending contention worker %d its spec: %w", i, err)
	}
	return w, nil
}

// failure describes why w did not answer: its exit and stderr.
func (w *workerProc) failure(what string) error {
	_ = w.cmd.Process.Kill()
	err := w.cmd.Wait()
	msg := fmt.Sprintf("contention worker %d %s", w.index, what)
	if err != nil {
		msg += " (" + err.Error() + ")"
	}
	if s := w.stderr.String(); s != "" {
		msg += ":\n" + indent(s)
	}
	return errors.New(msg)
}

// next reads w's next line into v, within timeout.
func (w *workerProc) next(ctx context.Context, timeout time.Duration, what string, v any) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return w.failure(fmt.Sprintf("did not %s within %v", what, timeout))
	case line, ok := <-w.lines:
		if !ok {
			return w.failure(fmt.Sprintf("exited before it could %s", what))
		}
		if err := json.Unmarshal(line, v); err != nil {
			return w.failure(fmt.Sprintf("sent %.80q instead of its answer", line))
		}
		return nil
	}
}

// runContention runs the contention workload with procs worker processes
// against t and returns the aggregated, checked result.
func runContention(ctx context.Context, g *globals, o benchOptions, t *benchTarget, procs int) (res bench.Result, err error) {
	c, ok := t.Target.(bench.Contender)
	if !ok {
		return bench.Result{}, fmt.Errorf("target %s does not support the contention workload", t.Name())
	}
	co := bench.ContentionOptions{Goroutines: o.goroutines, HotKeys: o.hotKeys, CASPercent: o.casPercent,
		Warmup: o.warmup, Duration: o.duration, OpTimeout: o.opTimeout}
	co.EnsureDefaults()
	initial, err := readCounters(ctx, c, co.HotKeys)
	if err != nil {
		return bench.Result{}, err
	}
	spec := t.workerSpec(g)
	spec.Options = co
	var ws []*workerProc
	defer func() {
		for _, w := range ws {
			if err != nil && w.cmd.ProcessState == nil {
				_ = w.cmd.Process.Kill()
			}
			_ = w.stdin.Close()
			if w.cmd.ProcessState == nil {
				_ = w.cmd.Wait()
			}
		}
	}()
	for i := range procs {
		w, err := startWorker(i, spec)
		if w != nil {
			ws = append(ws, w)
		}
		if err != nil {
			return bench.Result{}, err
		}
	}
	for _, w := range ws {
		var r workerReady
		if err := w.next(ctx, o.startTimeout, "connect to "+t.Name(), &r); err != nil {
			return bench.Result{}, err
		}
	}
	for _, w := range ws {
		if _, err := io.WriteString(w.stdin, "go\n"); err != nil {
			return bench.Result{}, w.failure("did not take \"go\": " + err.Error())
		}
	}
	stopRSS := sync.OnceValue(bench.StartRSSSampler(t.pids).Stop)
	defer stopRSS()
	run := bench.ContentionRun{Target: t.Name(), Options: co, Procs: procs, Initial: initial}
	wait := co.Warmup + co.Duration + co.OpTimeout + 30*time.Second
	for _, w := range ws {
		var rep bench.WorkerReport
		if err := w.next(ctx, wait, "report", &rep); err != nil {
			return bench.Result{}, err
		}
		run.Reports = append(run.Reports, rep)
	}
	for _, w := range ws {
		_ = w.stdin.Close()
		if err := w.cmd.Wait(); err != nil {
			return bench.Result{}, fmt.Errorf("contention worker %d failed after its report (%v): %s", w.index, err, w.stderr.String())
		}
	}
	mem := stopRSS()
	if run.Final, err = readCounters(ctx, c, co.HotKeys); err != nil {
		return bench.Result{}, err
	}
	res = bench.SummarizeContention(run)
	if len(t.pids) > 0 {
		res.SetRSS(mem)
	}
	return res, nil
}

// readCounters reads the hot keys' counters, retrying an unknown outcome
// or a give-up a few times (a read changes nothing, but Get may write an
// identity value that settles an earlier proposal).
func readCounters(ctx context.Context, c bench.Contender, n int) ([]int64, error) {
	out := make([]int64, n)
	for i := range n {
		key := bench.ContentionKey(i)
		var err error
		for range 5 {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			out[i], _, err = c.ReadCounter(rctx, key)
			cancel()
			if err == nil || ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("while reading hot key %q of %s: %w", key, c.Name(), err)
		}
	}
	return out, nil
}

// printContentionCheck reports each hot key's final check to progress.
func printContentionCheck(w io.Writer, label string, r bench.Result) {
	if r.Contention == nil {
		return
	}
	for _, k := range r.Contention.Keys {
		verdict := "ok"
		if !k.OK {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "  %s: %s: %s\n", label, verdict, k)
	}
	c := r.Contention
	fmt.Fprintf(w, "  %s: %d ops (%d CAS, %d Change): %d unknown (%d CAS, %d Change), %d give-ups (%d CAS, %d Change; %d no quorum)\n",
		label, r.Ops, c.CASOps, c.ChangeOps, c.Unknown, c.CASUnknown, c.Unknown-c.CASUnknown,
		c.GiveUps, c.CASGiveUps, c.GiveUps-c.CASGiveUps, c.NoQuorum)
	if s := c.FirstUnknown; s != "" {
		fmt.Fprintf(w, "  %s: first unknown outcome: %s\n", label, s)
	}
}
