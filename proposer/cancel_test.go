package proposer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/proposer"
)

// hangBound is how long a cancelled caller may take to return before the
// test calls it a hang. It bounds a deadlock, it measures nothing.
const hangBound = 30 * time.Second

// A change function that does not return must not hold up callers that
// leave: neither its own caller nor the others waiting on the same key.
// Their changes never land.
func TestSlowChangeDoesNotBlockCancellation(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs(), nil)
	key := []byte("slow")

	started, release := make(chan struct{}), make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	slowCtx, cancelSlow := context.WithCancel(context.Background())
	slowErr := make(chan error, 1)
	go func() {
		_, err := c.Change(slowCtx, key, func(proposer.Value, bool) ([]byte, error) {
			close(started)
			<-release
			return []byte("slow"), nil
		})
		slowErr <- err
	}()
	<-started

	// A second caller queues behind the slow change on the same key.
	putCtx, cancelPut := context.WithCancel(context.Background())
	putErr := make(chan error, 1)
	go func() {
		_, err := c.Put(putCtx, key, []byte("queued"))
		putErr <- err
	}()

	cancelSlow()
	select {
	case err := <-slowErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled slow Change: %v, want context.Canceled (its value was never sent)", err)
		}
	case <-time.After(hangBound):
		t.Fatal("a cancelled Change did not return while its change function ran")
	}
	cancelPut()
	select {
	case err := <-putErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Put: %v, want context.Canceled", err)
		}
	case <-time.After(hangBound):
		t.Fatal("a cancelled Put queued behind a slow change did not return")
	}

	// Once the function returns, neither change may land: both callers
	// were told they had no effect.
	close(release)
	v := mustPut(t, c, "other", "x") // the client still works
	_ = v
	if got, err := c.Get(ctxT(t), key); !errors.Is(err, proposer.ErrNotFound) {
		t.Errorf("Get after both callers left: %q, %v; want not found", got.Data, err)
	}
}
