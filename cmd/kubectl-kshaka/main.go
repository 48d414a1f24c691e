package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kshaka-io/kshaka/cmd/kubectl-kshaka/internal/plugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := plugin.Run(ctx, os.Args[1:], plugin.StdIO())
	stop()
	os.Exit(code)
}
