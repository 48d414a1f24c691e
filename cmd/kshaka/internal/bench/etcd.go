package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Etcd is a Target backed by etcd clients (round-robin), with the same
// semantics as Kshaka: Put, linearizable Get, and CAS as a transaction on
// the key's ModRevision.
type Etcd struct {
	clients []*clientv3.Client
	next    atomic.Uint64
}

// NewEtcd connects conns etcd clients to endpoints.
func NewEtcd(ctx context.Context, endpoints []string, conns int) (*Etcd, error) {
	e := &Etcd{}
	for range max(conns, 1) {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   endpoints,
			DialTimeout: 5 * time.Second,
			Context:     ctx,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			_ = e.Close()
			return nil, fmt.Errorf("while connecting to etcd at %v: %w", endpoints, err)
		}
		e.clients = append(e.clients, c)
	}
	return e, nil
}

func (e *Etcd) client() *clientv3.Client {
	return e.clients[e.next.Add(1)%uint64(len(e.clients))]
}

// Name implements Target.
func (e *Etcd) Name() string { return "etcd" }

// Put implements Target.
func (e *Etcd) Put(ctx context.Context, key, value []byte) error {
	_, err := e.client().Put(ctx, string(key), string(value))
	return etcdErr(err)
}

// Get implements Target (linearizable: the client's default).
func (e *Etcd) Get(ctx context.Context, key []byte) error {
	_, err := e.client().Get(ctx, string(key))
	return etcdErr(err)
}

// Increment implements Target: read, then a transaction that writes only if
// ModRevision is unchanged and otherwise returns the current value, so a
// retry needs no re-read (the same shape as Kshaka's).
func (e *Etcd) Increment(ctx context.Context, key []byte) (int, error) {
	c, k := e.client(), string(key)
	resp, err := c.Get(ctx, k)
	if err != nil {
		return 0, etcdErr(err)
	}
	var val []byte
	var rev int64
	if len(resp.Kvs) > 0 {
		val, rev = resp.Kvs[0].Value, resp.Kvs[0].ModRevision
	}
	for conflicts := 0; ; conflicts++ {
		n, _ := strconv.Atoi(string(val))
		txn, err := c.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(k), "=", rev)).
			Then(clientv3.OpPut(k, strconv.Itoa(n+1))).
			Else(clientv3.OpGet(k)).
			Commit()
		if err != nil {
			return conflicts, etcdErr(err)
		}
		if txn.Succeeded {
			return conflicts, nil
		}
		val, rev = nil, 0
		if kvs := txn.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			val, rev = kvs[0].Value, kvs[0].ModRevision
		}
	}
}

// ReadCounter implements Contender; the version is the key's ModRevision
// (0 when absent).
func (e *Etcd) ReadCounter(ctx context.Context, key []byte) (int64, uint64, error) {
	resp, err := e.client().Get(ctx, string(key))
	if err != nil {
		return 0, 0, etcdErr(err)
	}
	if len(resp.Kvs) == 0 {
		return 0, 0, nil
	}
	n, err := parseCounter(key, resp.Kvs[0].Value)
	return n, uint64(resp.Kvs[0].ModRevision), err
}

// CASCounter implements Contender with one transaction on ModRevision.
func (e *Etcd) CASCounter(ctx context.Context, key []byte, version uint64, n int64) error {
	k := string(key)
	txn, err := e.client().Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(k), "=", int64(version))).
		Then(clientv3.OpPut(k, strconv.FormatInt(n+1, 10))).
		Commit()
	if err != nil {
		return etcdErr(err)
	}
	if !txn.Succeeded {
		return fmt.Errorf("%w: key %q is no longer at revision %d", ErrMismatch, key, version)
	}
	return nil
}

// ChangeCounter implements Contender: etcd has no read-modify-write, so it
// is Increment's loop (read, then a transaction on ModRevision, retried with
// the current value until it succeeds).
func (e *Etcd) ChangeCounter(ctx context.Context, key []byte) (int, error) {
	return e.Increment(ctx, key)
}

// Close implements Target.
func (e *Etcd) Close() error {
	var errs []error
	for _, c := range e.clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// etcdErr marks errors after which a write may have been applied.
func etcdErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", ErrUnknown, err)
	}
	return err
}
