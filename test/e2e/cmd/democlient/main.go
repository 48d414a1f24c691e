// Command democlient is the client of `make demo`: it links the proposer
// library, talks to the acceptors at their pod IPs, and keeps writing,
// reading and compare-and-swapping a few keys until it is interrupted,
// printing a line of progress (operations, errors, epoch, members) every
// --every. Each read is checked against the last acknowledged write of the
// key; a mismatch is reported as LOST and makes the exit status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/proposer"
)

func main() {
	endpoints := flag.String("endpoints", "", "comma-separated acceptor addresses (pod IP:port)")
	keys := flag.Int("keys", 4, "number of keys written in turn")
	every := flag.Duration("every", 2*time.Second, "how often to print progress")
	pause := flag.Duration("pause", 20*time.Millisecond, "pause between operations")
	duration := flag.Duration("duration", 0, "stop after this long (0: run until interrupted)")
	tlsDir := flag.String("tls-dir", "", "directory with ca.crt, tls.crt and tls.key (the cluster's client Secret); empty: plaintext")
	flag.Parse()
	if *endpoints == "" {
		fmt.Fprintln(os.Stderr, "democlient: --endpoints is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, proposer.Config{Endpoints: strings.Split(*endpoints, ","), TLSDir: *tlsDir}, *keys, *every, *pause); err != nil {
		fmt.Fprintf(os.Stderr, "democlient: %v\n", err)
		os.Exit(1)
	}
}

// stats counts what the client did.
type stats struct {
	puts, gets, cas, casMismatch, unknown, failed, lost int
}

func run(ctx context.Context, pc proposer.Config, nkeys int, every, pause time.Duration) error {
	endpoints := pc.Endpoints
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := proposer.New(dctx, pc)
	if err != nil {
		return fmt.Errorf("while connecting to %v: %w", endpoints, err)
	}
	defer c.Close()
	fmt.Printf("client: connected; %s\n", describe(c.Config()))

	var st stats
	// last holds each key's last acknowledged value; a key whose last write
	// had an unknown outcome is not checked until the next acknowledged one.
	last := make(map[string]proposer.Value)
	tick := time.NewTicker(every)
	defer tick.Stop()
	start := time.Now()
	lastEpoch := c.Config().Epoch
	for i := 0; ctx.Err() == nil; i++ {
		key := fmt.Sprintf("demo/key-%d", i%nkeys)
		step(ctx, c, key, i, last, &st)
		select {
		case <-tick.C:
			cfg := c.Config()
			mark := ""
			if cfg.Epoch != lastEpoch {
				mark, lastEpoch = "  <- configuration changed", cfg.Epoch
			}
			fmt.Printf("client: %5.1fs puts=%d gets=%d cas=%d (mismatch %d) unknown=%d failed=%d lost=%d  %s%s\n",
				time.Since(start).Seconds(), st.puts, st.gets, st.cas, st.casMismatch, st.unknown, st.failed, st.lost,
				describe(cfg), mark)
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
	fmt.Printf("client: done after %.1fs: puts=%d gets=%d cas=%d unknown=%d failed=%d lost=%d; %s\n",
		time.Since(start).Seconds(), st.puts, st.gets, st.cas, st.unknown, st.failed, st.lost, describe(c.Config()))
	if st.lost > 0 {
		return fmt.Errorf("%d reads did not return the last acknowledged write", st.lost)
	}
	return nil
}

// step does one put, get or compare-and-swap of key, in turn.
func step(ctx context.Context, c *proposer.Client, key string, i int, last map[string]proposer.Value, st *stats) {
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	data := []byte(fmt.Sprintf("value-%d", i))
	switch (i / 4) % 3 {
	case 0:
		v, err := c.Put(octx, []byte(key), data)
		record(ctx, key, v, err, last, st)
		st.puts++
	case 1:
		v, err := c.Get(octx, []byte(key))
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, proposer.ErrNotFound) {
				st.failed++
			}
			return
		}
		st.gets++
		if want, ok := last[key]; ok && v.Version < want.Version {
			st.lost++
			fmt.Printf("client: LOST: %s read version %d, acknowledged %d\n", key, v.Version, want.Version)
		}
	case 2:
		cur, ok := last[key]
		if !ok {
			return
		}
		v, err := c.CompareAndSwap(octx, []byte(key), cur.Version, data)
		if errors.Is(err, proposer.ErrVersionMismatch) {
			st.casMismatch++
			delete(last, key)
			return
		}
		record(ctx, key, v, err, last, st)
		st.cas++
	}
}

func record(ctx context.Context, key string, v proposer.Value, err error, last map[string]proposer.Value, st *stats) {
	switch {
	case err == nil:
		last[key] = v
	case errors.Is(err, proposer.ErrUnknownOutcome):
		st.unknown++
		delete(last, key)
	case ctx.Err() == nil:
		st.failed++
		delete(last, key)
	}
}

func describe(cfg membership.Config) string {
	var ms []string
	for _, m := range cfg.Members {
		ms = append(ms, m.ID)
	}
	slices.Sort(ms)
	return fmt.Sprintf("epoch=%d members=%d [%s]", cfg.Epoch, len(ms), strings.Join(ms, " "))
}
