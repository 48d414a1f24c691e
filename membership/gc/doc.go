// Package gc is the tombstone GC procedure of docs/design.md §10 as a pure
// machine, shaped like membership/change.Machine: the driver does the I/O
// (identity changes through the proposer, configuration installs, Admin
// Collect calls), feeds the results in, and the machine says the next step.
// The proposer library (proposer.Client.CollectTombstones), the simulated
// operator and the exhaustive explorer (test/sim) drive the same code.
//
// One Machine collects one batch of candidate keys (tombstones whose
// accepted ballot is older than the retention) under a stable
// configuration C of epoch e, with floors (R, VF). The driver must not run
// a membership change meanwhile (the operator serializes the two).
//
//  1. Write: the All identity change (keyproc.GCOp) on every candidate: the
//     tombstone is then accepted at ballot bg on every member of S, with
//     promise == accepted == bg everywhere (no 1RTT promise). Keys that are
//     live again, or whose write could not reach every member, are skipped
//     (a later run retries them).
//  2. Install: epoch e+1 with the same members and the floors raised to
//     R' = max(R, max bg) and VF' = max(VF, max version), then wait until
//     it is fenced (every member acknowledged ≥ e+1; the acceptor's
//     SetConfig drains the requests of older epochs). From then on every
//     acceptor refuses every ballot ≤ R' on a key it has no record of, and
//     every proposer that can reach a quorum builds on a tombstone at VF'
//     where it finds nothing live.
//  3. Collect: Admin Collect of the written keys on every member. A member
//     removes a record only when it is still exactly the tombstone at bg
//     with nothing promised above it, and its configuration's floors cover
//     it; one that refuses keeps it, which is harmless (the tombstone is
//     the chosen value).
//
// Invariants (tests in this package and in test/sim): floors only grow;
// nothing is collected before the floor epoch is fenced; only keys whose
// write reached every member are collected.
//
// Controls holds the negative controls, documented ways to break the
// procedure that the simulation and the explorer must catch. Production
// never sets them.
package gc
