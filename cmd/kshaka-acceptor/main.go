package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/kshaka-io/kshaka/acceptor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr, nil))
}

// listening reports the addresses the servers listen on (for tests).
type listening func(grpcAddr, metricsAddr string)

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
	creds, err := cfg.tlsCredentials()
	if err != nil {
		return err
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
	lis, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("while listening on --listen %s: %w", cfg.listen, err)
	}

	var metricsSrv *http.Server
	var metricsAddr string
	if cfg.metricsListen != "" {
		mlis, err := net.Listen("tcp", cfg.metricsListen)
		if err != nil {
			_ = lis.Close()
			return fmt.Errorf("while listening on --metrics-listen %s: %w", cfg.metricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		metricsAddr = mlis.Addr().String()
		go func() {
			if err := metricsSrv.Serve(mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server failed", "err", err)
			}
		}()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	log.Info("serving", "grpc", lis.Addr().String(), "metrics", metricsAddr, "tls", creds != nil,
		"client_auth", cfg.tlsClientCAFile != "", "admin_token", token != "",
		"incarnation", fmt.Sprintf("%x", acc.Incarnation()))
	if ready != nil {
		ready(lis.Addr().String(), metricsAddr)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing in-flight RPCs", "timeout", cfg.shutdownTimeout)
	case err = <-serveErr:
		err = fmt.Errorf("gRPC server stopped: %w", err)
	}
	gracefulStop(srv, cfg.shutdownTimeout, log)
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

// tlsCredentials loads the server certificate and the optional client CA.
func (c *config) tlsCredentials() (credentials.TransportCredentials, error) {
	if c.tlsCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCertFile, c.tlsKeyFile)
	if err != nil {
		return nil, fmt.Errorf("while loading --tls-cert-file/--tls-key-file: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.tlsClientCAFile != "" {
		pem, err := os.ReadFile(c.tlsClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("while reading --tls-client-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-client-ca-file %s holds no PEM certificate", c.tlsClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(tc), nil
}
