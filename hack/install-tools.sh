#!/usr/bin/env bash
# Copyright 2026 The Kshaka Authors.
# SPDX-License-Identifier: Apache-2.0
#
# Builds the pinned developer tools into bin/ (override with TOOLS_BIN_DIR)
# with `GOBIN=bin go install <pkg>`, run inside the module that pins them:
# hack/tools/<tool>/ when that folder has its own go.mod, else hack/tools/.
# The versions are the ones in that go.mod; nothing is taken from @latest.
#
# Usage: hack/install-tools.sh [-f|--force] [-l|--list] [TOOL...]
#   TOOL is one of: protoc-gen-go protoc-gen-go-grpc golangci-lint
#   controller-gen kustomize helm promtool (default: all). A tool whose stamp
#   (bin/.stamp-<tool>-<version>) matches is skipped unless --force.
#   --list prints each tool with its pinned version and whether it is built.
#
# To bump a tool: cd hack/tools && go get <module>@<version> && go mod tidy
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=(protoc-gen-go protoc-gen-go-grpc golangci-lint controller-gen kustomize helm promtool)
declare -A PKG=(
	[protoc-gen-go]=google.golang.org/protobuf/cmd/protoc-gen-go
	[protoc-gen-go-grpc]=google.golang.org/grpc/cmd/protoc-gen-go-grpc
	[golangci-lint]=github.com/golangci/golangci-lint/v2/cmd/golangci-lint
	[controller-gen]=sigs.k8s.io/controller-tools/cmd/controller-gen
	[kustomize]=sigs.k8s.io/kustomize/kustomize/v5
	[helm]=helm.sh/helm/v3/cmd/helm
	[promtool]=github.com/prometheus/prometheus/cmd/promtool
)
OUT="${TOOLS_BIN_DIR:-$REPO/bin}"
TOOLS="$REPO/hack/tools"

force=0 list=0
want=()
for arg in "$@"; do
	case "$arg" in
	-f | --force) force=1 ;;
	-l | --list) list=1 ;;
	-h | --help)
		sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		if [[ -z ${PKG[$arg]:-} ]]; then
			echo "unknown tool '$arg' (want: ${ALL[*]})" >&2
			exit 2
		fi
		want+=("$arg")
		;;
	esac
done
((${#want[@]})) || want=("${ALL[@]}")

# moddir TOOL: the module that pins TOOL.
moddir() {
	if [[ -f $TOOLS/$1/go.mod ]]; then echo "$TOOLS/$1"; else echo "$TOOLS"; fi
}

# ldflags TOOL VERSION: what the tool's own release build stamps in, since a
# build from a wrapper module otherwise reports "(devel)" or "unknown".
ldflags() {
	local date
	date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	case "$1" in
	golangci-lint) echo "-s -w -X main.version=${2#v} -X main.date=$date" ;;
	controller-gen) echo "-s -w -X sigs.k8s.io/controller-tools/pkg/version.version=$2" ;;
	helm)
		# Helm's Makefile also derives the Kubernetes version it assumes for
		# lint/capabilities from its client-go (v0.X.Y -> 1.X).
		local cg major minor
		cg="$(cd "$(moddir helm)" && go list -m -f '{{.Version}}' k8s.io/client-go)"
		cg="${cg#v}"
		major=$((${cg%%.*} + 1))
		minor="${cg#*.}"
		minor="${minor%%.*}"
		echo "-s -w -X helm.sh/helm/v3/internal/version.version=$2" \
			"-X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
			"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major" \
			"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
			"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major" \
			"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
		;;
	promtool)
		# Prometheus' module versions are v0.3XX.Y for release 3.XX.Y.
		local v="${2#v0.3}"
		echo "-s -w -X github.com/prometheus/common/version.Version=3.${v}" \
			"-X github.com/prometheus/common/version.Branch=HEAD"
		;;
	*) echo "-s -w" ;;
	esac
}

# tags TOOL: build tags. promtool checks and tests rules; it needs none of
# Prometheus' cloud service discoveries, whose SDKs are a fifth of its build
# (Prometheus' own remove_all_sd tag; file, http and kubernetes remain).
tags() {
	case "$1" in
	promtool) echo "remove_all_sd" ;;
	*) echo "" ;;
	esac
}

mkdir -p "$OUT"
total_start=$SECONDS
for tool in "${want[@]}"; do
	pkg=${PKG[$tool]}
	dir="$(moddir "$tool")"
	version="$(cd "$dir" && go list -m -f '{{.Version}}' "$(cd "$dir" && go list -f '{{.Module.Path}}' "$pkg")")"
	if ((list)); then
		state=missing
		stamp_ok "$OUT" "$tool" "$version" && state=built
		printf '%-20s %-12s %-8s %s\n' "$tool" "$version" "$state" "$pkg"
		continue
	fi
	if ((!force)) && stamp_ok "$OUT" "$tool" "$version"; then
		log "$tool $version is up to date ($OUT/$tool)"
		continue
	fi
	log "building $tool $version ..."
	rm -f "$OUT/.stamp-$tool-v"*
	run_timed "building $tool" env GOBIN="$OUT" CGO_ENABLED="${CGO_ENABLED:-0}" \
		go -C "$dir" install -trimpath -buildvcs=false -tags "$(tags "$tool")" -ldflags "$(ldflags "$tool" "$version")" "$pkg"
	stamp_write "$OUT" "$tool" "$version"
	log "installed $OUT/$tool ($version) in $(fmt_secs "$RUN_SECS")"
done
((list)) || log "all done in $(fmt_secs $((SECONDS - total_start)))"
