package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// acceptorProc is one acceptor process started by `kshaka local`.
type acceptorProc struct {
	id      string
	addr    string
	dataDir string
	logPath string
	// metricsAddr is where it serves metrics; "" for none.
	metricsAddr string

	cmd *exec.Cmd
	// logStart is where this run's part of the log file begins.
	logStart int64
	// done is closed when the process has exited; waitErr is then its exit
	// status.
	done    chan struct{}
	waitErr error
	// stopping is set before the process is signalled on purpose; killed
	// when it did not stop in time and got SIGKILL.
	stopping bool
	killed   bool
}

func (p *acceptorProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// describeExit says how the process ended ("exited with status 1", "was
// killed by signal SIGKILL").
func (p *acceptorProc) describeExit() string {
	ps := p.cmd.ProcessState
	if ps == nil {
		return "ended: " + p.waitErr.Error()
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "was killed by signal " + sigName(ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", ps.ExitCode())
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return s.String()
}

// procSpec is how to start the acceptors.
type procSpec struct {
	bin      string
	dir      string
	basePort int
	// metricsBasePort, when not 0, is a0's metrics port (a<i>: +i).
	metricsBasePort int
	sec             *localSec
	// stopTimeout is how long stop waits before SIGKILL.
	stopTimeout time.Duration
	// extraArgs are appended to every acceptor's command line (kshaka
	// bench --acceptor-arg).
	extraArgs []string
}

func newAcceptorProc(s procSpec, i int) *acceptorProc {
	id := fmt.Sprintf("a%d", i)
	p := &acceptorProc{
		id:      id,
		addr:    fmt.Sprintf("127.0.0.1:%d", s.basePort+i),
		dataDir: filepath.Join(s.dir, id),
		logPath: filepath.Join(s.dir, id+".log"),
		done:    make(chan struct{}),
	}
	if s.metricsBasePort != 0 {
		p.metricsAddr = fmt.Sprintf("127.0.0.1:%d", s.metricsBasePort+i)
	}
	return p
}

// start runs the acceptor with its output appended to its log file. exits
// receives p when the process ends.
func (p *acceptorProc) start(s procSpec, exits chan<- *acceptorProc) error {
	if err := os.MkdirAll(p.dataDir, 0o700); err != nil {
		return fmt.Errorf("while creating %s: %w", p.dataDir, err)
	}
	lf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("while opening the log of %s: %w", p.id, err)
	}
	if st, err := lf.Stat(); err == nil {
		p.logStart = st.Size()
	}
	fmt.Fprintf(lf, "=== kshaka local: starting %s at %s on %s ===\n", p.id, time.Now().Format(time.RFC3339), p.addr)
	args := []string{
		"--data-dir", p.dataDir,
		"--listen", p.addr,
		"--metrics-listen", p.metricsAddr,
		"--log-format", "text",
		// Finish in-flight requests, but exit before stop's SIGKILL.
		"--shutdown-timeout", (s.stopTimeout / 2).String(),
	}
	args = append(args, s.sec.acceptorArgs(p.id)...)
	cmd := exec.Command(s.bin, append(args, s.extraArgs...)...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = childProcAttr()
	cmd.Env = childEnv(s.sec.acceptorEnv())
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("while starting %s (%s): %w", p.id, s.bin, err)
	}
	p.cmd = cmd
	go func() {
		p.waitErr = cmd.Wait()
		lf.Close()
		close(p.done)
		exits <- p
	}()
	return nil
}

// childEnv is the environment of an acceptor: ours, without KSHAKA_*
// variables meant for the CLI, plus extra.
func childEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KSHAKA_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// waitReady polls the acceptor's GetConfig until it answers, the process
// exits or ctx ends. It returns the acceptor's incarnation and installed
// configuration.
func (p *acceptorProc) waitReady(ctx context.Context, sec *localSec) (uint64, membership.Config, error) {
	conn, err := dialAdmin(p.addr, sec.adminTLS, sec.token)
	if err != nil {
		return 0, membership.Config{}, err
	}
	defer func() { _ = conn.Close() }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := conn.GetConfig(cctx, &kshakav1.GetConfigRequest{})
		cancel()
		if err == nil {
			return resp.GetIncarnation(), wire.ConfigFromProto(resp.GetConfig()), nil
		}
		last = err
		select {
		case <-p.done:
			return 0, membership.Config{}, fmt.Errorf("acceptor %s %s before it answered; its log says:\n%s",
				p.id, p.describeExit(), tailFile(p.logPath, p.logStart, 15))
		case <-ctx.Done():
			return 0, membership.Config{}, fmt.Errorf("acceptor %s did not answer on %s in time (last error: %v); see %s",
				p.id, p.addr, last, p.logPath)
		case <-tick.C:
		}
	}
}

// stopAll sends SIGTERM to every running process, waits up to grace for
// them to exit, then kills the rest. force, when it fires, ends the grace
// period early. report is called for each process, in order, once it ended.
func stopAll(procs []*acceptorProc, grace time.Duration, force <-chan os.Signal, report func(p *acceptorProc)) {
	for _, p := range procs {
		if p.cmd == nil || p.exited() {
			continue
		}
		p.stopping = true
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			_ = p.cmd.Process.Kill()
		}
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	escalated := false
	for _, p := range procs {
		if p.cmd == nil {
			continue
		}
		if !escalated {
			select {
			case <-p.done:
				report(p)
				continue
			case <-timer.C:
			case <-force:
			}
			escalated = true
			for _, q := range procs {
				if q.cmd != nil && !q.exited() {
					q.killed = true
					_ = q.cmd.Process.Kill()
				}
			}
		}
		<-p.done
		report(p)
	}
}

// tailFile returns the last n lines of a file from offset on, indented, for
// error messages.
func tailFile(path string, offset int64, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	b = b[min(offset, int64(len(b))):]
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
