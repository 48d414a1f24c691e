package cli

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kshaka-io/kshaka/internal/adminclient"
)

// defaultEndpoints are the addresses `kshaka local` uses with its defaults.
const defaultEndpoints = "127.0.0.1:7400,127.0.0.1:7401,127.0.0.1:7402"

// clientOptions are the global flags shared by every command that talks to
// acceptors.
type clientOptions struct {
	endpoints          []string
	timeout            time.Duration
	adminToken         string
	adminTokenFile     string
	tls                bool
	caCert             string
	cert               string
	key                string
	serverName         string
	insecureSkipVerify bool
}

// envFlags maps global flags to the environment variables that set them when
// the flag is not given.
var envFlags = map[string]string{
	"endpoints":            "KSHAKA_ENDPOINTS",
	"timeout":              "KSHAKA_TIMEOUT",
	"admin-token":          "KSHAKA_ADMIN_TOKEN",
	"admin-token-file":     "KSHAKA_ADMIN_TOKEN_FILE",
	"tls":                  "KSHAKA_TLS",
	"cacert":               "KSHAKA_CACERT",
	"cert":                 "KSHAKA_CERT",
	"key":                  "KSHAKA_KEY",
	"tls-server-name":      "KSHAKA_TLS_SERVER_NAME",
	"insecure-skip-verify": "KSHAKA_INSECURE_SKIP_VERIFY",
}

func (o *clientOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.endpoints, "endpoints", strings.Split(defaultEndpoints, ","),
		"comma-separated host:port addresses of acceptors; any one is enough to find the configuration")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "deadline for the whole command")
	fs.StringVar(&o.adminToken, "admin-token", "", "bearer token for the acceptors' admin calls (status; local passes it to its acceptors). Default: the token of a 'kshaka local' in ./kshaka-data when every endpoint is on loopback")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "file holding the admin token (e.g. DIR/admin-token of 'kshaka local'); surrounding whitespace is trimmed")
	fs.BoolVar(&o.tls, "tls", false, "use TLS with the system's root CAs (implied by --cacert, --cert and --insecure-skip-verify); with local: serve mutual TLS with a local CA")
	fs.StringVar(&o.caCert, "cacert", "", "PEM file of the CA(s) that signed the acceptors' certificates")
	fs.StringVar(&o.cert, "cert", "", "PEM client certificate for mutual TLS (with --key)")
	fs.StringVar(&o.key, "key", "", "PEM private key of --cert")
	fs.StringVar(&o.serverName, "tls-server-name", "", "server name to verify in the acceptors' certificates (default: the endpoint's host)")
	fs.BoolVar(&o.insecureSkipVerify, "insecure-skip-verify", false, "use TLS but do not verify the acceptors' certificates (testing only)")
	for name, env := range envFlags {
		f := fs.Lookup(name)
		f.Usage += " (env " + env + ")"
	}
}

// applyEnv sets every global flag that was not given on the command line from
// its environment variable, with the flag's own parsing and validation.
func applyEnv(fs *pflag.FlagSet) error {
	for name, env := range envFlags {
		f := fs.Lookup(name)
		if f == nil || f.Changed {
			continue
		}
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			continue
		}
		if f.Value.Type() == "stringSlice" {
			// Replace the default rather than append to it.
			if err := f.Value.(pflag.SliceValue).Replace(splitList(v)); err != nil {
				return usageErrorf("invalid %s=%q: %v", env, v, err)
			}
			continue
		}
		if err := f.Value.Set(v); err != nil {
			return usageErrorf("invalid %s=%q: %v", env, v, err)
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// validate checks the options after flags and environment are applied.
func (o *clientOptions) validate() error {
	o.endpoints = splitList(strings.Join(o.endpoints, ","))
	if len(o.endpoints) == 0 {
		return usageErrorf("no endpoints: set --endpoints or KSHAKA_ENDPOINTS")
	}
	if o.timeout <= 0 {
		return usageErrorf("--timeout must be positive, not %v", o.timeout)
	}
	if (o.cert == "") != (o.key == "") {
		return usageErrorf("--cert and --key go together")
	}
	if o.adminToken != "" && o.adminTokenFile != "" {
		return usageErrorf("set --admin-token or --admin-token-file, not both")
	}
	return nil
}

// token returns the admin token: --admin-token, the contents of
// --admin-token-file, or, when neither is set and every endpoint is on
// loopback, the token a 'kshaka local' with the default --dir wrote. ""
// without one.
func (o *clientOptions) token() (string, error) {
	switch {
	case o.adminToken != "":
		return o.adminToken, nil
	case o.adminTokenFile != "":
		tok, err := readToken(o.adminTokenFile)
		if err != nil {
			return "", fmt.Errorf("--admin-token-file: %w", err)
		}
		return tok, nil
	}
	for _, ep := range o.endpoints {
		if !adminclient.IsLoopback(ep) {
			return "", nil
		}
	}
	tok, err := readToken(filepath.Join(defaultLocalDir, adminTokenFileName))
	if err != nil {
		return "", nil // no local cluster here, or not readable: none
	}
	return tok, nil
}

// readToken reads a token file, trimming surrounding whitespace.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return tok, nil
}

// tlsEnabled reports whether any TLS option was set.
func (o *clientOptions) tlsEnabled() bool {
	return o.tls || o.caCert != "" || o.cert != "" || o.insecureSkipVerify
}

// tlsConfig builds the client TLS configuration, or nil for plaintext.
func (o *clientOptions) tlsConfig() (*tls.Config, error) {
	if !o.tlsEnabled() {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         o.serverName,
		InsecureSkipVerify: o.insecureSkipVerify, //nolint:gosec // explicitly requested by the user
	}
	if o.caCert != "" {
		pem, err := os.ReadFile(o.caCert)
		if err != nil {
			return nil, fmt.Errorf("while reading --cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s holds no PEM certificate", o.caCert)
		}
		cfg.RootCAs = pool
	}
	if o.cert != "" {
		pair, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, fmt.Errorf("while loading --cert and --key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// clientTLSFlagsSet reports whether a TLS flag other than --tls was given
// explicitly: kshaka local makes its own certificates.
func clientTLSFlagsSet(cmd *cobra.Command) bool {
	for _, n := range []string{"cacert", "cert", "key", "tls-server-name", "insecure-skip-verify"} {
		if f := cmd.Flags().Lookup(n); f != nil && f.Changed {
			return true
		}
	}
	return false
}
