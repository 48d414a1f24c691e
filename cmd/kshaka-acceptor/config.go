package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/kshaka-io/kshaka/acceptor"
)

// config is everything the command line and the environment can set.
type config struct {
	dataDir         string
	walDir          string
	listen          string
	metricsListen   string
	healthListen    string
	maxKeySize      int
	maxValueSize    int
	maxBatchItems   int
	maxMessageSize  int
	adminToken      string
	adminTokenFile  string
	tlsCertFile     string
	tlsKeyFile      string
	tlsClientCAFile string
	tlsWait         time.Duration
	cacheSize       int64
	memTableSize    uint64
	memoryLimit     int64
	walMinSyncIntv  time.Duration
	maxBallotLead   time.Duration
	shutdownTimeout time.Duration
	logLevel        string
	logFormat       string
}

const usageHeader = `kshaka-acceptor runs one Kshaka acceptor: a CASPaxos register store on Pebble,
served over gRPC (Acceptor, Admin and health services) with Prometheus metrics.

Security: with --tls-cert-file/--tls-key-file it serves TLS, and with
--tls-client-ca-file mutual TLS: every call then needs a client certificate
signed by that bundle whose Subject O is kshaka:admin (every RPC) or
kshaka:client (Prepare, Accept, Read, GetConfig, health); others are refused
with UNAUTHENTICATED or PERMISSION_DENIED. The TLS files are reloaded when
they change. --admin-token(-file) is an extra requirement of the admin RPCs
(SetConfig, Status, ListKeys). --health-listen serves only health, plaintext.

Every flag can also be set through the environment variable shown with it;
a flag on the command line wins over the environment.

Usage: kshaka-acceptor [flags]

Flags:
`

// envVars maps each flag to the environment variable that sets it.
var envVars = map[string]string{
	"data-dir":              "KSHAKA_DATA_DIR",
	"wal-dir":               "KSHAKA_WAL_DIR",
	"listen":                "KSHAKA_LISTEN",
	"metrics-listen":        "KSHAKA_METRICS_LISTEN",
	"health-listen":         "KSHAKA_HEALTH_LISTEN",
	"max-key-size":          "KSHAKA_MAX_KEY_SIZE",
	"max-value-size":        "KSHAKA_MAX_VALUE_SIZE",
	"max-batch-items":       "KSHAKA_MAX_BATCH_ITEMS",
	"max-message-size":      "KSHAKA_MAX_MESSAGE_SIZE",
	"admin-token":           "KSHAKA_ADMIN_TOKEN",
	"admin-token-file":      "KSHAKA_ADMIN_TOKEN_FILE",
	"tls-cert-file":         "KSHAKA_TLS_CERT_FILE",
	"tls-key-file":          "KSHAKA_TLS_KEY_FILE",
	"tls-client-ca-file":    "KSHAKA_TLS_CLIENT_CA_FILE",
	"tls-wait":              "KSHAKA_TLS_WAIT",
	"cache-size":            "KSHAKA_CACHE_SIZE",
	"memtable-size":         "KSHAKA_MEMTABLE_SIZE",
	"memory-limit":          "KSHAKA_MEMORY_LIMIT",
	"wal-min-sync-interval": "KSHAKA_WAL_MIN_SYNC_INTERVAL",
	"max-ballot-lead":       "KSHAKA_MAX_BALLOT_LEAD",
	"shutdown-timeout":      "KSHAKA_SHUTDOWN_TIMEOUT",
	"log-level":             "KSHAKA_LOG_LEVEL",
	"log-format":            "KSHAKA_LOG_FORMAT",
}

// parseConfig reads flags from args over environment values from getenv.
// It returns flag.ErrHelp after writing usage for -h/--help.
func parseConfig(args []string, getenv func(string) (string, bool), out io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("kshaka-acceptor", flag.ContinueOnError)
	fs.SetOutput(out)

	fs.StringVar(&c.dataDir, "data-dir", "", "Directory of the acceptor's store (created if missing). Required.")
	fs.StringVar(&c.walDir, "wal-dir", "", "Directory of the write-ahead log, ideally on its own volume. Empty: inside --data-dir.")
	fs.StringVar(&c.listen, "listen", ":7400", "host:port of the gRPC server (the Acceptor, Admin and health services; under mutual TLS with --tls-client-ca-file).")
	fs.StringVar(&c.metricsListen, "metrics-listen", ":9400", "host:port of the HTTP server with /metrics (Prometheus), plaintext. Empty: disabled.")
	fs.StringVar(&c.healthListen, "health-listen", "", "host:port of a second gRPC server, plaintext, with only the grpc.health.v1 service (the same state as on --listen: SERVING while admitted and healthy), for probes that cannot present a client certificate, such as the kubelet's gRPC probe. Empty: disabled.")
	fs.IntVar(&c.maxKeySize, "max-key-size", acceptor.DefaultMaxKeySize, "Largest accepted key, in bytes.")
	fs.IntVar(&c.maxValueSize, "max-value-size", acceptor.DefaultMaxValueSize, "Largest accepted value, in bytes.")
	fs.IntVar(&c.maxBatchItems, "max-batch-items", acceptor.DefaultMaxBatchItems, "Most items one Prepare, Accept or Read may carry.")
	fs.IntVar(&c.maxMessageSize, "max-message-size", 0, "Largest gRPC message, in bytes. 0: max(64 MiB, one max-size item).")
	fs.StringVar(&c.adminToken, "admin-token", "", "Token the admin RPCs (SetConfig, Status, ListKeys) must present as `authorization: Bearer <token>`, in addition to an admin certificate under mutual TLS. GetConfig and the data path never need it. Empty: no token required.")
	fs.StringVar(&c.adminTokenFile, "admin-token-file", "", "File holding the admin token (e.g. a mounted Secret); surrounding whitespace is trimmed.")
	fs.StringVar(&c.tlsCertFile, "tls-cert-file", "", "PEM certificate of the gRPC server (intermediates after it). With --tls-key-file it enables TLS. Reloaded when the file changes (polled every 2s; an invalid new file keeps the current one and is logged).")
	fs.StringVar(&c.tlsKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file, reloaded with it.")
	fs.StringVar(&c.tlsClientCAFile, "tls-client-ca-file", "", "PEM bundle of the CAs that sign client certificates; enables mutual TLS: every call needs a client certificate one of them signed (UNAUTHENTICATED otherwise) whose Subject O names a role that allows it: kshaka:admin everything, kshaka:client Prepare, Accept, Read, GetConfig and health (PERMISSION_DENIED otherwise). Every CA of the bundle is trusted (CA rotation); reloaded when the file changes.")
	fs.DurationVar(&c.tlsWait, "tls-wait", 5*time.Minute, "At start, how long to wait for --tls-cert-file, --tls-key-file and --tls-client-ca-file to exist (a new pod may start before its certificate is written), logging every 10s. 0: fail at once.")
	fs.Int64Var(&c.cacheSize, "cache-size", acceptor.DefaultCacheSize, "Pebble block cache, in bytes; the memtables reserve their size from it, so it bounds Pebble's memory.")
	fs.Uint64Var(&c.memTableSize, "memtable-size", acceptor.DefaultMemTableSize, "Pebble memtable size, in bytes; usually two are resident, taken from --cache-size.")
	fs.Int64Var(&c.memoryLimit, "memory-limit", 0, "Soft limit of the Go runtime's memory, in bytes (debug.SetMemoryLimit; Pebble's cache and memtables are Go memory in a pure-Go build). 0: --cache-size + 64 MiB, unless GOMEMLIMIT is set. Negative: no limit.")
	fs.DurationVar(&c.walMinSyncIntv, "wal-min-sync-interval", 0, "Minimum gap between WAL fsyncs (e.g. 500us on IOPS-billed disks). 0: sync at once.")
	fs.DurationVar(&c.maxBallotLead, "max-ballot-lead", acceptor.DefaultMaxBallotLead, "Refuse (INVALID_ARGUMENT, nothing written) a ballot whose counter is more than this ahead of this acceptor's clock in microseconds; it must exceed the clock skew between proposers and acceptors.")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "On SIGTERM/SIGINT, how long in-flight RPCs may take before they are cancelled.")
	fs.StringVar(&c.logLevel, "log-level", "info", "Log level: debug, info, warn or error.")
	fs.StringVar(&c.logFormat, "log-format", "json", "Log format: json or text.")

	fs.Usage = func() { usage(fs, out) }

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := envVars[f.Name]
		if v, ok := getenv(env); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("invalid value %q for environment variable %s: %v", v, env, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return c, c.check()
}

func usage(fs *flag.FlagSet, out io.Writer) {
	fmt.Fprint(out, usageHeader)
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(out, "  --%s (env %s, default %s)\n      %s\n", f.Name, envVars[f.Name], def, f.Usage)
	})
}

// check reports every problem of c at once (options the acceptor validates
// itself are checked by acceptor.Open).
func (c *config) check() error {
	var errs []error
	if c.dataDir == "" {
		errs = append(errs, errors.New("--data-dir (KSHAKA_DATA_DIR) is required"))
	}
	if c.listen == "" {
		errs = append(errs, errors.New("--listen (KSHAKA_LISTEN) must not be empty"))
	}
	if (c.tlsCertFile == "") != (c.tlsKeyFile == "") {
		errs = append(errs, errors.New("--tls-cert-file and --tls-key-file go together"))
	}
	if c.tlsClientCAFile != "" && c.tlsCertFile == "" {
		errs = append(errs, errors.New("--tls-client-ca-file needs --tls-cert-file and --tls-key-file"))
	}
	if c.tlsWait < 0 {
		errs = append(errs, fmt.Errorf("--tls-wait %v must not be negative", c.tlsWait))
	}
	if c.adminToken != "" && c.adminTokenFile != "" {
		errs = append(errs, errors.New("set --admin-token or --admin-token-file, not both"))
	}
	if c.maxBallotLead <= 0 {
		errs = append(errs, fmt.Errorf("--max-ballot-lead %v must be positive", c.maxBallotLead))
	}
	if c.shutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout %v must be positive", c.shutdownTimeout))
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		errs = append(errs, err)
	}
	if c.logFormat != "json" && c.logFormat != "text" {
		errs = append(errs, fmt.Errorf("--log-format %q must be json or text", c.logFormat))
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q must be debug, info, warn or error", s)
	}
	return l, nil
}

func (c *config) logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.logLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.logFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// token returns the admin token, reading --admin-token-file if set.
func (c *config) token() (string, error) {
	if c.adminTokenFile == "" {
		return c.adminToken, nil
	}
	buf, err := os.ReadFile(c.adminTokenFile)
	if err != nil {
		return "", fmt.Errorf("while reading --admin-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(buf))
	if tok == "" {
		return "", fmt.Errorf("--admin-token-file %s is empty", c.adminTokenFile)
	}
	return tok, nil
}
