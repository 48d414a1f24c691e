package localkube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	utilexec "k8s.io/utils/exec"
)

// provider is the virtual-kubelet provider that runs pods as local
// processes. It implements nodeutil.Provider and node.PodNotifier.
type provider struct {
	cfg      *Config
	cl       kubernetes.Interface
	recorder record.EventRecorder
	ipam     *ipam
	pki      *pki
	server   string     // the apiserver URL written into pods' kubeconfigs
	dns      netip.Addr // the cluster DNS server, or invalid when it is off
	podsDir  string
	logf     func(format string, args ...any)

	wg sync.WaitGroup // pod goroutines and deletions in flight

	mu struct {
		sync.Mutex
		pods     map[string]*podRuntime // by namespace/name
		notify   func(*corev1.Pod)
		lister   corev1listers.PodLister
		stopping bool
	}
}

func newProvider(cfg *Config, cl kubernetes.Interface, rec record.EventRecorder, pool *ipam, pk *pki, server string, logf func(string, ...any)) *provider {
	p := &provider{
		cfg: cfg, cl: cl, recorder: rec, ipam: pool, pki: pk, server: server, logf: logf,
		podsDir: filepath.Join(cfg.Dir, "pods"),
	}
	p.mu.pods = map[string]*podRuntime{}
	return p
}

func podKey(ns, name string) string { return ns + "/" + name }

func (p *provider) get(ns, name string) *podRuntime {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.pods[podKey(ns, name)]
}

// detach forgets rt so that a new pod of the same name can start.
func (p *provider) detach(rt *podRuntime) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.pods[rt.key] == rt {
		delete(p.mu.pods, rt.key)
	}
}

// send hands a pod's status to virtual-kubelet, unless the pod object is
// already gone (virtual-kubelet would only wait for it and give up).
func (p *provider) send(pod *corev1.Pod) {
	p.mu.Lock()
	notify := p.mu.notify
	p.mu.Unlock()
	if api, err := p.podFromAPI(pod.Namespace, pod.Name); err != nil || api.UID != pod.UID {
		return
	}
	if notify != nil {
		notify(pod)
	}
}

func (p *provider) podFromAPI(ns, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	l := p.mu.lister
	p.mu.Unlock()
	if l == nil {
		return nil, errors.New("no pod lister")
	}
	return l.Pods(ns).Get(name)
}

// NotifyPods implements node.PodNotifier.
func (p *provider) NotifyPods(_ context.Context, f func(*corev1.Pod)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.notify = f
}

// CreatePod starts a pod's containers.
func (p *provider) CreatePod(_ context.Context, pod *corev1.Pod) error {
	key := podKey(pod.Namespace, pod.Name)
	if old := p.get(pod.Namespace, pod.Name); old != nil {
		if old.uid == pod.UID {
			return p.UpdatePod(context.Background(), pod)
		}
		p.retire(old, terminationGrace(pod), false)
	}
	var prefer netip.Addr
	if a, err := netip.ParseAddr(pod.Status.PodIP); err == nil {
		prefer = a // restarted with the environment: keep the address
	}
	ip, err := p.ipam.allocate(string(pod.UID), prefer)
	if err != nil {
		return fmt.Errorf("while giving pod %s an address: %w", key, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt := &podRuntime{
		p: p, key: key, uid: pod.UID, ip: ip, ctx: ctx, cancel: cancel,
		dir:   filepath.Join(p.podsDir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
		done:  make(chan struct{}),
		wake:  make(chan struct{}, 1),
		final: make(chan struct{}),
		sent:  make(chan struct{}),
	}
	rt.mu.pod = pod.DeepCopy()
	rt.mu.startTime = metav1.Now()
	rt.mu.conds = map[corev1.PodConditionType]corev1.PodCondition{}
	restarts := map[string]int32{}
	for _, s := range append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if s.State.Running != nil || s.State.Terminated != nil || s.LastTerminationState.Terminated != nil {
			restarts[s.Name] = s.RestartCount + 1 // the node restarted under it
		}
	}
	for _, c := range pod.Spec.InitContainers {
		rt.mu.init = append(rt.mu.init, newCtr(c, true, restarts[c.Name]))
	}
	for _, c := range pod.Spec.Containers {
		rt.mu.ctrs = append(rt.mu.ctrs, newCtr(c, false, restarts[c.Name]))
	}

	p.mu.Lock()
	if p.mu.stopping {
		p.mu.Unlock()
		cancel()
		p.ipam.release(ip, string(pod.UID))
		return errors.New("the node is shutting down")
	}
	p.mu.pods[key] = rt
	p.wg.Add(2)
	p.mu.Unlock()

	p.logf("pod %s: created with address %s", key, ip)
	go func() { defer p.wg.Done(); rt.notifier() }()
	go func() { defer p.wg.Done(); rt.run() }()
	rt.changed()
	return nil
}

// UpdatePod applies a changed pod: a container whose image changed is
// restarted with the new image; labels and annotations are taken over.
func (p *provider) UpdatePod(ctx context.Context, pod *corev1.Pod) error {
	rt := p.get(pod.Namespace, pod.Name)
	if rt == nil {
		return p.CreatePod(ctx, pod)
	}
	if rt.uid != pod.UID {
		p.retire(rt, terminationGrace(pod), false)
		return p.CreatePod(ctx, pod)
	}
	rt.mu.Lock()
	old := rt.mu.pod
	np := pod.DeepCopy()
	np.Status = old.Status
	rt.mu.pod = np
	for _, spec := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, c := range append(append([]*ctr(nil), rt.mu.init...), rt.mu.ctrs...) {
			if c.spec.Name != spec.Name || c.spec.Image == spec.Image {
				continue
			}
			c.spec.Image = spec.Image
			select {
			case c.restart <- struct{}{}:
			default:
			}
		}
	}
	rt.mu.Unlock()
	rt.changed()
	return nil
}

// DeletePod stops a pod's containers with the pod's grace period. When the
// pod was deleted through the API, the pod object is removed once every
// process has exited, as a kubelet does.
func (p *provider) DeletePod(_ context.Context, pod *corev1.Pod) error {
	rt := p.get(pod.Namespace, pod.Name)
	if rt == nil {
		return errdefs.NotFoundf("pod %s/%s is not known", pod.Namespace, pod.Name)
	}
	grace := terminationGrace(pod)
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	apiDelete := pod.DeletionTimestamp != nil && pod.UID == rt.uid
	p.retire(rt, grace, apiDelete)
	return nil
}

// retire terminates rt in the background. When rt's pod object is already
// gone (force deletion) its name is freed at once.
func (p *provider) retire(rt *podRuntime, grace time.Duration, apiDelete bool) {
	if !apiDelete {
		p.detach(rt)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		rt.terminate(grace)
		p.detach(rt)
		p.ipam.release(rt.ip, string(rt.uid))
		p.logf("pod %s: all containers stopped", rt.key)
		if err := os.RemoveAll(rt.dir); err != nil {
			p.logf("pod %s: while removing %s: %v", rt.key, rt.dir, err)
		}
		if !apiDelete {
			return
		}
		ns, name, _ := strings.Cut(rt.key, "/")
		zero := int64(0)
		err := p.cl.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero,
			Preconditions:      &metav1.Preconditions{UID: &rt.uid},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			p.logf("pod %s: while deleting the pod object: %v", rt.key, err)
		}
	}()
}

// GetPod returns the pod with its current status.
func (p *provider) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	rt := p.get(ns, name)
	if rt == nil {
		return nil, errdefs.NotFoundf("pod %s/%s is not known", ns, name)
	}
	return rt.snapshot(), nil
}

// GetPodStatus returns the pod's current status.
func (p *provider) GetPodStatus(ctx context.Context, ns, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods returns every pod this node runs.
func (p *provider) GetPods(context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	rts := make([]*podRuntime, 0, len(p.mu.pods))
	for _, rt := range p.mu.pods {
		rts = append(rts, rt)
	}
	p.mu.Unlock()
	pods := make([]*corev1.Pod, 0, len(rts))
	for _, rt := range rts {
		pods = append(pods, rt.snapshot())
	}
	return pods, nil
}

// shutdown stops every pod (grace capped at StopGracePeriod) without
// touching the pod objects, as when a node goes down, and waits for all
// processes to exit.
func (p *provider) shutdown() {
	p.mu.Lock()
	p.mu.stopping = true
	rts := make([]*podRuntime, 0, len(p.mu.pods))
	for _, rt := range p.mu.pods {
		rts = append(rts, rt)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, rt := range rts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt.mu.Lock()
			g := min(terminationGrace(rt.mu.pod), p.cfg.StopGracePeriod)
			rt.mu.Unlock()
			rt.terminate(g)
			p.ipam.release(rt.ip, string(rt.uid))
		}()
	}
	wg.Wait()
	p.wg.Wait()
}

// pids returns the process ids of every running container.
func (p *provider) pids() []int {
	p.mu.Lock()
	rts := make([]*podRuntime, 0, len(p.mu.pods))
	for _, rt := range p.mu.pods {
		rts = append(rts, rt)
	}
	p.mu.Unlock()
	var pids []int
	for _, rt := range rts {
		rt.mu.Lock()
		for _, c := range append(append([]*ctr(nil), rt.mu.init...), rt.mu.ctrs...) {
			if c.running != nil {
				pids = append(pids, c.running.pid())
			}
		}
		rt.mu.Unlock()
	}
	return pids
}

func (rt *podRuntime) container(name string) *ctr {
	for _, c := range append(append([]*ctr(nil), rt.mu.init...), rt.mu.ctrs...) {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

// GetContainerLogs serves `kubectl logs`.
func (p *provider) GetContainerLogs(ctx context.Context, ns, name, container string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	rt := p.get(ns, name)
	if rt == nil {
		return nil, errdefs.NotFoundf("pod %s/%s is not known", ns, name)
	}
	rt.mu.Lock()
	c := rt.container(container)
	if c == nil && container == "" && len(rt.mu.ctrs) == 1 {
		c = rt.mu.ctrs[0]
	}
	var path string
	var running <-chan struct{}
	if c != nil {
		path, running = c.logPath, c.runDone
		if opts.Previous {
			path = c.prevLog
			closed := make(chan struct{})
			close(closed)
			running = closed
		}
	}
	rt.mu.Unlock()
	switch {
	case c == nil:
		return nil, errdefs.NotFoundf("container %q is not in pod %s/%s", container, ns, name)
	case path == "" && opts.Previous:
		return nil, errdefs.InvalidInputf("previous terminated container %q in pod %q not found", container, name)
	case path == "":
		return nil, errdefs.InvalidInputf("container %q in pod %q is waiting to start", container, name)
	}
	return readLog(ctx, path, opts, running)
}

// RunInContainer serves `kubectl exec`: the command runs on the host with
// the container's environment and working directory.
func (p *provider) RunInContainer(ctx context.Context, ns, name, container string, cmd []string, attach api.AttachIO) error {
	rt := p.get(ns, name)
	if rt == nil {
		return errdefs.NotFoundf("pod %s/%s is not known", ns, name)
	}
	rt.mu.Lock()
	c := rt.container(container)
	var pr *proc
	var mounts []mount
	if c != nil {
		pr, mounts = c.running, c.mounts
	}
	resolvConf := rt.mu.resolvConf
	rt.mu.Unlock()
	if pr == nil {
		return errdefs.InvalidInputf("container %q in pod %s/%s is not running", container, ns, name)
	}
	if len(cmd) == 0 {
		return errdefs.InvalidInput("no command")
	}
	env := pr.cmd.Env
	x := exec.CommandContext(ctx, lookPath(cmd[0], envValue(env, "PATH")), rewriteArgs(cmd[1:], mounts)...)
	x.Args[0] = cmd[0]
	x.Env, x.Dir = env, pr.cmd.Dir
	inPodNamespace(x, resolvConf)
	if attach.Stdin() != nil {
		x.Stdin = attach.Stdin()
	}
	if attach.Stdout() != nil {
		x.Stdout = attach.Stdout()
		defer attach.Stdout().Close()
	}
	if attach.Stderr() != nil {
		x.Stderr = attach.Stderr()
		defer attach.Stderr().Close()
	}
	err := x.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return utilexec.CodeExitError{Err: err, Code: ee.ExitCode()}
	}
	return err
}

// AttachToContainer is not supported: processes' output goes to their logs.
func (p *provider) AttachToContainer(context.Context, string, string, string, api.AttachIO) error {
	return errdefs.InvalidInput("attach is not supported by localkube; use kubectl logs -f")
}

// GetStatsSummary reports no usage.
func (p *provider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	return &statsv1alpha1.Summary{}, nil
}

// GetMetricsResource reports no metrics.
func (p *provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, nil
}

// PortForward serves `kubectl port-forward` by dialling the pod's address.
func (p *provider) PortForward(ctx context.Context, ns, name string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	rt := p.get(ns, name)
	if rt == nil {
		return errdefs.NotFoundf("pod %s/%s is not known", ns, name)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(rt.ip.String(), strconv.Itoa(int(port))))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	errc := make(chan error, 2)
	go func() { _, err := io.Copy(conn, stream); errc <- err }()
	go func() { _, err := io.Copy(stream, conn); errc <- err }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		err = ctx.Err()
	}
	return err
}

// collectGarbage removes pod directories of pods that no longer exist.
func (p *provider) collectGarbage(live map[types.UID]bool) {
	entries, err := os.ReadDir(p.podsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		parts := strings.Split(e.Name(), "_")
		if len(parts) != 3 || live[types.UID(parts[2])] {
			continue
		}
		if p.get(parts[0], parts[1]) != nil {
			continue
		}
		_ = os.RemoveAll(filepath.Join(p.podsDir, e.Name()))
	}
}
