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
// The contention workload (issue 14) runs in several processes instead: a
// Contender is a store seen as decimal counters under hot keys; each
// process runs RunContention with its own client and reports a
// WorkerReport, and SummarizeContention aggregates the reports with the hot
// keys' counters read before and after into a Result whose final check
// holds when every key grew by at least its acknowledged increments and at
// most those plus the increments with unknown outcomes (CheckContention).
// RunContention never cancels an operation in flight, so the counts cover
// every increment a process made. Starting the processes is the CLI's job.
//
// The package is internal to cmd/kshaka (its only user is the bench command
// in cmd/kshaka/internal/cli); the shared core stays in the top-level
// internal/.
package bench
