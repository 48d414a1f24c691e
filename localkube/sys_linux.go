package localkube

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// childSysProcAttr puts a child in its own process group and kills it when
// the thread that forked it (see startLocked) exits.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// lockDir takes an exclusive lock on dir/lock so that two environments never
// share a directory. The lock is released when the returned file is closed or
// the process exits.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir+"/lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s is in use by another localkube", ErrBusy, dir)
	}
	return f, nil
}

// DirInUse reports whether an environment currently holds dir's lock.
func DirInUse(dir string) bool {
	f, err := os.OpenFile(dir+"/lock", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// Linux capability numbers (linux/capability.h).
const (
	capNetBindService = 10
	capSysAdmin       = 21
)

// checkDNSCapabilities reports what the cluster DNS needs and the process
// lacks: CAP_SYS_ADMIN for a mount namespace per container and
// CAP_NET_BIND_SERVICE for port 53.
func checkDNSCapabilities() error {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("while reading the process's capabilities: %w", err)
	}
	var eff uint64
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			if eff, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
				return fmt.Errorf("while reading the process's capabilities: CapEff %q: %w", v, err)
			}
		}
	}
	var missing []string
	if eff&(1<<capSysAdmin) == 0 {
		missing = append(missing, "CAP_SYS_ADMIN (a mount namespace per container, for its resolv.conf)")
	}
	if eff&(1<<capNetBindService) == 0 {
		missing = append(missing, "CAP_NET_BIND_SERVICE (the DNS server's port 53)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the cluster DNS needs root or these capabilities: %s", strings.Join(missing, ", "))
	}
	return nil
}

// podSysProcAttr is what a container process needs besides
// childSysProcAttr: a mount namespace of its own (Go also makes every
// mount in it private), in which internal/podinit bind-mounts the pod's
// resolv.conf.
func podSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
}
