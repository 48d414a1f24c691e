package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kshaka-io/kshaka/cmd/kshaka/internal/bench"
	"github.com/kshaka-io/kshaka/proposer"
)

// defaultRuns is the matrix of the performance issue: each figure the
// issue names has a run here.
const defaultRuns = "put:1,put:64,get:64,cas-hot:16,mixed:64"

type benchOptions struct {
	targets       []string
	runs          string
	connections   int
	duration      time.Duration
	warmup        time.Duration
	valueSize     int
	keys          int
	json          bool
	report        string
	dir           string
	kshakaEPs     []string
	etcdEPs       []string
	etcdBin       string
	acceptorBin   string
	basePort      int
	etcdBasePort  int
	skipPreload   bool
	preload       bool
	preloadConc   int
	acceptorArgs  []string
	startTimeout  time.Duration
	acceptorCount int
	// The contention workload's.
	goroutines int
	hotKeys    int
	casPercent int
	opTimeout  time.Duration
}

type benchRun struct {
	workload string
	clients  int
}

func parseRuns(s string) ([]benchRun, error) {
	var out []benchRun
	for _, part := range splitList(s) {
		w, c, ok := strings.Cut(part, ":")
		n, err := strconv.Atoi(c)
		if !ok || err != nil || n < 1 {
			return nil, usageErrorf("--runs: %q is not WORKLOAD:CLIENTS (e.g. put:64)", part)
		}
		if w == bench.WorkloadContention {
			out = append(out, benchRun{workload: w, clients: n})
			continue
		}
		if err := (bench.Options{Workload: w}).Validate(); err != nil {
			return nil, usageErrorf("--runs: %v", err)
		}
		out = append(out, benchRun{workload: w, clients: n})
	}
	if len(out) == 0 {
		return nil, usageErrorf("--runs is empty")
	}
	return out, nil
}

func newBenchCmd(g *globals) *cobra.Command {
	o := benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Kshaka and etcd side by side with the same workloads",
		Long: `Measure Kshaka and etcd side by side with the same workloads.

bench drives each workload against each target with the same harness code:
Kshaka through the proposer library, etcd through its Go client (Put,
linearizable Get, and CAS as a transaction on ModRevision). Workloads:

  put      writes of random keys from the keyspace
  get      linearizable reads of random keys (the keyspace is preloaded)
  cas-hot  increments of one hot key with compare-and-swap, retried until
           they succeed (ops/s counts successful increments)
  mixed    50% get, 50% put
  contention
           CLIENTS separate processes, each its own proposer (its own
           proposer.Client; etcd: its own client), each running
           --goroutines operations at a time on --hot-keys hot keys
           (bench/contention/0..H-1, decimal counters). --cas-percent of
           the operations read the key and make one CompareAndSwap of
           counter+1 from the version read (a version mismatch is a normal,
           counted outcome); the others add one with Change (etcd: a
           transaction on ModRevision retried until it succeeds). The
           processes are this binary re-run as 'kshaka bench worker'; they
           connect, then start together.

For contention, every operation counts, whatever its outcome: ops/s and the
latencies cover them all, "errors" are give-ups (ErrNoQuorum and any other
error but an unknown outcome), and a second table gives mismatches, unknown
outcomes and give-ups per 10,000 operations, the acknowledged increments per
second (incr/s) and the final check: after the workers exit, bench reads each
hot key, and its counter must have grown by at least the acknowledged
increments and at most those plus the increments with unknown outcomes (of
every phase, warm-up included). If any key fails the check, bench prints the
keys and exits non-zero. The JSON line holds the same under "contention".

Unless --kshaka-endpoints / --etcd-endpoints point at running clusters, bench
starts its own on loopback under --dir: three kshaka-acceptor processes and a
three-member etcd cluster from --etcd-bin (built by 'make kube-binaries'),
both with their data on the same disk and an fsync per commit, and stops them
at the end. The target kshaka-tls is Kshaka over mutual TLS, as on Kubernetes:
three more acceptors (on the ports after kshaka's) with a local CA made with
internal/pki, as 'kshaka local --tls' does, and proposers with a client
certificate (proposer.Config.TLSDir); '--targets kshaka,kshaka-tls' measures
both in one run and prints their ratios. Against a running cluster,
--kshaka-endpoints uses the TLS flags (--cacert, --cert, --key). Progress goes to stderr; the table, or with --json one line per
(target, workload) run, to stdout. --report DIR also writes report.md, the
JSON lines and a latency-distribution plot (PNG) per run.

For the servers it starts, bench samples each process's resident memory
(VmRSS from /proc/<pid>/status, every 200ms from the start of the warm-up to
the end of the run; Linux only). The table's "max RSS MiB" column, and
server_rss_max_mib in the JSON, is the peak of the largest process of the
target (one acceptor, one etcd member); server_rss_end_mib is the largest at
the end and server_rss_peak_mib each process's peak.

The keyspace (--keys) is preloaded, every key written once, before the first
get or mixed run, or with --preload before the first run of any workload, so
that put overwrites a store that already holds --keys keys. With --dir the
data stays after bench exits and a later bench on the same --dir reuses it:
the clusters restart on their data and a preload already done for the same
--keys and --value-size is skipped (bench notes it in DIR/<target>/preloaded).`,
		Example: `  # the full comparison, with a report
  kshaka bench --report bench-report

  # one quick run against a running 'kshaka local'
  kshaka bench --targets kshaka --kshaka-endpoints 127.0.0.1:7400 --runs put:8 --duration 5s

  # the cost of mutual TLS: the same workloads with TLS off and on
  kshaka bench --targets kshaka,kshaka-tls --runs put:64,get:64

  # put with 64 clients on a store of one million keys; the data is kept in
  # /var/tmp/kb, so running it again skips the preload
  kshaka bench --keys 1000000 --preload --dir /var/tmp/kb --runs put:64 --duration 30s

  # 3 and 8 proposer processes racing on one hot key, over mutual TLS
  kshaka bench --targets kshaka-tls --runs contention:3,contention:8 --hot-keys 1 --duration 15s

  # the same acceptors with a larger Pebble block cache
  kshaka bench --targets kshaka --acceptor-arg=--cache-size=67108864 --runs put:64`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			runs, err := parseRuns(o.runs)
			if err != nil {
				return err
			}
			for _, t := range o.targets {
				if t != targetKshaka && t != targetKshakaTLS && t != "etcd" {
					return usageErrorf("--targets: unknown target %q (kshaka, kshaka-tls, etcd)", t)
				}
				if t == targetKshakaTLS && len(o.kshakaEPs) > 0 {
					return usageErrorf("--targets kshaka-tls starts its own cluster; to measure a running one over TLS, " +
						"use --targets kshaka with --kshaka-endpoints and --cacert, --cert, --key")
				}
			}
			if err := (bench.ContentionOptions{Goroutines: o.goroutines, HotKeys: o.hotKeys, CASPercent: o.casPercent,
				Duration: o.duration, Warmup: o.warmup, OpTimeout: o.opTimeout}).Validate(); err != nil {
				return usageErrorf("%v", err)
			}
			if o.goroutines < 1 || o.hotKeys < 1 || o.opTimeout <= 0 {
				return usageErrorf("--goroutines and --hot-keys must be at least 1, and --op-timeout positive")
			}
			return runBench(cmd.Context(), g, o, runs)
		},
	}
	cmd.AddCommand(newBenchWorkerCmd(g))
	fs := cmd.Flags()
	fs.StringSliceVar(&o.targets, "targets", []string{"kshaka", "etcd"}, "targets to measure, in order")
	fs.StringVar(&o.runs, "runs", defaultRuns, "runs as WORKLOAD:CLIENTS, comma-separated")
	fs.IntVar(&o.connections, "connections", 1, "client objects per target (each with its own connections); workers share them round-robin")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each run")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time before each run")
	fs.IntVar(&o.valueSize, "value-size", 256, "value size in bytes")
	fs.IntVar(&o.keys, "keys", 10000, "keyspace size")
	fs.BoolVar(&o.json, "json", false, "print one JSON line per run instead of the table")
	fs.StringVar(&o.report, "report", "", "directory to write report.md, results.jsonl and PNG plots into")
	fs.StringVar(&o.dir, "dir", "", "directory for the clusters bench starts (default: a temporary directory, removed afterwards)")
	fs.StringSliceVar(&o.kshakaEPs, "kshaka-endpoints", nil, "use a running Kshaka cluster instead of starting one")
	fs.StringSliceVar(&o.etcdEPs, "etcd-endpoints", nil, "use a running etcd cluster instead of starting one")
	fs.StringVar(&o.etcdBin, "etcd-bin", "bin/k8s/etcd", "etcd binary for the cluster bench starts")
	fs.StringVar(&o.acceptorBin, "acceptor-bin", "", "kshaka-acceptor binary (default: next to kshaka, then on PATH)")
	fs.IntVar(&o.basePort, "base-port", 7500, "first port of the acceptors bench starts")
	fs.IntVar(&o.etcdBasePort, "etcd-base-port", 7600, "first client port of the etcd members bench starts (peers at +100)")
	fs.BoolVar(&o.skipPreload, "skip-preload", false, "do not preload the keyspace before get and mixed runs")
	fs.BoolVar(&o.preload, "preload", false, "preload the keyspace before the first run of any workload, put included")
	fs.IntVar(&o.preloadConc, "preload-clients", 256, "concurrent writers of the preload")
	fs.StringArrayVar(&o.acceptorArgs, "acceptor-arg", nil, "extra flag for the kshaka-acceptor processes bench starts, e.g. --acceptor-arg=--cache-size=33554432 (repeatable)")
	fs.DurationVar(&o.startTimeout, "start-timeout", 60*time.Second, "how long to wait for the clusters, and the contention workers, to start")
	fs.IntVar(&o.goroutines, "goroutines", 4, "contention: concurrent operations in each worker process")
	fs.IntVar(&o.hotKeys, "hot-keys", 3, "contention: number of hot keys")
	fs.IntVar(&o.casPercent, "cas-percent", 50, "contention: percentage of operations that are one CompareAndSwap (the others are Change increments)")
	fs.DurationVar(&o.opTimeout, "op-timeout", 30*time.Second, "contention: deadline of each operation")
	o.acceptorCount = 3
	return cmd
}

func runBench(ctx context.Context, g *globals, o benchOptions, runs []benchRun) (err error) {
	progress := g.errw
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kshaka-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	targets := map[string]*benchTarget{}
	defer func() {
		for _, t := range targets {
			_ = t.Close()
		}
	}()
	for _, name := range o.targets {
		t := &benchTarget{dir: filepath.Join(dir, name)}
		switch name {
		case targetKshaka, targetKshakaTLS:
			withTLS := name == targetKshakaTLS
			eps := o.kshakaEPs
			var base proposer.Config
			if len(eps) == 0 {
				port := o.basePort
				if withTLS {
					port += o.acceptorCount
				}
				lc, err := startBenchAcceptors(ctx, g, o, t.dir, port, withTLS)
				if err != nil {
					return err
				}
				defer lc.stop()
				eps, t.pids, t.started = lc.endpoints(), lc.pids(), true
				base.TLSDir = lc.clientTLSDir()
			} else if base.TLS, err = g.client.tlsConfig(); err != nil {
				return err
			}
			t.kind, t.endpoints, t.tlsDir, t.clientTLS = targetKshaka, eps, base.TLSDir, len(o.kshakaEPs) > 0
			if t.Target, err = bench.NewKshaka(ctx, name, eps, o.connections, base); err != nil {
				return err
			}
		case "etcd":
			eps := o.etcdEPs
			if len(eps) == 0 {
				fmt.Fprintf(progress, "bench: starting a 3-member etcd cluster (%s) on 127.0.0.1:%d-%d\n", o.etcdBin, o.etcdBasePort, o.etcdBasePort+2)
				if err := os.MkdirAll(t.dir, 0o700); err != nil {
					return err
				}
				ec, err := bench.StartEtcd(ctx, o.etcdBin, t.dir, 3, o.etcdBasePort)
				if err != nil {
					return err
				}
				defer ec.Stop()
				eps, t.pids, t.started = ec.Endpoints(), ec.Pids(), true
			}
			t.kind, t.endpoints = "etcd", eps
			if t.Target, err = bench.NewEtcd(ctx, eps, o.connections); err != nil {
				return err
			}
		}
		targets[name] = t
	}

	var results []bench.Result
	for _, r := range runs {
		for _, name := range o.targets {
			t := targets[name]
			needsData := r.workload == bench.WorkloadGet || r.workload == bench.WorkloadMixed || o.preload
			if needsData && !o.skipPreload {
				if err := t.preload(ctx, progress, o); err != nil {
					return err
				}
			}
			label := fmt.Sprintf("%s %s clients=%d", name, r.workload, r.clients)
			if r.workload == bench.WorkloadContention {
				label = fmt.Sprintf("%s contention procs=%d goroutines=%d hot-keys=%d", name, r.clients, o.goroutines, o.hotKeys)
			}
			fmt.Fprintf(progress, "bench: %s: warm-up %v, measuring %v\n", label, o.warmup, o.duration)
			if r.workload == bench.WorkloadContention {
				res, err := runContention(ctx, g, o, t, r.clients)
				if err != nil {
					return fmt.Errorf("while running %s: %w", label, err)
				}
				printContentionCheck(progress, label, res)
				if res.FirstError != "" {
					fmt.Fprintf(progress, "  %s: %d give-ups, first: %s\n", label, res.Errors, res.FirstError)
				}
				results = append(results, res)
				if o.json {
					if err := json.NewEncoder(g.out).Encode(res); err != nil {
						return err
					}
				}
				continue
			}
			res, err := bench.Run(ctx, t, bench.Options{
				Workload: r.workload, Clients: r.clients, Duration: o.duration, Warmup: o.warmup,
				ValueSize: o.valueSize, Keys: o.keys, ServerPids: t.pids,
				Progress: func(p bench.Progress) {
					fmt.Fprintf(progress, "  %s: %4.0fs  %8d ops  %8.0f ops/s%s\n", label, p.Elapsed.Seconds(), p.Done,
						float64(p.Done)/p.Elapsed.Seconds(), rssNote(p.ServerRSSMiB))
				},
			})
			if err != nil {
				return fmt.Errorf("while running %s: %w", label, err)
			}
			if res.FirstError != "" {
				fmt.Fprintf(progress, "  %s: %d errors, first: %s\n", label, res.Errors, res.FirstError)
			}
			results = append(results, res)
			if o.json {
				if err := json.NewEncoder(g.out).Encode(res); err != nil {
					return err
				}
			}
		}
	}
	if !o.json {
		if err := bench.WriteTable(g.out, results); err != nil {
			return err
		}
		writeRatios(g.out, results, targetKshaka, "etcd")
		writeRatios(g.out, results, targetKshakaTLS, targetKshaka)
		if hasContention(results) {
			fmt.Fprintln(g.out)
			if err := bench.WriteContentionTable(g.out, results); err != nil {
				return err
			}
		}
	}
	if o.report != "" {
		if err := writeReport(o.report, results); err != nil {
			return err
		}
		fmt.Fprintf(progress, "bench: report written to %s\n", filepath.Join(o.report, "report.md"))
	}
	var failed []error
	for _, r := range results {
		if err := bench.CheckContention(r); err != nil {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}

func hasContention(rs []bench.Result) bool {
	for _, r := range rs {
		if r.Contention != nil {
			return true
		}
	}
	return false
}

func rssNote(mib float64) string {
	if mib <= 0 {
		return ""
	}
	return fmt.Sprintf("  server RSS %4.0f MiB", mib)
}

// benchTarget is a target with what bench knows about its servers.
type benchTarget struct {
	bench.Target
	// dir holds the data of the cluster bench started.
	dir string
	// started is set when bench started the cluster; pids are its
	// processes, in order.
	started bool
	pids    []int
	// preloaded is set once the keyspace is known to be written.
	preloaded bool
	// kind ("kshaka" or "etcd"), endpoints and tlsDir (of a Kshaka
	// cluster bench started) are what the contention workers dial;
	// clientTLS says they use the global TLS flags (a running cluster).
	kind      string
	endpoints []string
	tlsDir    string
	clientTLS bool
}

// preloadMarker is the file, in the data directory of a cluster bench
// started, that records a finished preload, so a later bench on the same
// --dir can skip it.
const preloadMarker = "preloaded"

func preloadStamp(o benchOptions) string {
	return fmt.Sprintf("keys=%d value-size=%d\n", o.keys, o.valueSize)
}

// preload writes the keyspace once, unless it already has been in this run
// or, for a cluster on a kept --dir, by an earlier one.
func (t *benchTarget) preload(ctx context.Context, progress io.Writer, o benchOptions) error {
	if t.preloaded {
		return nil
	}
	marker := filepath.Join(t.dir, preloadMarker)
	if t.started {
		if b, err := os.ReadFile(marker); err == nil && string(b) == preloadStamp(o) {
			fmt.Fprintf(progress, "bench: %s already holds the %d keys of an earlier preload (%s)\n", t.Name(), o.keys, marker)
			t.preloaded = true
			return nil
		}
	}
	fmt.Fprintf(progress, "bench: preloading %d keys of %d bytes into %s with %d writers\n", o.keys, o.valueSize, t.Name(), o.preloadConc)
	began := time.Now()
	var last bench.Progress
	err := bench.Preload(ctx, t, bench.PreloadOptions{
		Keys: o.keys, ValueSize: o.valueSize, Clients: o.preloadConc,
		Progress: func(p bench.Progress) {
			if p.Elapsed-last.Elapsed < 5*time.Second {
				return // a line every 5 seconds is enough
			}
			rate := float64(p.Done-last.Done) / (p.Elapsed - last.Elapsed).Seconds()
			eta := "?"
			if rate > 0 {
				eta = (time.Duration(float64(int64(o.keys)-p.Done)/rate) * time.Second).Truncate(time.Second).String()
			}
			fmt.Fprintf(progress, "  preload %s: %4.0fs  %9d/%d keys (%3.0f%%)  %7.0f keys/s  ETA %s\n", t.Name(),
				p.Elapsed.Seconds(), p.Done, o.keys, 100*float64(p.Done)/float64(o.keys), rate, eta)
			last = p
		},
	})
	if err != nil {
		return fmt.Errorf("while preloading %s: %w", t.Name(), err)
	}
	el := time.Since(began)
	fmt.Fprintf(progress, "bench: preloaded %d keys into %s in %v (%.0f keys/s)\n", o.keys, t.Name(), el.Truncate(time.Second), float64(o.keys)/el.Seconds())
	t.preloaded = true
	if t.started {
		if err := os.WriteFile(marker, []byte(preloadStamp(o)), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// The Kshaka targets: plaintext, and mutual TLS.
const (
	targetKshaka    = "kshaka"
	targetKshakaTLS = "kshaka-tls"
)

// startBenchAcceptors starts a three-acceptor cluster the way kshaka local
// does (with withTLS, as kshaka local --tls does), quietly.
func startBenchAcceptors(ctx context.Context, g *globals, o benchOptions, dir string, basePort int, withTLS bool) (*localCluster, error) {
	bin, err := findAcceptorBin(o.acceptorBin)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lo := localOptions{acceptors: o.acceptorCount, dir: dir, basePort: basePort, startTimeout: o.startTimeout, stopTimeout: 10 * time.Second}
	lc := &localCluster{o: lo, g: g, out: g.errw, errw: g.errw, exits: make(chan *acceptorProc, lo.acceptors), sigs: make(chan os.Signal, 1)}
	spec := procSpec{bin: bin, dir: dir, basePort: basePort, stopTimeout: lo.stopTimeout, extraArgs: o.acceptorArgs}
	for i := range lo.acceptors {
		lc.procs = append(lc.procs, newAcceptorProc(spec, i))
	}
	if err := checkPortsFree(lc.procs); err != nil {
		return nil, err
	}
	if spec.sec, err = prepareLocalSecurity(g, dir, lc.ids(), withTLS); err != nil {
		return nil, err
	}
	lc.sec = spec.sec
	if err := lc.start(ctx, spec); err != nil {
		lc.stop()
		return nil, err
	}
	return lc, nil
}

// writeRatios prints the ratios of target a to target b for the runs
// measured on both.
func writeRatios(w io.Writer, rs []bench.Result, a, b string) {
	type key struct {
		workload string
		clients  int
	}
	by := map[key]map[string]bench.Result{}
	var order []key
	for _, r := range rs {
		k := key{r.Workload, r.Clients}
		if by[k] == nil {
			by[k] = map[string]bench.Result{}
			order = append(order, k)
		}
		by[k][r.Target] = r
	}
	header := false
	for _, k := range order {
		ks, ok1 := by[k][a]
		es, ok2 := by[k][b]
		if !ok1 || !ok2 || es.OpsPerSec == 0 || es.P50us == 0 || es.P99us == 0 {
			continue
		}
		if !header {
			fmt.Fprintf(w, "\n%s/%s ratios:\n", a, b)
			header = true
		}
		what, ratio := "throughput", ks.OpsPerSec/es.OpsPerSec
		if ks.Contention != nil && es.Contention != nil && es.Contention.IncrementsPerSec > 0 {
			// Of acknowledged increments: a mismatch is an operation, not work done.
			what, ratio = "increments/s", ks.Contention.IncrementsPerSec/es.Contention.IncrementsPerSec
		}
		fmt.Fprintf(w, "  %-8s clients=%-3d  %s %.2fx   p50 %.2fx   p99 %.2fx\n", k.workload, k.clients,
			what, ratio, ks.P50us/es.P50us, ks.P99us/es.P99us)
	}
}

// writeMemory lists each server process's peak RSS per run, for the runs
// where bench measured it.
func writeMemory(w io.Writer, rs []bench.Result) {
	header := false
	for _, r := range rs {
		if len(r.ServerRSSPeakMiB) == 0 {
			continue
		}
		if !header {
			fmt.Fprint(w, "## Server memory\n\n"+
				"Resident memory (VmRSS) of each server process bench started, sampled every "+
				bench.RSSInterval.String()+" from the start of the warm-up to the end of the run, in MiB. "+
				"The table's \"max RSS MiB\" is the largest peak.\n\n"+
				"| workload | target | clients | peak per process | largest at end |\n|---|---|---|---|---|\n")
			header = true
		}
		peaks := make([]string, len(r.ServerRSSPeakMiB))
		for i, v := range r.ServerRSSPeakMiB {
			peaks[i] = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %.0f |\n", r.Workload, r.Target, r.Clients, strings.Join(peaks, ", "), r.ServerRSSEndMiB)
	}
	if header {
		fmt.Fprintln(w)
	}
}

func writeReport(dir string, rs []bench.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md strings.Builder
	md.WriteString("# Kshaka benchmark\n\n")
	fmt.Fprintf(&md, "Run at %s.\n\n```\n", time.Now().UTC().Format(time.RFC3339))
	if err := bench.WriteTable(&md, rs); err != nil {
		return err
	}
	writeRatios(&md, rs, targetKshaka, "etcd")
	writeRatios(&md, rs, targetKshakaTLS, targetKshaka)
	if hasContention(rs) {
		md.WriteString("\n")
		if err := bench.WriteContentionTable(&md, rs); err != nil {
			return err
		}
	}
	md.WriteString("```\n\n")
	writeMemory(&md, rs)
	var jl strings.Builder
	groups := map[string][]bench.Result{}
	var order []string
	for _, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		jl.Write(append(b, '\n'))
		name := fmt.Sprintf("%s-c%d", r.Workload, r.Clients)
		if groups[name] == nil {
			order = append(order, name)
		}
		groups[name] = append(groups[name], r)
	}
	for _, name := range order {
		f, err := os.Create(filepath.Join(dir, name+".png"))
		if err != nil {
			return err
		}
		err = bench.WritePlot(f, "latency distribution: "+name, groups[name])
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(&md, "## %s\n\n![%s](%s.png)\n\n", name, name, name)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.jsonl"), []byte(jl.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(md.String()), 0o644)
}
