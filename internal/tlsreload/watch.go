package tlsreload

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often the files are polled by default.
const DefaultInterval = 2 * time.Second

// Options configure a watcher. The zero value polls every DefaultInterval
// and reports nothing.
type Options struct {
	// Interval between polls. Default 2s; negative: never poll (Poll by
	// hand; tests).
	Interval time.Duration
	// OnReload, when set, is called after every poll that found new
	// contents: with nil when they were loaded, with the error when they
	// were not (once per distinct bad content). It is called from the
	// watcher's goroutine (or Poll's caller) and must not block for long.
	OnReload func(err error)
}

// watcher holds a value loaded from files and reloads it when the files'
// contents change (see the package doc).
type watcher[T any] struct {
	paths    []string
	load     func(contents [][]byte) (*T, error)
	onReload func(error)

	cur  atomic.Pointer[T]
	mu   sync.Mutex // serializes polls
	last [sha256.Size]byte
	bad  [sha256.Size]byte // the digest of the last bad content reported

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// newWatcher loads the files once (an error names the file) and starts
// polling them.
func newWatcher[T any](paths []string, load func([][]byte) (*T, error), o Options) (*watcher[T], error) {
	w := &watcher[T]{paths: paths, load: load, onReload: o.OnReload, stop: make(chan struct{}), done: make(chan struct{})}
	contents, digest, err := w.read()
	if err != nil {
		return nil, err
	}
	v, err := load(contents)
	if err != nil {
		return nil, err
	}
	w.cur.Store(v)
	w.last = digest
	interval := o.Interval
	if interval == 0 {
		interval = DefaultInterval
	}
	if interval < 0 {
		close(w.done)
		return w, nil
	}
	go w.run(interval)
	return w, nil
}

func (w *watcher[T]) run(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.poll()
		}
	}
}

// current returns the material loaded last.
func (w *watcher[T]) current() *T { return w.cur.Load() }

// close stops polling and waits for a poll in progress; idempotent.
func (w *watcher[T]) close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// poll reloads the files if their contents changed and read the same twice.
// It reports whether it loaded new material.
func (w *watcher[T]) poll() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, digest, err := w.read()
	if err == nil && digest == w.last {
		return false
	}
	// Something changed (or a file is unreadable). Read again: a writer
	// may be half-way through, or between the certificate and the key.
	again, digest2, err2 := w.read()
	switch {
	case (err == nil) != (err2 == nil):
		return false // in flux
	case err != nil:
		if err.Error() != err2.Error() {
			return false
		}
		w.report(sha256.Sum256([]byte(err.Error())), err)
		return false
	case digest != digest2:
		return false // in flux
	}
	v, err := w.load(again)
	if err != nil {
		w.report(digest, err)
		return false
	}
	w.cur.Store(v)
	w.last, w.bad = digest, [sha256.Size]byte{}
	if w.onReload != nil {
		w.onReload(nil)
	}
	return true
}

// report tells OnReload about err, unless it already did for this content.
func (w *watcher[T]) report(digest [sha256.Size]byte, err error) {
	if digest == w.bad {
		return
	}
	w.bad = digest
	if w.onReload != nil {
		w.onReload(fmt.Errorf("kept the current TLS material: %w", err))
	}
}

// read reads every file and returns the contents and their digest.
func (w *watcher[T]) read() ([][]byte, [sha256.Size]byte, error) {
	h := sha256.New()
	out := make([][]byte, len(w.paths))
	var errs []error
	for i, p := range w.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("while reading %s: %w", p, err))
			continue
		}
		out[i] = b
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	var d [sha256.Size]byte
	if err := errors.Join(errs...); err != nil {
		return nil, d, err
	}
	copy(d[:], h.Sum(nil))
	return out, d, nil
}
