package plugin

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kshaka-io/kshaka/internal/version"
)

func versionString() string { return version.String("kubectl-kshaka") }

func newVersionCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of kubectl-kshaka",
		Example: "  kubectl kshaka version",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(o.io.Out, versionString())
			return err
		},
	}
}
