// Package plugin implements kubectl-kshaka, the kubectl plugin of Kshaka
// (`kubectl kshaka ...`): the day-2 commands a person runs against a
// KshakaCluster through the Kubernetes API.
//
//   - status: the members, the configuration and its quorums, how many
//     failures the cluster tolerates, the transition in progress with its
//     rescan percentage, restore progress, certificate expiry, conditions
//     and recent Warning events. A table, or the Status struct as JSON or
//     YAML (its fields are the plugin's interface).
//   - backup and restore: create a KshakaBackup, or a new KshakaCluster
//     bootstrapped from one, and optionally follow it to the end.
//   - retire: the explicit assertion of docs/design.md §4 (a member's
//     storage is gone for good) as the kshaka.io/retire-incarnations
//     annotation, after a confirmation.
//   - pause and resume: spec.paused.
//   - report: a ZIP for a bug report. It never reads a Secret: Secrets
//     appear by name only (a metadata-only list).
//
// Everything goes through the Kubernetes API with the user's kubeconfig
// (the kubectl flags of k8s.io/cli-runtime); the plugin never dials an
// acceptor, since the user's machine may reach neither the pods nor their
// TLS. Run is the whole program; every failure maps to one of the
// documented exit codes (ExitOK … ExitTimeout).
//
// The package is internal to cmd/kubectl-kshaka: it is the program, not a
// library.
package plugin
