package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

const acceptorBinName = "kshaka-acceptor"

type localOptions struct {
	acceptors    int
	dir          string
	basePort     int
	acceptorBin  string
	demo         bool
	exit         bool
	startTimeout time.Duration
	stopTimeout  time.Duration
	// metricsBasePort, when not 0, is the metrics port of acceptor a0
	// (a<i> serves on metricsBasePort+i).
	metricsBasePort int
}

func newLocalCmd(g *globals) *cobra.Command {
	o := localOptions{}
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run a cluster of acceptor processes on this machine, for development",
		Long: `Run a cluster of acceptor processes on this machine, for development.

kshaka local starts N kshaka-acceptor processes on loopback (127.0.0.1:P,
127.0.0.1:P+1, ...), each with its data in DIR/a<i> and its log in
DIR/a<i>.log, waits until each answers, and installs their first
configuration (epoch 1, every acceptor in the prepare and accept sets,
majority quorums). It then prints how to connect and runs until Ctrl-C
(SIGINT or SIGTERM), when it stops the acceptors with SIGTERM, and with
SIGKILL those still running after --stop-timeout (a second Ctrl-C kills at
once). An acceptor that dies meanwhile is reported; the others keep running.

Running it again on the same DIR reuses the data and the configuration. If an
acceptor's data directory was deleted, its acceptor comes back as a new,
empty acceptor and kshaka local refuses to start: replacing a member is a
membership change, which the Kubernetes operator performs and kshaka local
does not. Delete the whole DIR to start over.

Security. The acceptors' admin calls (status, configuration changes) need an
admin token: the one given with --admin-token or --admin-token-file, or one
kshaka local generates into DIR/admin-token (mode 0600) and reuses. The kshaka
commands find it there by themselves when --dir is the default and every
endpoint is on loopback; otherwise pass --admin-token-file DIR/admin-token.
Without --tls the acceptors serve plaintext on loopback. With --tls they serve
mutual TLS as on Kubernetes: kshaka local makes a CA and certificates under
DIR/tls (reused, and reissued before they expire): one per acceptor for
127.0.0.1 and localhost, DIR/tls/admin with O=kshaka:admin and DIR/tls/client
with O=kshaka:client, each in the kubernetes.io/tls layout (ca.crt, tls.crt,
tls.key). It prints the flags and environment the kshaka commands need, and
the proposer.Config.TLSDir for Go programs.

With --metrics-base-port M, acceptor a<i> serves its Prometheus metrics
(kshaka_acceptor_*, the store's disk usage among them) in plaintext on
127.0.0.1:M+i; without it they serve none.

The kshaka-acceptor binary is looked up next to the kshaka executable, then on
PATH; --acceptor-bin overrides both.

--demo runs a short self-check once the cluster is up: put, get, a
compare-and-swap that succeeds and one that must be refused. With --exit,
kshaka local then stops the acceptors and exits with the self-check's result.`,
		Example: `  # a three-acceptor cluster in ./kshaka-data, on ports 7400-7402
  kshaka local

  # show it working, then stop
  kshaka local --demo --exit

  # mutual TLS with a local CA, as on Kubernetes
  kshaka local --tls

  # five acceptors elsewhere
  kshaka local --acceptors 5 --dir /tmp/k5 --base-port 9000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.exit && !o.demo {
				return usageErrorf("--exit only makes sense with --demo")
			}
			if o.acceptors < 1 || o.acceptors > 9 {
				return usageErrorf("--acceptors must be between 1 and 9, not %d", o.acceptors)
			}
			if o.basePort < 1 || o.basePort+o.acceptors-1 > 65535 {
				return usageErrorf("--base-port %d does not leave room for %d ports", o.basePort, o.acceptors)
			}
			if o.metricsBasePort < 0 || o.metricsBasePort+o.acceptors-1 > 65535 {
				return usageErrorf("--metrics-base-port %d does not leave room for %d ports", o.metricsBasePort, o.acceptors)
			}
			if o.metricsBasePort != 0 && o.metricsBasePort < o.basePort+o.acceptors && o.basePort < o.metricsBasePort+o.acceptors {
				return usageErrorf("--metrics-base-port %d overlaps the acceptors' ports %d-%d", o.metricsBasePort, o.basePort, o.basePort+o.acceptors-1)
			}
			if clientTLSFlagsSet(cmd) {
				return usageErrorf("kshaka local makes its own CA and certificates with --tls; --cacert, --cert, --key, " +
					"--tls-server-name and --insecure-skip-verify do not apply to it")
			}
			return runLocal(cmd.Context(), g, o)
		},
	}
	fs := cmd.Flags()
	fs.IntVarP(&o.acceptors, "acceptors", "n", 3, "number of acceptors (1-9)")
	fs.StringVar(&o.dir, "dir", "./kshaka-data", "directory for the acceptors' data and logs")
	fs.IntVar(&o.basePort, "base-port", 7400, "port of acceptor a0; acceptor a<i> listens on base-port+i")
	fs.StringVar(&o.acceptorBin, "acceptor-bin", "", "path of the kshaka-acceptor binary (default: next to kshaka, then on PATH)")
	fs.BoolVar(&o.demo, "demo", false, "run a short put/get/cas self-check once the cluster is up")
	fs.BoolVar(&o.exit, "exit", false, "with --demo: stop the acceptors and exit after the self-check")
	fs.DurationVar(&o.startTimeout, "start-timeout", 30*time.Second, "how long to wait for the acceptors to answer")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", 10*time.Second, "how long to wait after SIGTERM before SIGKILL")
	fs.IntVar(&o.metricsBasePort, "metrics-base-port", 0,
		"serve acceptor a<i>'s Prometheus metrics (plaintext) on 127.0.0.1:metrics-base-port+i (0: no metrics)")
	return cmd
}

// findAcceptorBin resolves the kshaka-acceptor binary.
func findAcceptorBin(flag string) (string, error) {
	if flag != "" {
		if _, err := os.Stat(flag); err != nil {
			return "", fmt.Errorf("--acceptor-bin: %w", err)
		}
		return flag, nil
	}
	var self string
	if exe, err := os.Executable(); err == nil {
		self = filepath.Join(filepath.Dir(exe), acceptorBinName)
		if st, err := os.Stat(self); err == nil && !st.IsDir() {
			return self, nil
		}
	}
	if p, err := exec.LookPath(acceptorBinName); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("cannot find %s: not at %s and not on PATH.\n"+
		"Build it with 'go build -o %s ./cmd/kshaka-acceptor', or pass --acceptor-bin", acceptorBinName, self, filepath.Dir(self))
}

// checkPortsFree fails early, and clearly, when a port is taken (say, by
// another kshaka local with a different --dir).
func checkPortsFree(procs []*acceptorProc) error {
	for _, p := range procs {
		l, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("cannot use %s for %s: %w\n(another kshaka local? choose other ports with --base-port)", p.addr, p.id, err)
		}
		l.Close()
		if p.metricsAddr == "" {
			continue
		}
		l, err = net.Listen("tcp", p.metricsAddr)
		if err != nil {
			return fmt.Errorf("cannot serve the metrics of %s on %s: %w\n(choose other ports with --metrics-base-port)", p.id, p.metricsAddr, err)
		}
		l.Close()
	}
	return nil
}

// localCluster is a running `kshaka local`.
type localCluster struct {
	o     localOptions
	g     *globals
	out   io.Writer
	errw  io.Writer
	procs []*acceptorProc
	sec   *localSec
	exits chan *acceptorProc
	sigs  chan os.Signal
}

func (lc *localCluster) ids() []string {
	ids := make([]string, len(lc.procs))
	for i, p := range lc.procs {
		ids[i] = p.id
	}
	return ids
}

// clientTLSDir is the client certificate's directory with --tls, else "".
func (lc *localCluster) clientTLSDir() string {
	if lc.sec.pki == nil {
		return ""
	}
	return lc.sec.pki.clientDir()
}

func runLocal(ctx context.Context, g *globals, o localOptions) error {
	bin, err := findAcceptorBin(o.acceptorBin)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return fmt.Errorf("while creating %s: %w", o.dir, err)
	}
	lock, err := lockDir(o.dir)
	if err != nil {
		return err
	}
	defer lock.Close()

	lc := &localCluster{o: o, g: g, out: g.out, errw: g.errw,
		exits: make(chan *acceptorProc, o.acceptors),
		sigs:  make(chan os.Signal, 4),
	}
	signal.Notify(lc.sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(lc.sigs)

	spec := procSpec{bin: bin, dir: o.dir, basePort: o.basePort, metricsBasePort: o.metricsBasePort, stopTimeout: o.stopTimeout}
	for i := range o.acceptors {
		lc.procs = append(lc.procs, newAcceptorProc(spec, i))
	}
	if err := checkPortsFree(lc.procs); err != nil {
		return err
	}
	if spec.sec, err = prepareLocalSecurity(g, o.dir, lc.ids(), g.client.tls); err != nil {
		return err
	}
	lc.sec = spec.sec
	defer lc.stop() // a no-op once they are stopped

	// Until the cluster runs, a signal aborts the start.
	startCtx, cancel := lc.cancelOnSignal(ctx)
	err = lc.start(startCtx, spec)
	if err == nil && o.demo {
		err = runDemo(startCtx, lc.out, lc.endpoints(), lc.clientTLSDir())
	}
	switch interrupted := cancel(); {
	case interrupted && err != nil:
		return errors.New("interrupted before the cluster was ready")
	case interrupted:
		return nil // Ctrl-C just as the start completed: stop, as asked
	case err != nil || o.exit:
		return err
	}
	lc.printConnect()
	return lc.supervise(ctx)
}

// cancelOnSignal returns a context that a SIGINT or SIGTERM cancels, and a
// function that stops watching and reports whether a signal came.
func (lc *localCluster) cancelOnSignal(ctx context.Context) (context.Context, func() bool) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	got := make(chan bool, 1)
	go func() {
		select {
		case <-lc.sigs:
			fmt.Fprintln(lc.out, "\nkshaka local: interrupted")
			cancel()
			got <- true
		case <-done:
			got <- false
		}
	}()
	return ctx, func() bool {
		close(done)
		sig := <-got
		cancel()
		return sig
	}
}

// pids are the acceptors' process IDs, in order (0 for one not started).
func (lc *localCluster) pids() []int {
	pids := make([]int, len(lc.procs))
	for i, p := range lc.procs {
		if p.cmd != nil {
			pids[i] = p.cmd.Process.Pid
		}
	}
	return pids
}

func (lc *localCluster) endpoints() []string {
	var eps []string
	for _, p := range lc.procs {
		eps = append(eps, p.addr)
	}
	return eps
}

// start starts the processes, waits until they answer and installs or
// checks their configuration.
func (lc *localCluster) start(ctx context.Context, spec procSpec) error {
	fmt.Fprintf(lc.out, "kshaka local: starting %s (%s), data in %s\n", plural(len(lc.procs), "acceptor"), spec.bin, lc.o.dir)
	lc.describeSecurity()
	for _, p := range lc.procs {
		if err := p.start(spec, lc.exits); err != nil {
			return err
		}
		fmt.Fprintf(lc.out, "  %s  %s  pid %d  data %s  log %s\n", p.id, p.addr, p.cmd.Process.Pid, p.dataDir, p.logPath)
		if p.metricsAddr != "" {
			fmt.Fprintf(lc.out, "      metrics http://%s/metrics\n", p.metricsAddr)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, lc.o.startTimeout)
	defer cancel()
	obs := make([]observed, len(lc.procs))
	for i, p := range lc.procs {
		inc, cfg, err := p.waitReady(ctx, lc.sec)
		if err != nil {
			return err
		}
		obs[i] = observed{ID: p.id, Addr: p.addr, Dir: p.dataDir, Incarnation: inc, Config: cfg}
	}
	plan, err := planBootstrap(obs, lc.o.dir)
	if err != nil {
		return err
	}
	for _, i := range plan.InstallOn {
		if err := lc.install(ctx, lc.procs[i], plan.Config); err != nil {
			return err
		}
	}
	switch {
	case plan.Fresh:
		fmt.Fprintf(lc.out, "kshaka local: installed the first configuration: %s\n", describeConfig(plan.Config))
	case len(plan.InstallOn) > 0:
		fmt.Fprintf(lc.out, "kshaka local: reusing epoch %d (%s); finished installing it on %s\n",
			plan.Config.Epoch, describeConfig(plan.Config), idsOf(lc.procs, plan.InstallOn))
	default:
		fmt.Fprintf(lc.out, "kshaka local: reusing epoch %d (%s)\n", plan.Config.Epoch, describeConfig(plan.Config))
	}
	return nil
}

func (lc *localCluster) install(ctx context.Context, p *acceptorProc, cfg membership.Config) error {
	conn, err := dialAdmin(p.addr, lc.sec.adminTLS, lc.sec.token)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.SetConfig(ctx, &kshakav1.SetConfigRequest{Config: wire.ConfigToProto(cfg)}); err != nil {
		return fmt.Errorf("while installing epoch %d on %s: %w", cfg.Epoch, p.id, err)
	}
	return nil
}

func idsOf(procs []*acceptorProc, idx []int) string {
	var ids []string
	for _, i := range idx {
		ids = append(ids, procs[i].id)
	}
	return strings.Join(ids, ", ")
}

// describeConfig renders a configuration for people.
func describeConfig(c membership.Config) string {
	var ids []string
	for _, m := range c.Members {
		ids = append(ids, m.ID)
	}
	if c.IsStable() {
		return fmt.Sprintf("epoch %d, members %s, prepare and accept quorum %d of %d",
			c.Epoch, strings.Join(ids, ","), c.PrepareQuorum, len(c.Members))
	}
	return c.String()
}

// describeSecurity says how the acceptors are protected.
func (lc *localCluster) describeSecurity() {
	sec := lc.sec
	switch {
	case sec.tokenFile == "":
		fmt.Fprintln(lc.out, "kshaka local: the admin calls need the admin token you gave")
	case sec.created:
		fmt.Fprintf(lc.out, "kshaka local: the admin calls need the admin token created in %s (mode 0600)\n", sec.tokenFile)
	default:
		fmt.Fprintf(lc.out, "kshaka local: the admin calls need the admin token in %s\n", sec.tokenFile)
	}
	if sec.pki == nil {
		fmt.Fprintln(lc.out, "kshaka local: serving plaintext on loopback (--tls serves mutual TLS)")
		return
	}
	what := "reused"
	if len(sec.pki.created) > 0 {
		what = "issued " + strings.Join(sec.pki.created, ", ")
	}
	fmt.Fprintf(lc.out, "kshaka local: serving mutual TLS; CA and certificates in %s (%s)\n", sec.pki.dir, what)
}

func (lc *localCluster) printConnect() {
	eps := strings.Join(lc.endpoints(), ",")
	fmt.Fprintf(lc.out, "\nkshaka local: ready. Connect with:\n\n  export KSHAKA_ENDPOINTS=%s\n", eps)
	sec := lc.sec
	switch sec.tokenFile {
	case "":
		fmt.Fprintln(lc.out, "  export KSHAKA_ADMIN_TOKEN=<the token you gave kshaka local>   # for kshaka status")
	default:
		note := "for kshaka status"
		if filepath.Clean(lc.o.dir) == filepath.Clean(defaultLocalDir) && lc.o.basePort == 7400 {
			note += "; found by itself from this directory"
		}
		fmt.Fprintf(lc.out, "  export KSHAKA_ADMIN_TOKEN_FILE=%s   # %s\n", absPath(sec.tokenFile), note)
	}
	if sec.pki != nil {
		admin := sec.pki.adminDir()
		fmt.Fprintf(lc.out, "  export KSHAKA_CACERT=%s\n", absPath(sec.pki.caFile()))
		fmt.Fprintf(lc.out, "  export KSHAKA_CERT=%s   # O=kshaka:admin: every command;\n", absPath(filepath.Join(admin, "tls.crt")))
		fmt.Fprintf(lc.out, "  export KSHAKA_KEY=%s    # %s holds an O=kshaka:client one\n", absPath(filepath.Join(admin, "tls.key")), absPath(sec.pki.clientDir()))
	}
	fmt.Fprint(lc.out, "  kshaka put greeting hello\n  kshaka get greeting\n  kshaka status\n\n")
	if sec.pki != nil {
		fmt.Fprintf(lc.out, "From Go: proposer.New(ctx, proposer.Config{Endpoints: []string{%q}, TLSDir: %q})\n\n",
			lc.endpoints()[0], absPath(sec.pki.clientDir()))
	} else {
		fmt.Fprintf(lc.out, "From Go: proposer.New(ctx, proposer.Config{Endpoints: []string{%q}})\n\n", lc.endpoints()[0])
	}
	fmt.Fprintf(lc.out, "Press Ctrl-C to stop the acceptors (the data stays in %s).\n", lc.o.dir)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// supervise runs until a signal, ctx ends, or every acceptor has exited.
func (lc *localCluster) supervise(ctx context.Context) error {
	alive := len(lc.procs)
	quorum := membership.Majority(len(lc.procs))
	for {
		select {
		case sig := <-lc.sigs:
			fmt.Fprintf(lc.out, "\nkshaka local: %v received, stopping the acceptors\n", sig)
			return nil
		case <-ctx.Done():
			return nil
		case p := <-lc.exits:
			alive--
			fmt.Fprintf(lc.errw, "kshaka local: WARNING: acceptor %s (pid %d, %s) stopped unexpectedly: it %s; see %s\n",
				p.id, p.cmd.Process.Pid, p.addr, p.describeExit(), p.logPath)
			switch {
			case alive == 0:
				return errors.New("every acceptor has exited; stopping")
			case alive < quorum:
				fmt.Fprintf(lc.errw, "kshaka local: WARNING: only %d of %d acceptors are running, fewer than a quorum (%d): reads and writes will fail\n",
					alive, len(lc.procs), quorum)
			default:
				fmt.Fprintf(lc.errw, "kshaka local: %d of %d acceptors are still running (quorum %d); the cluster keeps serving\n",
					alive, len(lc.procs), quorum)
			}
		}
	}
}

// stop stops every acceptor; a signal during the grace period kills them at
// once.
func (lc *localCluster) stop() {
	running := 0
	for _, p := range lc.procs {
		if p.cmd != nil && !p.exited() {
			running++
		}
	}
	if running == 0 {
		return
	}
	fmt.Fprintf(lc.out, "kshaka local: stopping %s (SIGTERM; SIGKILL after %v or on a second Ctrl-C)\n", plural(running, "acceptor"), lc.o.stopTimeout)
	stopAll(lc.procs, lc.o.stopTimeout, lc.sigs, func(p *acceptorProc) {
		switch {
		case !p.stopping:
			// It had exited before; already reported.
		case p.killed:
			fmt.Fprintf(lc.out, "  %s killed (SIGKILL)\n", p.id)
		default:
			fmt.Fprintf(lc.out, "  %s stopped (%s)\n", p.id, p.describeExit())
		}
	})
	fmt.Fprintf(lc.out, "kshaka local: stopped; the data stays in %s\n", lc.o.dir)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
