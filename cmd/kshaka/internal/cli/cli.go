package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// IO is where a command reads and writes.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// StdIO is the process's standard streams.
func StdIO() IO { return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// globals is the state shared by all commands of one run.
type globals struct {
	client clientOptions
	in     io.Reader
	out    io.Writer
	errw   io.Writer
	// parsed is set once the command line was accepted; an error before
	// that is a usage error.
	parsed bool
}

// Run runs kshaka with args (without the program name) and returns the
// process exit code. Errors are printed to stdio.Err.
func Run(ctx context.Context, args []string, stdio IO) int {
	g := &globals{in: stdio.In, out: stdio.Out, errw: stdio.Err}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	ee := classify(err)
	if !g.parsed && ee.code == ExitError {
		ee.code = ExitUsage
	}
	fmt.Fprintf(stdio.Err, "Error: %v\n", err)
	if ee.advice != "" {
		fmt.Fprintln(stdio.Err, indent(ee.advice))
	}
	if ee.code == ExitUsage {
		fmt.Fprintf(stdio.Err, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ee.code
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "kshaka",
		Short: "Command-line client of Kshaka, a CASPaxos key-value store",
		Long: `kshaka reads and writes keys of a Kshaka cluster, reports its health, backs it
up and restores it, and runs a local cluster for development.

Every key is an independent CASPaxos register with a version that counts its
changes; 'kshaka cas' writes only if the key is still at the version you read.

Commands that talk to a cluster find it through --endpoints (any reachable
acceptor is enough: the full configuration is learned from it). Flags can
also be set through the environment variables named in their help.

` + exitCodesHelp,
		Version:           versionString(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.parsed = true
			if err := applyEnv(cmd.Flags()); err != nil {
				return err
			}
			return g.client.validate()
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.Flags().Bool("version", false, "print the version of kshaka") // no -v: that is get's --verbose
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return withCode(ExitUsage, err)
	})
	g.client.addFlags(root.PersistentFlags())
	root.AddCommand(
		newGetCmd(g),
		newPutCmd(g),
		newCasCmd(g),
		newDeleteCmd(g),
		newStatusCmd(g),
		newBackupCmd(g),
		newRestoreCmd(g),
		newGCCmd(g),
		newLocalCmd(g),
		newBenchCmd(g),
		newVersionCmd(g),
	)
	// Wrap argument validation so a wrong number of arguments is a usage
	// error even where cobra reports it.
	for _, c := range root.Commands() {
		if c.Args == nil {
			continue
		}
		args := c.Args
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return withCode(ExitUsage, err)
			}
			return nil
		}
	}
	return root
}
