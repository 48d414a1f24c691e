package localkube

import (
	"fmt"
	"os"
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
