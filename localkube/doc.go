// Package localkube runs a local Kubernetes control plane for end-to-end
// tests and the demo (`make e2e`, `make demo`; the kshaka-localkube command
// in cmd/kshaka-localkube): etcd, kube-apiserver and kube-controller-manager
// (binaries built from their Go modules by hack/build-kube-binaries.sh) plus
// one node, built on virtual-kubelet, that runs pods as local processes.
//
// What a pod gets:
//   - its own loopback address from Config.PodAddresses, reported as the pod
//     IP and in $POD_IP (also POD_NAME, POD_NAMESPACE, and the downward API
//     for env: metadata.*, status.podIP, spec.nodeName, ...);
//   - each container runs the binary its image maps to (ImageRule:
//     "kshaka/acceptor:TAG" runs ImageBinDir/TAG/kshaka-acceptor when that
//     exists, else ImageBinDir/kshaka-acceptor), in its own process group;
//   - volumes are host directories. Paths under a container's volume mounts
//     that appear in its command, args, env values and working directory are
//     rewritten to the host directory, since processes share one filesystem;
//   - $KUBECONFIG points at a kubeconfig whose client certificate is the
//     pod's service account (system:serviceaccount:NS:NAME), so RBAC applies
//     as with a token; no token file is written;
//   - readiness, liveness and startup probes (httpGet, gRPC health,
//     tcpSocket, exec), restarts with backoff, exit codes (128+signal when
//     killed), `kubectl logs` (with -f, --previous, --tail, --timestamps),
//     `kubectl exec` (runs on the host with the container's environment)
//     and `kubectl port-forward`;
//   - deleting a pod sends SIGTERM, then SIGKILL after the grace period, and
//     removes the pod object once every process has exited;
//   - cluster DNS (unless Config.DisableDNS): localkube answers A queries
//     for the cluster domain on the last address of PodAddresses, port 53,
//     from Services and Pods (a headless Service's ready pods, all of them
//     with publishNotReadyAddresses, as the EndpointSlice controller picks
//     them; its pods' <hostname>.<subdomain>.<ns>.svc.<domain>; another
//     Service's
//     ClusterIP, which nothing routes), TTL DNSTTL, NXDOMAIN for the rest of
//     the domain, other names forwarded to the host's name servers. Every
//     process of a pod (containers, exec probes, kubectl exec) runs in a
//     mount namespace of its own with the pod's resolv.conf (search
//     <ns>.svc.<domain> svc.<domain> <domain>, ndots:5, as dnsPolicy
//     ClusterFirst; Default and None are honoured) bind-mounted over
//     /etc/resolv.conf by internal/podinit, a re-exec of localkube's own
//     binary that then executes the container's. This needs root
//     (CAP_SYS_ADMIN, CAP_NET_BIND_SERVICE): Start fails with ErrNoDNS
//     otherwise. Processes on the host resolve cluster names through
//     ClusterResolver (Cluster.Resolver, or State.DNSServer of a running
//     environment), whose GRPCDialOptions keep the DNS name as the gRPC
//     authority and TLS server name.
//
// Persistent volumes: a default StorageClass "standard" whose claims are
// bound by a small provisioner to directories Dir/volumes/pvc-UID. The
// directories outlive pods; deleting the claim deletes the directory.
//
// Not there: Service networking (no kube-proxy: clients use pod IPs or the
// DNS names of headless Services; the apiserver reaches webhooks through
// endpoints), SRV and PTR records, resource limits, kube-scheduler (a
// stand-in binds every pod to the one node).
//
// Lifecycle: Start returns once the node is Ready; Stop kills every process
// it started and waits for them. Every child process also dies with the
// process that started it (PR_SET_PDEATHSIG), and their pids are recorded
// under Dir/run so that KillLeftovers can clean up after a crash. Dir keeps
// the cluster's state: starting again on the same Dir resumes it.
//
// The package does not log: progress goes to Config.Events, component
// output to Dir/logs.
//
// It is its own Go module, github.com/kshaka-io/kshaka/localkube, and
// imports nothing from Kshaka: virtual-kubelet and the kubelet libraries
// stay out of the dependencies of the Kshaka module. Its tests run from
// this directory (`make test` runs them); those that start a control
// plane need bin/k8s and bin/helm of the repository (`make kube-binaries`).
package localkube
