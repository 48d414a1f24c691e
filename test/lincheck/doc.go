// Package lincheck checks histories of a Kshaka key-value store for
// linearizability with porcupine. It is the one model of the deterministic
// simulation (test/sim), the chaos test (test/chaos) and the end-to-end
// suite (test/e2e).
//
// The model is a compare-and-swap register per key (Model) with the rules
// of register.Value: the state of a key is its version and its visible
// value, "" when it is absent (never written, or deleted). A put, and a cas
// that swaps, add one to the version; a delete of an existing key leaves a
// tombstone one version higher (so versions are never reused, docs/design.md §2.3);
// a delete of an absent key changes nothing. Clients see version 0 for an
// absent key. Written values must be unique and non-empty, so a value read
// names the write that produced it.
//
// A cas comes in two flavours:
//
//   - OpCAS compares the visible value with Input.From ("" for absent); the
//     simulation records its cas this way.
//   - OpCASVersion compares the visible version with Input.FromVersion (0
//     for absent), as proposer.Client.CompareAndSwap does.
//
// An Output with Versioned set also reports a version, which the model
// checks: the version a get read, the new version of a put or a swapping
// cas, or the current value and version of a cas mismatch. A key none of
// whose operations carries a version is checked on its visible value alone.
//
// Every operation ends with one of three statuses:
//
//   - StatusOK: the operation took effect, and Output says what the client
//     was told.
//   - StatusFail: a definite failure; the operation took no effect.
//   - StatusUnknown: the operation may or may not take effect, now or at any
//     later time. It is recorded with Return = math.MaxInt64 (+∞): porcupine
//     may then linearize it anywhere after its call, including after every
//     other operation, where it is as good as not having happened. The
//     model also lets it step to "not applied" wherever it is linearized
//     (the same histories, found without backtracking over it).
//
// Reads that did not end with StatusOK carry no information and are legal
// anywhere.
//
// Recorder collects a history from concurrent real clients with a monotonic
// clock.
package lincheck
