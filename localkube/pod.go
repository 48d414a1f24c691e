package localkube

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podRuntime runs one pod: its volumes, init containers in order, then its
// containers, each restarted according to the pod's restart policy, with
// probes. Status changes are pushed to the provider's notifier by a single
// goroutine so that updates are never reordered.
type podRuntime struct {
	p      *provider
	key    string // namespace/name
	uid    types.UID
	dir    string
	ip     netip.Addr
	ctx    context.Context // cancelled to stop every container
	cancel context.CancelFunc
	done   chan struct{} // closed when every process has exited
	wake   chan struct{} // a status change is waiting to be sent
	final  chan struct{} // closed to send the last status and stop notifying
	sent   chan struct{} // closed when the last status has been sent

	mu struct {
		sync.Mutex
		pod         *corev1.Pod // spec as last received; status is built by snapshot
		init, ctrs  []*ctr
		prepared    bool
		initDone    bool
		failed      bool // an init container failed for good
		startTime   metav1.Time
		terminating bool
		grace       time.Duration
		conds       map[corev1.PodConditionType]corev1.PodCondition
		resolvConf  string // the pod's resolv.conf (podns.go), or "" for the host's
	}
}

// ctr is one container of a pod. All fields are guarded by the pod's mu.
type ctr struct {
	spec     corev1.Container
	init     bool
	status   corev1.ContainerStatus
	ranOnce  bool
	restart  chan struct{} // cap 1: the spec changed, restart now
	kill     chan string   // cap 1: a liveness or startup probe failed
	runDone  chan struct{} // closed when the current run ends
	logPath  string        // the current run's log
	prevLog  string        // the previous run's log
	running  *proc
	mounts   []mount // the current run's volume mounts, for exec
	finished bool    // will not run again
}

func newCtr(spec corev1.Container, init bool, restartCount int32) *ctr {
	done := make(chan struct{})
	close(done)
	return &ctr{
		spec:    spec,
		init:    init,
		restart: make(chan struct{}, 1),
		kill:    make(chan string, 1),
		runDone: done,
		status: corev1.ContainerStatus{
			Name:         spec.Name,
			Image:        spec.Image,
			RestartCount: restartCount,
			State:        corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
		},
	}
}

func (rt *podRuntime) changed() {
	select {
	case rt.wake <- struct{}{}:
	default:
	}
}

// notifier sends status changes until final is closed, then the last one.
func (rt *podRuntime) notifier() {
	defer close(rt.sent)
	for {
		select {
		case <-rt.final:
			rt.p.send(rt.snapshot())
			return
		case <-rt.wake:
			rt.p.send(rt.snapshot())
		}
	}
}

func (rt *podRuntime) event(kind, reason, format string, args ...any) {
	rt.mu.Lock()
	pod := rt.mu.pod
	rt.mu.Unlock()
	if rt.p.recorder != nil {
		rt.p.recorder.Eventf(pod, kind, reason, format, args...)
	}
	rt.p.logf("pod %s: %s: %s", rt.key, reason, fmt.Sprintf(format, args...))
}

// run is the pod's main goroutine.
func (rt *podRuntime) run() {
	defer close(rt.done)
	vols, ok := rt.prepare()
	if !ok {
		return
	}
	go rt.syncVolumes()
	rt.mu.Lock()
	inits := rt.mu.init
	rt.mu.Unlock()
	for _, c := range inits {
		if !rt.runContainer(c, vols) {
			return
		}
	}
	rt.mu.Lock()
	rt.mu.initDone = true
	ctrs := rt.mu.ctrs
	rt.mu.Unlock()
	rt.changed()
	var wg sync.WaitGroup
	for _, c := range ctrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt.runContainer(c, vols)
		}()
	}
	wg.Wait()
}

// volumeSyncPeriod is how often a running pod's Secret, ConfigMap,
// downward API and projected volumes are brought up to date (a kubelet
// does it about once a minute; localkube is for tests and demos, which
// should not wait that long for a rotated certificate).
var volumeSyncPeriod = 2 * time.Second

// syncVolumes keeps the pod's Secret, ConfigMap, downward API and projected
// volumes up to date until the pod stops, swapping each atomically when its
// source changes. A source that disappears keeps the last files, as a
// kubelet does.
func (rt *podRuntime) syncVolumes() {
	tick := time.NewTicker(volumeSyncPeriod)
	defer tick.Stop()
	for {
		select {
		case <-rt.ctx.Done():
			return
		case <-rt.done:
			return
		case <-tick.C:
		}
		rt.mu.Lock()
		pod := rt.mu.pod.DeepCopy()
		rt.mu.Unlock()
		pod.Status.PodIP = rt.ip.String()
		for i := range pod.Spec.Volumes {
			v := &pod.Spec.Volumes[i]
			files, ok, err := volumeFiles(rt.ctx, rt.p.cl, pod, v)
			if !ok || err != nil {
				continue
			}
			changed, err := writeAtomic(filepath.Join(rt.dir, "volumes", v.Name), files)
			switch {
			case err != nil:
				rt.event(corev1.EventTypeWarning, "FailedMount", "while updating volume %q: %v", v.Name, err)
			case changed:
				rt.event(corev1.EventTypeNormal, "VolumeUpdated", "volume %q: its source changed; the files were swapped", v.Name)
			}
		}
	}
}

// prepare makes the pod's directories and volumes, retrying while a
// volume's source is missing (an unbound claim, a Secret not created yet).
func (rt *podRuntime) prepare() (map[string]string, bool) {
	for _, d := range []string{"root", "tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(rt.dir, d), 0o755); err != nil {
			rt.setWaiting("CreateContainerConfigError", err.Error())
			return nil, false
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastMsg string
	for {
		rt.mu.Lock()
		pod := rt.mu.pod.DeepCopy()
		rt.mu.Unlock()
		pod.Status.PodIP = rt.ip.String()
		vols, err := prepareVolumes(rt.ctx, rt.p.cl, pod, rt.dir)
		if err == nil {
			err = rt.writeKubeconfig(pod)
		}
		var resolvConf string
		if err == nil {
			resolvConf, err = rt.writeResolvConf(pod)
		}
		if err == nil {
			rt.mu.Lock()
			rt.mu.resolvConf = resolvConf
			rt.mu.prepared = true
			rt.mu.Unlock()
			rt.changed()
			return vols, true
		}
		if msg := err.Error(); msg != lastMsg {
			lastMsg = msg
			reason := "FailedMount"
			if !errors.Is(err, errVolumeNotReady) {
				reason = "FailedMount"
			}
			rt.event(corev1.EventTypeWarning, reason, "%s", msg)
			rt.setWaiting("ContainerCreating", msg)
		}
		select {
		case <-rt.ctx.Done():
			return nil, false
		case <-tick.C:
		}
	}
}

// writeKubeconfig gives the pod a kubeconfig for its service account (the
// apiserver authenticates the client certificate as
// system:serviceaccount:NS:NAME, so the pod's RBAC applies).
func (rt *podRuntime) writeKubeconfig(pod *corev1.Pod) error {
	if !automount(pod) {
		return nil
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	return rt.p.pki.writeKubeconfig(filepath.Join(rt.dir, "kubeconfig"), rt.p.server,
		"system:serviceaccount:"+pod.Namespace+":"+sa,
		"system:serviceaccounts", "system:serviceaccounts:"+pod.Namespace)
}

func automount(pod *corev1.Pod) bool {
	return pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken
}

// setWaiting puts every container that is not running into Waiting.
func (rt *podRuntime) setWaiting(reason, msg string) {
	rt.mu.Lock()
	for _, c := range append(append([]*ctr(nil), rt.mu.init...), rt.mu.ctrs...) {
		if c.status.State.Running == nil && !c.finished {
			c.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
		}
	}
	rt.mu.Unlock()
	rt.changed()
}

// runContainer runs c until it need not run any more: it exited and the
// restart policy says so, or the pod is stopping. For an init container it
// reports whether it completed successfully.
func (rt *podRuntime) runContainer(c *ctr, vols map[string]string) bool {
	rt.mu.Lock()
	policy := rt.mu.pod.Spec.RestartPolicy
	rt.mu.Unlock()
	crashes, startFailures := 0, 0
	for {
		if rt.ctx.Err() != nil {
			return false
		}
		res := rt.runOnce(c, vols)
		if rt.ctx.Err() != nil {
			return false
		}
		if !res.started {
			// Could not start (no binary, bad config): back off and retry.
			startFailures++
			if !rt.waitBackoff(c, rt.backoff(startFailures), res.reason, res.msg) {
				return false
			}
			continue
		}
		startFailures = 0
		if !res.restartNow {
			if c.init && res.exitCode == 0 {
				rt.finish(c)
				return true
			}
			again := policy == corev1.RestartPolicyAlways ||
				(policy == corev1.RestartPolicyOnFailure && res.exitCode != 0)
			if !again {
				rt.finish(c)
				if c.init {
					rt.mu.Lock()
					rt.mu.failed = true
					rt.mu.Unlock()
					rt.changed()
				}
				return false
			}
			if res.ranFor >= rt.p.cfg.BackoffReset {
				crashes = 0
			}
			// The first restart is immediate, like a kubelet's.
			if d := rt.backoff(crashes); d > 0 {
				msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", d, c.spec.Name, rt.key)
				rt.event(corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s", c.spec.Name, rt.key)
				if !rt.waitBackoff(c, d, "CrashLoopBackOff", msg) {
					return false
				}
			}
			crashes++
		}
		rt.mu.Lock()
		c.status.RestartCount++
		rt.mu.Unlock()
	}
}

// backoff is the delay before retry n (0 for n == 0): RestartBackoff
// doubling up to MaxRestartBackoff.
func (rt *podRuntime) backoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := rt.p.cfg.RestartBackoff
	for i := 1; i < n && d < rt.p.cfg.MaxRestartBackoff; i++ {
		d *= 2
	}
	return min(d, rt.p.cfg.MaxRestartBackoff)
}

func (rt *podRuntime) waitBackoff(c *ctr, d time.Duration, reason, msg string) bool {
	rt.mu.Lock()
	if c.status.State.Terminated != nil {
		c.status.LastTerminationState = corev1.ContainerState{Terminated: c.status.State.Terminated}
	}
	c.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
	c.status.Ready = false
	rt.mu.Unlock()
	rt.changed()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-rt.ctx.Done():
		return false
	case <-c.restart:
		return true
	case <-t.C:
		return true
	}
}

func (rt *podRuntime) finish(c *ctr) {
	rt.mu.Lock()
	c.finished = true
	rt.mu.Unlock()
	rt.changed()
}

type runResult struct {
	started     bool
	reason, msg string // why it did not start
	exitCode    int32
	ranFor      time.Duration
	restartNow  bool // the spec changed: restart without backoff
}

// runOnce starts c once and waits for it to exit (or stops it).
func (rt *podRuntime) runOnce(c *ctr, vols map[string]string) runResult {
	rt.mu.Lock()
	spec := *c.spec.DeepCopy()
	pod := rt.mu.pod.DeepCopy()
	restarts := c.status.RestartCount
	grace := terminationGrace(pod)
	resolvConf := rt.mu.resolvConf
	select { // a restart requested before this start is moot
	case <-c.restart:
	default:
	}
	select {
	case <-c.kill:
	default:
	}
	rt.mu.Unlock()

	cmd, mounts, reason, err := rt.command(pod, &spec, vols)
	if err != nil {
		if reason == "ErrImagePull" {
			rt.event(corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %v", spec.Image, err)
		} else {
			rt.event(corev1.EventTypeWarning, "Failed", "Error: %v", err)
		}
		return runResult{reason: reason, msg: err.Error()}
	}
	logDir := filepath.Join(rt.dir, "logs", spec.Name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return runResult{reason: "RunContainerError", msg: err.Error()}
	}
	logPath := filepath.Join(logDir, strconv.Itoa(int(restarts))+".log")
	lf, err := createLogFile(logPath)
	if err != nil {
		return runResult{reason: "RunContainerError", msg: err.Error()}
	}
	defer func() { _ = lf.Close() }()
	stdout := &streamWriter{log: lf, stream: "stdout"}
	stderr := &streamWriter{log: lf, stream: "stderr"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	exe := cmd.Path
	inPodNamespace(cmd, resolvConf)
	pidFile := filepath.Join(rt.p.cfg.Dir, "run", "pods", string(rt.uid)+"-"+spec.Name+".pid")
	pr, err := startProc(rt.key+"/"+spec.Name, cmd, pidFile)
	if err != nil {
		rt.event(corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return runResult{reason: "RunContainerError", msg: err.Error()}
	}
	startedAt := metav1.Now()
	runDone := make(chan struct{})
	rt.mu.Lock()
	if c.logPath != "" {
		c.prevLog = c.logPath
	}
	c.logPath, c.runDone, c.running, c.ranOnce, c.mounts = logPath, runDone, pr, true, mounts
	st := &c.status
	if st.State.Terminated != nil {
		st.LastTerminationState = corev1.ContainerState{Terminated: st.State.Terminated}
	}
	st.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: startedAt}}
	st.ContainerID = fmt.Sprintf("localkube://%d", pr.pid())
	st.Image, st.ImageID = spec.Image, "localkube://"+exe
	st.Ready = false
	started := spec.StartupProbe == nil
	st.Started = &started
	rt.mu.Unlock()
	rt.event(corev1.EventTypeNormal, "Started", "Started container %s (pid %d, %s)", spec.Name, pr.pid(), exe)
	rt.changed()

	runCtx, cancelRun := context.WithCancel(rt.ctx)
	probes := rt.startProbes(runCtx, c, &spec, cmd, mounts, resolvConf)

	restartNow := false
	select {
	case <-pr.done:
	case <-rt.ctx.Done():
		rt.mu.Lock()
		g := rt.mu.grace
		rt.mu.Unlock()
		rt.event(corev1.EventTypeNormal, "Killing", "Stopping container %s", spec.Name)
		pr.stop(g)
	case <-c.restart:
		rt.event(corev1.EventTypeNormal, "Killing", "Container %s definition changed, will be restarted", spec.Name)
		pr.stop(grace)
		restartNow = true
	case why := <-c.kill:
		rt.event(corev1.EventTypeNormal, "Killing", "Container %s %s, will be restarted", spec.Name, why)
		pr.stop(grace)
	}
	cancelRun()
	probes.Wait()
	stdout.flush()
	stderr.flush()

	code, sig := pr.exitCode()
	exitReason := "Completed"
	if code != 0 {
		exitReason = "Error"
	}
	rt.mu.Lock()
	c.running = nil
	c.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode:    code,
		Signal:      sig,
		Reason:      exitReason,
		StartedAt:   startedAt,
		FinishedAt:  metav1.NewTime(pr.exited),
		ContainerID: c.status.ContainerID,
	}}
	c.status.Ready = false
	f := false
	c.status.Started = &f
	close(runDone)
	rt.mu.Unlock()
	rt.changed()
	return runResult{started: true, exitCode: code, ranFor: pr.exited.Sub(pr.started), restartNow: restartNow}
}

func terminationGrace(pod *corev1.Pod) time.Duration {
	if s := pod.Spec.TerminationGracePeriodSeconds; s != nil {
		return time.Duration(*s) * time.Second
	}
	return 30 * time.Second
}

// command builds the process for a container: the image's binary, the
// container's command and args with $(VAR) expanded, volume paths rewritten
// to their host directories, and the environment.
func (rt *podRuntime) command(pod *corev1.Pod, c *corev1.Container, vols map[string]string) (*exec.Cmd, []mount, string, error) {
	bin, err := resolveImage(rt.p.cfg.Images, rt.p.cfg.ImageBinDir, c.Image)
	if err != nil {
		return nil, nil, "ErrImagePull", err
	}
	mounts, err := containerMounts(c, vols)
	if err != nil {
		return nil, nil, "CreateContainerConfigError", err
	}
	path := filepath.Dir(bin) + string(os.PathListSeparator) + hostPath()
	name := pod.Name
	if pod.Spec.Hostname != "" {
		name = pod.Spec.Hostname
	}
	base := []envVar{
		{"PATH", path},
		{"HOME", filepath.Join(rt.dir, "root")},
		{"TMPDIR", filepath.Join(rt.dir, "tmp")},
		{"HOSTNAME", name},
		{"POD_IP", rt.ip.String()},
		{"POD_NAME", pod.Name},
		{"POD_NAMESPACE", pod.Namespace},
	}
	for _, k := range []string{"GOCOVERDIR", "GORACE", "GOTRACEBACK", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			base = append(base, envVar{k, v})
		}
	}
	if automount(pod) {
		base = append(base, envVar{"KUBECONFIG", filepath.Join(rt.dir, "kubeconfig")})
	}
	vars, err := resolveEnv(rt.ctx, rt.p.cl, pod, c, rt.ip.String(), base)
	if err != nil {
		return nil, nil, "CreateContainerConfigError", err
	}
	lookup := func(n string) (string, bool) {
		for i := len(vars) - 1; i >= 0; i-- {
			if vars[i].name == n {
				return vars[i].value, true
			}
		}
		return "", false
	}
	ip := rt.ip.String()
	env := make([]string, 0, len(vars))
	for _, v := range vars {
		env = append(env, v.name+"="+rewriteListen(rewritePaths(v.value, mounts), ip))
		if v.name == "PATH" {
			path = v.value
		}
	}

	var argv []string
	for _, a := range c.Command {
		argv = append(argv, expand(a, lookup))
	}
	var args []string
	for _, a := range c.Args {
		args = append(args, expand(a, lookup))
	}
	switch {
	case len(argv) == 0:
		argv = append([]string{bin}, args...)
	case filepath.Base(argv[0]) == filepath.Base(bin):
		argv = append(append([]string{bin}, argv[1:]...), args...)
	default:
		argv = append(argv, args...)
	}
	for i := 1; i < len(argv); i++ {
		argv[i] = rewriteListen(rewritePaths(argv[i], mounts), ip)
	}
	exe := imageCommand(argv[0], bin)
	if exe == "" {
		exe = lookPath(argv[0], path)
	}
	if _, err := os.Stat(exe); err != nil {
		return nil, nil, "RunContainerError", fmt.Errorf("command %q: %w", argv[0], err)
	}

	dir := filepath.Join(rt.dir, "root")
	if c.WorkingDir != "" {
		dir = rewritePaths(c.WorkingDir, mounts)
		if dir == c.WorkingDir {
			dir = filepath.Join(rt.dir, "root", c.WorkingDir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, "CreateContainerConfigError", err
		}
	}
	cmd := exec.Command(exe, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env, cmd.Dir = env, dir
	return cmd, mounts, "", nil
}

// imageCommand resolves a container command given as an absolute path that
// does not exist on the host ("/kshaka" in the acceptor image) to the
// binary of that name beside the image's binary bin (bin/kshaka), the way
// the image holds both; "" when name is not such a command or there is no
// such binary.
func imageCommand(name, bin string) string {
	if !filepath.IsAbs(name) {
		return ""
	}
	if _, err := os.Stat(name); err == nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(bin), filepath.Base(name))
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return p
	}
	return ""
}

// lookPath finds name in the directories of path (a PATH value).
func lookPath(name, path string) string {
	if strings.Contains(name, "/") {
		return name
	}
	for _, d := range filepath.SplitList(path) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

func hostPath() string {
	if p := os.Getenv("PATH"); p != "" {
		return p
	}
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

// startProbes starts c's startup, liveness and readiness probes for one run.
func (rt *podRuntime) startProbes(ctx context.Context, c *ctr, spec *corev1.Container, cmd *exec.Cmd, mounts []mount, resolvConf string) *sync.WaitGroup {
	var wg sync.WaitGroup
	mk := func(pr *corev1.Probe) *prober {
		return &prober{probe: pr, container: spec, podIP: rt.ip.String(), env: cmd.Env, dir: cmd.Dir, path: envValue(cmd.Env, "PATH"), mounts: mounts, resolvConf: resolvConf}
	}
	kill := func(why string) {
		select {
		case c.kill <- why:
		default:
		}
	}
	started := make(chan struct{})
	if spec.StartupProbe == nil {
		close(started)
	} else {
		sctx, cancel := context.WithCancel(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			mk(spec.StartupProbe).run(sctx, func(ok bool, msg string) {
				if !ok {
					rt.event(corev1.EventTypeWarning, "Unhealthy", "Startup probe failed: %s", msg)
					kill("failed startup probe")
					return
				}
				rt.mu.Lock()
				t := true
				c.status.Started = &t
				rt.mu.Unlock()
				rt.changed()
				close(started)
				cancel() // a startup probe stops once it succeeded
			})
		}()
	}
	after := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ctx.Done():
			case <-started:
				f()
			}
		}()
	}
	if spec.LivenessProbe != nil {
		after(func() {
			mk(spec.LivenessProbe).run(ctx, func(ok bool, msg string) {
				if !ok {
					rt.event(corev1.EventTypeWarning, "Unhealthy", "Liveness probe failed: %s", msg)
					kill("failed liveness probe")
				}
			})
		})
	}
	setReady := func(ok bool) {
		rt.mu.Lock()
		changed := c.status.Ready != ok && c.status.State.Running != nil
		if changed {
			c.status.Ready = ok
		}
		rt.mu.Unlock()
		if changed {
			rt.changed()
		}
	}
	if spec.ReadinessProbe != nil {
		after(func() {
			mk(spec.ReadinessProbe).run(ctx, func(ok bool, msg string) {
				if !ok {
					rt.event(corev1.EventTypeWarning, "Unhealthy", "Readiness probe failed: %s", msg)
				}
				setReady(ok)
			})
		})
	} else if !c.init {
		after(func() { setReady(true) })
	}
	return &wg
}

func envValue(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// terminate stops every container with the given grace period and sends
// the final status. It is idempotent; later calls wait for the first.
func (rt *podRuntime) terminate(grace time.Duration) {
	rt.mu.Lock()
	first := !rt.mu.terminating
	if first {
		rt.mu.terminating = true
		rt.mu.grace = grace
	}
	rt.mu.Unlock()
	if first {
		rt.cancel()
	}
	<-rt.done
	if first {
		rt.mu.Lock()
		for _, c := range append(append([]*ctr(nil), rt.mu.init...), rt.mu.ctrs...) {
			if c.status.State.Waiting != nil && !c.ranOnce {
				// Never ran: report it terminated so the pod reads as stopped.
				c.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 137, Reason: "ContainerStatusUnknown",
					Message: "The container could not be located when the pod was terminated",
				}}
			} else if c.status.State.Waiting != nil && c.status.LastTerminationState.Terminated != nil {
				c.status.State = c.status.LastTerminationState
			}
		}
		rt.mu.Unlock()
		close(rt.final)
	}
	<-rt.sent
}

// snapshot returns the pod with its current status, the way a kubelet
// would report it.
func (rt *podRuntime) snapshot() *corev1.Pod {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	pod := rt.mu.pod.DeepCopy()
	st := &pod.Status
	st.HostIP = "127.0.0.1"
	st.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
	st.PodIP = rt.ip.String()
	st.PodIPs = []corev1.PodIP{{IP: rt.ip.String()}}
	start := rt.mu.startTime
	st.StartTime = &start
	st.Reason, st.Message = "", ""
	st.InitContainerStatuses = nil
	for _, c := range rt.mu.init {
		st.InitContainerStatuses = append(st.InitContainerStatuses, *c.status.DeepCopy())
	}
	st.ContainerStatuses = nil
	var unready []string
	for _, c := range rt.mu.ctrs {
		st.ContainerStatuses = append(st.ContainerStatuses, *c.status.DeepCopy())
		if !c.status.Ready {
			unready = append(unready, c.spec.Name)
		}
	}
	st.Phase = rt.phaseLocked()

	if api, err := rt.p.podFromAPI(pod.Namespace, pod.Name); err == nil && api.UID == rt.uid {
		st.Conditions = api.Status.Conditions // keep conditions others own
	}
	set := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		status := corev1.ConditionFalse
		if ok {
			status, reason, msg = corev1.ConditionTrue, "", ""
		}
		prev, had := rt.mu.conds[t]
		cond := corev1.PodCondition{Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.Now()}
		if had && prev.Status == status {
			cond.LastTransitionTime = prev.LastTransitionTime
		}
		rt.mu.conds[t] = cond
		for i := range st.Conditions {
			if st.Conditions[i].Type == t {
				st.Conditions[i] = cond
				return
			}
		}
		st.Conditions = append(st.Conditions, cond)
	}
	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	set(corev1.PodReadyToStartContainers, rt.mu.prepared && !terminal && !rt.mu.terminating, "", "")
	initDone := rt.mu.initDone || len(rt.mu.init) == 0
	set(corev1.PodInitialized, initDone, "ContainersNotInitialized", "containers with incomplete status: "+initNames(rt.mu.init))
	msg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	set(corev1.ContainersReady, len(unready) == 0 && initDone, "ContainersNotReady", msg)
	ready := len(unready) == 0 && initDone
	for _, g := range pod.Spec.ReadinessGates {
		found := false
		for _, c := range st.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				found = true
			}
		}
		if !found {
			ready = false
			msg = fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist or is false", g.ConditionType)
		}
	}
	reason := "ContainersNotReady"
	if !initDone {
		reason = "ContainersNotInitialized"
	}
	set(corev1.PodReady, ready, reason, msg)
	return pod
}

func initNames(cs []*ctr) string {
	var names []string
	for _, c := range cs {
		if c.status.State.Terminated == nil || c.status.State.Terminated.ExitCode != 0 {
			names = append(names, c.spec.Name)
		}
	}
	return "[" + strings.Join(names, " ") + "]"
}

// phaseLocked computes the pod phase like the kubelet's getPhase.
func (rt *podRuntime) phaseLocked() corev1.PodPhase {
	policy := rt.mu.pod.Spec.RestartPolicy
	if rt.mu.failed {
		return corev1.PodFailed
	}
	if !rt.mu.initDone && len(rt.mu.init) > 0 {
		return corev1.PodPending
	}
	var running, waiting, stopped, succeeded int
	for _, c := range rt.mu.ctrs {
		switch {
		case c.status.State.Running != nil:
			running++
		case c.status.State.Terminated != nil:
			stopped++
			if c.status.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case c.status.LastTerminationState.Terminated != nil:
			stopped++ // restarting after an exit
			if c.status.LastTerminationState.Terminated.ExitCode == 0 {
				succeeded++
			}
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0 && rt.mu.terminating:
		if succeeded == stopped {
			return corev1.PodSucceeded
		}
		return corev1.PodFailed
	case policy == corev1.RestartPolicyAlways:
		return corev1.PodRunning
	case succeeded == stopped:
		allFinished := true
		for _, c := range rt.mu.ctrs {
			allFinished = allFinished && c.finished
		}
		if allFinished {
			return corev1.PodSucceeded
		}
		return corev1.PodRunning
	default:
		for _, c := range rt.mu.ctrs {
			if !c.finished {
				return corev1.PodRunning
			}
		}
		return corev1.PodFailed
	}
}
