package controllers

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

func TestNamesAndAddresses(t *testing.T) {
	c := newCluster(3)
	pod := &corev1.Pod{}
	pod.Name = PodName(c, 2)
	pod.Status.PodIP = "10.1.2.3"
	for _, tc := range []struct{ name, got, want string }{
		{"pod", PodName(c, 2), "kc-2"},
		{"pvc", PVCName(c, 2), "data-kc-2"},
		{"peers", PeerServiceName(c), "kc-peers"},
		{"dns address", Address(c, pod), "kc-2.kc-peers.ns.svc:7400"},
		{"image", Image(c), "example.com/kshaka-acceptor:v1"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	c.Spec.AddressMode = kshakav1alpha1.AddressModePodIP
	if got := Address(c, pod); got != "10.1.2.3:7400" {
		t.Errorf("pod IP address %q", got)
	}
	pod.Status.PodIP = "fd00::1"
	if got := Address(c, pod); got != "[fd00::1]:7400" {
		t.Errorf("IPv6 pod IP address %q", got)
	}
	pod.Status.PodIP = ""
	if got := Address(c, pod); got != "" {
		t.Errorf("address without a pod IP %q", got)
	}
}

func TestOrdinal(t *testing.T) {
	c := newCluster(3)
	for _, tc := range []struct {
		name string
		ord  int32
		ok   bool
	}{
		{"kc-0", 0, true}, {"kc-12", 12, true}, {"kc-", 0, false}, {"kc-01", 0, false},
		{"kc-x", 0, false}, {"other-1", 0, false}, {"kc-peers-1", 0, false}, {"kc--1", 0, false},
	} {
		ord, ok := Ordinal(c, tc.name)
		if ord != tc.ord || ok != tc.ok {
			t.Errorf("Ordinal(%q) = %d, %v; want %d, %v", tc.name, ord, ok, tc.ord, tc.ok)
		}
	}
}

func TestStatefulSet(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(c *kshakav1alpha1.KshakaCluster)
		check  func(t *testing.T, s *appsv1.StatefulSet)
	}{{
		name: "defaults",
		check: func(t *testing.T, s *appsv1.StatefulSet) {
			if *s.Spec.Replicas != 4 || s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement ||
				s.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType || s.Spec.ServiceName != "kc-peers" {
				t.Fatalf("spec %+v", s.Spec)
			}
			if p := s.Spec.PersistentVolumeClaimRetentionPolicy; p.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType || p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
				t.Fatalf("retention %+v: the operator deletes claims itself, last", p)
			}
			if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != "uid-1" || !*s.OwnerReferences[0].Controller {
				t.Fatalf("owner %+v", s.OwnerReferences)
			}
			vct := s.Spec.VolumeClaimTemplates[0]
			if vct.Name != "data" || !vct.Spec.Resources.Requests.Storage().Equal(resource.MustParse("1Gi")) || vct.Labels[LabelClusterUID] != "uid-1" {
				t.Fatalf("claim template %+v", vct)
			}
			pod := s.Spec.Template
			if pod.Labels[LabelClusterUID] != "uid-1" || pod.Labels[LabelInstance] != "kc" {
				t.Fatalf("pod labels %v", pod.Labels)
			}
			ctr := pod.Spec.Containers[0]
			if ctr.Image != "example.com/kshaka-acceptor:v1" {
				t.Fatalf("image %q", ctr.Image)
			}
			if !slices.Equal(ctr.Args, []string{"--data-dir=/var/lib/kshaka", "--listen=:7400", "--metrics-listen=:9400", "--health-listen=:7401",
				"--tls-cert-file=/etc/kshaka/tls/$(POD_NAME).crt", "--tls-key-file=/etc/kshaka/tls/$(POD_NAME).key",
				"--tls-client-ca-file=/etc/kshaka/tls/ca.crt"}) {
				t.Fatalf("args %v: mutual TLS is on by default", ctr.Args)
			}
			if !slices.ContainsFunc(ctr.Env, func(e corev1.EnvVar) bool {
				return e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
			}) {
				t.Fatalf("env %v: $(POD_NAME) in the arguments needs POD_NAME from the downward API", ctr.Env)
			}
			if ctr.ReadinessProbe.GRPC == nil || ctr.ReadinessProbe.GRPC.Port != HealthPort {
				t.Fatalf("readiness %+v: want the gRPC health check (SERVING once admitted) on the plaintext health port", ctr.ReadinessProbe)
			}
			if !slices.ContainsFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return p.Name == "health" && p.ContainerPort == HealthPort }) {
				t.Fatalf("ports %+v", ctr.Ports)
			}
			if vols := pod.Spec.Volumes; len(vols) != 1 || vols[0].Secret == nil || vols[0].Secret.SecretName != "kc-acceptor-tls" {
				t.Fatalf("volumes %+v", vols)
			}
			if m := ctr.VolumeMounts[1]; m.MountPath != "/etc/kshaka/tls" || !m.ReadOnly || m.Name != pod.Spec.Volumes[0].Name {
				t.Fatalf("TLS mount %+v", m)
			}
			if ctr.LivenessProbe.TCPSocket == nil || ctr.LivenessProbe.TCPSocket.Port.StrVal != "grpc" {
				t.Fatalf("liveness %+v: must not kill a live acceptor that is not admitted yet", ctr.LivenessProbe)
			}
			if ctr.VolumeMounts[0].MountPath != "/var/lib/kshaka" {
				t.Fatalf("mounts %+v", ctr.VolumeMounts)
			}
			// Restricted Pod Security Standard.
			psc, csc := pod.Spec.SecurityContext, ctr.SecurityContext
			if !*psc.RunAsNonRoot || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || *psc.FSGroup != nonRootUID {
				t.Fatalf("pod security context %+v", psc)
			}
			if *csc.AllowPrivilegeEscalation || !*csc.ReadOnlyRootFilesystem || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Fatalf("container security context %+v", csc)
			}
			aff := pod.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
			if len(aff) != 1 || aff[0].PodAffinityTerm.TopologyKey != corev1.LabelHostname || aff[0].PodAffinityTerm.LabelSelector.MatchLabels[LabelInstance] != "kc" {
				t.Fatalf("anti-affinity %+v", aff)
			}
			if pod.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
				t.Fatal("required anti-affinity leaves pods Pending on small clusters")
			}
		},
	}, {
		name: "user scheduling and security settings win",
		modify: func(c *kshakav1alpha1.KshakaCluster) {
			c.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}}
			c.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
			c.Spec.NodeSelector = map[string]string{"disk": "ssd"}
			c.Spec.PriorityClassName = "high"
			c.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: corev1.DoNotSchedule}}
			c.Spec.PodSecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)}
			c.Spec.SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(false)}
			c.Spec.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}}
			c.Spec.Storage.StorageClassName = ptr.To("fast")
		},
		check: func(t *testing.T, s *appsv1.StatefulSet) {
			p := s.Spec.Template.Spec
			if p.Affinity.NodeAffinity == nil || p.Affinity.PodAntiAffinity != nil || p.NodeSelector["disk"] != "ssd" ||
				p.PriorityClassName != "high" || len(p.Tolerations) != 1 || *p.SecurityContext.RunAsUser != 1000 ||
				p.Containers[0].SecurityContext.Privileged == nil || p.Containers[0].Resources.Requests.Cpu().String() != "250m" {
				t.Fatalf("pod spec %+v", p)
			}
			if tsc := p.TopologySpreadConstraints[0]; tsc.LabelSelector == nil || tsc.LabelSelector.MatchLabels[LabelInstance] != "kc" {
				t.Fatalf("spread constraint without the cluster's selector: %+v", tsc)
			}
			if *s.Spec.VolumeClaimTemplates[0].Spec.StorageClassName != "fast" {
				t.Fatal("storage class not used")
			}
		},
	}, {
		name:   "TLS disabled: no certificates, the health port stays",
		modify: func(c *kshakav1alpha1.KshakaCluster) { c.Spec.TLS.Mode = kshakav1alpha1.TLSModeDisabled },
		check: func(t *testing.T, s *appsv1.StatefulSet) {
			ctr := s.Spec.Template.Spec.Containers[0]
			if !slices.Equal(ctr.Args, []string{"--data-dir=/var/lib/kshaka", "--listen=:7400", "--metrics-listen=:9400", "--health-listen=:7401"}) {
				t.Fatalf("args %v", ctr.Args)
			}
			if len(s.Spec.Template.Spec.Volumes) != 0 || len(ctr.VolumeMounts) != 1 || ctr.ReadinessProbe.GRPC.Port != HealthPort {
				t.Fatalf("volumes %+v, mounts %+v", s.Spec.Template.Spec.Volumes, ctr.VolumeMounts)
			}
			pod := &corev1.Pod{Spec: s.Spec.Template.Spec}
			if PodServesTLS(pod) {
				t.Fatal("a pod without --tls-cert-file is taken for a TLS pod")
			}
		},
	}, {
		name: "CertManager mode mounts the same Secret",
		modify: func(c *kshakav1alpha1.KshakaCluster) {
			c.Spec.TLS.Mode = kshakav1alpha1.TLSModeCertManager
		},
		check: func(t *testing.T, s *appsv1.StatefulSet) {
			if vols := s.Spec.Template.Spec.Volumes; len(vols) != 1 || vols[0].Secret.SecretName != "kc-acceptor-tls" {
				t.Fatalf("volumes %+v", vols)
			}
			if !PodServesTLS(&corev1.Pod{Spec: s.Spec.Template.Spec}) {
				t.Fatal("PodServesTLS = false for a TLS pod")
			}
		},
	}, {
		name: "pod metadata, extra arguments and variables are added after the operator's",
		modify: func(c *kshakav1alpha1.KshakaCluster) {
			c.Spec.PodMetadata = &kshakav1alpha1.PodMetadata{
				Labels:      map[string]string{"team": "storage", "app.kubernetes.io/part-of": "payments"},
				Annotations: map[string]string{"sidecar.istio.io/inject": "false"},
			}
			c.Spec.ExtraArgs = []string{"--cache-size=268435456", "--max-value-size", "2097152"}
			c.Spec.Env = []corev1.EnvVar{{Name: "GOMAXPROCS", Value: "2"}, {Name: "KSHAKA_LOG_LEVEL", Value: "debug"}}
		},
		check: func(t *testing.T, s *appsv1.StatefulSet) {
			meta := s.Spec.Template.ObjectMeta
			if meta.Labels["team"] != "storage" || meta.Labels["app.kubernetes.io/part-of"] != "payments" || meta.Labels[LabelInstance] != "kc" || meta.Labels[LabelClusterUID] != "uid-1" {
				t.Fatalf("labels %v", meta.Labels)
			}
			if meta.Annotations["sidecar.istio.io/inject"] != "false" {
				t.Fatalf("annotations %v", meta.Annotations)
			}
			ctr := s.Spec.Template.Spec.Containers[0]
			if n := len(ctr.Args); n < 3 || !slices.Equal(ctr.Args[n-3:], []string{"--cache-size=268435456", "--max-value-size", "2097152"}) || ctr.Args[0] != "--data-dir=/var/lib/kshaka" {
				t.Fatalf("args %v: the user's come last", ctr.Args)
			}
			if n := len(ctr.Env); n != 5 || ctr.Env[0].Name != "POD_NAME" || ctr.Env[3].Name != "GOMAXPROCS" || ctr.Env[4].Value != "debug" {
				t.Fatalf("env %v", ctr.Env)
			}
		},
	}, {
		name: "a WAL volume is a second claim template, mounted and passed as --wal-dir",
		modify: func(c *kshakav1alpha1.KshakaCluster) {
			c.Spec.Storage.WAL = &kshakav1alpha1.VolumeSpec{StorageClassName: ptr.To("nvme"), Size: ptr.To(resource.MustParse("2Gi"))}
		},
		check: func(t *testing.T, s *appsv1.StatefulSet) {
			vcts := s.Spec.VolumeClaimTemplates
			if len(vcts) != 2 || vcts[1].Name != "wal" || *vcts[1].Spec.StorageClassName != "nvme" || !vcts[1].Spec.Resources.Requests.Storage().Equal(resource.MustParse("2Gi")) ||
				vcts[1].Labels[LabelClusterUID] != "uid-1" || vcts[0].Spec.StorageClassName != nil {
				t.Fatalf("claim templates %+v", vcts)
			}
			ctr := s.Spec.Template.Spec.Containers[0]
			if !slices.Contains(ctr.Args, "--wal-dir=/var/lib/kshaka-wal") {
				t.Fatalf("args %v", ctr.Args)
			}
			if !slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "wal" && m.MountPath == "/var/lib/kshaka-wal" }) {
				t.Fatalf("mounts %+v", ctr.VolumeMounts)
			}
			if got := WALPVCName(newCluster(3), 2); got != "wal-kc-2" {
				t.Fatalf("WALPVCName = %q", got)
			}
		},
	}, {
		name:   "PodIP mode changes nothing in the pods",
		modify: func(c *kshakav1alpha1.KshakaCluster) { c.Spec.AddressMode = kshakav1alpha1.AddressModePodIP },
		check: func(t *testing.T, s *appsv1.StatefulSet) {
			if s.Spec.ServiceName != "kc-peers" {
				t.Fatalf("service name %q", s.Spec.ServiceName)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(3)
			if tc.modify != nil {
				tc.modify(c)
			}
			tc.check(t, StatefulSet(c, 4))
		})
	}
}

func TestOperatorFlags(t *testing.T) {
	want := []string{"data-dir", "listen", "metrics-listen", "health-listen", "wal-dir", "tls-cert-file", "tls-key-file", "tls-client-ca-file", "admin-token", "admin-token-file"}
	if got := OperatorFlags(); !slices.Equal(got, want) {
		t.Fatalf("OperatorFlags() = %v, want %v", got, want)
	}
	env := OperatorEnvNames()
	for _, e := range []string{"POD_NAME", "POD_NAMESPACE", "POD_IP", "KSHAKA_DATA_DIR", "KSHAKA_WAL_DIR", "KSHAKA_TLS_CLIENT_CA_FILE", "KSHAKA_ADMIN_TOKEN_FILE"} {
		if !slices.Contains(env, e) {
			t.Errorf("OperatorEnvNames() = %v lacks %s", env, e)
		}
	}
}

func TestValidateSpec(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(c *kshakav1alpha1.KshakaCluster)
		want   []string // substrings of the error; none: valid
	}{
		{name: "defaults", modify: func(*kshakav1alpha1.KshakaCluster) {}},
		{name: "allowed knobs", modify: func(c *kshakav1alpha1.KshakaCluster) {
			c.Spec.PodMetadata = &kshakav1alpha1.PodMetadata{Labels: map[string]string{"app.kubernetes.io/part-of": "x", "team": "a"}, Annotations: map[string]string{"prometheus.io/scrape": "true"}}
			c.Spec.ExtraArgs = []string{"--cache-size=1048576", "-log-level=debug", "--tls-wait", "1m"}
			c.Spec.Env = []corev1.EnvVar{{Name: "KSHAKA_CACHE_SIZE", Value: "1"}, {Name: "GOMEMLIMIT", Value: "1GiB"}}
		}},
		{name: "reserved labels", modify: func(c *kshakav1alpha1.KshakaCluster) {
			c.Spec.PodMetadata = &kshakav1alpha1.PodMetadata{Labels: map[string]string{LabelInstance: "other", "kshaka.io/x": "y", "controller-revision-hash": "h"}}
		}, want: []string{`labels: "app.kubernetes.io/instance" is set by the operator`, `"kshaka.io/x"`, `"controller-revision-hash"`}},
		{name: "invalid label", modify: func(c *kshakav1alpha1.KshakaCluster) {
			c.Spec.PodMetadata = &kshakav1alpha1.PodMetadata{Labels: map[string]string{"a b": "c", "ok": "not valid!"}}
		}, want: []string{`"a b" is not a valid label key`, `labels["ok"]: "not valid!" is not a valid label value`}},
		{name: "reserved annotation", modify: func(c *kshakav1alpha1.KshakaCluster) {
			c.Spec.PodMetadata = &kshakav1alpha1.PodMetadata{Annotations: map[string]string{AnnotationSpecHash: "x"}}
		}, want: []string{`annotations: "kshaka.io/spec-hash" uses the operator's prefix`}},
		{name: "operator flags in every form", modify: func(c *kshakav1alpha1.KshakaCluster) {
			c.Spec.ExtraArgs = []string{"--listen=:1", "-data-dir", "/x", "--wal-dir=/w", "--tls-cert-file=a", "--admin-token=t", "--"}
		}, want: []string{`spec.extraArgs[0]: "--listen=:1" sets --listen`, `spec.extraArgs[1]: "-data-dir" sets --data-dir`, "extraArgs[3]", "extraArgs[4]", "extraArgs[5]", `spec.extraArgs[6]: "--" ends the flags`}},
		{name: "operator variables", modify: func(c *kshakav1alpha1.KshakaCluster) {
			c.Spec.Env = []corev1.EnvVar{{Name: "POD_IP", Value: "1.2.3.4"}, {Name: "KSHAKA_LISTEN", Value: ":1"}, {Name: "KSHAKA_TLS_KEY_FILE", Value: "k"}}
		}, want: []string{"spec.env[0]: POD_IP is set by the operator", "spec.env[1]: KSHAKA_LISTEN", "spec.env[2]: KSHAKA_TLS_KEY_FILE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(3)
			tc.modify(c)
			err := ValidateSpec(c)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("ValidateSpec: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateSpec accepted %+v", c.Spec)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestSpecHash(t *testing.T) {
	c := newCluster(3)
	a, b := StatefulSet(c, 3), StatefulSet(c, 5)
	if a.Annotations[AnnotationSpecHash] != b.Annotations[AnnotationSpecHash] {
		t.Error("the size changes the StatefulSet's hash; it must not (the operator sizes it)")
	}
	c.Spec.Version = "v2"
	if StatefulSet(c, 3).Annotations[AnnotationSpecHash] == a.Annotations[AnnotationSpecHash] {
		t.Error("a new version does not change the hash")
	}
	v2 := StatefulSet(c, 3).Annotations[AnnotationSpecHash]
	c.Spec.TLS.Mode = kshakav1alpha1.TLSModeDisabled
	if StatefulSet(c, 3).Annotations[AnnotationSpecHash] == v2 {
		t.Error("a change of TLS mode does not change the hash: the pods would not be rolled")
	}
}

func TestNetworkPolicy(t *testing.T) {
	c := newCluster(3)
	np := NetworkPolicy(c, "kshaka-system")
	if np.Name != "kc" || np.Spec.PodSelector.MatchLabels[LabelInstance] != "kc" || !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Fatalf("policy %+v", np.Spec)
	}
	if len(np.OwnerReferences) != 1 || np.OwnerReferences[0].UID != "uid-1" {
		t.Fatalf("owner %+v", np.OwnerReferences)
	}
	rules := np.Spec.Ingress
	if len(rules) != 3 {
		t.Fatalf("rules %+v", rules)
	}
	grpc, health, metrics := rules[0], rules[1], rules[2]
	if grpc.Ports[0].Port.IntVal != 7400 || len(grpc.From) != 3 {
		t.Fatalf("gRPC rule %+v", grpc)
	}
	if clients := grpc.From[0]; clients.NamespaceSelector != nil || clients.PodSelector == nil || len(clients.PodSelector.MatchLabels) != 0 {
		t.Fatalf("clients %+v: want every pod of the cluster's namespace", clients)
	}
	if op := grpc.From[1]; op.NamespaceSelector.MatchLabels[LabelNamespaceName] != "kshaka-system" {
		t.Fatalf("operator peer %+v", op)
	}
	jobs := grpc.From[2]
	sel, err := metav1.LabelSelectorAsSelector(jobs.PodSelector)
	if err != nil || jobs.NamespaceSelector != nil {
		t.Fatalf("backup Jobs' peer %+v: %v", jobs, err)
	}
	for comp, want := range map[string]bool{ComponentBackup: true, ComponentRestore: true, componentName: false} {
		if got := sel.Matches(labels.Set(TransferLabels(c, comp))); got != want {
			t.Errorf("the gRPC rule admits the pods of component %s: %v, want %v", comp, got, want)
		}
	}
	if health.Ports[0].Port.IntVal != HealthPort || health.From != nil {
		t.Fatalf("health rule %+v: the kubelet probes from the node", health)
	}
	if metrics.Ports[0].Port.IntVal != MetricsPort || metrics.From[0].NamespaceSelector.MatchLabels[LabelNamespaceName] != "ns" {
		t.Fatalf("metrics rule %+v", metrics)
	}

	c.Spec.NetworkPolicy = kshakav1alpha1.NetworkPolicySpec{
		ClientSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"kshaka-client": "true"}},
		ClientNamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}},
		OperatorSelector:        &kshakav1alpha1.PeerSelector{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "op"}}},
		MetricsSelector:         &kshakav1alpha1.PeerSelector{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelNamespaceName: "monitoring"}}},
	}
	rules = NetworkPolicy(c, "kshaka-system").Spec.Ingress
	if cl := rules[0].From[0]; cl.PodSelector.MatchLabels["kshaka-client"] != "true" || cl.NamespaceSelector.MatchLabels["team"] != "a" {
		t.Fatalf("clients %+v", cl)
	}
	if op := rules[0].From[1]; op.PodSelector.MatchLabels["app"] != "op" || op.NamespaceSelector.MatchLabels[LabelNamespaceName] != "kshaka-system" {
		t.Fatalf("operator %+v", op)
	}
	if m := rules[2].From[0]; m.NamespaceSelector.MatchLabels[LabelNamespaceName] != "monitoring" || len(m.PodSelector.MatchLabels) != 0 {
		t.Fatalf("metrics %+v", m)
	}
	c.Spec.NetworkPolicy.Enabled = ptr.To(false)
	if NetworkPolicy(c, "kshaka-system") != nil {
		t.Fatal("a disabled NetworkPolicy was built")
	}
}

func TestServices(t *testing.T) {
	c := newCluster(3)
	peers := PeerService(c)
	if peers.Spec.ClusterIP != corev1.ClusterIPNone || !peers.Spec.PublishNotReadyAddresses {
		t.Fatalf("peer service %+v: must be headless and publish not-ready (not yet admitted) acceptors", peers.Spec)
	}
	if len(peers.Spec.Ports) != 2 || peers.Spec.Ports[0].Port != 7400 || peers.Spec.Ports[1].Name != "metrics" {
		t.Fatalf("peer ports %+v", peers.Spec.Ports)
	}
	cl := ClientService(c)
	if cl.Name != "kc" || cl.Spec.Type != corev1.ServiceTypeClusterIP || cl.Spec.PublishNotReadyAddresses || cl.Spec.Selector[LabelInstance] != "kc" {
		t.Fatalf("client service %+v", cl.Spec)
	}
	c.Spec.Service = kshakav1alpha1.ServiceSpec{Port: 9000, Type: corev1.ServiceTypeLoadBalancer}
	cl = ClientService(c)
	if cl.Spec.Type != corev1.ServiceTypeLoadBalancer || cl.Spec.Ports[0].Port != 9000 || cl.Spec.Ports[0].TargetPort.StrVal != "grpc" {
		t.Fatalf("client service %+v", cl.Spec)
	}
}

func TestPodDisruptionBudget(t *testing.T) {
	for _, tc := range []struct {
		replicas int32
		want     bool
	}{{1, false}, {2, false}, {3, true}, {4, true}, {7, true}} {
		pdb := PodDisruptionBudget(newCluster(tc.replicas))
		if (pdb != nil) != tc.want {
			t.Errorf("replicas %d: PDB %v, want one: %v", tc.replicas, pdb, tc.want)
			continue
		}
		if pdb != nil && (pdb.Spec.MaxUnavailable.IntVal != 1 || pdb.Spec.MinAvailable != nil || pdb.Spec.Selector.MatchLabels[LabelInstance] != "kc") {
			t.Errorf("replicas %d: PDB spec %+v", tc.replicas, pdb.Spec)
		}
	}
}

func TestMergeKeyPages(t *testing.T) {
	k := func(ss ...string) [][]byte {
		var out [][]byte
		for _, s := range ss {
			out = append(out, []byte(s))
		}
		return out
	}
	str := func(bs [][]byte) []string {
		var out []string
		for _, b := range bs {
			out = append(out, string(b))
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		pages      [][][]byte
		limit      int
		want       []string
		wantCursor string
		wantDone   bool
	}{
		{"empty", [][][]byte{nil, nil}, 3, nil, "", true},
		{"all short: union, done", [][][]byte{k("a", "c"), k("b", "c")}, 3, []string{"a", "b", "c"}, "c", true},
		{"a full page bounds the batch", [][][]byte{k("a", "b", "c"), k("a", "d")}, 3, []string{"a", "b", "c"}, "c", false},
		{"smallest last key of the full pages", [][][]byte{k("a", "b", "e"), k("c", "d", "f"), k("b")}, 3, []string{"a", "b", "c", "d", "e"}, "e", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, cursor, done := MergeKeyPages(tc.pages, tc.limit)
			if !slices.Equal(str(keys), tc.want) || string(cursor) != tc.wantCursor || done != tc.wantDone {
				t.Fatalf("got %v, %q, %v; want %v, %q, %v", str(keys), cursor, done, tc.want, tc.wantCursor, tc.wantDone)
			}
		})
	}
}
