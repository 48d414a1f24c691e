package localkube

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Every child process (control plane and pod containers) is started in its
// own process group with PR_SET_PDEATHSIG=SIGKILL, so that it dies with the
// process that started it even when that process is killed. The death
// signal is tied to the OS thread that forked, not the process, so all
// forks happen on one goroutine locked to a thread that never exits.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func startLocked(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive every child
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	attr := childSysProcAttr()
	if cmd.SysProcAttr != nil {
		attr.Unshareflags = cmd.SysProcAttr.Unshareflags // podSysProcAttr
	}
	cmd.SysProcAttr = attr
	r := spawnReq{cmd: cmd, done: make(chan error, 1)}
	spawner.reqs <- r
	return <-r.done
}

// proc is one running child process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	pidFile string
	done    chan struct{} // closed when the process has been reaped
	state   *os.ProcessState
	started time.Time
	exited  time.Time
}

// startProc starts cmd and records its pid in pidFile (when not empty) so
// that `down` can find it if this process dies without cleaning up.
func startProc(name string, cmd *exec.Cmd, pidFile string) (*proc, error) {
	if cmd.WaitDelay == 0 {
		// Output goes through pipes; a grandchild that keeps them open must
		// not hold up Wait forever.
		cmd.WaitDelay = 2 * time.Second
	}
	if err := startLocked(cmd); err != nil {
		return nil, fmt.Errorf("while starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, pidFile: pidFile, done: make(chan struct{}), started: time.Now()}
	if pidFile != "" {
		if err := writePidFile(pidFile, cmd.Process.Pid); err != nil {
			_ = p.signal(syscall.SIGKILL)
			_ = cmd.Wait()
			return nil, err
		}
	}
	go func() {
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		p.exited = time.Now()
		if pidFile != "" {
			_ = os.Remove(pidFile)
		}
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// signal sends sig to the process group.
func (p *proc) signal(sig syscall.Signal) error {
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// stop sends SIGTERM, waits up to grace, then sends SIGKILL and waits for
// the process to be reaped. Members of its process group that outlive it
// are killed too.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
	default:
		_ = p.signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-p.done:
		case <-t.C:
			_ = p.signal(syscall.SIGKILL)
			<-p.done
		}
		t.Stop()
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // stray group members
}

// exitCode reports the exit code the way a kubelet does: 128+signal for a
// process killed by a signal.
func (p *proc) exitCode() (code int32, signal int32) {
	if p.state == nil {
		return -1, 0
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int32(ws.Signal()), int32(ws.Signal())
	}
	return int32(p.state.ExitCode()), 0
}

// Pid files hold "PID STARTTIME" where STARTTIME is field 22 of
// /proc/PID/stat, so a recycled pid is never mistaken for our process.

func writePidFile(path string, pid int) error {
	st, err := procStartTime(pid)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, fmt.Appendf(nil, "%d %s\n", pid, st), 0o644)
}

// readPidFile returns the pid recorded in path when that process is still
// the one that was recorded, and 0 otherwise.
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, fmt.Errorf("%s: malformed pid file", path)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s: malformed pid file", path)
	}
	st, err := procStartTime(pid)
	if err != nil || st != f[1] {
		return 0, nil // gone, or a different process now
	}
	return pid, nil
}

func procStartTime(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); the start time is field 22.
	if len(f) < 20 {
		return "", errors.New("malformed /proc stat")
	}
	if f[0] == "Z" {
		return "", os.ErrNotExist
	}
	return f[19], nil
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	_, err := procStartTime(pid)
	return err == nil
}

// KillLeftovers kills every process recorded under dir/run (control plane
// and pod containers of an environment whose supervisor died) and removes
// the pid files. It returns the pids it killed.
func KillLeftovers(dir string) ([]int, error) {
	var killed []int
	err := filepath.WalkDir(filepath.Join(dir, "run"), func(path string, d os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".pid") {
			return err
		}
		pid, err := readPidFile(path)
		if err == nil && pid > 0 {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed = append(killed, pid)
		}
		return os.Remove(path)
	})
	return killed, err
}
