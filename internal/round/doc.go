// Package round is the proposer's protocol logic without I/O: the rounds of
// a change (prepare, then accept) and of a quorum read, the ballot clock and
// the one-round-trip cache, and the rescan's skip rule (DESIGN §2.1, §2.3–§2.5).
//
// A round is a state machine. The caller sends the messages it names, feeds
// it the replies (in any order, with duplicates and losses) and asks for the
// outcome; it never blocks, sleeps or reads a clock. The proposer library and
// the deterministic simulation drive the same code.
//
// Skip decides from per-member reads whether a membership change's rescan
// may leave a key as it is: its accepted ballot agrees on qa members of the
// accept set S of the fenced joint configuration (DESIGN §5 step 3).
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
