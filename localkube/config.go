package localkube

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config describes one local control plane. The zero value is not usable:
// Dir is required; EnsureDefaults fills in everything else.
type Config struct {
	// Dir holds all state: certificates, the kubeconfig, etcd data, logs,
	// pod directories and persistent volumes. Required. Reusing a Dir
	// resumes the cluster that lived there (its objects and volumes).
	Dir string

	// KubeBinDir holds etcd, kube-apiserver, kube-controller-manager and
	// kubectl (hack/build-kube-binaries.sh). Default: <repo>/bin/k8s.
	KubeBinDir string
	// ImageBinDir is where relative ImageRule binaries are looked up.
	// Default: <repo>/bin.
	ImageBinDir string
	// Images maps image repositories to binaries. Default: DefaultImages.
	Images []ImageRule

	// NodeName is the name of the Node that runs pods. Default "localkube".
	NodeName string
	// PodAddresses is the inclusive range of loopback addresses handed to
	// pods, "FIRST-LAST" (e.g. "127.0.0.10-127.0.0.250"). Default
	// DefaultPodAddresses. Two environments running at once need disjoint
	// ranges: pods listen on their own address and ports would collide.
	PodAddresses string

	// DisableDNS turns the cluster DNS off. By default localkube serves DNS
	// for the cluster domain on the last address of PodAddresses, port 53
	// (so pods get one address fewer), and runs every container process in
	// a mount namespace of its own with the pod's resolv.conf over
	// /etc/resolv.conf. Both need root (CAP_SYS_ADMIN and
	// CAP_NET_BIND_SERVICE): without them Start fails and says to set this.
	// With DNS off, pods use the host's resolv.conf and clients use pod IPs.
	DisableDNS bool
	// ClusterDomain is the DNS domain of the cluster. Default
	// "cluster.local".
	ClusterDomain string

	// Ports on 127.0.0.1; 0 picks a free port at first start. The chosen
	// ports are saved in Dir and reused when the cluster is started again.
	EtcdPort, EtcdPeerPort, APIServerPort, ControllerManagerPort, KubeletPort int

	// RestartBackoff is the first delay before a crashed container is
	// restarted; it doubles up to MaxRestartBackoff. A container that ran
	// for BackoffReset resets it. The kubelet uses 10s, 5m and 10m; the
	// defaults are 1s, 30s and 2m so that tests that kill pods are quick.
	RestartBackoff, MaxRestartBackoff, BackoffReset time.Duration
	// StopGracePeriod caps each pod's termination grace period when the
	// whole environment stops (pods deleted through the API get their full
	// grace period). Default 5s.
	StopGracePeriod time.Duration
	// StartTimeout bounds Start: the control plane must be serving and the
	// node Ready by then. Default 3m.
	StartTimeout time.Duration
	// EtcdFsync makes etcd fsync its WAL. Off by default: this control
	// plane is disposable and fsync on a shared CI disk is slow.
	EtcdFsync bool

	// Events receives progress and diagnostics. All callbacks are optional.
	Events Events
}

// Events are optional callbacks; the package itself does not log.
type Events struct {
	// Progress reports a step of Start or Stop in a short human sentence.
	Progress func(msg string)
	// NodeLog receives the virtual node's own diagnostics (pod lifecycle,
	// probe failures). Default: appended to Dir/logs/node.log.
	NodeLog func(msg string)
}

// ImageRule maps an image repository to a binary. An image
// "REPOSITORY:TAG" runs Binary; when Binary is relative it is looked up as
// ImageBinDir/TAG/Binary first and ImageBinDir/Binary second, so a changed
// tag can select a different build. An absolute Binary is used as is (or
// dir(Binary)/TAG/base(Binary) when that exists).
type ImageRule struct {
	// Repository is matched against the image without its tag or digest:
	// the whole repository, the repository without its registry host, or
	// its last path element ("ghcr.io/kshaka-io/kshaka-acceptor" matches the
	// rules "ghcr.io/kshaka-io/kshaka-acceptor", "kshaka-io/kshaka-acceptor"
	// and "kshaka-acceptor"). The first matching rule wins.
	Repository string
	Binary     string
}

// DefaultImages maps the project's images to the binaries `make build`
// writes into bin/: "kshaka/acceptor" and any repository whose last element
// is "kshaka-acceptor" (such as ghcr.io/kshaka-io/kshaka-acceptor, the
// KshakaCluster default) run bin/kshaka-acceptor, and likewise for the
// operator and the CLI.
var DefaultImages = []ImageRule{
	{Repository: "kshaka/acceptor", Binary: "kshaka-acceptor"},
	{Repository: "kshaka/operator", Binary: "kshaka-operator"},
	{Repository: "kshaka/kshaka", Binary: "kshaka"},
	{Repository: "kshaka-acceptor", Binary: "kshaka-acceptor"},
	{Repository: "kshaka-operator", Binary: "kshaka-operator"},
	{Repository: "kshaka", Binary: "kshaka"},
}

// DefaultPodAddresses is the pod address range when Config.PodAddresses is
// empty.
const DefaultPodAddresses = "127.0.0.10-127.0.0.250"

// EnsureDefaults fills in every unset field.
func (c *Config) EnsureDefaults() {
	if c.KubeBinDir == "" || c.ImageBinDir == "" {
		root, _ := RepoRoot()
		if c.KubeBinDir == "" {
			c.KubeBinDir = filepath.Join(root, "bin", "k8s")
		}
		if c.ImageBinDir == "" {
			c.ImageBinDir = filepath.Join(root, "bin")
		}
	}
	if c.Images == nil {
		c.Images = append([]ImageRule(nil), DefaultImages...)
	}
	if c.NodeName == "" {
		c.NodeName = "localkube"
	}
	if c.PodAddresses == "" {
		c.PodAddresses = DefaultPodAddresses
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = "cluster.local"
	}
	if c.RestartBackoff == 0 {
		c.RestartBackoff = time.Second
	}
	if c.MaxRestartBackoff == 0 {
		c.MaxRestartBackoff = 30 * time.Second
	}
	if c.BackoffReset == 0 {
		c.BackoffReset = 2 * time.Minute
	}
	if c.StopGracePeriod == 0 {
		c.StopGracePeriod = 5 * time.Second
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 3 * time.Minute
	}
}

// Validate reports every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("dir is required"))
	}
	if first, last, err := parseAddressRange(c.PodAddresses); err != nil {
		errs = append(errs, fmt.Errorf("PodAddresses: %w", err))
	} else if !c.DisableDNS && first == last {
		errs = append(errs, fmt.Errorf("PodAddresses %q: the cluster DNS takes the last address, so the range needs two or more (or set DisableDNS)", c.PodAddresses))
	}
	if !validDomain(c.ClusterDomain) {
		errs = append(errs, fmt.Errorf("ClusterDomain %q: want a DNS domain such as cluster.local (lower-case labels of letters, digits and '-', separated by dots)", c.ClusterDomain))
	}
	for _, p := range []int{c.EtcdPort, c.EtcdPeerPort, c.APIServerPort, c.ControllerManagerPort, c.KubeletPort} {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("port %d out of range", p))
		}
	}
	for _, r := range c.Images {
		if r.Repository == "" || r.Binary == "" {
			errs = append(errs, fmt.Errorf("image rule %q=%q: repository and binary are required", r.Repository, r.Binary))
		}
	}
	if c.RestartBackoff < 0 || c.MaxRestartBackoff < c.RestartBackoff {
		errs = append(errs, fmt.Errorf("restart backoff %v..%v is not a valid range", c.RestartBackoff, c.MaxRestartBackoff))
	}
	return errors.Join(errs...)
}

// MissingBinaries lists the control-plane binaries (and kubectl) that are
// absent from KubeBinDir.
func (c *Config) MissingBinaries() []string {
	var missing []string
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"} {
		if st, err := os.Stat(filepath.Join(c.KubeBinDir, b)); err != nil || st.IsDir() {
			missing = append(missing, filepath.Join(c.KubeBinDir, b))
		}
	}
	return missing
}

// ParseImageRule parses "REPOSITORY=BINARY".
func ParseImageRule(s string) (ImageRule, error) {
	repo, bin, ok := strings.Cut(s, "=")
	repo, bin = strings.TrimSpace(repo), strings.TrimSpace(bin)
	if !ok || repo == "" || bin == "" {
		return ImageRule{}, fmt.Errorf("image rule %q: want REPOSITORY=BINARY", s)
	}
	return ImageRule{Repository: repo, Binary: bin}, nil
}

// ReadImageRules reads a file of rules, one "REPOSITORY=BINARY" a line;
// blank lines and lines starting with # are ignored.
func ReadImageRules(path string) ([]ImageRule, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rules []ImageRule
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := ParseImageRule(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		rules = append(rules, r)
	}
	return rules, sc.Err()
}

// RepoRoot returns the root of the kshaka module, found by walking up from
// the working directory (and then from the executable) to the go.mod of
// github.com/kshaka-io/kshaka.
func RepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && strings.HasPrefix(string(b), "module github.com/kshaka-io/kshaka\n") {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("not inside the github.com/kshaka-io/kshaka module")
}

// validDomain reports whether d is a lower-case DNS domain without dots at
// either end.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
				return false
			}
		}
	}
	return true
}

// DNSAddress is the address of the cluster DNS for a pod address range: its
// last address.
func DNSAddress(podAddresses string) (netip.Addr, error) {
	_, last, err := parseAddressRange(podAddresses)
	return last, err
}

// parseAddressRange parses "FIRST-LAST" of IPv4 loopback addresses.
func parseAddressRange(s string) (first, last netip.Addr, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return first, last, fmt.Errorf("%q: want FIRST-LAST", s)
	}
	if first, err = netip.ParseAddr(strings.TrimSpace(a)); err != nil {
		return first, last, err
	}
	if last, err = netip.ParseAddr(strings.TrimSpace(b)); err != nil {
		return first, last, err
	}
	if !first.Is4() || !last.Is4() || !first.IsLoopback() || !last.IsLoopback() {
		return first, last, fmt.Errorf("%q: addresses must be IPv4 loopback (127.0.0.0/8)", s)
	}
	if last.Less(first) {
		return first, last, fmt.Errorf("%q: last address is before the first", s)
	}
	if one := netip.MustParseAddr("127.0.0.1"); !one.Less(first) && !last.Less(one) {
		return first, last, fmt.Errorf("%q: must not include 127.0.0.1 (the control plane's address)", s)
	}
	return first, last, nil
}
