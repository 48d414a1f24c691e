package localkube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// errVolumeNotReady: a volume's source (a PVC still unbound, a Secret not
// yet created) is not there yet; the pod waits in ContainerCreating.
var errVolumeNotReady = errors.New("volume not ready")

// prepareVolumes makes a host directory for every volume of pod and returns
// them by volume name. Persistent volumes are the PV's directory (hostPath
// or local); emptyDir, configMap, secret, projected and downwardAPI volumes
// live under podDir/volumes and go away with the pod.
func prepareVolumes(ctx context.Context, cl kubernetes.Interface, pod *corev1.Pod, podDir string) (map[string]string, error) {
	dirs := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		own := filepath.Join(podDir, "volumes", v.Name)
		var dir string
		var err error
		switch {
		case v.PersistentVolumeClaim != nil:
			dir, err = claimDir(ctx, cl, pod.Namespace, v.PersistentVolumeClaim.ClaimName)
		case v.Ephemeral != nil:
			// The ephemeral volume controller creates the claim POD-VOLUME.
			dir, err = claimDir(ctx, cl, pod.Namespace, pod.Name+"-"+v.Name)
		case v.HostPath != nil:
			dir = v.HostPath.Path
			if v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathDirectoryOrCreate {
				err = os.MkdirAll(dir, 0o755)
			}
		case v.EmptyDir != nil:
			dir, err = own, os.MkdirAll(own, 0o777)
		case v.ConfigMap != nil:
			dir, err = own, writeConfigMap(ctx, cl, pod.Namespace, own, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional)
		case v.Secret != nil:
			dir, err = own, writeSecret(ctx, cl, pod.Namespace, own, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional)
		case v.DownwardAPI != nil:
			dir, err = own, writeDownward(pod, own, v.DownwardAPI.Items)
		case v.Projected != nil:
			dir, err = own, writeProjected(ctx, cl, pod, own, v.Projected.Sources)
		default:
			err = fmt.Errorf("volume %q: this kind of volume is not supported by localkube", v.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		dirs[v.Name] = dir
	}
	return dirs, nil
}

// claimDir returns the directory of the PV bound to a claim, or
// errVolumeNotReady while the claim is not bound.
func claimDir(ctx context.Context, cl kubernetes.Interface, ns, name string) (string, error) {
	pvc, err := cl.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("%w: persistentvolumeclaim %q: %v", errVolumeNotReady, name, err)
	}
	if pvc.DeletionTimestamp != nil {
		return "", fmt.Errorf("%w: persistentvolumeclaim %q is being deleted", errVolumeNotReady, name)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", fmt.Errorf("%w: persistentvolumeclaim %q is not bound", errVolumeNotReady, name)
	}
	pv, err := cl.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("%w: persistentvolume %q: %v", errVolumeNotReady, pvc.Spec.VolumeName, err)
	}
	switch {
	case pv.Spec.HostPath != nil:
		return pv.Spec.HostPath.Path, nil
	case pv.Spec.Local != nil:
		return pv.Spec.Local.Path, nil
	}
	return "", fmt.Errorf("persistentvolume %q is neither hostPath nor local", pv.Name)
}

func writeConfigMap(ctx context.Context, cl kubernetes.Interface, ns, dir, name string, items []corev1.KeyToPath, opt *bool) error {
	cm, err := cl.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if optional(opt) {
			return os.MkdirAll(dir, 0o755)
		}
		return fmt.Errorf("%w: configmap %q: %v", errVolumeNotReady, name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return writeKeys(dir, data, items)
}

func writeSecret(ctx context.Context, cl kubernetes.Interface, ns, dir, name string, items []corev1.KeyToPath, opt *bool) error {
	s, err := cl.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if optional(opt) {
			return os.MkdirAll(dir, 0o700)
		}
		return fmt.Errorf("%w: secret %q: %v", errVolumeNotReady, name, err)
	}
	return writeKeys(dir, s.Data, items)
}

// writeKeys writes data (or the selected items) as files under dir.
func writeKeys(dir string, data map[string][]byte, items []corev1.KeyToPath) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if len(items) == 0 {
		for k, v := range data {
			if err := writeFileUnder(dir, k, v, nil); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("%w: key %q is missing", errVolumeNotReady, it.Key)
		}
		if err := writeFileUnder(dir, it.Path, v, it.Mode); err != nil {
			return err
		}
	}
	return nil
}

func writeDownward(pod *corev1.Pod, dir string, items []corev1.DownwardAPIVolumeFile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, it := range items {
		if it.FieldRef == nil {
			continue // resourceFieldRef in files is not supported
		}
		v, err := podField(pod, it.FieldRef.FieldPath, pod.Status.PodIP)
		if err != nil {
			return err
		}
		if err := writeFileUnder(dir, it.Path, []byte(v), it.Mode); err != nil {
			return err
		}
	}
	return nil
}

// writeProjected materialises configMap, secret and downwardAPI sources.
// Service account tokens are not written: pods authenticate with the
// kubeconfig in $KUBECONFIG instead.
func writeProjected(ctx context.Context, cl kubernetes.Interface, pod *corev1.Pod, dir string, sources []corev1.VolumeProjection) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, s := range sources {
		var err error
		switch {
		case s.ConfigMap != nil:
			err = writeConfigMap(ctx, cl, pod.Namespace, dir, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional)
		case s.Secret != nil:
			err = writeSecret(ctx, cl, pod.Namespace, dir, s.Secret.Name, s.Secret.Items, s.Secret.Optional)
		case s.DownwardAPI != nil:
			err = writeDownward(pod, dir, s.DownwardAPI.Items)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func writeFileUnder(dir, rel string, data []byte, mode *int32) error {
	p := filepath.Join(dir, rel)
	if !strings.HasPrefix(p, filepath.Clean(dir)+string(filepath.Separator)) {
		return fmt.Errorf("path %q escapes the volume", rel)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	perm := os.FileMode(0o644)
	if mode != nil {
		perm = os.FileMode(*mode) & 0o777
	}
	return os.WriteFile(p, data, perm)
}

// containerMounts maps a container's volume mounts to host directories.
func containerMounts(c *corev1.Container, vols map[string]string) ([]mount, error) {
	var ms []mount
	for _, vm := range c.VolumeMounts {
		dir, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume mount %q: no such volume", vm.Name)
		}
		if vm.SubPath != "" {
			dir = filepath.Join(dir, vm.SubPath)
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return nil, err
				}
			}
		}
		ms = append(ms, mount{containerPath: vm.MountPath, hostPath: dir})
	}
	return ms, nil
}
