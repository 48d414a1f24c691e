// Command kshaka-operator runs the Kshaka operator: the KshakaCluster
// controller (package controllers) in a controller-runtime manager, with
// Prometheus metrics, health probes and optional leader election.
//
// What it may read is kept small twice over. With --watch-namespaces its
// cache, and so its RBAC (the Helm chart's Roles), covers only those
// namespaces. And Pods, PersistentVolumeClaims and Secrets are cached only
// when they carry the label app.kubernetes.io/managed-by=kshaka-operator
// that every object the operator creates carries (and the StatefulSet
// controller copies onto the pods and volume claims it creates from the
// templates): the operator never holds the cluster's other Secrets in
// memory, and an object without the label is invisible to it — a Get of it
// answers NotFound.
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
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
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
	// watchNamespaces are the namespaces watched; nil: all.
	watchNamespaces []string
	// operatorNamespace is the namespace the operator runs in; "" when
	// neither --operator-namespace nor POD_NAMESPACE says.
	operatorNamespace string
	adminTokenFile    string
	rescanBatch       int
	trustPropagation  time.Duration
	rpcTimeout        time.Duration
	logLevel          string
	enableHTTP2       bool
	// skipNameValidation lets tests run several managers, each with the
	// KshakaCluster controller, in one process. No flag sets it.
	skipNameValidation bool
}

// parseFlags parses the command line; getenv reads POD_NAMESPACE, the
// default of --operator-namespace and --leader-election-namespace.
func parseFlags(args []string, getenv func(string) string) (*options, error) {
	o := &options{}
	var watch string
	fs := flag.NewFlagSet("kshaka-operator", flag.ContinueOnError)
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Address of the metrics endpoint (:8443 with --metrics-secure, e.g. :8080 without). \"0\" disables it.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS, authenticated and authorized through the API server (TokenReview, SubjectAccessReview).")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader, so that only one of several replicas reconciles.")
	fs.StringVar(&o.leaderElectionID, "leader-election-id", "kshaka-operator.kshaka.io", "Name of the Lease used for leader election.")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader-election Lease. Empty: the operator's namespace (--operator-namespace).")
	fs.StringVar(&watch, "watch-namespaces", "", "Comma-separated namespaces to watch. Empty: all namespaces.")
	fs.StringVar(&o.operatorNamespace, "operator-namespace", "", "Namespace the operator runs in. Empty: $POD_NAMESPACE (the downward API).")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "File holding the acceptors' admin token, sent with every Admin RPC. Empty: none.")
	fs.IntVar(&o.rescanBatch, "rescan-batch", 1000, "Keys listed per acceptor and touched per rescan step.")
	fs.DurationVar(&o.trustPropagation, "tls-trust-propagation", controllers.DefaultTrustPropagation, "How long each step of a CA rotation waits for a changed trust bundle or certificate to reach every pod.")
	fs.DurationVar(&o.rpcTimeout, "rpc-timeout", 2*time.Second, "Timeout of each Admin RPC to an acceptor.")
	fs.StringVar(&o.logLevel, "log-level", "info", "Log level: debug, info, warn or error.")
	fs.BoolVar(&o.enableHTTP2, "enable-http2", false, "Serve the metrics endpoint over HTTP/2 too (off by default: CVE-2023-44487, CVE-2023-39325).")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.trustPropagation <= 0 {
		return nil, fmt.Errorf("--tls-trust-propagation must be positive, not %v", o.trustPropagation)
	}
	if o.rescanBatch < 1 {
		return nil, fmt.Errorf("--rescan-batch %d must be positive", o.rescanBatch)
	}
	var err error
	if o.watchNamespaces, err = parseNamespaces(watch); err != nil {
		return nil, fmt.Errorf("--watch-namespaces: %w", err)
	}
	if o.operatorNamespace == "" {
		o.operatorNamespace = getenv("POD_NAMESPACE")
	}
	if err := validNamespace(o.operatorNamespace); o.operatorNamespace != "" && err != nil {
		return nil, fmt.Errorf("--operator-namespace (or POD_NAMESPACE): %w", err)
	}
	if o.leaderElectionNS == "" {
		o.leaderElectionNS = o.operatorNamespace
	}
	if err := validNamespace(o.leaderElectionNS); o.leaderElectionNS != "" && err != nil {
		return nil, fmt.Errorf("--leader-election-namespace: %w", err)
	}
	return o, nil
}

// parseNamespaces splits a comma-separated list of namespace names, spaces
// around each allowed; "" is nil (all namespaces). An empty or invalid
// element, or one named twice, is an error: a list that names no namespace
// must not widen to all of them.
func parseNamespaces(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []string
	seen := map[string]bool{}
	for i, ns := range strings.Split(list, ",") {
		ns = strings.TrimSpace(ns)
		if err := validNamespace(ns); err != nil {
			return nil, fmt.Errorf("element %d %q: %w", i+1, ns, err)
		}
		if seen[ns] {
			return nil, fmt.Errorf("element %d: %q is listed twice", i+1, ns)
		}
		seen[ns] = true
		out = append(out, ns)
	}
	return out, nil
}

func validNamespace(ns string) error {
	if ns == "" {
		return errors.New("empty namespace name")
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return fmt.Errorf("invalid namespace name %q: %s", ns, strings.Join(errs, "; "))
	}
	return nil
}

// managedBy selects what the operator created: controllers.Labels puts
// app.kubernetes.io/managed-by on every object it builds, and the pod and
// volume claim templates of the StatefulSet carry it too.
func managedBy() labels.Selector {
	l := controllers.Labels(&kshakav1alpha1.KshakaCluster{})
	return labels.SelectorFromSet(labels.Set{controllers.LabelManagedBy: l[controllers.LabelManagedBy]})
}

// cacheOptions are what the manager caches: the watched namespaces (all when
// watch is empty) and, for Pods, PersistentVolumeClaims and Secrets, only the
// objects managedBy selects. The reconciler reads pods and claims through
// the StatefulSet's labels, which include it (the backup and restore Jobs'
// pods carry it too). StatefulSets, Services, PodDisruptionBudgets and Jobs
// are cached whole: the reconcilers read them by name
// and must see one of that name it does not control, to refuse it
// ("exists and is not controlled") rather than fail to create it; there are
// few of them.
func cacheOptions(watch []string) cache.Options {
	var o cache.Options
	if len(watch) > 0 {
		o.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range watch {
			o.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	sel := managedBy()
	o.ByObject = map[client.Object]cache.ByObject{
		&corev1.Pod{}:                   {Label: sel},
		&corev1.PersistentVolumeClaim{}: {Label: sel},
		&corev1.Secret{}:                {Label: sel},
	}
	return o
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Getenv)
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

	token := ""
	if o.adminTokenFile != "" {
		b, err := os.ReadFile(o.adminTokenFile)
		if err != nil {
			return fmt.Errorf("while reading the admin token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("while loading the Kubernetes client configuration: %w", err)
	}
	mgr, err := newManager(cfg, o)
	if err != nil {
		return err
	}
	acc := &controllers.GRPCAcceptors{AdminToken: token, Timeout: o.rpcTimeout}
	defer func() { _ = acc.Close() }()
	if err := setup(mgr, o, acc); err != nil {
		return err
	}
	log.Info("starting manager", "leaderElection", o.leaderElect, "watchNamespaces", o.watchNamespaces, "operatorNamespace", o.operatorNamespace)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fmt.Errorf("while running the manager: %w", err)
	}
	return nil
}

// newManager makes the controller-runtime manager o describes.
func newManager(cfg *rest.Config, o *options) (manager.Manager, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := kshakav1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	var tlsOpts []func(*tls.Config)
	if !o.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.metricsSecure, TLSOpts: tlsOpts}
	if o.metricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              o.leaderElectionID,
		LeaderElectionNamespace:       o.leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cacheOptions(o.watchNamespaces),
		Controller:                    config.Controller{SkipNameValidation: &o.skipNameValidation},
	})
	if err != nil {
		return nil, fmt.Errorf("while creating the manager: %w", err)
	}
	return mgr, nil
}

// setup registers the KshakaCluster, KshakaBackup and
// KshakaScheduledBackup reconcilers and the health checks.
func setup(mgr manager.Manager, o *options, acc controllers.Acceptors) error {
	cs, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("while making the client that reads Job logs: %w", err)
	}
	logs := controllers.ClientsetPodLogs{Clientset: cs}
	r := &controllers.Reconciler{
		Logs:              logs,
		Client:            mgr.GetClient(),
		Scheme:            mgr.GetScheme(),
		Recorder:          mgr.GetEventRecorder("kshaka-operator"),
		Acceptors:         acc,
		RescanBatch:       o.rescanBatch,
		OperatorNamespace: o.operatorNamespace,
		TrustPropagation:  o.trustPropagation,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("while setting up the controller: %w", err)
	}
	br := &controllers.BackupReconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme(), Logs: logs}
	if err := br.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("while setting up the backup controller: %w", err)
	}
	sr := &controllers.ScheduledBackupReconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme()}
	if err := sr.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("while setting up the scheduled backup controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("readyz", healthz.Ping)
}
