package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/kshaka-io/kshaka/proposer"
)

// DefaultConcurrency is how many keys Dump and Load have in flight.
const DefaultConcurrency = 64

// DefaultPageSize is how many keys MergeKeys asks a member for at a time.
const DefaultPageSize = 1000

// PageFunc returns up to limit of one acceptor's stored keys strictly after
// after (nil: from the first), in ascending byte order (Admin ListKeys). A
// page shorter than limit is the last one.
type PageFunc func(ctx context.Context, after []byte, limit int) ([][]byte, error)

// Source is one acceptor to list keys from.
type Source struct {
	// Name identifies the acceptor in errors (its ID and address).
	Name string
	Page PageFunc
}

// Keys iterates over the union of the keys of several acceptors, in
// ascending order, each key once (a merge of their sorted listings). Listed
// from a prepare quorum, it includes every key chosen on any accept quorum,
// since the two intersect. An acceptor whose listing fails is left out
// while at least quorum acceptors remain: from there on the others still
// form a quorum.
type Keys struct {
	quorum, pageSize int
	curs             []*cursor
}

type cursor struct {
	src   Source
	buf   [][]byte
	after []byte
	last  bool // the page in buf is the last one
	err   error
}

func (c *cursor) head() []byte {
	if len(c.buf) == 0 {
		return nil
	}
	return c.buf[0]
}

// needs reports whether the cursor has to fetch a page before it has a head.
func (c *cursor) needs() bool { return c.err == nil && len(c.buf) == 0 && !c.last }

func (c *cursor) fetch(ctx context.Context, limit int) {
	page, err := c.src.Page(ctx, c.after, limit)
	if err != nil {
		c.err = fmt.Errorf("listing the keys of %s: %w", c.src.Name, err)
		return
	}
	prev := c.after
	for _, k := range page {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			c.err = fmt.Errorf("listing the keys of %s: key %q does not follow %q (the acceptor must list keys in ascending order)", c.src.Name, k, prev)
			return
		}
		prev = k
	}
	c.buf = page
	c.last = len(page) < limit
	if len(page) > 0 {
		c.after = page[len(page)-1]
	}
}

// MergeKeys lists the keys of sources, leaving out failing ones while at
// least quorum remain. pageSize 0 means DefaultPageSize.
func MergeKeys(sources []Source, quorum, pageSize int) *Keys {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	k := &Keys{quorum: max(quorum, 1), pageSize: pageSize}
	for _, s := range sources {
		k.curs = append(k.curs, &cursor{src: s})
	}
	return k
}

// Next returns the next key, or io.EOF after the last one. It fails when
// fewer than quorum acceptors can still list their keys.
func (k *Keys) Next(ctx context.Context) ([]byte, error) {
	var wg sync.WaitGroup
	for _, c := range k.curs {
		if c.needs() {
			wg.Go(func() { c.fetch(ctx, k.pageSize) })
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var alive int
	var errs []error
	var low []byte
	for _, c := range k.curs {
		if c.err != nil {
			errs = append(errs, c.err)
			continue
		}
		alive++
		if h := c.head(); h != nil && (low == nil || bytes.Compare(h, low) < 0) {
			low = h
		}
	}
	if alive < k.quorum {
		return nil, fmt.Errorf("fewer than %d acceptors (a prepare quorum) could list their keys: %w", k.quorum, errors.Join(errs...))
	}
	if low == nil {
		return nil, io.EOF
	}
	for _, c := range k.curs {
		if c.err == nil && bytes.Equal(c.head(), low) {
			c.buf = c.buf[1:]
		}
	}
	return low, nil
}

// KeyIterator is what Dump reads keys from; *Keys is one.
type KeyIterator interface {
	// Next returns the next key in strictly increasing order, or io.EOF.
	Next(ctx context.Context) ([]byte, error)
}

// Stats are the counters of a Dump or Load in progress, safe to read from
// another goroutine.
type Stats struct {
	// Keys counts the keys done: read (Dump) or restored (Load).
	Keys atomic.Int64
	// Empty counts the keys Dump listed that were never written (an
	// acceptor held only a promise for them); they are not in the backup.
	Empty atomic.Int64
	// Tombstones counts the deleted keys among Keys.
	Tombstones atomic.Int64
	// Bytes counts the data bytes of Keys.
	Bytes atomic.Int64
}

func (s *Stats) count(r proposer.Record) {
	if r.Version == 0 {
		s.Empty.Add(1)
	}
	s.Keys.Add(1)
	s.Bytes.Add(int64(len(r.Data)))
	if r.Deleted {
		s.Tombstones.Add(1)
	}
}

// ExportFunc reads a key's register value linearizably (proposer.Client.Export).
type ExportFunc func(ctx context.Context, key []byte) (proposer.Record, error)

// RestoreFunc writes a record into a key (proposer.Client.Restore).
type RestoreFunc func(ctx context.Context, key []byte, r proposer.Record) error

// Dump reads every key of keys with export, concurrency keys at a time
// (0: DefaultConcurrency), and adds its record to w in key order; keys
// that were never written are left out. Memory stays bounded by the
// records in flight. It stops at the first error. stats may be nil.
func Dump(ctx context.Context, keys KeyIterator, export ExportFunc, w *Writer, concurrency int, stats *Stats) error {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	if stats == nil {
		stats = &Stats{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type slot struct {
		key  []byte
		rec  proposer.Record
		err  error
		done chan struct{}
	}
	// The lister starts a read per key and queues it; the queue's capacity
	// bounds the reads in flight, and records are written in queue order.
	slots := make(chan *slot, concurrency-1)
	var listErr error // written before slots is closed
	go func() {
		defer close(slots)
		for {
			k, err := keys.Next(ctx)
			if err == io.EOF {
				return
			}
			if err != nil {
				listErr = err
				return
			}
			s := &slot{key: k, done: make(chan struct{})}
			go func() {
				defer close(s.done)
				s.rec, s.err = export(ctx, s.key)
			}()
			select {
			case slots <- s:
			case <-ctx.Done():
				<-s.done
				return
			}
		}
	}()
	var err error
	for s := range slots {
		<-s.done
		if err != nil {
			continue // draining after an error
		}
		if s.err != nil {
			err = fmt.Errorf("while reading key %q: %w", s.key, s.err)
			cancel()
			continue
		}
		stats.count(s.rec)
		if s.rec.Version == 0 {
			continue
		}
		if aerr := w.Add(Record{Key: s.key, Version: s.rec.Version, Deleted: s.rec.Deleted, Data: s.rec.Data}); aerr != nil {
			err = aerr
			cancel()
		}
	}
	if err != nil {
		return err
	}
	if listErr != nil {
		return fmt.Errorf("while listing keys: %w", listErr)
	}
	return nil
}

// Load restores every record of r with restore, concurrency records at a
// time (0: DefaultConcurrency). It stops at the first error (a conflict, an
// unreachable cluster, a corrupt record) and returns it once the records
// in flight have ended. It does not check the backup first: Verify it
// before, so that nothing is restored from a corrupt file. stats may be nil.
func Load(ctx context.Context, r *Reader, restore RestoreFunc, concurrency int, stats *Stats) error {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	if stats == nil {
		stats = &Stats{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	fail := func(err error) {
		once.Do(func() { first = err; cancel() })
	}
	sem := make(chan struct{}, concurrency)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(err)
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			pr := proposer.Record{Version: rec.Version, Deleted: rec.Deleted, Data: rec.Data}
			if err := restore(ctx, rec.Key, pr); err != nil {
				fail(fmt.Errorf("while restoring key %q: %w", rec.Key, err))
				return
			}
			stats.count(pr)
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
