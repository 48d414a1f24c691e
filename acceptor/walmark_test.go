package acceptor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// emptyDir removes everything in dir, as a lost (replaced) volume would.
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// openClose opens an acceptor on opts, admits it (a durable write) and
// closes it, returning its incarnation.
func openClose(t *testing.T, opts Options) uint64 {
	t.Helper()
	n := startAdmitted(t, opts)
	inc := n.acc.Incarnation()
	n.stop()
	return inc
}

// TestWALVolumeLostIsRefused: with the WAL on a volume of its own, losing
// that volume (or the data volume, or swapping logs between stores) is
// refused at Open with ErrWALMismatch, instead of opening a store that
// keeps its incarnation but forgot what only its log held.
func TestWALVolumeLostIsRefused(t *testing.T) {
	withWAL := func(t *testing.T) Options {
		opts := testOptions(t)
		opts.WALDir = t.TempDir()
		return opts
	}
	refused := func(t *testing.T, opts Options, want string) {
		t.Helper()
		acc, err := Open(opts)
		if err == nil {
			acc.Close()
			t.Fatalf("Open succeeded; want ErrWALMismatch (%s)", want)
		}
		if !errors.Is(err, ErrWALMismatch) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Open: %v; want ErrWALMismatch saying %q", err, want)
		}
	}

	t.Run("reopen", func(t *testing.T) {
		opts := withWAL(t)
		inc := openClose(t, opts)
		if got := openClose(t, opts); got != inc {
			t.Fatalf("incarnation %x after a reopen, want %x", got, inc)
		}
		b, err := os.ReadFile(filepath.Join(opts.WALDir, walMarkName))
		if err != nil || !strings.Contains(string(b), fmt.Sprintf("%016x", inc)) {
			t.Fatalf("marker: %q, %v", b, err)
		}
	})
	t.Run("WAL volume lost", func(t *testing.T) {
		opts := withWAL(t)
		openClose(t, opts)
		emptyDir(t, opts.WALDir)
		refused(t, opts, "the WAL volume was lost or replaced")
	})
	t.Run("data volume lost", func(t *testing.T) {
		opts := withWAL(t)
		openClose(t, opts)
		emptyDir(t, opts.Dir)
		refused(t, opts, "is empty but the WAL directory")
	})
	t.Run("another store's WAL", func(t *testing.T) {
		a, b := withWAL(t), withWAL(t)
		openClose(t, a)
		openClose(t, b)
		a.WALDir, b.WALDir = b.WALDir, a.WALDir
		refused(t, a, "holds the log of incarnation")
	})
	t.Run("store from before markers", func(t *testing.T) {
		opts := withWAL(t)
		inc := openClose(t, opts)
		if err := os.Remove(filepath.Join(opts.WALDir, walMarkName)); err != nil {
			t.Fatal(err)
		}
		if got := openClose(t, opts); got != inc {
			t.Fatalf("incarnation %x, want %x", got, inc)
		}
		if _, err := os.Stat(filepath.Join(opts.WALDir, walMarkName)); err != nil {
			t.Fatalf("the marker was not written again: %v", err)
		}
	})
	t.Run("both volumes lost", func(t *testing.T) {
		opts := withWAL(t)
		inc := openClose(t, opts)
		emptyDir(t, opts.Dir)
		emptyDir(t, opts.WALDir)
		if got := openClose(t, opts); got == inc {
			t.Fatalf("incarnation %x kept on new storage", got)
		}
	})
}
