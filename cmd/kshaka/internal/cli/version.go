package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kshaka-io/kshaka/internal/version"
)

func versionString() string { return version.String("kshaka") }

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of kshaka",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(g.out, versionString())
			return err
		},
	}
}
