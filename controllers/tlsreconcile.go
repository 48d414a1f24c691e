package controllers

import (
	"context"
	"errors"
	"fmt"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// Condition reasons of NetworkPolicyReady.
const (
	ReasonNetworkPolicyApplied  = "Applied"
	ReasonNetworkPolicyDisabled = "Disabled"
	// ReasonOperatorNamespaceUnknown: the operator does not know its own
	// namespace (it runs outside the cluster) and
	// spec.networkPolicy.operatorSelector names none, so the policy would
	// shut the operator out; it is not applied.
	ReasonOperatorNamespaceUnknown = "OperatorNamespaceUnknown"
)

// tlsObserved is what one reconcile read of the cluster's TLS objects.
type tlsObserved struct {
	Secrets TLSSecrets
	// Certificates the cluster controls, by name (read in mode CertManager,
	// and when Secrets issued by cert-manager are left from it).
	Certificates map[string]*cmv1.Certificate
	// CertManagerInstalled: the Certificate kind is served (known only
	// when Certificates were read).
	CertManagerInstalled bool
}

// readTLS reads the cluster's TLS Secrets, selected by its labels (those
// cert-manager writes carry them through the Certificates' secretTemplate),
// and, when needed, its Certificates.
func (r *Reconciler) readTLS(ctx context.Context, c *kshakav1alpha1.KshakaCluster) (tlsObserved, error) {
	obs := tlsObserved{Secrets: TLSSecrets{Extras: map[string]*corev1.Secret{}, Issued: map[string]*corev1.Secret{}}}
	var list corev1.SecretList
	if err := r.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingLabels(Labels(c))); err != nil {
		return obs, fmt.Errorf("while listing Secrets: %w", err)
	}
	s := &obs.Secrets
	for i := range list.Items {
		sec := &list.Items[i]
		if !sec.DeletionTimestamp.IsZero() {
			continue
		}
		if _, ok := sec.Annotations[cmv1.CertificateNameKey]; ok {
			s.Issued[sec.Name] = sec
			continue
		}
		switch sec.Name {
		case CASecretName(c):
			s.CA = sec
		case AcceptorTLSSecretName(c):
			s.Acceptor = sec
		case OperatorTLSSecretName(c):
			s.Operator = sec
		case ClientTLSSecretName(c):
			s.Client = sec
		default:
			if n, ok := sec.Annotations[annotationExtraClient]; ok && metav1.IsControlledBy(sec, c) && sec.Name == ExtraClientSecretName(c, n) {
				s.Extras[n] = sec
			}
		}
	}
	if TLSMode(c) != kshakav1alpha1.TLSModeCertManager && len(s.Issued) == 0 {
		return obs, nil
	}
	var certs cmv1.CertificateList
	err := r.List(ctx, &certs, client.InNamespace(c.Namespace), client.MatchingLabels(Labels(c)))
	switch {
	case meta.IsNoMatchError(err):
		return obs, nil
	case err != nil:
		return obs, fmt.Errorf("while listing cert-manager Certificates: %w", err)
	}
	obs.CertManagerInstalled = true
	obs.Certificates = map[string]*cmv1.Certificate{}
	for i := range certs.Items {
		if crt := &certs.Items[i]; metav1.IsControlledBy(crt, c) {
			obs.Certificates[crt.Name] = crt
		}
	}
	return obs, nil
}

// acceptorsOf returns the Acceptors of c: through Dial, when r.Acceptors is
// a Dialer, with the operator's certificate (admin role) and a trust bundle
// made of the acceptors' and the operator's Secrets' ca.crt; pods started
// without TLS are dialled in plaintext.
func (r *Reconciler) acceptorsOf(c *kshakav1alpha1.KshakaCluster, obs tlsObserved, pods map[int32]PodInfo) Acceptors {
	d, ok := r.Acceptors.(Dialer)
	if !ok {
		return r.Acceptors
	}
	t := Transport{Cluster: c.Namespace + "/" + c.Name, Plaintext: map[string]bool{}}
	for _, p := range pods {
		if !p.TLS && p.Address != "" {
			t.Plaintext[p.Address] = true
		}
	}
	op := obs.Secrets.Operator
	if issued := obs.Secrets.Issued[OperatorTLSSecretName(c)]; issued != nil && (op == nil || TLSMode(c) == kshakav1alpha1.TLSModeCertManager) {
		op = issued
	}
	if op == nil {
		t.NoTLS = fmt.Sprintf("Secret %s/%s does not exist yet", c.Namespace, OperatorTLSSecretName(c))
	} else {
		var bundle []byte
		if obs.Secrets.Acceptor != nil {
			bundle = append(bundle, obs.Secrets.Acceptor.Data[KeyCACert]...)
		}
		bundle = append(bundle, op.Data[KeyCACert]...)
		m, err := ParseClientTLS(op.Data[corev1.TLSCertKey], op.Data[corev1.TLSPrivateKeyKey], bundle)
		if err != nil {
			t.NoTLS = fmt.Sprintf("Secret %s/%s: %v", c.Namespace, op.Name, err)
		}
		t.TLS = m
	}
	return d.Dial(t)
}

// tlsWork is one reconcile's TLS plan with mode CertManager's
// Certificates.
type tlsWork struct {
	TLSPlan
	certificates, deleteCertificates []*cmv1.Certificate
}

// planTLS plans the cluster's certificates for its mode, keeping pairs for
// the pods 0..replicas-1 the StatefulSet is about to run.
func (r *Reconciler) planTLS(c *kshakav1alpha1.KshakaCluster, obs tlsObserved, o Observed, replicas int32) tlsWork {
	in := TLSInput{Cluster: c, Secrets: obs.Secrets, Pods: o.Pods, Ordinals: replicas, Now: o.Now,
		Propagation: r.TrustPropagation, Domain: r.ClusterDomain}
	var w tlsWork
	switch mode := TLSMode(c); {
	case mode != kshakav1alpha1.TLSModeCertManager && len(obs.Secrets.Issued) > 0:
		w.TLSPlan = leaveCertManager(c, obs)
		for _, crt := range obs.Certificates {
			w.deleteCertificates = append(w.deleteCertificates, crt)
		}
	case mode == kshakav1alpha1.TLSModeCertManager:
		p := PlanCertManager(CertManagerInput{TLSInput: in, Installed: obs.CertManagerInstalled, Certificates: obs.Certificates})
		w.TLSPlan, w.certificates, w.deleteCertificates = p.TLSPlan, p.Certificates, p.DeleteCertificates
	default:
		w.TLSPlan = PlanTLS(in)
	}
	if c.Spec.Paused && (len(w.Writes) > 0 || len(w.Deletes) > 0 || len(w.deleteCertificates) > 0) {
		w.Condition = metav1.Condition{Type: kshakav1alpha1.ConditionTLSReady, Status: metav1.ConditionFalse, Reason: ReasonTLSPaused,
			Message: fmt.Sprintf("spec.paused is set: %d certificate Secrets are due to be written, and are not", len(w.Writes)+len(w.Deletes))}
	}
	return w
}

// leaveCertManager plans the first step out of mode CertManager: the
// Secrets cert-manager wrote for the cluster's Certificates go (with the
// Certificates, so that cert-manager does not write them again), and the
// new mode's Secrets are made from the next reconcile on.
func leaveCertManager(c *kshakav1alpha1.KshakaCluster, obs tlsObserved) TLSPlan {
	p := TLSPlan{Status: &kshakav1alpha1.TLSStatus{Mode: TLSMode(c)}}
	for _, s := range obs.Secrets.Issued {
		p.Deletes = append(p.Deletes, s)
	}
	p.Condition = metav1.Condition{Type: kshakav1alpha1.ConditionTLSReady, Status: metav1.ConditionFalse, Reason: ReasonTLSError,
		Message: fmt.Sprintf("leaving mode CertManager: deleting the cluster's cert-manager Certificates and the %d Secrets they wrote", len(p.Deletes))}
	p.due(1)
	return p
}

// applyTLS writes the plan's Secrets in order, then deletes, then applies
// mode CertManager's Certificates. Every write is conditional on what was
// read (creates fail on an existing object, updates on a changed one), so
// a stale plan writes nothing.
func (r *Reconciler) applyTLS(ctx context.Context, c *kshakav1alpha1.KshakaCluster, w tlsWork) error {
	for _, s := range w.Writes {
		if s.ResourceVersion == "" {
			err := r.Create(ctx, s)
			if apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("while creating Secret %s: it exists and is not this KshakaCluster's (the operator does not adopt it): %w", s.Name, err)
			}
			if err != nil {
				return fmt.Errorf("while creating Secret %s: %w", s.Name, err)
			}
			continue
		}
		if err := r.Update(ctx, s); err != nil {
			return fmt.Errorf("while updating Secret %s: %w", s.Name, err)
		}
	}
	for _, s := range w.Deletes {
		if err := r.Delete(ctx, s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("while deleting Secret %s: %w", s.Name, err)
		}
	}
	for _, crt := range w.deleteCertificates {
		if err := r.Delete(ctx, crt, client.Preconditions{UID: &crt.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("while deleting Certificate %s: %w", crt.Name, err)
		}
	}
	var errs []error
	for _, crt := range w.certificates {
		errs = append(errs, apply(ctx, r.Client, c, crt, &cmv1.Certificate{}, copyCertificate))
	}
	return errors.Join(errs...)
}

// networkPolicy builds the NetworkPolicy and its condition.
func (r *Reconciler) networkPolicy(c *kshakav1alpha1.KshakaCluster) (*networkingv1.NetworkPolicy, metav1.Condition) {
	cond := metav1.Condition{Type: kshakav1alpha1.ConditionNetworkPolicyReady}
	if !NetworkPolicyEnabled(c) {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, ReasonNetworkPolicyDisabled,
			"spec.networkPolicy.enabled is false: every pod that can route to the acceptors reaches all their ports"
		return nil, cond
	}
	opNS := r.OperatorNamespace
	if sel := c.Spec.NetworkPolicy.OperatorSelector; opNS == "" && (sel == nil || sel.NamespaceSelector == nil) {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, ReasonOperatorNamespaceUnknown,
			"the operator does not know its namespace (POD_NAMESPACE is unset and it has no service account), so a NetworkPolicy would shut it out; "+
				"set spec.networkPolicy.operatorSelector.namespaceSelector, or spec.networkPolicy.enabled=false"
		return nil, cond
	}
	np := NetworkPolicy(c, opNS)
	cond.Status, cond.Reason = metav1.ConditionTrue, ReasonNetworkPolicyApplied
	cond.Message = fmt.Sprintf("NetworkPolicy %s admits the clients and the operator to port %d, anyone to the health port %d, the metrics selector to port %d",
		np.Name, Port(c), HealthPort, MetricsPort)
	return np, cond
}

// applyNetworkPolicy creates or updates np, or deletes the cluster's
// NetworkPolicy when it is disabled. When the operator's namespace is
// unknown, an existing policy is left as it is.
func (r *Reconciler) applyNetworkPolicy(ctx context.Context, c *kshakav1alpha1.KshakaCluster, np *networkingv1.NetworkPolicy, cond metav1.Condition) error {
	if np != nil {
		return apply(ctx, r.Client, c, np, &networkingv1.NetworkPolicy{}, copyNetworkPolicy)
	}
	if cond.Reason != ReasonNetworkPolicyDisabled {
		return nil
	}
	old := &networkingv1.NetworkPolicy{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: NetworkPolicyName(c)}, old); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("while reading the NetworkPolicy: %w", err)
	case metav1.IsControlledBy(old, c):
		return client.IgnoreNotFound(r.Delete(ctx, old, client.Preconditions{UID: &old.UID}))
	}
	return nil
}
