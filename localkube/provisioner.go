package localkube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// ProvisionerName is the provisioner of the default StorageClass.
const ProvisionerName = "localkube.kshaka.io/hostpath"

// StorageClassName is the default StorageClass localkube creates.
const StorageClassName = "standard"

const (
	annStorageProvisioner     = "volume.kubernetes.io/storage-provisioner"
	annBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner"
	annProvisionedBy          = "pv.kubernetes.io/provisioned-by"
)

// provisioner is a small external provisioner: for each claim of its
// StorageClass the PV controller (in kube-controller-manager) hands it, it
// makes a directory Dir/volumes/pvc-UID and a hostPath PV bound to the
// claim. When a claim is deleted the PV controller releases the PV, and the
// provisioner removes the directory and the PV. Directories outlive pods:
// only deleting the claim removes them.
type provisioner struct {
	cl       kubernetes.Interface
	dir      string // Dir/volumes
	recorder record.EventRecorder
	logf     func(string, ...any)
}

// ensureStorageClass creates the default StorageClass if it is missing.
func (p *provisioner) ensureStorageClass(ctx context.Context) error {
	del := corev1.PersistentVolumeReclaimDelete
	mode := storagev1.VolumeBindingImmediate
	expand := true
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        StorageClassName,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:          ProvisionerName,
		ReclaimPolicy:        &del,
		VolumeBindingMode:    &mode,
		AllowVolumeExpansion: &expand,
	}
	_, err := p.cl.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func (p *provisioner) run(ctx context.Context) error {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(p.cl, 0)
	pvcs := factory.Core().V1().PersistentVolumeClaims()
	pvs := factory.Core().V1().PersistentVolumes()
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	onPVC := func(obj any) {
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok && p.wantsVolume(pvc) {
			q.Add("pvc/" + pvc.Namespace + "/" + pvc.Name)
		}
	}
	onPV := func(obj any) {
		if pv, ok := obj.(*corev1.PersistentVolume); ok && p.released(pv) {
			q.Add("pv/" + pv.Name)
		}
	}
	if _, err := pvcs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onPVC, UpdateFunc: func(_, o any) { onPVC(o) },
	}); err != nil {
		return err
	}
	if _, err := pvs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onPV, UpdateFunc: func(_, o any) { onPV(o) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), pvcs.Informer().HasSynced, pvs.Informer().HasSynced) {
		return ctx.Err()
	}
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	for {
		key, quit := q.Get()
		if quit {
			return nil
		}
		var err error
		switch {
		case strings.HasPrefix(key, "pvc/"):
			ns, name, _ := strings.Cut(strings.TrimPrefix(key, "pvc/"), "/")
			var pvc *corev1.PersistentVolumeClaim
			if pvc, err = pvcs.Lister().PersistentVolumeClaims(ns).Get(name); err == nil {
				err = p.provision(ctx, pvc)
			}
		case strings.HasPrefix(key, "pv/"):
			var pv *corev1.PersistentVolume
			if pv, err = pvs.Lister().Get(strings.TrimPrefix(key, "pv/")); err == nil {
				err = p.remove(ctx, pv)
			}
		}
		if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
			p.logf("provisioner: %s: %v", key, err)
			q.AddRateLimited(key)
		} else {
			q.Forget(key)
		}
		q.Done(key)
	}
}

// wantsVolume: the PV controller asked us for a volume for pvc.
func (p *provisioner) wantsVolume(pvc *corev1.PersistentVolumeClaim) bool {
	if pvc.Spec.VolumeName != "" || pvc.DeletionTimestamp != nil {
		return false
	}
	return pvc.Annotations[annStorageProvisioner] == ProvisionerName ||
		pvc.Annotations[annBetaStorageProvisioner] == ProvisionerName
}

func (p *provisioner) released(pv *corev1.PersistentVolume) bool {
	return pv.Annotations[annProvisionedBy] == ProvisionerName &&
		pv.Status.Phase == corev1.VolumeReleased &&
		pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete
}

func (p *provisioner) volumeDir(pvName string) string { return filepath.Join(p.dir, pvName) }

func (p *provisioner) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if !p.wantsVolume(pvc) {
		return nil
	}
	name := "pvc-" + string(pvc.UID)
	dir := p.volumeDir(name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	scName := StorageClassName
	if pvc.Spec.StorageClassName != nil && *pvc.Spec.StorageClassName != "" {
		scName = *pvc.Spec.StorageClassName
	}
	if sc, err := p.cl.StorageV1().StorageClasses().Get(ctx, scName, metav1.GetOptions{}); err == nil && sc.ReclaimPolicy != nil {
		reclaim = *sc.ReclaimPolicy
	}
	size, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		size = resource.MustParse("1Gi")
	}
	dirType := corev1.HostPathDirectory
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{annProvisionedBy: ProvisionerName},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              scName,
			VolumeMode:                    pvc.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &dirType},
			},
		},
	}
	_, err := p.cl.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("while creating persistentvolume %s: %w", name, err)
	}
	p.recorder.Eventf(pvc, corev1.EventTypeNormal, "ProvisioningSucceeded", "Successfully provisioned volume %s at %s", name, dir)
	p.logf("provisioner: %s/%s -> %s", pvc.Namespace, pvc.Name, dir)
	return nil
}

func (p *provisioner) remove(ctx context.Context, pv *corev1.PersistentVolume) error {
	if !p.released(pv) {
		return nil
	}
	if pv.Spec.HostPath != nil {
		dir := pv.Spec.HostPath.Path
		if filepath.Dir(dir) != filepath.Clean(p.dir) { // only ever our own
			return fmt.Errorf("refusing to remove %s: not under %s", dir, p.dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	err := p.cl.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	if err == nil {
		p.logf("provisioner: deleted %s", pv.Name)
	}
	return err
}
