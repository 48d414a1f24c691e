package controllers

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// +kubebuilder:rbac:groups=kshaka.io,resources=kshakabackups,verbs=get;list;watch

// Reasons of the Restored condition.
const (
	ReasonRestored         = "Restored"
	ReasonRestoring        = "Restoring"
	ReasonWaitingForBackup = "WaitingForBackup"
	ReasonRestoreFailed    = "RestoreFailed"
)

// RestoreObserved is what the operator saw for spec.bootstrap.fromBackup.
type RestoreObserved struct {
	// Backup is the KshakaBackup named by fromBackup.backupName; nil when
	// it is absent or none is named.
	Backup *kshakav1alpha1.KshakaBackup
	// Job is the restore Job and its progress.
	Job JobObservation
	// Verify is the Job that checks the file's checksum first.
	Verify JobObservation
}

// RestorePlan is the restore's status, its condition, and the Job to
// create (nil: none): the verification Job or the restore Job.
type RestorePlan struct {
	Status    *kshakav1alpha1.RestoreStatus
	Condition metav1.Condition
	Job       *batchv1.Job
	// Done: the restore completed (or none is asked for); until then the
	// clients' Secret is held back.
	Done bool
}

// Restoring reports whether c bootstraps from a backup that is not
// restored yet: c is then not Ready, and (in TLS mode Operator) its
// clients' Secrets are not issued, so no client writes before the restore
// has completed.
func Restoring(c *kshakav1alpha1.KshakaCluster) bool {
	return c.Spec.Bootstrap != nil && c.Spec.Bootstrap.FromBackup != nil &&
		(c.Status.Restore == nil || c.Status.Restore.Phase != kshakav1alpha1.BackupCompleted)
}

// restoreSource resolves fromBackup to a claim, a path and the checksum
// the file must have, or says why it cannot be restored (yet): failed
// means never (retrying cannot help).
func restoreSource(src *kshakav1alpha1.BackupSource, b *kshakav1alpha1.KshakaBackup) (claim, file, sha, why string, failed bool) {
	if src.BackupName == "" {
		return src.ClaimName, src.Path, src.SHA256, "", false
	}
	if b == nil {
		return "", "", "", fmt.Sprintf("waiting for KshakaBackup %s to exist", src.BackupName), false
	}
	switch b.Status.Phase {
	case kshakav1alpha1.BackupCompleted:
	case kshakav1alpha1.BackupFailed:
		return "", "", "", fmt.Sprintf("KshakaBackup %s failed (%s); restore from another backup: delete this KshakaCluster and create it again with another spec.bootstrap.fromBackup", b.Name, b.Status.Message), true
	default:
		phase := b.Status.Phase
		if phase == "" {
			phase = kshakav1alpha1.BackupPending
		}
		return "", "", "", fmt.Sprintf("waiting for KshakaBackup %s to complete (it is %s)", b.Name, phase), false
	}
	if b.Status.SHA256 == "" {
		return "", "", "", fmt.Sprintf("KshakaBackup %s is Completed but records no sha256; it cannot be checked, so it is not restored", b.Name), true
	}
	if src.SHA256 != "" && src.SHA256 != b.Status.SHA256 {
		return "", "", "", fmt.Sprintf("fromBackup.sha256 %s does not match KshakaBackup %s's sha256 %s; nothing was restored: fix spec.bootstrap.fromBackup (delete this KshakaCluster and create it again)", src.SHA256, b.Name, b.Status.SHA256), true
	}
	file = b.Status.Path
	if file == "" {
		file = BackupPath(b)
	}
	return b.Spec.ClaimName, file, b.Status.SHA256, "", false
}

// PlanRestore decides spec.bootstrap.fromBackup for c, whose status st is
// about to be recorded (its conditions say whether the cluster is
// Available). It returns the zero plan, Done, when no restore is asked
// for.
//
// When the file's SHA-256 is known (the KshakaBackup's status.sha256, or
// fromBackup.sha256) a first Job (<cluster>-restore-verify, `kshaka
// restore --verify-only`) reads the whole file, and a file with another
// checksum is refused before anything is written. Then, once the cluster
// is Available, one Job (<cluster>-restore) runs `kshaka restore`, which
// verifies the whole file again before it writes a key. Completed is
// final. A failed restore leaves Restored False; deleting the Job retries
// it (a rerun skips the keys already restored), everything else is decided
// again from the source.
func PlanRestore(c *kshakav1alpha1.KshakaCluster, st *kshakav1alpha1.KshakaClusterStatus, o RestoreObserved, now time.Time) RestorePlan {
	if c.Spec.Bootstrap == nil || c.Spec.Bootstrap.FromBackup == nil {
		return RestorePlan{Done: true}
	}
	src := c.Spec.Bootstrap.FromBackup
	rs := &kshakav1alpha1.RestoreStatus{JobName: RestoreJobName(c)}
	if c.Status.Restore != nil {
		rs = c.Status.Restore.DeepCopy()
		rs.JobName = RestoreJobName(c)
	}
	p := RestorePlan{Status: rs}
	cond := func(status metav1.ConditionStatus, reason string) {
		p.Condition = metav1.Condition{Type: kshakav1alpha1.ConditionRestored, Status: status, Reason: reason, Message: rs.Message}
	}
	if rs.Phase == kshakav1alpha1.BackupCompleted {
		p.Done = true
		cond(metav1.ConditionTrue, ReasonRestored)
		return p
	}
	if j := o.Job.Job; j != nil {
		if !metav1.IsControlledBy(j, c) {
			rs.Phase = kshakav1alpha1.BackupFailed
			rs.Message = fmt.Sprintf("Job %s exists and is not controlled by this KshakaCluster; delete it", j.Name)
			cond(metav1.ConditionFalse, ReasonRestoreFailed)
			return p
		}
		out := JobPhase(o.Job, "restore", false)
		rs.Phase, rs.Progress, rs.Message = out.Phase, out.Progress, out.Message
		if rs.StartedAt == nil && j.Status.StartTime != nil {
			rs.StartedAt = j.Status.StartTime.DeepCopy()
		}
		if out.Finished && rs.CompletedAt == nil {
			rs.CompletedAt = ptrTime(now)
			if j.Status.CompletionTime != nil {
				rs.CompletedAt = j.Status.CompletionTime.DeepCopy()
			}
		}
		switch rs.Phase {
		case kshakav1alpha1.BackupCompleted:
			p.Done = true
			cond(metav1.ConditionTrue, ReasonRestored)
		case kshakav1alpha1.BackupFailed:
			rs.Message += "; the cluster stays not Ready. Delete Job " + j.Name +
				" to retry (keys already restored are skipped), or delete this KshakaCluster and its volume claims and create it again from another backup"
			cond(metav1.ConditionFalse, ReasonRestoreFailed)
		default:
			cond(metav1.ConditionFalse, ReasonRestoring)
		}
		return p
	}

	if c.Status.Restore == nil && c.Status.Configuration != nil {
		// The first pass of a new cluster records status.restore with its
		// first configuration; a configuration without it means that
		// spec.bootstrap was added to a cluster that had been running.
		rs.Phase, rs.Message = kshakav1alpha1.BackupFailed,
			"spec.bootstrap.fromBackup was added after the cluster was created; it only applies at creation, so nothing is restored: remove it, or restore into a new KshakaCluster"
		rs.CompletedAt = ptrTime(now)
		cond(metav1.ConditionFalse, ReasonRestoreFailed)
		return p
	}
	// No Job: decide from the source.
	rs.Progress, rs.StartedAt, rs.CompletedAt = kshakav1alpha1.BackupProgress{}, nil, nil
	claim, file, want, why, failed := restoreSource(src, o.Backup)
	if claim != "" {
		rs.Source = claim + "/" + file
	}
	switch {
	case failed:
		rs.Phase, rs.Message = kshakav1alpha1.BackupFailed, why
		rs.CompletedAt = ptrTime(now)
		cond(metav1.ConditionFalse, ReasonRestoreFailed)
		return p
	case why != "":
		rs.Phase, rs.Message = kshakav1alpha1.BackupPending, why
		cond(metav1.ConditionFalse, ReasonWaitingForBackup)
		return p
	}
	if want != "" && !p.verified(c, o.Verify, claim, file, want, now) {
		return p
	}
	view := c.DeepCopy()
	view.Status = *st
	if why := notBackupReady(view); why != "" {
		rs.Phase, rs.Message = kshakav1alpha1.BackupPending, "waiting for the cluster before restoring "+rs.Source+": "+why
		cond(metav1.ConditionFalse, ReasonRestoring)
		return p
	}
	rs.Phase, rs.Message = kshakav1alpha1.BackupPending, fmt.Sprintf("creating Job %s to restore %s", rs.JobName, rs.Source)
	p.Job = RestoreJob(view, claim, file)
	cond(metav1.ConditionFalse, ReasonRestoring)
	return p
}

// verified reports whether the file's checksum was verified to be want;
// otherwise p says what happens meanwhile: the verification Job is
// created or runs, or the file is refused.
func (p *RestorePlan) verified(c *kshakav1alpha1.KshakaCluster, v JobObservation, claim, file, want string, now time.Time) bool {
	rs := p.Status
	fail := func(msg string) {
		rs.Phase, rs.Message, rs.CompletedAt = kshakav1alpha1.BackupFailed, msg, ptrTime(now)
		p.Condition = metav1.Condition{Type: kshakav1alpha1.ConditionRestored, Status: metav1.ConditionFalse, Reason: ReasonRestoreFailed, Message: msg}
	}
	wait := func(msg string) {
		rs.Phase, rs.Message = kshakav1alpha1.BackupPending, msg
		p.Condition = metav1.Condition{Type: kshakav1alpha1.ConditionRestored, Status: metav1.ConditionFalse, Reason: ReasonRestoring, Message: msg}
	}
	name := VerifyJobName(c)
	if v.Job == nil {
		wait(fmt.Sprintf("creating Job %s to verify %s (sha256 %s)", name, rs.Source, want))
		p.Job = VerifyJob(c, claim, file)
		return false
	}
	if !metav1.IsControlledBy(v.Job, c) {
		fail(fmt.Sprintf("Job %s exists and is not controlled by this KshakaCluster; delete it", name))
		return false
	}
	out := JobPhase(v, "verification", true)
	switch {
	case out.Phase == kshakav1alpha1.BackupFailed:
		fail(out.Message + "; nothing was restored: restore from another backup (delete this KshakaCluster and create it again), or delete Job " + name + " to verify the file again")
		return false
	case out.Phase != kshakav1alpha1.BackupCompleted:
		wait(fmt.Sprintf("verifying %s: %s", rs.Source, out.Message))
		return false
	case out.SHA256 != want:
		fail(fmt.Sprintf("the file %s has sha256 %s, not the expected %s: it is another backup, or was changed; nothing was restored", rs.Source, out.SHA256, want))
		return false
	}
	return true
}

// observeRestore reads what PlanRestore needs.
func (r *Reconciler) observeRestore(ctx context.Context, c *kshakav1alpha1.KshakaCluster) (RestoreObserved, error) {
	var o RestoreObserved
	if !Restoring(c) {
		return o, nil
	}
	if name := c.Spec.Bootstrap.FromBackup.BackupName; name != "" {
		b := &kshakav1alpha1.KshakaBackup{}
		switch err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, b); {
		case apierrors.IsNotFound(err):
		case err != nil:
			return o, fmt.Errorf("while reading KshakaBackup %s: %w", name, err)
		default:
			o.Backup = b
		}
	}
	job, err := observeJob(ctx, r.Client, r.Logs, c.Namespace, RestoreJobName(c))
	if err != nil {
		return o, err
	}
	o.Job = job
	if job.Job == nil {
		if o.Verify, err = observeJob(ctx, r.Client, r.Logs, c.Namespace, VerifyJobName(c)); err != nil {
			return o, err
		}
	}
	return o, nil
}

// withoutClientSecrets drops the clients' Secrets (mode Operator) from the
// Secrets to write: while a restore runs, no client holds a certificate.
func withoutClientSecrets(c *kshakav1alpha1.KshakaCluster, writes []*corev1.Secret) []*corev1.Secret {
	held := map[string]bool{ClientTLSSecretName(c): true}
	for _, n := range c.Spec.TLS.ExtraClients {
		held[ExtraClientSecretName(c, string(n))] = true
	}
	out := writes[:0:0]
	for _, s := range writes {
		if !held[s.Name] {
			out = append(out, s)
		}
	}
	return out
}
