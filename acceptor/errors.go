package acceptor

import (
	"errors"
	"fmt"

	"github.com/kshaka-io/kshaka/internal/acceptcore"
	"github.com/kshaka-io/kshaka/membership"
)

// Sentinel errors. The gRPC layer maps them to status codes; Go callers test
// them with errors.Is.
var (
	// ErrInvalidRequest is wrapped by every refusal of malformed input:
	// empty or oversized keys and values, invalid ballots or ballots more
	// than MaxBallotLead ahead of the acceptor's clock, oversized batches,
	// duplicate keys, missing values. Nothing was written. (INVALID_ARGUMENT)
	// It is the acceptor core's acceptcore.ErrInvalidRequest, which decides
	// these refusals.
	ErrInvalidRequest = acceptcore.ErrInvalidRequest
	// ErrOutOfService is wrapped by every refusal after a storage error: the
	// acceptor never answers from a state it could not persist, so it serves
	// nothing until it is restarted. (UNAVAILABLE)
	ErrOutOfService = errors.New("acceptor out of service after a storage error")
	// ErrClosed: the acceptor was closed. (UNAVAILABLE)
	ErrClosed = errors.New("acceptor closed")
	// ErrConfigConflict: SetConfig with a lower epoch, or with the installed
	// epoch but a different configuration. (FAILED_PRECONDITION)
	ErrConfigConflict = errors.New("configuration conflicts with the installed one")
)

// StaleEpochError is returned for a request whose epoch is lower than the
// installed configuration's. Config is the installed configuration; the
// sender adopts it and retries. It wraps membership.ErrStaleEpoch.
type StaleEpochError struct {
	RequestEpoch uint64
	Config       membership.Config
}

func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("%v: request epoch %d, installed epoch %d", membership.ErrStaleEpoch, e.RequestEpoch, e.Config.Epoch)
}

func (e *StaleEpochError) Unwrap() error { return membership.ErrStaleEpoch }
