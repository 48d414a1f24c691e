package bench

import (
	"context"
	"errors"
)

// Target is a store under test. Its methods must be safe for concurrent use.
type Target interface {
	// Name identifies the target in reports ("kshaka", "etcd").
	Name() string
	// Put writes value under key.
	Put(ctx context.Context, key, value []byte) error
	// Get reads key linearizably. A missing key is not an error.
	Get(ctx context.Context, key []byte) error
	// Increment adds one to the decimal counter under key with
	// compare-and-swap, retrying on conflicts until it succeeds; it returns
	// how many conflicts it retried.
	Increment(ctx context.Context, key []byte) (conflicts int, err error)
	// Close releases the target's connections.
	Close() error
}

// ErrUnknown is wrapped by a target's error when the operation's outcome is
// unknown (it may or may not have taken effect). Run counts those apart from
// definite errors.
var ErrUnknown = errors.New("unknown outcome")
