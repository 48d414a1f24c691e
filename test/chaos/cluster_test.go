package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// acceptorBin is the kshaka-acceptor binary, built by TestMain.
var acceptorBin string

// buildAcceptor builds cmd/kshaka-acceptor into dir.
func buildAcceptor(dir string) (string, error) {
	bin := filepath.Join(dir, "kshaka-acceptor")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/kshaka-io/kshaka/cmd/kshaka-acceptor").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("while building kshaka-acceptor: %w\n%s", err, out)
	}
	return bin, nil
}

// proc is one acceptor process. Its address and data directory survive
// restarts, so it keeps its incarnation and its place in the configuration.
type proc struct {
	id      string
	addr    string
	dataDir string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func newProc(dir string, i int) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, fmt.Errorf("while picking a port: %w", err)
	}
	id := fmt.Sprintf("a%d", i)
	return &proc{
		id:      id,
		addr:    addr,
		dataDir: filepath.Join(dir, id),
		logPath: filepath.Join(dir, id+".log"),
	}, nil
}

// start runs the acceptor, appending its output to its log.
func (p *proc) start() error {
	lf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(acceptorBin,
		"--data-dir", p.dataDir,
		"--listen", p.addr,
		"--metrics-listen", "",
		"--log-format", "text",
		"--log-level", "warn",
	)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("while starting %s: %w", p.id, err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		lf.Close()
		close(exited)
	}(p.exited)
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

// waitReady polls the Admin service until it answers, and returns the
// acceptor's incarnation and configuration.
func (p *proc) waitReady(ctx context.Context) (uint64, *kshakav1.Config, error) {
	cc, err := grpc.NewClient("passthrough:///"+p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, nil, err
	}
	defer cc.Close()
	admin := kshakav1.NewAdminClient(cc)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := admin.GetConfig(cctx, &kshakav1.GetConfigRequest{})
		cancel()
		if err == nil {
			return resp.GetIncarnation(), resp.GetConfig(), nil
		}
		select {
		case <-p.exited:
			return 0, nil, fmt.Errorf("acceptor %s exited before it answered; see %s", p.id, p.logPath)
		case <-ctx.Done():
			return 0, nil, fmt.Errorf("acceptor %s did not answer on %s: %w (last error %v)", p.id, p.addr, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// setConfig installs cfg on the acceptor.
func (p *proc) setConfig(ctx context.Context, cfg membership.Config) error {
	cc, err := grpc.NewClient("passthrough:///"+p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	if _, err := kshakav1.NewAdminClient(cc).SetConfig(ctx, &kshakav1.SetConfigRequest{Config: wire.ConfigToProto(cfg)}); err != nil {
		return fmt.Errorf("while installing epoch %d on %s: %w", cfg.Epoch, p.id, err)
	}
	return nil
}

// cluster is n acceptors sharing one stable configuration.
type cluster struct {
	procs []*proc
}

// startCluster starts n acceptors under dir and installs the first
// configuration, membership.Stable(1, all of them), on each.
func startCluster(ctx context.Context, dir string, n int) (_ *cluster, err error) {
	c := &cluster{}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	var members []membership.Member
	for i := range n {
		p, err := newProc(dir, i)
		if err != nil {
			return nil, err
		}
		c.procs = append(c.procs, p)
		if err := p.start(); err != nil {
			return nil, err
		}
	}
	for _, p := range c.procs {
		inc, _, err := p.waitReady(ctx)
		if err != nil {
			return nil, err
		}
		members = append(members, membership.Member{ID: p.id, Addr: p.addr, Incarnation: inc})
	}
	cfg := membership.Stable(1, members...)
	for _, p := range c.procs {
		if err := p.setConfig(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *cluster) endpoints() []string {
	var eps []string
	for _, p := range c.procs {
		eps = append(eps, p.addr)
	}
	return eps
}

// stop kills every acceptor.
func (c *cluster) stop() {
	for _, p := range c.procs {
		p.kill()
	}
}
