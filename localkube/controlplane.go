package localkube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// ports are the control plane's listening ports on 127.0.0.1, saved in
// Dir/ports.json so that a restarted environment keeps its addresses.
type ports struct {
	Etcd              int `json:"etcd"`
	EtcdPeer          int `json:"etcdPeer"`
	APIServer         int `json:"apiServer"`
	ControllerManager int `json:"controllerManager"`
	Kubelet           int `json:"kubelet"`
}

// resolvePorts merges the configured ports, the saved ones and free ones,
// in that order of preference, and saves the result.
func resolvePorts(cfg *Config) (ports, error) {
	path := filepath.Join(cfg.Dir, "ports.json")
	var saved ports
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &saved)
	}
	pick := func(configured, saved int) (int, error) {
		if configured != 0 {
			return configured, nil
		}
		if saved != 0 && portFree(saved) {
			return saved, nil
		}
		return freePort()
	}
	var p ports
	var err error
	for _, f := range []struct {
		dst               *int
		configured, saved int
	}{
		{&p.Etcd, cfg.EtcdPort, saved.Etcd},
		{&p.EtcdPeer, cfg.EtcdPeerPort, saved.EtcdPeer},
		{&p.APIServer, cfg.APIServerPort, saved.APIServer},
		{&p.ControllerManager, cfg.ControllerManagerPort, saved.ControllerManager},
		{&p.Kubelet, cfg.KubeletPort, saved.Kubelet},
	} {
		if *f.dst, err = pick(f.configured, f.saved); err != nil {
			return p, err
		}
	}
	b, _ := json.MarshalIndent(p, "", "  ")
	return p, os.WriteFile(path, b, 0o644)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("while picking a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// component is one control-plane binary.
type component struct {
	name  string
	args  []string
	ready func(ctx context.Context) error // nil error when serving
}

func (c *Cluster) etcdComponent() component {
	peer := fmt.Sprintf("http://127.0.0.1:%d", c.ports.EtcdPeer)
	client := fmt.Sprintf("http://127.0.0.1:%d", c.ports.Etcd)
	args := []string{
		"--name=localkube",
		"--data-dir=" + filepath.Join(c.cfg.Dir, "etcd"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=localkube=" + peer,
		"--initial-cluster-state=new",
		"--log-level=warn",
		"--auto-compaction-mode=periodic",
		"--auto-compaction-retention=10m",
	}
	if !c.cfg.EtcdFsync {
		args = append(args, "--unsafe-no-fsync")
	}
	return component{
		name: "etcd",
		args: args,
		ready: func(ctx context.Context) error {
			return httpOK(ctx, http.DefaultClient, client+"/health")
		},
	}
}

func (c *Cluster) apiServerComponent() component {
	pki := c.pki
	args := []string{
		"--etcd-servers=" + fmt.Sprintf("http://127.0.0.1:%d", c.ports.Etcd),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.ports.APIServer),
		"--cert-dir=" + filepath.Join(c.cfg.Dir, "pki", "apiserver-generated"),
		"--tls-cert-file=" + pki.path(pkiAPIServer, "crt"),
		"--tls-private-key-file=" + pki.path(pkiAPIServer, "key"),
		"--client-ca-file=" + pki.path(pkiCA, "crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.path(pkiServiceAcct, "pub"),
		"--service-account-signing-key-file=" + pki.path(pkiServiceAcct, "key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--kubelet-client-certificate=" + pki.path(pkiKubeletClient, "crt"),
		"--kubelet-client-key=" + pki.path(pkiKubeletClient, "key"),
		"--kubelet-certificate-authority=" + pki.path(pkiCA, "crt"),
		"--kubelet-preferred-address-types=InternalIP",
		// The kubernetes Service would point at 127.0.0.1, which is not a
		// valid endpoint address; nothing routes Service IPs here anyway.
		"--endpoint-reconciler-type=none",
		// Webhooks and aggregated APIs reach Services through their
		// endpoints (the pods' loopback addresses): there is no kube-proxy.
		"--enable-aggregator-routing=true",
		// Aggregated API servers and the controller manager's delegated
		// authentication read these.
		"--requestheader-client-ca-file=" + pki.path(pkiCA, "crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + pki.path(pkiFrontProxy, "crt"),
		"--proxy-client-key-file=" + pki.path(pkiFrontProxy, "key"),
		"--profiling=false",
	}
	admin := c.adminTLS
	return component{
		name: "kube-apiserver",
		args: args,
		ready: func(ctx context.Context) error {
			cl := &http.Client{Transport: &http.Transport{TLSClientConfig: admin}}
			return httpOK(ctx, cl, fmt.Sprintf("https://127.0.0.1:%d/readyz", c.ports.APIServer))
		},
	}
}

func (c *Cluster) controllerManagerComponent() component {
	pki := c.pki
	kc := c.KubeconfigPath()
	args := []string{
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.ports.ControllerManager),
		"--cert-dir=" + filepath.Join(c.cfg.Dir, "pki", "controller-manager-generated"),
		"--leader-elect=false",
		"--cluster-name=localkube",
		"--service-account-private-key-file=" + pki.path(pkiServiceAcct, "key"),
		"--root-ca-file=" + pki.path(pkiCA, "crt"),
		"--cluster-signing-cert-file=" + pki.path(pkiCA, "crt"),
		"--cluster-signing-key-file=" + pki.path(pkiCA, "key"),
		"--use-service-account-credentials=false",
		"--profiling=false",
	}
	return component{
		name: "kube-controller-manager",
		args: args,
		ready: func(ctx context.Context) error {
			// Self-signed serving certificate; /healthz is open to anyone.
			cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback health check
			return httpOK(ctx, cl, fmt.Sprintf("https://127.0.0.1:%d/healthz", c.ports.ControllerManager))
		},
	}
}

// startComponent starts comp with its output in Dir/logs/NAME.log and waits
// until it is ready, failing early when it exits.
func (c *Cluster) startComponent(ctx context.Context, comp component) (*proc, error) {
	start := time.Now()
	c.progress("starting %s", comp.name)
	logPath := filepath.Join(c.cfg.Dir, "logs", comp.name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "\n==== %s starting at %s\n", comp.name, time.Now().Format(time.RFC3339))
	cmd := exec.Command(filepath.Join(c.cfg.KubeBinDir, comp.name), comp.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = c.cfg.Dir
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	p, err := startProc(comp.name, cmd, filepath.Join(c.cfg.Dir, "run", comp.name+".pid"))
	if err != nil {
		return nil, err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		lastErr = comp.ready(rctx)
		cancel()
		if lastErr == nil {
			c.progress("%s ready in %.1fs", comp.name, time.Since(start).Seconds())
			return p, nil
		}
		select {
		case <-p.done:
			code, _ := p.exitCode()
			return nil, fmt.Errorf("%s exited with code %d while starting; see %s:\n%s",
				comp.name, code, logPath, tailFile(logPath, 15))
		case <-ctx.Done():
			p.stop(5 * time.Second)
			return nil, fmt.Errorf("%s was not ready in time (last check: %v); see %s: %w",
				comp.name, lastErr, logPath, ctx.Err())
		case <-tick.C:
		}
	}
}

func httpOK(ctx context.Context, cl *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	return nil
}

// adminTLSConfig is a client TLS configuration with the admin certificate.
func (p *pki) adminTLSConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(p.path(pkiAdmin, "crt"), p.path(pkiAdmin, "key"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.caPEM) {
		return nil, errors.New("bad CA certificate")
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// tailFile returns the last n lines of path, for error messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := splitLines(string(b))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := ""
	for _, l := range lines {
		out += "    " + l + "\n"
	}
	return out
}

func splitLines(s string) []string {
	var lines []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		lines = append(lines, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return lines
}
