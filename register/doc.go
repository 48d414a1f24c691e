// Package register holds one CASPaxos register: ballots, values, the
// acceptor's per-key state and the rules that change it (docs/design.md §2.1–§2.2).
//
// Everything here is pure: no I/O, no goroutines, no clocks. The acceptor
// server persists the State this package computes (with Sync, before it
// replies); the proposer and the deterministic simulation use the same types
// and rules, so the rules that are tested here are the rules that run.
//
// Invariants kept by the rules:
//   - Promise and Accepted only grow.
//   - An acceptor never accepts a ballot lower than its promise, nor a ballot
//     lower than or equal to the one it has already accepted (the second
//     check matters when prepare and accept quorums differ; see
//     scylladb/scylladb#6139).
//   - A conflict reply carries the highest ballot the acceptor has seen, so a
//     proposer can fast-forward past it.
package register
