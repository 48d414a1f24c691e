package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// Labels, annotations and fixed names of the objects the operator owns.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelClusterUID carries the KshakaCluster's UID on pods and volume
	// claims, so they are selected by owner identity, not by name alone.
	LabelClusterUID = "kshaka.io/cluster-uid"

	// AnnotationSpecHash is the hash of the desired object the operator last
	// applied; an object is updated when it differs.
	AnnotationSpecHash = "kshaka.io/spec-hash"
	// AnnotationRetire lists incarnations (comma-separated, 16 hex digits) a
	// person asserts will never come back (docs/design.md §4): the operator retires
	// and removes them even though their pods are unreachable. Like a
	// StatefulSet force delete, it is unsafe if such an acceptor returns
	// with its old disk.
	AnnotationRetire = "kshaka.io/retire-incarnations"

	appName       = "kshaka"
	componentName = "acceptor"
	managerName   = "kshaka-operator"
	containerName = "acceptor"
	portName      = "grpc"
	metricsName   = "metrics"
	// MetricsPort is the acceptors' Prometheus port.
	MetricsPort = 9400
	volumeName  = "data"
	dataDir     = "/var/lib/kshaka"
	// walVolumeName is the claim template of spec.storage.wal, mounted at
	// walDir and passed as --wal-dir.
	walVolumeName = "wal"
	walDir        = "/var/lib/kshaka-wal"
	// nonRootUID is the distroless "nonroot" user.
	nonRootUID = 65532
)

// PeerServiceName is the headless Service that gives each acceptor a DNS name.
func PeerServiceName(c *kshakav1alpha1.KshakaCluster) string { return c.Name + "-peers" }

// ClientServiceName is the Service proposers bootstrap from.
func ClientServiceName(c *kshakav1alpha1.KshakaCluster) string { return c.Name }

// StatefulSetName is the acceptors' StatefulSet.
func StatefulSetName(c *kshakav1alpha1.KshakaCluster) string { return c.Name }

// PDBName is the acceptors' PodDisruptionBudget.
func PDBName(c *kshakav1alpha1.KshakaCluster) string { return c.Name }

// PodName is the name of the acceptor pod with the given ordinal; it is
// also the member ID.
func PodName(c *kshakav1alpha1.KshakaCluster, ordinal int32) string {
	return fmt.Sprintf("%s-%d", StatefulSetName(c), ordinal)
}

// PVCName is the volume claim of the pod with the given ordinal, as the
// StatefulSet controller names it.
func PVCName(c *kshakav1alpha1.KshakaCluster, ordinal int32) string {
	return volumeName + "-" + PodName(c, ordinal)
}

// WALPVCName is the write-ahead log's volume claim of the pod with the given
// ordinal (spec.storage.wal).
func WALPVCName(c *kshakav1alpha1.KshakaCluster, ordinal int32) string {
	return walVolumeName + "-" + PodName(c, ordinal)
}

// Ordinal parses the ordinal out of a pod name (or member ID) of c; ok is
// false when the name is not one of c's pods.
func Ordinal(c *kshakav1alpha1.KshakaCluster, podName string) (int32, bool) {
	rest, ok := strings.CutPrefix(podName, StatefulSetName(c)+"-")
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 32)
	if err != nil || n < 0 {
		return 0, false
	}
	return int32(n), true
}

// SelectorLabels select c's acceptor pods.
func SelectorLabels(c *kshakav1alpha1.KshakaCluster) map[string]string {
	return map[string]string{
		LabelName:      appName,
		LabelInstance:  c.Name,
		LabelComponent: componentName,
	}
}

// Labels are put on every object owned by c.
func Labels(c *kshakav1alpha1.KshakaCluster) map[string]string {
	l := SelectorLabels(c)
	l[LabelManagedBy] = managerName
	return l
}

// podLabels add the cluster UID to Labels.
func podLabels(c *kshakav1alpha1.KshakaCluster) map[string]string {
	l := Labels(c)
	l[LabelClusterUID] = string(c.UID)
	return l
}

// Port returns the acceptors' gRPC port.
func Port(c *kshakav1alpha1.KshakaCluster) int32 {
	if c.Spec.Service.Port == 0 {
		return 7400
	}
	return c.Spec.Service.Port
}

// DNSAddress is the address of an acceptor pod in DNS address mode:
// <pod>.<peer-service>.<namespace>.svc:<port>.
func DNSAddress(c *kshakav1alpha1.KshakaCluster, podName string) string {
	return fmt.Sprintf("%s.%s.%s.svc:%d", podName, PeerServiceName(c), c.Namespace, Port(c))
}

// PodIPAddress is the address of an acceptor pod in PodIP address mode:
// <podIP>:<port>, or "" while the pod has no IP.
func PodIPAddress(c *kshakav1alpha1.KshakaCluster, pod *corev1.Pod) string {
	if pod.Status.PodIP == "" {
		return ""
	}
	ip := pod.Status.PodIP
	if strings.Contains(ip, ":") {
		ip = "[" + ip + "]"
	}
	return fmt.Sprintf("%s:%d", ip, Port(c))
}

// Address is the default AddressResolver: DNSAddress or PodIPAddress,
// according to spec.addressMode.
func Address(c *kshakav1alpha1.KshakaCluster, pod *corev1.Pod) string {
	if c.Spec.AddressMode == kshakav1alpha1.AddressModePodIP {
		return PodIPAddress(c, pod)
	}
	return DNSAddress(c, pod.Name)
}

func ownerRef(c *kshakav1alpha1.KshakaCluster) metav1.OwnerReference {
	return *metav1.NewControllerRef(c, kshakav1alpha1.GroupVersion.WithKind("KshakaCluster"))
}

func objectMeta(c *kshakav1alpha1.KshakaCluster, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       c.Namespace,
		Labels:          Labels(c),
		OwnerReferences: []metav1.OwnerReference{ownerRef(c)},
	}
}

func servicePorts(c *kshakav1alpha1.KshakaCluster) []corev1.ServicePort {
	return []corev1.ServicePort{{
		Name:        portName,
		Port:        Port(c),
		TargetPort:  intstr.FromString(portName),
		Protocol:    corev1.ProtocolTCP,
		AppProtocol: ptr.To("grpc"),
	}}
}

// peerServicePorts add the metrics port, so a ServiceMonitor can select the
// headless Service and scrape every acceptor.
func peerServicePorts(c *kshakav1alpha1.KshakaCluster) []corev1.ServicePort {
	return append(servicePorts(c), corev1.ServicePort{
		Name:       metricsName,
		Port:       MetricsPort,
		TargetPort: intstr.FromString(metricsName),
		Protocol:   corev1.ProtocolTCP,
	})
}

// PeerService builds the headless Service that gives every acceptor pod a
// DNS name. Not-ready pods are published too: a new acceptor is not ready
// until it is admitted, and the operator (and, after the joint configuration,
// proposers) must reach it before that.
func PeerService(c *kshakav1alpha1.KshakaCluster) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: objectMeta(c, PeerServiceName(c)),
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			Selector:                 SelectorLabels(c),
			Ports:                    peerServicePorts(c),
			PublishNotReadyAddresses: true,
		},
	}
	return withHash(s, s.Spec)
}

// ClientService builds the Service proposers bootstrap from (GetConfig). It
// routes only to ready, that is admitted, acceptors.
func ClientService(c *kshakav1alpha1.KshakaCluster) *corev1.Service {
	t := c.Spec.Service.Type
	if t == "" {
		t = corev1.ServiceTypeClusterIP
	}
	s := &corev1.Service{
		ObjectMeta: objectMeta(c, ClientServiceName(c)),
		Spec: corev1.ServiceSpec{
			Type:     t,
			Selector: SelectorLabels(c),
			Ports:    servicePorts(c),
		},
	}
	return withHash(s, s.Spec)
}

// PodDisruptionBudget builds the PDB, maxUnavailable 1, for clusters of
// three or more replicas. It returns nil for smaller clusters: with one or
// two acceptors any disruption loses the quorum, and a budget that allows
// none would block node drains forever.
func PodDisruptionBudget(c *kshakav1alpha1.KshakaCluster) *policyv1.PodDisruptionBudget {
	if c.Spec.Replicas < 3 {
		return nil
	}
	p := &policyv1.PodDisruptionBudget{
		ObjectMeta: objectMeta(c, PDBName(c)),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: SelectorLabels(c)},
		},
	}
	return withHash(p, p.Spec)
}

// StorageSize is each acceptor's volume size (default 1Gi).
func StorageSize(c *kshakav1alpha1.KshakaCluster) resource.Quantity {
	if c.Spec.Storage.Size == nil {
		return resource.MustParse("1Gi")
	}
	return *c.Spec.Storage.Size
}

// WALSize is the size of each acceptor's write-ahead log volume (default
// 1Gi); ok is false when spec.storage.wal is unset.
func WALSize(c *kshakav1alpha1.KshakaCluster) (q resource.Quantity, ok bool) {
	w := c.Spec.Storage.WAL
	if w == nil {
		return q, false
	}
	if w.Size == nil {
		return resource.MustParse("1Gi"), true
	}
	return *w.Size, true
}

// claimTemplate is a volume claim template of the StatefulSet.
func claimTemplate(name string, class *string, size resource.Quantity, labels map[string]string) corev1.PersistentVolumeClaim {
	return corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: class,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: size},
			},
		},
	}
}

// claimTemplates are the data volume's and, with spec.storage.wal, the
// write-ahead log's claim templates, with the sizes the spec asks for.
func claimTemplates(c *kshakav1alpha1.KshakaCluster) []corev1.PersistentVolumeClaim {
	labels := podLabels(c)
	t := []corev1.PersistentVolumeClaim{claimTemplate(volumeName, c.Spec.Storage.StorageClassName, StorageSize(c), labels)}
	if size, ok := WALSize(c); ok {
		t = append(t, claimTemplate(walVolumeName, c.Spec.Storage.WAL.StorageClassName, size, labels))
	}
	return t
}

// Image is the acceptor image reference: image:version.
func Image(c *kshakav1alpha1.KshakaCluster) string {
	if c.Spec.Version == "" {
		return c.Spec.Image
	}
	return c.Spec.Image + ":" + c.Spec.Version
}

// StatefulSet builds the acceptors' StatefulSet with the given number of
// replicas, which the decision function chooses: the StatefulSet grows before
// a member is added and shrinks only after a member is removed.
//
// Pods are created in parallel and never replaced by the StatefulSet
// controller (OnDelete): the operator orders restarts itself. Volume claims
// are retained on scale down; the operator deletes them last (docs/design.md §5).
//
// The pod template carries spec.podMetadata (the operator's labels win),
// spec.extraArgs after the operator's arguments and spec.env after its
// variables; ValidateSpec refuses those that would override the
// operator's. With spec.storage.wal, a second claim template "wal" is
// mounted at /var/lib/kshaka-wal and passed as --wal-dir. The claim
// templates follow spec.storage's sizes; as a StatefulSet's claim templates
// cannot change, a resize recreates the StatefulSet (volumes.go).
func StatefulSet(c *kshakav1alpha1.KshakaCluster, replicas int32) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{
		ObjectMeta: objectMeta(c, StatefulSetName(c)),
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(replicas),
			ServiceName:         PeerServiceName(c),
			Selector:            &metav1.LabelSelector{MatchLabels: SelectorLabels(c)},
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: podTemplateMeta(c),
				Spec:       podSpec(c),
			},
			VolumeClaimTemplates: claimTemplates(c),
		},
	}
	// The hash covers everything but the number of replicas, which the
	// operator changes on its own schedule.
	spec := s.Spec
	spec.Replicas = nil
	return withHash(s, spec)
}

// podTemplateMeta is the pod template's metadata: spec.podMetadata with the
// operator's labels over it.
func podTemplateMeta(c *kshakav1alpha1.KshakaCluster) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Labels: map[string]string{}}
	if pm := c.Spec.PodMetadata; pm != nil {
		for k, v := range pm.Labels {
			m.Labels[k] = v
		}
		if len(pm.Annotations) > 0 {
			m.Annotations = map[string]string{}
			for k, v := range pm.Annotations {
				m.Annotations[k] = v
			}
		}
	}
	for k, v := range podLabels(c) {
		m.Labels[k] = v
	}
	return m
}

// operatorEnv are the variables the operator sets on the acceptor
// container.
func operatorEnv() []corev1.EnvVar {
	return []corev1.EnvVar{
		fieldEnv("POD_NAME", "metadata.name"),
		fieldEnv("POD_NAMESPACE", "metadata.namespace"),
		fieldEnv("POD_IP", "status.podIP"),
	}
}

func podSpec(c *kshakav1alpha1.KshakaCluster) corev1.PodSpec {
	port := Port(c)
	container := corev1.Container{
		Name:            containerName,
		Image:           Image(c),
		ImagePullPolicy: c.Spec.ImagePullPolicy,
		Args: []string{
			"--data-dir=" + dataDir,
			fmt.Sprintf("--listen=:%d", port),
			fmt.Sprintf("--metrics-listen=:%d", MetricsPort),
			fmt.Sprintf("--health-listen=:%d", HealthPort),
		},
		Env: operatorEnv(),
		Ports: []corev1.ContainerPort{
			{Name: portName, ContainerPort: port, Protocol: corev1.ProtocolTCP},
			{Name: metricsName, ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP},
			{Name: healthName, ContainerPort: HealthPort, Protocol: corev1.ProtocolTCP},
		},
		// Ready means admitted: the acceptor's gRPC health is SERVING only
		// once its configuration lists it. It is asked on the plaintext
		// health port, as the kubelet presents no client certificate.
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: HealthPort}},
			PeriodSeconds:    5,
			TimeoutSeconds:   2,
			FailureThreshold: 2,
		},
		// Live means the server answers at all: a healthy acceptor that is
		// not (yet) admitted must not be restarted, so not the gRPC health
		// (NOT_SERVING until admitted) but a TCP connection, which needs no
		// certificate either.
		LivenessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(portName)}},
			PeriodSeconds:    10,
			TimeoutSeconds:   2,
			FailureThreshold: 6,
		},
		Resources:       c.Spec.Resources,
		SecurityContext: containerSecurityContext(c),
		VolumeMounts:    []corev1.VolumeMount{{Name: volumeName, MountPath: dataDir}},
	}
	affinity := c.Spec.Affinity
	if affinity == nil {
		affinity = defaultAffinity(c)
	}
	tsc := make([]corev1.TopologySpreadConstraint, len(c.Spec.TopologySpreadConstraints))
	for i, t := range c.Spec.TopologySpreadConstraints {
		t.DeepCopyInto(&tsc[i])
		if tsc[i].LabelSelector == nil {
			tsc[i].LabelSelector = &metav1.LabelSelector{MatchLabels: SelectorLabels(c)}
		}
	}
	if len(tsc) == 0 {
		tsc = nil
	}
	if _, ok := WALSize(c); ok {
		container.Args = append(container.Args, "--wal-dir="+walDir)
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: walVolumeName, MountPath: walDir})
	}
	var volumes []corev1.Volume
	if TLSEnabled(c) {
		withTLS(c, &container)
		volumes = append(volumes, corev1.Volume{Name: tlsVolume, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: AcceptorTLSSecretName(c)},
		}})
	}
	// The user's arguments and variables come last; ValidateSpec refuses
	// those that would override the operator's.
	container.Args = append(container.Args, c.Spec.ExtraArgs...)
	for _, e := range c.Spec.Env {
		container.Env = append(container.Env, *e.DeepCopy())
	}
	return corev1.PodSpec{
		Containers:                    []corev1.Container{container},
		Volumes:                       volumes,
		Affinity:                      affinity,
		Tolerations:                   c.Spec.Tolerations,
		NodeSelector:                  c.Spec.NodeSelector,
		TopologySpreadConstraints:     tsc,
		PriorityClassName:             c.Spec.PriorityClassName,
		SecurityContext:               podSecurityContext(c),
		ImagePullSecrets:              c.Spec.ImagePullSecrets,
		AutomountServiceAccountToken:  ptr.To(false),
		EnableServiceLinks:            ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To[int64](30),
	}
}

// withTLS makes the acceptor serve mutual TLS (docs/design.md §9.2): its
// own pair, picked by pod name from <cluster>-acceptor-tls mounted at
// TLSMountPath, client certificates verified by the bundle's CAs, and the
// files waited for (a new pod may start before its certificate is written,
// in mode CertManager) and reloaded when they change.
func withTLS(c *kshakav1alpha1.KshakaCluster, ctr *corev1.Container) {
	ctr.Args = append(ctr.Args,
		"--tls-cert-file="+TLSMountPath+"/$(POD_NAME).crt",
		"--tls-key-file="+TLSMountPath+"/$(POD_NAME).key",
		"--tls-client-ca-file="+TLSMountPath+"/"+KeyCACert,
	)
	ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: tlsVolume, MountPath: TLSMountPath, ReadOnly: true})
}

// PodServesTLS reports whether pod's acceptor was started with TLS (its
// container has --tls-cert-file), whatever the cluster's spec says now: the
// operator dials each pod as it was started, so it keeps reaching every
// acceptor while a change of spec.tls.mode rolls through the pods.
func PodServesTLS(pod *corev1.Pod) bool {
	for _, ctr := range pod.Spec.Containers {
		if ctr.Name != containerName {
			continue
		}
		for _, a := range ctr.Args {
			if strings.HasPrefix(a, "--tls-cert-file=") {
				return true
			}
		}
	}
	return false
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
}

// defaultAffinity prefers spreading acceptors across nodes. It is only a
// preference: "required" leaves pods Pending on small clusters.
func defaultAffinity(c *kshakav1alpha1.KshakaCluster) *corev1.Affinity {
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				LabelSelector: &metav1.LabelSelector{MatchLabels: SelectorLabels(c)},
				TopologyKey:   corev1.LabelHostname,
			},
		}},
	}}
}

// podSecurityContext defaults to what the "restricted" Pod Security Standard
// requires, with fsGroup so the volume is writable.
func podSecurityContext(c *kshakav1alpha1.KshakaCluster) *corev1.PodSecurityContext {
	if c.Spec.PodSecurityContext != nil {
		return c.Spec.PodSecurityContext
	}
	return &corev1.PodSecurityContext{
		RunAsNonRoot:        ptr.To(true),
		RunAsUser:           ptr.To[int64](nonRootUID),
		RunAsGroup:          ptr.To[int64](nonRootUID),
		FSGroup:             ptr.To[int64](nonRootUID),
		FSGroupChangePolicy: ptr.To(corev1.FSGroupChangeOnRootMismatch),
		SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func containerSecurityContext(c *kshakav1alpha1.KshakaCluster) *corev1.SecurityContext {
	if c.Spec.SecurityContext != nil {
		return c.Spec.SecurityContext
	}
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// withHash stamps obj with the hash of its desired spec.
func withHash[T metav1.Object](obj T, spec any) T {
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationSpecHash] = specHash(spec)
	obj.SetAnnotations(a)
	return obj
}

func specHash(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Every type hashed here is a Kubernetes API struct, which always
		// marshals.
		panic(fmt.Sprintf("kshaka: hashing a spec: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// Reserved prefixes of spec.podMetadata keys: the operator's own labels and
// annotations.
var reservedMetadataPrefixes = []string{"kshaka.io/"}

// reservedLabels are the pod labels the operator and the StatefulSet
// controller set; spec.podMetadata.labels may not name them.
var reservedLabels = []string{
	LabelName, LabelInstance, LabelComponent, LabelManagedBy, LabelClusterUID,
	appsv1.ControllerRevisionHashLabelKey, appsv1.StatefulSetPodNameLabel, appsv1.PodIndexLabel,
}

// extraReservedFlags are acceptor flags the operator does not set but that
// would lock it out: it presents no admin token.
var extraReservedFlags = []string{"admin-token", "admin-token-file"}

// OperatorFlags are the acceptor flags the operator sets itself, in any
// mode (TLS, a WAL volume), and the ones that would lock it out; spec.extraArgs
// may not name them. They are read from the arguments podSpec builds, so
// the list follows the builder.
func OperatorFlags() []string {
	c := &kshakav1alpha1.KshakaCluster{}
	c.Spec.Storage.WAL = &kshakav1alpha1.VolumeSpec{}
	c.Spec.TLS.Mode = kshakav1alpha1.TLSModeOperator
	seen := map[string]bool{}
	var out []string
	for _, a := range podSpec(c).Containers[0].Args {
		if name, _, ok := flagName(a); ok && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return append(out, extraReservedFlags...)
}

// flagEnv is the environment variable kshaka-acceptor reads for a flag
// (cmd/kshaka-acceptor: KSHAKA_ and the name in upper case, - as _).
func flagEnv(flag string) string {
	return "KSHAKA_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// OperatorEnvNames are the environment variables spec.env may not set: the
// operator's own (POD_NAME, POD_NAMESPACE, POD_IP) and the KSHAKA_*
// variable of every flag of OperatorFlags.
func OperatorEnvNames() []string {
	var out []string
	for _, e := range operatorEnv() {
		out = append(out, e.Name)
	}
	for _, f := range OperatorFlags() {
		out = append(out, flagEnv(f))
	}
	return out
}

// flagName parses a command-line element: "--name=value", "-name=value",
// "--name" or "-name" give name; ok is false for anything else.
func flagName(arg string) (name string, hasValue bool, ok bool) {
	if !strings.HasPrefix(arg, "-") || arg == "-" || arg == "--" {
		return "", false, false
	}
	s := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	name, _, hasValue = strings.Cut(s, "=")
	return name, hasValue, name != ""
}

// ValidateSpec checks what the CRD's schema cannot: that spec.podMetadata,
// spec.extraArgs and spec.env do not override what the operator sets. It
// reports every problem at once; nil means valid. The operator does not
// change the StatefulSet of a cluster whose spec is invalid (its pods keep
// running as they are) and says why in the Degraded condition (reason
// InvalidSpec).
func ValidateSpec(c *kshakav1alpha1.KshakaCluster) error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if pm := c.Spec.PodMetadata; pm != nil {
		for _, k := range sortedKeys(pm.Labels) {
			switch {
			case slices.Contains(reservedLabels, k) || hasReservedPrefix(k):
				bad("spec.podMetadata.labels: %q is set by the operator (reserved: %s and the %s prefix); remove it", k, strings.Join(reservedLabels, ", "), strings.Join(reservedMetadataPrefixes, ", "))
			case len(validation.IsQualifiedName(k)) > 0:
				bad("spec.podMetadata.labels: %q is not a valid label key: %s", k, strings.Join(validation.IsQualifiedName(k), "; "))
			case len(validation.IsValidLabelValue(pm.Labels[k])) > 0:
				bad("spec.podMetadata.labels[%q]: %q is not a valid label value: %s", k, pm.Labels[k], strings.Join(validation.IsValidLabelValue(pm.Labels[k]), "; "))
			}
		}
		for _, k := range sortedKeys(pm.Annotations) {
			switch {
			case hasReservedPrefix(k):
				bad("spec.podMetadata.annotations: %q uses the operator's prefix %s; remove it", k, strings.Join(reservedMetadataPrefixes, ", "))
			case len(validation.IsQualifiedName(strings.ToLower(k))) > 0:
				bad("spec.podMetadata.annotations: %q is not a valid annotation key: %s", k, strings.Join(validation.IsQualifiedName(strings.ToLower(k)), "; "))
			}
		}
	}
	flags := OperatorFlags()
	for i, a := range c.Spec.ExtraArgs {
		if a == "--" {
			bad("spec.extraArgs[%d]: \"--\" ends the flags, and kshaka-acceptor takes no other arguments; remove it", i)
			continue
		}
		if name, _, ok := flagName(a); ok && slices.Contains(flags, name) {
			bad("spec.extraArgs[%d]: %q sets --%s, which the operator sets itself (it may not be set: %s); remove it", i, a, name, "--"+strings.Join(flags, ", --"))
		}
	}
	envs := OperatorEnvNames()
	for i, e := range c.Spec.Env {
		if slices.Contains(envs, e.Name) {
			bad("spec.env[%d]: %s is set by the operator or sets a flag it sets (it may not be set: %s); remove it", i, e.Name, strings.Join(envs, ", "))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}

func hasReservedPrefix(k string) bool {
	for _, p := range reservedMetadataPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
