package cli

import "syscall"

// childProcAttr puts an acceptor in its own process group, so a Ctrl-C in
// the terminal reaches only kshaka local, which then stops the acceptors in
// order; and asks the kernel to send it SIGTERM if kshaka local dies without
// cleaning up.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
