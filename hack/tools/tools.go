// Copyright 2026 The Kshaka Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build tools

// Package tools pins the developer tools that hack/install-tools.sh builds
// into bin/. The versions live in this module's go.mod; bump one with
//
//	cd hack/tools && go get <module>@<version> && go mod tidy
//
// protoc-gen-go must stay at the root module's google.golang.org/protobuf
// version, so the generated code matches the runtime it is compiled with.
package tools

import (
	_ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
	_ "google.golang.org/grpc/cmd/protoc-gen-go-grpc"
	_ "google.golang.org/protobuf/cmd/protoc-gen-go"
	_ "helm.sh/helm/v3/cmd/helm"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
	_ "sigs.k8s.io/kustomize/kustomize/v5"
)
