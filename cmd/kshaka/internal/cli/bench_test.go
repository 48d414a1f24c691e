package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kshaka-io/kshaka/cmd/kshaka/internal/bench"
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
