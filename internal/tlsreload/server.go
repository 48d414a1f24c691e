package tlsreload

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/kshaka-io/kshaka/internal/pki"
)

// ServerFiles name a server's TLS files (PEM).
type ServerFiles struct {
	// CertFile and KeyFile are the server's certificate (with any
	// intermediates after it) and private key. Required.
	CertFile, KeyFile string
	// ClientCAFile, when set, is the bundle of CAs that sign client
	// certificates: the server then asks every client for a certificate and
	// verifies one when it is given (tls.VerifyClientCertIfGiven), leaving
	// it to the application to refuse calls without one. Empty: no client
	// certificates.
	ClientCAFile string
}

func (f ServerFiles) paths() []string {
	p := []string{f.CertFile, f.KeyFile}
	if f.ClientCAFile != "" {
		p = append(p, f.ClientCAFile)
	}
	return p
}

// Server is a server's TLS material, reloaded when its files change.
type Server struct {
	files ServerFiles
	w     *watcher[serverMaterial]
}

type serverMaterial struct {
	config *tls.Config
	leaf   *x509.Certificate
	cas    int
}

// NewServer loads the files and polls them until Close. It fails when a
// file is missing or invalid.
func NewServer(f ServerFiles, o Options) (*Server, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("a TLS server needs a certificate file and a key file")
	}
	s := &Server{files: f}
	w, err := newWatcher(f.paths(), s.load, o)
	if err != nil {
		return nil, err
	}
	s.w = w
	return s, nil
}

func (s *Server) load(contents [][]byte) (*serverMaterial, error) {
	pair, err := tls.X509KeyPair(contents[0], contents[1])
	if err != nil {
		return nil, fmt.Errorf("while loading the certificate %s and key %s: %w", s.files.CertFile, s.files.KeyFile, err)
	}
	m := &serverMaterial{
		leaf:   pair.Leaf,
		config: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
	}
	if s.files.ClientCAFile != "" {
		pool, n, err := parsePool(contents[2])
		if err != nil {
			return nil, fmt.Errorf("while loading the client CA bundle %s: %w", s.files.ClientCAFile, err)
		}
		m.config.ClientCAs, m.config.ClientAuth, m.cas = pool, tls.VerifyClientCertIfGiven, n
	}
	return m, nil
}

// TLSConfig returns the configuration to serve with (credentials.NewTLS):
// every handshake uses the material current when it starts.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.w.current().config, nil
		},
	}
}

// Certificate returns the server certificate in use.
func (s *Server) Certificate() *x509.Certificate { return s.w.current().leaf }

// ClientCAs returns how many CAs the client CA bundle in use holds.
func (s *Server) ClientCAs() int { return s.w.current().cas }

// Poll checks the files now, as the watcher does every interval, and
// reports whether it loaded new material.
func (s *Server) Poll() bool { return s.w.poll() }

// Close stops polling. The material in use stays usable.
func (s *Server) Close() { s.w.close() }

// parsePool reads a PEM bundle of one or more certificates into a pool.
func parsePool(pemBytes []byte) (*x509.CertPool, int, error) {
	certs, err := pki.ParseCertificates(pemBytes)
	if err != nil {
		return nil, 0, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, len(certs), nil
}
