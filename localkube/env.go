package localkube

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// envVar is a resolved variable; order matters for $(VAR) references.
type envVar struct{ name, value string }

// resolveEnv computes a container's environment the way a kubelet does:
// envFrom first, then env in order, each value able to reference earlier
// ones with $(NAME). The downward API (fieldRef, resourceFieldRef),
// configMapKeyRef and secretKeyRef are supported; status.podIP is the pod's
// loopback address.
func resolveEnv(ctx context.Context, cl kubernetes.Interface, pod *corev1.Pod, c *corev1.Container, podIP string, base []envVar) ([]envVar, error) {
	vars := append([]envVar(nil), base...)
	lookup := func(name string) (string, bool) {
		for i := len(vars) - 1; i >= 0; i-- {
			if vars[i].name == name {
				return vars[i].value, true
			}
		}
		return "", false
	}
	ns := pod.Namespace
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := cl.CoreV1().ConfigMaps(ns).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				if optional(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("configmap %q: %w", from.ConfigMapRef.Name, err)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := cl.CoreV1().Secrets(ns).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				if optional(from.SecretRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("secret %q: %w", from.SecretRef.Name, err)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			vars = append(vars, envVar{from.Prefix + k, data[k]})
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			vars = append(vars, envVar{e.Name, expand(e.Value, lookup)})
			continue
		}
		v, skip, err := valueFrom(ctx, cl, pod, c, podIP, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if !skip {
			vars = append(vars, envVar{e.Name, v})
		}
	}
	return vars, nil
}

func optional(b *bool) bool { return b != nil && *b }

func valueFrom(ctx context.Context, cl kubernetes.Interface, pod *corev1.Pod, c *corev1.Container, podIP string, vf *corev1.EnvVarSource) (value string, skip bool, err error) {
	switch {
	case vf.FieldRef != nil:
		v, err := podField(pod, vf.FieldRef.FieldPath, podIP)
		return v, false, err
	case vf.ResourceFieldRef != nil:
		v, err := resourceField(c, vf.ResourceFieldRef)
		return v, false, err
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		cm, err := cl.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return "", optional(ref.Optional), ignoreIf(optional(ref.Optional), fmt.Errorf("configmap %q: %w", ref.Name, err))
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			return "", optional(ref.Optional), ignoreIf(optional(ref.Optional), fmt.Errorf("configmap %q has no key %q", ref.Name, ref.Key))
		}
		return v, false, nil
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		s, err := cl.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return "", optional(ref.Optional), ignoreIf(optional(ref.Optional), fmt.Errorf("secret %q: %w", ref.Name, err))
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			return "", optional(ref.Optional), ignoreIf(optional(ref.Optional), fmt.Errorf("secret %q has no key %q", ref.Name, ref.Key))
		}
		return string(v), false, nil
	}
	return "", true, nil
}

func ignoreIf(cond bool, err error) error {
	if cond {
		return nil
	}
	return err
}

// podField resolves a downward-API field path.
func podField(pod *corev1.Pod, path, podIP string) (string, error) {
	if strings.HasPrefix(path, "metadata.labels['") && strings.HasSuffix(path, "']") {
		return pod.Labels[path[len("metadata.labels['"):len(path)-2]], nil
	}
	if strings.HasPrefix(path, "metadata.annotations['") && strings.HasSuffix(path, "']") {
		return pod.Annotations[path[len("metadata.annotations['"):len(path)-2]], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return "127.0.0.1", nil
	}
	return "", fmt.Errorf("unsupported fieldPath %q", path)
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// resourceField resolves requests.* and limits.* of the container; an unset
// limit reports the node's capacity like a kubelet does.
func resourceField(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	var q resource.Quantity
	var ok bool
	switch {
	case strings.HasPrefix(ref.Resource, "requests."):
		q, ok = c.Resources.Requests[corev1.ResourceName(strings.TrimPrefix(ref.Resource, "requests."))]
	case strings.HasPrefix(ref.Resource, "limits."):
		q, ok = c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(ref.Resource, "limits."))]
		if !ok {
			q, ok = nodeCapacity()[corev1.ResourceName(strings.TrimPrefix(ref.Resource, "limits."))]
		}
	default:
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	if !ok {
		return "0", nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if strings.HasSuffix(ref.Resource, "cpu") {
		return strconv.FormatInt((q.MilliValue()+divisor.MilliValue()-1)/divisor.MilliValue(), 10), nil
	}
	return strconv.FormatInt((q.Value()+divisor.Value()-1)/divisor.Value(), 10), nil
}

// expand replaces $(NAME) with its value the way a kubelet does: $$ is a
// literal $, and an unknown $(NAME) stays as it is.
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// mount maps a container path to a host directory.
type mount struct{ containerPath, hostPath string }

// rewritePaths replaces container paths under a volume mount with the host
// directory that backs it: pods are plain processes without their own
// filesystem, so "--data-dir=/var/lib/kshaka" must become the volume's
// directory. A path is replaced only where it starts a word (at the start
// or after = : , space or a quote) and ends at a path boundary.
func rewritePaths(s string, mounts []mount) string {
	if len(mounts) == 0 || !strings.Contains(s, "/") {
		return s
	}
	ms := append([]mount(nil), mounts...)
	sort.Slice(ms, func(i, j int) bool { return len(ms[i].containerPath) > len(ms[j].containerPath) })
	isStart := func(i int) bool { return i == 0 || strings.IndexByte("=:, \"'", s[i-1]) >= 0 }
	isEnd := func(i int) bool { return i == len(s) || strings.IndexByte("/=:, \"'", s[i]) >= 0 }
	var b strings.Builder
	for i := 0; i < len(s); {
		matched := false
		if s[i] == '/' && isStart(i) {
			for _, m := range ms {
				cp := strings.TrimSuffix(m.containerPath, "/")
				if cp == "" || !strings.HasPrefix(s[i:], cp) || !isEnd(i+len(cp)) {
					continue
				}
				b.WriteString(m.hostPath)
				i += len(cp)
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// rewriteArgs applies rewritePaths to each argument.
func rewriteArgs(args []string, mounts []mount) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = rewritePaths(a, mounts)
	}
	return out
}

// rewriteListen turns a wildcard listen address, the whole value or the part
// after "=" (":7400", "0.0.0.0:7400", "[::]:7400"), into podIP:PORT. In a
// real pod the wildcard means the pod's own interfaces; here every pod shares
// the host's, so pods listening on the same port would collide.
func rewriteListen(s, podIP string) string {
	prefix, val := "", s
	if i := strings.LastIndexByte(s, '='); i >= 0 {
		prefix, val = s[:i+1], s[i+1:]
	}
	for _, wild := range []string{":", "0.0.0.0:", "[::]:"} {
		port, ok := strings.CutPrefix(val, wild)
		if !ok || port == "" {
			continue
		}
		if _, err := strconv.ParseUint(port, 10, 16); err == nil {
			return prefix + podIP + ":" + port
		}
	}
	return s
}
