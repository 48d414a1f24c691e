// Command kshaka-operator runs the Kshaka operator: the KshakaCluster
// controller (package controllers) in a controller-runtime manager, with
// Prometheus metrics, health probes and optional leader election.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
	"github.com/kshaka-io/kshaka/controllers"
)

type options struct {
	metricsAddr      string
	metricsSecure    bool
	probeAddr        string
	leaderElect      bool
	leaderElectionID string
	leaderElectionNS string
	watchNamespaces  string
	adminTokenFile   string
	rescanBatch      int
	rpcTimeout       time.Duration
	logLevel         string
	enableHTTP2      bool
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("kshaka-operator", flag.ContinueOnError)
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Address of the metrics endpoint (:8443 with --metrics-secure, e.g. :8080 without). \"0\" disables it.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS, authenticated and authorized through the API server (TokenReview, SubjectAccessReview).")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader, so that only one of several replicas reconciles.")
	fs.StringVar(&o.leaderElectionID, "leader-election-id", "kshaka-operator.kshaka.io", "Name of the Lease used for leader election.")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader-election Lease. Empty: the pod's namespace.")
	fs.StringVar(&o.watchNamespaces, "watch-namespaces", "", "Comma-separated namespaces to watch. Empty: all namespaces.")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "File holding the acceptors' admin token, sent with every Admin RPC. Empty: none.")
	fs.IntVar(&o.rescanBatch, "rescan-batch", 1000, "Keys listed per acceptor and touched per rescan step.")
	fs.DurationVar(&o.rpcTimeout, "rpc-timeout", 2*time.Second, "Timeout of each Admin RPC to an acceptor.")
	fs.StringVar(&o.logLevel, "log-level", "info", "Log level: debug, info, warn or error.")
	fs.BoolVar(&o.enableHTTP2, "enable-http2", false, "Serve the metrics endpoint over HTTP/2 too (off by default: CVE-2023-44487, CVE-2023-39325).")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.rescanBatch < 1 {
		return nil, fmt.Errorf("--rescan-batch %d must be positive", o.rescanBatch)
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kshaka-operator:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "kshaka-operator:", err)
		os.Exit(1)
	}
}

func run(o *options) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	log := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := kshakav1alpha1.AddToScheme(scheme); err != nil {
		return err
	}

	token := ""
	if o.adminTokenFile != "" {
		b, err := os.ReadFile(o.adminTokenFile)
		if err != nil {
			return fmt.Errorf("while reading the admin token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}

	var tlsOpts []func(*tls.Config)
	if !o.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.metricsSecure, TLSOpts: tlsOpts}
	if o.metricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	var cacheOpts cache.Options
	if o.watchNamespaces != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range strings.Split(o.watchNamespaces, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				cacheOpts.DefaultNamespaces[ns] = cache.Config{}
			}
		}
	}

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              o.leaderElectionID,
		LeaderElectionNamespace:       leaderElectionNamespace(o.leaderElectionNS),
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cacheOpts,
	})
	if err != nil {
		return fmt.Errorf("while creating the manager: %w", err)
	}
	acc := &controllers.GRPCAcceptors{AdminToken: token, Timeout: o.rpcTimeout}
	defer func() { _ = acc.Close() }()
	r := &controllers.Reconciler{
		Client:      mgr.GetClient(),
		Scheme:      mgr.GetScheme(),
		Recorder:    mgr.GetEventRecorder("kshaka-operator"),
		Acceptors:   acc,
		RescanBatch: o.rescanBatch,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("while setting up the controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("starting manager", "leaderElection", o.leaderElect, "watchNamespaces", o.watchNamespaces)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fmt.Errorf("while running the manager: %w", err)
	}
	return nil
}

// leaderElectionNamespace is the namespace of the leader-election Lease: the
// flag, else the pod's namespace from POD_NAMESPACE (the downward API), else
// empty, which controller-runtime resolves from the in-cluster service
// account (absent when the operator runs with a kubeconfig).
func leaderElectionNamespace(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv("POD_NAMESPACE")
}
