package bench

import (
	"bytes"
	"context"
	"image/png"
	"strconv"
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
	if err := Preload(context.Background(), tg, 100, 8, 7); err != nil {
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
