package localkube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
)

// ClusterResolver resolves cluster names on the host, outside pods, through
// the cluster DNS: test harness networking for clients that run on the host
// (the end-to-end tests, the demo's client), like a port-forward. A name
// is looked up as a pod of any namespace would: NAME.svc.DOMAIN, then
// NAME.DOMAIN, then NAME itself (so "kc-0.kc-peers.ns.svc" and
// "kc-peers.ns" both work); a name the cluster DNS does not know, and an IP
// address, resolve as on the host.
type ClusterResolver struct {
	server netip.AddrPort
	domain string
	r      *net.Resolver
}

// NewClusterResolver returns a resolver asking the cluster DNS at server
// (Cluster.DNSServer, or State.DNSServer of a running environment) about
// names under domain ("cluster.local").
func NewClusterResolver(server netip.AddrPort, domain string) *ClusterResolver {
	var d net.Dialer
	return &ClusterResolver{
		server: server,
		domain: strings.Trim(strings.ToLower(domain), "."),
		r: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, server.String())
		}},
	}
}

// Resolver returns a resolver through the cluster DNS, or nil when it is
// off (Config.DisableDNS).
func (c *Cluster) Resolver() *ClusterResolver {
	if c.dns == nil {
		return nil
	}
	return NewClusterResolver(c.DNSServer(), c.cfg.ClusterDomain)
}

// DNSServer is the address of the cluster DNS (the last address of
// PodAddresses, port 53), or the zero AddrPort when it is off.
func (c *Cluster) DNSServer() netip.AddrPort {
	if c.dns == nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(c.dns.addr, 53)
}

// LookupHost returns the IPv4 addresses of host.
func (r *ClusterResolver) LookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	name := strings.ToLower(host)
	var candidates []string
	switch {
	case strings.HasSuffix(name, "."):
		candidates = []string{name}
	case name == r.domain || strings.HasSuffix(name, "."+r.domain):
		candidates = []string{name + "."}
	default:
		candidates = []string{name + ".svc." + r.domain + ".", name + "." + r.domain + "."}
	}
	var lastErr error
	for _, n := range candidates {
		addrs, err := r.r.LookupNetIP(ctx, "ip4", n)
		if err == nil && len(addrs) > 0 {
			return addrs, nil
		}
		var de *net.DNSError
		if err != nil && (!errors.As(err, &de) || !de.IsNotFound) {
			lastErr = err // the cluster DNS did not answer: say so
		}
	}
	if lastErr != nil {
		return nil, fmt.Errorf("while resolving %s through the cluster DNS at %s: %w", host, r.server, lastErr)
	}
	if strings.HasSuffix(strings.TrimSuffix(name, "."), "."+r.domain) || strings.HasSuffix(name, ".svc") {
		return nil, fmt.Errorf("%s: no such name in the cluster DNS at %s (is the Service headless, and the pod's endpoint published?)", host, r.server)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return nil, err
	}
	return addrs, nil
}

// DialContext dials addr ("host:port") over TCP, resolving host through the
// cluster DNS.
func (r *ClusterResolver) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := r.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	var errs []error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// GRPCDialOptions make a gRPC client reach cluster names through the
// cluster DNS: a resolver for the "dns" scheme (gRPC's default, as in
// grpc.NewClient("kc-0.kc-peers.ns.svc:7000")) and a context dialer (for
// "passthrough:///" targets). The authority, hence the TLS server name,
// stays the name the client was given: only the address dialled changes.
func (r *ClusterResolver) GRPCDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithResolvers(grpcDNS{r}),
		grpc.WithContextDialer(r.DialContext),
	}
}

// grpcDNS is a gRPC resolver for the "dns" scheme through a ClusterResolver.
type grpcDNS struct{ r *ClusterResolver }

func (grpcDNS) Scheme() string { return "dns" }

// minResolveInterval spaces re-resolutions that gRPC asks for when
// connections fail.
const minResolveInterval = 200 * time.Millisecond

func (b grpcDNS) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	ep := target.Endpoint()
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		host, port = ep, "443" // gRPC's default port for the dns scheme
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &grpcResolver{r: b.r, host: host, port: port, cc: cc, cancel: cancel, now: make(chan struct{}, 1)}
	g.wg.Add(1)
	go g.loop(ctx)
	g.ResolveNow(resolver.ResolveNowOptions{})
	return g, nil
}

type grpcResolver struct {
	r          *ClusterResolver
	host, port string
	cc         resolver.ClientConn
	cancel     context.CancelFunc
	now        chan struct{}
	wg         sync.WaitGroup
}

func (g *grpcResolver) ResolveNow(resolver.ResolveNowOptions) {
	select {
	case g.now <- struct{}{}:
	default:
	}
}

func (g *grpcResolver) Close() {
	g.cancel()
	g.wg.Wait()
}

func (g *grpcResolver) loop(ctx context.Context) {
	defer g.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.now:
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := g.r.LookupHost(lctx, g.host)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			g.cc.ReportError(err)
		} else {
			var st resolver.State
			for _, ip := range ips {
				st.Addresses = append(st.Addresses, resolver.Address{Addr: net.JoinHostPort(ip.String(), g.port)})
			}
			_ = g.cc.UpdateState(st)
		}
		t := time.NewTimer(minResolveInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
