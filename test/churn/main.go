package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kshaka-io/kshaka/internal/adminclient"
	"github.com/kshaka-io/kshaka/proposer"
)

type options struct {
	kshakaBin   string
	dir         string
	basePort    int
	metricsPort int
	acceptors   int
	keys        int
	window      int
	clients     int
	valueSize   int
	sampleEvery time.Duration
	gc          bool
	gcInterval  time.Duration
	retention   time.Duration
	batch       int
	gcRate      int
	throughput  time.Duration
	tpClients   int
	label       string
}

func main() {
	var o options
	flag.StringVar(&o.kshakaBin, "kshaka-bin", "kshaka", "the kshaka binary whose `kshaka local` runs the cluster (kshaka-acceptor next to it)")
	flag.StringVar(&o.dir, "dir", "", "data directory of the cluster (required; deleted first)")
	flag.IntVar(&o.basePort, "base-port", 27400, "gRPC port of acceptor a0 (a<i>: +i)")
	flag.IntVar(&o.metricsPort, "metrics-base-port", 27500, "metrics port of acceptor a0 (a<i>: +i)")
	flag.IntVar(&o.acceptors, "acceptors", 3, "number of acceptors")
	flag.IntVar(&o.keys, "keys", 100000, "distinct keys to create and delete")
	flag.IntVar(&o.window, "window", 1000, "keys alive at once: key i is deleted after key i+window is put")
	flag.IntVar(&o.clients, "clients", 64, "concurrent workers of the churn")
	flag.IntVar(&o.valueSize, "value-size", 256, "bytes per value")
	flag.DurationVar(&o.sampleEvery, "sample-every", 10*time.Second, "how often disk use is sampled")
	flag.BoolVar(&o.gc, "gc", false, "run tombstone GC passes during the churn")
	flag.DurationVar(&o.gcInterval, "gc-interval", 10*time.Second, "with --gc: time between the end of a pass and the start of the next")
	flag.DurationVar(&o.retention, "retention", 5*time.Second, "with --gc: collect tombstones older than this")
	flag.IntVar(&o.batch, "batch", 1000, "with --gc: tombstones per floor epoch")
	flag.IntVar(&o.gcRate, "gc-rate", 0, "pace GC passes to this many candidate tombstones per second, checked after each batch (0: as fast as they go; not applied to the final GC-alone phase)")
	flag.DurationVar(&o.throughput, "throughput", 0, "after the churn: measure put throughput for this long without GC, then as long while GC runs (0: skip)")
	flag.IntVar(&o.tpClients, "throughput-clients", 64, "concurrent workers of the throughput phases")
	flag.StringVar(&o.label, "label", "", "label of this run in the output (default: gc or no-gc)")
	flag.Parse()
	if o.dir == "" || o.keys < 1 || o.window < 1 || o.clients < 1 || o.acceptors < 1 {
		fmt.Fprintln(os.Stderr, "churn: --dir is required; --keys, --window, --clients and --acceptors must be positive")
		flag.Usage()
		os.Exit(2)
	}
	if o.label == "" {
		o.label = "no-gc"
		if o.gc {
			o.label = "gc"
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "churn:", err)
		os.Exit(1)
	}
}

// cluster is a running `kshaka local`.
type cluster struct {
	o         options
	cmd       *exec.Cmd
	endpoints []string
	token     string
	admins    []*adminclient.Conn
}

func startCluster(ctx context.Context, o options) (*cluster, error) {
	if err := os.RemoveAll(o.dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(o.dir, "local.out"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.kshakaBin, "local", "--dir", o.dir, "--acceptors", strconv.Itoa(o.acceptors),
		"--base-port", strconv.Itoa(o.basePort), "--metrics-base-port", strconv.Itoa(o.metricsPort))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("while starting kshaka local: %w", err)
	}
	c := &cluster{o: o, cmd: cmd}
	for i := range o.acceptors {
		c.endpoints = append(c.endpoints, fmt.Sprintf("127.0.0.1:%d", o.basePort+i))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(o.dir, "local.out"))
		if err == nil && strings.Contains(string(b), "kshaka local: ready") {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.stop()
			return nil, fmt.Errorf("kshaka local did not become ready; its output:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(o.dir, "admin-token"))
	if err != nil {
		c.stop()
		return nil, err
	}
	c.token = strings.TrimSpace(string(tok))
	for _, ep := range c.endpoints {
		a, err := adminclient.Dial(ep, nil, c.token)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.admins = append(c.admins, a)
	}
	return c, nil
}

func (c *cluster) stop() {
	for _, a := range c.admins {
		_ = a.Close()
	}
	if c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		_ = c.cmd.Wait()
	}
}

// sample is one measurement of every acceptor.
type sample struct {
	Label     string    `json:"label"`
	Phase     string    `json:"phase"`
	Elapsed   float64   `json:"elapsed_s"`
	Created   int64     `json:"keys_created"`
	Deleted   int64     `json:"keys_deleted"`
	Collected int64     `json:"tombstones_collected"`
	DuBytes   []int64   `json:"du_bytes"`
	Pebble    []float64 `json:"pebble_disk_usage_bytes"`
	Keys      []float64 `json:"keys"`
	Tombs     []float64 `json:"tombstones"`
	Epoch     uint64    `json:"epoch"`
}

func (c *cluster) sample(ctx context.Context) sample {
	var s sample
	for i := range c.o.acceptors {
		s.DuBytes = append(s.DuBytes, du(filepath.Join(c.o.dir, fmt.Sprintf("a%d", i))))
		m := scrape(ctx, fmt.Sprintf("http://127.0.0.1:%d/metrics", c.o.metricsPort+i))
		s.Pebble = append(s.Pebble, m["kshaka_acceptor_disk_usage_bytes"])
		s.Keys = append(s.Keys, m["kshaka_acceptor_keys"])
		s.Tombs = append(s.Tombs, m["kshaka_acceptor_tombstones"])
		s.Epoch = max(s.Epoch, uint64(m["kshaka_acceptor_config_epoch"]))
	}
	return s
}

// du is the bytes the files under dir take on disk (allocated blocks).
func du(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// scrape reads the unlabelled gauges of a Prometheus text exposition.
func scrape(ctx context.Context, url string) map[string]float64 {
	out := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return out
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.Contains(line, "{") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return out
}

type counters struct {
	created, deleted, collected atomic.Int64
	gcKeys, gcPasses            atomic.Int64
	gcNanos                     atomic.Int64
	gcErrors                    atomic.Int64
}

func run(ctx context.Context, o options) error {
	c, err := startCluster(ctx, o)
	if err != nil {
		return err
	}
	defer c.stop()
	p, err := proposer.New(ctx, proposer.Config{Endpoints: c.endpoints})
	if err != nil {
		return err
	}
	defer p.Close()
	enc := json.NewEncoder(os.Stdout)
	start := time.Now()
	var cnt counters
	emit := func(phase string) sample {
		s := c.sample(ctx)
		s.Label, s.Phase, s.Elapsed = o.label, phase, time.Since(start).Seconds()
		s.Created, s.Deleted, s.Collected = cnt.created.Load(), cnt.deleted.Load(), cnt.collected.Load()
		_ = enc.Encode(s)
		return s
	}
	emit("start")

	var bg sync.WaitGroup
	bgCtx, stopBG := context.WithCancel(ctx)
	defer stopBG()
	bg.Go(func() {
		t := time.NewTicker(o.sampleEvery)
		defer t.Stop()
		for {
			select {
			case <-bgCtx.Done():
				return
			case <-t.C:
				emit("churn")
			}
		}
	})
	if o.gc {
		bg.Go(func() { gcLoop(bgCtx, c, p, o, &cnt) })
	}
	churnStart := time.Now()
	if err := churn(ctx, p, o, &cnt); err != nil {
		return err
	}
	churnTime := time.Since(churnStart)
	stopBG()
	bg.Wait()
	end := emit("churn-end")
	fmt.Fprintf(os.Stderr, "%s: %d keys created and deleted in %s (%.0f writes/s); du per acceptor %s; tombstones %v; %d collected in %d passes\n",
		o.label, o.keys, churnTime.Round(time.Second), float64(2*o.keys)/churnTime.Seconds(), mib(end.DuBytes), end.Tombs,
		cnt.collected.Load(), cnt.gcPasses.Load())

	if o.throughput > 0 {
		if err := throughput(ctx, c, p, o, &cnt, emit); err != nil {
			return err
		}
	}
	return nil
}

func mib(bs []int64) string {
	var parts []string
	for _, b := range bs {
		parts = append(parts, fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)))
	}
	return strings.Join(parts, ", ")
}

// churn puts keys 0..keys-1 with clients workers; after key i is put, key
// i-window is deleted, and at the end the last window keys are.
func churn(ctx context.Context, p *proposer.Client, o options, cnt *counters) error {
	value := make([]byte, o.valueSize)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, o.clients)
	for range o.clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= o.keys+o.window || ctx.Err() != nil {
					return
				}
				if i < o.keys {
					if err := retry(ctx, func(ctx context.Context) error { _, err := p.Put(ctx, churnKey(i), value); return err }); err != nil {
						errs <- fmt.Errorf("put %s: %w", churnKey(i), err)
						return
					}
					cnt.created.Add(1)
				}
				if j := i - o.window; j >= 0 {
					if err := retry(ctx, func(ctx context.Context) error { return p.Delete(ctx, churnKey(j)) }); err != nil {
						errs <- fmt.Errorf("delete %s: %w", churnKey(j), err)
						return
					}
					cnt.deleted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func churnKey(i int) []byte { return []byte(fmt.Sprintf("churn/%09d", i)) }

// retry runs op until it succeeds, retrying unknown outcomes and contention
// a few times (a put and a delete are idempotent here: each key has one
// writer at a time).
func retry(ctx context.Context, op func(context.Context) error) error {
	var err error
	for range 5 {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = op(octx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// gcLoop runs GC passes until ctx ends, with a proposer of its own.
func gcLoop(ctx context.Context, c *cluster, _ *proposer.Client, o options, cnt *counters) {
	p, err := proposer.New(ctx, proposer.Config{Endpoints: c.endpoints})
	if err != nil {
		fmt.Fprintf(os.Stderr, "gc: %v\n", err)
		return
	}
	defer p.Close()
	for ctx.Err() == nil {
		t0 := time.Now()
		res, err := gcPass(ctx, c, p, o)
		d := time.Since(t0)
		cnt.gcPasses.Add(1)
		cnt.collected.Add(res.collected)
		cnt.gcKeys.Add(res.collected)
		cnt.gcNanos.Add(int64(d))
		if err != nil && ctx.Err() == nil {
			cnt.gcErrors.Add(1)
			fmt.Fprintf(os.Stderr, "gc pass: %v\n", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(o.gcInterval):
		}
	}
}

// throughput measures put×tpClients on fresh keys for o.throughput without
// GC, then as long while GC collects the churn's tombstones (written with
// GC off), and reports both and GC's keys/s.
func throughput(ctx context.Context, c *cluster, p *proposer.Client, o options, cnt *counters, emit func(string) sample) error {
	enc := json.NewEncoder(os.Stdout)
	type phase struct {
		Label    string  `json:"label"`
		Phase    string  `json:"phase"`
		Clients  int     `json:"clients"`
		Seconds  float64 `json:"seconds"`
		Puts     int64   `json:"puts"`
		PutsPerS float64 `json:"puts_per_s"`
		GCKeys   int64   `json:"gc_collected,omitempty"`
		GCPerS   float64 `json:"gc_keys_per_s,omitempty"`
		GCPasses int64   `json:"gc_passes,omitempty"`
	}
	puts := func(prefix string, d time.Duration) (int64, time.Duration, error) {
		var n, seq atomic.Int64
		value := make([]byte, o.valueSize)
		pctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		t0 := time.Now()
		var wg sync.WaitGroup
		for range o.tpClients {
			wg.Go(func() {
				for pctx.Err() == nil {
					k := []byte(fmt.Sprintf("%s/%09d", prefix, seq.Add(1)))
					if _, err := p.Put(pctx, k, value); err == nil {
						n.Add(1)
					}
				}
			})
		}
		wg.Wait()
		return n.Load(), time.Since(t0), nil
	}
	n, d, err := puts("tp-nogc", o.throughput)
	if err != nil {
		return err
	}
	_ = enc.Encode(phase{Label: o.label, Phase: "put-without-gc", Clients: o.tpClients, Seconds: d.Seconds(), Puts: n, PutsPerS: float64(n) / d.Seconds()})
	fmt.Fprintf(os.Stderr, "%s: put×%d without GC: %.0f puts/s\n", o.label, o.tpClients, float64(n)/d.Seconds())
	emit("after-put-without-gc")

	// GC of the churn's tombstones beside the puts: passes back to back.
	gctx, stopGC := context.WithCancel(ctx)
	var before counters
	gco := o
	gco.gcInterval = 0
	var wg sync.WaitGroup
	wg.Go(func() { gcLoop(gctx, c, p, gco, &before) })
	n, d, err = puts("tp-gc", o.throughput)
	stopGC()
	wg.Wait()
	if err != nil {
		return err
	}
	gcSecs := float64(before.gcNanos.Load()) / 1e9
	ph := phase{Label: o.label, Phase: "put-with-gc", Clients: o.tpClients, Seconds: d.Seconds(), Puts: n, PutsPerS: float64(n) / d.Seconds(),
		GCKeys: before.gcKeys.Load(), GCPasses: before.gcPasses.Load()}
	if gcSecs > 0 {
		ph.GCPerS = float64(ph.GCKeys) / gcSecs
	}
	_ = enc.Encode(ph)
	fmt.Fprintf(os.Stderr, "%s: put×%d with GC running: %.0f puts/s; GC collected %d tombstones in %d passes, %.0f keys/s of pass time\n",
		o.label, o.tpClients, ph.PutsPerS, ph.GCKeys, ph.GCPasses, ph.GCPerS)
	cnt.collected.Add(before.collected.Load())
	emit("after-put-with-gc")

	// GC alone on what is left, for its throughput without load.
	o.gcRate = 0
	g, err := proposer.New(ctx, proposer.Config{Endpoints: c.endpoints})
	if err != nil {
		return err
	}
	defer g.Close()
	t0 := time.Now()
	var total int64
	for {
		res, err := gcPass(ctx, c, g, o)
		if err != nil {
			return err
		}
		total += res.collected
		if res.collected == 0 {
			break
		}
	}
	d = time.Since(t0)
	cnt.collected.Add(total)
	_ = enc.Encode(phase{Label: o.label, Phase: "gc-alone", Seconds: d.Seconds(), GCKeys: total, GCPerS: float64(total) / d.Seconds()})
	fmt.Fprintf(os.Stderr, "%s: GC alone collected %d more tombstones in %s (%.0f keys/s)\n", o.label, total, d.Round(time.Millisecond), float64(total)/d.Seconds())
	emit("end")
	return nil
}
