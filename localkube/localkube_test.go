package localkube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

const testImage = "localkube-test/testserver:v1"

// buildTestServer builds testdata/testserver, the program the test pods run.
func buildTestServer(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "testserver")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/testserver")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // Go's own resolver, as the project's images
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("while building the test server: %v\n%s", err, b)
	}
	return out
}

// TestLocalkube starts one environment and checks, in order, what the
// end-to-end tests and the demo rely on; then it stops the environment and
// checks that no process it started is left.
func TestLocalkube(t *testing.T) {
	var cfg Config
	cfg.EnsureDefaults()
	if missing := cfg.MissingBinaries(); len(missing) > 0 {
		t.Fatalf("the Kubernetes binaries are missing (%s); build them with `make kube-binaries`",
			strings.Join(missing, ", "))
	}
	bin := buildTestServer(t)
	before := goleak.IgnoreCurrent()
	cfg.Images = append(append([]ImageRule(nil), DefaultImages...),
		ImageRule{Repository: "localkube-test/testserver", Binary: bin})
	cfg.Dir = t.TempDir()
	cfg.PodAddresses = RandomPodAddresses() // a demo may be running on the default range
	c := StartT(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	var seen []int // every container process seen, checked after Stop
	t.Run("KubectlAndHelm", func(t *testing.T) { testKubectlAndHelm(ctx, t, c) })
	t.Run("PodReadyLogsDelete", func(t *testing.T) { seen = append(seen, testPod(ctx, t, c)...) })
	t.Run("RestartsAndExitCodes", func(t *testing.T) { seen = append(seen, testRestarts(ctx, t, c)...) })
	t.Run("PersistentVolume", func(t *testing.T) { seen = append(seen, testVolume(ctx, t, c)...) })
	t.Run("StatefulSet", func(t *testing.T) { seen = append(seen, testStatefulSet(ctx, t, c)...) })
	t.Run("ClusterDNS", func(t *testing.T) { seen = append(seen, testDNS(ctx, t, c)...) })

	all := append(c.PIDs(), seen...)
	if err := c.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	for _, pid := range all {
		if processAlive(pid) {
			t.Errorf("process %d is still running after Stop", pid)
		}
	}
	if DirInUse(cfg.Dir) {
		t.Errorf("%s is still locked after Stop", cfg.Dir)
	}
	// The spawner goroutine stays by design: its thread must outlive children.
	goleak.VerifyNone(t, before, goleak.IgnoreTopFunction("github.com/kshaka-io/kshaka/localkube.startLocked.func1.1"))
}

func testKubectlAndHelm(ctx context.Context, t *testing.T, c *Cluster) {
	out, err := c.Kubectl(ctx, "get", "nodes", "-o", "name").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "node/"+c.NodeName() {
		t.Errorf("kubectl get nodes: %v: %s", err, out)
	}
	out, err = c.Kubectl(ctx, "get", "storageclass", StorageClassName, "-o",
		`jsonpath={.metadata.annotations.storageclass\.kubernetes\.io/is-default-class}`).CombinedOutput()
	if err != nil || string(out) != "true" {
		t.Errorf("default storage class: %v: %s", err, out)
	}
	if _, err := os.Stat(c.HelmPath()); err != nil {
		t.Fatalf("helm is missing (%v); build it with `hack/install-tools.sh helm` (or `make tools`)", err)
	}
	chart := filepath.Join(t.TempDir(), "hello")
	must(t, os.MkdirAll(filepath.Join(chart, "templates"), 0o755))
	must(t, os.WriteFile(filepath.Join(chart, "Chart.yaml"), []byte("apiVersion: v2\nname: hello\nversion: 0.1.0\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(chart, "templates", "cm.yaml"), []byte(
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-hello\ndata:\n  greeting: hi\n"), 0o644))
	if out, err := c.Helm(ctx, "install", "demo", chart, "--wait", "--timeout", "2m").CombinedOutput(); err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	if _, err := c.Client().CoreV1().ConfigMaps("default").Get(ctx, "demo-hello", metav1.GetOptions{}); err != nil {
		t.Errorf("the chart's ConfigMap: %v", err)
	}
	if out, err := c.Helm(ctx, "uninstall", "demo", "--wait").CombinedOutput(); err != nil {
		t.Errorf("helm uninstall: %v\n%s", err, out)
	}
}

// testPod: a pod with probes becomes Ready on its own loopback address,
// `kubectl logs` shows its output, its kubeconfig authenticates as its
// service account, and deleting it kills the process.
func testPod(ctx context.Context, t *testing.T, c *Cluster) []int {
	cl := c.Client()
	pod := testPodSpec("web", "--listen=$(MY_IP):8080", "--grpc-listen=$(MY_IP):8081")
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{
		Name:      "MY_IP",
		ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}},
	}}
	svc := ""
	pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 8081, Service: &svc}},
		PeriodSeconds: 1,
	}
	_, err := cl.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	must(t, err)
	pod = waitPod(ctx, t, cl, "default", "web", "Ready", func(p *corev1.Pod) bool { return PodReady(p) })

	ip, err := netip.ParseAddr(pod.Status.PodIP)
	first, last, _ := parseAddressRange(c.Config().PodAddresses)
	if err != nil || ip.Less(first) || last.Less(ip) {
		t.Fatalf("pod IP %q is not in %s", pod.Status.PodIP, c.Config().PodAddresses)
	}
	resp, err := http.Get("http://" + pod.Status.PodIP + ":8080/healthz")
	if err != nil {
		t.Fatalf("GET /healthz on the pod IP: %v", err)
	}
	resp.Body.Close()

	out, err := c.Kubectl(ctx, "logs", "web").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "listening on "+pod.Status.PodIP+":8080") {
		t.Errorf("kubectl logs web: %v:\n%s", err, out)
	}
	kc := filepath.Join(c.Config().Dir, "pods", "default_web_"+string(pod.UID), "kubeconfig")
	out, err = c.Kubectl(ctx, "--kubeconfig", kc, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").CombinedOutput()
	if err != nil || string(out) != "system:serviceaccount:default:default" {
		t.Errorf("the pod's kubeconfig: %v: %s", err, out)
	}

	pid := containerPID(t, pod)
	if !processAlive(pid) {
		t.Fatalf("process %d of the pod is not running", pid)
	}
	must(t, cl.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{}))
	waitGone(ctx, t, cl, "default", "web")
	waitFor(ctx, t, fmt.Sprintf("process %d to exit", pid), func() bool { return !processAlive(pid) })
	return []int{pid}
}

// testRestarts: exit codes, restarts with the restart policy, --previous
// logs, and a pod that completes.
func testRestarts(ctx context.Context, t *testing.T, c *Cluster) []int {
	cl := c.Client()
	crasher := testPodSpec("crasher", "--exit-code=3")
	crasher.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	crasher.Spec.Containers[0].ReadinessProbe = nil
	_, err := cl.CoreV1().Pods("default").Create(ctx, crasher, metav1.CreateOptions{})
	must(t, err)
	p := waitPod(ctx, t, cl, "default", "crasher", "two restarts after exit code 3", func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		s := p.Status.ContainerStatuses[0]
		return s.RestartCount >= 2 && s.LastTerminationState.Terminated != nil &&
			s.LastTerminationState.Terminated.ExitCode == 3
	})
	if p.Status.Phase != corev1.PodRunning {
		t.Errorf("a restarting pod is in phase %s, want Running", p.Status.Phase)
	}
	out, err := c.Kubectl(ctx, "logs", "crasher", "--previous").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "exiting with code 3") {
		t.Errorf("kubectl logs --previous: %v:\n%s", err, out)
	}
	must(t, cl.CoreV1().Pods("default").Delete(ctx, "crasher", metav1.DeleteOptions{}))

	done := testPodSpec("done", "--exit-code=0")
	done.Spec.RestartPolicy = corev1.RestartPolicyNever
	done.Spec.Containers[0].ReadinessProbe = nil
	_, err = cl.CoreV1().Pods("default").Create(ctx, done, metav1.CreateOptions{})
	must(t, err)
	p = waitPod(ctx, t, cl, "default", "done", "Succeeded", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded
	})
	if s := p.Status.ContainerStatuses[0]; s.State.Terminated == nil || s.State.Terminated.Reason != "Completed" || s.RestartCount != 0 {
		t.Errorf("completed container status: %+v", s)
	}
	must(t, cl.CoreV1().Pods("default").Delete(ctx, "done", metav1.DeleteOptions{}))
	waitGone(ctx, t, cl, "default", "crasher")
	waitGone(ctx, t, cl, "default", "done")
	return nil
}

// testVolume: a claim is bound to a directory that outlives its pod and
// is removed with the claim.
func testVolume(ctx context.Context, t *testing.T, c *Cluster) []int {
	cl := c.Client()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Mi")},
			},
		},
	}
	_, err := cl.CoreV1().PersistentVolumeClaims("default").Create(ctx, pvc, metav1.CreateOptions{})
	must(t, err)
	pod := testPodSpec("writer", "--listen=$(POD_IP):8080", "--data-dir=/var/lib/data")
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"},
	}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/data"}}
	_, err = cl.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	must(t, err)
	p := waitPod(ctx, t, cl, "default", "writer", "Ready", PodReady)
	pid := containerPID(t, p)

	bound, err := cl.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
	must(t, err)
	pv, err := cl.CoreV1().PersistentVolumes().Get(ctx, bound.Spec.VolumeName, metav1.GetOptions{})
	must(t, err)
	if pv.Spec.HostPath == nil {
		t.Fatalf("persistent volume %s is not a hostPath volume", pv.Name)
	}
	file := filepath.Join(pv.Spec.HostPath.Path, "hello.txt")
	if b, err := os.ReadFile(file); err != nil || string(b) != "writer" {
		t.Fatalf("the pod's file in the volume: %q, %v", b, err)
	}

	must(t, cl.CoreV1().Pods("default").Delete(ctx, "writer", metav1.DeleteOptions{}))
	waitGone(ctx, t, cl, "default", "writer")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the volume's file is gone with the pod: %v", err)
	}
	must(t, cl.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "data", metav1.DeleteOptions{}))
	waitFor(ctx, t, "the persistent volume to be deleted", func() bool {
		_, err := cl.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if _, err := os.Stat(pv.Spec.HostPath.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the volume's directory %s still exists after the claim was deleted: %v", pv.Spec.HostPath.Path, err)
	}
	return []int{pid}
}

// testStatefulSet: kube-controller-manager creates the pods and their
// claims, and both replicas become Ready with distinct addresses.
func testStatefulSet(ctx context.Context, t *testing.T, c *Cluster) []int {
	cl := c.Client()
	labels := map[string]string{"app": "sts"}
	tmpl := testPodSpec("", "--listen=$(POD_IP):8080", "--data-dir=/data")
	tmpl.Labels = labels
	tmpl.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	replicas := int32(2)
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "sts"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            &replicas,
			ServiceName:         "sts",
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			Template:            corev1.PodTemplateSpec{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Mi")},
					},
				},
			}},
		},
	}
	_, err := cl.AppsV1().StatefulSets("default").Create(ctx, sts, metav1.CreateOptions{})
	must(t, err)
	waitFor(ctx, t, "statefulset sts to have 2 ready replicas", func() bool {
		s, err := cl.AppsV1().StatefulSets("default").Get(ctx, "sts", metav1.GetOptions{})
		return err == nil && s.Status.ReadyReplicas == 2
	})
	var pids []int
	ips := map[string]bool{}
	for _, name := range []string{"sts-0", "sts-1"} {
		p, err := cl.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		must(t, err)
		if p.Status.Phase != corev1.PodRunning || !PodReady(p) {
			t.Errorf("pod %s: phase %s, ready %v", name, p.Status.Phase, PodReady(p))
		}
		ips[p.Status.PodIP] = true
		pids = append(pids, containerPID(t, p))
	}
	if len(ips) != 2 {
		t.Errorf("the replicas share an address: %v", ips)
	}
	bg := metav1.DeletePropagationBackground
	must(t, cl.AppsV1().StatefulSets("default").Delete(ctx, "sts", metav1.DeleteOptions{PropagationPolicy: &bg}))
	waitGone(ctx, t, cl, "default", "sts-0")
	waitGone(ctx, t, cl, "default", "sts-1")
	for _, pid := range pids {
		if processAlive(pid) {
			t.Errorf("process %d of a deleted replica is still running", pid)
		}
	}
	return pids
}

// testDNS: a StatefulSet's pods under a headless Service resolve each
// other's names from inside (Go's resolver reading the pod's resolv.conf,
// bind-mounted over /etc/resolv.conf without touching the host's), the host
// resolves them through Cluster.Resolver, and a deleted pod's new address
// is what its name resolves to soon after.
func testDNS(ctx context.Context, t *testing.T, c *Cluster) []int {
	cl := c.Client()
	hostConf, err := os.ReadFile("/etc/resolv.conf")
	must(t, err)
	labels := map[string]string{"app": "dns"}
	_, err = cl.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "dns"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}},
	}, metav1.CreateOptions{})
	must(t, err)
	tmpl := testPodSpec("", "--listen=$(POD_IP):8080")
	tmpl.Labels = labels
	replicas := int32(2)
	_, err = cl.AppsV1().StatefulSets("default").Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "dns"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas, ServiceName: "dns", PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec},
		},
	}, metav1.CreateOptions{})
	must(t, err)
	waitFor(ctx, t, "statefulset dns to have 2 ready replicas", func() bool {
		s, err := cl.AppsV1().StatefulSets("default").Get(ctx, "dns", metav1.GetOptions{})
		return err == nil && s.Status.ReadyReplicas == 2
	})
	pod := func(name string) *corev1.Pod {
		p, err := cl.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		must(t, err)
		return p
	}
	dns0, dns1 := pod("dns-0"), pod("dns-1")
	pids := []int{containerPID(t, dns0), containerPID(t, dns1)}
	// resolveIn asks dns-0's process to resolve name.
	resolveIn := func(name string) (string, error) {
		u := "http://" + dns0.Status.PodIP + ":8080/resolve?name=" + name
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", err
		}
		req.Close = true // no idle connection left for goleak to find
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s: %s", resp.Status, b)
		}
		return string(b), nil
	}
	// waitResolves polls until dns-0 resolves name to want.
	waitResolves := func(name, want string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			got, err := resolveIn(name)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				slices, _ := c.Kubectl(ctx, "get", "endpointslices", "-l", "kubernetes.io/service-name=dns", "-o", "yaml").CombinedOutput()
				t.Fatalf("dns-0 resolves %s to %q (%v), want %q; the Service's EndpointSlices:\n%s", name, got, err, want, slices)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	out, err := c.Kubectl(ctx, "exec", "dns-0", "--", "cat", "/etc/resolv.conf").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nameserver "+c.DNSServer().Addr().String()+"\n") ||
		!strings.Contains(string(out), "search default.svc.cluster.local svc.cluster.local cluster.local\n") {
		t.Errorf("kubectl exec cat /etc/resolv.conf: %v\n%s", err, out)
	}
	waitResolves("dns-1.dns.default.svc", dns1.Status.PodIP)
	want := []string{dns0.Status.PodIP, dns1.Status.PodIP}
	slices.Sort(want)
	if got, err := resolveIn("dns"); err != nil || got != strings.Join(want, " ") {
		t.Errorf("dns-0 resolves the Service dns (through the search path) to %q (%v), want %q", got, err, want)
	}
	if got, err := resolveIn("nope.default.svc.cluster.local"); err == nil {
		t.Errorf("dns-0 resolves a missing name to %q", got)
	}
	if now, err := os.ReadFile("/etc/resolv.conf"); err != nil || string(now) != string(hostConf) {
		t.Errorf("the host's /etc/resolv.conf changed: %v\n%s", err, now)
	}
	r := c.Resolver()
	if addrs, err := r.LookupHost(ctx, "dns-1.dns.default.svc"); err != nil || len(addrs) != 1 || addrs[0].String() != dns1.Status.PodIP {
		t.Errorf("Resolver().LookupHost(dns-1.dns.default.svc) = %v, %v; want %s", addrs, err, dns1.Status.PodIP)
	}

	// Delete dns-1: its replacement has a new address, which its name
	// resolves to once the EndpointSlice has it.
	must(t, cl.CoreV1().Pods("default").Delete(ctx, "dns-1", metav1.DeleteOptions{}))
	var again *corev1.Pod
	waitFor(ctx, t, "dns-1 to be replaced and ready", func() bool {
		p, err := cl.CoreV1().Pods("default").Get(ctx, "dns-1", metav1.GetOptions{})
		if err == nil && p.UID != dns1.UID && PodReady(p) {
			again = p
		}
		return again != nil
	})
	if again.Status.PodIP == dns1.Status.PodIP {
		t.Fatalf("the replacement of dns-1 has the same address %s; the test needs a new one", again.Status.PodIP)
	}
	ready := time.Now()
	waitResolves("dns-1.dns.default.svc", again.Status.PodIP)
	t.Logf("dns-1's new address resolved %v after its pod was ready", time.Since(ready).Round(10*time.Millisecond))
	pids = append(pids, containerPID(t, again))

	bg := metav1.DeletePropagationBackground
	must(t, cl.AppsV1().StatefulSets("default").Delete(ctx, "dns", metav1.DeleteOptions{PropagationPolicy: &bg}))
	must(t, cl.CoreV1().Services("default").Delete(ctx, "dns", metav1.DeleteOptions{}))
	waitGone(ctx, t, cl, "default", "dns-0")
	waitGone(ctx, t, cl, "default", "dns-1")
	return pids
}

func testPodSpec(name string, args ...string) *corev1.Pod {
	grace := int64(5)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name:  "server",
				Image: testImage,
				Args:  args,
				ReadinessProbe: &corev1.Probe{
					ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
						Path: "/healthz", Port: intstr.FromInt32(8080),
					}},
					PeriodSeconds: 1,
				},
			}},
		},
	}
}

func containerPID(t *testing.T, p *corev1.Pod) int {
	t.Helper()
	if len(p.Status.ContainerStatuses) == 0 {
		t.Fatalf("pod %s has no container status", p.Name)
	}
	id := p.Status.ContainerStatuses[0].ContainerID
	pid, err := strconv.Atoi(strings.TrimPrefix(id, "localkube://"))
	if err != nil {
		t.Fatalf("pod %s: container ID %q has no pid", p.Name, id)
	}
	return pid
}

// waitPod waits until cond holds for the pod and returns it.
func waitPod(ctx context.Context, t *testing.T, cl kubernetes.Interface, ns, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cl.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		var status any
		if last != nil {
			status = last.Status
		}
		t.Fatalf("pod %s/%s did not become %s: %v\nlast status: %+v", ns, name, what, err, status)
	}
	return last
}

func waitGone(ctx context.Context, t *testing.T, cl kubernetes.Interface, ns, name string) {
	t.Helper()
	waitFor(ctx, t, "pod "+ns+"/"+name+" to be deleted", func() bool {
		_, err := cl.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
