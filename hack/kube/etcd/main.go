// Copyright 2026 The Kshaka Authors.
// SPDX-License-Identifier: Apache-2.0

// Command etcd is upstream's etcd server, built from go.etcd.io/etcd/server/v3
// at the version pinned in hack/kube/etcd/go.mod (see
// hack/build-kube-binaries.sh). It lives in its own module because
// k8s.io/kubernetes would otherwise raise etcd's dependencies.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
