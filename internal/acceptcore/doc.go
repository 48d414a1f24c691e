// Package acceptcore is the acceptor's decision logic as one pure state
// machine (docs/design.md §2.1, §2.2, §8): the register rules applied to a batch,
// the request limits and the ballot-lead bound, and the durability policy
// (the promise floor, which commits need a sync, what a restart restores).
//
// Two drivers run it: package acceptor over Pebble and gRPC, and the
// deterministic simulation (test/sim) over its simulated disk and network,
// the way etcd-io/raft's RawNode is driven by production and by rafttest.
// The drivers do all I/O and own all concurrency; Core has no state of its
// own, no I/O, no goroutines and no clock (the clock reading is an input),
// so it is safe to share and every decision is a function of its inputs.
// No copy of these rules lives anywhere else: the simulation's acceptor
// keeps only its "disk" (what a crash keeps of the unsynced commits), and
// decides nothing that this package decides.
//
// A request goes through the core in this order:
//
//  1. Check (CheckPrepare, CheckAccept, CheckRead) validates it whole, with
//     the driver's clock reading: malformed input, or a ballot more than
//     Options.MaxBallotLead ahead of the clock, refuses the whole request
//     with ErrInvalidRequest before anything is read or written.
//  2. The driver reads the current State of every key (zero when absent)
//     and calls Prepare or Accept with them and the restart floor, or Read
//     with them. Prepare and Accept return the per-item outcomes and a
//     Ready: the new states, the indexes of the ones to write, and what
//     the batch promised or accepted.
//  3. Durability(ready, durable floor) says how to commit the writes: with
//     or without Sync, and whether to raise the durable floor in the same
//     synced batch. The driver writes all of Ready's states and the floor
//     as one atomic batch, committed that way, and only then replies with
//     the outcomes (durable before reply, as raft persists before it
//     sends). A driver that commits concurrently serializes floor raises
//     and decides again under that lock, against the floor on disk then.
//  4. At start, Restart(durable floor read from disk) gives the restart
//     floor for the whole life.
//
// The durability policy (package acceptor's doc, "Promises and the floor"):
//   - A prepare's promise whose counter is below the durable floor F is
//     committed without a sync; a crash may lose it.
//   - A prepare at or above F raises F to its counter plus
//     Options.PromiseFloorStep, in the same batch, committed with Sync.
//   - Accepts, and the 1RTT promise an accept carries, are always synced.
//   - After a restart every key's promise counts as at least
//     (restart floor, 0), the durable floor read at start: any promise the
//     last life made and the disk lost had a counter below it, so it is
//     still kept.
//   - F never saturates: a raise past 2^64-1 refuses the request.
//
// Options.VolatilePromises turns that policy off on purpose, for the
// simulation's negative control only; package acceptor never sets it.
package acceptcore
