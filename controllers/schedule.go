package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// +kubebuilder:rbac:groups=kshaka.io,resources=kshakascheduledbackups,verbs=get;list;watch
// +kubebuilder:rbac:groups=kshaka.io,resources=kshakascheduledbackups/status,verbs=update
// +kubebuilder:rbac:groups=kshaka.io,resources=kshakascheduledbackups/finalizers,verbs=update

// LabelScheduledBackup, on a KshakaBackup, names the KshakaScheduledBackup
// that created it.
const LabelScheduledBackup = "kshaka.io/scheduled-backup"

// scheduleTimeFormat is the UTC time in the names of scheduled backups.
const scheduleTimeFormat = "20060102150405"

// Reasons of a KshakaScheduledBackup's Ready condition.
const (
	ReasonScheduled       = "Scheduled"
	ReasonSuspended       = "Suspended"
	ReasonInvalidSchedule = "InvalidSchedule"
	ReasonClusterNotFound = "ClusterNotFound"
)

// defaultHistoryLimit is successfulBackupsHistoryLimit's default.
const defaultHistoryLimit = 7

// ParseSchedule parses a KshakaScheduledBackup's schedule: five cron fields
// or a descriptor (@daily, @every 6h), in UTC.
func ParseSchedule(s string) (cron.Schedule, error) {
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return nil, fmt.Errorf("schedule %q: schedules are in UTC; remove the time zone", s)
	}
	sched, err := cron.ParseStandard(s)
	if err != nil {
		return nil, fmt.Errorf("schedule %q is not a cron schedule (five fields: minute hour day-of-month month day-of-week, or @hourly, @daily, @every 6h): %w", s, err)
	}
	return sched, nil
}

// ScheduledBackupName is the KshakaBackup a schedule creates for the run
// at t: <schedule>-<yyyymmddhhmmss>, UTC.
func ScheduledBackupName(s *kshakav1alpha1.KshakaScheduledBackup, t time.Time) string {
	return s.Name + "-" + t.UTC().Format(scheduleTimeFormat)
}

// ScheduledBackup builds the KshakaBackup of s's run at t.
func ScheduledBackup(s *kshakav1alpha1.KshakaScheduledBackup, t time.Time) *kshakav1alpha1.KshakaBackup {
	name := ScheduledBackupName(s, t)
	return &kshakav1alpha1.KshakaBackup{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: s.Namespace,
			Labels: map[string]string{
				LabelScheduledBackup: s.Name,
				LabelManagedBy:       managerName,
			},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(s, kshakav1alpha1.GroupVersion.WithKind("KshakaScheduledBackup"))},
		},
		Spec: kshakav1alpha1.KshakaBackupSpec{
			Cluster:   s.Spec.Cluster,
			ClaimName: s.Spec.ClaimName,
			Path:      s.Spec.Cluster.Name + "/" + name + BackupFileSuffix,
		},
	}
}

// SchedulePlan is what a schedule does now.
type SchedulePlan struct {
	// Create is the run's time when a backup is due now; nil: none.
	Create *time.Time
	// Next is the next run's time after the ones taken.
	Next time.Time
	// Delete are the backups beyond the history limit.
	Delete []string
	// Waiting says why a due run waits (a backup of the schedule still
	// runs), "" otherwise.
	Waiting string
}

// PlanSchedule decides a schedule's step at now from its backups (those it
// controls). A run is due at the first schedule time after the last run
// (or after the schedule's creation); runs missed meanwhile (the operator
// was down, the schedule suspended) collapse into one, taken at once. At
// most one backup of a schedule runs at a time: a due run waits for it.
// immediate takes a first run at creation.
func PlanSchedule(s *kshakav1alpha1.KshakaScheduledBackup, sched cron.Schedule, backups []kshakav1alpha1.KshakaBackup, now time.Time) SchedulePlan {
	now = now.UTC()
	var p SchedulePlan
	ref := s.CreationTimestamp.UTC()
	last := s.Status.LastScheduleTime
	if last != nil {
		ref = last.UTC()
	}
	var due *time.Time
	if last == nil && s.Spec.Immediate {
		t := now.Truncate(time.Second)
		due = &t
	} else if next := sched.Next(ref); !next.After(now) {
		// The latest of the runs due by now.
		t := next
		for n := sched.Next(t); !n.After(now); n = sched.Next(n) {
			t = n
		}
		due = &t
	}
	p.Next = sched.Next(now)
	if due != nil && s.Spec.Suspend {
		due = nil
	}
	if due != nil {
		for _, b := range backups {
			if !finished(b.Status.Phase) {
				p.Waiting = fmt.Sprintf("the run due at %s waits for KshakaBackup %s to finish", due.Format(time.RFC3339), b.Name)
				due = nil
				break
			}
		}
	}
	if due != nil {
		p.Create = due
		if p.Next.Before(*due) || p.Next.Equal(*due) {
			p.Next = sched.Next(*due)
		}
	}
	p.Delete = pruneBackups(backups, historyLimit(s))
	return p
}

func historyLimit(s *kshakav1alpha1.KshakaScheduledBackup) int {
	if s.Spec.SuccessfulBackupsHistoryLimit == nil || *s.Spec.SuccessfulBackupsHistoryLimit < 1 {
		return defaultHistoryLimit
	}
	return int(*s.Spec.SuccessfulBackupsHistoryLimit)
}

// pruneBackups returns the backups to delete: completed ones beyond the
// newest limit, and failed ones older than the newest completed one.
func pruneBackups(backups []kshakav1alpha1.KshakaBackup, limit int) []string {
	sorted := slices.Clone(backups)
	// Names end in the run's time: newest first.
	slices.SortFunc(sorted, func(a, b kshakav1alpha1.KshakaBackup) int { return strings.Compare(b.Name, a.Name) })
	var out []string
	completed := 0
	for _, b := range sorted {
		switch b.Status.Phase {
		case kshakav1alpha1.BackupCompleted:
			completed++
			if completed > limit {
				out = append(out, b.Name)
			}
		case kshakav1alpha1.BackupFailed:
			if completed > 0 {
				out = append(out, b.Name)
			}
		}
	}
	return out
}

// lastSuccessful is the newest completed backup's name, "" when none.
func lastSuccessful(backups []kshakav1alpha1.KshakaBackup) string {
	best := ""
	for _, b := range backups {
		if b.Status.Phase == kshakav1alpha1.BackupCompleted && b.Name > best {
			best = b.Name
		}
	}
	return best
}

// ScheduledBackupReconciler reconciles KshakaScheduledBackups: it creates
// their KshakaBackups on time and deletes those beyond the history limit.
// Deleting a KshakaBackup leaves its file on the claim.
type ScheduledBackupReconciler struct {
	client.Client
	Scheme *runtime.Scheme
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// SetupWithManager registers the reconciler.
func (r *ScheduledBackupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&kshakav1alpha1.KshakaScheduledBackup{}).
		Owns(&kshakav1alpha1.KshakaBackup{}).
		Named("kshakascheduledbackup").
		Complete(r)
}

func (r *ScheduledBackupReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile implements reconcile.Reconciler.
func (r *ScheduledBackupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var s kshakav1alpha1.KshakaScheduledBackup
	if err := r.Get(ctx, req.NamespacedName, &s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !s.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	now := r.now()
	st := *s.Status.DeepCopy()
	sched, err := ParseSchedule(s.Spec.Schedule)
	if err != nil {
		// Nothing to retry: a new spec brings a new reconcile.
		st.NextScheduleTime = nil
		r.setReady(&s, &st, metav1.ConditionFalse, ReasonInvalidSchedule, err.Error()+"; fix spec.schedule", now)
		return ctrl.Result{}, r.record(ctx, &s, st)
	}
	var c kshakav1alpha1.KshakaCluster
	switch err := r.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: s.Spec.Cluster.Name}, &c); {
	case apierrors.IsNotFound(err):
		r.setReady(&s, &st, metav1.ConditionFalse, ReasonClusterNotFound,
			fmt.Sprintf("KshakaCluster %s does not exist; no backup is taken until it does", s.Spec.Cluster.Name), now)
		return ctrl.Result{RequeueAfter: 30 * time.Second}, r.record(ctx, &s, st)
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("while reading KshakaCluster %s: %w", s.Spec.Cluster.Name, err)
	}
	backups, err := r.owned(ctx, &s)
	if err != nil {
		return ctrl.Result{}, err
	}
	p := PlanSchedule(&s, sched, backups, now)
	st.NextScheduleTime = ptrTime(p.Next)
	st.LastSuccessfulBackupName = lastSuccessful(backups)
	var create *kshakav1alpha1.KshakaBackup
	if p.Create != nil {
		create = ScheduledBackup(&s, *p.Create)
		st.LastScheduleTime = ptrTime(*p.Create)
		st.LastBackupName = create.Name
	}
	switch {
	case s.Spec.Suspend:
		r.setReady(&s, &st, metav1.ConditionTrue, ReasonSuspended, "suspended: no new backups are created", now)
	case p.Waiting != "":
		r.setReady(&s, &st, metav1.ConditionTrue, ReasonScheduled, p.Waiting, now)
	default:
		r.setReady(&s, &st, metav1.ConditionTrue, ReasonScheduled, "next backup at "+p.Next.Format(time.RFC3339), now)
	}
	// Intent first: lastScheduleTime is recorded before the backup is
	// created; its name is deterministic, so a crash in between creates
	// it on the next pass (AlreadyExists is success).
	if err := r.record(ctx, &s, st); err != nil {
		return ctrl.Result{}, err
	}
	logger := log.FromContext(ctx)
	if create != nil {
		if err := r.Create(ctx, create); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, fmt.Errorf("while creating KshakaBackup %s: %w", create.Name, err)
		}
		logger.Info("scheduled backup created", "backup", create.Name)
	}
	for _, name := range p.Delete {
		b := &kshakav1alpha1.KshakaBackup{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: name}}
		if err := r.Delete(ctx, b); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("while deleting KshakaBackup %s beyond the history limit: %w", name, err)
		}
		logger.Info("backup beyond the history limit deleted; its file stays", "backup", name)
	}
	wait := time.Until(p.Next)
	if r.Now != nil {
		wait = p.Next.Sub(now)
	}
	if p.Waiting != "" || create != nil {
		wait = min(wait, 10*time.Second)
	}
	return ctrl.Result{RequeueAfter: max(wait, time.Second)}, nil
}

// owned lists the KshakaBackups s controls (by owner UID).
func (r *ScheduledBackupReconciler) owned(ctx context.Context, s *kshakav1alpha1.KshakaScheduledBackup) ([]kshakav1alpha1.KshakaBackup, error) {
	var list kshakav1alpha1.KshakaBackupList
	if err := r.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingLabels{LabelScheduledBackup: s.Name}); err != nil {
		return nil, fmt.Errorf("while listing the schedule's backups: %w", err)
	}
	var out []kshakav1alpha1.KshakaBackup
	for _, b := range list.Items {
		if metav1.IsControlledBy(&b, s) && b.DeletionTimestamp.IsZero() {
			out = append(out, b)
		}
	}
	return out, nil
}

func (r *ScheduledBackupReconciler) setReady(s *kshakav1alpha1.KshakaScheduledBackup, st *kshakav1alpha1.KshakaScheduledBackupStatus, status metav1.ConditionStatus, reason, msg string, now time.Time) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: kshakav1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: s.Generation, LastTransitionTime: metav1.NewTime(now),
	})
}

func (r *ScheduledBackupReconciler) record(ctx context.Context, s *kshakav1alpha1.KshakaScheduledBackup, st kshakav1alpha1.KshakaScheduledBackupStatus) error {
	if apiequality.Semantic.DeepEqual(s.Status, st) {
		return nil
	}
	s.Status = st
	if err := r.Status().Update(ctx, s); err != nil {
		return fmt.Errorf("while recording the schedule's status: %w", err)
	}
	return nil
}
