package controllers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/internal/pki"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// kubelet plays, for envtest (which runs no controller manager and no
// kubelet), the StatefulSet controller, the PVC protection controller, the
// volume binder and resizer, the garbage collector's orphaning and the
// kubelet of one KshakaCluster: it creates the StatefulSet's pods and
// volume claims (one per claim template), binds each claim with the
// capacity it requests (and grows the capacity when the request grows),
// deletes pods above the StatefulSet's size, orphans the pods of a
// StatefulSet deleted with propagation Orphan and adopts orphans into the
// StatefulSet of that name, and "runs" each pod as a real acceptor
// (acceptor.Open on a directory that belongs to the data volume claim,
// served on the pod's own loopback IP) whose readiness is its admission, as
// the gRPC readiness probe would report it.
type kubelet struct {
	t    *testing.T
	c    client.Client
	ns   string
	name string
	port int32
	base string

	mu struct {
		sync.Mutex
		// dirs: volume claim UID → data directory.
		dirs map[types.UID]string
		// running: pod name → acceptor.
		running map[string]*podAcceptor
		// paused pods keep their volume but their acceptor is stopped.
		paused map[string]bool
		// lastErr is the last sync error, for failure messages.
		lastErr error
	}
	// tls is the cluster's <cluster>-acceptor-tls as last read: what the
	// pods' mounted Secret volume holds. Not under mu: handshakes read it
	// while stopAcceptor, under mu, waits for them.
	tls  atomic.Pointer[corev1.Secret]
	stop chan struct{}
	done chan struct{}
}

type podAcceptor struct {
	podUID types.UID
	acc    *acceptor.Acceptor
	srv    *grpc.Server
	served chan struct{}
	addr   string
	ip     string
}

// podIP is the loopback address of the pod with the given ordinal.
func podIP(ord int32) string { return fmt.Sprintf("127.0.1.%d", ord+1) }

// freePort picks a port that is free on the pods' loopback addresses.
func freePort(t *testing.T) int32 {
	t.Helper()
	for range 20 {
		lis, err := net.Listen("tcp", podIP(0)+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := lis.Addr().(*net.TCPAddr).Port
		_ = lis.Close()
		ok := true
		for ord := range int32(8) {
			l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", podIP(ord), port))
			if err != nil {
				ok = false
				break
			}
			_ = l.Close()
		}
		if ok {
			return int32(port)
		}
	}
	t.Fatal("no port is free on every pod address")
	return 0
}

func startKubelet(t *testing.T, c client.Client, ns, name string, port int32) *kubelet {
	k := &kubelet{t: t, c: c, ns: ns, name: name, port: port, base: t.TempDir(), stop: make(chan struct{}), done: make(chan struct{})}
	k.mu.dirs = map[types.UID]string{}
	k.mu.running = map[string]*podAcceptor{}
	k.mu.paused = map[string]bool{}
	go k.loop()
	t.Cleanup(k.shutdown)
	return k
}

func (k *kubelet) loop() {
	defer close(k.done)
	tick := time.NewTicker(30 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := k.sync(ctx)
		cancel()
		k.mu.Lock()
		k.mu.lastErr = err
		k.mu.Unlock()
	}
}

func (k *kubelet) shutdown() {
	close(k.stop)
	<-k.done
	k.mu.Lock()
	defer k.mu.Unlock()
	for name, pa := range k.mu.running {
		k.stopAcceptor(pa)
		delete(k.mu.running, name)
	}
}

func (k *kubelet) sync(ctx context.Context) error {
	var sts appsv1.StatefulSet
	if err := k.c.Get(ctx, types.NamespacedName{Namespace: k.ns, Name: k.name}, &sts); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !sts.DeletionTimestamp.IsZero() {
		return k.orphan(ctx, &sts)
	}
	n := ptr.Deref(sts.Spec.Replicas, 1)
	var sec corev1.Secret
	switch err := k.c.Get(ctx, types.NamespacedName{Namespace: k.ns, Name: k.name + "-acceptor-tls"}, &sec); {
	case err == nil:
		k.tls.Store(&sec)
	case !apierrors.IsNotFound(err):
		return err
	}
	var pods corev1.PodList
	if err := k.c.List(ctx, &pods, client.InNamespace(k.ns), client.MatchingLabels(sts.Spec.Selector.MatchLabels)); err != nil {
		return err
	}
	have := map[string]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if metav1.GetControllerOf(p) == nil && p.DeletionTimestamp.IsZero() {
			// Adopt an orphan, as the StatefulSet controller does.
			p.OwnerReferences = append(p.OwnerReferences, *metav1.NewControllerRef(&sts, appsv1.SchemeGroupVersion.WithKind("StatefulSet")))
			if err := k.c.Update(ctx, p); err != nil {
				return client.IgnoreNotFound(err)
			}
		}
		have[p.Name] = p
	}
	if err := k.bindClaims(ctx); err != nil {
		return err
	}
	// Pods that went away (deleted by the operator or above the size).
	k.mu.Lock()
	for name, pa := range k.mu.running {
		if p, ok := have[name]; !ok || p.UID != pa.podUID || !p.DeletionTimestamp.IsZero() || k.mu.paused[name] {
			k.stopAcceptor(pa)
			delete(k.mu.running, name)
		}
	}
	k.mu.Unlock()
	if err := k.releaseClaims(ctx); err != nil {
		return err
	}
	for name, p := range have {
		ord, ok := ordinalOf(k.name, name)
		if ok && ord >= n && p.DeletionTimestamp.IsZero() {
			if err := k.c.Delete(ctx, p); client.IgnoreNotFound(err) != nil {
				return err
			}
			delete(have, name)
		}
	}
	for ord := range n {
		name := fmt.Sprintf("%s-%d", k.name, ord)
		p, ok := have[name]
		if !ok {
			var err error
			if p, err = k.createPod(ctx, &sts, ord); err != nil {
				return err
			}
		}
		if !p.DeletionTimestamp.IsZero() {
			continue
		}
		if err := k.runPod(ctx, &sts, p, ord); err != nil {
			return err
		}
	}
	return nil
}

// releaseClaims plays the PVC protection controller: a claim being deleted
// loses its finalizers once no running pod uses it.
func (k *kubelet) releaseClaims(ctx context.Context) error {
	var pvcs corev1.PersistentVolumeClaimList
	if err := k.c.List(ctx, &pvcs, client.InNamespace(k.ns)); err != nil {
		return err
	}
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		if pvc.DeletionTimestamp.IsZero() || len(pvc.Finalizers) == 0 {
			continue
		}
		_, pod, _ := strings.Cut(pvc.Name, "-") // data-<pod>, wal-<pod>
		k.mu.Lock()
		_, inUse := k.mu.running[pod]
		k.mu.Unlock()
		if inUse {
			continue
		}
		pvc.Finalizers = nil
		if err := k.c.Update(ctx, pvc); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return err
		}
	}
	return nil
}

// bindClaims plays the volume binder and the resizer: every claim is bound
// with the capacity it requests.
func (k *kubelet) bindClaims(ctx context.Context) error {
	var pvcs corev1.PersistentVolumeClaimList
	if err := k.c.List(ctx, &pvcs, client.InNamespace(k.ns)); err != nil {
		return err
	}
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		req := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		capacity, ok := pvc.Status.Capacity[corev1.ResourceStorage]
		if !pvc.DeletionTimestamp.IsZero() || (pvc.Status.Phase == corev1.ClaimBound && ok && capacity.Cmp(req) >= 0) {
			continue
		}
		pvc.Status.Phase = corev1.ClaimBound
		pvc.Status.AccessModes = pvc.Spec.AccessModes
		pvc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: req}
		if err := k.c.Status().Update(ctx, pvc); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return err
		}
	}
	return nil
}

// orphan plays the garbage collector for a StatefulSet deleted with
// propagation Orphan: its pods lose their owner reference, then it loses
// the orphan finalizer and is gone.
func (k *kubelet) orphan(ctx context.Context, sts *appsv1.StatefulSet) error {
	if !slices.Contains(sts.Finalizers, metav1.FinalizerOrphanDependents) {
		return nil
	}
	var pods corev1.PodList
	if err := k.c.List(ctx, &pods, client.InNamespace(k.ns), client.MatchingLabels(sts.Spec.Selector.MatchLabels)); err != nil {
		return err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if !metav1.IsControlledBy(p, sts) {
			continue
		}
		p.OwnerReferences = slices.DeleteFunc(p.OwnerReferences, func(r metav1.OwnerReference) bool { return r.UID == sts.UID })
		if err := k.c.Update(ctx, p); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	sts.Finalizers = slices.DeleteFunc(sts.Finalizers, func(f string) bool { return f == metav1.FinalizerOrphanDependents })
	return client.IgnoreNotFound(k.c.Update(ctx, sts))
}

func (k *kubelet) createPod(ctx context.Context, sts *appsv1.StatefulSet, ord int32) (*corev1.Pod, error) {
	name := fmt.Sprintf("%s-%d", k.name, ord)
	for _, tmpl := range sts.Spec.VolumeClaimTemplates {
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: tmpl.Name + "-" + name, Namespace: k.ns, Labels: tmpl.Labels},
			Spec:       tmpl.Spec,
		}
		if err := k.c.Create(ctx, pvc); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: k.ns, Labels: sts.Spec.Template.Labels, Annotations: sts.Spec.Template.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(sts, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))},
		},
		Spec: *sts.Spec.Template.Spec.DeepCopy(),
	}
	pod.Spec.Hostname, pod.Spec.Subdomain = name, sts.Spec.ServiceName
	for _, tmpl := range sts.Spec.VolumeClaimTemplates {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name:         tmpl.Name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: tmpl.Name + "-" + name}},
		})
	}
	if err := k.c.Create(ctx, pod); err != nil {
		return nil, err
	}
	return pod, nil
}

// runPod starts the pod's acceptor on its volume and keeps its status (IP,
// readiness) current.
func (k *kubelet) runPod(ctx context.Context, sts *appsv1.StatefulSet, p *corev1.Pod, ord int32) error {
	k.mu.Lock()
	pa, ok := k.mu.running[p.Name]
	paused := k.mu.paused[p.Name]
	k.mu.Unlock()
	if paused {
		if podReady(p) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.Now()}}
			if err := k.c.Status().Update(ctx, p); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
				return err
			}
		}
		return nil
	}
	if !ok {
		var pvc corev1.PersistentVolumeClaim
		if err := k.c.Get(ctx, types.NamespacedName{Namespace: k.ns, Name: sts.Spec.VolumeClaimTemplates[0].Name + "-" + p.Name}, &pvc); err != nil {
			return client.IgnoreNotFound(err) // created next time
		}
		if !pvc.DeletionTimestamp.IsZero() {
			return nil
		}
		var err error
		if pa, err = k.startAcceptor(p, &pvc, ord); err != nil || pa == nil {
			return err
		}
	}
	st := pa.acc.Status()
	ready := st.Admitted && st.Healthy
	want := corev1.PodStatus{
		Phase:  corev1.PodRunning,
		PodIP:  pa.ip,
		PodIPs: []corev1.PodIP{{IP: pa.ip}},
		Conditions: []corev1.PodCondition{{
			Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.Now(),
		}},
	}
	if ready {
		want.Conditions[0].Status = corev1.ConditionTrue
	}
	if p.Status.PodIP == want.PodIP && podReady(p) == ready {
		return nil
	}
	p.Status = want
	if err := k.c.Status().Update(ctx, p); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
		return err
	}
	return nil
}

// startAcceptor starts the pod's acceptor on its claim's directory; nil
// when the pod was paused meanwhile (stopPod may be copying the directory).
func (k *kubelet) startAcceptor(p *corev1.Pod, pvc *corev1.PersistentVolumeClaim, ord int32) (*podAcceptor, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.paused[p.Name] {
		return nil, nil
	}
	dir, ok := k.mu.dirs[pvc.UID]
	if !ok {
		dir = filepath.Join(k.base, string(pvc.UID))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		k.mu.dirs[pvc.UID] = dir
	}
	var creds credentials.TransportCredentials
	if PodServesTLS(p) {
		// --tls-wait: the acceptor starts once its files exist.
		if _, err := k.pair(p.Name); err != nil {
			return nil, nil
		}
		creds = k.serverCredentials(p.Name)
	}
	acc, err := acceptor.Open(acceptor.Options{Dir: dir, CacheSize: 4 << 20, MemTableSize: 4 << 20, LockStripes: 64})
	if err != nil {
		return nil, fmt.Errorf("opening the acceptor of %s: %w", p.Name, err)
	}
	ip := podIP(ord)
	addr := fmt.Sprintf("%s:%d", ip, k.port)
	var lis net.Listener
	for range 50 { // the previous incarnation of this pod may still hold the port
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		_ = acc.Close()
		return nil, fmt.Errorf("listening for %s: %w", p.Name, err)
	}
	opts := acc.ServerOptions()
	if creds != nil {
		opts = append(opts, grpc.Creds(creds), grpc.ChainUnaryInterceptor(roleUnary), grpc.ChainStreamInterceptor(roleStream))
	}
	srv := grpc.NewServer(opts...)
	acc.Register(srv)
	pa := &podAcceptor{podUID: p.UID, acc: acc, srv: srv, served: make(chan struct{}), addr: addr, ip: ip}
	go func() {
		defer close(pa.served)
		_ = srv.Serve(lis)
	}()
	k.mu.running[p.Name] = pa
	return pa, nil
}

func (k *kubelet) stopAcceptor(pa *podAcceptor) {
	pa.srv.Stop()
	<-pa.served
	if err := pa.acc.Close(); err != nil {
		k.t.Errorf("closing an acceptor: %v", err)
	}
}

// pause stops the pod's acceptor, keeping its volume: the member is
// unreachable with its disk intact.
func (k *kubelet) pause(pod string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.mu.paused[pod] = true
}

// stopPod pauses the pod and stops its acceptor before it returns, so its
// volume's directory can be copied or replaced.
func (k *kubelet) stopPod(pod string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.mu.paused[pod] = true
	if pa, ok := k.mu.running[pod]; ok {
		k.stopAcceptor(pa)
		delete(k.mu.running, pod)
	}
}

// volumeDir returns the directory that backs the pod's volume claim.
func (k *kubelet) volumeDir(pod string) string {
	k.t.Helper()
	var pvc corev1.PersistentVolumeClaim
	if err := k.c.Get(context.Background(), types.NamespacedName{Namespace: k.ns, Name: "data-" + pod}, &pvc); err != nil {
		k.t.Fatalf("reading the volume claim of %s: %v", pod, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	dir, ok := k.mu.dirs[pvc.UID]
	if !ok {
		k.t.Fatalf("volume claim %s has no directory", pvc.Name)
	}
	return dir
}

// snapshot copies the pod's volume while its acceptor is stopped, as a
// volume snapshot would, and starts it again. It returns the copy.
func (k *kubelet) snapshot(pod string) string {
	k.t.Helper()
	src := k.volumeDir(pod)
	k.stopPod(pod)
	defer k.resume(pod)
	dst := k.t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		k.t.Fatalf("copying the volume of %s: %v", pod, err)
	}
	return dst
}

// restore stops the pod's acceptor, replaces its volume's contents with the
// snapshot, in place (the claim and the pod stay), and starts it again: the
// volume is rolled back (docs/design.md §4 "Rolled-back disks").
func (k *kubelet) restore(pod, snap string) {
	k.t.Helper()
	dir := k.volumeDir(pod)
	k.stopPod(pod)
	defer k.resume(pod)
	if err := os.RemoveAll(dir); err != nil {
		k.t.Fatalf("clearing the volume of %s: %v", pod, err)
	}
	if err := os.CopyFS(dir, os.DirFS(snap)); err != nil {
		k.t.Fatalf("restoring the volume of %s: %v", pod, err)
	}
}

// resume starts the paused pod's acceptor again on the same volume.
func (k *kubelet) resume(pod string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.mu.paused, pod)
}

// addr returns the address of the running pod's acceptor ("" when none).
func (k *kubelet) addr(pod string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if pa, ok := k.mu.running[pod]; ok {
		return pa.addr
	}
	return ""
}

// incarnation returns the running pod's incarnation (0 when none).
func (k *kubelet) incarnation(pod string) uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	if pa, ok := k.mu.running[pod]; ok {
		return pa.acc.Incarnation()
	}
	return 0
}

func (k *kubelet) err() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.mu.lastErr
}

func ordinalOf(sts, pod string) (int32, bool) {
	c := &kshakav1alpha1.KshakaCluster{}
	c.Name = sts
	return Ordinal(c, pod)
}

// pair is the server TLS configuration of the pod: its pair and the
// bundle from the last read of <cluster>-acceptor-tls.
func (k *kubelet) pair(pod string) (*tls.Config, error) {
	sec := k.tls.Load()
	if sec == nil {
		return nil, fmt.Errorf("Secret %s-acceptor-tls does not exist yet", k.name)
	}
	pair, err := tls.X509KeyPair(sec.Data[PodCertKey(pod)], sec.Data[PodKeyKey(pod)])
	if err != nil {
		return nil, fmt.Errorf("the pair of %s: %w", pod, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(sec.Data[KeyCACert]) {
		return nil, errors.New("the bundle is empty")
	}
	// As the acceptor does (docs/design.md §9.1): ask for a client
	// certificate, verify one given, and let the interceptor refuse calls
	// without one.
	return &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: roots, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}, nil
}

// serverCredentials serve the pod's pair as the Secret holds it at each
// handshake: the acceptor reloads its files when they change.
func (k *kubelet) serverCredentials(pod string) credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return k.pair(pod) },
	})
}

// allowed plays the acceptor's role check (docs/design.md §9.1): no
// verified certificate, UNAUTHENTICATED; the Admin service needs
// kshaka:admin (but GetConfig, which proposers bootstrap from), the rest
// kshaka:client or admin.
func allowed(ctx context.Context, method string) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return status.Error(codes.Unauthenticated, "a verified client certificate is required")
	}
	role := pki.RoleOf(info.State.VerifiedChains[0][0])
	admin := strings.HasPrefix(method, "/"+kshakav1.Admin_ServiceDesc.ServiceName+"/") && method != kshakav1.Admin_GetConfig_FullMethodName
	if role == pki.RoleAdmin || (!admin && role == pki.RoleClient) {
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "role %s may not call %s", role, method)
}

func roleUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := allowed(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func roleStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := allowed(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}
