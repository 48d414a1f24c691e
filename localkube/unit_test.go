package localkube

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"POD_IP": "127.0.0.5", "A": "x"}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	for _, tc := range []struct{ in, want string }{
		{"--listen=$(POD_IP):7400", "--listen=127.0.0.5:7400"},
		{"$(A)$(A)", "xx"},
		{"$$(A)", "$(A)"},
		{"$(UNKNOWN)", "$(UNKNOWN)"},
		{"cost $5", "cost $5"},
		{"open $(A", "open $(A"},
		{"trailing $", "trailing $"},
	} {
		if got := expand(tc.in, lookup); got != tc.want {
			t.Errorf("expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRewritePaths(t *testing.T) {
	ms := []mount{{"/data", "/h/vol"}, {"/data/sub", "/h/other"}, {"/etc/tls/", "/h/tls"}}
	for _, tc := range []struct{ in, want string }{
		{"--data-dir=/data", "--data-dir=/h/vol"},
		{"/data/x/y", "/h/vol/x/y"},
		{"/data/sub/z", "/h/other/z"}, // the longest mount wins
		{"/database", "/database"},    // not a path boundary
		{"x/data", "x/data"},          // not at a word start
		{"--cert=/etc/tls/tls.crt", "--cert=/h/tls/tls.crt"},
		{"a:/data,b:/data", "a:/h/vol,b:/h/vol"},
	} {
		if got := rewritePaths(tc.in, ms); got != tc.want {
			t.Errorf("rewritePaths(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRewriteListen(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"--listen=:7400", "--listen=127.0.0.9:7400"},
		{"--metrics-listen=0.0.0.0:8080", "--metrics-listen=127.0.0.9:8080"},
		{"[::]:9000", "127.0.0.9:9000"},
		{"--listen=127.0.0.1:7400", "--listen=127.0.0.1:7400"},
		{"--listen=:http", "--listen=:http"},
		{"--name=:", "--name=:"},
		{"a:1", "a:1"},
	} {
		if got := rewriteListen(tc.in, "127.0.0.9"); got != tc.want {
			t.Errorf("rewriteListen(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSplitImage(t *testing.T) {
	for _, tc := range []struct{ in, repo, tag, bare string }{
		{"kshaka/acceptor:v2", "kshaka/acceptor", "v2", "kshaka/acceptor"},
		{"kshaka/acceptor", "kshaka/acceptor", "latest", "kshaka/acceptor"},
		{"ghcr.io/kshaka-io/kshaka-acceptor:v0.1.0", "ghcr.io/kshaka-io/kshaka-acceptor", "v0.1.0", "kshaka-io/kshaka-acceptor"},
		{"localhost:5000/kshaka/operator:dev@sha256:abc", "localhost:5000/kshaka/operator", "dev", "kshaka/operator"},
		{"busybox", "busybox", "latest", "busybox"},
	} {
		repo, tag := splitImage(tc.in)
		if repo != tc.repo || tag != tc.tag || withoutRegistry(repo) != tc.bare {
			t.Errorf("splitImage(%q) = %q %q (bare %q), want %q %q %q", tc.in, repo, tag, withoutRegistry(repo), tc.repo, tc.tag, tc.bare)
		}
	}
}

func TestResolveImage(t *testing.T) {
	dir := t.TempDir()
	exe := func(p string) {
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755))
	}
	exe(filepath.Join(dir, "kshaka-acceptor"))
	exe(filepath.Join(dir, "v2", "kshaka-acceptor"))
	abs := filepath.Join(t.TempDir(), "tool")
	exe(abs)
	rules := append(append([]ImageRule(nil), DefaultImages...), ImageRule{Repository: "test/tool", Binary: abs})
	for _, tc := range []struct{ image, want string }{
		{"kshaka/acceptor:v1", filepath.Join(dir, "kshaka-acceptor")},
		{"kshaka/acceptor:v2", filepath.Join(dir, "v2", "kshaka-acceptor")}, // a changed tag selects another build
		{"ghcr.io/kshaka-io/kshaka-acceptor:v0.1.0", filepath.Join(dir, "kshaka-acceptor")},
		{"test/tool:x", abs},
		{"kshaka/acceptor:..", filepath.Join(dir, "kshaka-acceptor")},
	} {
		got, err := resolveImage(rules, dir, tc.image)
		if err != nil || got != tc.want {
			t.Errorf("resolveImage(%q) = %q, %v; want %q", tc.image, got, err, tc.want)
		}
	}
	for _, image := range []string{"nginx:1.27", "kshaka/operator:v1"} { // no rule; rule without a binary
		if _, err := resolveImage(rules, dir, image); !errors.Is(err, errImage) {
			t.Errorf("resolveImage(%q): err = %v, want errImage", image, err)
		}
	}
}

func TestImageCommand(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "kshaka-acceptor")
	for _, p := range []string{bin, filepath.Join(dir, "kshaka")} {
		must(t, os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755))
	}
	host := filepath.Join(t.TempDir(), "kshaka")
	must(t, os.WriteFile(host, []byte("#!/bin/sh\n"), 0o755))
	for _, tc := range []struct{ name, want string }{
		{"/kshaka", filepath.Join(dir, "kshaka")}, // the image's other binary
		{"/no-such-tool", ""},                     // not in the image either
		{"kshaka", ""},                            // relative: looked up in PATH
		{host, ""},                                // exists on the host: used as is
		{"/bin/sh", ""},
	} {
		if got := imageCommand(tc.name, bin); got != tc.want {
			t.Errorf("imageCommand(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestImageRules(t *testing.T) {
	p := filepath.Join(t.TempDir(), "images")
	must(t, os.WriteFile(p, []byte("# comment\n\nkshaka/acceptor = /opt/a\nx/y=b\n"), 0o644))
	rules, err := ReadImageRules(p)
	if err != nil || len(rules) != 2 || rules[0] != (ImageRule{"kshaka/acceptor", "/opt/a"}) || rules[1] != (ImageRule{"x/y", "b"}) {
		t.Fatalf("ReadImageRules = %v, %v", rules, err)
	}
	for _, bad := range []string{"noequals", "=bin", "repo="} {
		if _, err := ParseImageRule(bad); err == nil {
			t.Errorf("ParseImageRule(%q) succeeded", bad)
		}
	}
}

func TestAddressRange(t *testing.T) {
	for _, bad := range []string{"127.0.0.1-127.0.0.9", "127.0.0.0-127.0.0.255", "10.0.0.1-10.0.0.9", "127.0.0.9-127.0.0.2", "x-y", "127.0.0.2"} {
		if _, _, err := parseAddressRange(bad); err == nil {
			t.Errorf("parseAddressRange(%q) succeeded", bad)
		}
	}
	a, err := newIPAM("127.0.0.10-127.0.0.12")
	must(t, err)
	got := map[netip.Addr]bool{}
	for _, owner := range []string{"a", "b", "c"} {
		ip, err := a.allocate(owner, netip.Addr{})
		must(t, err)
		got[ip] = true
	}
	if len(got) != 3 {
		t.Fatalf("addresses are not distinct: %v", got)
	}
	if _, err := a.allocate("d", netip.Addr{}); !errors.Is(err, errNoAddress) {
		t.Fatalf("allocate from a full range: %v", err)
	}
	if ip, _ := a.allocate("b", netip.Addr{}); ip != netip.MustParseAddr("127.0.0.11") {
		t.Errorf("an owner asking again got %v, want its address", ip)
	}
	a.release(netip.MustParseAddr("127.0.0.10"), "a")
	a.release(netip.MustParseAddr("127.0.0.11"), "not-b") // not the owner: ignored
	if ip, _ := a.allocate("e", netip.MustParseAddr("127.0.0.11")); ip != netip.MustParseAddr("127.0.0.10") {
		t.Errorf("allocate with a taken preference got %v, want the free 127.0.0.10", ip)
	}
}

func TestReadLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "0.log")
	lf, err := createLogFile(p)
	must(t, err)
	w := &streamWriter{log: lf, stream: "stdout"}
	_, _ = w.Write([]byte("one\ntw"))
	_, _ = w.Write([]byte("o\nthree"))
	w.flush()
	must(t, lf.Close())

	read := func(opts api.ContainerLogOpts) string {
		t.Helper()
		rc, err := readLog(context.Background(), p, opts, closedChan())
		must(t, err)
		defer rc.Close()
		b, err := io.ReadAll(rc)
		must(t, err)
		return string(b)
	}
	if got := read(api.ContainerLogOpts{}); got != "one\ntwo\nthree\n" {
		t.Errorf("all: %q", got)
	}
	if got := read(api.ContainerLogOpts{Tail: 2}); got != "two\nthree\n" {
		t.Errorf("tail 2: %q", got)
	}
	if got := read(api.ContainerLogOpts{LimitBytes: 5}); got != "one\nt" {
		t.Errorf("limit 5: %q", got)
	}
	if got := read(api.ContainerLogOpts{Timestamps: true, Tail: 1}); !strings.HasSuffix(got, " three\n") || !strings.HasPrefix(got, "20") {
		t.Errorf("timestamps: %q", got)
	}
	if got := read(api.ContainerLogOpts{SinceTime: time.Now().Add(time.Hour)}); got != "" {
		t.Errorf("since the future: %q", got)
	}
	if got := read(api.ContainerLogOpts{Follow: true}); got != "one\ntwo\nthree\n" {
		t.Errorf("follow of a finished run: %q", got)
	}
}

func TestBackoff(t *testing.T) {
	rt := &podRuntime{p: &provider{cfg: &Config{RestartBackoff: time.Second, MaxRestartBackoff: 5 * time.Second}}}
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for n, w := range want {
		if got := rt.backoff(n); got != w {
			t.Errorf("backoff(%d) = %v, want %v", n, got, w)
		}
	}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// TestWriteAtomic: a volume's files are swapped as a whole, the way a
// kubelet updates a mounted Secret, and an unchanged source writes nothing.
func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	v1 := map[string]file{"tls.crt": {data: []byte("cert1"), mode: 0o644}, "old.key": {data: []byte("gone soon"), mode: 0o600}, "sub/x": {data: []byte("x1"), mode: 0o644}}
	if changed, err := writeAtomic(dir, v1); err != nil || !changed {
		t.Fatalf("first write: changed %v, err %v", changed, err)
	}
	if got := read("tls.crt"); got != "cert1" {
		t.Fatalf("tls.crt = %q", got)
	}
	if got := read("sub/x"); got != "x1" {
		t.Fatalf("sub/x = %q", got)
	}
	if changed, err := writeAtomic(dir, v1); err != nil || changed {
		t.Fatalf("rewrite of the same files: changed %v, err %v", changed, err)
	}
	first, _ := os.Readlink(filepath.Join(dir, dataDir))
	v2 := map[string]file{"tls.crt": {data: []byte("cert2"), mode: 0o644}, "ca.crt": {data: []byte("ca"), mode: 0o644}}
	if changed, err := writeAtomic(dir, v2); err != nil || !changed {
		t.Fatalf("second write: changed %v, err %v", changed, err)
	}
	if got := read("tls.crt"); got != "cert2" {
		t.Errorf("tls.crt after the swap = %q", got)
	}
	if got := read("ca.crt"); got != "ca" {
		t.Errorf("ca.crt after the swap = %q", got)
	}
	for _, gone := range []string{"old.key", "sub", first} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still there after the swap (err %v)", gone, err)
		}
	}
}
