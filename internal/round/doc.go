// Package round is the proposer's protocol logic without I/O: the rounds of
// a change (prepare, then accept) and of a quorum read, the ballot clock and
// the one-round-trip cache (docs/design.md §2.1, §2.3–§2.5).
//
// A round is a state machine. The caller sends the messages it names, feeds
// it the replies (in any order, with duplicates and losses) and asks for the
// outcome; it never blocks, sleeps or reads a clock. The proposer library and
// the deterministic simulation drive the same code.
//
// A membership change's rescan touches every key with an identity change
// (docs/design.md §5) that must end above every ballot it sees:
// Write.Outranked tells it to go again above a ballot its prepare showed.
// There is no rule for skipping keys: the one the design used to allow (skip a
// key whose accepted ballot agrees on qa members of S) loses acknowledged
// writes and survives only as a negative control in test/sim.
//
// ClassifyAccept classifies accept answers, and Settle decides what a new attempt
// may do about earlier attempts whose outcome is unknown: finish them,
// re-apply their changes once, or leave the outcome unknown.
//
// Outcomes are three and kept apart: Success; Failed, a definite failure
// where this attempt was accepted nowhere, so a retry with a new ballot is
// safe; and Unknown, where an accept may have landed without a quorum
// confirming it, so the change may or may not take effect later.
package round
