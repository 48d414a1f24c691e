// Package e2e holds the end-to-end tests of Kshaka on Kubernetes: the
// operator installed with Helm or from dist/install.yaml on a local control
// plane (localkube), KshakaClusters created, scaled, and disturbed
// (pods deleted, disks lost, the operator killed mid-change, paused) while
// a client workload runs through the proposer library. Every workload's
// history is recorded and checked for linearizability by package
// test/lincheck, version-based: the workload's compare-and-swap compares
// versions, and every version the client is told is checked against the
// register's rules. An acknowledged write that is lost, a read of a value
// that was never written, or a version that breaks the rules fails the
// test.
//
// TestHelm runs the default address mode, DNS, with TLS on: the operator
// (a pod) resolves the acceptors' names through localkube's cluster DNS,
// and the tests' clients, on the host, through localkube.ClusterResolver
// (clientDialOptions), which keeps the DNS name as the TLS server name.
// TestInstaller keeps PodIP mode covered.
//
// The tests carry the build tag e2e: `make e2e`, or, from this directory,
//
//	go test -tags e2e -count=1 -v .
//
// after `make build kube-binaries` and `hack/install-tools.sh helm`.
// test/e2e is its own Go module (github.com/kshaka-io/kshaka/test/e2e,
// building against this repository's Kshaka and localkube through replace
// directives), so that the root module does not depend on localkube and
// its virtual-kubelet; `go test ./...` at the root does not enter it.
// The model's unit tests, including the negative controls that the
// checker must reject, are in test/lincheck and run with the ordinary
// tests.
//
// cmd/democlient is the client of `make demo` (hack/demo.sh).
package e2e
