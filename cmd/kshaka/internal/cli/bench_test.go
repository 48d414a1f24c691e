package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/cmd/kshaka/internal/bench"
	"github.com/kshaka-io/kshaka/internal/pki"
	"github.com/kshaka-io/kshaka/proposer"
)

func TestBenchReportShowsServerMemory(t *testing.T) {
	rs := []bench.Result{
		{Target: "kshaka", Workload: "put", Clients: 64, OpsPerSec: 3000, P50us: 1, P99us: 2,
			ServerRSSMaxMiB: 120.5, ServerRSSEndMiB: 110, ServerRSSPeakMiB: []float64{118, 120.5, 119}},
		{Target: "etcd", Workload: "put", Clients: 64, OpsPerSec: 2000, P50us: 1, P99us: 2},
	}
	dir := t.TempDir()
	if err := writeReport(dir, rs); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"max RSS MiB", "## Server memory", "| put | kshaka | 64 | 118, 120, 119 | 110 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(md), "| put | etcd |") {
		t.Errorf("report.md lists memory that was not measured:\n%s", md)
	}
	jl, err := os.ReadFile(filepath.Join(dir, "results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(string(jl), "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["server_rss_max_mib"] != 120.5 {
		t.Errorf("results.jsonl: server_rss_max_mib = %v, want 120.5", first["server_rss_max_mib"])
	}
}

func TestBenchHelpListsMemoryFlags(t *testing.T) {
	cmd := newBenchCmd(&globals{})
	for _, name := range []string{"preload", "preload-clients", "acceptor-arg", "keys", "dir"} {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("kshaka bench has no --%s", name)
		}
	}
	if !strings.Contains(cmd.Long, "max RSS MiB") {
		t.Error("kshaka bench --help does not explain the RSS column")
	}
}

// benchWorkerTestEnv makes the test binary run 'kshaka bench worker' (its
// TestMain checks it), since the binary of a test is not kshaka.
const benchWorkerTestEnv = "KSHAKA_CLI_TEST_BENCH_WORKER"

func useTestBenchWorkers(t *testing.T) {
	t.Helper()
	prev := benchWorkerCmd
	benchWorkerCmd = func() (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(childEnv(nil), benchWorkerTestEnv+"=1")
		return cmd, nil
	}
	t.Cleanup(func() { benchWorkerCmd = prev })
}

// The contention workload on real acceptors, with real worker processes:
// every operation is counted once, and the final counters pass the check.
// Counts only, never timings.
func TestBenchContention(t *testing.T) {
	useTestBenchWorkers(t)
	c := acceptortest.StartCluster(t, 3)
	args := []string{"bench", "--targets", "kshaka", "--kshaka-endpoints", strings.Join(c.Addrs(), ","),
		"--runs", "contention:2", "--goroutines", "2", "--hot-keys", "2", "--duration", "300ms", "--warmup", "100ms"}
	checkBenchContention(t, args)
	// A second run starts from the counters the first left.
	r := must(t, ExitOK, "check", args...)
	if !strings.Contains(r.stdout, "mismatch/10k") || !strings.Contains(r.stderr, "ok: bench/contention/0: counter went from") ||
		strings.Contains(r.stderr, "from 0 to") {
		t.Errorf("second run: want the table and a check that starts from the first run's counters:\n%v", r)
	}
}

// The workers of a running cluster use the TLS flags (--cacert, --cert,
// --key) as the parent does.
func TestBenchContentionMutualTLS(t *testing.T) {
	useTestBenchWorkers(t)
	c := acceptortest.StartTLSCluster(t, 3, nil)
	dir := c.ClientDir("bench", pki.OrgClient)
	checkBenchContention(t, []string{"bench", "--targets", "kshaka", "--kshaka-endpoints", strings.Join(c.Addrs(), ","),
		"--cacert", filepath.Join(dir, "ca.crt"), "--cert", filepath.Join(dir, "tls.crt"), "--key", filepath.Join(dir, "tls.key"),
		"--runs", "contention:2", "--goroutines", "2", "--hot-keys", "1", "--duration", "200ms", "--warmup", "0s"})
}

// checkBenchContention runs bench with args and --json, and checks the
// contention result's counts from a fresh cluster.
func checkBenchContention(t *testing.T, args []string) {
	t.Helper()
	r := must(t, ExitOK, `"workload":"contention"`, append(args, "--json")...)
	var res bench.Result
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &res); err != nil {
		t.Fatalf("%v\n%v", err, r)
	}
	s := res.Contention
	if s == nil || !s.Verified || s.Procs != 2 || s.Goroutines != 2 || len(s.Keys) == 0 {
		t.Fatalf("contention result: %+v\n%v", s, r)
	}
	if res.Ops == 0 || s.Successes+s.Mismatches+s.Unknown+s.GiveUps != res.Ops || s.CASOps+s.ChangeOps != res.Ops {
		t.Fatalf("the outcomes do not add up to the operations: ops %d, %+v", res.Ops, s)
	}
	// The counters grew by what the workers reported, and a second run
	// starts from where the first left them.
	var acked int64
	for _, k := range s.Keys {
		acked += k.Acked
		if k.Initial != 0 || !k.OK {
			t.Errorf("%v", k)
		}
	}
	if acked < s.Successes {
		t.Errorf("acknowledged increments %d < successes of the measured phase %d", acked, s.Successes)
	}
}

func TestBenchContentionUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--runs", "contention:0"},
		{"--runs", "contention:2", "--cas-percent", "101"},
		{"--runs", "contention:2", "--hot-keys", "0"},
	} {
		r := run("", append([]string{"bench", "--targets", "kshaka"}, args...)...)
		if r.code != ExitUsage {
			t.Errorf("kshaka bench %v: want a usage error, got %v", args, r)
		}
	}
	// A hot key that is not a counter is refused before any worker starts.
	c := acceptortest.StartCluster(t, 3)
	must(t, ExitOK, "", endpointsFlag(c), "put", "bench/contention/0", "hello")
	r := run("", "bench", "--targets", "kshaka", "--kshaka-endpoints", strings.Join(c.Addrs(), ","), "--runs", "contention:2")
	if r.code == ExitOK || !strings.Contains(r.stderr, "not a decimal counter") {
		t.Errorf("a non-counter hot key: %v", r)
	}
}

// For contention, the ratio compares acknowledged increments, not
// operations (a mismatch is an operation, not work done).
func TestBenchRatiosOfContentionAreIncrements(t *testing.T) {
	rs := []bench.Result{
		{Target: "kshaka", Workload: bench.WorkloadContention, Clients: 3, OpsPerSec: 1000, P50us: 1, P99us: 2,
			Contention: &bench.ContentionStats{IncrementsPerSec: 600}},
		{Target: "etcd", Workload: bench.WorkloadContention, Clients: 3, OpsPerSec: 250, P50us: 1, P99us: 2,
			Contention: &bench.ContentionStats{IncrementsPerSec: 150}},
	}
	var b strings.Builder
	writeRatios(&b, rs, "kshaka", "etcd")
	if !strings.Contains(b.String(), "increments/s 4.00x") {
		t.Errorf("ratios:\n%s", b.String())
	}
}

// The negative control of the final check, end to end: a writer outside
// the workload adds 1000 to a hot key while the workers run, so the
// counter grows beyond what they acknowledged, and bench must fail.
func TestBenchContentionFailsOnForeignIncrements(t *testing.T) {
	useTestBenchWorkers(t)
	c := acceptortest.StartCluster(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pc, err := proposer.New(ctx, proposer.Config{Endpoints: c.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	key := bench.ContentionKey(0)
	interfered := make(chan error, 1)
	go func() {
		// Poll until the workers write (a counter that is not a multiple
		// of 1000 is theirs, so bench has read the initial value), then
		// add 1000, retrying until it is acknowledged: an attempt that
		// ended unknown may have added it too, which fails the check all
		// the same.
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				interfered <- ctx.Err()
				return
			case <-tick.C:
			}
			v, err := pc.Get(ctx, key)
			if n, _ := strconv.Atoi(string(v.Data)); err != nil || n%1000 == 0 {
				continue
			}
			for ctx.Err() == nil {
				if _, err := pc.Change(ctx, key, func(cur proposer.Value, _ bool) ([]byte, error) {
					n, err := strconv.Atoi(string(cur.Data))
					return []byte(strconv.Itoa(n + 1000)), err
				}); err == nil {
					interfered <- nil
					return
				}
			}
		}
	}()
	r := run("", "bench", "--targets", "kshaka", "--kshaka-endpoints", strings.Join(c.Addrs(), ","),
		"--runs", "contention:2", "--goroutines", "2", "--hot-keys", "1", "--duration", "2s", "--warmup", "0s")
	cancel()
	if err := <-interfered; err != nil {
		t.Fatalf("the foreign write failed: %v", err)
	}
	if r.code == ExitOK || !strings.Contains(r.stdout, "FAILED") ||
		!strings.Contains(r.stderr, "the final counters do not match the acknowledged increments") {
		t.Errorf("bench passed a counter that grew by 1000 it did not make:\n%v", r)
	}
}
