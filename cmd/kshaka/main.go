// Command kshaka is the command-line client of a Kshaka cluster: get, put,
// cas and delete keys, report the cluster's health, back it up and restore
// it, and run a local cluster for development. Run `kshaka --help` for the commands and exit codes.
package main

import (
	"context"
	"os"

	"github.com/kshaka-io/kshaka/cmd/kshaka/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], cli.StdIO()))
}
