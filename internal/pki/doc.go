// Package pki issues and inspects the certificates of a Kshaka cluster
// (docs/design.md §9): a CA per cluster, a server certificate per acceptor,
// and client certificates whose Subject Organization carries the caller's
// role, the way Kubernetes reads groups from a client certificate's O.
//
// The operator issues with it in its Operator TLS mode, `kshaka local --tls`
// makes a local CA with it, and the acceptor reads roles with RoleOf. Keys
// are ECDSA P-256; certificates and keys are PEM (keys in PKCS #8).
package pki
