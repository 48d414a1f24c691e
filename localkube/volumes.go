package localkube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

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
		case v.ConfigMap != nil, v.Secret != nil, v.DownwardAPI != nil, v.Projected != nil:
			dir, err = own, refreshVolume(ctx, cl, pod, &v, own)
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

// refreshVolume writes the current files of a configMap, secret,
// downwardAPI or projected volume into dir, atomically, when they changed.
// The pod runtime calls it at start and then periodically, the way a
// kubelet keeps such volumes up to date, so a rotated Secret reaches a
// running process.
func refreshVolume(ctx context.Context, cl kubernetes.Interface, pod *corev1.Pod, v *corev1.Volume, dir string) error {
	files, ok, err := volumeFiles(ctx, cl, pod, v)
	if err != nil || !ok {
		return err
	}
	_, err = writeAtomic(dir, files)
	return err
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

// file is one file of a Secret, ConfigMap, downward API or projected
// volume, by its path relative to the volume.
type file struct {
	data []byte
	mode os.FileMode
}

// volumeFiles returns the files of a configMap, secret, downwardAPI or
// projected volume (ok false for other kinds).
func volumeFiles(ctx context.Context, cl kubernetes.Interface, pod *corev1.Pod, v *corev1.Volume) (files map[string]file, ok bool, err error) {
	files = map[string]file{}
	switch {
	case v.ConfigMap != nil:
		err = configMapFiles(ctx, cl, pod.Namespace, files, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional)
	case v.Secret != nil:
		err = secretFiles(ctx, cl, pod.Namespace, files, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional)
	case v.DownwardAPI != nil:
		err = downwardFiles(pod, files, v.DownwardAPI.Items)
	case v.Projected != nil:
		err = projectedFiles(ctx, cl, pod, files, v.Projected.Sources)
	default:
		return nil, false, nil
	}
	return files, true, err
}

func configMapFiles(ctx context.Context, cl kubernetes.Interface, ns string, files map[string]file, name string, items []corev1.KeyToPath, opt *bool) error {
	cm, err := cl.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if optional(opt) {
			return nil
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
	return keyFiles(files, data, items)
}

func secretFiles(ctx context.Context, cl kubernetes.Interface, ns string, files map[string]file, name string, items []corev1.KeyToPath, opt *bool) error {
	s, err := cl.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if optional(opt) {
			return nil
		}
		return fmt.Errorf("%w: secret %q: %v", errVolumeNotReady, name, err)
	}
	return keyFiles(files, s.Data, items)
}

// keyFiles adds data (or the selected items) to files.
func keyFiles(files map[string]file, data map[string][]byte, items []corev1.KeyToPath) error {
	if len(items) == 0 {
		for k, v := range data {
			files[k] = file{data: v, mode: 0o644}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("%w: key %q is missing", errVolumeNotReady, it.Key)
		}
		files[it.Path] = file{data: v, mode: fileMode(it.Mode)}
	}
	return nil
}

func downwardFiles(pod *corev1.Pod, files map[string]file, items []corev1.DownwardAPIVolumeFile) error {
	for _, it := range items {
		if it.FieldRef == nil {
			continue // resourceFieldRef in files is not supported
		}
		v, err := podField(pod, it.FieldRef.FieldPath, pod.Status.PodIP)
		if err != nil {
			return err
		}
		files[it.Path] = file{data: []byte(v), mode: fileMode(it.Mode)}
	}
	return nil
}

// projectedFiles collects configMap, secret and downwardAPI sources.
// Service account tokens are not written: pods authenticate with the
// kubeconfig in $KUBECONFIG instead.
func projectedFiles(ctx context.Context, cl kubernetes.Interface, pod *corev1.Pod, files map[string]file, sources []corev1.VolumeProjection) error {
	for _, s := range sources {
		var err error
		switch {
		case s.ConfigMap != nil:
			err = configMapFiles(ctx, cl, pod.Namespace, files, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional)
		case s.Secret != nil:
			err = secretFiles(ctx, cl, pod.Namespace, files, s.Secret.Name, s.Secret.Items, s.Secret.Optional)
		case s.DownwardAPI != nil:
			err = downwardFiles(pod, files, s.DownwardAPI.Items)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func fileMode(mode *int32) os.FileMode {
	if mode != nil {
		return os.FileMode(*mode) & 0o777
	}
	return 0o644
}

// dataDir is the link through which a volume's files are reached, as the
// kubelet's atomic writer lays them out: dir/<name> -> ..data/<name>,
// dir/..data -> ..<version>. A new version is written beside the old one
// and ..data is swapped with a rename, so a reader never sees a mix of old
// and new files.
const dataDir = "..data"

// writeAtomic makes dir hold exactly files. It does nothing when they are
// already there, and reports whether it wrote a new version.
func writeAtomic(dir string, files map[string]file) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	if same(dir, files) {
		return false, nil
	}
	ts := fmt.Sprintf("..%d", time.Now().UnixNano())
	for rel, f := range files {
		if err := writeFileUnder(filepath.Join(dir, ts), rel, f.data, f.mode); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, ts), 0o755); err != nil {
		return false, err
	}
	old, _ := os.Readlink(filepath.Join(dir, dataDir))
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(ts, tmp); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataDir)); err != nil {
		return false, err
	}
	// Top-level names point through ..data; names no longer present go.
	top := map[string]bool{}
	for rel := range files {
		top[strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "..") {
			continue
		}
		if !top[n] {
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				return false, err
			}
		}
	}
	for n := range top {
		link := filepath.Join(dir, n)
		if t, err := os.Readlink(link); err == nil && t == filepath.Join(dataDir, n) {
			continue
		}
		_ = os.RemoveAll(link)
		if err := os.Symlink(filepath.Join(dataDir, n), link); err != nil {
			return false, err
		}
	}
	if old != "" && old != ts {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return true, nil
}

// same reports whether dir already holds exactly files, through ..data.
func same(dir string, files map[string]file) bool {
	cur := filepath.Join(dir, dataDir)
	if _, err := os.Stat(cur); err != nil {
		return false
	}
	n := 0
	err := filepath.WalkDir(cur+"/", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		rel, _ := filepath.Rel(cur, p)
		f, ok := files[rel]
		if !ok {
			return errors.New("extra file")
		}
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, f.data) {
			return errors.New("differs")
		}
		return nil
	})
	return err == nil && n == len(files)
}

func writeFileUnder(dir, rel string, data []byte, mode os.FileMode) error {
	p := filepath.Join(dir, rel)
	if !strings.HasPrefix(p, filepath.Clean(dir)+string(filepath.Separator)) {
		return fmt.Errorf("path %q escapes the volume", rel)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, mode)
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
