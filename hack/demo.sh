#!/usr/bin/env bash
# hack/demo.sh — `make demo`: a KshakaCluster on a local control plane.
#
# Builds what is missing, starts localkube (pods run as local processes on
# 127.0.0.x), installs the operator with Helm, creates a three-acceptor
# cluster (addressMode PodIP: the kshaka CLI on the host cannot resolve the
# cluster's DNS names; `make e2e` runs the default DNS mode) with mutual TLS on, shows
# that a client without a certificate is refused, runs a client that uses
# the issued client Secret and the proposer library while the cluster
# scales 3 → 5 → 3, and leaves
# everything running so you can keep playing.
#
#   DEMO_DIR   state directory (default tmp/demo-kube)
#   DEMO_STOP  1: stop localkube at the end instead of leaving it running
#   hack/demo.sh stop   stops a running demo (same as make localkube-down LOCALKUBE_DIR=$DEMO_DIR)
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
BIN=$REPO/bin
DIR=${DEMO_DIR:-$REPO/tmp/demo-kube}
NS=kshaka-demo
CLUSTER=demo
START=$(date +%s)

say() { printf '\n\033[1m==> [%3ds] %s\033[0m\n' "$(( $(date +%s) - START ))" "$*"; }

if [[ "${1:-}" == stop ]]; then
	exec "$BIN/kshaka-localkube" down --dir "$DIR"
fi

say "building what is missing"
make --no-print-directory build
[[ -x $BIN/k8s/kube-apiserver && -x $BIN/k8s/etcd && -x $BIN/k8s/kube-controller-manager && -x $BIN/k8s/kubectl ]] ||
	{ echo "building the Kubernetes binaries (minutes the first time)"; make --no-print-directory kube-binaries; }
[[ -x $BIN/helm ]] || hack/install-tools.sh helm
(cd test/e2e && go build -o "$BIN/democlient" ./cmd/democlient) # test/e2e is its own Go module
echo "bin/: kshaka kubectl-kshaka kshaka-acceptor kshaka-operator kshaka-localkube democlient helm k8s/*"

say "starting localkube in $DIR"
# Cluster DNS needs root (a mount namespace per pod, port 53); the demo's
# cluster uses addressMode PodIP, so it runs without DNS otherwise.
DNS_FLAG=()
if [[ $EUID -ne 0 ]]; then
	say "not root: starting localkube without cluster DNS (the demo's cluster uses pod IPs)"
	DNS_FLAG=(--dns=false)
fi
"$BIN/kshaka-localkube" up --dir "$DIR" "${DNS_FLAG[@]}"
export KUBECONFIG
KUBECONFIG=$("$BIN/kshaka-localkube" kubeconfig --dir "$DIR")
kubectl() { "$BIN/k8s/kubectl" "$@"; }
helm() { "$BIN/helm" "$@"; }

say "installing the operator with Helm (image ghcr.io/kshaka-io/kshaka-operator runs bin/kshaka-operator)"
helm upgrade --install kshaka-operator charts/kshaka-operator \
	--namespace kshaka-system --create-namespace \
	--set image.repository=ghcr.io/kshaka-io/kshaka-operator --set image.tag=v0.1.0 \
	--wait --timeout 3m
kubectl -n kshaka-system get pods -o wide

say "creating KshakaCluster $NS/$CLUSTER: 3 acceptors, addressMode PodIP"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -f - <<YAML
apiVersion: kshaka.io/v1alpha1
kind: KshakaCluster
metadata:
  name: $CLUSTER
  namespace: $NS
spec:
  replicas: 3
  image: ghcr.io/kshaka-io/kshaka-acceptor
  version: v0.1.0
  addressMode: PodIP
  storage:
    size: 64Mi
YAML

wait_cluster() { # wait_cluster REPLICAS: members, ready, Available, no transition
	local want=$1 deadline=$(( $(date +%s) + 300 )) line
	while :; do
		line=$(kubectl -n "$NS" get kshakacluster "$CLUSTER" -o go-template='{{with .status}}{{with .configuration}}epoch={{.epoch}} members={{len .members}}{{else}}no configuration yet{{end}} ready={{or .readyReplicas 0}} {{range .conditions}}{{if eq .type "Available"}}available={{.status}}{{end}}{{end}} transition={{with .transition}}{{.kind}}/{{.step}}{{else}}none{{end}}{{end}}' 2>/dev/null || true)
		echo "    operator: $line"
		if [[ $line == *"members=$want ready=$want available=True transition=none"* ]]; then return 0; fi
		if (( $(date +%s) > deadline )); then echo "timed out waiting for $want members" >&2; return 1; fi
		sleep 3
	done
}
wait_cluster 3

endpoints() { kubectl -n "$NS" get kshakacluster "$CLUSTER" -o go-template='{{range $i, $m := .status.configuration.members}}{{if $i}},{{end}}{{$m.address}}{{end}}'; }
EP=$(endpoints)
FIRST=${EP%%,*}

say "mutual TLS is on by default: the operator issued the certificates"
kubectl -n "$NS" get kshakacluster "$CLUSTER" -o wide
kubectl -n "$NS" get secrets -l app.kubernetes.io/instance="$CLUSTER"
CLIENT_SECRET=$(kubectl -n "$NS" get kshakacluster "$CLUSTER" -o go-template='{{.status.tls.clientSecretName}}')
TLSDIR=$DIR/client-tls
mkdir -p "$TLSDIR"
for k in ca.crt tls.crt tls.key; do # what an application mounts from the client Secret
	kubectl -n "$NS" get secret "$CLIENT_SECRET" -o go-template="{{index .data \"$k\" | base64decode}}" >"$TLSDIR/$k"
done
chmod 600 "$TLSDIR/tls.key"
echo "client certificate: Secret $NS/$CLIENT_SECRET (O=kshaka:client), copied to $TLSDIR"
echo "a client without a certificate is refused:"
if "$BIN/kshaka" get --endpoints "$FIRST" --cacert "$TLSDIR/ca.crt" --timeout 5s hello; then
	echo "a client without a certificate was served" >&2; exit 1
fi
KSHAKA_TLS_FLAGS=(--cacert "$TLSDIR/ca.crt" --cert "$TLSDIR/tls.crt" --key "$TLSDIR/tls.key")

say "client: writes, reads and compare-and-swap through the proposer library (endpoints $EP)"
"$BIN/kshaka" put --endpoints "$FIRST" "${KSHAKA_TLS_FLAGS[@]}" hello world
"$BIN/kshaka" get --endpoints "$FIRST" "${KSHAKA_TLS_FLAGS[@]}" hello
"$BIN/democlient" --endpoints "$EP" --tls-dir "$TLSDIR" --every 3s &
CLIENT=$!
trap 'kill $CLIENT 2>/dev/null || true' EXIT
sleep 6

say "scaling to 5 while the client keeps going (one member at a time)"
kubectl -n "$NS" scale kshakacluster "$CLUSTER" --replicas=5
wait_cluster 5

say "scaling back to 3"
kubectl -n "$NS" scale kshakacluster "$CLUSTER" --replicas=3
wait_cluster 3
sleep 3
kill -INT $CLIENT
wait $CLIENT || { echo "the client reported lost writes" >&2; exit 1; }
trap - EXIT

say "the cluster"
kubectl get kshakaclusters -A
kubectl -n "$NS" get pods,pvc -o wide
PATH=$BIN:$PATH kubectl kshaka status "$CLUSTER" -n "$NS" --events 3 # the kubectl plugin, bin/kubectl-kshaka
EP=$(endpoints); FIRST=${EP%%,*}
"$BIN/kshaka" get --endpoints "$FIRST" "${KSHAKA_TLS_FLAGS[@]}" hello

if [[ ${DEMO_STOP:-0} == 1 ]]; then
	say "stopping (DEMO_STOP=1)"
	"$BIN/kshaka-localkube" down --dir "$DIR"
	echo "demo took $(( $(date +%s) - START ))s"
	exit 0
fi

say "done in $(( $(date +%s) - START ))s — it keeps running; keep playing:"
cat <<TXT
  export KUBECONFIG=$KUBECONFIG PATH=$BIN/k8s:$BIN:\$PATH
  kubectl get kshakaclusters -A
  kubectl -n $NS get kshakacluster $CLUSTER -o yaml          # configuration, members, conditions
  kubectl kshaka status $CLUSTER -n $NS                       # the plugin: quorums, failures tolerated, rescan %, certificates
  kubectl kshaka report $CLUSTER -n $NS                       # a ZIP for a bug report (no Secret data)
  kubectl -n $NS scale kshakacluster $CLUSTER --replicas=5
  kubectl -n $NS delete pod $CLUSTER-0                        # comes back with its volume
  export KSHAKA_CACERT=$TLSDIR/ca.crt KSHAKA_CERT=$TLSDIR/tls.crt KSHAKA_KEY=$TLSDIR/tls.key   # the client Secret
  kshaka put --endpoints $FIRST mykey myvalue
  kshaka get --endpoints $FIRST mykey
  democlient --endpoints $EP --tls-dir $TLSDIR   # the client workload again (Ctrl-C stops it)

Stop it:  make localkube-down LOCALKUBE_DIR=$DIR   (or hack/demo.sh stop; add PURGE=1 to delete its state)
TXT
