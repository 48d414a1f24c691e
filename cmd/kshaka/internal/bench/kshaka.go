package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/kshaka-io/kshaka/proposer"
)

// Kshaka is a Target backed by proposer clients, used round-robin (one
// client per "connection"; each client keeps one gRPC connection per
// acceptor and batches the requests of the workers that share it).
type Kshaka struct {
	name    string
	clients []*proposer.Client
	next    atomic.Uint64
}

// NewKshaka connects conns proposer clients to the acceptors at endpoints,
// with the rest of base (its TLS or TLSDir); name names the target in
// reports.
func NewKshaka(ctx context.Context, name string, endpoints []string, conns int, base proposer.Config) (*Kshaka, error) {
	k := &Kshaka{name: name}
	base.Endpoints = endpoints
	for range max(conns, 1) {
		c, err := proposer.New(ctx, base)
		if err != nil {
			_ = k.Close()
			return nil, fmt.Errorf("while connecting to kshaka at %v: %w", endpoints, err)
		}
		k.clients = append(k.clients, c)
	}
	return k, nil
}

func (k *Kshaka) client() *proposer.Client {
	return k.clients[k.next.Add(1)%uint64(len(k.clients))]
}

// Name implements Target.
func (k *Kshaka) Name() string { return k.name }

// Put implements Target.
func (k *Kshaka) Put(ctx context.Context, key, value []byte) error {
	_, err := k.client().Put(ctx, key, value)
	return kshakaErr(err)
}

// Get implements Target.
func (k *Kshaka) Get(ctx context.Context, key []byte) error {
	_, err := k.client().Get(ctx, key)
	if errors.Is(err, proposer.ErrNotFound) {
		return nil
	}
	return kshakaErr(err)
}

// Increment implements Target: read, then CompareAndSwap from the version
// read; a mismatch carries the current value, so a retry needs no re-read.
func (k *Kshaka) Increment(ctx context.Context, key []byte) (int, error) {
	c := k.client()
	cur, err := c.Get(ctx, key)
	if err != nil && !errors.Is(err, proposer.ErrNotFound) {
		return 0, kshakaErr(err)
	}
	for conflicts := 0; ; conflicts++ {
		n, _ := strconv.Atoi(string(cur.Data))
		_, err := c.CompareAndSwap(ctx, key, cur.Version, []byte(strconv.Itoa(n+1)))
		var mm *proposer.VersionMismatchError
		switch {
		case err == nil:
			return conflicts, nil
		case errors.As(err, &mm):
			cur = mm.Current
		default:
			return conflicts, kshakaErr(err)
		}
	}
}

// ReadCounter implements Contender.
func (k *Kshaka) ReadCounter(ctx context.Context, key []byte) (int64, uint64, error) {
	v, err := k.client().Get(ctx, key)
	if errors.Is(err, proposer.ErrNotFound) {
		return 0, v.Version, nil
	}
	if err != nil {
		return 0, 0, kshakaErr(err)
	}
	n, err := parseCounter(key, v.Data)
	return n, v.Version, err
}

// CASCounter implements Contender with one CompareAndSwap.
func (k *Kshaka) CASCounter(ctx context.Context, key []byte, version uint64, n int64) error {
	_, err := k.client().CompareAndSwap(ctx, key, version, []byte(strconv.FormatInt(n+1, 10)))
	if errors.Is(err, proposer.ErrVersionMismatch) {
		return fmt.Errorf("%w: %w", ErrMismatch, err)
	}
	return kshakaErr(err)
}

// ChangeCounter implements Contender with one Change; the library retries
// its conflicts internally, so it reports none.
func (k *Kshaka) ChangeCounter(ctx context.Context, key []byte) (int, error) {
	_, err := k.client().Change(ctx, key, func(cur proposer.Value, _ bool) ([]byte, error) {
		n, err := parseCounter(key, cur.Data)
		if err != nil {
			return nil, err
		}
		return []byte(strconv.FormatInt(n+1, 10)), nil
	})
	return 0, kshakaErr(err)
}

// Close implements Target.
func (k *Kshaka) Close() error {
	var errs []error
	for _, c := range k.clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func kshakaErr(err error) error {
	if errors.Is(err, proposer.ErrUnknownOutcome) {
		return fmt.Errorf("%w: %w", ErrUnknown, err)
	}
	return err
}
