// Package proposer is the Kshaka client library: a CASPaxos proposer that
// applications link and that talks to the acceptors directly over gRPC
// (docs/design.md §2–§3).
//
// A Client is created from a few bootstrap addresses; it reads the cluster's
// configuration from any of them and then sends every request to the
// members. It follows membership changes through the members' stale-epoch
// replies, and when no member it knows answers for two attempts in a row
// (every pod came back elsewhere) it asks the bootstrap addresses again, at
// most once a second; so on Kubernetes, give it the Service name. Every key
// is an independent register; every operation is linearizable.
//
//	c, err := proposer.New(ctx, proposer.Config{Endpoints: []string{"kshaka:7000"}})
//	v, err := c.Put(ctx, []byte("k"), []byte("v1"))
//	v, err = c.CompareAndSwap(ctx, []byte("k"), v.Version, []byte("v2"))
//
// # Outcomes
//
// An operation either succeeds, fails definitely (it did not take effect
// and never will: ErrNoQuorum, ErrContention, ErrVersionMismatch, a change
// function's error, a context error returned before anything was sent), or
// ends with an unknown outcome: an *UnknownOutcomeError (errors.Is
// ErrUnknownOutcome) says the change may or may not have taken effect. The
// client retries definite failures (with jittered exponential backoff,
// MaxRetries times; attempts lost to other proposers do not count, the
// backoff just grows). After an unknown outcome it settles it itself: every
// value carries its lineage, the proposals that made its recent versions
// (docs/design.md §11), so the next attempt's prepare shows whether the
// earlier proposal is part of the newest value (it is then completed) or
// certainly not (the change is then applied afresh, exactly once). Only
// when more writers than the lineage records changed the key in between,
// or acceptors stop answering, or the caller's context ends, is the error
// returned; before that the client freezes the key when it can, and the
// error's Sealed field then promises the change either took effect already
// or never will. Client.Resolve and the guidance on UnknownOutcomeError
// settle it.
//
// A failed compare-and-swap is answered only after the unchanged value was
// accepted by a quorum, so the mismatch, and the current value it reports,
// are authoritative.
//
// # Security
//
// On Kubernetes the acceptors serve mutual TLS (docs/design.md §9): give
// the client Config.TLSDir, the mounted client Secret (ca.crt, tls.crt,
// tls.key; the certificate's Subject O is kshaka:client). Its files are
// reloaded when they change, so certificates rotate without a restart;
// each new connection takes the current ones, and the acceptors'
// certificates are verified against the dialled host or
// Config.TLSServerName. Config.TLS takes a fixed tls.Config instead. A
// refusal by an acceptor or a failed TLS handshake is an *AccessError
// (errors.Is ErrAccess) that names the acceptor and says what is wrong: a
// CA the bundle does not hold, an expired or misnamed acceptor certificate,
// no client certificate (UNAUTHENTICATED), a role that does not allow the
// call (PERMISSION_DENIED). New returns it at once instead of waiting for
// DialTimeout; an operation's ErrNoQuorum wraps it. The client never needs
// the admin token.
//
// # Versions
//
// Every applied change adds one to the key's version; versions are never
// reused, even across a delete. CompareAndSwap compares versions, and
// version 0 means "the key does not exist". Delete leaves a tombstone.
//
// # Backup and restore
//
// For backup and restore tools (kshaka backup, kshaka restore), Export
// returns a key's raw register value linearizably, tombstones and their
// versions included (a Record), and Restore writes a Record, with its
// version, into a key that is empty; restoring the same Record again is a
// no-op, and any other current value is a *RestoreConflictError
// (errors.Is ErrRestoreConflict) that changes nothing. Restore is a normal
// round, like Put's.
//
// # Engine
//
//   - Ballots: one clock per client, (counter, ID), with an ID picked anew
//     for every client (Config.ID is only mixed in); every attempt uses a
//     ballot never used before, the clock fast-forwards past every
//     conflict up to Config.MaxBallotLead ahead of the wall clock, and it
//     fails instead of wrapping (docs/design.md §2.1).
//   - One round trip: a successful accept carries a promise of the next
//     ballot; the next change of that key from this client skips the
//     prepare. The cache is bounded (LRU), each promise is used once, and a
//     key's promise is dropped after any result other than full success
//     (docs/design.md §2.4).
//   - Quorum reads: Get reads P ∪ S and answers in one round trip when the
//     replies agree; otherwise it runs an identity change (docs/design.md §2.5).
//   - Combining: while a round of a key is in flight, new changes of that
//     key queue up and go into the next round together, each caller getting
//     the value right after its own change (docs/design.md §2.6).
//   - Batching: one connection and, per method, at most one request in
//     flight per acceptor; while it is in flight the next batch fills up
//     (up to MaxBatch items).
//   - Configurations: requests carry the client's epoch; an acceptor with a
//     higher epoch refuses them and returns its configuration, which the
//     client adopts (the highest epoch seen wins) before retrying (docs/design.md §3).
//     P ≠ S and qp ≠ qa are supported throughout.
//   - Rescans (the operator's part of a membership change, docs/design.md §5):
//     Touch runs an identity change with a fresh ballot on every key, and
//     an attempt whose prepare shows a ballot above its own goes again
//     above it instead of proposing (round.Write.Outranked). Rescan is
//     Touch for a fenced joint configuration, reporting how many keys it
//     touched. No key is skipped: the rule that skipped keys agreeing on
//     qa members of S was withdrawn (it loses acknowledged writes; see
//     docs/design.md).
//   - Tombstone GC (docs/design.md §10): CollectTombstones writes old
//     tombstones to every member, installs (through GCOptions.Install) the
//     next epoch with raised GC floors, waits until every member runs it,
//     and removes the records with Admin Collect (the procedure of package
//     membership/gc). Under a configuration with floors, a key that shows
//     nothing live below the version floor is built on a tombstone at the
//     floor (round.Floored), so a recreated key's versions continue above
//     every version it had.
//
// The per-key policy above (combining, the 1RTT cache, settling, retries
// and backoff, quorum reads) is a pure state machine in internal/keyproc;
// the engine is its driver, and the deterministic simulation drives the
// same machine.
//
// The library does not log; Config.Events has optional callbacks for
// metrics.
package proposer
