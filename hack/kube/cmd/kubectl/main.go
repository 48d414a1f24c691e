// Copyright 2026 The Kshaka Authors.
// SPDX-License-Identifier: Apache-2.0

// Command kubectl is upstream's kubectl, built from the k8s.io/kubectl
// staging module pinned in hack/kube/go.mod (see
// hack/build-kube-binaries.sh). It mirrors k8s.io/kubernetes/cmd/kubectl.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"

	// Import to initialize client auth plugins.
	_ "k8s.io/client-go/plugin/pkg/client/auth"
)

func main() {
	// Set klog verbosity before the command is built, as upstream does, so
	// that plugin handling and .kuberc parsing honour -v.
	logs.GlogSetter(cmd.GetLogVerbosity(os.Args)) //nolint:errcheck
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		// Pretty-print the error and exit with an error.
		util.CheckErr(err)
	}
}
