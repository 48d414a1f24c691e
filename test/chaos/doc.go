// Package chaos tests Kshaka with real processes: three kshaka-acceptor
// binaries on loopback, concurrent clients through the proposer library,
// and a nemesis that SIGKILLs and restarts one acceptor at a time (never
// more than a minority down). Every operation is recorded with
// lincheck.Recorder, and the history, closed with a final read of every key
// once all acceptors are back, must be linearizable: an acknowledged write
// that was lost, a read of a value that was never written or was
// overwritten, a version that breaks the register's rules (gets, puts and
// the version compare-and-swaps report theirs), or a definite failure that
// took effect fails the test.
//
// The run lasts 12s by default; set -chaos.duration=5m or
// KSHAKA_CHAOS_DURATION=5m for a soak. The package has only tests.
package chaos
