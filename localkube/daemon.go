package localkube

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// A supervisor is the process that called Start and keeps the environment
// running (kshaka-localkube up). It records itself in Dir/localkube.pid and
// what it serves in Dir/state.json, so that other commands can find it.

// State describes a running environment.
type State struct {
	PID          int       `json:"pid"`
	Started      time.Time `json:"started"`
	Ready        time.Time `json:"ready"`
	Kubeconfig   string    `json:"kubeconfig"`
	Server       string    `json:"server"`
	Node         string    `json:"node"`
	PodAddresses string    `json:"podAddresses"`
	// DNSServer is the cluster DNS, "IP:53", or "" when it is off; clients
	// on the host use it through NewClusterResolver.
	DNSServer     string `json:"dnsServer,omitempty"`
	ClusterDomain string `json:"clusterDomain,omitempty"`
}

func supervisorPidFile(dir string) string { return filepath.Join(dir, "localkube.pid") }
func stateFile(dir string) string         { return filepath.Join(dir, "state.json") }

// State returns what a supervisor records for this cluster.
func (c *Cluster) State(started time.Time) State {
	s := State{
		PID: os.Getpid(), Started: started, Ready: time.Now(),
		Kubeconfig: c.KubeconfigPath(), Server: c.Server(),
		Node: c.cfg.NodeName, PodAddresses: c.cfg.PodAddresses,
	}
	if c.dns != nil {
		s.DNSServer, s.ClusterDomain = c.DNSServer().String(), c.cfg.ClusterDomain
	}
	return s
}

// WriteSupervisorPID records the calling process as dir's supervisor.
func WriteSupervisorPID(dir string) error {
	return writePidFile(supervisorPidFile(dir), os.Getpid())
}

// WriteState records s once the environment is ready.
func WriteState(dir string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := stateFile(dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, stateFile(dir))
}

// ClearState removes the supervisor's records.
func ClearState(dir string) {
	_ = os.Remove(stateFile(dir))
	_ = os.Remove(supervisorPidFile(dir))
}

// ReadState returns the state of dir's environment. running is true when
// its supervisor process is alive; ready is true when it has also finished
// starting (s is then filled in).
func ReadState(dir string) (s State, running, ready bool) {
	pid, err := readPidFile(supervisorPidFile(dir))
	if err != nil || pid == 0 {
		return s, false, false
	}
	b, err := os.ReadFile(stateFile(dir))
	if err == nil && json.Unmarshal(b, &s) == nil && s.PID == pid {
		return s, true, true
	}
	return State{PID: pid}, true, false
}

// StopSupervisor asks dir's supervisor to stop (SIGTERM) and waits until it
// has exited, killing it when ctx ends first. Then it kills any process the
// environment left behind. It reports whether a supervisor was running and
// the pids of leftovers it had to kill.
func StopSupervisor(ctx context.Context, dir string) (wasRunning bool, leftovers []int, err error) {
	pid, _ := readPidFile(supervisorPidFile(dir))
	if pid > 0 {
		wasRunning = true
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return true, nil, err
		}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
	wait:
		for processAlive(pid) {
			select {
			case <-ctx.Done():
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break wait
			case <-tick.C:
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for processAlive(pid) { // after SIGKILL: wait for the kernel to reap it
			if time.Now().After(deadline) {
				return true, nil, errors.New("the supervisor did not exit after SIGKILL")
			}
			<-tick.C
		}
	}
	leftovers, err = KillLeftovers(dir)
	ClearState(dir)
	return wasRunning, leftovers, err
}
