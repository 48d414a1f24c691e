package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// Role is what a client certificate allows its holder to do.
type Role int

const (
	// RoleNone: the certificate names no Kshaka role; every RPC is refused.
	RoleNone Role = iota
	// RoleClient: the data path (Prepare, Accept, Read) and GetConfig.
	RoleClient
	// RoleAdmin: everything, including SetConfig, ListKeys and Status. Only
	// the operator's certificate carries it.
	RoleAdmin
)

// The Subject Organization values that carry a role.
const (
	OrgAdmin  = "kshaka:admin"
	OrgClient = "kshaka:client"
)

func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// RoleOf returns the highest role named in cert's Subject Organization. It
// does not verify cert; the TLS handshake did that.
func RoleOf(cert *x509.Certificate) Role {
	switch {
	case cert == nil:
		return RoleNone
	case slices.Contains(cert.Subject.Organization, OrgAdmin):
		return RoleAdmin
	case slices.Contains(cert.Subject.Organization, OrgClient):
		return RoleClient
	}
	return RoleNone
}

// CA is a certificate authority: its certificate and signing key.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA makes a self-signed CA valid from now (less a minute of clock skew)
// for validity.
func NewCA(commonName string, validity time.Duration, now time.Time) (*CA, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("CA validity must be positive, not %v", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"kshaka"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// ParseCA reads a CA from its PEM certificate and key, checking that they
// belong together and that the certificate is a CA.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, fmt.Errorf("certificate %q is not a CA", cert.Subject.CommonName)
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("the CA's key does not match its certificate")
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(cert.Raw), KeyPEM: keyPEM}, nil
}

// Leaf describes a certificate to issue.
type Leaf struct {
	CommonName string
	// Organization carries the role of a client certificate (OrgAdmin,
	// OrgClient).
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	// Server and Client set the extended key usages; a certificate may be
	// both.
	Server, Client bool
	Validity       time.Duration
}

// Issue signs a new key pair for l, valid from now (less a minute) for
// l.Validity, but never beyond the CA's own expiry.
func (ca *CA) Issue(l Leaf, now time.Time) (certPEM, keyPEM []byte, err error) {
	if l.Validity <= 0 {
		return nil, nil, fmt.Errorf("certificate validity must be positive, not %v", l.Validity)
	}
	if !l.Server && !l.Client {
		return nil, nil, errors.New("a certificate must be for servers, clients or both")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(l.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: l.CommonName, Organization: l.Organization},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     l.DNSNames,
		IPAddresses:  l.IPs,
	}
	if l.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if l.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// ParseCertificates reads every CERTIFICATE block of a PEM bundle; it fails
// when there is none.
func ParseCertificates(pemBytes []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := pemBytes; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("while parsing a certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// ParseKey reads a PKCS #8, EC or PKCS #1 PEM private key.
func ParseKey(pemBytes []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("no PEM private key found")
	}
	var (
		k   any
		err error
	)
	switch b.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("while parsing a private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	return s, nil
}

// Expiry returns the NotAfter of the first certificate in certPEM.
func Expiry(certPEM []byte) (time.Time, error) {
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return time.Time{}, err
	}
	return certs[0].NotAfter, nil
}

// NeedsRenewal reports whether the first certificate of certPEM is
// unreadable, not yet valid, or expires within renewBefore of now.
func NeedsRenewal(certPEM []byte, now time.Time, renewBefore time.Duration) bool {
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return true
	}
	c := certs[0]
	return now.Before(c.NotBefore) || !now.Add(renewBefore).Before(c.NotAfter)
}

// SignedBy reports whether the first certificate of certPEM was signed by
// one of the CAs of bundlePEM.
func SignedBy(certPEM, bundlePEM []byte) bool {
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return false
	}
	cas, err := ParseCertificates(bundlePEM)
	if err != nil {
		return false
	}
	for _, ca := range cas {
		if certs[0].CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

func serialNumber() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
