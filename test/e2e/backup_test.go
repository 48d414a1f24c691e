//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
	"github.com/kshaka-io/kshaka/proposer"
)

const (
	backupNS    = "e2e-backup"
	backupClaim = "backups"
)

// backupSeed keys are written once before the backup and never again:
// $E2E_BACKUP_KEYS (to measure with more), default 500.
func backupSeed(t *testing.T) int {
	if s := os.Getenv("E2E_BACKUP_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("E2E_BACKUP_KEYS=%q: want a positive number of keys", s)
		}
		return n
	}
	return 500
}

// testBackupRestore: with TLS on, a KshakaBackup of a cluster under load
// into a PVC; the cluster and its PVCs deleted; a new cluster bootstrapped
// from the backup holds every key acknowledged before the backup started
// (the seeded ones at exactly their version, the workload's at a version
// at least the one read when the backup started) and counts versions on
// from there. Then the file is corrupted on the volume: a restore from it
// fails with a clear message and writes nothing.
func testBackupRestore(t *testing.T, e *env) {
	saved := clientTLSDir
	t.Cleanup(func() { clientTLSDir = saved })
	ctx := ctxT(t, 15*time.Minute)
	const cl = "kb"
	must(t, e.cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: backupNS}}))
	must(t, e.cl.Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: backupNS, Name: backupClaim},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("256Mi")}},
		},
	}))
	e.createCluster(t, backupNS, cl, 3, "")
	kc := e.waitStable(t, backupNS, cl, 3, settle)
	nseed := backupSeed(t)
	seed(t, endpoints(kc), "bk-seed", nseed)
	w := startWorkload(t, endpoints(kc), 3, "bk")
	w.progress(20)

	// Every write acknowledged before the backup starts is at or below
	// these versions (each read is linearizable).
	atStart := map[string]proposer.Value{}
	reader, err := proposer.New(ctx, clientConfig(endpoints(kc)))
	must(t, err)
	for _, k := range w.keys {
		v, err := reader.Get(ctx, []byte(k))
		must(t, err)
		atStart[k] = v
	}
	reader.Close()

	start := time.Now()
	b := &kshakav1alpha1.KshakaBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: backupNS, Name: "b1"},
		Spec:       kshakav1alpha1.KshakaBackupSpec{Cluster: corev1.LocalObjectReference{Name: cl}, ClaimName: backupClaim},
	}
	must(t, e.cl.Create(ctx, b))
	var phases []string
	e.eventually(t, settle, "KshakaBackup b1 is Completed", func(ctx context.Context) (bool, error) {
		if err := e.cl.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
			return false, err
		}
		st := b.Status
		p := fmt.Sprintf("%s %d/%d keys %d%%", st.Phase, st.Progress.Keys, st.Progress.EstimatedKeys, st.Progress.Percent)
		if len(phases) == 0 || phases[len(phases)-1] != p {
			phases = append(phases, p)
		}
		if st.Phase == kshakav1alpha1.BackupFailed {
			t.Fatalf("the backup failed: %s", st.Message)
		}
		return st.Phase == kshakav1alpha1.BackupCompleted, nil
	})
	t.Logf("backup: %s in %s (the Job's own rate: %d keys/s); %d keys, %d bytes, sha256 %s, file %s/%s", strings.Join(phases, " → "),
		time.Since(start).Round(time.Millisecond), b.Status.Progress.KeysPerSecond, b.Status.Progress.Keys, b.Status.Progress.Bytes, b.Status.SHA256, backupClaim, b.Status.Path)
	if b.Status.Progress.Keys < int64(nseed) || len(b.Status.SHA256) != 64 || b.Status.Path != cl+"/b1.kbk" {
		t.Fatalf("backup status %+v", b.Status)
	}
	w.stop(endpoints(e.get(t, backupNS, cl)), 20)

	e.deleteCluster(t, backupNS, cl)
	start = time.Now()
	e.createRestored(t, backupNS, cl, 3, "b1")
	kc = e.waitRestored(t, backupNS, cl, 3)
	t.Logf("restore: Restored and stable in %s (the Job's own rate: %d keys/s); %s", time.Since(start).Round(time.Millisecond),
		kc.Status.Restore.Progress.KeysPerSecond, kc.Status.Restore.Message)
	if kc.Status.Restore.Source != backupClaim+"/"+cl+"/b1.kbk" {
		t.Errorf("restore source %q", kc.Status.Restore.Source)
	}
	// The client Secret is issued after the restore: the mount started by
	// createCluster picks the new one up.
	e.eventually(t, settle, "the new cluster's client certificate is mounted", func(ctx context.Context) (bool, error) {
		c, err := proposer.New(ctx, clientConfig(endpoints(kc)))
		if err != nil {
			return false, err
		}
		defer c.Close()
		_, err = c.Get(ctx, []byte("bk-seed/00000"))
		return err == nil, err
	})
	checkSeeded(t, endpoints(kc), "bk-seed", nseed)
	c, err := proposer.New(ctx, clientConfig(endpoints(kc)))
	must(t, err)
	defer c.Close()
	for k, want := range atStart {
		got, err := c.Get(ctx, []byte(k))
		if errors.Is(err, proposer.ErrNotFound) && want.Version == 0 {
			continue
		}
		switch {
		case err != nil:
			t.Errorf("%s after the restore: %v (at the backup's start: %q v%d)", k, err, want.Data, want.Version)
		case got.Version < want.Version, got.Version == want.Version && string(got.Data) != string(want.Data):
			t.Errorf("%s after the restore: %q v%d; at the backup's start it was %q v%d", k, got.Data, got.Version, want.Data, want.Version)
		}
	}
	v, err := c.Put(ctx, []byte("bk-seed/00000"), []byte("after"))
	must(t, err)
	if v.Version != 2 {
		t.Errorf("a Put on a restored key (v1) gives v%d, want v2: versions count on from the backup", v.Version)
	}

	// A corrupt file is refused before anything is written.
	file := e.claimFile(t, backupNS, backupClaim, b.Status.Path)
	flipByte(t, file, nseed)
	e.createRestored(t, backupNS, "kbad", 1, "b1")
	var cond *metav1.Condition
	e.eventually(t, settle, "the restore from the corrupt file fails", func(ctx context.Context) (bool, error) {
		bad := e.get(t, backupNS, "kbad")
		cond = meta.FindStatusCondition(bad.Status.Conditions, kshakav1alpha1.ConditionRestored)
		return cond != nil && cond.Reason == "RestoreFailed", nil
	})
	t.Logf("corrupt backup: Restored=%s %s: %s", cond.Status, cond.Reason, cond.Message)
	if cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, "corrupt") {
		t.Errorf("Restored condition %+v: want False with a message that says the file is corrupt", cond)
	}
	var sec corev1.Secret
	if err := e.cl.Get(ctx, client.ObjectKey{Namespace: backupNS, Name: "kbad-client-tls"}, &sec); !apierrors.IsNotFound(err) {
		t.Errorf("the client Secret of a cluster whose restore failed: %v, want none", err)
	}
	// Nothing was written: read with the operator's (admin) identity.
	bad := e.waitStable(t, backupNS, "kbad", 1, settle)
	admin, err := proposer.New(ctx, proposer.Config{Endpoints: endpoints(bad), TLSDir: e.mountSecret(backupNS, "kbad-operator-tls")})
	must(t, err)
	defer admin.Close()
	for _, k := range []string{"bk-seed/00000", fmt.Sprintf("bk-seed/%05d", nseed-1), w.keys[0]} {
		if v, err := admin.Get(ctx, []byte(k)); !errors.Is(err, proposer.ErrNotFound) {
			t.Errorf("%s in the cluster whose restore failed: %q v%d %v; want none", k, v.Data, v.Version, err)
		}
	}
}

// deleteCluster deletes a KshakaCluster and its volume claims and waits
// until its pods and claims are gone.
func (e *env) deleteCluster(t *testing.T, ns, name string) {
	t.Helper()
	ctx := ctxT(t, settle)
	must(t, e.cl.Delete(ctx, &kshakav1alpha1.KshakaCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}))
	sel := client.MatchingLabels{"app.kubernetes.io/instance": name, "app.kubernetes.io/component": "acceptor"}
	e.eventually(t, settle, "the pods of "+name+" are gone", func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		err := e.cl.List(ctx, &pods, client.InNamespace(ns), sel)
		return err == nil && len(pods.Items) == 0, err
	})
	var pvcs corev1.PersistentVolumeClaimList
	must(t, e.cl.List(ctx, &pvcs, client.InNamespace(ns), sel))
	for i := range pvcs.Items {
		must(t, client.IgnoreNotFound(e.cl.Delete(ctx, &pvcs.Items[i])))
	}
	// Everything else the cluster owned, which the garbage collector
	// deletes: a new cluster of the same name does not adopt it.
	owned := client.MatchingLabels{"app.kubernetes.io/instance": name}
	e.eventually(t, settle, "the claims and owned objects of "+name+" are gone", func(ctx context.Context) (bool, error) {
		for _, list := range []client.ObjectList{&corev1.PersistentVolumeClaimList{}, &appsv1.StatefulSetList{}, &corev1.ServiceList{},
			&corev1.SecretList{}, &policyv1.PodDisruptionBudgetList{}, &networkingv1.NetworkPolicyList{}} {
			opts := []client.ListOption{client.InNamespace(ns), owned}
			if _, ok := list.(*corev1.PersistentVolumeClaimList); ok {
				opts = append(opts, sel)
			}
			if err := e.cl.List(ctx, list, opts...); err != nil {
				return false, err
			}
			if meta.LenList(list) > 0 {
				return false, fmt.Errorf("%T still has %d items", list, meta.LenList(list))
			}
		}
		return true, nil
	})
}

// createRestored creates a KshakaCluster bootstrapped from KshakaBackup
// backup. Its client Secret appears only once the restore completed.
func (e *env) createRestored(t *testing.T, ns, name string, replicas int32, backup string) {
	t.Helper()
	size := resource.MustParse("64Mi")
	kc := &kshakav1alpha1.KshakaCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kshakav1alpha1.KshakaClusterSpec{
			Replicas: replicas, Image: "ghcr.io/kshaka-io/kshaka-acceptor", Version: "v0.1.0",
			AddressMode: kshakav1alpha1.AddressMode("PodIP"),
			Storage:     kshakav1alpha1.StorageSpec{Size: &size},
			Bootstrap:   &kshakav1alpha1.BootstrapSpec{FromBackup: &kshakav1alpha1.BackupSource{BackupName: backup}},
		},
	}
	must(t, e.cl.Create(ctxT(t, time.Minute), kc))
}

// waitRestored waits until the cluster is Restored and stable.
func (e *env) waitRestored(t *testing.T, ns, name string, replicas int) *kshakav1alpha1.KshakaCluster {
	t.Helper()
	var kc kshakav1alpha1.KshakaCluster
	var last string
	e.eventually(t, settle, ns+"/"+name+" is Restored and stable", func(ctx context.Context) (bool, error) {
		if err := e.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &kc); err != nil {
			return false, err
		}
		if r := kc.Status.Restore; r != nil && string(r.Phase)+r.Message != last {
			last = string(r.Phase) + r.Message
			t.Logf("restore: %s: %s (%d keys)", r.Phase, r.Message, r.Progress.Keys)
			if r.Phase == kshakav1alpha1.BackupFailed {
				t.Fatalf("the restore failed: %s", r.Message)
			}
		}
		return meta.IsStatusConditionTrue(kc.Status.Conditions, kshakav1alpha1.ConditionRestored) && stable(&kc, replicas), nil
	})
	return &kc
}

// claimFile is the host path of a file on a volume claim: localkube's
// volumes are host directories.
func (e *env) claimFile(t *testing.T, ns, claim, file string) string {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	var pvc corev1.PersistentVolumeClaim
	must(t, e.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: claim}, &pvc))
	var pv corev1.PersistentVolume
	must(t, e.cl.Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, &pv))
	if pv.Spec.HostPath == nil {
		t.Fatalf("volume %s is not a host path", pv.Name)
	}
	return filepath.Join(pv.Spec.HostPath.Path, filepath.FromSlash(file))
}

// flipByte inverts one byte in the middle of the file.
func flipByte(t *testing.T, path string, keys int) {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	if len(b) < 100 {
		t.Fatalf("%s has %d bytes; a backup of %d keys is larger", path, len(b), keys)
	}
	b[len(b)/2] ^= 0xff
	must(t, os.WriteFile(path, b, 0o600))
	t.Logf("flipped byte %d of %d in %s", len(b)/2, len(b), path)
}
