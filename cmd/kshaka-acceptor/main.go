package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/internal/tlsreload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr, nil))
}

// serving are the addresses the servers listen on ("" for one disabled).
type serving struct{ grpc, metrics, health string }

// listening reports the addresses the servers listen on (for tests).
type listening func(serving)

// run parses the configuration and serves until ctx is done. It returns the
// process exit code: 0 after a clean shutdown, 1 on a runtime failure, 2 on
// bad flags or environment.
func run(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer, ready listening) int {
	cfg, err := parseConfig(args, getenv, stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "kshaka-acceptor: %v\nRun kshaka-acceptor --help for usage.\n", err)
		return 2
	}
	log := cfg.logger(stderr)
	if err := serve(ctx, cfg, log, ready); err != nil {
		log.Error("acceptor failed", "err", err)
		fmt.Fprintf(stderr, "kshaka-acceptor: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg *config, log *slog.Logger, ready listening) (err error) {
	token, err := cfg.token()
	if err != nil {
		return err
	}
	var creds credentials.TransportCredentials
	if cfg.tlsCertFile != "" {
		src, err := cfg.loadTLS(ctx, log)
		if err != nil {
			return err
		}
		defer src.Close()
		creds = credentials.NewTLS(src.TLSConfig())
	}
	if limit, ok := cfg.goMemoryLimit(os.LookupEnv); ok {
		debug.SetMemoryLimit(limit)
		log.Info("go memory limit set", "bytes", limit)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	acc, err := acceptor.Open(acceptor.Options{
		Dir:                cfg.dataDir,
		WALDir:             cfg.walDir,
		MaxKeySize:         cfg.maxKeySize,
		MaxValueSize:       cfg.maxValueSize,
		MaxBatchItems:      cfg.maxBatchItems,
		MaxMessageSize:     cfg.maxMessageSize,
		MutualTLS:          cfg.tlsClientCAFile != "",
		AdminToken:         token,
		Registerer:         reg,
		Logger:             log,
		CacheSize:          cfg.cacheSize,
		MemTableSize:       cfg.memTableSize,
		WALMinSyncInterval: cfg.walMinSyncIntv,
		MaxBallotLead:      cfg.maxBallotLead,
	})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := acc.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	opts := acc.ServerOptions()
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	acc.Register(srv)
	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}
	listen := func(flagName, addr string) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("while listening on --%s %s: %w", flagName, addr, err)
		}
		listeners = append(listeners, l)
		return l, nil
	}
	lis, err := listen("listen", cfg.listen)
	if err != nil {
		return err
	}
	addrs := serving{grpc: lis.Addr().String()}

	// The health server carries nothing but health, in plaintext: the
	// kubelet's gRPC probe cannot present a client certificate.
	var healthSrv *grpc.Server
	var hlis net.Listener
	if cfg.healthListen != "" {
		if hlis, err = listen("health-listen", cfg.healthListen); err != nil {
			return err
		}
		healthSrv = grpc.NewServer()
		acc.RegisterHealth(healthSrv)
		addrs.health = hlis.Addr().String()
	}

	var metricsSrv *http.Server
	var mlis net.Listener
	if cfg.metricsListen != "" {
		if mlis, err = listen("metrics-listen", cfg.metricsListen); err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		addrs.metrics = mlis.Addr().String()
		go func() {
			if err := metricsSrv.Serve(mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server failed", "err", err)
			}
		}()
	}

	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(lis) }()
	if healthSrv != nil {
		go func() {
			if err := healthSrv.Serve(hlis); err != nil {
				serveErr <- fmt.Errorf("health server: %w", err)
			}
		}()
	}
	log.Info("serving", "grpc", addrs.grpc, "metrics", addrs.metrics, "health", addrs.health, "tls", creds != nil,
		"client_auth", cfg.tlsClientCAFile != "", "admin_token", token != "",
		"incarnation", fmt.Sprintf("%x", acc.Incarnation()))
	if ready != nil {
		ready(addrs)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing in-flight RPCs", "timeout", cfg.shutdownTimeout)
	case err = <-serveErr:
		err = fmt.Errorf("gRPC server stopped: %w", err)
	}
	gracefulStop(srv, cfg.shutdownTimeout, log)
	if healthSrv != nil {
		healthSrv.Stop() // Watch streams would hold a graceful stop
	}
	if metricsSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
		defer cancel()
		_ = metricsSrv.Shutdown(sctx)
	}
	log.Info("stopped")
	return err
}

// memoryLimitHeadroom is what the default Go memory limit allows beyond the
// Pebble cache: memtables being flushed, gRPC buffers, request garbage.
const memoryLimitHeadroom = 64 << 20

// goMemoryLimit returns the soft memory limit to set, if any. An explicit
// --memory-limit wins; otherwise GOMEMLIMIT, which the runtime already
// applied, is left alone; otherwise the limit is the cache plus headroom, so
// the garbage collector does not let Pebble's Go-allocated cache and
// memtables double the heap (docs/memory.md).
func (c *config) goMemoryLimit(getenv func(string) (string, bool)) (int64, bool) {
	switch {
	case c.memoryLimit < 0:
		return 0, false
	case c.memoryLimit > 0:
		return c.memoryLimit, true
	}
	if _, ok := getenv("GOMEMLIMIT"); ok {
		return 0, false
	}
	cache := c.cacheSize
	if cache <= 0 {
		cache = acceptor.DefaultCacheSize
	}
	return cache + memoryLimitHeadroom, true
}

// gracefulStop lets in-flight RPCs finish, cancelling them after timeout
// (long-lived streams such as health Watch would otherwise hold it forever).
func gracefulStop(srv *grpc.Server, timeout time.Duration, log *slog.Logger) {
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		log.Warn("shutdown timeout: cancelling remaining RPCs")
		srv.Stop()
		<-done
	}
}

// tlsReloadInterval is how often the TLS files are polled for changes.
var tlsReloadInterval = tlsreload.DefaultInterval

// tlsWaitLogEvery is how often loadTLS says it is still waiting.
const tlsWaitLogEvery = 10 * time.Second

// loadTLS loads the server certificate, its key and the client CA bundle,
// reloaded when they change. While one of them does not exist it waits, up
// to --tls-wait, logging every 10s: a new pod may start before the operator
// has written its certificate into the mounted Secret. A file that exists
// but does not load fails at once.
func (c *config) loadTLS(ctx context.Context, log *slog.Logger) (*tlsreload.Server, error) {
	files := tlsreload.ServerFiles{CertFile: c.tlsCertFile, KeyFile: c.tlsKeyFile, ClientCAFile: c.tlsClientCAFile}
	var loaded atomic.Pointer[tlsreload.Server] // for OnReload, which the watcher calls
	opts := tlsreload.Options{Interval: tlsReloadInterval, OnReload: func(err error) {
		if err != nil {
			log.Error("the TLS files changed but do not load; serving with the previous certificate and CA bundle", "err", err)
			return
		}
		src := loaded.Load()
		if src == nil {
			return
		}
		cert := src.Certificate()
		log.Info("reloaded the TLS files", "subject", cert.Subject.String(), "not_after", cert.NotAfter, "client_cas", src.ClientCAs())
	}}
	start := time.Now()
	var logged time.Time
	for {
		src, err := tlsreload.NewServer(files, opts)
		if err == nil {
			loaded.Store(src)
			cert := src.Certificate()
			log.Info("loaded the TLS files", "cert", c.tlsCertFile, "subject", cert.Subject.String(), "not_after", cert.NotAfter,
				"client_ca", c.tlsClientCAFile, "client_cas", src.ClientCAs())
			return src, nil
		}
		waited := time.Since(start)
		if !errors.Is(err, fs.ErrNotExist) || waited >= c.tlsWait {
			if c.tlsWait > 0 && errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w (waited %v, --tls-wait)", err, c.tlsWait)
			}
			return nil, err
		}
		if logged.IsZero() || time.Since(logged) >= tlsWaitLogEvery {
			log.Info("waiting for the TLS files to appear", "err", err, "waited", waited.Round(time.Second), "tls_wait", c.tlsWait)
			logged = time.Now()
		}
		t := time.NewTimer(min(time.Second, c.tlsWait-waited))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("stopped while waiting for the TLS files: %w", err)
		case <-t.C:
		}
	}
}
