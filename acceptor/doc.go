// Package acceptor is a Kshaka acceptor: the CASPaxos register rules of
// package register, made durable in Pebble and served over gRPC (the Acceptor
// and Admin services of proto/kshaka/v1, plus the gRPC health service).
//
// Contract (DESIGN §2.2, §3, §4):
//   - Durable before reply. Every request that changes state writes each
//     changed key as one record (register.AppendState) and commits all of
//     them as one Pebble batch with one Sync before it replies. A batch RPC is
//     one batch and one sync, whatever its size.
//   - Per-key mutual exclusion. A request holds the striped locks of all its
//     keys (taken in ascending stripe order) from reading the records until
//     the reply is built, so it never answers from a record that is visible
//     in Pebble but not yet synced.
//   - All or nothing on input. A request is validated whole before storage is
//     touched; malformed input (empty or oversized keys, oversized values,
//     invalid ballots, a next ballot not above the ballot, oversized batches,
//     duplicate keys, missing values) is refused with ErrInvalidRequest
//     (INVALID_ARGUMENT) and nothing is written.
//   - Fencing. A request whose epoch is lower than the installed
//     configuration's is refused whole with that configuration
//     (StaleEpochError; `stale_config` on the wire). Configuration changes
//     wait for the requests in flight, so once SetConfig returns no request
//     checked against the older epoch can still write.
//   - Identity and admission. Empty storage gets a random non-zero
//     incarnation, persisted with Sync. The acceptor serves no prepare,
//     accept or read until an installed configuration lists its incarnation
//     (FAILED_PRECONDITION); GetConfig and Status always work.
//   - Fail-stop storage. The first storage error (a failed read, write or
//     sync, a background error or detected corruption) takes the acceptor
//     out of service until it is restarted: data RPCs answer UNAVAILABLE,
//     Status reports healthy=false and the health service NOT_SERVING. It
//     never answers from a state it could not persist.
//
// Storage layout: user keys under the prefix 'k', metadata (incarnation,
// configuration) under 'm'. All file I/O goes through Options.FS, so tests
// use vfs.NewMem, vfs.NewCrashableMem and vfs/errorfs.
//
// Package acceptortest starts in-process clusters of real acceptors for the
// tests of other packages.
package acceptor
