package localkube

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// DNSTTL is the time to live of every answer of the cluster DNS: short, so
// that a client that caches sees a rescheduled pod's new address soon.
const DNSTTL = 5 * time.Second

// dnsRecords answers questions about the cluster domain from the
// apiserver's Services and Pods, the way the Kubernetes DNS specification
// (and CoreDNS) does for A records:
//
//	<service>.<ns>.svc.<domain>        a headless Service: the IPs of the
//	                                   pods it selects that are ready (all
//	                                   of them with publishNotReadyAddresses);
//	                                   another Service: its ClusterIP
//	<hostname>.<service>.<ns>.svc.<domain>
//	                                   such a pod with that spec.hostname
//	                                   and spec.subdomain <service> (a
//	                                   StatefulSet's pods)
//
// Anything else under the domain does not exist (NXDOMAIN); a name that
// exists has no records of other types (IPv4 only). A real cluster's DNS
// reads EndpointSlices, which the EndpointSlice controller fills from the
// same pods with the same rules; localkube cannot use them because pod
// IPs are loopback addresses, which EndpointSlice validation refuses.
type dnsRecords struct {
	domain   string // "cluster.local", lower case, no dots at either end
	services corev1listers.ServiceLister
	pods     corev1listers.PodLister
}

// dnsAnswer is what a name resolves to.
type dnsAnswer struct {
	inDomain bool // the name is under the cluster domain
	exists   bool // otherwise NXDOMAIN
	addrs    []netip.Addr
}

// lookup resolves name (any case, with or without the final dot).
func (r *dnsRecords) lookup(name string) (dnsAnswer, error) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name != r.domain && !strings.HasSuffix(name, "."+r.domain) {
		return dnsAnswer{}, nil
	}
	a := dnsAnswer{inDomain: true}
	rest := strings.TrimSuffix(strings.TrimSuffix(name, r.domain), ".")
	var parts []string
	if rest != "" {
		parts = strings.Split(rest, ".")
	}
	n := len(parts)
	switch {
	case n == 0, n == 1 && parts[0] == "svc":
		a.exists = true // the domain and svc.<domain>: names without records
		return a, nil
	case parts[n-1] != "svc":
		return a, nil
	case n == 2:
		ns := parts[0]
		// <ns>.svc.<domain> exists when some Service lives in ns.
		svcs, err := r.services.Services(ns).List(labels.Everything())
		a.exists = len(svcs) > 0
		return a, err
	case n == 3:
		svc, err := r.services.Services(parts[1]).Get(parts[0])
		if apierrors.IsNotFound(err) {
			return a, nil
		}
		if err != nil {
			return a, err
		}
		a.exists = true
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			if ip, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil && ip.Is4() {
				a.addrs = []netip.Addr{ip}
			}
			return a, nil
		}
		a.addrs, err = r.endpointAddrs(svc, "")
		return a, err
	case n == 4:
		svc, err := r.services.Services(parts[2]).Get(parts[1])
		if apierrors.IsNotFound(err) || (err == nil && svc.Spec.ClusterIP != corev1.ClusterIPNone) {
			return a, nil
		}
		if err != nil {
			return a, err
		}
		a.addrs, err = r.endpointAddrs(svc, parts[0])
		a.exists = len(a.addrs) > 0
		return a, err
	}
	return a, nil
}

// endpointAddrs lists the IPv4 addresses of the pods svc selects that DNS
// publishes, as the EndpointSlice controller would: with a pod IP, not
// finished, and ready and not terminating unless the Service publishes
// not-ready addresses; only those with the given hostname (and subdomain
// svc) unless it is empty. Sorted, without repeats.
func (r *dnsRecords) endpointAddrs(svc *corev1.Service, hostname string) ([]netip.Addr, error) {
	if len(svc.Spec.Selector) == 0 {
		return nil, nil // endpoints managed by hand: none can hold a pod IP here
	}
	pods, err := r.pods.Pods(svc.Namespace).List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if !svc.Spec.PublishNotReadyAddresses && (p.DeletionTimestamp != nil || !PodReady(p)) {
			continue
		}
		if hostname != "" && (strings.ToLower(p.Spec.Hostname) != hostname || p.Spec.Subdomain != svc.Name) {
			continue
		}
		for _, ip := range p.Status.PodIPs {
			if a, err := netip.ParseAddr(ip.IP); err == nil && a.Is4() {
				addrs = append(addrs, a)
			}
		}
		if len(p.Status.PodIPs) == 0 {
			if a, err := netip.ParseAddr(p.Status.PodIP); err == nil && a.Is4() {
				addrs = append(addrs, a)
			}
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs), nil
}

// respond builds the response to one query message. Questions outside the
// cluster domain go to forward (nil: answered SERVFAIL).
func (r *dnsRecords) respond(query []byte, maxSize int, forward func([]byte) ([]byte, error)) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, fmt.Errorf("while parsing a DNS query: %w", err)
	}
	q, err := p.Question()
	if err != nil {
		return nil, fmt.Errorf("while parsing a DNS question: %w", err)
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if h.OpCode != 0 {
		rh.RCode = dnsmessage.RCodeNotImplemented
		return buildResponse(rh, q, nil)
	}
	ans, err := r.lookup(q.Name.String())
	switch {
	case err != nil:
		rh.RCode = dnsmessage.RCodeServerFailure
		return buildResponse(rh, q, nil)
	case !ans.inDomain:
		if forward != nil {
			if resp, err := forward(query); err == nil {
				return resp, nil
			}
		}
		rh.RCode = dnsmessage.RCodeServerFailure
		return buildResponse(rh, q, nil)
	case !ans.exists:
		rh.Authoritative = true
		rh.RCode = dnsmessage.RCodeNameError
		return buildResponse(rh, q, nil)
	}
	rh.Authoritative = true
	var addrs []netip.Addr
	if q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeALL {
		addrs = ans.addrs
	}
	resp, err := buildResponse(rh, q, addrs)
	if err == nil && len(resp) > maxSize {
		rh.Truncated = true // the client asks again over TCP
		return buildResponse(rh, q, nil)
	}
	return resp, err
}

func buildResponse(h dnsmessage.Header, q dnsmessage.Question, addrs []netip.Addr) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), h)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	for _, a := range addrs {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: uint32(DNSTTL / time.Second)}
		if err := b.AResource(rh, dnsmessage.AResource{A: a.As4()}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// dnsServer serves dnsRecords over UDP and TCP on one address, port 53.
type dnsServer struct {
	rec       *dnsRecords
	addr      netip.Addr
	upstreams []string // the host's name servers, "IP:53"
	udp       net.PacketConn
	tcp       net.Listener
	wg        sync.WaitGroup
}

// startDNS listens on addr:53 (which needs root or CAP_NET_BIND_SERVICE),
// starts informers on Services and Pods and serves once they
// have synced, which it waits for until startCtx ends. It stops when ctx
// ends.
func startDNS(ctx, startCtx context.Context, cl kubernetes.Interface, addr netip.Addr, domain string) (*dnsServer, error) {
	hp := netip.AddrPortFrom(addr, 53).String()
	udp, err := net.ListenPacket("udp4", hp)
	if err != nil {
		return nil, fmt.Errorf("while listening for DNS on udp %s: %w", hp, err)
	}
	tcp, err := net.Listen("tcp4", hp)
	if err != nil {
		_ = udp.Close()
		return nil, fmt.Errorf("while listening for DNS on tcp %s: %w", hp, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	f := informers.NewSharedInformerFactory(cl, 0)
	s := &dnsServer{
		rec: &dnsRecords{
			domain:   strings.Trim(strings.ToLower(domain), "."),
			services: f.Core().V1().Services().Lister(),
			pods:     f.Core().V1().Pods().Lister(),
		},
		addr: addr, upstreams: hostNameServers("/etc/resolv.conf", addr), udp: udp, tcp: tcp,
	}
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(startCtx.Done()) {
		if !ok {
			_ = udp.Close()
			_ = tcp.Close()
			cancel()
			f.Shutdown()
			return nil, fmt.Errorf("while starting the DNS server: the %v informer did not sync: %w", typ, context.Cause(startCtx))
		}
	}
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		defer cancel()
		<-ctx.Done()
		_ = udp.Close()
		_ = tcp.Close()
		f.Shutdown()
	}()
	go func() { defer s.wg.Done(); s.serveUDP() }()
	go func() { defer s.wg.Done(); s.serveTCP() }()
	return s, nil
}

// wait returns once the server has stopped (its context ended).
func (s *dnsServer) wait() { s.wg.Wait() }

func (s *dnsServer) serveUDP() {
	var wg sync.WaitGroup
	defer wg.Wait()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		query := slices.Clone(buf[:n])
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := s.rec.respond(query, 512, s.forward)
			if err == nil {
				_, _ = s.udp.WriteTo(resp, from)
			}
		}()
	}
}

func (s *dnsServer) serveTCP() {
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	defer func() {
		mu.Lock()
		for c := range open { // idle clients must not hold up Stop
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	for {
		conn, err := s.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		mu.Lock()
		open[conn] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(open, conn)
				mu.Unlock()
				_ = conn.Close()
			}()
			for {
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				var n uint16
				if err := binary.Read(conn, binary.BigEndian, &n); err != nil {
					return
				}
				query := make([]byte, n)
				if _, err := io.ReadFull(conn, query); err != nil {
					return
				}
				resp, err := s.rec.respond(query, 65535, s.forward)
				if err != nil {
					return
				}
				if _, err := conn.Write(binary.BigEndian.AppendUint16(nil, uint16(len(resp)))); err != nil {
					return
				}
				if _, err := conn.Write(resp); err != nil {
					return
				}
			}
		}()
	}
}

// forward relays a query outside the cluster domain to the host's name
// servers over UDP, the first that answers.
func (s *dnsServer) forward(query []byte) ([]byte, error) {
	for _, up := range s.upstreams {
		resp, err := exchangeUDP(up, query, 2*time.Second)
		if err == nil {
			return resp, nil
		}
	}
	return nil, errors.New("no upstream name server answered")
}

func exchangeUDP(server string, query []byte, timeout time.Duration) ([]byte, error) {
	c, err := net.DialTimeout("udp", server, timeout)
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(query); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// hostNameServers reads the name servers of a resolv.conf (the host's, read
// before any pod runs), leaving out self.
func hostNameServers(path string, self netip.Addr) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(f[1])
		if err != nil || ip == self {
			continue
		}
		out = append(out, netip.AddrPortFrom(ip, 53).String())
	}
	return out
}

// podResolvConf is the resolv.conf of a pod, as a kubelet writes it: for
// dnsPolicy ClusterFirst (the default; a hostNetwork pod needs
// ClusterFirstWithHostNet) the cluster's server and the search path
// <ns>.svc.<domain> svc.<domain> <domain> with ndots:5, then
// spec.dnsConfig's additions; for None only spec.dnsConfig. It returns ""
// when the pod uses the host's resolv.conf (dnsPolicy Default).
func podResolvConf(pod *corev1.Pod, server netip.Addr, domain string) string {
	var servers, search []string
	opts := map[string]string{}
	var order []string
	setOpt := func(name, value string) {
		if _, ok := opts[name]; !ok {
			order = append(order, name)
		}
		opts[name] = value
	}
	switch pod.Spec.DNSPolicy {
	case corev1.DNSDefault:
		return ""
	case corev1.DNSNone:
	case corev1.DNSClusterFirstWithHostNet:
	default: // ClusterFirst, or unset
		if pod.Spec.HostNetwork {
			return ""
		}
	}
	if pod.Spec.DNSPolicy != corev1.DNSNone {
		servers = []string{server.String()}
		search = []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}
		setOpt("ndots", "5")
	}
	if c := pod.Spec.DNSConfig; c != nil {
		servers = append(servers, c.Nameservers...)
		search = append(search, c.Searches...)
		for _, o := range c.Options {
			v := ""
			if o.Value != nil {
				v = *o.Value
			}
			setOpt(o.Name, v)
		}
	}
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(order) > 0 {
		b.WriteString("options")
		for _, name := range order {
			if v := opts[name]; v != "" {
				fmt.Fprintf(&b, " %s:%s", name, v)
			} else {
				fmt.Fprintf(&b, " %s", name)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// newDNSRecordsFromIndexers serves the objects of two caches (the unit
// tests fill them directly).
func newDNSRecordsFromIndexers(domain string, services, pods cache.Indexer) *dnsRecords {
	return &dnsRecords{
		domain:   domain,
		services: corev1listers.NewServiceLister(services),
		pods:     corev1listers.NewPodLister(pods),
	}
}
