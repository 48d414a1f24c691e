// Package keyproc is the proposer's procedure for one key, without I/O: the
// policy around the rounds of package round. The proposer library
// (proposer/engine.go) and the deterministic simulation (test/sim) drive
// the same code, the way etcd-io/raft's RawNode is driven by etcd and by
// rafttest (docs/design.md §8: the simulation drives the code that ships).
//
// A Machine holds one key's queue of changes and runs them in groups, one
// attempt (a round.Write) at a time:
//
//   - Same-key combining (docs/design.md §2.6): changes queued while an attempt is in
//     flight join the group at its next attempt, and one proposal applies
//     them in order; each gets the value right after its own change. A
//     Resolve runs alone.
//   - One round trip (docs/design.md §2.4): every attempt takes the key's cached
//     promise out of the Cache; it uses it only when the promise is of the
//     current epoch and the group needs no fresh prepare (no Resolve, no
//     proposal to settle, no Fresh op). Only a successful, Cacheable accept
//     puts a promise back.
//   - Touch (the rescan, docs/design.md §5): a group with an Above op does
//     not propose when its prepare replies showed a higher ballot; the next
//     attempt prepares above it.
//   - Tombstone GC (docs/design.md §10): an All op (GCOp) needs every
//     member of S to accept and carries no 1RTT promise; every attempt
//     builds on round.Write.Current, which applies the configuration's GC
//     floors (round.Floored; Broken.IgnoreVersionFloor is its negative
//     control).
//   - Unknown outcomes are settled, never re-applied blindly (round.Settle,
//     with the lineage values carry, docs/design.md §11): the next attempt
//     prepares at once with a fresh ballot and finishes the proposal its
//     newest value contains, applies the changes afresh when it contains
//     none, or, when the lineage and the witnesses gathered from replies
//     (round.Proposal.Observe) cannot tell, freezes the key and answers
//     with an unknown outcome. The machine stamps every proposal's lineage
//     (register.Stamp) in one place, OnApplied.
//   - Freeze: a group that gives up while a proposal may land first
//     accepts the newest value unchanged above every pending proposal;
//     once that is chosen the unknown outcome is sealed (Answer.Sealed).
//   - Contention: an attempt refused for other proposers' ballots by
//     members that answered does not count against MaxRetries (up to
//     MaxConflicts), and a round that saw another proposer caches no 1RTT
//     promise.
//   - Retries: an op is answered with a definite failure (or, if one of its
//     proposals may land, an unknown outcome) after MaxRetries failed
//     attempts. Retries back off with full jitter over a window that starts
//     at max(BackoffBase, the average successful round) and doubles up to
//     BackoffMax; an attempt that fails while a newer configuration arrived
//     is retried at once under it, and a new configuration ends a prepare
//     in flight and a backoff. After RediscoverAfter failures in a row the
//     machine asks the driver to look for the configuration again.
//
// # Driving a machine
//
// Inputs are method calls: Submit (a caller's op), Abandon (the caller
// left), OnPrepare and OnAccept (one member's reply to the attempt named in
// the reply), OnApplied (the results of the changes it asked for), Tick (the
// time it asked to be woken at has come), SetConfig (a newer configuration)
// and Close. Every input that can depend on time carries now, a point on
// the driver's clock (the library: time since the client started; the
// simulation: its ticks). The machine never reads a clock, starts a
// goroutine, draws a random number or blocks: ballots, the 1RTT cache, the
// average round time and the backoff jitter come from its Env, which the
// driver shares between the keys of one proposer.
//
// Outputs are collected by Ready after any input: messages to send, changes
// to apply, answers to ops, attempts that ended (for metrics), whether to
// rediscover the configuration. Wake is the time the machine wants Tick
// next.
//
// Change functions are the caller's code and may be slow, so the machine
// never calls them: Ready.Apply hands the driver the ops and the current
// value, the driver runs Apply.Run (without its lock) and feeds the result
// back with OnApplied. Only then, and only if every op it used is still
// there, does the machine mark the ops proposed and send the accept.
//
// # Concurrency and the caller that leaves
//
// A Machine is not safe for concurrent use. The library guards it with a
// small per-key lock and calls every input under it, including Abandon from
// a caller whose context ended; since the machine marks ops proposed and
// records the proposal in flight in one input (OnApplied), a caller that
// leaves sees either an op that is in no proposal (Abandon returns a
// definite failure) or the proposals that may land (an unknown outcome).
// Answers are final: an op gets at most one, from Ready or from Abandon.
//
// # Broken rules
//
// Config.Broken switches off single rules for the simulation's negative
// controls (test/sim controls_test.go); production code never sets it.
//
// QuorumRead is the quorum read of one key (docs/design.md §2.5) with the decision
// after each try: the value, another try under a newer configuration, or
// the fall back to an identity change through the key's Machine.
package keyproc
