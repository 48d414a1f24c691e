package controllers

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kshaka-io/kshaka/internal/pki"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// The Secrets of mutual TLS (docs/design.md §9.2) are written by the operator
// in mode Operator (and, for the acceptors' Secret, in mode CertManager too).
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete

// Keys, annotations, paths and ports of mutual TLS.
const (
	// KeyCACert is the trust bundle (one or more CA certificates) in every
	// TLS Secret, and the CA's certificate in <cluster>-ca.
	KeyCACert = "ca.crt"
	// KeyCAKey is the CA's private key in <cluster>-ca.
	KeyCAKey = "ca.key"
	// KeyPreviousCA, in <cluster>-ca, is the CA being rotated out: it stays
	// in every trust bundle until every certificate is reissued by the new
	// one.
	KeyPreviousCA = "previous-ca.crt"

	// AnnotationRotateCA, set on a KshakaCluster to a new value, makes the
	// operator rotate the cluster's CA (mode Operator): a new CA joins the
	// trust bundles beside the old one, every certificate is reissued by
	// it, then the old CA leaves the bundles. The <cluster>-ca Secret
	// records the value last acted upon under the same key.
	AnnotationRotateCA = "kshaka.io/rotate-ca"
	// annotationTrustDistributed, on <cluster>-ca, is when every trust
	// bundle was seen holding both CAs of a rotation (RFC 3339).
	annotationTrustDistributed = "kshaka.io/trust-distributed-at"
	// annotationLeavesReissued, on <cluster>-ca, is when every certificate
	// was seen signed by the new CA of a rotation.
	annotationLeavesReissued = "kshaka.io/leaves-reissued-at"
	// annotationExtraClient, on a Secret of spec.tls.extraClients, is the
	// client's name.
	annotationExtraClient = "kshaka.io/extra-client"

	// TLSMountPath is where acceptors mount <cluster>-acceptor-tls.
	TLSMountPath = "/etc/kshaka/tls"
	// HealthPort is the acceptors' plaintext gRPC health port
	// (--health-listen): the kubelet's gRPC probe presents no client
	// certificate.
	HealthPort = 7401
	healthName = "health"
	tlsVolume  = "tls"

	// Defaults of spec.tls, as the CRD defaults them.
	defaultCertDuration = 2160 * time.Hour
	defaultRenewBefore  = 720 * time.Hour
	defaultCADuration   = 87600 * time.Hour
	// DefaultTrustPropagation is how long a changed trust bundle or
	// certificate is given to reach every pod's mounted Secret before the
	// next step of a CA rotation relies on it: the kubelet refreshes Secret
	// volumes within about a minute.
	DefaultTrustPropagation = 2 * time.Minute
	// DefaultClusterDomain is the cluster's DNS domain in the acceptors'
	// certificates.
	DefaultClusterDomain = "cluster.local"
)

// Condition reasons of TLSReady and event reasons of certificates.
const (
	ReasonCertificatesValid       = "CertificatesValid"
	ReasonTLSDisabled             = "TLSDisabled"
	ReasonTLSError                = "TLSError"
	ReasonTLSPaused               = "Paused"
	ReasonCertManagerNotInstalled = "CertManagerNotInstalled"
	ReasonWaitingForCertManager   = "WaitingForCertManager"

	EventCertificateIssued  = "CertificateIssued"
	EventCertificateRenewed = "CertificateRenewed"
	EventCARotation         = "CARotation"
	EventTLSDisabled        = "TLSDisabled"
	EventTLSError           = "TLSError"
)

// CA rotation steps, as status.tls.caRotation shows them.
const (
	RotationDistributingTrust = "DistributingTrust"
	RotationReissuing         = "Reissuing"
	RotationDroppingOldCA     = "DroppingOldCA"
)

// TLSMode is c's spec.tls.mode; empty (an object the API server has not
// defaulted) is Operator.
func TLSMode(c *kshakav1alpha1.KshakaCluster) kshakav1alpha1.TLSMode {
	if c.Spec.TLS.Mode == "" {
		return kshakav1alpha1.TLSModeOperator
	}
	return c.Spec.TLS.Mode
}

// TLSEnabled reports whether c's acceptors serve mutual TLS.
func TLSEnabled(c *kshakav1alpha1.KshakaCluster) bool {
	return TLSMode(c) != kshakav1alpha1.TLSModeDisabled
}

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil || d.Duration <= 0 {
		return def
	}
	return d.Duration
}

// CertDuration, RenewBefore and CADuration are spec.tls's, defaulted.
func CertDuration(c *kshakav1alpha1.KshakaCluster) time.Duration {
	return durationOr(c.Spec.TLS.Duration, defaultCertDuration)
}

// RenewBefore is spec.tls.renewBefore, defaulted.
func RenewBefore(c *kshakav1alpha1.KshakaCluster) time.Duration {
	return durationOr(c.Spec.TLS.RenewBefore, defaultRenewBefore)
}

// CADuration is spec.tls.caDuration, defaulted.
func CADuration(c *kshakav1alpha1.KshakaCluster) time.Duration {
	return durationOr(c.Spec.TLS.CADuration, defaultCADuration)
}

// CASecretName holds the CA (mode Operator).
func CASecretName(c *kshakav1alpha1.KshakaCluster) string { return c.Name + "-ca" }

// AcceptorTLSSecretName is mounted by every acceptor: the trust bundle and
// each pod's pair.
func AcceptorTLSSecretName(c *kshakav1alpha1.KshakaCluster) string { return c.Name + "-acceptor-tls" }

// OperatorTLSSecretName holds the operator's admin certificate.
func OperatorTLSSecretName(c *kshakav1alpha1.KshakaCluster) string { return c.Name + "-operator-tls" }

// ClientTLSSecretName holds the client certificate applications mount.
func ClientTLSSecretName(c *kshakav1alpha1.KshakaCluster) string { return c.Name + "-client-tls" }

// ExtraClientSecretName holds the certificate of one of spec.tls.extraClients.
func ExtraClientSecretName(c *kshakav1alpha1.KshakaCluster, name string) string {
	return c.Name + "-client-" + name
}

// PodCertKey and PodKeyKey are a pod's pair in <cluster>-acceptor-tls.
func PodCertKey(pod string) string { return pod + ".crt" }

// PodKeyKey is the key of a pod's private key in <cluster>-acceptor-tls.
func PodKeyKey(pod string) string { return pod + ".key" }

// ServiceDNSNames are the names a Service answers to, shortest first.
func serviceDNSNames(svc, ns, domain string) []string {
	return []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc." + domain}
}

// AcceptorLeaf is the server certificate of one acceptor pod: its pod DNS
// names (both address modes verify), the peer and client Services' names,
// and its IP when known.
func AcceptorLeaf(c *kshakav1alpha1.KshakaCluster, pod, ip, domain string) pki.Leaf {
	peers := PeerServiceName(c)
	dns := []string{
		fmt.Sprintf("%s.%s.%s.svc", pod, peers, c.Namespace),
		fmt.Sprintf("%s.%s.%s.svc.%s", pod, peers, c.Namespace, domain),
	}
	dns = append(dns, serviceDNSNames(peers, c.Namespace, domain)...)
	dns = append(dns, serviceDNSNames(ClientServiceName(c), c.Namespace, domain)...)
	l := pki.Leaf{CommonName: pod, DNSNames: dns, Server: true, Validity: CertDuration(c)}
	if parsed := net.ParseIP(ip); parsed != nil {
		l.IPs = []net.IP{parsed}
	}
	return l
}

// OperatorLeaf is the operator's client certificate: the admin role.
func OperatorLeaf(c *kshakav1alpha1.KshakaCluster) pki.Leaf {
	return pki.Leaf{CommonName: c.Name + "-operator", Organization: []string{pki.OrgAdmin}, Client: true, Validity: CertDuration(c)}
}

// ClientLeaf is a client certificate of the client role, CN name.
func ClientLeaf(c *kshakav1alpha1.KshakaCluster, name string) pki.Leaf {
	return pki.Leaf{CommonName: name, Organization: []string{pki.OrgClient}, Client: true, Validity: CertDuration(c)}
}

// TLSSecrets are the cluster's TLS Secrets as observed; nil: absent.
type TLSSecrets struct {
	CA, Acceptor, Operator, Client *corev1.Secret
	// Extras are the Secrets of extra clients the cluster controls, by
	// client name (including names no longer in spec.tls.extraClients).
	Extras map[string]*corev1.Secret
	// Issued are Secrets cert-manager wrote for the cluster's Certificates,
	// by name (they carry the cluster's labels).
	Issued map[string]*corev1.Secret
}

// TLSInput is everything the TLS planners look at.
type TLSInput struct {
	Cluster *kshakav1alpha1.KshakaCluster
	Secrets TLSSecrets
	// Pods are the acceptor pods by ordinal (their IPs).
	Pods map[int32]PodInfo
	// Ordinals: certificates are kept for pods 0..Ordinals-1 and for every
	// existing pod, so that a pod the StatefulSet is about to create finds
	// its pair.
	Ordinals int32
	Now      time.Time
	// Propagation is how long a CA rotation waits for a change to reach
	// the pods (DefaultTrustPropagation when 0).
	Propagation time.Duration
	// Domain is the cluster DNS domain (DefaultClusterDomain when "").
	Domain string
}

func (in TLSInput) propagation() time.Duration {
	return orDefault(in.Propagation, DefaultTrustPropagation)
}

func (in TLSInput) domain() string {
	if in.Domain == "" {
		return DefaultClusterDomain
	}
	return in.Domain
}

// TLSPlan is what a TLS planner decided: the Secrets to write (in order:
// creates have no resourceVersion, updates carry the observed one) and to
// delete, the status and TLSReady condition to record, events, and when to
// look again.
type TLSPlan struct {
	Writes    []*corev1.Secret
	Deletes   []*corev1.Secret
	Status    *kshakav1alpha1.TLSStatus
	Condition metav1.Condition
	Events    []Event
	// RequeueAfter is the time until the next renewal or rotation step; 0:
	// none is scheduled.
	RequeueAfter time.Duration
}

func (p *TLSPlan) due(d time.Duration) {
	d = max(d, time.Second)
	if p.RequeueAfter == 0 || d < p.RequeueAfter {
		p.RequeueAfter = d
	}
}

func (p *TLSPlan) fail(reason, format string, args ...any) {
	p.Condition = metav1.Condition{Type: kshakav1alpha1.ConditionTLSReady, Status: metav1.ConditionFalse, Reason: reason, Message: fmt.Sprintf(format, args...)}
	p.Writes, p.Deletes = nil, nil
}

// disabledPlan says loudly that the cluster runs without TLS.
func disabledPlan(c *kshakav1alpha1.KshakaCluster) TLSPlan {
	msg := "spec.tls.mode is Disabled: traffic to the acceptors is plaintext and unauthenticated; " +
		"whoever reaches the gRPC port can read and write every key and change the membership"
	p := TLSPlan{
		Status:    &kshakav1alpha1.TLSStatus{Mode: kshakav1alpha1.TLSModeDisabled},
		Condition: metav1.Condition{Type: kshakav1alpha1.ConditionTLSReady, Status: metav1.ConditionFalse, Reason: ReasonTLSDisabled, Message: msg},
	}
	if old := findCondition(c.Status.Conditions, kshakav1alpha1.ConditionTLSReady); old == nil || old.Reason != ReasonTLSDisabled {
		p.Events = append(p.Events, Event{Type: corev1.EventTypeWarning, Reason: EventTLSDisabled, Message: msg})
	}
	return p
}

func findCondition(cs []metav1.Condition, typ string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}

// PlanTLS decides the cluster's TLS Secrets for its mode (see
// PlanOperatorTLS; mode CertManager is planned by PlanCertManager).
func PlanTLS(in TLSInput) TLSPlan {
	if !TLSEnabled(in.Cluster) {
		return disabledPlan(in.Cluster)
	}
	return PlanOperatorTLS(in)
}

// rotation is the state of a CA rotation, read from <cluster>-ca.
type rotation struct {
	previous                []byte
	distributedAt, reissued time.Time
}

func (r rotation) active() bool { return len(r.previous) > 0 }

func readRotation(s *corev1.Secret) rotation {
	r := rotation{previous: s.Data[KeyPreviousCA]}
	r.distributedAt, _ = time.Parse(time.RFC3339, s.Annotations[annotationTrustDistributed])
	r.reissued, _ = time.Parse(time.RFC3339, s.Annotations[annotationLeavesReissued])
	return r
}

// PlanOperatorTLS decides the Secrets of mode Operator, from the observed
// ones alone, so that an operator killed between two writes redoes or
// continues the step from what it finds:
//
//  1. <cluster>-ca: created once. A CA rotation (AnnotationRotateCA set to
//     a new value, or the CA expiring within spec.tls.duration) makes a new
//     CA and keeps the old certificate as previous-ca.crt; while it is
//     there, every ca.crt is the bundle new + old. Once every bundle was
//     seen holding both for the propagation time, certificates signed by
//     the old CA are reissued; once every certificate was seen signed by
//     the new CA for the propagation time, previous-ca.crt is dropped, and
//     the bundles with it. Each step is recorded on <cluster>-ca before the
//     next relies on it.
//  2. Every certificate (a pair per acceptor pod in <cluster>-acceptor-tls,
//     the operator's, the client's, each extra client's) is issued when
//     missing and reissued when it expires within spec.tls.renewBefore,
//     is not signed by the current CA (outside the first step of a
//     rotation), or no longer matches what it must name (a pod's new IP);
//     while a new CA is not yet in every bundle, only a missing or expired
//     certificate is issued.
//  3. Extra clients no longer listed lose their Secret.
func PlanOperatorTLS(in TLSInput) TLSPlan {
	c := in.Cluster
	p := TLSPlan{Status: &kshakav1alpha1.TLSStatus{Mode: kshakav1alpha1.TLSModeOperator, ClientSecretName: ClientTLSSecretName(c)}}
	for _, n := range c.Spec.TLS.ExtraClients {
		p.Status.ExtraClientSecretNames = append(p.Status.ExtraClientSecretNames, ExtraClientSecretName(c, string(n)))
	}
	for _, s := range []*corev1.Secret{in.Secrets.CA, in.Secrets.Acceptor, in.Secrets.Operator, in.Secrets.Client} {
		if s != nil && !metav1.IsControlledBy(s, c) {
			p.fail(ReasonTLSError, "Secret %s/%s exists and is not owned by this KshakaCluster; the operator does not adopt it (delete it, or set spec.tls.mode)", s.Namespace, s.Name)
			return p
		}
	}
	ca, rot, ok := planCA(in, &p)
	if !ok {
		return p
	}
	trust := slices.Concat(ca.CertPEM, rot.previous)
	p.Status.CANotAfter = &metav1.Time{Time: ca.Cert.NotAfter}
	// Reissue what the old CA signed only once the new CA is trusted
	// everywhere.
	reissueOld := !rot.active() || (!rot.distributedAt.IsZero() && !in.Now.Before(rot.distributedAt.Add(in.propagation())))
	iss := &issuer{in: in, ca: ca, previous: rot.previous, reissueOld: reissueOld, plan: &p}

	acc := iss.acceptorSecret(trust)
	op := iss.clientSecret(in.Secrets.Operator, OperatorTLSSecretName(c), OperatorLeaf(c), trust)
	cl := iss.clientSecret(in.Secrets.Client, ClientTLSSecretName(c), ClientLeaf(c, c.Name+"-client"), trust)
	clients := []*corev1.Secret{op, cl}
	for _, n := range c.Spec.TLS.ExtraClients {
		name := string(n)
		s := iss.clientSecret(in.Secrets.Extras[name], ExtraClientSecretName(c, name), ClientLeaf(c, name), trust)
		s.Annotations = map[string]string{annotationExtraClient: name}
		clients = append(clients, s)
	}
	for name, s := range in.Secrets.Extras {
		if !slices.Contains(c.Spec.TLS.ExtraClients, kshakav1alpha1.ClientName(name)) {
			p.Deletes = append(p.Deletes, s)
		}
	}
	for _, s := range append([]*corev1.Secret{acc}, clients...) {
		if s != nil && iss.changed(s) {
			p.Writes = append(p.Writes, s)
		}
	}
	if iss.err != nil {
		p.fail(ReasonTLSError, "%v", iss.err)
		return p
	}
	p.Status.AcceptorsNotAfter, p.Status.ClientsNotAfter, p.Status.LastRenewalTime = iss.acceptorsNotAfter, iss.clientsNotAfter, iss.lastIssued
	iss.events()
	switch {
	case rot.active() && rot.distributedAt.IsZero():
		p.Status.CARotation = RotationDistributingTrust
	case rot.active() && rot.reissued.IsZero():
		p.Status.CARotation = RotationReissuing
	case rot.active():
		p.Status.CARotation = RotationDroppingOldCA
	}
	msg := fmt.Sprintf("mutual TLS with the operator's CA (expires %s); acceptor certificates expire from %s; clients mount Secret %s",
		ca.Cert.NotAfter.UTC().Format(time.RFC3339), fmtTime(p.Status.AcceptorsNotAfter), ClientTLSSecretName(c))
	if p.Status.CARotation != "" {
		msg += "; CA rotation: " + p.Status.CARotation
	}
	p.Condition = metav1.Condition{Type: kshakav1alpha1.ConditionTLSReady, Status: metav1.ConditionTrue, Reason: ReasonCertificatesValid, Message: msg}
	return p
}

func fmtTime(t *metav1.Time) string {
	if t == nil {
		return "(none yet)"
	}
	return t.UTC().Format(time.RFC3339)
}

// planCA plans <cluster>-ca (step 1 of PlanOperatorTLS) and returns the CA
// that signs from now on and the rotation state its Secret will hold.
func planCA(in TLSInput, p *TLSPlan) (*pki.CA, rotation, bool) {
	c := in.Cluster
	old := in.Secrets.CA
	want := c.Annotations[AnnotationRotateCA]
	newCA := func() (*pki.CA, bool) {
		ca, err := pki.NewCA(c.Name+"-ca", CADuration(c), in.Now)
		if err != nil {
			p.fail(ReasonTLSError, "while making a CA: %v", err)
			return nil, false
		}
		return ca, true
	}
	if old == nil {
		ca, ok := newCA()
		if !ok {
			return nil, rotation{}, false
		}
		s := newSecret(c, CASecretName(c), corev1.SecretTypeOpaque)
		s.Annotations = map[string]string{AnnotationRotateCA: want}
		s.Data = map[string][]byte{KeyCACert: ca.CertPEM, KeyCAKey: ca.KeyPEM}
		p.Writes = append(p.Writes, s)
		p.Events = append(p.Events, Event{Type: corev1.EventTypeNormal, Reason: EventCertificateIssued, Message: fmt.Sprintf("Created the cluster CA in Secret %s", s.Name)})
		p.due(ca.Cert.NotAfter.Sub(in.Now) - CertDuration(c))
		return ca, rotation{}, true
	}
	ca, err := pki.ParseCA(old.Data[KeyCACert], old.Data[KeyCAKey])
	if err != nil {
		p.fail(ReasonTLSError, "Secret %s holds no usable CA (%v); the operator does not replace it: delete it to make a new CA (every certificate is then reissued)", old.Name, err)
		return nil, rotation{}, false
	}
	rot := readRotation(old)
	s := old.DeepCopy()
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	expiring := ca.Cert.NotAfter.Sub(in.Now) < CertDuration(c)
	switch {
	case !rot.active() && (s.Annotations[AnnotationRotateCA] != want || expiring):
		why := fmt.Sprintf("annotation %s=%q", AnnotationRotateCA, want)
		if expiring {
			why = fmt.Sprintf("the CA expires %s, within spec.tls.duration", ca.Cert.NotAfter.UTC().Format(time.RFC3339))
		}
		next, ok := newCA()
		if !ok {
			return nil, rotation{}, false
		}
		s.Data = map[string][]byte{KeyCACert: next.CertPEM, KeyCAKey: next.KeyPEM, KeyPreviousCA: ca.CertPEM}
		s.Annotations[AnnotationRotateCA] = want
		delete(s.Annotations, annotationTrustDistributed)
		delete(s.Annotations, annotationLeavesReissued)
		p.Writes = append(p.Writes, s)
		p.Events = append(p.Events, Event{Type: corev1.EventTypeNormal, Reason: EventCARotation,
			Message: fmt.Sprintf("Rotating the CA (%s): the new CA joins every trust bundle beside the old one", why)})
		p.due(in.propagation())
		return next, rotation{previous: ca.CertPEM}, true
	case rot.active() && rot.distributedAt.IsZero():
		if trustEverywhere(in, slices.Concat(ca.CertPEM, rot.previous)) {
			s.Annotations[annotationTrustDistributed] = in.Now.UTC().Format(time.RFC3339)
			p.Writes = append(p.Writes, s)
			rot.distributedAt = in.Now
			p.Events = append(p.Events, Event{Type: corev1.EventTypeNormal, Reason: EventCARotation,
				Message: fmt.Sprintf("Every trust bundle holds the new CA; certificates are reissued by it after %s", in.propagation())})
		}
		p.due(in.propagation())
	case rot.active() && rot.reissued.IsZero():
		if !in.Now.Before(rot.distributedAt.Add(in.propagation())) && allSignedBy(in, ca.CertPEM) {
			s.Annotations[annotationLeavesReissued] = in.Now.UTC().Format(time.RFC3339)
			p.Writes = append(p.Writes, s)
			rot.reissued = in.Now
			p.Events = append(p.Events, Event{Type: corev1.EventTypeNormal, Reason: EventCARotation,
				Message: fmt.Sprintf("Every certificate is signed by the new CA; the old CA leaves the trust bundles after %s", in.propagation())})
		}
		p.due(max(rot.distributedAt.Add(in.propagation()).Sub(in.Now), time.Second))
	case rot.active():
		if wait := rot.reissued.Add(in.propagation()).Sub(in.Now); wait > 0 {
			p.due(wait)
			break
		}
		delete(s.Data, KeyPreviousCA)
		delete(s.Annotations, annotationTrustDistributed)
		delete(s.Annotations, annotationLeavesReissued)
		p.Writes = append(p.Writes, s)
		p.Events = append(p.Events, Event{Type: corev1.EventTypeNormal, Reason: EventCARotation, Message: "CA rotation complete: the old CA left the trust bundles"})
		return ca, rotation{}, true
	default:
		p.due(ca.Cert.NotAfter.Sub(in.Now) - CertDuration(c))
	}
	return ca, rot, true
}

// trustEverywhere: every TLS Secret of the cluster holds bundle as its
// ca.crt.
func trustEverywhere(in TLSInput, bundle []byte) bool {
	all := []*corev1.Secret{in.Secrets.Acceptor, in.Secrets.Operator, in.Secrets.Client}
	for _, n := range in.Cluster.Spec.TLS.ExtraClients {
		all = append(all, in.Secrets.Extras[string(n)])
	}
	for _, s := range all {
		if s == nil || !bytes.Equal(s.Data[KeyCACert], bundle) {
			return false
		}
	}
	return true
}

// allSignedBy: every certificate of the cluster (every pod pair, the
// operator's and the clients') was signed by caPEM.
func allSignedBy(in TLSInput, caPEM []byte) bool {
	s := in.Secrets
	if s.Acceptor == nil || s.Operator == nil || s.Client == nil {
		return false
	}
	var certs [][]byte
	for k, v := range s.Acceptor.Data {
		if strings.HasSuffix(k, ".crt") && k != KeyCACert {
			certs = append(certs, v)
		}
	}
	certs = append(certs, s.Operator.Data[corev1.TLSCertKey], s.Client.Data[corev1.TLSCertKey])
	for _, n := range in.Cluster.Spec.TLS.ExtraClients {
		e := s.Extras[string(n)]
		if e == nil {
			return false
		}
		certs = append(certs, e.Data[corev1.TLSCertKey])
	}
	for _, crt := range certs {
		if !pki.SignedBy(crt, caPEM) {
			return false
		}
	}
	return true
}

func newSecret(c *kshakav1alpha1.KshakaCluster, name string, typ corev1.SecretType) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: objectMeta(c, name), Type: typ}
}

// issuer checks and (re)issues the certificates of one plan.
type issuer struct {
	in         TLSInput
	ca         *pki.CA
	previous   []byte
	reissueOld bool
	plan       *TLSPlan
	err        error
	// issued and renewed name the certificates written, with why.
	issued, renewed []string
	// observed is each planned Secret's observed version, by name.
	observed map[string]*corev1.Secret

	acceptorsNotAfter, clientsNotAfter, lastIssued *metav1.Time
}

// check reports why the pair must be (re)issued; "" when it is good.
func (iss *issuer) check(certPEM, keyPEM []byte, want pki.Leaf, ipKnown bool) string {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return "missing"
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return "unreadable: " + err.Error()
	}
	renewBefore := RenewBefore(iss.in.Cluster)
	switch {
	case pki.NeedsRenewal(certPEM, iss.in.Now, renewBefore):
		return fmt.Sprintf("expires %s, within spec.tls.renewBefore (%s)", cert.NotAfter.UTC().Format(time.RFC3339), renewBefore)
	case !pki.SignedBy(certPEM, iss.ca.CertPEM) && (iss.reissueOld || !pki.SignedBy(certPEM, iss.previous)):
		if iss.reissueOld {
			return "not signed by the current CA"
		}
		return "not signed by the current or the previous CA"
	case cert.Subject.CommonName != want.CommonName || !slices.Equal(cert.Subject.Organization, want.Organization):
		return "its subject changed"
	case !sameStrings(cert.DNSNames, want.DNSNames):
		return "its DNS names changed"
	case ipKnown && !sameIPs(cert.IPAddresses, want.IPs):
		return "it does not name the pod's IP " + ipString(want.IPs)
	case want.Server != slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || want.Client != slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth):
		return "its key usage changed"
	}
	return ""
}

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func sameIPs(a, b []net.IP) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// pair returns the pair to keep under name: the observed one when good,
// else a new one.
func (iss *issuer) pair(name string, certPEM, keyPEM []byte, want pki.Leaf, ipKnown bool) ([]byte, []byte) {
	if iss.err != nil {
		return certPEM, keyPEM
	}
	why := iss.check(certPEM, keyPEM, want, ipKnown)
	if why == "" {
		return certPEM, keyPEM
	}
	if !iss.reissueOld && why != "missing" && !strings.HasPrefix(why, "unreadable") && stillValid(certPEM, iss.in.Now) {
		// The new CA of a rotation is not in every bundle yet: what it
		// signs now could not be verified everywhere. A valid certificate
		// waits for the next step.
		return certPEM, keyPEM
	}
	if !ipKnown {
		// Keep the IP the old certificate named until the pod has one.
		if certs, err := pki.ParseCertificates(certPEM); err == nil {
			want.IPs = certs[0].IPAddresses
		}
	}
	crt, key, err := iss.ca.Issue(want, iss.in.Now)
	if err != nil {
		iss.err = fmt.Errorf("while issuing the certificate of %s: %w", name, err)
		return certPEM, keyPEM
	}
	if why == "missing" {
		iss.issued = append(iss.issued, name)
	} else {
		iss.renewed = append(iss.renewed, name+" ("+why+")")
	}
	return crt, key
}

// note folds one kept certificate into the status and the schedule.
func (iss *issuer) note(certPEM []byte, earliest **metav1.Time) {
	certs, err := pki.ParseCertificates(certPEM)
	if err != nil {
		return
	}
	c := certs[0]
	if *earliest == nil || c.NotAfter.Before((*earliest).Time) {
		*earliest = &metav1.Time{Time: c.NotAfter}
	}
	// pki issues from a minute before now.
	issued := c.NotBefore.Add(time.Minute)
	if iss.lastIssued == nil || issued.After(iss.lastIssued.Time) {
		iss.lastIssued = &metav1.Time{Time: issued}
	}
	iss.plan.due(c.NotAfter.Add(-RenewBefore(iss.in.Cluster)).Sub(iss.in.Now))
}

func (iss *issuer) remember(s *corev1.Secret) {
	if iss.observed == nil {
		iss.observed = map[string]*corev1.Secret{}
	}
	if s != nil {
		iss.observed[s.Name] = s
	}
}

// acceptorSecret plans <cluster>-acceptor-tls: the trust bundle and a pair
// for every pod in 0..Ordinals-1 and every existing pod.
func (iss *issuer) acceptorSecret(trust []byte) *corev1.Secret {
	in, c := iss.in, iss.in.Cluster
	old := in.Secrets.Acceptor
	iss.remember(old)
	s := newSecret(c, AcceptorTLSSecretName(c), corev1.SecretTypeOpaque)
	if old != nil {
		s = old.DeepCopy()
	}
	s.Data = map[string][]byte{KeyCACert: trust}
	for _, ord := range acceptorOrdinals(in) {
		pod := PodName(c, ord)
		ip := in.Pods[ord].IP
		var crt, key []byte
		if old != nil {
			crt, key = old.Data[PodCertKey(pod)], old.Data[PodKeyKey(pod)]
		}
		crt, key = iss.pair(pod, crt, key, AcceptorLeaf(c, pod, ip, in.domain()), ip != "")
		s.Data[PodCertKey(pod)], s.Data[PodKeyKey(pod)] = crt, key
		iss.note(crt, &iss.acceptorsNotAfter)
	}
	return s
}

// acceptorOrdinals are 0..Ordinals-1 and the ordinals of existing pods.
func acceptorOrdinals(in TLSInput) []int32 {
	set := map[int32]bool{}
	for ord := range max(in.Ordinals, 0) {
		set[ord] = true
	}
	for ord := range in.Pods {
		set[ord] = true
	}
	out := make([]int32, 0, len(set))
	for ord := range set {
		out = append(out, ord)
	}
	slices.Sort(out)
	return out
}

// clientSecret plans one kubernetes.io/tls client Secret.
func (iss *issuer) clientSecret(old *corev1.Secret, name string, leaf pki.Leaf, trust []byte) *corev1.Secret {
	iss.remember(old)
	s := newSecret(iss.in.Cluster, name, corev1.SecretTypeTLS)
	var crt, key []byte
	if old != nil {
		s = old.DeepCopy()
		crt, key = old.Data[corev1.TLSCertKey], old.Data[corev1.TLSPrivateKeyKey]
	}
	crt, key = iss.pair(name, crt, key, leaf, true)
	s.Data = map[string][]byte{KeyCACert: trust, corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}
	iss.note(crt, &iss.clientsNotAfter)
	return s
}

// changed: s differs from its observed version (or has none).
func (iss *issuer) changed(s *corev1.Secret) bool {
	old, ok := iss.observed[s.Name]
	if !ok {
		return true
	}
	if len(old.Data) != len(s.Data) {
		return true
	}
	for k, v := range s.Data {
		if !bytes.Equal(old.Data[k], v) {
			return true
		}
	}
	for k, v := range s.Annotations {
		if old.Annotations[k] != v {
			return true
		}
	}
	return false
}

func (iss *issuer) events() {
	sort.Strings(iss.issued)
	sort.Strings(iss.renewed)
	if len(iss.issued) > 0 {
		iss.plan.Events = append(iss.plan.Events, Event{Type: corev1.EventTypeNormal, Reason: EventCertificateIssued,
			Message: "Issued certificates: " + strings.Join(iss.issued, ", ")})
	}
	if len(iss.renewed) > 0 {
		iss.plan.Events = append(iss.plan.Events, Event{Type: corev1.EventTypeNormal, Reason: EventCertificateRenewed,
			Message: "Renewed certificates: " + strings.Join(iss.renewed, "; ")})
	}
}

func encodeCertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func ipString(ips []net.IP) string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return strings.Join(out, ",")
}

func stillValid(certPEM []byte, now time.Time) bool {
	certs, err := pki.ParseCertificates(certPEM)
	return err == nil && !now.Before(certs[0].NotBefore) && now.Before(certs[0].NotAfter)
}
