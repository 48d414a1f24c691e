package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// AddressResolver returns the address a pod's acceptor is dialled at, by the
// operator and (once it is a member) by proposers; "" while it has none.
// The default is Address (spec.addressMode).
type AddressResolver func(c *kshakav1alpha1.KshakaCluster, pod *corev1.Pod) string

// EventRecorder is the part of the events.k8s.io recorder the reconciler
// uses (manager.GetEventRecorder).
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Reconciler reconciles KshakaCluster objects: observe → Decide → record
// status → apply objects → act (see the package documentation).
type Reconciler struct {
	client.Client
	Scheme *runtime.Scheme
	// Recorder receives an Event for every membership step; nil: none.
	Recorder EventRecorder
	// Acceptors talks to the acceptors. Required. When it is also a Dialer
	// (GRPCAcceptors is), each cluster's acceptors are reached through
	// Dial with that cluster's Transport: mutual TLS with the operator's
	// certificate of the cluster, refreshed on every reconcile.
	Acceptors Acceptors
	// Resolver forms acceptor addresses; nil: Address.
	Resolver AddressResolver
	// RescanBatch is the number of keys listed per acceptor and touched per
	// rescan step. Default 1000.
	RescanBatch int
	// IdleInterval, WaitInterval and NowInterval are how soon the cluster is
	// looked at again when it is stable, when it waits for something, and
	// after a step. Defaults 30s, 2s, 100ms.
	IdleInterval, WaitInterval, NowInterval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OperatorNamespace is the namespace the operator runs in, which the
	// NetworkPolicy admits to the gRPC port by default; "" means
	// OwnNamespace().
	OperatorNamespace string
	// TrustPropagation is how long each step of a CA rotation waits for
	// its change to reach the pods' mounted Secrets; default
	// DefaultTrustPropagation.
	TrustPropagation time.Duration
	// ClusterDomain is the cluster's DNS domain, named in the acceptors'
	// certificates; default DefaultClusterDomain.
	ClusterDomain string
	// Logs reads the restore Job's log for its progress; nil: the restore's
	// progress is not shown (its outcome still is, from the Job).
	Logs PodLogs
	// GCPassTimeout bounds one tombstone collection pass, which runs
	// inside one reconcile (gc.go); default 2m. A pass cut short keeps
	// what it collected and the next one goes on.
	GCPassTimeout time.Duration
	// GCNow is the clock a tombstone's age is measured on (its accepted
	// ballot's counter is the writer's wall clock); default Now. Tests set
	// it ahead to age tombstones without waiting.
	GCNow func() time.Time

	// certManager records whether the Certificate kind was served when the
	// controller was set up (and is therefore watched).
	certManager bool

	// resizeErrs are the clusters' last refused volume claim resizes,
	// observed by the next reconcile (Observed.ResizeError).
	resizeErrs sync.Map // types.NamespacedName → string
}

// +kubebuilder:rbac:groups=kshaka.io,resources=kshakaclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=kshaka.io,resources=kshakaclusters/status,verbs=update
// +kubebuilder:rbac:groups=kshaka.io,resources=kshakaclusters/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the reconciler. Pods and Secrets (the
// operator's and those cert-manager writes for a cluster) are watched
// through the cluster's labels. cert-manager's types are added to the
// manager's scheme; Certificates are watched when the API server serves
// them at setup (otherwise mode CertManager says that cert-manager is not
// installed).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := cmv1.AddToScheme(mgr.GetScheme()); err != nil {
		return fmt.Errorf("while adding cert-manager's types to the scheme: %w", err)
	}
	if r.OperatorNamespace == "" {
		r.OperatorNamespace = OwnNamespace()
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&kshakav1alpha1.KshakaCluster{}).
		Owns(&appsv1.StatefulSet{}).
		Owns(&corev1.Service{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&batchv1.Job{}).
		Watches(&corev1.Pod{}, enqueueByInstanceLabel()).
		Watches(&corev1.Secret{}, enqueueByInstanceLabel())
	gk := schema.GroupKind{Group: cmv1.SchemeGroupVersion.Group, Kind: cmv1.CertificateKind}
	if _, err := mgr.GetRESTMapper().RESTMapping(gk, cmv1.SchemeGroupVersion.Version); err == nil {
		r.certManager = true
		b = b.Owns(&cmv1.Certificate{})
	}
	return b.Named("kshakacluster").Complete(r)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) resolve(c *kshakav1alpha1.KshakaCluster, pod *corev1.Pod) string {
	if r.Resolver != nil {
		return r.Resolver(c, pod)
	}
	return Address(c, pod)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (r *Reconciler) after(p Pace) ctrl.Result {
	switch p {
	case PaceNow:
		return ctrl.Result{RequeueAfter: orDefault(r.NowInterval, 100*time.Millisecond)}
	case PaceWait:
		return ctrl.Result{RequeueAfter: orDefault(r.WaitInterval, 2*time.Second)}
	}
	return ctrl.Result{RequeueAfter: orDefault(r.IdleInterval, 30*time.Second)}
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	var c kshakav1alpha1.KshakaCluster
	if err := r.Get(ctx, req.NamespacedName, &c); err != nil {
		if apierrors.IsNotFound(err) {
			clusterMetrics.forget(req.NamespacedName)
			gcMetrics.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		// Owned objects go with it (owner references); volume claims stay.
		clusterMetrics.forget(req.NamespacedName)
		gcMetrics.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}

	tlsObs, err := r.readTLS(ctx, &c)
	if err != nil {
		return ctrl.Result{}, err
	}
	o, acc, err := r.observe(ctx, &c, tlsObs)
	if err != nil {
		return ctrl.Result{}, err
	}
	plan := Decide(o)
	tp := r.planTLS(&c, tlsObs, o, plan.StatefulSetReplicas)
	plan.Status.TLS = tp.Status
	r.setCondition(&c, &plan.Status, tp.Condition)
	np, npCond := r.networkPolicy(&c)
	r.setCondition(&c, &plan.Status, npCond)
	plan.Events = append(plan.Events, tp.Events...)
	ro, err := r.observeRestore(ctx, &c)
	if err != nil {
		return ctrl.Result{}, err
	}
	rp := PlanRestore(&c, &plan.Status, ro, r.now())
	if rp.Status != nil {
		plan.Status.Restore = rp.Status
		r.setCondition(&c, &plan.Status, rp.Condition)
	}
	if !rp.Done {
		// No client certificate exists before the restore has completed.
		tp.Writes = withoutClientSecrets(&c, tp.Writes)
	}
	gp := PlanGC(&c, plan, r.now())
	if gp.Do == GCAbandon {
		plan.Status.TombstoneGC = plan.Status.TombstoneGC.DeepCopy()
		plan.Status.TombstoneGC.Pass = nil
	}
	if gp.Do != GCRun {
		r.setCondition(&c, &plan.Status, gp.Condition)
	}
	// Ready last: it reads every other condition and status.restore.
	r.setCondition(&c, &plan.Status, ReadyCondition(&c, &plan.Status))
	if plan.SpecError != "" {
		if old := meta.FindStatusCondition(c.Status.Conditions, kshakav1alpha1.ConditionDegraded); old == nil || old.Reason != ReasonInvalidSpec {
			plan.Events = append(plan.Events, Event{Type: corev1.EventTypeWarning, Reason: EventInvalidSpec,
				Message: "The spec cannot be applied; the StatefulSet is left as it is: " + plan.SpecError})
		}
	}

	// Intent first: the status carries the step about to be taken. The
	// update is conditional on the resourceVersion observed, so a stale
	// read cannot act.
	if plan.Action.Kind != ActionNone || !apiequality.Semantic.DeepEqual(c.Status, plan.Status) {
		c.Status = plan.Status
		if err := r.Status().Update(ctx, &c); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{RequeueAfter: orDefault(r.NowInterval, 100*time.Millisecond)}, nil
			}
			return ctrl.Result{}, fmt.Errorf("while recording status: %w", err)
		}
	}
	clusterMetrics.record(&c, plan.Quorum)
	r.emit(&c, plan.Events)
	if c.Spec.Paused {
		return r.after(plan.Pace), nil
	}

	// The certificates first: a pod the StatefulSet is about to create
	// finds its pair.
	if err := r.applyTLS(ctx, &c, tp); err != nil {
		logger.Info("writing certificates failed; will retry", "error", err.Error())
		r.emit(&c, []Event{{Type: corev1.EventTypeWarning, Reason: EventTLSError, Message: err.Error()}})
		return ctrl.Result{RequeueAfter: orDefault(r.WaitInterval, 2*time.Second)}, nil
	}
	if err := r.applyNetworkPolicy(ctx, &c, np, npCond); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.applyObjects(ctx, &c, plan); err != nil {
		return ctrl.Result{}, err
	}
	// Volumes grow at any time; the StatefulSet is recreated for its new
	// claim templates only while nothing else is going on.
	recreate := plan.Status.Transition == nil && plan.Action.Kind == ActionNone && plan.SpecError == ""
	events, err := r.resize(ctx, &c, plan.Volumes, recreate)
	r.emit(&c, events)
	if err != nil {
		r.resizeErrs.Store(req.NamespacedName, err.Error())
		logger.Info("growing a volume claim failed; will retry", "error", err.Error())
		r.emit(&c, []Event{{Type: corev1.EventTypeWarning, Reason: EventVolumeExpansionFailed, Message: err.Error()}})
		return ctrl.Result{RequeueAfter: orDefault(r.WaitInterval, 2*time.Second)}, nil
	}
	r.resizeErrs.Delete(req.NamespacedName)
	if rp.Job != nil {
		if err := r.Create(ctx, rp.Job); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, fmt.Errorf("while creating Job %s: %w", rp.Job.Name, err)
		}
		logger.Info("restore step's Job created", "job", rp.Job.Name, "source", plan.Status.Restore.Source)
	}
	started := time.Now()
	err = r.act(ctx, &c, acc, plan.Action)
	if plan.Action.Kind != ActionNone {
		result := "ok"
		if err != nil {
			result = "error"
		}
		actionsTotal.WithLabelValues(string(plan.Action.Kind), result).Inc()
		actionSeconds.WithLabelValues(string(plan.Action.Kind)).Observe(time.Since(started).Seconds())
	}
	if err != nil {
		logger.Info("step failed; will retry", "action", plan.Action.Kind, "error", err.Error())
		r.emit(&c, []Event{{Type: corev1.EventTypeWarning, Reason: EventBlocked, Message: err.Error()}})
		return ctrl.Result{RequeueAfter: orDefault(r.WaitInterval, 2*time.Second)}, nil
	}
	if plan.Action.Kind != ActionNone {
		logger.V(1).Info("step taken", "action", plan.Action.Kind, "epoch", plan.Action.Config.Epoch)
	}
	// Tombstone collection runs only when nothing else did (PlanGC).
	if plan.Action.Kind == ActionNone && (gp.Do == GCRun || gp.Do == GCFinishFloor) {
		if err := r.tombstoneGC(ctx, &c, acc, gp); err != nil {
			logger.Info("tombstone collection pass failed; will retry", "error", err.Error())
			return ctrl.Result{RequeueAfter: orDefault(r.WaitInterval, 2*time.Second)}, nil
		}
		gp.Due = r.now().Add(GCSettingsOf(&c).Interval)
	}
	res := r.after(plan.Pace)
	if !gp.Due.IsZero() {
		if d := max(gp.Due.Sub(r.now()), 0) + time.Millisecond; d < res.RequeueAfter {
			res.RequeueAfter = d
		}
	}
	if d := tp.RequeueAfter; d > 0 && d < res.RequeueAfter {
		res.RequeueAfter = d
	}
	if d := orDefault(r.WaitInterval, 2*time.Second); !rp.Done && d < res.RequeueAfter {
		// The restore's progress is read from its Job's log.
		res.RequeueAfter = d
	}
	return res, nil
}

// setCondition sets cond in st, stamped with c's generation and the time.
func (r *Reconciler) setCondition(c *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus, cond metav1.Condition) {
	cond.ObservedGeneration = c.Generation
	cond.LastTransitionTime = metav1.NewTime(r.now())
	meta.SetStatusCondition(&st.Conditions, cond)
}

func (r *Reconciler) emit(c *kshakav1alpha1.KshakaCluster, events []Event) {
	for _, e := range events {
		stepsTotal.WithLabelValues(e.Reason).Inc()
		if r.Recorder != nil {
			r.Recorder.Eventf(c, nil, e.Type, e.Reason, "Reconcile", "%s", e.Message)
		}
	}
}

// observe gathers the live state once. It returns the Acceptors of c,
// which dial each pod as it was started: with mutual TLS (the operator's
// certificate from tlsObs) or, for a pod started without TLS, in
// plaintext.
func (r *Reconciler) observe(ctx context.Context, c *kshakav1alpha1.KshakaCluster, tlsObs tlsObserved) (Observed, Acceptors, error) {
	o := Observed{
		Cluster:   c,
		Pods:      map[int32]PodInfo{},
		PVCs:      map[int32]bool{},
		Claims:    map[string]ClaimInfo{},
		Acceptors: map[int32]AcceptorInfo{},
		Now:       r.now(),
	}
	if e, ok := r.resizeErrs.Load(types.NamespacedName{Namespace: c.Namespace, Name: c.Name}); ok {
		o.ResizeError = e.(string)
	}
	sts := &appsv1.StatefulSet{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: StatefulSetName(c)}, sts); {
	case apierrors.IsNotFound(err):
		sts = nil
	case err != nil:
		return o, nil, fmt.Errorf("while reading the StatefulSet: %w", err)
	case !metav1.IsControlledBy(sts, c):
		return o, nil, reconcile.TerminalError(fmt.Errorf("StatefulSet %s/%s exists and is not controlled by this KshakaCluster", c.Namespace, sts.Name))
	}
	o.StatefulSet = sts

	sel := client.MatchingLabels(SelectorLabels(c))
	uid := client.MatchingLabels{LabelClusterUID: string(c.UID)}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(c.Namespace), sel, uid); err != nil {
		return o, nil, fmt.Errorf("while listing pods: %w", err)
	}
	var addrs []string
	var ords []int32
	for i := range pods.Items {
		pod := &pods.Items[i]
		ord, ok := Ordinal(c, pod.Name)
		if !ok || !ownedPod(pod, sts) {
			continue
		}
		info := PodInfo{Name: pod.Name, Address: r.resolve(c, pod), Ready: podReady(pod), Terminating: !pod.DeletionTimestamp.IsZero(),
			Revision: pod.Labels[appsv1.ControllerRevisionHashLabelKey], IP: pod.Status.PodIP, TLS: PodServesTLS(pod),
			Orphan: metav1.GetControllerOf(pod) == nil}
		o.Pods[ord] = info
		if info.Address != "" && !info.Terminating {
			addrs = append(addrs, info.Address)
			ords = append(ords, ord)
		}
	}
	acc := r.acceptorsOf(c, tlsObs, o.Pods)
	infos := make([]AcceptorInfo, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() { infos[i] = acc.Status(ctx, addr) })
	}
	wg.Wait()
	for i, ord := range ords {
		o.Acceptors[ord] = infos[i]
	}

	var pvcs corev1.PersistentVolumeClaimList
	if err := r.List(ctx, &pvcs, client.InNamespace(c.Namespace), sel, uid); err != nil {
		return o, nil, fmt.Errorf("while listing volume claims: %w", err)
	}
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		if !pvc.DeletionTimestamp.IsZero() {
			continue
		}
		if info, ok := claimInfo(c, pvc); ok {
			o.PVCs[info.Ordinal] = true
			o.Claims[info.Name] = info
		}
	}
	return o, acc, nil
}

// ownedPod: pod (listed by the cluster's UID label) is controlled by sts,
// or by nothing — orphaned by a StatefulSet recreated for new claim
// templates (volumes.go), about to be adopted by the new one.
func ownedPod(pod *corev1.Pod, sts *appsv1.StatefulSet) bool {
	if metav1.GetControllerOf(pod) == nil {
		return true
	}
	return sts != nil && metav1.IsControlledBy(pod, sts)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// applyObjects creates or updates the owned objects.
func (r *Reconciler) applyObjects(ctx context.Context, c *kshakav1alpha1.KshakaCluster, plan Plan) error {
	if err := apply(ctx, r.Client, c, PeerService(c), &corev1.Service{}, copyService); err != nil {
		return err
	}
	if err := apply(ctx, r.Client, c, ClientService(c), &corev1.Service{}, copyService); err != nil {
		return err
	}
	if err := r.applyStatefulSet(ctx, c, plan); err != nil {
		return err
	}
	if pdb := PodDisruptionBudget(c); pdb != nil {
		return apply(ctx, r.Client, c, pdb, &policyv1.PodDisruptionBudget{}, copyPDB)
	}
	old := &policyv1.PodDisruptionBudget{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: PDBName(c)}, old); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("while reading the PodDisruptionBudget: %w", err)
	case metav1.IsControlledBy(old, c):
		return client.IgnoreNotFound(r.Delete(ctx, old, client.Preconditions{UID: &old.UID}))
	}
	return nil
}

// apply creates want, or updates the existing object when its spec hash or
// size differs. An object of the same name that c does not control is an
// error: it is never adopted or changed.
func apply[T client.Object](ctx context.Context, cl client.Client, c *kshakav1alpha1.KshakaCluster, want T, have T, copyInto func(want, have T) bool) error {
	kind := fmt.Sprintf("%T", want)
	err := cl.Get(ctx, client.ObjectKeyFromObject(want), have)
	if apierrors.IsNotFound(err) {
		if err := cl.Create(ctx, want); err != nil {
			return fmt.Errorf("while creating %s %s: %w", kind, want.GetName(), err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("while reading %s %s: %w", kind, want.GetName(), err)
	}
	if !metav1.IsControlledBy(have, c) {
		return reconcile.TerminalError(fmt.Errorf("%s %s/%s exists and is not controlled by this KshakaCluster", kind, c.Namespace, want.GetName()))
	}
	if !copyInto(want, have) {
		return nil
	}
	if err := cl.Update(ctx, have); err != nil {
		return fmt.Errorf("while updating %s %s: %w", kind, want.GetName(), err)
	}
	return nil
}

func sameHash(want, have metav1.Object) bool {
	return have.GetAnnotations()[AnnotationSpecHash] == want.GetAnnotations()[AnnotationSpecHash]
}

func copyMeta(want, have metav1.Object) {
	have.SetLabels(want.GetLabels())
	a := have.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationSpecHash] = want.GetAnnotations()[AnnotationSpecHash]
	have.SetAnnotations(a)
}

func copyService(want, have *corev1.Service) bool {
	if sameHash(want, have) {
		return false
	}
	copyMeta(want, have)
	// clusterIP and the node ports the API server picked are kept.
	ports := want.Spec.Ports
	for i := range ports {
		for _, hp := range have.Spec.Ports {
			if hp.Name == ports[i].Name && want.Spec.Type != corev1.ServiceTypeClusterIP {
				ports[i].NodePort = hp.NodePort
			}
		}
	}
	have.Spec.Type = want.Spec.Type
	have.Spec.Selector = want.Spec.Selector
	have.Spec.Ports = ports
	have.Spec.PublishNotReadyAddresses = want.Spec.PublishNotReadyAddresses
	return true
}

// applyStatefulSet creates or updates the StatefulSet. With an invalid spec
// (plan.SpecError) only its size follows the plan and none is created; one
// being deleted (recreated for new claim templates) is left to go.
func (r *Reconciler) applyStatefulSet(ctx context.Context, c *kshakav1alpha1.KshakaCluster, plan Plan) error {
	want := StatefulSet(c, plan.StatefulSetReplicas)
	have := &appsv1.StatefulSet{}
	err := r.Get(ctx, client.ObjectKeyFromObject(want), have)
	switch {
	case apierrors.IsNotFound(err) && plan.SpecError != "":
		return nil
	case apierrors.IsNotFound(err):
		if err := r.Create(ctx, want); err != nil {
			return fmt.Errorf("while creating StatefulSet %s: %w", want.Name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("while reading StatefulSet %s: %w", want.Name, err)
	case !metav1.IsControlledBy(have, c):
		return reconcile.TerminalError(fmt.Errorf("StatefulSet %s/%s exists and is not controlled by this KshakaCluster", c.Namespace, want.Name))
	case !have.DeletionTimestamp.IsZero():
		return nil
	case plan.SpecError != "":
		if have.Spec.Replicas != nil && *have.Spec.Replicas == plan.StatefulSetReplicas {
			return nil
		}
		have.Spec.Replicas = ptr.To(plan.StatefulSetReplicas)
	case !copyStatefulSet(want, have):
		return nil
	}
	if err := r.Update(ctx, have); err != nil {
		return fmt.Errorf("while updating StatefulSet %s: %w", want.Name, err)
	}
	return nil
}

func copyStatefulSet(want, have *appsv1.StatefulSet) bool {
	same := sameHash(want, have) && have.Spec.Replicas != nil && *have.Spec.Replicas == *want.Spec.Replicas
	if same {
		return false
	}
	copyMeta(want, have)
	// The selector, service name and claim templates are immutable (storage
	// is immutable in the CRD too); everything else follows the spec.
	have.Spec.Replicas = want.Spec.Replicas
	have.Spec.Template = want.Spec.Template
	have.Spec.UpdateStrategy = want.Spec.UpdateStrategy
	have.Spec.PersistentVolumeClaimRetentionPolicy = want.Spec.PersistentVolumeClaimRetentionPolicy
	return true
}

func copyPDB(want, have *policyv1.PodDisruptionBudget) bool {
	if sameHash(want, have) {
		return false
	}
	copyMeta(want, have)
	have.Spec = want.Spec
	return true
}

// act carries out the plan's one action.
func (r *Reconciler) act(ctx context.Context, c *kshakav1alpha1.KshakaCluster, acc Acceptors, a Action) error {
	switch a.Kind {
	case ActionInstall:
		return Install(ctx, acc, a)
	case ActionRescan:
		batch := r.RescanBatch
		if batch <= 0 {
			batch = 1000
		}
		res, err := RescanBatch(ctx, acc, a, batch)
		if err != nil {
			return err
		}
		rescannedKeysTotal.Add(float64(res.Keys))
		events, err := AfterRescan(c, &c.Status, res)
		if err != nil {
			return err
		}
		if err := r.Status().Update(ctx, c); err != nil {
			// The batch is rescanned again next time; an identity change is
			// harmless to repeat.
			return fmt.Errorf("while recording rescan progress: %w", err)
		}
		clusterMetrics.recordTransition(c)
		r.emit(c, events)
		return nil
	case ActionRecycle:
		if err := r.deleteClaims(ctx, c, a.Ordinal); err != nil {
			return err
		}
		return r.deletePod(ctx, c, a.PodName)
	case ActionDeletePVC:
		return r.deleteClaims(ctx, c, a.Ordinal)
	case ActionRollPod:
		return r.deletePod(ctx, c, a.PodName)
	}
	return nil
}

// deleteClaims deletes every volume claim of the member with the given
// ordinal: the data volume's and the write-ahead log's are one storage,
// and a log left behind could be replayed into the next, empty, data volume.
func (r *Reconciler) deleteClaims(ctx context.Context, c *kshakav1alpha1.KshakaCluster, ord int32) error {
	for _, name := range claimNames(c, ord) {
		if err := r.deletePVC(ctx, c, name); err != nil {
			return err
		}
	}
	return nil
}

// deletePVC deletes a volume claim of c's, identified by name, labels and
// UID (a precondition: a claim recreated meanwhile is not deleted).
func (r *Reconciler) deletePVC(ctx context.Context, c *kshakav1alpha1.KshakaCluster, name string) error {
	var pvc corev1.PersistentVolumeClaim
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, &pvc); err != nil {
		return client.IgnoreNotFound(err)
	}
	if pvc.Labels[LabelClusterUID] != string(c.UID) {
		return fmt.Errorf("volume claim %s does not belong to this cluster (label %s=%q)", name, LabelClusterUID, pvc.Labels[LabelClusterUID])
	}
	return client.IgnoreNotFound(r.Delete(ctx, &pvc, client.Preconditions{UID: &pvc.UID}))
}

func (r *Reconciler) deletePod(ctx context.Context, c *kshakav1alpha1.KshakaCluster, name string) error {
	var pod corev1.Pod
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, &pod); err != nil {
		return client.IgnoreNotFound(err)
	}
	if pod.Labels[LabelClusterUID] != string(c.UID) {
		return fmt.Errorf("pod %s does not belong to this cluster", name)
	}
	return client.IgnoreNotFound(r.Delete(ctx, &pod, client.Preconditions{UID: &pod.UID}))
}

// enqueueByInstanceLabel maps an acceptor pod to its KshakaCluster (pods are
// owned by the StatefulSet, not by the cluster).
func enqueueByInstanceLabel() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		l := o.GetLabels()
		if l[LabelName] != appName || l[LabelComponent] != componentName || l[LabelInstance] == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: l[LabelInstance]}}}
	})
}
