// Package acceptor is a Kshaka acceptor: the CASPaxos register rules of
// package register, made durable in Pebble and served over gRPC (the Acceptor
// and Admin services of proto/kshaka/v1, plus the gRPC health service).
//
// Every decision below about a request (validation, the lead bound, the
// register rules over a batch, which commits need a sync, the promise floor,
// what a restart restores) is made by the pure core in internal/acceptcore,
// which the deterministic simulation (test/sim) runs too. This package is
// its I/O driver: admission, the striped locks, reading and writing the
// records in Pebble, serializing floor raises, and replying only after the
// commit the core asked for.
//
// Contract (docs/design.md §2.2, §3, §4):
//   - Durable before reply. Every request that changes state writes each
//     changed key as one record (register.AppendState) and commits all of
//     them as one Pebble batch with one Sync before it replies. A batch RPC is
//     one batch and at most one sync, whatever its size. The one exception is
//     a prepare below the promise floor (next item).
//   - Promises and the floor. A promise is kept across a crash without a
//     sync per prepare: the acceptor persists a floor counter F (metadata,
//     with Sync) before it promises any ballot with counter >= F, raising it
//     to the counter plus Options.PromiseFloorStep; prepares below F commit
//     without Sync. After a restart every key's promise counts as at least
//     (F, 0), so any promise the last life made and the disk lost is still
//     kept: a ballot at or below it is refused and the proposers
//     fast-forward past F. Accepts, and the 1RTT promise they carry, are
//     always synced. This takes the fsync out of the prepare phase. F never
//     saturates: a raise past 2^64-1 would refuse the request.
//   - Bounded ballots (docs/design.md §2.1). A ballot counter, or an accept's next
//     ballot counter, more than Options.MaxBallotLead (default ten minutes)
//     ahead of the acceptor's clock in microseconds is refused as malformed
//     input (below), so no single request can move a key's promise or the
//     floor out of the proposers' reach.
//   - Per-key mutual exclusion. A request holds the striped locks of all its
//     keys (taken in ascending stripe order) from reading the records until
//     the reply is built, so it never answers from an accepted value that is
//     visible in Pebble but not yet synced.
//   - All or nothing on input. A request is validated whole before storage is
//     touched; malformed input (empty or oversized keys, oversized values,
//     invalid ballots, ballots too far ahead of the clock, a next ballot not
//     above the ballot, oversized batches, duplicate keys, missing values)
//     is refused whole with ErrInvalidRequest (INVALID_ARGUMENT) and
//     nothing is written.
//   - Fencing. A request whose epoch is lower than the installed
//     configuration's is refused whole with that configuration
//     (StaleEpochError; `stale_config` on the wire). Configuration changes
//     wait for the requests in flight, so once SetConfig returns no request
//     checked against the older epoch can still write.
//   - Identity and admission. Empty storage gets a random non-zero
//     incarnation, persisted with Sync. The acceptor serves no prepare,
//     accept or read until an installed configuration lists its incarnation
//     (FAILED_PRECONDITION); GetConfig and Status always work.
//   - The acknowledged epoch only grows. The installed configuration's epoch
//     is the highest epoch the acceptor has acknowledged: SetConfig persists
//     a higher epoch with Sync before it returns and refuses a lower one, and
//     nothing else writes the configuration, so no separate high-water mark
//     is kept. Status (and Admin.Status's epoch) report it. The operator
//     records it per member; an acceptor that comes back with the same
//     incarnation and a lower epoch had its volume rolled back and is
//     replaced like a lost disk (docs/design.md §4 "Rolled-back disks").
//   - Fail-stop storage. The first storage error (a failed read, write or
//     sync, a background error or detected corruption) takes the acceptor
//     out of service until it is restarted: data RPCs answer UNAVAILABLE,
//     Status reports healthy=false and the health service NOT_SERVING. It
//     never answers from a state it could not persist.
//   - Authorization before anything else (docs/design.md §9.1). One policy
//     (methodRoles, authorize) decides every call, installed by
//     Acceptor.ServerOptions as a tap handle, which refuses before the
//     request is read, and as unary and stream interceptors; the handlers
//     serve nothing on a server created without them. With
//     Options.MutualTLS a call needs a verified client certificate
//     (UNAUTHENTICATED: "client certificate required: ...") whose role,
//     read from its Subject Organization, allows the method
//     (PERMISSION_DENIED, naming the role and the method): admin
//     (O=kshaka:admin) may call everything, client (O=kshaka:client)
//     Prepare, Accept, Read, GetConfig and health. Options.AdminToken, when
//     set, is required in addition by every call that needs the admin role
//     (SetConfig, Status, ListKeys, Collect), also without mutual TLS (kshaka local's
//     only protection). A refused call writes nothing.
//   - Tombstone GC (docs/design.md §10). The installed configuration's GC
//     floors are part of the core's decisions: a key without a record
//     counts as promised its RemovedBallot, and Collect removes a record
//     (under the key's lock, in one synced batch) only when the core says
//     it is exactly the GC's write and the floors cover it. SetConfig
//     refuses a configuration that lowers the floors.
//   - Bounded by the transport, not by clients. A request is handled once it
//     has arrived whole; the stripe locks and the gate are held only while
//     the store is read and written, and ListKeys sends its pages outside
//     the gate, so a client that stops sending or reading holds neither.
//     A message over MaxMessageSize is refused (RESOURCE_EXHAUSTED) from its
//     length prefix; a TLS handshake must finish within HandshakeTimeout; a
//     connection carries at most MaxConcurrentStreams calls; keepalive
//     closes connections whose peer vanished.
//
// Storage layout: user keys under the prefix 'k', metadata (incarnation,
// configuration, promise floor) under 'm'. All file I/O goes through Options.FS, so tests
// use vfs.NewMem, vfs.NewCrashableMem and vfs/errorfs.
//
// Package acceptortest starts in-process clusters of real acceptors for the
// tests of other packages.
package acceptor
