// Package e2e holds the end-to-end tests of Kshaka on Kubernetes: the
// operator installed with Helm or from dist/install.yaml on a local control
// plane (test/localkube), KshakaClusters created, scaled, and disturbed
// (pods deleted, disks lost, the operator killed mid-change, paused) while
// a client workload runs through the proposer library. Every workload's
// history is checked for linearizability against a compare-and-swap
// register model (porcupine), so an acknowledged write that is lost, or a
// read of a value that was never written, fails the test.
//
// The tests carry the build tag e2e: `make e2e`, or
//
//	go test -tags e2e -count=1 -v ./test/e2e/
//
// after `make build kube-binaries` and `hack/install-tools.sh helm`.
// The model (model.go) has no tag; its unit tests, including negative
// controls that the checker must reject, run with the ordinary tests.
//
// cmd/democlient is the client of `make demo` (hack/demo.sh).
package e2e
