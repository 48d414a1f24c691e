// Package cli implements kshaka, the command-line client of a Kshaka cluster:
// reads and writes through the proposer library (get, put, cas, delete), a
// health report from every acceptor of the configuration (status), backups
// and restores through the protocol (backup, restore; internal/backup), and
// a local cluster of acceptor processes for development (local).
//
// Run is the whole program; cmd/kshaka only turns its result into the
// process's exit code. Every failure maps to one of the documented exit codes
// (ExitOK … ExitCorrupt), so scripts can tell "not found" from "version
// mismatch" from "the write may or may not have happened".
//
// kshaka local plays the operator's part on one machine for one thing only:
// it installs the first configuration of the acceptors it started. It never
// changes membership; when an acceptor's storage was lost it refuses to start
// rather than let the acceptor rejoin under its old identity (docs/design.md §4).
// It always protects the admin calls with an admin token (its own, in
// DIR/admin-token, mode 0600, unless one is given); with --tls it serves
// mutual TLS with a CA and certificates it makes under DIR/tls with
// internal/pki, as the operator does on Kubernetes (docs/design.md §9).
//
// Admin calls go through internal/adminclient. A refusal or a failed TLS
// handshake (proposer.ErrAccess) exits with ExitAccess and says what to
// check.
//
// The package is internal to cmd/kshaka: it is the program, not a library,
// and only the kshaka command imports it.
package cli
