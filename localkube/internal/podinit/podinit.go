package podinit

import (
	"fmt"
	"os"
	"syscall"
)

// Arg0 is argv[0] of the pod init step.
const Arg0 = "localkube-pod-init"

// ResolvConf is the file the step replaces.
const ResolvConf = "/etc/resolv.conf"

// exitFailed is the exit code when the step fails; a container runtime
// uses 127/128 for a failed exec, and a kubelet reports it as the
// container's exit code.
const exitFailed = 128

// Argv returns the arguments that make /proc/self/exe run the step and then
// exec path with argv (argv[0] included) from the pod's resolvConf.
func Argv(resolvConf, path string, argv []string) []string {
	return append([]string{Arg0, resolvConf, path}, argv...)
}

func init() {
	if len(os.Args) < 4 || os.Args[0] != Arg0 {
		return
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3:]); err != nil {
		fmt.Fprintf(os.Stderr, "localkube pod init: %v\n", err)
		os.Exit(exitFailed)
	}
}

func run(resolvConf, path string, argv []string) error {
	// The process must be in a mount namespace of its own (the caller's
	// Unshareflags CLONE_NEWNS, which also made every mount private):
	// otherwise the bind mount would replace the host's resolv.conf.
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return fmt.Errorf("while reading the mount namespace: %w", err)
	}
	parent, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
	if err == nil && parent == self {
		return fmt.Errorf("refusing to mount over %s: not started in a mount namespace of its own (CLONE_NEWNS)", ResolvConf)
	}
	if err := syscall.Mount(resolvConf, ResolvConf, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("while bind-mounting %s over %s: %w", resolvConf, ResolvConf, err)
	}
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("while executing %s: %w", path, err)
	}
	return nil
}
