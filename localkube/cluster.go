package localkube

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
)

// Errors returned by Start.
var (
	// ErrMissingBinaries: etcd, kube-apiserver, kube-controller-manager or
	// kubectl is not in KubeBinDir; `make kube-binaries` builds them.
	ErrMissingBinaries = errors.New("kubernetes binaries are missing; run `make kube-binaries` (hack/build-kube-binaries.sh)")
	// ErrBusy: another environment is using Dir.
	ErrBusy = errors.New("localkube directory in use")
	// ErrNoDNS: the cluster DNS (on unless Config.DisableDNS) cannot run:
	// the process lacks the privileges it needs.
	ErrNoDNS = errors.New("cannot run the cluster DNS")
)

// Cluster is a running local control plane with one node that runs pods as
// local processes.
type Cluster struct {
	cfg         Config
	ports       ports
	pki         *pki
	adminTLS    *tls.Config
	restConfig  *rest.Config
	client      kubernetes.Interface
	kubeVersion string
	lock        *os.File
	nodeLog     io.Writer
	nodeLogFile *os.File

	procs       []*proc // etcd, kube-apiserver, kube-controller-manager
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	provider    *provider
	dns         *dnsServer // nil when Config.DisableDNS
	node        interface{ Done() <-chan struct{} }
	cancel      context.CancelFunc // in-process controllers
	wg          sync.WaitGroup

	stopOnce sync.Once
	stopping chan struct{}
	failOnce sync.Once
	failed   chan struct{}
	failErr  error
}

// Start brings up etcd, kube-apiserver, kube-controller-manager, the
// scheduler stand-in, the volume provisioner and the node, and returns once
// the node is Ready and the default namespace can take pods. On error
// everything already started is stopped again.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid localkube config: %w", err)
	}
	for _, p := range []*string{&cfg.Dir, &cfg.KubeBinDir, &cfg.ImageBinDir} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
	}
	if missing := cfg.MissingBinaries(); len(missing) > 0 {
		return nil, fmt.Errorf("%w: missing %s", ErrMissingBinaries, strings.Join(missing, ", "))
	}
	if !cfg.DisableDNS {
		if err := checkDNSCapabilities(); err != nil {
			return nil, fmt.Errorf("%w: %w; run as root, or set DisableDNS (kshaka-localkube up --dns=false) and use pod IPs", ErrNoDNS, err)
		}
	}
	for _, d := range []string{"", "logs", "run", "pods", "volumes", "pki"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, lock: lock, stopping: make(chan struct{}), failed: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = c.Stop(context.Background())
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	begin := time.Now()

	if _, err := KillLeftovers(cfg.Dir); err != nil {
		return nil, err
	}
	if c.ports, err = resolvePorts(&c.cfg); err != nil {
		return nil, err
	}
	if c.pki, err = loadOrCreatePKI(filepath.Join(cfg.Dir, "pki"), cfg.NodeName); err != nil {
		return nil, err
	}
	if c.adminTLS, err = c.pki.adminTLSConfig(); err != nil {
		return nil, err
	}
	if err := c.pki.writeKubeconfigFor(c.KubeconfigPath(), c.Server(), pkiAdmin); err != nil {
		return nil, fmt.Errorf("while writing the kubeconfig: %w", err)
	}
	if err := c.openNodeLog(); err != nil {
		return nil, err
	}

	for _, comp := range []func() component{c.etcdComponent, c.apiServerComponent, c.controllerManagerComponent} {
		p, err := c.startComponent(ctx, comp())
		if err != nil {
			return nil, err
		}
		c.procs = append(c.procs, p)
		c.watch(p)
	}
	if err := c.connect(); err != nil {
		return nil, err
	}

	bgctx, bgcancel := context.WithCancel(context.Background())
	c.cancel = bgcancel
	c.broadcaster = record.NewBroadcaster(record.WithContext(bgctx))
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	c.recorder = c.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: cfg.NodeName})

	c.progress("starting the scheduler, the volume provisioner and node %s", cfg.NodeName)
	prov := &provisioner{
		cl: c.client, dir: filepath.Join(cfg.Dir, "volumes"), logf: c.nodeLogf,
		recorder: c.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: ProvisionerName}),
	}
	if err := prov.ensureStorageClass(ctx); err != nil {
		return nil, fmt.Errorf("while creating the default StorageClass: %w", err)
	}
	c.background(bgctx, "volume provisioner", prov.run)
	sched := &scheduler{
		cl: c.client, node: cfg.NodeName, logf: c.nodeLogf,
		recorder: c.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: corev1.DefaultSchedulerName}),
	}
	c.background(bgctx, "scheduler", sched.run)

	pool, err := newIPAM(cfg.PodAddresses)
	if err != nil {
		return nil, err
	}
	c.provider = newProvider(&c.cfg, c.client, c.recorder, pool, c.pki, c.Server(), c.nodeLogf)
	if !cfg.DisableDNS {
		addr := pool.last
		pool.reserve(addr)
		c.progress("starting the cluster DNS on %s:53 (domain %s)", addr, cfg.ClusterDomain)
		if c.dns, err = startDNS(bgctx, ctx, c.client, addr, cfg.ClusterDomain); err != nil {
			return nil, err
		}
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.dns.wait() }()
		c.provider.dns = addr
	}
	startNode := make(chan error, 1)
	go func() { startNode <- c.startNode(bgctx) }()
	select {
	case err = <-startNode:
	case <-ctx.Done():
		bgcancel()
		if nerr := <-startNode; nerr != nil {
			c.nodeLogf("node start abandoned: %v", nerr)
		}
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("while starting the node: %w", err)
	}
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	c.progress("localkube is ready in %.1fs (kubeconfig: %s)", time.Since(begin).Seconds(), c.KubeconfigPath())
	return c, nil
}

// connect builds the admin client and learns the server version.
func (c *Cluster) connect() error {
	rc, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath())
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = 50, 100
	c.restConfig = rc
	if c.client, err = kubernetes.NewForConfig(rc); err != nil {
		return err
	}
	v, err := c.client.Discovery().ServerVersion()
	if err != nil {
		return err
	}
	c.kubeVersion = v.GitVersion
	return nil
}

// waitReady waits until the Node is Ready and the default service account
// exists (the ServiceAccount admission plugin rejects pods before that), and
// removes the directories of pods that no longer exist.
func (c *Cluster) waitReady(ctx context.Context) error {
	c.progress("waiting for node %s to be Ready", c.cfg.NodeName)
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		n, err := c.client.CoreV1().Nodes().Get(ctx, c.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("node %s did not become Ready: %w", c.cfg.NodeName, err)
	}
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := c.client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the default service account was not created: %w", err)
	}
	pods, err := c.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", c.cfg.NodeName).String(),
	})
	if err == nil {
		live := map[types.UID]bool{}
		for _, p := range pods.Items {
			live[p.UID] = true
		}
		c.provider.collectGarbage(live)
	}
	return nil
}

// background runs f until ctx ends; an early error fails the cluster.
func (c *Cluster) background(ctx context.Context, name string, f func(context.Context) error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := f(ctx); err != nil && ctx.Err() == nil {
			c.fail(fmt.Errorf("%s stopped: %w", name, err))
		}
	}()
}

// watch fails the cluster when a control-plane process exits on its own.
func (c *Cluster) watch(p *proc) {
	go func() {
		select {
		case <-p.done:
			select {
			case <-c.stopping:
			default:
				code, _ := p.exitCode()
				c.fail(fmt.Errorf("%s exited with code %d; see %s", p.name, code,
					filepath.Join(c.cfg.Dir, "logs", p.name+".log")))
			}
		case <-c.stopping:
		}
	}()
}

func (c *Cluster) fail(err error) {
	c.failOnce.Do(func() {
		c.failErr = err
		c.progress("FAILED: %v", err)
		close(c.failed)
	})
}

// Failed is closed when a component stops unexpectedly; Err says which.
func (c *Cluster) Failed() <-chan struct{} { return c.failed }

// Err returns the failure that closed Failed, or nil.
func (c *Cluster) Err() error {
	select {
	case <-c.failed:
		return c.failErr
	default:
		return nil
	}
}

// Stop stops every pod process, the node and the control plane, and waits
// until all of them have exited. The state in Dir is kept: a later Start
// resumes the cluster. Stop is idempotent.
func (c *Cluster) Stop(ctx context.Context) error {
	var errs []error
	c.stopOnce.Do(func() {
		close(c.stopping)
		c.progress("stopping")
		if c.cancel != nil {
			c.cancel() // node, scheduler, provisioner
		}
		if c.node != nil {
			<-c.node.Done()
		}
		if c.provider != nil {
			c.provider.shutdown()
		}
		c.wg.Wait()
		if c.broadcaster != nil {
			c.broadcaster.Shutdown()
		}
		for i := len(c.procs) - 1; i >= 0; i-- {
			p := c.procs[i]
			p.stop(10 * time.Second)
			if code, _ := p.exitCode(); code != 0 && code != 143 && code != 130 {
				errs = append(errs, fmt.Errorf("%s exited with code %d", p.name, code))
			}
		}
		if _, err := KillLeftovers(c.cfg.Dir); err != nil {
			errs = append(errs, err)
		}
		if c.nodeLogFile != nil {
			c.nodeLogFile.Close()
		}
		if c.lock != nil {
			c.lock.Close()
		}
		c.progress("stopped")
	})
	return errors.Join(errs...)
}

// KubeconfigPath is the admin kubeconfig: Dir/kubeconfig.
func (c *Cluster) KubeconfigPath() string { return filepath.Join(c.cfg.Dir, "kubeconfig") }

// Server is the apiserver's URL.
func (c *Cluster) Server() string { return fmt.Sprintf("https://127.0.0.1:%d", c.ports.APIServer) }

// RESTConfig returns a copy of the admin client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.restConfig) }

// Client is an admin clientset.
func (c *Cluster) Client() kubernetes.Interface { return c.client }

// Config is the effective configuration (defaults filled in, paths absolute).
func (c *Cluster) Config() Config { return c.cfg }

// NodeName is the name of the node that runs pods.
func (c *Cluster) NodeName() string { return c.cfg.NodeName }

// PIDs lists every process the environment runs: the control plane and
// each running container.
func (c *Cluster) PIDs() []int {
	var pids []int
	for _, p := range c.procs {
		pids = append(pids, p.pid())
	}
	if c.provider != nil {
		pids = append(pids, c.provider.pids()...)
	}
	return pids
}

// Kubectl returns a kubectl command against the cluster.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.cfg.KubeBinDir, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.KubeconfigPath(),
		"KUBECACHEDIR="+filepath.Join(c.cfg.Dir, "kubectl-cache"))
	return cmd
}

// HelmPath is where helm is expected: ImageBinDir/helm (hack/install-tools.sh).
func (c *Cluster) HelmPath() string { return filepath.Join(c.cfg.ImageBinDir, "helm") }

// Helm returns a helm command against the cluster, with helm's cache and
// configuration kept under Dir/helm.
func (c *Cluster) Helm(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.HelmPath(), args...)
	h := filepath.Join(c.cfg.Dir, "helm")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.KubeconfigPath(),
		"HELM_CACHE_HOME="+h+"/cache", "HELM_CONFIG_HOME="+h+"/config", "HELM_DATA_HOME="+h+"/data")
	return cmd
}

func (c *Cluster) progress(format string, args ...any) {
	if c.cfg.Events.Progress != nil {
		c.cfg.Events.Progress(fmt.Sprintf(format, args...))
	}
}

func (c *Cluster) openNodeLog() error {
	if c.cfg.Events.NodeLog != nil {
		c.nodeLog = funcWriter(c.cfg.Events.NodeLog)
		return nil
	}
	f, err := os.OpenFile(filepath.Join(c.cfg.Dir, "logs", "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	c.nodeLogFile, c.nodeLog = f, f
	return nil
}

func (c *Cluster) nodeLogf(format string, args ...any) {
	fmt.Fprintf(c.nodeLog, "%s %s\n", time.Now().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

type funcWriter func(string)

func (f funcWriter) Write(p []byte) (int, error) {
	f(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// PodReady reports whether pod has condition Ready=True.
func PodReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
