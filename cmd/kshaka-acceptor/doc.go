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
// It exits non-zero with a clear message on bad flags or an unopenable data
// directory. On SIGTERM or SIGINT it stops accepting RPCs, lets the ones in
// flight finish (bounded by --shutdown-timeout), then closes the store.
package main
