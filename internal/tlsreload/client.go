package tlsreload

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc/credentials"
)

// The file names of the kubernetes.io/tls layout (as a Secret volume, or
// cert-manager, writes them).
const (
	CAFileName   = "ca.crt"
	CertFileName = "tls.crt"
	KeyFileName  = "tls.key"
)

// ClientFiles name a client's TLS files (PEM).
type ClientFiles struct {
	// CAFile is the bundle of CAs the servers' certificates must be signed
	// by. Required.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key, for
	// mutual TLS; both or neither.
	CertFile, KeyFile string
}

// DirFiles returns the files of dir in the kubernetes.io/tls layout:
// dir/ca.crt, and dir/tls.crt with dir/tls.key when tls.crt exists. It fails
// when ca.crt is missing, or only one of tls.crt and tls.key exists.
func DirFiles(dir string) (ClientFiles, error) {
	f := ClientFiles{CAFile: filepath.Join(dir, CAFileName)}
	if _, err := os.Stat(f.CAFile); err != nil {
		return f, fmt.Errorf("the TLS directory %s has no %s (the CA bundle): %w", dir, CAFileName, err)
	}
	cert, key := filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName)
	_, certErr := os.Stat(cert)
	_, keyErr := os.Stat(key)
	switch {
	case certErr == nil && keyErr == nil:
		f.CertFile, f.KeyFile = cert, key
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
	case certErr == nil:
		return f, fmt.Errorf("the TLS directory %s has %s but no %s: %w", dir, CertFileName, KeyFileName, keyErr)
	default:
		return f, fmt.Errorf("the TLS directory %s: %s: %w", dir, CertFileName, certErr)
	}
	return f, nil
}

func (f ClientFiles) paths() []string {
	p := []string{f.CAFile}
	if f.CertFile != "" {
		p = append(p, f.CertFile, f.KeyFile)
	}
	return p
}

// Client is a client's TLS material, reloaded when its files change.
type Client struct {
	files ClientFiles
	w     *watcher[clientMaterial]
}

type clientMaterial struct {
	roots *x509.CertPool
	cert  *tls.Certificate // nil: no client certificate
}

// NewClient loads the files and polls them until Close. It fails when a file
// is missing or invalid.
func NewClient(f ClientFiles, o Options) (*Client, error) {
	if f.CAFile == "" {
		return nil, errors.New("a TLS client needs a CA bundle file")
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("a client certificate file and its key file go together")
	}
	c := &Client{files: f}
	w, err := newWatcher(f.paths(), c.load, o)
	if err != nil {
		return nil, err
	}
	c.w = w
	return c, nil
}

func (c *Client) load(contents [][]byte) (*clientMaterial, error) {
	pool, _, err := parsePool(contents[0])
	if err != nil {
		return nil, fmt.Errorf("while loading the CA bundle %s: %w", c.files.CAFile, err)
	}
	m := &clientMaterial{roots: pool}
	if c.files.CertFile != "" {
		pair, err := tls.X509KeyPair(contents[1], contents[2])
		if err != nil {
			return nil, fmt.Errorf("while loading the client certificate %s and key %s: %w", c.files.CertFile, c.files.KeyFile, err)
		}
		m.cert = &pair
	}
	return m, nil
}

// Config returns a TLS configuration with the material current now: the CA
// bundle as roots and the client certificate, if any. serverName, when not
// empty, is the name to verify in the servers' certificates instead of the
// dialled host.
func (c *Client) Config(serverName string) *tls.Config {
	m := c.w.current()
	cfg := &tls.Config{RootCAs: m.roots, ServerName: serverName, MinVersion: tls.VersionTLS12}
	if m.cert != nil {
		cfg.Certificates = []tls.Certificate{*m.cert}
	}
	return cfg
}

// Credentials returns gRPC transport credentials that take the current
// material at every handshake (Config), and verify the server's certificate
// against the dialled host, or serverName when it is not empty, with Go's
// standard verification.
func (c *Client) Credentials(serverName string) credentials.TransportCredentials {
	return &clientCreds{c: c, serverName: serverName}
}

// HasCertificate reports whether the client presents a certificate.
func (c *Client) HasCertificate() bool { return c.files.CertFile != "" }

// Poll checks the files now, as the watcher does every interval, and
// reports whether it loaded new material.
func (c *Client) Poll() bool { return c.w.poll() }

// Close stops polling. Credentials keep using the material loaded last.
func (c *Client) Close() { c.w.close() }

type clientCreds struct {
	c          *Client
	serverName string
}

// ClientHandshake verifies the server against the dialled host (authority),
// or serverName when set: gRPC's TLS handshake takes the name to verify from
// the authority it is given.
func (k *clientCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if k.serverName != "" {
		authority = k.serverName
	}
	return credentials.NewTLS(k.c.Config(k.serverName)).ClientHandshake(ctx, authority, raw)
}

func (k *clientCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("tlsreload: client credentials cannot serve")
}

func (k *clientCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (k *clientCreds) Clone() credentials.TransportCredentials {
	cp := *k
	return &cp
}

// OverrideServerName implements a deprecated method of
// credentials.TransportCredentials.
func (k *clientCreds) OverrideServerName(name string) error {
	k.serverName = name
	return nil
}
