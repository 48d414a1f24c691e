package localkube

import (
	"os"
	"os/exec"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"

	"github.com/kshaka-io/kshaka/localkube/internal/podinit"
)

// Pods and DNS: with the cluster DNS on, every process of a pod (its
// containers, exec probes, `kubectl exec`) starts as localkube's own binary
// in a mount namespace of its own (podSysProcAttr), where
// internal/podinit bind-mounts the pod's resolv.conf over /etc/resolv.conf
// and then executes the real command, keeping pid, process group and the
// parent-death signal. Programs that read /etc/resolv.conf (Go's resolver,
// glibc's) then resolve cluster names through localkube's DNS server.

// inPodNamespace makes cmd run through internal/podinit with resolvConf
// over /etc/resolv.conf. It does nothing when resolvConf is "" (DNS off,
// or a pod with dnsPolicy Default) or cmd could not be resolved.
func inPodNamespace(cmd *exec.Cmd, resolvConf string) {
	if resolvConf == "" || cmd.Err != nil {
		return
	}
	cmd.Args = podinit.Argv(resolvConf, cmd.Path, cmd.Args)
	cmd.Path = "/proc/self/exe"
	attr := podSysProcAttr()
	if cmd.SysProcAttr != nil {
		cmd.SysProcAttr.Unshareflags |= attr.Unshareflags
	} else {
		cmd.SysProcAttr = attr
	}
}

// writeResolvConf writes the pod's resolv.conf into its directory and
// returns its path, or "" when the pod uses the host's.
func (rt *podRuntime) writeResolvConf(pod *corev1.Pod) (string, error) {
	if !rt.p.dns.IsValid() {
		return "", nil
	}
	conf := podResolvConf(pod, rt.p.dns, rt.p.cfg.ClusterDomain)
	if conf == "" {
		return "", nil
	}
	path := filepath.Join(rt.dir, "resolv.conf")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(conf), 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}
