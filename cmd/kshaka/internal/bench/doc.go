// Package bench is the load harness behind `kshaka bench` and `make bench`:
// one workload driver, one set of statistics and one report for every target
// (Kshaka through the proposer library, etcd through its Go client), so the
// comparison between them is fair (issue: performance side by side with etcd).
//
// A Target is a store under test. Run drives a Workload against it with a
// number of concurrent clients for a duration after a warm-up, records every
// operation's latency, and returns a Result with throughput, percentiles,
// definite errors and unknown outcomes. Nothing here asserts timings.
//
// The package is internal to cmd/kshaka (its only user is the bench command
// in cmd/kshaka/internal/cli); the shared core stays in the top-level
// internal/.
package bench
