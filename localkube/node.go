package localkube

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// nodeCapacity is what the node reports: this machine's CPUs and memory.
func nodeCapacity() corev1.ResourceList {
	mem := int64(8 << 30)
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		mem = int64(si.Totalram) * int64(si.Unit)
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(mem, resource.BinarySI),
		corev1.ResourcePods:             resource.MustParse("250"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
}

// configureNode fills in the Node object virtual-kubelet registers.
func (c *Cluster) configureNode(n *corev1.Node) {
	n.Labels = map[string]string{
		"type":                     "virtual-kubelet",
		"kubernetes.io/role":       "agent",
		"kubernetes.io/hostname":   c.cfg.NodeName,
		"kubernetes.io/os":         runtime.GOOS,
		"kubernetes.io/arch":       runtime.GOARCH,
		"localkube.kshaka.io/node": "true",
	}
	n.Status.Capacity = nodeCapacity()
	n.Status.Allocatable = nodeCapacity()
	n.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
		{Type: corev1.NodeHostName, Address: c.cfg.NodeName},
	}
	n.Status.DaemonEndpoints = corev1.NodeDaemonEndpoints{
		KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(c.ports.Kubelet)},
	}
	n.Status.NodeInfo = corev1.NodeSystemInfo{
		KubeletVersion:          c.kubeVersion,
		OperatingSystem:         runtime.GOOS,
		Architecture:            runtime.GOARCH,
		ContainerRuntimeVersion: "localkube://processes",
		KernelVersion:           kernelVersion(),
		OSImage:                 "localkube",
	}
}

// startNode registers the node and starts serving pods. It returns once
// virtual-kubelet reports the node ready.
func (c *Cluster) startNode(ctx context.Context) error {
	logger := slog.New(slog.NewTextHandler(c.nodeLog, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx = vklog.WithLogger(ctx, vkslog.FromSlog(logger))

	mux := http.NewServeMux()
	n, err := nodeutil.NewNode(c.cfg.NodeName,
		func(pc nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
			c.configureNode(pc.Node)
			c.provider.mu.Lock()
			c.provider.mu.lister = pc.Pods
			c.provider.mu.Unlock()
			return c.provider, nil, nil
		},
		nodeutil.WithClient(c.client),
		func(nc *nodeutil.NodeConfig) error {
			nc.HTTPListenAddr = "127.0.0.1:" + strconv.Itoa(c.ports.Kubelet)
			nc.Handler = nodeutil.WithAuth(nodeutil.NoAuth(), mux)
			nc.NumWorkers = 4
			nc.SkipDownwardAPIResolution = true // resolveEnv handles it, including status.podIP
			nc.EventRecorder = c.recorder
			return nil
		},
		nodeutil.WithTLSConfig(
			nodeutil.WithKeyPairFromPath(c.pki.path(pkiKubelet, "crt"), c.pki.path(pkiKubelet, "key")),
			nodeutil.WithCAFromPath(c.pki.path(pkiCA, "crt")),
		),
		nodeutil.AttachProviderRoutes(mux),
	)
	if err != nil {
		return fmt.Errorf("while creating the node: %w", err)
	}
	c.node = n
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := n.Run(ctx); err != nil && ctx.Err() == nil {
			c.fail(fmt.Errorf("the node stopped: %w", err))
		}
	}()
	return n.WaitReady(ctx, 0)
}

func kernelVersion() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
