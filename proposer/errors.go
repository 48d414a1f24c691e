package proposer

import (
	"errors"
	"fmt"

	"github.com/kshaka-io/kshaka/internal/round"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrNotFound: Get of a key that was never written or was deleted.
	ErrNotFound = errors.New("kshaka: key not found")
	// ErrVersionMismatch: a CompareAndSwap whose version was not the current
	// one. The error is a *VersionMismatchError with the current value.
	ErrVersionMismatch = errors.New("kshaka: version mismatch")
	// ErrUnknownOutcome: the change may or may not have taken effect. The
	// error is an *UnknownOutcomeError; see Client.Resolve.
	ErrUnknownOutcome = errors.New("kshaka: outcome unknown")
	// ErrNoQuorum: the operation definitely did not take effect: after
	// MaxRetries retries no quorum of acceptors could be reached (they
	// did not answer, answered too late, or refused the configuration).
	// Attempts lost to other proposers are not counted here: the client
	// backs off and tries again (docs/design.md §11).
	ErrNoQuorum = errors.New("kshaka: no quorum")
	// ErrContention: the operation definitely did not take effect because
	// other proposers of the key kept winning for longer than the client
	// retries contention (thousands of attempts; usually the caller's
	// context ends first). The acceptors are healthy: retry later, or
	// spread the writes over more keys.
	ErrContention = errors.New("kshaka: contention")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("kshaka: client closed")
	// ErrInvalidArgument: the input was refused before anything was sent
	// (empty or oversized key, oversized value, bad Config).
	ErrInvalidArgument = errors.New("kshaka: invalid argument")
)

// VersionMismatchError is returned by CompareAndSwap when the key's version
// was not the expected one. The answer is authoritative: the unchanged value
// was accepted by a quorum before it was reported (docs/design.md §2.3).
type VersionMismatchError struct {
	Key []byte
	// Expected is the version the caller passed.
	Expected uint64
	// Current is the key's value; Version 0 when it does not exist.
	Current Value
	// Exists reports whether the key exists.
	Exists bool
}

func (e *VersionMismatchError) Error() string {
	if !e.Exists {
		return fmt.Sprintf("kshaka: version mismatch on key %q: expected %d, key does not exist", e.Key, e.Expected)
	}
	return fmt.Sprintf("kshaka: version mismatch on key %q: expected %d, current %d", e.Key, e.Expected, e.Current.Version)
}

// Is makes errors.Is(err, ErrVersionMismatch) true.
func (e *VersionMismatchError) Is(target error) bool { return target == ErrVersionMismatch }

// UnknownOutcomeError says a change may or may not have taken effect: an
// accept was sent and no quorum confirmed it, and the client could not tell
// what became of it. The change is never re-applied blindly.
//
// To settle it, call Client.Resolve with the error: it runs a round with a
// fresh ballot, after which the change can no longer take effect later, and
// reports Applied, NotApplied or, when more writers than the value's
// lineage records (docs/design.md §11) changed the key in between,
// Undecided with the current value.
//
// Contention alone rarely causes it: values record which proposals made
// them, so the client settles contention exactly (docs/design.md §11). It
// remains for a caller's context that ends while a proposal is out,
// acceptors that stop answering, and more proposals by others between the
// proposal and its settling than the value's lineage (register.MaxLineage,
// 16) and the values seen meanwhile reach; Sealed then tells the last case
// apart. Applications that
// must always know can make their changes recognisable in the value (a
// writer tag, or per-writer counters) and inspect the value Resolve returns.
// The idiomatic alternative is a CAS loop: re-read, and CompareAndSwap from
// the version read, never from a version guessed before the failure.
type UnknownOutcomeError struct {
	Key []byte
	// Intended is the value the change would have produced (Version and
	// Data; Data is nil for a delete). Zero when the change was rejected
	// in every attempt that may have landed.
	Intended Value
	// Cause is what ended the attempt (a timeout, cancellation, lost replies).
	Cause error
	// Sealed: before giving up the client froze the key (an identity
	// round above every proposal of the change was chosen). The change
	// either has taken effect already or never will; nothing that happens
	// later changes that, so Resolve's answer is final and a retry after
	// a NotApplied cannot apply the change twice. When false, a proposal
	// may still land later, until a Resolve (or any successful write of
	// the key by this or another client) seals it.
	Sealed bool

	// pending are the proposals that may still land (Resolve settles them).
	pending []round.Proposal
}

func (e *UnknownOutcomeError) Error() string {
	msg := fmt.Sprintf("kshaka: outcome unknown for key %q", e.Key)
	if e.Intended.Version != 0 {
		msg += fmt.Sprintf(" (intended version %d)", e.Intended.Version)
	}
	if e.Sealed {
		msg += " (sealed: it took effect already or never will)"
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrUnknownOutcome) true.
func (e *UnknownOutcomeError) Is(target error) bool { return target == ErrUnknownOutcome }

// Unwrap returns the cause, so errors.Is(err, context.DeadlineExceeded) works.
func (e *UnknownOutcomeError) Unwrap() error { return e.Cause }

// panicError carries a panic of a change function from the round to the
// caller's goroutine, where it is raised again.
type panicError struct{ v any }

func (p *panicError) Error() string { return fmt.Sprintf("kshaka: change function panicked: %v", p.v) }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}

func checkKey(key []byte) error {
	switch {
	case len(key) == 0:
		return invalidf("empty key")
	case len(key) > MaxKeySize:
		return invalidf("key is %d bytes, the limit is %d", len(key), MaxKeySize)
	}
	return nil
}

func checkValue(data []byte) error {
	if len(data) > MaxValueSize {
		return invalidf("value is %d bytes, the limit is %d", len(data), MaxValueSize)
	}
	return nil
}
