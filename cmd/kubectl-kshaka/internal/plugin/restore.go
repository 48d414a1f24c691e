package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// restoreFlags are the spec flags of restore, applied over the spec copied
// from the source cluster when set.
type restoreFlags struct {
	to, from     string
	replicas     int32
	storageSize  string
	storageClass string
	wait         bool
	timeout      time.Duration
}

// restoreSpec builds the new cluster's spec: src's when there is one
// (without its bootstrap, not paused), else the CRD's defaults; then the
// flags the user set; then the bootstrap from backup.
func restoreSpec(src *kshakav1alpha1.KshakaCluster, backup string, f restoreFlags, changed func(string) bool) (kshakav1alpha1.KshakaClusterSpec, error) {
	var spec kshakav1alpha1.KshakaClusterSpec
	if src != nil {
		spec = *src.Spec.DeepCopy()
		spec.Paused = false
	}
	if changed("replicas") || src == nil {
		spec.Replicas = f.replicas
	}
	if changed("storage-size") {
		q, err := resource.ParseQuantity(f.storageSize)
		if err != nil || q.Sign() <= 0 {
			return spec, usageErrorf("--storage-size %q: use a positive quantity such as 1Gi", f.storageSize)
		}
		spec.Storage.Size = &q
	}
	if changed("storage-class") {
		spec.Storage.StorageClassName = ptr.To(f.storageClass)
	}
	spec.Bootstrap = &kshakav1alpha1.BootstrapSpec{FromBackup: &kshakav1alpha1.BackupSource{BackupName: backup}}
	return spec, nil
}

func newRestoreCmd(o *options) *cobra.Command {
	var f restoreFlags
	cmd := &cobra.Command{
		Use:   "restore BACKUP --to NEW_CLUSTER",
		Short: "Restore a backup into a new cluster (spec.bootstrap.fromBackup)",
		Long: `restore creates a new KshakaCluster, NEW_CLUSTER, bootstrapped from a Completed
KshakaBackup (spec.bootstrap.fromBackup.backupName): the operator restores
every key with its version before the cluster is Ready, and versions keep
counting from the backup's. A restore never writes into an existing cluster.

The new cluster's spec is copied from --from-cluster, by default the cluster
the backup was taken of, when it still exists; otherwise it is the defaults
with --replicas. --replicas, --storage-size and --storage-class override the
copied spec when given.

With --wait it follows the restore until the Restored condition is True
(exit 0) or the restore Failed (exit 4); --timeout bounds the wait (exit 7;
the restore goes on).`,
		Example: `  kubectl kshaka restore example-20261204013000 --to example-restored --wait
  kubectl kshaka restore nightly-1 --to example2 --replicas 5 --storage-size 10Gi
  kubectl kshaka restore old-backup --to example --from-cluster template`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if f.to == "" {
				return usageErrorf("--to is required: the name of the new KshakaCluster to restore into")
			}
			if errs := validation.IsDNS1123Label(f.to); len(errs) > 0 {
				return usageErrorf("--to %q is not a valid cluster name: %s", f.to, strings.Join(errs, "; "))
			}
			if f.replicas < 1 || f.replicas > 15 {
				return usageErrorf("--replicas %d: use 1 to 15", f.replicas)
			}
			if f.timeout < 0 {
				return usageErrorf("--timeout %s: use a positive duration, or 0 to wait without a limit", f.timeout)
			}
			if err := o.connect(); err != nil {
				return err
			}
			var b kshakav1alpha1.KshakaBackup
			if err := o.cl.Get(ctx, client.ObjectKey{Namespace: o.namespace, Name: args[0]}, &b); err != nil {
				if apierrors.IsNotFound(err) {
					return withAdvice(ExitNotFound, fmt.Errorf("KshakaBackup %s not found in namespace %s", args[0], o.namespace),
						"'kubectl get kshakabackups' lists the backups of the namespace.")
				}
				return fmt.Errorf("while reading KshakaBackup %s/%s: %w", o.namespace, args[0], err)
			}
			if b.Status.Phase != kshakav1alpha1.BackupCompleted {
				return withAdvice(ExitUsage, fmt.Errorf("KshakaBackup %s is %s, not Completed: only a complete backup can be restored", b.Name, phase(b.Status.Phase)),
					fmt.Sprintf("Wait for it ('kubectl get kshakabackup %s -w'), or take a new one with 'kubectl kshaka backup %s --wait'.", b.Name, b.Spec.Cluster.Name))
			}
			switch err := o.cl.Get(ctx, client.ObjectKey{Namespace: o.namespace, Name: f.to}, &kshakav1alpha1.KshakaCluster{}); {
			case err == nil:
				return usageErrorf("KshakaCluster %s already exists in namespace %s: a restore always creates a new cluster; choose another --to", f.to, o.namespace)
			case !apierrors.IsNotFound(err):
				return fmt.Errorf("while checking KshakaCluster %s/%s: %w", o.namespace, f.to, err)
			}
			from, explicit := f.from, f.from != ""
			if !explicit {
				from = b.Spec.Cluster.Name
			}
			var src *kshakav1alpha1.KshakaCluster
			var c kshakav1alpha1.KshakaCluster
			switch err := o.cl.Get(ctx, client.ObjectKey{Namespace: o.namespace, Name: from}, &c); {
			case err == nil:
				src = &c
			case apierrors.IsNotFound(err) && explicit:
				return withAdvice(ExitNotFound, fmt.Errorf("--from-cluster %s: KshakaCluster not found in namespace %s", from, o.namespace),
					"Leave --from-cluster out to use the defaults with --replicas, --storage-size and --storage-class.")
			case apierrors.IsNotFound(err):
				fmt.Fprintf(o.io.Err, "KshakaCluster %s (the backup's source) no longer exists: the new cluster gets the defaults with --replicas %d\n", from, f.replicas)
			default:
				return fmt.Errorf("while reading KshakaCluster %s/%s: %w", o.namespace, from, err)
			}
			spec, err := restoreSpec(src, b.Name, f, cmd.Flags().Changed)
			if err != nil {
				return err
			}
			nc := &kshakav1alpha1.KshakaCluster{ObjectMeta: metav1.ObjectMeta{Namespace: o.namespace, Name: f.to}, Spec: spec}
			if err := o.cl.Create(ctx, nc); err != nil {
				if apierrors.IsAlreadyExists(err) {
					return usageErrorf("KshakaCluster %s already exists in namespace %s: choose another --to", f.to, o.namespace)
				}
				return fmt.Errorf("while creating KshakaCluster %s/%s: %w", o.namespace, f.to, err)
			}
			specFrom := "the defaults"
			if src != nil {
				specFrom = "the spec of " + src.Name
			}
			fmt.Fprintf(o.io.Out, "kshakacluster/%s created from backup %s (%d keys, sha256 %s) with %s, %d replicas\n",
				f.to, b.Name, b.Status.Progress.Keys, orDash(b.Status.SHA256), specFrom, spec.Replicas)
			if !f.wait {
				_, err := fmt.Fprintf(o.io.Out, "Follow it with 'kubectl kshaka status %s'.\n", f.to)
				return err
			}
			return o.waitRestore(ctx, nc, f.timeout)
		},
	}
	cmd.Flags().StringVar(&f.to, "to", "", "name of the new KshakaCluster to restore into (required)")
	cmd.Flags().StringVar(&f.from, "from-cluster", "", "copy the spec of this KshakaCluster (default: the backup's cluster, when it still exists)")
	cmd.Flags().Int32Var(&f.replicas, "replicas", 3, "number of acceptors of the new cluster")
	cmd.Flags().StringVar(&f.storageSize, "storage-size", "", "size of each acceptor's volume, e.g. 10Gi (default: the source's, or 1Gi)")
	cmd.Flags().StringVar(&f.storageClass, "storage-class", "", "StorageClass of the volumes (default: the source's, or the cluster default)")
	cmd.Flags().BoolVar(&f.wait, "wait", false, "follow the restore until the cluster is Restored or the restore Failed")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 0, "with --wait, give up waiting after this long (0: no limit)")
	return cmd
}

// waitRestore follows c until its Restored condition is True or its
// restore Failed.
func (o *options) waitRestore(ctx context.Context, c *kshakav1alpha1.KshakaCluster, timeout time.Duration) error {
	last := ""
	restored := false
	err := o.poll(ctx, timeout, func(ctx context.Context) (bool, error) {
		if err := o.cl.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
			return false, fmt.Errorf("while reading KshakaCluster %s/%s: %w", c.Namespace, c.Name, err)
		}
		restored = meta.IsStatusConditionTrue(c.Status.Conditions, kshakav1alpha1.ConditionRestored)
		r := c.Status.Restore
		if r == nil {
			r = &kshakav1alpha1.RestoreStatus{}
		}
		if line := progressLine(r.Phase, r.Progress, r.Message); line != last && !restored {
			fmt.Fprintln(o.io.Out, line)
			last = line
		}
		return restored || r.Phase == kshakav1alpha1.BackupFailed, nil
	})
	switch {
	case errors.Is(err, errTimeout):
		return withCode(ExitTimeout, fmt.Errorf("KshakaCluster %s is not restored after %s; the restore goes on ('kubectl kshaka status %s')", c.Name, timeout, c.Name))
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("stopped waiting: the restore of KshakaCluster %s goes on ('kubectl kshaka status %s')", c.Name, c.Name)
	case err != nil:
		return err
	}
	r := c.Status.Restore
	if !restored {
		msg, job := "", ""
		if r != nil {
			msg, job = r.Message, r.JobName
		}
		return withAdvice(ExitFailed, fmt.Errorf("the restore of KshakaCluster %s failed: %s", c.Name, orDash(msg)),
			fmt.Sprintf("Its Job's logs say more: kubectl logs -n %s job/%s. Delete the new cluster (and its volume claims) before trying again.", c.Namespace, orDash(job)))
	}
	keys := int64(0)
	if r != nil {
		keys = r.Progress.Keys
	}
	_, err = fmt.Fprintf(o.io.Out, "kshakacluster/%s Restored: %d keys\n", c.Name, keys)
	return err
}
