package bench

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

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdCluster is a local etcd cluster of separate processes on loopback,
// the anchor the benchmark compares Kshaka with. Every member keeps etcd's
// defaults, including an fsync per commit.
type EtcdCluster struct {
	procs     []*exec.Cmd
	endpoints []string
}

// StartEtcd starts members etcd processes from binary with data under dir,
// clients on 127.0.0.1:basePort+i and peers on 127.0.0.1:basePort+100+i,
// and waits until the cluster answers a linearizable read.
func StartEtcd(ctx context.Context, binary, dir string, members, basePort int) (*EtcdCluster, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("etcd binary: %w (build it with `make kube-binaries`)", err)
	}
	var initial []string
	for i := range members {
		initial = append(initial, fmt.Sprintf("e%d=http://127.0.0.1:%d", i, basePort+100+i))
	}
	c := &EtcdCluster{}
	for i := range members {
		client := fmt.Sprintf("http://127.0.0.1:%d", basePort+i)
		peer := fmt.Sprintf("http://127.0.0.1:%d", basePort+100+i)
		data := filepath.Join(dir, fmt.Sprintf("e%d", i))
		logf, err := os.Create(data + ".log")
		if err != nil {
			c.Stop()
			return nil, err
		}
		cmd := exec.Command(binary,
			"--name", fmt.Sprintf("e%d", i), "--data-dir", data,
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", "kshaka-bench",
			"--log-level", "error")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			c.Stop()
			return nil, fmt.Errorf("while starting etcd member %d: %w", i, err)
		}
		logf.Close()
		c.procs = append(c.procs, cmd)
		c.endpoints = append(c.endpoints, fmt.Sprintf("127.0.0.1:%d", basePort+i))
	}
	if err := c.waitReady(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *EtcdCluster) waitReady(ctx context.Context) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := cli.Get(rctx, "ready")
		rcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd cluster did not become ready: %w", errors.Join(ctx.Err(), err))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Endpoints are the members' client addresses.
func (c *EtcdCluster) Endpoints() []string { return c.endpoints }

// Pids are the members' process IDs.
func (c *EtcdCluster) Pids() []int {
	var pids []int
	for _, p := range c.procs {
		pids = append(pids, p.Process.Pid)
	}
	return pids
}

// Stop terminates every member and waits for it.
func (c *EtcdCluster) Stop() {
	for _, p := range c.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range c.procs {
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	c.procs = nil
}
