package controllers

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kshaka-io/kshaka/internal/pki"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// In mode CertManager the operator keeps cert-manager Certificates.
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates,verbs=get;list;watch;create;update;patch;delete

// PodSecretName is the Secret cert-manager writes an acceptor pod's pair to
// (mode CertManager); its Certificate has the same name.
func PodSecretName(pod string) string { return pod + "-tls" }

// CertManagerInput adds to TLSInput what mode CertManager observes.
type CertManagerInput struct {
	TLSInput
	// Installed: the API server serves cert-manager's Certificate kind.
	Installed bool
	// Certificates are the Certificates the cluster controls, by name.
	Certificates map[string]*cmv1.Certificate
}

// CertManagerPlan is PlanCertManager's answer: the TLS plan (the
// acceptors' Secret, status, condition) and the Certificates to apply and
// delete.
type CertManagerPlan struct {
	TLSPlan
	Certificates       []*cmv1.Certificate
	DeleteCertificates []*cmv1.Certificate
}

// certificate builds one Certificate of c for leaf, written to secret.
// Keys are ECDSA P-256, a new one at every issuance; the Secret carries
// c's labels, so the operator (whose cache may select Secrets by label)
// sees it.
func certificate(c *kshakav1alpha1.KshakaCluster, secret string, leaf pki.Leaf) *cmv1.Certificate {
	spec := cmv1.CertificateSpec{
		SecretName:     secret,
		SecretTemplate: &cmv1.CertificateSecretTemplate{Labels: Labels(c)},
		CommonName:     leaf.CommonName,
		DNSNames:       leaf.DNSNames,
		Duration:       &metav1.Duration{Duration: CertDuration(c)},
		RenewBefore:    &metav1.Duration{Duration: RenewBefore(c)},
		PrivateKey: &cmv1.CertificatePrivateKey{
			Algorithm: cmv1.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: cmv1.RotationPolicyAlways,
		},
		Usages: []cmv1.KeyUsage{cmv1.UsageDigitalSignature},
	}
	if c.Spec.TLS.IssuerRef != nil {
		spec.IssuerRef = *c.Spec.TLS.IssuerRef
	}
	for _, ip := range leaf.IPs {
		spec.IPAddresses = append(spec.IPAddresses, ip.String())
	}
	if len(leaf.Organization) > 0 {
		spec.Subject = &cmv1.X509Subject{Organizations: leaf.Organization}
	}
	if leaf.Server {
		spec.Usages = append(spec.Usages, cmv1.UsageServerAuth)
	}
	if leaf.Client {
		spec.Usages = append(spec.Usages, cmv1.UsageClientAuth)
	}
	crt := &cmv1.Certificate{ObjectMeta: objectMeta(c, secret), Spec: spec}
	return withHash(crt, crt.Spec)
}

// AcceptorCertificate is the Certificate of one acceptor pod: the names of
// AcceptorLeaf, server auth only.
func AcceptorCertificate(c *kshakav1alpha1.KshakaCluster, pod, ip, domain string) *cmv1.Certificate {
	return certificate(c, PodSecretName(pod), AcceptorLeaf(c, pod, ip, domain))
}

func copyCertificate(want, have *cmv1.Certificate) bool {
	if sameHash(want, have) {
		return false
	}
	copyMeta(want, have)
	have.Spec = want.Spec
	return true
}

// PlanCertManager decides mode CertManager: a Certificate per acceptor pod
// (for 0..Ordinals-1 and every existing pod), one for the operator (the
// admin role), one for the clients and one per extra client, from
// spec.tls.issuerRef; and <cluster>-acceptor-tls, into which every issued
// pod pair is copied as <pod>.crt/<pod>.key, with the trust bundle made of
// every CA the issued Secrets' ca.crt name (so an issuer's CA rotation
// keeps both CAs while the pairs differ). The acceptors' mounts are the
// same as in mode Operator.
func PlanCertManager(in CertManagerInput) CertManagerPlan {
	c := in.Cluster
	p := CertManagerPlan{TLSPlan: TLSPlan{Status: &kshakav1alpha1.TLSStatus{Mode: kshakav1alpha1.TLSModeCertManager, ClientSecretName: ClientTLSSecretName(c)}}}
	if !in.Installed {
		p.fail(ReasonCertManagerNotInstalled, "cert-manager is not installed: the API server does not serve cert-manager.io/v1 Certificate; "+
			"install cert-manager (and restart the operator so that it watches Certificates), or set spec.tls.mode to Operator")
		p.due(time.Minute)
		return p
	}
	if c.Spec.TLS.IssuerRef == nil {
		p.fail(ReasonTLSError, "spec.tls.issuerRef is required in mode CertManager")
		return p
	}
	if s := in.Secrets.Acceptor; s != nil && !metav1.IsControlledBy(s, c) {
		p.fail(ReasonTLSError, "Secret %s/%s exists and is not owned by this KshakaCluster; the operator does not adopt it", s.Namespace, s.Name)
		return p
	}
	want := map[string]bool{}
	add := func(crt *cmv1.Certificate) {
		p.Certificates = append(p.Certificates, crt)
		want[crt.Name] = true
	}
	ords := acceptorOrdinals(in.TLSInput)
	for _, ord := range ords {
		pod := PodName(c, ord)
		add(AcceptorCertificate(c, pod, in.Pods[ord].IP, in.domain()))
	}
	add(certificate(c, OperatorTLSSecretName(c), OperatorLeaf(c)))
	add(certificate(c, ClientTLSSecretName(c), ClientLeaf(c, c.Name+"-client")))
	for _, n := range c.Spec.TLS.ExtraClients {
		name := ExtraClientSecretName(c, string(n))
		add(certificate(c, name, ClientLeaf(c, string(n))))
		p.Status.ExtraClientSecretNames = append(p.Status.ExtraClientSecretNames, name)
	}
	for name, crt := range in.Certificates {
		if !want[name] {
			p.DeleteCertificates = append(p.DeleteCertificates, crt)
		}
	}
	sort.Slice(p.DeleteCertificates, func(i, j int) bool { return p.DeleteCertificates[i].Name < p.DeleteCertificates[j].Name })

	// The acceptors' Secret: each issued pair, and the bundle.
	s := newSecret(c, AcceptorTLSSecretName(c), corev1.SecretTypeOpaque)
	old := in.Secrets.Acceptor
	if old != nil {
		s = old.DeepCopy()
	}
	s.Data = map[string][]byte{}
	var bundle [][]byte
	var waiting, renewed []string
	note := func(issued *corev1.Secret, earliest **metav1.Time) bool {
		if issued == nil || len(issued.Data[corev1.TLSCertKey]) == 0 || len(issued.Data[corev1.TLSPrivateKeyKey]) == 0 {
			return false
		}
		certs, err := pki.ParseCertificates(issued.Data[corev1.TLSCertKey])
		if err != nil || !in.Now.Before(certs[0].NotAfter) {
			return false
		}
		if *earliest == nil || certs[0].NotAfter.Before((*earliest).Time) {
			*earliest = &metav1.Time{Time: certs[0].NotAfter}
		}
		if t := certs[0].NotBefore; p.Status.LastRenewalTime == nil || t.After(p.Status.LastRenewalTime.Time) {
			p.Status.LastRenewalTime = &metav1.Time{Time: t}
		}
		bundle = appendCAs(bundle, issued.Data[KeyCACert])
		return true
	}
	for _, ord := range ords {
		pod := PodName(c, ord)
		issued := in.Secrets.Issued[PodSecretName(pod)]
		if !note(issued, &p.Status.AcceptorsNotAfter) {
			waiting = append(waiting, PodSecretName(pod))
			continue
		}
		crt, key := issued.Data[corev1.TLSCertKey], issued.Data[corev1.TLSPrivateKeyKey]
		if old != nil && len(old.Data[PodCertKey(pod)]) > 0 && !bytes.Equal(old.Data[PodCertKey(pod)], crt) {
			renewed = append(renewed, pod)
		}
		s.Data[PodCertKey(pod)], s.Data[PodKeyKey(pod)] = crt, key
	}
	clients := []string{OperatorTLSSecretName(c), ClientTLSSecretName(c)}
	clients = append(clients, p.Status.ExtraClientSecretNames...)
	for _, name := range clients {
		if !note(in.Secrets.Issued[name], &p.Status.ClientsNotAfter) {
			waiting = append(waiting, name)
		}
	}
	s.Data[KeyCACert] = bytes.Join(bundle, nil)
	if len(bundle) > 0 {
		if cas, err := pki.ParseCertificates(s.Data[KeyCACert]); err == nil {
			for _, ca := range cas {
				if p.Status.CANotAfter == nil || ca.NotAfter.Before(p.Status.CANotAfter.Time) {
					p.Status.CANotAfter = &metav1.Time{Time: ca.NotAfter}
				}
			}
		}
	}
	if old == nil || !sameData(old.Data, s.Data) {
		p.Writes = append(p.Writes, s)
	}
	if len(renewed) > 0 {
		p.Events = append(p.Events, Event{Type: corev1.EventTypeNormal, Reason: EventCertificateRenewed,
			Message: "cert-manager renewed the certificates of " + strings.Join(renewed, ", ") + "; copied into Secret " + s.Name})
	}
	if len(waiting) > 0 {
		p.Condition = metav1.Condition{Type: kshakav1alpha1.ConditionTLSReady, Status: metav1.ConditionFalse, Reason: ReasonWaitingForCertManager,
			Message: fmt.Sprintf("waiting for cert-manager (issuer %s %s) to issue Secrets %s", issuerKind(c), c.Spec.TLS.IssuerRef.Name, strings.Join(waiting, ", "))}
		return p
	}
	p.Condition = metav1.Condition{Type: kshakav1alpha1.ConditionTLSReady, Status: metav1.ConditionTrue, Reason: ReasonCertificatesValid,
		Message: fmt.Sprintf("mutual TLS with certificates from cert-manager (issuer %s %s); acceptor certificates expire from %s; clients mount Secret %s",
			issuerKind(c), c.Spec.TLS.IssuerRef.Name, fmtTime(p.Status.AcceptorsNotAfter), ClientTLSSecretName(c))}
	return p
}

func issuerKind(c *kshakav1alpha1.KshakaCluster) string {
	if k := c.Spec.TLS.IssuerRef.Kind; k != "" {
		return k
	}
	return "Issuer"
}

// appendCAs adds each certificate of pemBundle that bundle lacks.
func appendCAs(bundle [][]byte, pemBundle []byte) [][]byte {
	certs, err := pki.ParseCertificates(pemBundle)
	if err != nil {
		return bundle
	}
	for _, ca := range certs {
		enc := encodeCertPEM(ca.Raw)
		if !slices.ContainsFunc(bundle, func(b []byte) bool { return bytes.Equal(b, enc) }) {
			bundle = append(bundle, enc)
		}
	}
	return bundle
}

func sameData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}
