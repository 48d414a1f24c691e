package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// memTarget is an in-memory Target for testing the harness itself.
type memTarget struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (t *memTarget) Name() string { return "mem" }
func (t *memTarget) Put(_ context.Context, k, v []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[string(k)] = v
	return nil
}
func (t *memTarget) Get(_ context.Context, k []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	_ = t.m[string(k)]
	return nil
}
func (t *memTarget) Increment(_ context.Context, k []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, _ := strconv.Atoi(string(t.m[string(k)]))
	t.m[string(k)] = []byte(strconv.Itoa(n + 1))
	return 0, nil
}
func (t *memTarget) Close() error { return nil }

func TestRunCountsEveryIncrement(t *testing.T) {
	tg := &memTarget{m: map[string][]byte{}}
	r, err := Run(context.Background(), tg, Options{Workload: WorkloadCASHot, Clients: 4, Duration: 200 * time.Millisecond, Warmup: 1})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(string(tg.m[string(HotKey)]))
	// Increments during warm-up and after the measured phase are not counted.
	if r.Ops == 0 || r.Ops > int64(n) {
		t.Fatalf("measured %d increments, counter is %d", r.Ops, n)
	}
	if r.P50us > r.P99us || r.P99us > r.P999us {
		t.Fatalf("percentiles out of order: %+v", r)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		ds = append(ds, time.Duration(i))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := Percentile(ds, tc.q); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if Percentile(nil, 0.5) != 0 {
		t.Error("empty input")
	}
}

func TestValidateRejectsUnknownWorkload(t *testing.T) {
	if err := (Options{Workload: "nope"}).Validate(); err == nil {
		t.Fatal("unknown workload accepted")
	}
}

func TestPreloadWritesEveryKey(t *testing.T) {
	tg := &memTarget{m: map[string][]byte{}}
	if err := Preload(context.Background(), tg, PreloadOptions{Keys: 100, ValueSize: 8, Clients: 7}); err != nil {
		t.Fatal(err)
	}
	if len(tg.m) != 100 {
		t.Fatalf("preloaded %d keys, want 100", len(tg.m))
	}
}

func TestPlotAndTable(t *testing.T) {
	tg := &memTarget{m: map[string][]byte{}}
	r, err := Run(context.Background(), tg, Options{Workload: WorkloadPut, Clients: 2, Duration: 50 * time.Millisecond, Keys: 10})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WritePlot(&buf, "put", []Result{r, r}); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatalf("plot is not a PNG: %v", err)
	}
	buf.Reset()
	if err := WriteTable(&buf, []Result{r}); err != nil || !bytes.Contains(buf.Bytes(), []byte("put")) {
		t.Fatalf("table: %v %q", err, buf.String())
	}
}

func TestParseVmRSS(t *testing.T) {
	// An excerpt of a real /proc/<pid>/status.
	const status = `Name:	kshaka-acceptor
Umask:	0022
State:	S (sleeping)
Pid:	4242
VmPeak:	 2253612 kB
VmSize:	 2253612 kB
VmHWM:	  131072 kB
VmRSS:	  104852 kB
RssAnon:	   98304 kB
RssFile:	    6548 kB
Threads:	12
`
	got, err := parseVmRSS(strings.NewReader(status))
	if err != nil || got != 104852<<10 {
		t.Fatalf("parseVmRSS = %d, %v; want %d", got, err, 104852<<10)
	}
	if _, err := parseVmRSS(strings.NewReader("Name:\tkthreadd\nState:\tS\n")); err == nil {
		t.Fatal("a status without VmRSS parsed")
	}
	if _, err := parseVmRSS(strings.NewReader("VmRSS:\t12 MB\n")); err == nil {
		t.Fatal("a VmRSS in an unknown unit parsed")
	}
}

func TestRunSamplesServerRSS(t *testing.T) {
	if _, err := ReadRSS(os.Getpid()); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	tg := &memTarget{m: map[string][]byte{}}
	// This test process stands in for a server.
	r, err := Run(context.Background(), tg, Options{Workload: WorkloadPut, Clients: 2, Duration: 50 * time.Millisecond,
		Keys: 10, ServerPids: []int{os.Getpid(), os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	if r.ServerRSSMaxMiB <= 0 || r.ServerRSSEndMiB <= 0 || len(r.ServerRSSPeakMiB) != 2 {
		t.Fatalf("RSS not reported: %+v", r)
	}
	b, err := json.Marshal(r)
	if err != nil || !bytes.Contains(b, []byte(`"server_rss_max_mib":`)) {
		t.Fatalf("JSON lacks server_rss_max_mib: %s %v", b, err)
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, []Result{r}); err != nil || !strings.Contains(buf.String(), "max RSS MiB") {
		t.Fatalf("table lacks the RSS column: %v %q", err, buf.String())
	}

	// Without server processes, nothing is reported.
	r, err = Run(context.Background(), tg, Options{Workload: WorkloadPut, Duration: 20 * time.Millisecond, Keys: 10})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(r); bytes.Contains(b, []byte("rss")) {
		t.Fatalf("RSS reported without servers: %s", b)
	}
}
