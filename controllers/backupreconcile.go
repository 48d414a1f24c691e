package controllers

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// +kubebuilder:rbac:groups=kshaka.io,resources=kshakabackups,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=kshaka.io,resources=kshakabackups/status,verbs=update
// +kubebuilder:rbac:groups=kshaka.io,resources=kshakabackups/finalizers,verbs=update
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create
// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get

// PodLogs reads the end of a container's log (GET pods/log, tailLines).
type PodLogs interface {
	Tail(ctx context.Context, namespace, pod, container string, lines int64) ([]byte, error)
}

// ClientsetPodLogs reads logs through the API server.
type ClientsetPodLogs struct{ Clientset kubernetes.Interface }

// Tail implements PodLogs.
func (l ClientsetPodLogs) Tail(ctx context.Context, namespace, pod, container string, lines int64) ([]byte, error) {
	rc, err := l.Clientset.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container, TailLines: &lines}).Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 1<<20))
}

// logTailLines is how many lines of a Job's log are read for its last
// progress line (the summary and an error's advice follow it).
const logTailLines = 30

// observeJob reads the Job name of namespace ns (nil when absent) and the
// last progress line of its newest pod, selected by the Job's UID.
func observeJob(ctx context.Context, cl client.Client, logs PodLogs, ns, name string) (JobObservation, error) {
	var o JobObservation
	job := &batchv1.Job{}
	switch err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, job); {
	case apierrors.IsNotFound(err):
		return o, nil
	case err != nil:
		return o, fmt.Errorf("while reading Job %s: %w", name, err)
	}
	o.Job = job
	var pods corev1.PodList
	if err := cl.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{batchv1.ControllerUidLabel: string(job.UID)}); err != nil {
		return o, fmt.Errorf("while listing the pods of Job %s: %w", name, err)
	}
	if len(pods.Items) == 0 {
		return o, nil
	}
	pod := slices.MaxFunc(pods.Items, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	o.Waiting = podWaiting(&pod)
	if logs == nil || (pod.Status.Phase == corev1.PodPending && o.Waiting != "") {
		return o, nil
	}
	b, err := logs.Tail(ctx, ns, pod.Name, transferContainer, logTailLines)
	if err != nil {
		o.LogError = fmt.Sprintf("reading the log of pod %s: %v", pod.Name, err)
		return o, nil
	}
	if p, ok := ParseProgress(b); ok {
		o.Progress = &p
	}
	return o, nil
}

// podWaiting says why pod's container does not run yet.
func podWaiting(pod *corev1.Pod) string {
	for _, st := range pod.Status.ContainerStatuses {
		if w := st.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
			return fmt.Sprintf("pod %s: %s: %s", pod.Name, w.Reason, w.Message)
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return fmt.Sprintf("pod %s is not scheduled: %s", pod.Name, c.Message)
		}
	}
	return ""
}

// BackupReconciler reconciles KshakaBackups: one Job per backup, whose
// progress it copies into status.
type BackupReconciler struct {
	client.Client
	Scheme *runtime.Scheme
	// Logs reads the Jobs' logs; nil: progress is not read (and a backup
	// never completes, as its checksum is in the log).
	Logs PodLogs
	// PollInterval is how often a running backup's progress is read, and a
	// pending one looked at again. Default 3s.
	PollInterval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// SetupWithManager registers the reconciler.
func (r *BackupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&kshakav1alpha1.KshakaBackup{}).
		Owns(&batchv1.Job{}).
		Named("kshakabackup").
		Complete(r)
}

func (r *BackupReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *BackupReconciler) poll() ctrl.Result {
	return ctrl.Result{RequeueAfter: orDefault(r.PollInterval, 3*time.Second)}
}

// Reconcile implements reconcile.Reconciler.
func (r *BackupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var b kshakav1alpha1.KshakaBackup
	if err := r.Get(ctx, req.NamespacedName, &b); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !b.DeletionTimestamp.IsZero() || finished(b.Status.Phase) {
		return ctrl.Result{}, nil
	}
	st := *b.Status.DeepCopy()
	st.Path = BackupPath(&b)
	st.JobName = BackupJobName(&b)
	obs, err := observeJob(ctx, r.Client, r.Logs, b.Namespace, st.JobName)
	if err != nil {
		return ctrl.Result{}, err
	}
	var create *batchv1.Job
	if obs.Job == nil {
		create, err = r.planJob(ctx, &b, &st)
		if err != nil {
			return ctrl.Result{}, err
		}
	} else if !metav1.IsControlledBy(obs.Job, &b) {
		st.Phase = kshakav1alpha1.BackupFailed
		st.Message = fmt.Sprintf("Job %s exists and is not controlled by this KshakaBackup; delete it or name the backup differently", st.JobName)
		st.CompletedAt = ptrTime(r.now())
	} else {
		out := JobPhase(obs, "backup", true)
		st.Phase, st.Message, st.Progress = out.Phase, out.Message, out.Progress
		if out.SHA256 != "" {
			st.SHA256 = out.SHA256
		}
		if st.StartedAt == nil && obs.Job.Status.StartTime != nil {
			st.StartedAt = obs.Job.Status.StartTime.DeepCopy()
		}
		if out.Finished && st.CompletedAt == nil {
			st.CompletedAt = ptrTime(r.now())
			if obs.Job.Status.CompletionTime != nil {
				st.CompletedAt = obs.Job.Status.CompletionTime.DeepCopy()
			}
		}
	}
	setBackupCondition(&b, &st, r.now())
	// Intent first: the status names the Job before it is created.
	if !apiequality.Semantic.DeepEqual(b.Status, st) {
		b.Status = st
		if err := r.Status().Update(ctx, &b); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
			}
			return ctrl.Result{}, fmt.Errorf("while recording the backup's status: %w", err)
		}
	}
	if create != nil {
		if err := r.Create(ctx, create); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, fmt.Errorf("while creating Job %s: %w", create.Name, err)
		}
		log.FromContext(ctx).Info("backup Job created", "job", create.Name, "path", st.Path)
	}
	if finished(st.Phase) {
		return ctrl.Result{}, nil
	}
	return r.poll(), nil
}

// planJob returns the Job to create for b, or nil with st saying what it
// waits for: the cluster to exist, to be Available, and (with TLS) the
// operator's certificate.
func (r *BackupReconciler) planJob(ctx context.Context, b *kshakav1alpha1.KshakaBackup, st *kshakav1alpha1.KshakaBackupStatus) (*batchv1.Job, error) {
	st.Phase = kshakav1alpha1.BackupPending
	var c kshakav1alpha1.KshakaCluster
	switch err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.Cluster.Name}, &c); {
	case apierrors.IsNotFound(err):
		st.Message = fmt.Sprintf("waiting for KshakaCluster %s to exist", b.Spec.Cluster.Name)
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("while reading KshakaCluster %s: %w", b.Spec.Cluster.Name, err)
	}
	if why := notBackupReady(&c); why != "" {
		st.Message = fmt.Sprintf("waiting for KshakaCluster %s: %s", c.Name, why)
		return nil, nil
	}
	st.Message = fmt.Sprintf("creating Job %s", st.JobName)
	return BackupJob(b, &c), nil
}

// notBackupReady says why c cannot be backed up now, "" when it can: it
// must be Available, with a configuration, and (with TLS) the operator's
// certificate issued.
func notBackupReady(c *kshakav1alpha1.KshakaCluster) string {
	if !meta.IsStatusConditionTrue(c.Status.Conditions, kshakav1alpha1.ConditionAvailable) {
		return "it is not Available (a quorum of its acceptors must serve)"
	}
	if memberEndpoints(c) == "" {
		return "it has no configuration yet"
	}
	if TLSEnabled(c) && !meta.IsStatusConditionTrue(c.Status.Conditions, kshakav1alpha1.ConditionTLSReady) {
		return "its certificates are not issued yet (TLSReady)"
	}
	return ""
}

func finished(p kshakav1alpha1.BackupPhase) bool {
	return p == kshakav1alpha1.BackupCompleted || p == kshakav1alpha1.BackupFailed
}

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}

// Condition of KshakaBackups.
const ConditionBackupCompleted = "Completed"

func setBackupCondition(b *kshakav1alpha1.KshakaBackup, st *kshakav1alpha1.KshakaBackupStatus, now time.Time) {
	status := metav1.ConditionFalse
	if st.Phase == kshakav1alpha1.BackupCompleted {
		status = metav1.ConditionTrue
	}
	reason := string(st.Phase)
	if reason == "" {
		reason = string(kshakav1alpha1.BackupPending)
	}
	msg := st.Message
	if old := meta.FindStatusCondition(st.Conditions, ConditionBackupCompleted); old != nil && old.Status == status && old.Reason == reason {
		// Progress changes the message every poll; the condition follows
		// the phase.
		msg = old.Message
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: ConditionBackupCompleted, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: b.Generation, LastTransitionTime: metav1.NewTime(now),
	})
}
