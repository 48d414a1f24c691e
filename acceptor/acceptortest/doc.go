// Package acceptortest starts clusters of real Kshaka acceptors inside a test
// process, for the tests of other packages (the proposer, the operator, the
// simulation's real-process counterpart).
//
// Each acceptor is the production code: Pebble on a directory under
// t.TempDir() with real fsync, its own grpc.Server on 127.0.0.1, the Admin
// RPC to install configurations. StartCluster installs a stable
// configuration (epoch 1, P = S = all, majority quorums) with member IDs
// "a0".."a<n-1>"; Stop, Kill and Restart exercise restarts that keep the
// data directory, and Install pushes later configurations. Every acceptor is
// stopped and closed by t.Cleanup.
//
// StartTLSCluster serves mutual TLS as on Kubernetes (docs/design.md §9): a
// CA from internal/pki, a server certificate per acceptor, roles enforced
// (acceptor.Options.MutualTLS); ClientDir issues client certificates into
// directories in the kubernetes.io/tls layout (proposer.Config.TLSDir), and
// IssueServerCertificate rotates, or expires, an acceptor's certificate.
// Configurations are installed through internal/adminclient, as the
// operator does.
package acceptortest
