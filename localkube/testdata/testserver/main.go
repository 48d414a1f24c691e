// Command testserver is the process the localkube tests run in pods: an
// HTTP server with /healthz, optionally a gRPC health server, that can
// write a file into a data directory, resolve names, and exit with a chosen
// code.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	listen := flag.String("listen", "", "HTTP address (serves /healthz)")
	grpcListen := flag.String("grpc-listen", "", "gRPC health address")
	dataDir := flag.String("data-dir", "", "directory to write hello.txt into")
	exitCode := flag.Int("exit-code", -1, "exit at once with this code")
	flag.Parse()

	fmt.Printf("testserver pid %d pod %s/%s ip %s\n", os.Getpid(), os.Getenv("POD_NAMESPACE"), os.Getenv("POD_NAME"), os.Getenv("POD_IP"))
	fmt.Fprintf(os.Stderr, "args %q\n", os.Args[1:])
	if *exitCode >= 0 {
		fmt.Printf("exiting with code %d\n", *exitCode)
		os.Exit(*exitCode)
	}
	if *dataDir != "" {
		if err := os.WriteFile(filepath.Join(*dataDir, "hello.txt"), []byte(os.Getenv("POD_NAME")), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("wrote %s\n", filepath.Join(*dataDir, "hello.txt"))
	}
	if *listen != "" {
		l, err := net.Listen("tcp", *listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		// /resolve?name=NAME answers NAME's addresses as this process's
		// resolver finds them (through the pod's /etc/resolv.conf).
		mux.HandleFunc("/resolve", func(w http.ResponseWriter, r *http.Request) {
			addrs, err := net.DefaultResolver.LookupHost(r.Context(), r.URL.Query().Get("name"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			sort.Strings(addrs)
			fmt.Fprint(w, strings.Join(addrs, " "))
		})
		go func() { _ = http.Serve(l, mux) }()
		fmt.Printf("listening on %s\n", l.Addr())
	}
	if *grpcListen != "" {
		l, err := net.Listen("tcp", *grpcListen)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		s := grpc.NewServer()
		healthpb.RegisterHealthServer(s, health.NewServer())
		go func() { _ = s.Serve(l) }()
		fmt.Printf("gRPC health on %s\n", l.Addr())
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	fmt.Printf("got %v, exiting\n", <-sig)
}
