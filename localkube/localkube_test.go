package localkube

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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
