package plugin

import (
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// newPauseCmd is `pause` (pause true) or `resume` (pause false): they set
// spec.paused.
func newPauseCmd(o *options, pause bool) *cobra.Command {
	use, short, long := "pause CLUSTER", "Stop the operator from changing a cluster (spec.paused)",
		`pause sets spec.paused: the operator stops changing the cluster's objects and
its membership (no scaling, rolling update, replacement or certificate
rotation; a membership change in progress stops at its current step, which
is safe) and keeps refreshing the status. Reads and writes go on: the data
path never goes through the operator. 'kubectl kshaka resume' undoes it.`
	example := `  kubectl kshaka pause example
  kubectl kshaka resume example`
	if !pause {
		use, short, long = "resume CLUSTER", "Let the operator change a paused cluster again",
			`resume clears spec.paused: the operator carries on from where it stopped,
including a membership change in progress.`
	}
	return &cobra.Command{
		Use: use, Short: short, Long: long, Example: example,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.getCluster(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if c.Spec.Paused == pause {
				_, err := fmt.Fprintf(o.io.Out, "kshakacluster/%s is already %s\n", c.Name, map[bool]string{true: "paused", false: "not paused"}[pause])
				return err
			}
			patch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"spec":{"paused":%t}}`, pause))
			if err := o.cl.Patch(cmd.Context(), c, patch); err != nil {
				return fmt.Errorf("while setting spec.paused of %s/%s: %w", c.Namespace, c.Name, err)
			}
			if pause {
				_, err = fmt.Fprintf(o.io.Out, "kshakacluster/%s paused: the operator makes no changes until 'kubectl kshaka resume %s'\n", c.Name, c.Name)
			} else {
				_, err = fmt.Fprintf(o.io.Out, "kshakacluster/%s resumed\n", c.Name)
			}
			return err
		},
	}
}
