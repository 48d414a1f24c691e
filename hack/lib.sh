# shellcheck shell=bash
# Copyright 2026 The Kshaka Authors.
# SPDX-License-Identifier: Apache-2.0
#
# Helpers shared by hack/install-tools.sh and hack/build-kube-binaries.sh.
# Source it; it does not run anything itself.

# REPO is the repository root (the parent of hack/).
# shellcheck disable=SC2034 # used by the scripts that source this file
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Use the Go on this machine unless the caller chose a toolchain explicitly;
# never let a go.mod line trigger a toolchain download behind our back.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# log MSG... prints a timestamped progress line to stderr.
log() {
	printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

# fmt_secs N prints N seconds as "1m05s" / "42s".
fmt_secs() {
	local s=$1
	if ((s >= 60)); then
		printf '%dm%02ds' $((s / 60)) $((s % 60))
	else
		printf '%ds' "$s"
	fi
}

# run_timed LABEL CMD... runs CMD, printing "still LABEL (elapsed)" every
# HEARTBEAT seconds (default 30) while it runs, and "LABEL done in Xs" at the
# end. Returns CMD's exit status. The elapsed seconds land in RUN_SECS.
run_timed() {
	local label=$1
	shift
	local start=$SECONDS pid rc=0
	"$@" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		local i
		for ((i = 0; i < ${HEARTBEAT:-30}; i++)); do
			sleep 1
			kill -0 "$pid" 2>/dev/null || break 2
		done
		log "  ... still ${label} ($(fmt_secs $((SECONDS - start))) elapsed)"
	done
	wait "$pid" || rc=$?
	RUN_SECS=$((SECONDS - start))
	if ((rc == 0)); then
		log "  ${label} done in $(fmt_secs "$RUN_SECS")"
	else
		log "  ${label} FAILED (exit ${rc}) after $(fmt_secs "$RUN_SECS")"
	fi
	return "$rc"
}

# stamp_ok DIR NAME VERSION succeeds when DIR/NAME exists and was built at
# VERSION (its stamp file DIR/.stamp-NAME-VERSION exists).
stamp_ok() {
	[[ -x "$1/$2" && -f "$1/.stamp-$2-$3" ]]
}

# stamp_write DIR NAME VERSION replaces NAME's stamps with one for VERSION.
stamp_write() {
	rm -f "$1/.stamp-$2-v"*  # versions start with v, so protoc-gen-go-v* misses protoc-gen-go-grpc-v*
	: >"$1/.stamp-$2-$3"
}
