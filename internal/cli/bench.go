package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kshaka-io/kshaka/internal/bench"
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
	startTimeout  time.Duration
	acceptorCount int
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

Unless --kshaka-endpoints / --etcd-endpoints point at running clusters, bench
starts its own on loopback under --dir: three kshaka-acceptor processes and a
three-member etcd cluster from --etcd-bin (built by 'make kube-binaries'),
both with their data on the same disk and an fsync per commit, and stops them
at the end. Progress goes to stderr; the table, or with --json one line per
(target, workload) run, to stdout. --report DIR also writes report.md, the
JSON lines and a latency-distribution plot (PNG) per run.`,
		Example: `  # the full comparison, with a report
  kshaka bench --report bench-report

  # one quick run against a running 'kshaka local'
  kshaka bench --targets kshaka --kshaka-endpoints 127.0.0.1:7400 --runs put:8 --duration 5s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			runs, err := parseRuns(o.runs)
			if err != nil {
				return err
			}
			for _, t := range o.targets {
				if t != "kshaka" && t != "etcd" {
					return usageErrorf("--targets: unknown target %q (kshaka, etcd)", t)
				}
			}
			return runBench(cmd.Context(), g, o, runs)
		},
	}
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
	fs.DurationVar(&o.startTimeout, "start-timeout", 60*time.Second, "how long to wait for the clusters to start")
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
	targets := map[string]bench.Target{}
	defer func() {
		for _, t := range targets {
			_ = t.Close()
		}
	}()
	for _, name := range o.targets {
		var eps []string
		switch name {
		case "kshaka":
			eps = o.kshakaEPs
			if len(eps) == 0 {
				lc, err := startBenchAcceptors(ctx, g, o, filepath.Join(dir, "kshaka"))
				if err != nil {
					return err
				}
				defer lc.stop()
				eps = lc.endpoints()
			}
			t, err := bench.NewKshaka(ctx, eps, o.connections)
			if err != nil {
				return err
			}
			targets[name] = t
		case "etcd":
			eps = o.etcdEPs
			if len(eps) == 0 {
				fmt.Fprintf(progress, "bench: starting a 3-member etcd cluster (%s) on 127.0.0.1:%d-%d\n", o.etcdBin, o.etcdBasePort, o.etcdBasePort+2)
				if err := os.MkdirAll(filepath.Join(dir, "etcd"), 0o700); err != nil {
					return err
				}
				ec, err := bench.StartEtcd(ctx, o.etcdBin, filepath.Join(dir, "etcd"), 3, o.etcdBasePort)
				if err != nil {
					return err
				}
				defer ec.Stop()
				eps = ec.Endpoints()
			}
			t, err := bench.NewEtcd(ctx, eps, o.connections)
			if err != nil {
				return err
			}
			targets[name] = t
		}
	}

	preloaded := map[string]bool{}
	var results []bench.Result
	for _, r := range runs {
		for _, name := range o.targets {
			t := targets[name]
			if (r.workload == bench.WorkloadGet || r.workload == bench.WorkloadMixed) && !preloaded[name] && !o.skipPreload {
				fmt.Fprintf(progress, "bench: preloading %d keys into %s\n", o.keys, name)
				if err := bench.Preload(ctx, t, o.keys, o.valueSize, 64); err != nil {
					return err
				}
				preloaded[name] = true
			}
			label := fmt.Sprintf("%s %s clients=%d", name, r.workload, r.clients)
			fmt.Fprintf(progress, "bench: %s: warm-up %v, measuring %v\n", label, o.warmup, o.duration)
			res, err := bench.Run(ctx, t, bench.Options{
				Workload: r.workload, Clients: r.clients, Duration: o.duration, Warmup: o.warmup,
				ValueSize: o.valueSize, Keys: o.keys,
				Progress: func(done int64, el time.Duration) {
					fmt.Fprintf(progress, "  %s: %4.0fs  %8d ops  %8.0f ops/s\n", label, el.Seconds(), done, float64(done)/el.Seconds())
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
		writeRatios(g.out, results)
	}
	if o.report != "" {
		if err := writeReport(o.report, results); err != nil {
			return err
		}
		fmt.Fprintf(progress, "bench: report written to %s\n", filepath.Join(o.report, "report.md"))
	}
	return nil
}

// startBenchAcceptors starts a three-acceptor cluster the way kshaka local
// does, quietly.
func startBenchAcceptors(ctx context.Context, g *globals, o benchOptions, dir string) (*localCluster, error) {
	bin, err := findAcceptorBin(o.acceptorBin)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lo := localOptions{acceptors: o.acceptorCount, dir: dir, basePort: o.basePort, startTimeout: o.startTimeout, stopTimeout: 10 * time.Second}
	lc := &localCluster{o: lo, g: g, out: g.errw, errw: g.errw, exits: make(chan *acceptorProc, lo.acceptors), sigs: make(chan os.Signal, 1)}
	spec := procSpec{bin: bin, dir: dir, basePort: o.basePort, adminToken: g.client.adminToken, stopTimeout: lo.stopTimeout}
	for i := range lo.acceptors {
		lc.procs = append(lc.procs, newAcceptorProc(spec, i))
	}
	if err := checkPortsFree(lc.procs); err != nil {
		return nil, err
	}
	if err := lc.start(ctx, spec); err != nil {
		lc.stop()
		return nil, err
	}
	return lc, nil
}

// writeRatios prints Kshaka/etcd ratios for runs measured on both targets.
func writeRatios(w io.Writer, rs []bench.Result) {
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
		ks, ok1 := by[k]["kshaka"]
		es, ok2 := by[k]["etcd"]
		if !ok1 || !ok2 || es.OpsPerSec == 0 || es.P50us == 0 || es.P99us == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nkshaka/etcd ratios:")
			header = true
		}
		fmt.Fprintf(w, "  %-8s clients=%-3d  throughput %.2fx   p50 %.2fx   p99 %.2fx\n", k.workload, k.clients,
			ks.OpsPerSec/es.OpsPerSec, ks.P50us/es.P50us, ks.P99us/es.P99us)
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
	writeRatios(&md, rs)
	md.WriteString("```\n\n")
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
