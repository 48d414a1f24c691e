package plugin

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

var incarnationRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// retireTarget is the member a retire asserts about.
type retireTarget struct {
	pod, incarnation string
}

// findRetireTarget resolves POD|INCARNATION to a member in play: of the
// current configuration, of the one a transition started from, or the
// transition's member. The operator retires only those.
func findRetireTarget(c *kshakav1alpha1.KshakaCluster, arg string) (retireTarget, error) {
	var inPlay []kshakav1alpha1.ConfigMember
	st := &c.Status
	if st.Configuration != nil {
		inPlay = append(inPlay, st.Configuration.Members...)
	}
	if tr := st.Transition; tr != nil {
		if tr.From != nil {
			inPlay = append(inPlay, tr.From.Members...)
		}
		if tr.Member != nil {
			inPlay = append(inPlay, *tr.Member)
		}
	}
	byInc := incarnationRE.MatchString(arg)
	for _, m := range inPlay {
		if m.Incarnation == "" {
			continue
		}
		if (byInc && m.Incarnation == arg) || (!byInc && m.ID == arg) {
			return retireTarget{pod: m.ID, incarnation: m.Incarnation}, nil
		}
	}
	epoch := int64(0)
	if st.Configuration != nil {
		epoch = st.Configuration.Epoch
	}
	what := "pod " + arg
	if byInc {
		what = "incarnation " + arg
	}
	var ids []string
	for _, m := range inPlay {
		if m.Incarnation != "" && !slices.Contains(ids, m.ID+" ("+m.Incarnation+")") {
			ids = append(ids, m.ID+" ("+m.Incarnation+")")
		}
	}
	return retireTarget{}, withAdvice(ExitUsage, fmt.Errorf("%s is not a member of KshakaCluster %s/%s (epoch %d): only a member can be retired", what, c.Namespace, c.Name, epoch),
		"Members: "+orDash(strings.Join(ids, ", "))+".\nGive a member's pod name or its incarnation (16 hex digits); 'kubectl kshaka status "+c.Name+"' lists them.")
}

// assertionText is what retire prints before asking: exactly what the
// person asserts and what it costs if it is untrue (docs/design.md §4).
func assertionText(c *kshakav1alpha1.KshakaCluster, t retireTarget) string {
	return fmt.Sprintf(`You are asserting that the storage of member %s (incarnation %s) of
KshakaCluster %s/%s is gone forever: its volume was deleted or destroyed and
will never be attached to an acceptor again.

The operator then retires incarnation %s for good and replaces the member
through the full membership procedure (it is removed; a new member with an
empty volume is added and every key is rescanned onto it).

This is like a StatefulSet force delete, and it cannot be undone. The cluster
cannot protect itself from a retired acceptor that comes back with its old
disk: it may then serve stale data to proposers that still use an older
configuration. If the disk may still come back, do not retire it: wait for it,
or delete its PersistentVolumeClaim and pod so that the operator sees the loss
itself.
`, t.pod, t.incarnation, c.Namespace, c.Name, t.incarnation)
}

func newRetireCmd(o *options) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "retire CLUSTER POD|INCARNATION",
		Short: "Assert that a member's storage is gone for good, so the operator replaces it",
		Long: `retire is the explicit assertion of docs/design.md §4: a member's storage is
gone for good and will never return. The operator never retires an
unreachable member by itself (it may come back with its promises and
accepts); a member that is unreachable with its disk intact blocks every
membership change. When you know the disk is gone — the node and its volume
were destroyed — retire tells the operator so: it retires the member's
incarnation and replaces it.

The member is named by its pod or by its incarnation (16 hex digits, from
'kubectl kshaka status'). retire prints what you assert and asks you to type
the pod name; --yes skips the question (for scripts). Without --yes and
without a terminal to ask on, it refuses. It refuses a member that is
reachable with that incarnation: its storage is evidently not gone.

It adds the incarnation to the kshaka.io/retire-incarnations annotation of
the KshakaCluster.`,
		Example: `  kubectl kshaka retire example example-2
  kubectl kshaka retire example 3f1c0a9e5b7d2468 --yes`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := o.getCluster(ctx, args[0])
			if err != nil {
				return err
			}
			arg := strings.TrimSpace(args[1])
			if slices.Contains(splitAnnotation(c.Annotations[annotationRetire]), arg) {
				_, err := fmt.Fprintf(o.io.Out, "incarnation %s is already asserted on kshakacluster/%s; the operator retires it\n", arg, c.Name)
				return err
			}
			if slices.Contains(c.Status.RetiredIncarnations, arg) {
				_, err := fmt.Fprintf(o.io.Out, "incarnation %s is already retired\n", arg)
				return err
			}
			t, err := findRetireTarget(c, arg)
			if err != nil {
				return err
			}
			if slices.Contains(splitAnnotation(c.Annotations[annotationRetire]), t.incarnation) {
				_, err := fmt.Fprintf(o.io.Out, "incarnation %s of %s is already asserted on kshakacluster/%s; the operator retires it\n", t.incarnation, t.pod, c.Name)
				return err
			}
			if slices.Contains(c.Status.RetiredIncarnations, t.incarnation) {
				_, err := fmt.Fprintf(o.io.Out, "incarnation %s of %s is already retired\n", t.incarnation, t.pod)
				return err
			}
			if r, ok := rowOf(c.Status.Members, t.pod); ok && r.Reachable && r.Incarnation == t.incarnation {
				return withAdvice(ExitUsage, fmt.Errorf("%s is reachable and reports incarnation %s: its storage is not gone, refusing to retire it", t.pod, t.incarnation),
					"retire is only for a member whose disk is gone. To give this member a new disk, delete its PersistentVolumeClaim\n"+
						"and then its pod: it comes back empty, with a new incarnation, and the operator replaces it by itself.")
			}
			fmt.Fprintln(o.io.Err, assertionText(c, t))
			if !yes {
				if err := o.confirm(t.pod); err != nil {
					return err
				}
			}
			v, err := o.addRetireAnnotation(ctx, c, t.incarnation)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(o.io.Out, "kshakacluster/%s annotated %s=%s\nThe operator retires %s (incarnation %s) and replaces it; follow with 'kubectl kshaka status %s'.\n",
				c.Name, annotationRetire, v, t.pod, t.incarnation, c.Name)
			return err
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "assert without asking for confirmation")
	return cmd
}

// confirm asks the person to type pod; anything else, or no terminal,
// refuses.
func (o *options) confirm(pod string) error {
	if !o.io.interactive() {
		return withAdvice(ExitNotConfirmed, fmt.Errorf("not confirmed: standard input is not a terminal, so nobody can confirm; nothing changed"),
			"Run it in a terminal to confirm by typing the pod name, or pass --yes if you are sure.")
	}
	fmt.Fprintf(o.io.Err, "Type the pod name (%s) to confirm: ", pod)
	line, err := bufio.NewReader(o.io.In).ReadString('\n')
	if strings.TrimSpace(line) != pod {
		if err != nil && line == "" {
			return withCode(ExitNotConfirmed, fmt.Errorf("not confirmed (no answer): nothing changed"))
		}
		return withCode(ExitNotConfirmed, fmt.Errorf("not confirmed: %q is not %s; nothing changed", strings.TrimSpace(line), pod))
	}
	return nil
}

// addRetireAnnotation adds inc to c's retire annotation with an optimistic
// lock (a concurrent change of the object is re-read, never overwritten) and
// returns the annotation's new value.
func (o *options) addRetireAnnotation(ctx context.Context, c *kshakav1alpha1.KshakaCluster, inc string) (string, error) {
	for range 5 {
		incs := splitAnnotation(c.Annotations[annotationRetire])
		if !slices.Contains(incs, inc) {
			incs = append(incs, inc)
		}
		v := strings.Join(incs, ",")
		orig := c.DeepCopy()
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[annotationRetire] = v
		err := o.cl.Patch(ctx, c, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
		if err == nil {
			return v, nil
		}
		if !apierrors.IsConflict(err) {
			return "", fmt.Errorf("while annotating %s/%s: %w", c.Namespace, c.Name, err)
		}
		if err := o.cl.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
			return "", fmt.Errorf("while re-reading %s/%s: %w", c.Namespace, c.Name, err)
		}
	}
	return "", fmt.Errorf("while annotating %s/%s: it kept changing under us; try again", c.Namespace, c.Name)
}
