#!/usr/bin/env bash
# Copyright 2026 The Kshaka Authors.
# SPDX-License-Identifier: Apache-2.0
#
# Builds the Kubernetes control-plane binaries that envtest, the e2e tests and
# the demo run against, from their Go modules at the versions pinned in
#   hack/kube/go.mod       k8s.io/kubernetes (+ k8s.io/* staging replaces)
#   hack/kube/etcd/go.mod  go.etcd.io/etcd/server/v3
# into bin/k8s/ (override with KUBE_BIN_DIR). Point envtest at the result:
#   export KUBEBUILDER_ASSETS="$PWD/bin/k8s"
#
# Usage: hack/build-kube-binaries.sh [-f|--force] [BINARY...]
#   BINARY is one of: etcd kube-apiserver kube-controller-manager kubectl
#   (default: all four). A binary whose version stamp
#   (bin/k8s/.stamp-<binary>-<version>) matches is skipped unless --force.
#
# The first build is slow on two cores: kube-apiserver about 4-5 minutes,
# kube-controller-manager about 2 more, kubectl and etcd about a minute each.
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Static binaries, like upstream's releases (and no C toolchain needed).
export CGO_ENABLED="${CGO_ENABLED:-0}"

ALL=(etcd kube-apiserver kube-controller-manager kubectl)
OUT="${KUBE_BIN_DIR:-$REPO/bin/k8s}"
KUBE_MOD="$REPO/hack/kube"
ETCD_MOD="$REPO/hack/kube/etcd"

force=0
want=()
for arg in "$@"; do
	case "$arg" in
	-f | --force) force=1 ;;
	-h | --help)
		sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	etcd | kube-apiserver | kube-controller-manager | kubectl) want+=("$arg") ;;
	*)
		echo "unknown binary '$arg' (want: ${ALL[*]})" >&2
		exit 2
		;;
	esac
done
((${#want[@]})) || want=("${ALL[@]}")

modversion() { # DIR MODULE
	(cd "$1" && go list -m -f '{{.Version}}' "$2")
}

mkdir -p "$OUT"
kube_version="$(modversion "$KUBE_MOD" k8s.io/kubernetes)"
etcd_version="$(modversion "$ETCD_MOD" go.etcd.io/etcd/server/v3)"

# Stamp the Kubernetes version into the binaries the way upstream's
# hack/lib/version.sh does, so --version and the apiserver's /version report
# the release rather than v0.0.0-master.
kube_ldflags() {
	local v=$kube_version major minor
	major="${v#v}"
	major="${major%%.*}"
	minor="${v#v*.}"
	minor="${minor%%.*}"
	# buildDate is the release's module time, so rebuilds are reproducible.
	local date flags=(-s -w)
	date="$(go -C "$KUBE_MOD" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
	local pkg
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=(
			-X "$pkg.gitVersion=$v"
			-X "$pkg.gitCommit=" # the proxy does not say which commit a tag is
			-X "$pkg.gitMajor=$major"
			-X "$pkg.gitMinor=$minor"
			-X "$pkg.gitTreeState=clean"
			-X "$pkg.buildDate=$date"
		)
	done
	echo "${flags[*]}"
}

total_start=$SECONDS
for bin in "${want[@]}"; do
	if [[ $bin == etcd ]]; then
		# etcd's GitSHA otherwise reads "Not provided (use ./build ...)".
		mod=$ETCD_MOD pkg=. version=$etcd_version
		ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-$etcd_version"
	else
		mod=$KUBE_MOD pkg=./cmd/$bin version=$kube_version ldflags="$(kube_ldflags)"
	fi
	if ((!force)) && stamp_ok "$OUT" "$bin" "$version"; then
		log "$bin $version is up to date ($OUT/$bin)"
		continue
	fi
	log "building $bin $version ..."
	run_timed "downloading modules for $bin" go -C "$mod" mod download
	tmp="$OUT/.$bin.tmp"
	rm -f "$tmp"
	run_timed "building $bin" \
		go -C "$mod" build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$tmp" "$pkg"
	mv -f "$tmp" "$OUT/$bin"
	stamp_write "$OUT" "$bin" "$version"
	log "built $OUT/$bin ($version) in $(fmt_secs "$RUN_SECS")"
done
log "all done in $(fmt_secs $((SECONDS - total_start))); use: export KUBEBUILDER_ASSETS=$OUT"
