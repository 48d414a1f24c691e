package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kshaka-io/kshaka/proposer"
)

// demoKey is the key the self-check of `kshaka local --demo` writes.
const demoKey = "kshaka-demo"

// runDemo is the self-check of `kshaka local --demo`: it writes, reads and
// compare-and-swaps one key through the proposer library, printing each
// step, and fails on the first step that does not behave as it must.
func runDemo(ctx context.Context, out io.Writer, endpoints []string, tlsDir string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	fmt.Fprintf(out, "Self-check (--demo): writing key %q through the proposer library\n", demoKey)
	p, err := proposer.New(ctx, proposer.Config{
		Endpoints:      endpoints,
		TLSDir:         tlsDir,
		DialTimeout:    5 * time.Second,
		RequestTimeout: 5 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("self-check: while connecting: %w", err)
	}
	defer p.Close()

	key := []byte(demoKey)
	step := func(what string, format string, args ...any) {
		fmt.Fprintf(out, "  %-44s -> %s\n", what, fmt.Sprintf(format, args...))
	}
	fail := func(what string, err error) error {
		step(what, "FAILED: %v", err)
		return fmt.Errorf("self-check failed at %s: %w", what, err)
	}

	first := []byte("hello from kshaka local")
	what := fmt.Sprintf("put %s %q", demoKey, first)
	v1, err := p.Put(ctx, key, first)
	if err != nil {
		return fail(what, err)
	}
	step(what, "ok, version %d", v1.Version)

	what = "get " + demoKey
	got, err := p.Get(ctx, key)
	switch {
	case err != nil:
		return fail(what, err)
	case !bytes.Equal(got.Data, first) || got.Version != v1.Version:
		return fail(what, fmt.Errorf("read %q at version %d, wrote %q at version %d", got.Data, got.Version, first, v1.Version))
	}
	step(what, "%q, version %d (linearizable read)", got.Data, got.Version)

	second := []byte("hello again")
	what = fmt.Sprintf("cas %s %d %q", demoKey, v1.Version, second)
	v2, err := p.CompareAndSwap(ctx, key, v1.Version, second)
	if err != nil {
		return fail(what, err)
	}
	step(what, "ok, version %d", v2.Version)

	what = fmt.Sprintf("cas %s %d %q", demoKey, v1.Version, "stale")
	_, err = p.CompareAndSwap(ctx, key, v1.Version, []byte("stale"))
	var vm *proposer.VersionMismatchError
	switch {
	case err == nil:
		return fail(what, errors.New("a compare-and-swap on an old version succeeded"))
	case !errors.As(err, &vm):
		return fail(what, err)
	}
	step(what, "refused as it must be: the key is at version %d", vm.Current.Version)

	what = "get " + demoKey
	got, err = p.Get(ctx, key)
	switch {
	case err != nil:
		return fail(what, err)
	case !bytes.Equal(got.Data, second) || got.Version != v2.Version:
		return fail(what, fmt.Errorf("read %q at version %d, expected %q at version %d", got.Data, got.Version, second, v2.Version))
	}
	step(what, "%q, version %d", got.Data, got.Version)
	fmt.Fprintln(out, "Self-check passed: 5 of 5 steps behaved as expected.")
	return nil
}
