package controllers

import (
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete

// LabelNamespaceName is the label Kubernetes puts on every namespace with
// its name.
const LabelNamespaceName = "kubernetes.io/metadata.name"

// serviceAccountNamespaceFile is where a pod's service account namespace is
// mounted.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// NetworkPolicyName is the acceptors' NetworkPolicy.
func NetworkPolicyName(c *kshakav1alpha1.KshakaCluster) string { return c.Name }

// NetworkPolicyEnabled reports spec.networkPolicy.enabled (default true).
func NetworkPolicyEnabled(c *kshakav1alpha1.KshakaCluster) bool {
	return ptr.Deref(c.Spec.NetworkPolicy.Enabled, true)
}

// OwnNamespace is the namespace the operator runs in: $POD_NAMESPACE (the
// downward API), else the service account's namespace file; "" when it
// runs outside a cluster.
func OwnNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}

// policyPeer turns a PeerSelector into a NetworkPolicy peer; an unset namespace
// selector means namespace ns.
func policyPeer(sel *kshakav1alpha1.PeerSelector, ns string) networkingv1.NetworkPolicyPeer {
	var p networkingv1.NetworkPolicyPeer
	if sel != nil {
		p.NamespaceSelector = sel.NamespaceSelector.DeepCopy()
		p.PodSelector = sel.PodSelector.DeepCopy()
	}
	if p.NamespaceSelector == nil {
		p.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{LabelNamespaceName: ns}}
	}
	if p.PodSelector == nil {
		p.PodSelector = &metav1.LabelSelector{}
	}
	return p
}

// NetworkPolicy builds the acceptors' NetworkPolicy (ingress only) for an
// operator running in operatorNS, or returns nil when
// spec.networkPolicy.enabled is false. Ingress is admitted:
//
//   - on the gRPC port, from the clients (spec.networkPolicy.clientSelector
//     in clientNamespaceSelector's namespaces; default every pod of the
//     cluster's namespace), from the operator (operatorSelector; default
//     every pod of operatorNS) and from the cluster's backup and restore
//     Jobs (their pods' labels, TransferLabels);
//   - on the health port, from anywhere: the kubelet probes from the node;
//   - on the metrics port, from metricsSelector (default the cluster's
//     namespace).
//
// The Admin service listens on the gRPC port too: that only the operator may
// call it is enforced by the certificates' roles (docs/design.md §9.1); the
// policy decides who reaches the port at all. Acceptors never dial each
// other, so they are not admitted from one another. Egress is not limited.
func NetworkPolicy(c *kshakav1alpha1.KshakaCluster, operatorNS string) *networkingv1.NetworkPolicy {
	if !NetworkPolicyEnabled(c) {
		return nil
	}
	np := c.Spec.NetworkPolicy
	tcp := ptr.To(corev1.ProtocolTCP)
	port := func(p int32) []networkingv1.NetworkPolicyPort {
		return []networkingv1.NetworkPolicyPort{{Protocol: tcp, Port: ptr.To(intstr.FromInt32(p))}}
	}
	clients := policyPeer(&kshakav1alpha1.PeerSelector{NamespaceSelector: np.ClientNamespaceSelector, PodSelector: np.ClientSelector}, c.Namespace)
	if np.ClientNamespaceSelector == nil {
		// The policy's own namespace: a pod selector alone.
		clients.NamespaceSelector = nil
	}
	p := &networkingv1.NetworkPolicy{
		ObjectMeta: objectMeta(c, NetworkPolicyName(c)),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: SelectorLabels(c)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{Ports: port(Port(c)), From: []networkingv1.NetworkPolicyPeer{clients, policyPeer(np.OperatorSelector, operatorNS), transferPeer(c)}},
				{Ports: port(HealthPort)},
				{Ports: port(MetricsPort), From: []networkingv1.NetworkPolicyPeer{policyPeer(np.MetricsSelector, c.Namespace)}},
			},
		},
	}
	return withHash(p, p.Spec)
}

// transferPeer selects the pods of c's backup and restore Jobs, in c's
// namespace.
func transferPeer(c *kshakav1alpha1.KshakaCluster) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{
		MatchLabels: map[string]string{LabelName: appName, LabelInstance: c.Name},
		MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: LabelComponent, Operator: metav1.LabelSelectorOpIn, Values: []string{ComponentBackup, ComponentRestore},
		}},
	}}
}

func copyNetworkPolicy(want, have *networkingv1.NetworkPolicy) bool {
	if sameHash(want, have) {
		return false
	}
	copyMeta(want, have)
	have.Spec = want.Spec
	return true
}
