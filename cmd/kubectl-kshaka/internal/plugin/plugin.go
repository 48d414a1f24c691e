package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// Exit codes of kubectl-kshaka. They are part of its interface: scripts
// branch on them.
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitError: any failure not covered by a more specific code.
	ExitError = 1
	// ExitUsage: bad command line (unknown command or flag, wrong
	// arguments, a value that cannot be right).
	ExitUsage = 2
	// ExitNotFound: the KshakaCluster or KshakaBackup named does not exist
	// in the namespace.
	ExitNotFound = 3
	// ExitFailed: the backup or restore followed with --wait failed.
	ExitFailed = 4
	// ExitNotConfirmed: retire was not confirmed; nothing was changed.
	ExitNotConfirmed = 5
	// ExitQuorumLost: status found no quorum of the current configuration
	// serving.
	ExitQuorumLost = 6
	// ExitTimeout: --timeout passed before the backup or restore finished
	// (it goes on).
	ExitTimeout = 7
)

const exitCodesHelp = `Exit codes:
  0  success
  1  error not covered below
  2  usage error (unknown command or flag, wrong arguments)
  3  the KshakaCluster or KshakaBackup does not exist in the namespace
  4  the backup or restore followed with --wait failed
  5  retire was not confirmed (nothing changed)
  6  status: no quorum of the current configuration is serving
  7  --timeout passed before the backup or restore finished (it goes on)`

// IO is where a command reads and writes.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// Interactive reports whether In is a terminal a person types at:
	// retire asks for its confirmation only there. nil: In is a terminal
	// when it is an *os.File that is one.
	Interactive func() bool
}

// StdIO is the process's standard streams.
func StdIO() IO { return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

func (s IO) interactive() bool {
	if s.Interactive != nil {
		return s.Interactive()
	}
	f, ok := s.In.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// options is the state shared by the commands of one run.
type options struct {
	io    IO
	flags *genericclioptions.ConfigFlags
	// now is the clock (ages, expiries, default names).
	now func() time.Time
	// poll is how often --wait looks at the object.
	pollEvery time.Duration
	// parsed is set once the command line was accepted; an error before
	// that is a usage error.
	parsed bool

	cl client.Client
	// core reads logs; discovery the server's version (only these two of
	// client-go's typed clients).
	core      corev1client.CoreV1Interface
	discovery discovery.DiscoveryInterface
	namespace string
}

// Run runs kubectl-kshaka with args (without the program name) and returns
// the process exit code. Errors are printed to stdio.Err.
func Run(ctx context.Context, args []string, stdio IO) int {
	return run(ctx, args, &options{io: stdio, now: time.Now, pollEvery: time.Second})
}

func run(ctx context.Context, args []string, o *options) int {
	root := newRootCmd(o)
	root.SetArgs(args)
	root.SetIn(o.io.In)
	root.SetOut(o.io.Out)
	root.SetErr(o.io.Err)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	ee := classify(err)
	if !o.parsed && ee.code == ExitError {
		ee.code = ExitUsage
	}
	fmt.Fprintf(o.io.Err, "Error: %v\n", err)
	if ee.advice != "" {
		fmt.Fprintln(o.io.Err, "  "+strings.ReplaceAll(ee.advice, "\n", "\n  "))
	}
	// An error that says what to do instead needs no pointer to --help.
	if ee.code == ExitUsage && ee.advice == "" {
		fmt.Fprintf(o.io.Err, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ee.code
}

func newRootCmd(o *options) *cobra.Command {
	o.flags = genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use: "kubectl-kshaka",
		// Help and errors name the command as the user types it.
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl kshaka"},
		Short:       "Operate Kshaka clusters on Kubernetes",
		Long: `kubectl kshaka operates KshakaClusters through the Kubernetes API: their health,
backups and restores, retiring a member whose disk is gone, pausing the
operator, and a report for a bug.

It uses kubectl's kubeconfig, context and namespace (--kubeconfig, --context,
-n/--namespace and the other kubectl flags), and never connects to the
acceptors themselves: everything it shows is what the operator recorded.

Install: copy bin/kubectl-kshaka (make build; make install-plugin copies it)
anywhere on PATH; kubectl then runs it as 'kubectl kshaka'.

` + exitCodesHelp,
		Version:           versionString(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
		PersistentPreRunE: func(*cobra.Command, []string) error {
			o.parsed = true
			return nil
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.Flags().Bool("version", false, "print the version of kubectl-kshaka")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return withCode(ExitUsage, err)
	})
	o.flags.AddFlags(root.PersistentFlags())
	root.AddCommand(
		newStatusCmd(o),
		newBackupCmd(o),
		newRestoreCmd(o),
		newRetireCmd(o),
		newPauseCmd(o, true),
		newPauseCmd(o, false),
		newReportCmd(o),
		newVersionCmd(o),
	)
	// A wrong number of arguments is a usage error.
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

// scheme knows the Kubernetes kinds and Kshaka's.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := kshakav1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// connect builds the clients from the kubeconfig flags, once.
func (o *options) connect() error {
	if o.cl != nil {
		return nil
	}
	cfg, err := o.flags.ToRESTConfig()
	if err != nil {
		return withAdvice(ExitError, fmt.Errorf("while loading the kubeconfig: %w", err),
			"Check --kubeconfig (or KUBECONFIG) and --context, as for kubectl.")
	}
	ns, _, err := o.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return fmt.Errorf("while reading the namespace from the kubeconfig: %w", err)
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("while connecting to the API server %s: %w", cfg.Host, err)
	}
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("while connecting to the API server %s: %w", cfg.Host, err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("while connecting to the API server %s: %w", cfg.Host, err)
	}
	o.cl, o.core, o.discovery, o.namespace = cl, core, disc, ns
	return nil
}

// exitError carries an exit code and, optionally, advice printed after the
// error message.
type exitError struct {
	code   int
	err    error
	advice string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &exitError{code: code, err: err} }

func withAdvice(code int, err error, advice string) error {
	return &exitError{code: code, err: err, advice: advice}
}

func usageErrorf(format string, args ...any) error {
	return withCode(ExitUsage, fmt.Errorf(format, args...))
}

// classify maps an error to the exit code and advice the user sees.
func classify(err error) *exitError {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee
	}
	switch {
	case apierrors.IsNotFound(err):
		return &exitError{code: ExitNotFound, err: err, advice: "Check the name and the namespace (-n); 'kubectl get kshakaclusters,kshakabackups -A' lists them."}
	case apierrors.IsForbidden(err):
		return &exitError{code: ExitError, err: err, advice: "Your kubeconfig's user may not do this; 'kubectl auth can-i' tells what it may."}
	case errors.Is(err, context.Canceled):
		return &exitError{code: ExitError, err: err}
	}
	return &exitError{code: ExitError, err: err}
}

// getCluster reads the KshakaCluster name of the namespace.
func (o *options) getCluster(ctx context.Context, name string) (*kshakav1alpha1.KshakaCluster, error) {
	if err := o.connect(); err != nil {
		return nil, err
	}
	var c kshakav1alpha1.KshakaCluster
	if err := o.cl.Get(ctx, client.ObjectKey{Namespace: o.namespace, Name: name}, &c); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, withAdvice(ExitNotFound, fmt.Errorf("KshakaCluster %s not found in namespace %s", name, o.namespace),
				"Check the name and the namespace (-n); 'kubectl get kshakaclusters -A' lists them.")
		}
		return nil, fmt.Errorf("while reading KshakaCluster %s/%s: %w", o.namespace, name, err)
	}
	return &c, nil
}
