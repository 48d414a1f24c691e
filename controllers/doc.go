// Package controllers is the Kshaka operator: it reconciles KshakaCluster
// objects into a StatefulSet of acceptors and carries out the membership
// procedure of docs/design.md §5 on them.
//
// The package is layered the way docs/design.md §6 describes:
//
//   - builders.go: pure functions that build every owned object (the
//     Services, the StatefulSet and the PodDisruptionBudget; the
//     NetworkPolicy and Certificates in netpol.go and certmanager.go) from
//     the spec.
//   - plan.go, members.go, rolling.go, status.go: the pure decision
//     function. Decide takes everything observed in one pass (the
//     KshakaCluster with its recorded status, the StatefulSet, the pods, the
//     volume claims and each acceptor's Admin status) and returns the status
//     to record, the StatefulSet size, and at most one action: install a
//     configuration, rescan one batch of keys, recycle a member, delete a
//     volume claim, or restart a pod for a rolling update. The membership
//     procedure itself is membership/change.Machine, the one the simulation
//     and the explorer of test/sim drive too: members.go turns pods, claims
//     and acceptors into the machine's observation (and status.members),
//     status.go turns the recorded status into its intent and back (and
//     sets the conditions), plan.go asks the machine and turns its action
//     into the reconciler's, and rolling.go carries a changed pod template
//     to the pods once the machine has nothing to do. ValidateSpec
//     (builders.go) refuses knobs that override the operator's; PlanVolumes
//     (volumes.go) compares the volume claims and the StatefulSet's claim
//     templates with spec.storage; ReadyCondition (status.go) is computed
//     last, from the other conditions.
//   - reconciler.go: observe → Decide → write status → act (and
//     volumes.go's resize: grow claims, recreate the StatefulSet with its
//     pods orphaned). The status (the
//     intent) is written before the action, with optimistic concurrency, so a
//     stale read cannot act and an operator restart resumes the recorded
//     step. Every action checks live state and is harmless to repeat.
//   - tls.go, certmanager.go, netpol.go: mutual TLS and the NetworkPolicy
//     (docs/design.md §9). PlanOperatorTLS and PlanCertManager are pure
//     planners from the observed Secrets (and Certificates) to the Secrets
//     to write: in mode Operator the cluster's CA, a pair per acceptor pod
//     (issued before the StatefulSet grows), the operator's admin
//     certificate and the clients', renewed before expiry and reissued when
//     a pod's IP or the CA changes; a CA rotation is a sequence of steps
//     recorded on <cluster>-ca, each safe to redo. In mode CertManager,
//     Certificates, whose issued pairs are copied into the same
//     <cluster>-acceptor-tls the pods mount. tlsreconcile.go reads and
//     writes them; the status (status.tls, TLSReady) is recorded before
//     the writes, like every intent.
//   - transport.go: how the operator dials one cluster's acceptors — mutual
//     TLS with the cluster's operator certificate, verified against the
//     dialled address; plaintext to a pod started without TLS (a change of
//     mode rolling through the pods).
//   - acceptors.go: the Admin RPC client and the rescan's proposer, behind
//     the Acceptors interface so tests can point members at in-process
//     acceptors. The rescan (proposer.Client.Rescan) touches every key
//     with a fresh ballot above every ballot its prepare shows; status
//     (KeysRescanned), the RescanComplete event and
//     kshaka_operator_rescanned_keys_total count them; KeysEstimated, the
//     most keys a reachable acceptor reported when the rescan started, is
//     only for a percentage (plan.go estimateKeys). No key is skipped:
//     the rule that skipped keys agreeing on an accept quorum of the joint
//     configuration was withdrawn (docs/design.md).
//   - backup.go, backupreconcile.go, schedule.go, restore.go: backups
//     (docs/design.md §13). BackupJob, VerifyJob and RestoreJob build the
//     Jobs that run `kshaka backup|restore` from the cluster's image with
//     the operator's admin certificate; JobPhase turns a Job and the last
//     --progress json line of its pod's log into a phase. BackupReconciler
//     runs one Job per KshakaBackup; ScheduledBackupReconciler creates
//     KshakaBackups on a cron schedule (PlanSchedule, an injected clock)
//     and prunes them; PlanRestore, called by the cluster's reconciler,
//     carries spec.bootstrap.fromBackup: verify the file's checksum, restore
//     once Available, Restored, and no client Secret until then.
//
// Invariants kept by the machine (docs/design.md §3–§5; see package change):
//   - One membership change at a time; configurations come only from
//     membership.Steps (or membership.Stable for the first one).
//   - No rescan and no next epoch before the current epoch is fenced: every
//     non-retired member of the previous and the new configuration has
//     acknowledged it. An unreachable member blocks the change.
//   - A member whose pod reports a different, empty incarnation lost its
//     disk: it is retired (never admitted again), removed, and its pod joins
//     again as a new member. An unreachable member is never retired.
//   - Scale down: membership removal first, pod second, volume claims last
//     (data and WAL together).
//   - No certificate is signed by a CA that some trust bundle of the
//     cluster does not hold yet, except a missing or expired one (a new
//     pod's is issued at once); no CA leaves the bundles while a
//     certificate it signed is kept.
package controllers
