// Copyright 2026 The Kshaka Authors.
// SPDX-License-Identifier: Apache-2.0

// Command kube-apiserver is upstream's kube-apiserver, built from the
// k8s.io/kubernetes module pinned in hack/kube/go.mod (see
// hack/build-kube-binaries.sh). It mirrors k8s.io/kubernetes/cmd/kube-apiserver.
package main

import (
	"os"
	_ "time/tzdata" // for timeZone support in CronJob

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
