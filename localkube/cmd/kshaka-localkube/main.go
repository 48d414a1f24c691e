// Command kshaka-localkube runs a local Kubernetes control plane for the demo
// and the end-to-end tests: etcd, kube-apiserver, kube-controller-manager
// and one node that runs pods as local processes (see package localkube, in
// the same module: github.com/kshaka-io/kshaka/localkube).
//
//	kshaka-localkube up          start in the background, wait until the node is Ready
//	kshaka-localkube status      show whether it runs, its node and pods
//	kshaka-localkube kubeconfig  print the kubeconfig path
//	kshaka-localkube down        stop everything; nothing is left running
//
// Run `kshaka-localkube COMMAND --help` for each command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kshaka-io/kshaka/localkube"
)

// Exit codes.
const (
	exitOK         = 0
	exitFailed     = 1
	exitUsage      = 2
	exitNotRunning = 3 // status: the environment is not running
)

const defaultDir = "tmp/localkube"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `kshaka-localkube runs a local Kubernetes control plane whose node runs pods
as local processes (etcd, kube-apiserver, kube-controller-manager from bin/k8s;
images mapped to the project's binaries in bin/).

Usage:
  kshaka-localkube COMMAND [--dir DIR] [flags]

Commands:
  up          start everything in the background and wait until the node is Ready
  down        stop everything and wait until no process is left
  status      report whether the environment runs, its node and its pods
  kubeconfig  print the path of the admin kubeconfig

State (certificates, etcd data, logs, volumes) lives in --dir (default
./tmp/localkube); a later 'up' on the same directory resumes the cluster.
Run 'kshaka-localkube COMMAND --help' for the flags of a command.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "up":
		return cmdUp(rest, stdout, stderr)
	case "down":
		return cmdDown(rest, stdout, stderr)
	case "status":
		return cmdStatus(rest, stdout, stderr)
	case "kubeconfig":
		return cmdKubeconfig(rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "kshaka-localkube: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

func newFlags(name, synopsis string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", defaultDir, "state directory")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: kshaka-localkube %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs, dir
}

// parse returns -1 to continue, or the exit code.
func parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %q\n", fs.Args())
		fs.Usage()
		return exitUsage
	}
	return -1
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func cmdUp(args []string, stdout, stderr io.Writer) int {
	fs, dir := newFlags("up", `Starts etcd, kube-apiserver, kube-controller-manager and the node in the
background (a supervisor process whose output goes to DIR/localkube.log) and
waits until the node is Ready. With --foreground it runs in this process until
interrupted (Ctrl-C stops everything).`, stderr)
	foreground := fs.Bool("foreground", false, "stay in the foreground instead of starting a background supervisor")
	var images stringList
	fs.Var(&images, "image", "map an image repository to a binary, REPO=BINARY (repeatable; adds to the defaults: "+defaultRules()+")")
	imagesFile := fs.String("images", "", "file of REPO=BINARY lines that replaces the default image rules")
	binDir := fs.String("bin-dir", "", "where image binaries are looked up (default <repo>/bin)")
	kubeBinDir := fs.String("kube-bin-dir", "", "where etcd, kube-apiserver, kube-controller-manager, kubectl are (default <repo>/bin/k8s)")
	podAddrs := fs.String("pod-addresses", localkube.DefaultPodAddresses, "loopback address range for pods, FIRST-LAST")
	nodeName := fs.String("node-name", "localkube", "name of the node")
	dns := fs.Bool("dns", true, "serve cluster DNS on the last pod address, port 53, and give every pod a resolv.conf naming it (needs root; --dns=false: pods use the host's resolv.conf, clients use pod IPs)")
	domain := fs.String("cluster-domain", "cluster.local", "DNS domain of the cluster")
	apiPort := fs.Int("apiserver-port", 0, "kube-apiserver port on 127.0.0.1 (0: a free port, kept across restarts)")
	backoff := fs.Duration("restart-backoff", time.Second, "first delay before restarting a crashed container (doubles each time)")
	maxBackoff := fs.Duration("max-restart-backoff", 30*time.Second, "longest delay before restarting a crashed container")
	timeout := fs.Duration("timeout", 3*time.Minute, "how long to wait for the environment to be ready")
	if rc := parse(fs, args); rc >= 0 {
		return rc
	}
	cfg := localkube.Config{
		Dir: *dir, ImageBinDir: *binDir, KubeBinDir: *kubeBinDir, PodAddresses: *podAddrs,
		NodeName: *nodeName, APIServerPort: *apiPort, RestartBackoff: *backoff,
		MaxRestartBackoff: *maxBackoff, StartTimeout: *timeout,
		DisableDNS: !*dns, ClusterDomain: *domain,
	}
	if *imagesFile != "" {
		rules, err := localkube.ReadImageRules(*imagesFile)
		if err != nil {
			fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
			return exitUsage
		}
		cfg.Images = rules
	} else {
		cfg.Images = append([]localkube.ImageRule(nil), localkube.DefaultImages...)
	}
	for _, s := range images {
		r, err := localkube.ParseImageRule(s)
		if err != nil {
			fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
			return exitUsage
		}
		cfg.Images = append([]localkube.ImageRule{r}, cfg.Images...) // first match wins
	}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
		return exitUsage
	}
	if missing := cfg.MissingBinaries(); len(missing) > 0 {
		fmt.Fprintf(stderr, "kshaka-localkube: missing %s\nBuild them with: make kube-binaries\n", strings.Join(missing, ", "))
		return exitFailed
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
		return exitFailed
	}
	if s, running, ready := localkube.ReadState(*dir); running {
		if ready {
			fmt.Fprintf(stdout, "localkube is already running (pid %d)\n", s.PID)
			printReady(stdout, s)
			return exitOK
		}
		fmt.Fprintf(stderr, "kshaka-localkube: a supervisor (pid %d) is still starting or stopping in %s; see %s\n",
			s.PID, *dir, filepath.Join(*dir, "localkube.log"))
		return exitFailed
	}
	if *foreground {
		return runForeground(cfg, stdout, stderr)
	}
	return runBackground(args, *dir, *timeout, stdout, stderr)
}

func defaultRules() string {
	var s []string
	for _, r := range localkube.DefaultImages {
		s = append(s, r.Repository+"="+r.Binary)
	}
	return strings.Join(s, " ")
}

// runForeground is the supervisor: it starts the environment, records
// itself, and stops everything on SIGINT/SIGTERM or when a component fails.
func runForeground(cfg localkube.Config, stdout, stderr io.Writer) int {
	started := time.Now()
	cfg.Events.Progress = func(msg string) {
		fmt.Fprintf(stdout, "[%s] %s\n", time.Now().Format("15:04:05"), msg)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := localkube.WriteSupervisorPID(cfg.Dir); err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
		return exitFailed
	}
	defer localkube.ClearState(cfg.Dir)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-sigs: // interrupted while starting
			cancel()
		case <-ctx.Done():
		}
	}()
	c, err := localkube.Start(ctx, cfg)
	interrupted := ctx.Err() != nil
	cancel()
	if err != nil {
		if interrupted {
			fmt.Fprintln(stderr, "kshaka-localkube: interrupted while starting")
		} else {
			fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
		}
		return exitFailed
	}
	s := c.State(started)
	if err := localkube.WriteState(cfg.Dir, s); err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
	}
	printReady(stdout, s)
	rc := exitOK
	select {
	case sig := <-sigs:
		fmt.Fprintf(stdout, "[%s] got %v\n", time.Now().Format("15:04:05"), sig)
	case <-c.Failed():
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", c.Err())
		rc = exitFailed
	}
	if err := c.Stop(context.Background()); err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: while stopping: %v\n", err)
		rc = exitFailed
	}
	return rc
}

// runBackground re-runs `up --foreground` as a detached supervisor with its
// output in DIR/localkube.log, shows that output until the environment is
// ready, and returns, leaving the supervisor running.
func runBackground(args []string, dir string, timeout time.Duration, stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
		return exitFailed
	}
	logPath := filepath.Join(dir, "localkube.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
		return exitFailed
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
		return exitFailed
	}
	defer devnull.Close()
	child := exec.Command(exe, append([]string{"up", "--foreground"}, args...)...)
	child.Stdin, child.Stdout, child.Stderr = devnull, logf, logf
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // survives this process and its terminal
	if err := child.Start(); err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: while starting the supervisor: %v\n", err)
		return exitFailed
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()

	tail, err := os.Open(logPath)
	if err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
		return exitFailed
	}
	defer tail.Close()
	copyNew := func() { _, _ = io.Copy(stdout, tail) }
	deadline := time.NewTimer(timeout + 30*time.Second) // the supervisor has its own timeout
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		copyNew()
		if s, _, ready := localkube.ReadState(dir); ready && s.PID == child.Process.Pid {
			fmt.Fprintf(stdout, "supervisor pid %d; output in %s; stop with: kshaka-localkube down --dir %s\n", s.PID, logPath, dir)
			_ = child.Process.Release()
			return exitOK
		}
		select {
		case err := <-exited:
			copyNew()
			fmt.Fprintf(stderr, "kshaka-localkube: the supervisor exited while starting (%v); see %s\n", err, logPath)
			return exitFailed
		case <-deadline.C:
			fmt.Fprintf(stderr, "kshaka-localkube: not ready after %s; stopping (see %s)\n", timeout, logPath)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, _, _ = localkube.StopSupervisor(ctx, dir)
			return exitFailed
		case <-tick.C:
		}
	}
}

func printReady(w io.Writer, s localkube.State) {
	fmt.Fprintf(w, `localkube is ready
  apiserver:     %s
  kubeconfig:    %s
  node:          %s (pod addresses %s)
  cluster DNS:   %s
  use it with:   export KUBECONFIG=%s
`, s.Server, s.Kubeconfig, s.Node, s.PodAddresses, dnsLine(s), s.Kubeconfig)
}

func dnsLine(s localkube.State) string {
	if s.DNSServer == "" {
		return "off (pods use the host's resolv.conf)"
	}
	return s.DNSServer + " (domain " + s.ClusterDomain + ")"
}

func cmdDown(args []string, stdout, stderr io.Writer) int {
	fs, dir := newFlags("down", `Stops the environment in DIR: every pod process, the node, the control plane.
Waits until none is left. The state is kept for the next 'up' unless --purge.`, stderr)
	purge := fs.Bool("purge", false, "also delete the state directory (all objects and volumes)")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for a clean stop before killing")
	if rc := parse(fs, args); rc >= 0 {
		return rc
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	fmt.Fprintf(stdout, "stopping localkube in %s ...\n", *dir)
	was, leftovers, err := localkube.StopSupervisor(ctx, *dir)
	if err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
		return exitFailed
	}
	switch {
	case !was && len(leftovers) == 0:
		fmt.Fprintln(stdout, "localkube was not running")
	case len(leftovers) > 0:
		fmt.Fprintf(stdout, "stopped in %.1fs; killed %d leftover processes: %v\n", time.Since(start).Seconds(), len(leftovers), leftovers)
	default:
		fmt.Fprintf(stdout, "stopped in %.1fs; nothing is left running\n", time.Since(start).Seconds())
	}
	if *purge {
		if err := os.RemoveAll(*dir); err != nil {
			fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "removed %s\n", *dir)
	}
	return exitOK
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs, dir := newFlags("status", `Reports whether the environment in DIR runs, and lists its node and pods.
Exit code 0: running and ready; 3: not running; 1: starting, or not answering.`, stderr)
	if rc := parse(fs, args); rc >= 0 {
		return rc
	}
	s, running, ready := localkube.ReadState(*dir)
	if !running {
		fmt.Fprintf(stdout, "localkube is not running (dir %s)\n", *dir)
		return exitNotRunning
	}
	if !ready {
		fmt.Fprintf(stdout, "localkube is starting (supervisor pid %d); see %s\n", s.PID, filepath.Join(*dir, "localkube.log"))
		return exitFailed
	}
	fmt.Fprintf(stdout, "localkube is running (supervisor pid %d, up %s)\n", s.PID, time.Since(s.Ready).Round(time.Second))
	fmt.Fprintf(stdout, "  apiserver:  %s\n  kubeconfig: %s\n  dns:        %s\n", s.Server, s.Kubeconfig, dnsLine(s))
	rc, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
		return exitFailed
	}
	rc.Timeout = 10 * time.Second
	cl, err := kubernetes.NewForConfig(rc)
	if err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
		return exitFailed
	}
	ctx := context.Background()
	node, err := cl.CoreV1().Nodes().Get(ctx, s.Node, metav1.GetOptions{})
	if err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: the apiserver does not answer: %v\n", err)
		return exitFailed
	}
	ready = false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	fmt.Fprintf(stdout, "  node:       %s (ready: %v)\n", node.Name, ready)
	pods, err := cl.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
		return exitFailed
	}
	if len(pods.Items) == 0 {
		fmt.Fprintln(stdout, "  no pods")
		return exitOK
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tPHASE\tREADY\tRESTARTS\tIP")
	for _, p := range pods.Items {
		var restarts int32
		for _, cs := range p.Status.ContainerStatuses {
			restarts += cs.RestartCount
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%d\t%s\n", p.Namespace, p.Name, p.Status.Phase, localkube.PodReady(&p), restarts, p.Status.PodIP)
	}
	_ = tw.Flush()
	return exitOK
}

func cmdKubeconfig(args []string, stdout, stderr io.Writer) int {
	fs, dir := newFlags("kubeconfig", `Prints the absolute path of the admin kubeconfig, e.g.
  export KUBECONFIG=$(kshaka-localkube kubeconfig)`, stderr)
	if rc := parse(fs, args); rc >= 0 {
		return rc
	}
	p, err := filepath.Abs(filepath.Join(*dir, "kubeconfig"))
	if err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: %v\n", err)
		return exitFailed
	}
	if _, err := os.Stat(p); err != nil {
		fmt.Fprintf(stderr, "kshaka-localkube: no kubeconfig in %s; run 'kshaka-localkube up' first\n", *dir)
		return exitNotRunning
	}
	fmt.Fprintln(stdout, p)
	return exitOK
}
