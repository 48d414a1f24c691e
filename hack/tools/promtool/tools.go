// Copyright 2026 The Kshaka Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build tools

// Package tools pins promtool (Prometheus' rule checker and rule unit-test
// runner), which hack/install-tools.sh builds into bin/promtool. It has a
// module of its own because github.com/prometheus/prometheus pulls in a
// dependency graph (cloud SDKs, Kubernetes discovery) that would otherwise
// move the versions of the other tools in hack/tools/go.mod. Bump it with
//
//	cd hack/tools/promtool && go get github.com/prometheus/prometheus@<version> && go mod tidy
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
