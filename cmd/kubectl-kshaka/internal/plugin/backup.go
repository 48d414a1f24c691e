package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// defaultBackupName is <cluster>-<UTC time, yyyymmddhhmmss>, the shape
// KshakaScheduledBackup gives its backups.
func defaultBackupName(cluster string, now time.Time) string {
	return cluster + "-" + now.UTC().Format("20060102150405")
}

// defaultClaim is the claim of the cluster's newest backup, or else of its
// first scheduled backup; "" when there is none.
func (o *options) defaultClaim(ctx context.Context, cluster string) (string, error) {
	backups, err := o.backupsOf(ctx, cluster)
	if err != nil {
		return "", err
	}
	if len(backups) > 0 {
		return backups[0].Spec.ClaimName, nil
	}
	var list kshakav1alpha1.KshakaScheduledBackupList
	if err := o.cl.List(ctx, &list, client.InNamespace(o.namespace)); err != nil {
		if meta.IsNoMatchError(err) {
			return "", nil
		}
		return "", fmt.Errorf("while listing the KshakaScheduledBackups of namespace %s: %w", o.namespace, err)
	}
	for _, s := range list.Items {
		if s.Spec.Cluster.Name == cluster {
			return s.Spec.ClaimName, nil
		}
	}
	return "", nil
}

func newBackupCmd(o *options) *cobra.Command {
	var claim, name, path string
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "backup CLUSTER",
		Short: "Back a cluster up into a file on a PersistentVolumeClaim (a KshakaBackup)",
		Long: `backup creates a KshakaBackup of the cluster: the operator runs a Job that reads
every key's latest chosen value with its version through the protocol and
writes them, with a checksum, into a file on the claim. Each key is read
linearizably at its own moment: a backup is per key, not a snapshot across
keys.

--claim is the PersistentVolumeClaim (in the cluster's namespace) to write
into; without it, the claim of the cluster's newest backup or of its
KshakaScheduledBackup is used. --name defaults to CLUSTER-<UTC time>, --path
to <cluster>/<name>.kbk inside the claim.

With --wait it follows the backup until it is Completed (exit 0) or Failed
(exit 4), printing its progress; --timeout bounds the wait (exit 7; the
backup goes on). Without --wait it returns once the KshakaBackup is created.`,
		Example: `  kubectl kshaka backup example --claim backups --wait
  kubectl kshaka backup example --name before-upgrade
  kubectl get kshakabackups`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if timeout < 0 {
				return usageErrorf("--timeout %s: use a positive duration, or 0 to wait without a limit", timeout)
			}
			if name != "" {
				if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
					return usageErrorf("--name %q is not a valid object name: %s", name, strings.Join(errs, "; "))
				}
			}
			if strings.HasPrefix(path, "/") || strings.Contains(path, "..") {
				return usageErrorf("--path %q: use a path relative to the claim's root, without '..'", path)
			}
			c, err := o.getCluster(ctx, args[0])
			if err != nil {
				return err
			}
			if claim == "" {
				if claim, err = o.defaultClaim(ctx, c.Name); err != nil {
					return err
				}
				if claim == "" {
					return usageErrorf("--claim is required: cluster %s has no backup or scheduled backup whose claim could be reused; "+
						"name the PersistentVolumeClaim of namespace %s to write the backup into", c.Name, c.Namespace)
				}
			}
			if err := o.checkClaim(ctx, claim); err != nil {
				return err
			}
			if name == "" {
				name = defaultBackupName(c.Name, o.now())
			}
			b := &kshakav1alpha1.KshakaBackup{
				ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: name},
				Spec: kshakav1alpha1.KshakaBackupSpec{
					Cluster:   corev1.LocalObjectReference{Name: c.Name},
					ClaimName: claim,
					Path:      path,
				},
			}
			if err := o.cl.Create(ctx, b); err != nil {
				if apierrors.IsAlreadyExists(err) {
					return usageErrorf("KshakaBackup %s already exists in namespace %s: choose another --name", name, c.Namespace)
				}
				return fmt.Errorf("while creating KshakaBackup %s/%s: %w", c.Namespace, name, err)
			}
			where := path
			if where == "" {
				where = c.Name + "/" + name + ".kbk"
			}
			fmt.Fprintf(o.io.Out, "kshakabackup/%s created: cluster %s into claim %s, file %s\n", name, c.Name, claim, where)
			if !wait {
				_, err := fmt.Fprintf(o.io.Out, "Follow it with 'kubectl get kshakabackup %s -w'.\n", name)
				return err
			}
			return o.waitBackup(ctx, b, timeout)
		},
	}
	cmd.Flags().StringVar(&claim, "claim", "", "PersistentVolumeClaim to write the backup into (default: the claim of the cluster's newest backup)")
	cmd.Flags().StringVar(&name, "name", "", "name of the KshakaBackup (default CLUSTER-<yyyymmddhhmmss>, UTC)")
	cmd.Flags().StringVar(&path, "path", "", "path of the file inside the claim (default <cluster>/<name>.kbk)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the backup until it is Completed or Failed")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "with --wait, give up waiting after this long (0: no limit)")
	return cmd
}

// checkClaim makes sure the claim exists, so a typo is caught here and not
// by a Job that never starts. A user who may not read claims is let through.
func (o *options) checkClaim(ctx context.Context, claim string) error {
	var pvc corev1.PersistentVolumeClaim
	err := o.cl.Get(ctx, client.ObjectKey{Namespace: o.namespace, Name: claim}, &pvc)
	switch {
	case err == nil, apierrors.IsForbidden(err):
		return nil
	case apierrors.IsNotFound(err):
		return withAdvice(ExitUsage, fmt.Errorf("PersistentVolumeClaim %s not found in namespace %s", claim, o.namespace),
			"Create it first (ReadWriteOnce is enough; size it for the data), or name another with --claim.")
	}
	return fmt.Errorf("while reading PersistentVolumeClaim %s/%s: %w", o.namespace, claim, err)
}

// progressLine is one line of a backup's or restore's progress.
func progressLine(ph kshakav1alpha1.BackupPhase, p kshakav1alpha1.BackupProgress, msg string) string {
	line := phase(ph)
	if p.Keys > 0 || p.EstimatedKeys > 0 {
		line += fmt.Sprintf(": %d keys", p.Keys)
		if p.EstimatedKeys > 0 {
			line += fmt.Sprintf(" of about %d (%d%%)", p.EstimatedKeys, p.Percent)
		}
		if p.Bytes > 0 {
			line += ", " + humanBytes(p.Bytes)
		}
		if p.KeysPerSecond > 0 && ph == kshakav1alpha1.BackupRunning {
			line += fmt.Sprintf(", %d keys/s", p.KeysPerSecond)
		}
	}
	if msg != "" {
		line += " — " + msg
	}
	return line
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// errTimeout is returned when --timeout passes.
var errTimeout = errors.New("timed out")

// poll calls check every o.pollEvery until it returns done or an error,
// or the timeout (0: none) passes. check gets ctx itself, not one bounded
// by the timeout: a read cut short by the timeout would be an error of its
// own.
func (o *options) poll(ctx context.Context, timeout time.Duration, check func(context.Context) (bool, error)) error {
	var expired <-chan time.Time
	if timeout > 0 {
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		expired = tm.C
	}
	t := time.NewTicker(o.pollEvery)
	defer t.Stop()
	for {
		if done, err := check(ctx); err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-expired:
			return errTimeout
		case <-t.C:
		}
	}
}

// phase is p, with Pending for a backup the operator has not looked at.
func phase(p kshakav1alpha1.BackupPhase) string {
	if p == "" {
		return string(kshakav1alpha1.BackupPending)
	}
	return string(p)
}

// waitBackup follows b until it is Completed or Failed.
func (o *options) waitBackup(ctx context.Context, b *kshakav1alpha1.KshakaBackup, timeout time.Duration) error {
	last := ""
	err := o.poll(ctx, timeout, func(ctx context.Context) (bool, error) {
		if err := o.cl.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
			return false, fmt.Errorf("while reading KshakaBackup %s/%s: %w", b.Namespace, b.Name, err)
		}
		st := &b.Status
		if line := progressLine(st.Phase, st.Progress, st.Message); line != last && st.Phase != kshakav1alpha1.BackupCompleted {
			fmt.Fprintln(o.io.Out, line)
			last = line
		}
		return st.Phase == kshakav1alpha1.BackupCompleted || st.Phase == kshakav1alpha1.BackupFailed, nil
	})
	switch {
	case errors.Is(err, errTimeout):
		return withCode(ExitTimeout, fmt.Errorf("KshakaBackup %s is still %s after %s; it goes on ('kubectl get kshakabackup %s -w')",
			b.Name, phase(b.Status.Phase), timeout, b.Name))
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("stopped waiting: KshakaBackup %s goes on ('kubectl get kshakabackup %s -w')", b.Name, b.Name)
	case err != nil:
		return err
	}
	st := &b.Status
	if st.Phase == kshakav1alpha1.BackupFailed {
		return withAdvice(ExitFailed, fmt.Errorf("KshakaBackup %s failed: %s", b.Name, orDash(st.Message)),
			fmt.Sprintf("Its Job's logs say more: kubectl logs -n %s job/%s", b.Namespace, orDash(st.JobName)))
	}
	_, err = fmt.Fprintf(o.io.Out, "kshakabackup/%s Completed: %d keys, %s in claim %s, file %s, sha256 %s\n",
		b.Name, st.Progress.Keys, humanBytes(st.Progress.Bytes), b.Spec.ClaimName, orDash(st.Path), orDash(st.SHA256))
	return err
}
