package localkube

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// prober runs one probe of a running container the way a kubelet does:
// httpGet (2xx and 3xx succeed), gRPC health (SERVING succeeds), tcpSocket
// and exec (run on the host with the container's environment).
type prober struct {
	probe     *corev1.Probe
	container *corev1.Container
	podIP     string
	env       []string
	dir       string
	path      string  // PATH for exec probes
	mounts    []mount // exec probes' arguments are rewritten like the container's
	// resolvConf is the pod's resolv.conf for exec probes (podns.go).
	resolvConf string
}

func (p *prober) timeout() time.Duration {
	if p.probe.TimeoutSeconds > 0 {
		return time.Duration(p.probe.TimeoutSeconds) * time.Second
	}
	return time.Second
}

func (p *prober) period() time.Duration {
	if p.probe.PeriodSeconds > 0 {
		return time.Duration(p.probe.PeriodSeconds) * time.Second
	}
	return 10 * time.Second
}

func (p *prober) successThreshold() int {
	if p.probe.SuccessThreshold > 0 {
		return int(p.probe.SuccessThreshold)
	}
	return 1
}

func (p *prober) failureThreshold() int {
	if p.probe.FailureThreshold > 0 {
		return int(p.probe.FailureThreshold)
	}
	return 3
}

// run probes until ctx ends, calling report with each change of the
// result (after the thresholds are met). The first result is reported
// as soon as it is known.
func (p *prober) run(ctx context.Context, report func(ok bool, msg string)) {
	if d := time.Duration(p.probe.InitialDelaySeconds) * time.Second; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	tick := time.NewTicker(p.period())
	defer tick.Stop()
	var (
		reported     bool
		state        bool
		succ, failed int
	)
	for {
		pctx, cancel := context.WithTimeout(ctx, p.timeout())
		err := p.once(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			succ, failed = succ+1, 0
			if (!reported || !state) && succ >= p.successThreshold() {
				reported, state = true, true
				report(true, "")
			}
		} else {
			succ, failed = 0, failed+1
			if (!reported || state) && failed >= p.failureThreshold() {
				reported, state = true, false
				report(false, err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// once runs the probe one time.
func (p *prober) once(ctx context.Context) error {
	h := p.probe.ProbeHandler
	switch {
	case h.HTTPGet != nil:
		return p.http(ctx, h.HTTPGet)
	case h.GRPC != nil:
		return p.grpc(ctx, h.GRPC)
	case h.TCPSocket != nil:
		host := h.TCPSocket.Host
		if host == "" {
			host = p.podIP
		}
		port, err := p.port(h.TCPSocket.Port)
		if err != nil {
			return err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case h.Exec != nil:
		if len(h.Exec.Command) == 0 {
			return fmt.Errorf("exec probe without a command")
		}
		cmd := exec.CommandContext(ctx, h.Exec.Command[0], rewriteArgs(h.Exec.Command[1:], p.mounts)...)
		cmd.Env, cmd.Dir = p.env, p.dir
		cmd.Path = lookPath(h.Exec.Command[0], p.path)
		inPodNamespace(cmd, p.resolvConf)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("exec probe failed: %v: %s", err, truncate(string(out), 200))
		}
		return nil
	}
	return fmt.Errorf("probe has no handler")
}

func (p *prober) http(ctx context.Context, g *corev1.HTTPGetAction) error {
	port, err := p.port(g.Port)
	if err != nil {
		return err
	}
	host := g.Host
	if host == "" {
		host = p.podIP
	}
	scheme := "http"
	if g.Scheme == corev1.URISchemeHTTPS {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: g.Path}
	if u.Path == "" {
		u.Path = "/"
	}
	if pu, err := url.Parse(g.Path); err == nil {
		u.Path, u.RawQuery = pu.Path, pu.RawQuery
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kube-probe/localkube")
	for _, h := range g.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // like the kubelet
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect counts as success
		},
	}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d: %s", resp.StatusCode, truncate(string(body), 200))
	}
	return nil
}

func (p *prober) grpc(ctx context.Context, g *corev1.GRPCAction) error {
	addr := net.JoinHostPort(p.podIP, strconv.Itoa(int(g.Port)))
	// Fail fast, and without gRPC's connection warnings, while nothing listens.
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("gRPC probe: %w", err)
	}
	_ = conn.Close()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	svc := ""
	if g.Service != nil {
		svc = *g.Service
	}
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
	if err != nil {
		return fmt.Errorf("gRPC probe failed: %w", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("gRPC probe: service unhealthy (responded with %q)", resp.GetStatus())
	}
	return nil
}

// port resolves a numeric or named container port.
func (p *prober) port(port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, cp := range p.container.Ports {
		if cp.Name == port.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("no container port named %q", port.StrVal)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
