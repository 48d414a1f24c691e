// Command kshaka-acceptor runs one Kshaka acceptor: a CASPaxos register store
// on Pebble, served over gRPC (the Acceptor, Admin and gRPC health services)
// with a Prometheus /metrics endpoint. Run it with --help for its flags and
// their environment variables.
//
// Contract: the acceptor's (see package acceptor): every reply that changed
// state was synced to disk first; a storage error takes it out of service.
// The gRPC health service reports SERVING only while the acceptor is admitted
// by its configuration and healthy, so it serves as the Kubernetes readiness
// probe (use a TCP or process check for liveness).
//
// Security (docs/design.md §9): --tls-cert-file and --tls-key-file serve
// TLS; --tls-client-ca-file adds mutual TLS, under which every call needs a
// client certificate signed by a CA of that bundle whose Subject
// Organization names a role that allows the method (kshaka:admin: all;
// kshaka:client: Prepare, Accept, Read, GetConfig, health). The three files
// are reloaded when they change (polled every 2s; a file that does not load
// keeps the previous material and is logged once), and at start the
// acceptor waits up to --tls-wait for them to exist. --admin-token-file
// adds a bearer token to the admin calls. --health-listen serves the health
// service alone, in plaintext, for the kubelet's gRPC probe.
//
// It exits non-zero with a clear message on bad flags or an unopenable data
// directory. On SIGTERM or SIGINT it stops accepting RPCs, lets the ones in
// flight finish (bounded by --shutdown-timeout), then closes the store.
package main
