// Package lincheck checks histories of a Kshaka key-value store for
// linearizability with porcupine.
//
// The model is a compare-and-swap register per key (Model): the state of a
// key is its visible value, "" when it is absent (never written, or
// deleted). Written values must be unique and non-empty, so a value read
// names the write that produced it, and a CAS's expected value stands for
// the version it was issued against (versions are never reused, DESIGN
// §2.3).
//
// Every operation ends with one of three statuses:
//
//   - StatusOK: the operation took effect, and Output says what the client
//     was told.
//   - StatusFail: a definite failure; the operation took no effect.
//   - StatusUnknown: the operation may or may not take effect, now or at any
//     later time. It is recorded with Return = math.MaxInt64 (+∞): porcupine
//     may then linearize it anywhere after its call, including after every
//     other operation, where it is as good as not having happened.
//
// Reads that did not end with StatusOK carry no information and are legal
// anywhere.
//
// Recorder collects a history from concurrent real clients with a monotonic
// clock.
package lincheck
