package localkube

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// testRecords: in namespace e2e, a headless Service kc-peers publishing
// not-ready addresses (a KshakaCluster's peer Service) over pods kc-0..3, a
// headless Service web that does not over web-0..2, and a ClusterIP
// Service kc.
func testRecords(t *testing.T, serverIP string) *dnsRecords {
	t.Helper()
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	svcs, pods := idx(), idx()
	svc := func(name, clusterIP string, notReady bool, app string) {
		must(t, svcs.Add(&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "e2e", Name: name},
			Spec: corev1.ServiceSpec{ClusterIP: clusterIP, PublishNotReadyAddresses: notReady,
				Selector: map[string]string{"app": app}},
		}))
	}
	svc("kc-peers", corev1.ClusterIPNone, true, "kc")
	svc("web", corev1.ClusterIPNone, false, "web")
	svc("kc", "10.0.0.5", false, "kc")
	pod := func(name, app, subdomain, ip string, ready bool, mutate ...func(*corev1.Pod)) {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "e2e", Name: name, Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{Hostname: name, Subdomain: subdomain},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip,
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}},
		}
		if ip != "" {
			p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		}
		if ready {
			p.Status.Conditions[0].Status = corev1.ConditionTrue
		}
		for _, m := range mutate {
			m(p)
		}
		must(t, pods.Add(p))
	}
	pod("kc-0", "kc", "kc-peers", "127.0.0.11", false)
	pod("kc-1", "kc", "kc-peers", "127.0.0.12", true)
	pod("kc-2", "kc", "kc-peers", serverIP, true)
	pod("kc-3", "kc", "kc-peers", "", false) // no IP yet
	pod("kc-4", "kc", "kc-peers", "127.0.0.14", true, func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed })
	pod("web-0", "web", "web", "127.0.0.21", true)
	pod("web-1", "web", "web", "127.0.0.22", false)
	pod("web-2", "web", "web", "127.0.0.23", true, func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Now()} })
	pod("other-0", "web", "elsewhere", "127.0.0.24", true)
	pod("x-0", "x", "web", "127.0.0.25", true) // not selected by web
	return newDNSRecordsFromIndexers("cluster.local", svcs, pods)
}

func TestDNSRecords(t *testing.T) {
	r := testRecords(t, "127.0.0.13")
	for _, tc := range []struct {
		name     string
		inDomain bool
		exists   bool
		addrs    string
	}{
		{"kc-0.kc-peers.e2e.svc.cluster.local", true, true, "127.0.0.11"}, // not ready, published
		{"KC-1.kc-peers.e2e.svc.cluster.local.", true, true, "127.0.0.12"},
		{"kc-2.kc-peers.e2e.svc.cluster.local", true, true, "127.0.0.13"},
		{"kc-3.kc-peers.e2e.svc.cluster.local", true, false, ""}, // no IP yet
		{"kc-4.kc-peers.e2e.svc.cluster.local", true, false, ""}, // failed
		{"kc-9.kc-peers.e2e.svc.cluster.local", true, false, ""},
		{"kc-peers.e2e.svc.cluster.local", true, true, "127.0.0.11 127.0.0.12 127.0.0.13"},
		{"web.e2e.svc.cluster.local", true, true, "127.0.0.21 127.0.0.24"},
		{"web-0.web.e2e.svc.cluster.local", true, true, "127.0.0.21"},
		{"web-1.web.e2e.svc.cluster.local", true, false, ""},   // not ready, not published
		{"web-2.web.e2e.svc.cluster.local", true, false, ""},   // terminating
		{"other-0.web.e2e.svc.cluster.local", true, false, ""}, // another subdomain
		{"x-0.web.e2e.svc.cluster.local", true, false, ""},     // not selected
		{"kc.e2e.svc.cluster.local", true, true, "10.0.0.5"},
		{"kc-0.kc.e2e.svc.cluster.local", true, false, ""}, // not headless
		{"nope.e2e.svc.cluster.local", true, false, ""},
		{"e2e.svc.cluster.local", true, true, ""},
		{"other.svc.cluster.local", true, false, ""},
		{"svc.cluster.local", true, true, ""},
		{"cluster.local", true, true, ""},
		// The search path's misses, as a pod asks for kc-0.kc-peers.e2e.svc.
		{"kc-0.kc-peers.e2e.svc.e2e.svc.cluster.local", true, false, ""},
		{"kc-0.kc-peers.e2e.svc.svc.cluster.local", true, false, ""},
		{"x.e2e.pod.cluster.local", true, false, ""},
		{"example.com", false, false, ""},
		{"notcluster.local", false, false, ""},
	} {
		a, err := r.lookup(tc.name)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for _, ip := range a.addrs {
			got = append(got, ip.String())
		}
		if a.inDomain != tc.inDomain || a.exists != tc.exists || strings.Join(got, " ") != tc.addrs {
			t.Errorf("%s: inDomain %v exists %v addrs %q, want %v %v %q", tc.name, a.inDomain, a.exists, got, tc.inDomain, tc.exists, tc.addrs)
		}
	}
}

func query(t *testing.T, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, RecursionDesired: true})
	must(t, b.StartQuestions())
	must(t, b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}))
	msg, err := b.Finish()
	must(t, err)
	return msg
}

func TestDNSRespond(t *testing.T) {
	r := testRecords(t, "127.0.0.13")
	forwarded := 0
	forward := func(q []byte) ([]byte, error) {
		forwarded++
		var p dnsmessage.Parser
		h, _ := p.Start(q)
		qq, _ := p.Question()
		h.Response = true
		return buildResponse(h, qq, []netip.Addr{netip.MustParseAddr("192.0.2.1")})
	}
	for _, tc := range []struct {
		name    string
		typ     dnsmessage.Type
		max     int
		rcode   dnsmessage.RCode
		answers string
		tc      bool
	}{
		{"kc-peers.e2e.svc.cluster.local.", dnsmessage.TypeA, 512, dnsmessage.RCodeSuccess, "127.0.0.11 127.0.0.12 127.0.0.13", false},
		{"kc-peers.e2e.svc.cluster.local.", dnsmessage.TypeAAAA, 512, dnsmessage.RCodeSuccess, "", false},
		{"kc-peers.e2e.svc.cluster.local.", dnsmessage.TypeA, 60, dnsmessage.RCodeSuccess, "", true},
		{"nope.e2e.svc.cluster.local.", dnsmessage.TypeA, 512, dnsmessage.RCodeNameError, "", false},
		{"example.com.", dnsmessage.TypeA, 512, dnsmessage.RCodeSuccess, "192.0.2.1", false},
	} {
		resp, err := r.respond(query(t, tc.name, tc.typ), tc.max, forward)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var p dnsmessage.Parser
		h, err := p.Start(resp)
		must(t, err)
		must(t, p.SkipAllQuestions())
		var got []string
		for {
			a, err := p.AnswerHeader()
			if err != nil {
				break
			}
			rr, err := p.AResource()
			must(t, err)
			if tc.name != "example.com." && a.TTL != uint32(DNSTTL/time.Second) {
				t.Errorf("%s: TTL %d", tc.name, a.TTL)
			}
			got = append(got, netip.AddrFrom4(rr.A).String())
		}
		if h.ID != 7 || h.RCode != tc.rcode || h.Truncated != tc.tc || strings.Join(got, " ") != tc.answers {
			t.Errorf("%s %v: id %d rcode %v truncated %v answers %q; want rcode %v truncated %v answers %q",
				tc.name, tc.typ, h.ID, h.RCode, h.Truncated, got, tc.rcode, tc.tc, tc.answers)
		}
		if tc.name != "example.com." && !h.Authoritative {
			t.Errorf("%s: answer not authoritative (Go's resolver takes it for a lame referral)", tc.name)
		}
	}
	if forwarded != 1 {
		t.Errorf("forwarded %d queries, want 1 (example.com)", forwarded)
	}
}

func TestPodResolvConf(t *testing.T) {
	dns := netip.MustParseAddr("127.0.0.250")
	pod := func(policy corev1.DNSPolicy, hostNet bool, cfg *corev1.PodDNSConfig) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "e2e"}, Spec: corev1.PodSpec{DNSPolicy: policy, HostNetwork: hostNet, DNSConfig: cfg}}
	}
	cluster := "nameserver 127.0.0.250\nsearch e2e.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	extra := &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.53"}, Searches: []string{"example.com"},
		Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}}}
	for _, tc := range []struct {
		pod  *corev1.Pod
		want string
	}{
		{pod("", false, nil), cluster},
		{pod(corev1.DNSClusterFirst, false, nil), cluster},
		{pod(corev1.DNSClusterFirst, true, nil), ""},
		{pod(corev1.DNSClusterFirstWithHostNet, true, nil), cluster},
		{pod(corev1.DNSDefault, false, nil), ""},
		{pod(corev1.DNSClusterFirst, false, extra), "nameserver 127.0.0.250\nnameserver 192.0.2.53\nsearch e2e.svc.cluster.local svc.cluster.local cluster.local example.com\noptions ndots:2 edns0\n"},
		{pod(corev1.DNSNone, false, extra), "nameserver 192.0.2.53\nsearch example.com\noptions ndots:2 edns0\n"},
	} {
		if got := podResolvConf(tc.pod, dns, "cluster.local"); got != tc.want {
			t.Errorf("policy %q hostNetwork %v: got\n%s\nwant\n%s", tc.pod.Spec.DNSPolicy, tc.pod.Spec.HostNetwork, got, tc.want)
		}
	}
}

// TestClusterResolverGRPC serves the test records over UDP and TCP on a
// free port of 127.0.0.1 and reaches a gRPC server by a cluster name
// through ClusterResolver: by the default "dns" scheme and by passthrough,
// with the name kept as the authority (the TLS server name).
func TestClusterResolverGRPC(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	must(t, err)
	authorities := make(chan string, 10)
	gs := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		authorities <- strings.Join(md[":authority"], ",")
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(l) }()
	defer gs.Stop()
	port := l.Addr().(*net.TCPAddr).Port

	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	tcp, err := net.Listen("tcp4", udp.LocalAddr().String())
	must(t, err)
	s := &dnsServer{rec: testRecords(t, "127.0.0.1"), udp: udp, tcp: tcp}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.serveUDP() }()
	go func() { defer s.wg.Done(); s.serveTCP() }()
	defer func() { _ = udp.Close(); _ = tcp.Close(); s.wait() }()

	// Over TCP, as a client asks after a truncated answer.
	tc, err := net.Dial("tcp4", tcp.Addr().String())
	must(t, err)
	defer func() { _ = tc.Close() }()
	q := query(t, "kc-peers.e2e.svc.cluster.local.", dnsmessage.TypeA)
	_, err = tc.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...))
	must(t, err)
	var n uint16
	must(t, binary.Read(tc, binary.BigEndian, &n))
	resp := make([]byte, n)
	_, err = io.ReadFull(tc, resp)
	must(t, err)
	var p dnsmessage.Parser
	must(t, func() error { _, err := p.Start(resp); return err }())
	must(t, p.SkipAllQuestions())
	answers, err := p.AllAnswers()
	if err != nil || len(answers) != 3 {
		t.Errorf("over TCP: %d answers (%v), want 3", len(answers), err)
	}
	// The connection stays open: stopping the server must close it.

	r := NewClusterResolver(netip.MustParseAddrPort(udp.LocalAddr().String()), "cluster.local")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, name := range []string{"kc-2.kc-peers.e2e.svc", "kc-2.kc-peers.e2e.svc.cluster.local", "kc-peers.e2e"} {
		addrs, err := r.LookupHost(ctx, name)
		if err != nil || !slices.Contains(addrs, netip.MustParseAddr("127.0.0.1")) {
			t.Errorf("LookupHost(%s) = %v, %v", name, addrs, err)
		}
	}
	if _, err := r.LookupHost(ctx, "kc-9.kc-peers.e2e.svc"); err == nil || !strings.Contains(err.Error(), "no such name") {
		t.Errorf("LookupHost of a missing name: %v, want a no-such-name error", err)
	}
	name := "kc-2.kc-peers.e2e.svc"
	for _, target := range []string{name, "passthrough:///" + name} {
		target += ":" + strconv.Itoa(port)
		cc, err := grpc.NewClient(target, append(r.GRPCDialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		must(t, err)
		_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		_ = cc.Close()
		if err != nil {
			t.Errorf("%s: %v", target, err)
			continue
		}
		if got, want := <-authorities, name+":"+strconv.Itoa(port); got != want {
			t.Errorf("%s: authority %q, want %q", target, got, want)
		}
	}
}
