//go:build unix && !linux

package cli

import "syscall"

// childProcAttr puts an acceptor in its own process group, so a Ctrl-C in
// the terminal reaches only kshaka local, which then stops the acceptors in
// order.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
