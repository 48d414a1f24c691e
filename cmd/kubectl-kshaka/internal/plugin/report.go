package plugin

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// Defaults of report's operator flags: the namespace the chart and
// config/default install the operator into, and its pods' label.
const (
	defaultOperatorNamespace = "kshaka-system"
	defaultOperatorSelector  = "app.kubernetes.io/name=kshaka-operator"
)

type reportFlags struct {
	out               string
	operatorNamespace string
	operatorSelector  string
	maxLogBytes       int64
}

func newReportCmd(o *options) *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report CLUSTER",
		Short: "Write a ZIP of everything a bug report about a cluster needs",
		Long: `report collects, into one ZIP file, what a bug report about a KshakaCluster
needs:

  kshakacluster.yaml          the KshakaCluster (spec and status)
  status.txt, status.json     'kubectl kshaka status' as a table and as JSON
  kshakabackups.yaml          its KshakaBackups and KshakaScheduledBackups
  events.yaml, events.txt     the events of the cluster and its objects
  statefulset.yaml, services.yaml, pvcs.yaml, poddisruptionbudgets.yaml,
  networkpolicies.yaml        the objects the operator owns
  pods/POD.yaml               each acceptor pod
  logs/POD/CONTAINER.log      its logs, and .previous.log for a restarted one
  jobs/                       the backup and restore Jobs, their pods and logs
  operator/                   the operator's pods, Deployments and logs
  secrets.txt                 the names of the cluster's Secrets, never their data
  report.txt                  when and against what it was made, and what could
                              not be collected

The acceptors' own state comes from the cluster's status, as the operator
observed it: the report never connects to the acceptors. Secrets are listed
by name only (their metadata); no Secret data is read. What cannot be
collected (a log of a pod that never started, a kind you may not read) is
listed in report.txt and the rest is still written.

The file is written whole or not at all; an existing --out is never
overwritten.`,
		Example: `  kubectl kshaka report example
  kubectl kshaka report example -n prod --out /tmp/example.zip
  kubectl kshaka report example --operator-namespace kshaka --operator-selector app=kshaka-operator`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.maxLogBytes <= 0 {
				return usageErrorf("--max-log-bytes %d: use a positive number of bytes", f.maxLogBytes)
			}
			sel, err := labels.Parse(f.operatorSelector)
			if err != nil {
				return usageErrorf("--operator-selector %q: %v", f.operatorSelector, err)
			}
			c, err := o.getCluster(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			now := o.now().UTC()
			out := f.out
			if out == "" {
				out = fmt.Sprintf("kshaka-report-%s-%s.zip", c.Name, now.Format("20060102T150405Z"))
			}
			if _, err := os.Lstat(out); err == nil {
				return usageErrorf("%s exists: choose another --out, or remove it first", out)
			}
			n, entries, problems, err := o.writeReport(cmd.Context(), c, out, sel, f, now)
			if err != nil {
				return err
			}
			msg := fmt.Sprintf("wrote %s (%s, %d files)", out, humanBytes(n), entries)
			if problems > 0 {
				msg += fmt.Sprintf("; %s not be collected, listed in report.txt", plural(problems, "item could", "items could"))
			}
			_, err = fmt.Fprintln(o.io.Out, msg)
			return err
		},
	}
	cmd.Flags().StringVar(&f.out, "out", "", "the ZIP file to write (default kshaka-report-CLUSTER-<UTC time>.zip)")
	cmd.Flags().StringVar(&f.operatorNamespace, "operator-namespace", defaultOperatorNamespace, "namespace the operator runs in")
	cmd.Flags().StringVar(&f.operatorSelector, "operator-selector", defaultOperatorSelector, "label selector of the operator's pods")
	cmd.Flags().Int64Var(&f.maxLogBytes, "max-log-bytes", 10<<20, "keep at most this many bytes of each container's log (its end)")
	return cmd
}

// report is a ZIP being written: its entries live under one folder.
type report struct {
	zw       *zip.Writer
	dir      string
	now      time.Time
	entries  []string
	problems []string
}

func (r *report) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// file writes one entry.
func (r *report) file(name string, write func(io.Writer) error) error {
	w, err := r.zw.CreateHeader(&zip.FileHeader{Name: r.dir + "/" + name, Method: zip.Deflate, Modified: r.now})
	if err != nil {
		return fmt.Errorf("while writing %s into the report: %w", name, err)
	}
	r.entries = append(r.entries, name)
	if err := write(w); err != nil {
		return fmt.Errorf("while writing %s into the report: %w", name, err)
	}
	return nil
}

func (r *report) bytes(name string, b []byte) error {
	return r.file(name, func(w io.Writer) error { _, err := w.Write(b); return err })
}

// object writes one object as YAML.
func (r *report) object(name string, obj client.Object) error {
	return r.yaml(name, clean(obj))
}

// list writes objs as a kubectl-style List.
func (r *report) list(name string, objs ...client.Object) error {
	items := make([]any, 0, len(objs))
	for _, obj := range objs {
		items = append(items, clean(obj))
	}
	return r.yaml(name, map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
}

func (r *report) yaml(name string, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("while encoding %s: %w", name, err)
	}
	return r.bytes(name, b)
}

// clean is obj with its kind set and without managed fields.
func clean(obj client.Object) client.Object {
	obj = obj.DeepCopyObject().(client.Object)
	if gvk, err := apiutil.GVKForObject(obj, scheme); err == nil {
		obj.GetObjectKind().SetGroupVersionKind(gvk)
	}
	obj.SetManagedFields(nil)
	return obj
}

// items returns the elements of a typed list as objects.
func items(list client.ObjectList) []client.Object {
	objs, _ := meta.ExtractList(list)
	out := make([]client.Object, 0, len(objs))
	for _, o := range objs {
		if co, ok := o.(client.Object); ok {
			out = append(out, co)
		}
	}
	return out
}

// writeReport writes the report of c into out: into a temporary file in
// the same directory, renamed into place once complete. It returns the
// file's size, its number of entries and of problems.
func (o *options) writeReport(ctx context.Context, c *kshakav1alpha1.KshakaCluster, out string, opSel labels.Selector, f reportFlags, now time.Time) (int64, int, int, error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return 0, 0, 0, fmt.Errorf("while creating the report: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	r := &report{zw: zip.NewWriter(tmp), dir: strings.TrimSuffix(filepath.Base(out), ".zip"), now: now}
	if err := o.collect(ctx, r, c, opSel, f); err != nil {
		return 0, 0, 0, err
	}
	if err := r.zw.Close(); err != nil {
		return 0, 0, 0, fmt.Errorf("while writing the report: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, 0, 0, fmt.Errorf("while writing the report: %w", err)
	}
	st, err := tmp.Stat()
	if err != nil {
		return 0, 0, 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, 0, 0, fmt.Errorf("while writing the report: %w", err)
	}
	// A link, not a rename: an --out created meanwhile is not replaced.
	if err := os.Link(tmp.Name(), out); err != nil {
		return 0, 0, 0, fmt.Errorf("while moving the report into place: %w", err)
	}
	_ = os.Remove(tmp.Name())
	ok = true
	return st.Size(), len(r.entries), len(r.problems), nil
}

// collect writes every entry. An object or log that cannot be read is a
// problem, listed in report.txt; only a failure to write the ZIP is an
// error.
func (o *options) collect(ctx context.Context, r *report, c *kshakav1alpha1.KshakaCluster, opSel labels.Selector, f reportFlags) error {
	ns := c.Namespace
	if err := r.object("kshakacluster.yaml", c); err != nil {
		return err
	}

	// The status, with every Warning event.
	evs, err := o.clusterEvents(ctx, c, false)
	if err != nil {
		r.problem("events: %v", err)
	}
	var warnings []corev1.Event
	for _, e := range evs {
		if e.Type == corev1.EventTypeWarning {
			warnings = append(warnings, e)
		}
	}
	s := BuildStatus(c, toEvents(warnings, 50), r.now)
	if err := r.file("status.txt", func(w io.Writer) error { return writeTable(w, s, r.now) }); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := r.bytes("status.json", append(b, '\n')); err != nil {
		return err
	}

	// Events, oldest first as kubectl prints them.
	slices.Reverse(evs)
	objs := make([]client.Object, len(evs))
	for i := range evs {
		objs[i] = &evs[i]
	}
	if err := r.list("events.yaml", objs...); err != nil {
		return err
	}
	if err := r.file("events.txt", func(w io.Writer) error { return eventTable(w, evs) }); err != nil {
		return err
	}

	// Backups.
	var backups []client.Object
	bs, err := o.backupsOf(ctx, c.Name)
	if err != nil {
		r.problem("KshakaBackups: %v", err)
	}
	var jobs []string
	for i := range bs {
		backups = append(backups, &bs[i])
		if j := bs[i].Status.JobName; j != "" {
			jobs = append(jobs, j)
		}
	}
	var sched kshakav1alpha1.KshakaScheduledBackupList
	if err := o.cl.List(ctx, &sched, client.InNamespace(ns)); err != nil && !meta.IsNoMatchError(err) {
		r.problem("KshakaScheduledBackups: %v", err)
	}
	for i := range sched.Items {
		if sched.Items[i].Spec.Cluster.Name == c.Name {
			backups = append(backups, &sched.Items[i])
		}
	}
	if err := r.list("kshakabackups.yaml", backups...); err != nil {
		return err
	}
	if rs := c.Status.Restore; rs != nil && rs.JobName != "" {
		jobs = append(jobs, rs.JobName)
	}

	// The objects the operator owns, selected by the cluster's labels.
	sel := client.MatchingLabels(selectorLabels(c))
	for _, k := range []struct {
		name string
		list client.ObjectList
	}{
		{"statefulset.yaml", &appsv1.StatefulSetList{}},
		{"services.yaml", &corev1.ServiceList{}},
		{"pvcs.yaml", &corev1.PersistentVolumeClaimList{}},
		{"poddisruptionbudgets.yaml", &policyv1.PodDisruptionBudgetList{}},
		{"networkpolicies.yaml", &networkingv1.NetworkPolicyList{}},
	} {
		if err := o.cl.List(ctx, k.list, client.InNamespace(ns), sel); err != nil {
			r.problem("%s: %v", strings.TrimSuffix(k.name, ".yaml"), err)
			continue
		}
		if err := r.list(k.name, items(k.list)...); err != nil {
			return err
		}
	}
	var pods corev1.PodList
	if err := o.cl.List(ctx, &pods, client.InNamespace(ns), sel); err != nil {
		r.problem("acceptor pods: %v", err)
	}
	for i := range pods.Items {
		if err := o.podAndLogs(ctx, r, &pods.Items[i], "", f.maxLogBytes); err != nil {
			return err
		}
	}

	// Backup and restore Jobs, their pods and logs.
	for _, j := range jobs {
		if err := o.jobAndLogs(ctx, r, ns, j, f.maxLogBytes); err != nil {
			return err
		}
	}

	// The operator.
	if err := o.operator(ctx, r, f.operatorNamespace, opSel, f.maxLogBytes); err != nil {
		return err
	}

	// Secrets: names only, from a metadata-only list (no data is read).
	if err := r.file("secrets.txt", func(w io.Writer) error { return o.secretNames(ctx, r, w, c) }); err != nil {
		return err
	}
	return r.file("report.txt", func(w io.Writer) error { return o.summary(w, r, c, f) })
}

// podAndLogs writes pod's YAML and the logs of each of its containers
// (current and, when it restarted, previous) under dir.
func (o *options) podAndLogs(ctx context.Context, r *report, pod *corev1.Pod, dir string, maxBytes int64) error {
	if err := r.object(dir+"pods/"+pod.Name+".yaml", pod); err != nil {
		return err
	}
	restarts := map[string]int32{}
	for _, cs := range append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...) {
		restarts[cs.Name] = cs.RestartCount
	}
	var containers []string
	for _, ct := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
		containers = append(containers, ct.Name)
	}
	for _, ct := range containers {
		if err := o.log(ctx, r, pod, ct, false, dir, maxBytes); err != nil {
			return err
		}
		if restarts[ct] > 0 {
			if err := o.log(ctx, r, pod, ct, true, dir, maxBytes); err != nil {
				return err
			}
		}
	}
	return nil
}

// log copies one container log into the report; a log that cannot be read
// is a problem, not an error.
func (o *options) log(ctx context.Context, r *report, pod *corev1.Pod, container string, previous bool, dir string, maxBytes int64) error {
	name := dir + "logs/" + pod.Name + "/" + container + ".log"
	what := "log"
	if previous {
		name = strings.TrimSuffix(name, ".log") + ".previous.log"
		what = "previous log"
	}
	opts := &corev1.PodLogOptions{Container: container, Previous: previous}
	stream, err := o.core.Pods(pod.Namespace).GetLogs(pod.Name, opts).Stream(ctx)
	if err != nil {
		r.problem("%s of %s/%s container %s: %v", what, pod.Namespace, pod.Name, container, err)
		return nil
	}
	defer func() { _ = stream.Close() }()
	// The end of the log is what matters: keep the last maxBytes.
	tail := &tailBuffer{max: maxBytes}
	if _, err := io.Copy(tail, stream); err != nil {
		r.problem("%s of %s/%s container %s: cut short: %v", what, pod.Namespace, pod.Name, container, err)
	}
	return r.bytes(name, tail.bytes())
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max     int64
	buf     []byte
	dropped int64
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.buf = append(t.buf, p...)
	if over := int64(len(t.buf)) - t.max; over > 0 {
		t.dropped += over
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return n, nil
}

func (t *tailBuffer) bytes() []byte {
	if t.dropped == 0 {
		return t.buf
	}
	return append(fmt.Appendf(nil, "[kubectl kshaka report: the first %d bytes of this log were left out (--max-log-bytes)]\n", t.dropped), t.buf...)
}

func (o *options) jobAndLogs(ctx context.Context, r *report, ns, name string, maxBytes int64) error {
	var job batchv1.Job
	if err := o.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &job); err != nil {
		r.problem("Job %s/%s: %v", ns, name, err)
	} else if err := r.object("jobs/"+name+".yaml", &job); err != nil {
		return err
	}
	var pods corev1.PodList
	if err := o.cl.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"job-name": name}); err != nil {
		r.problem("pods of Job %s/%s: %v", ns, name, err)
		return nil
	}
	for i := range pods.Items {
		if err := o.podAndLogs(ctx, r, &pods.Items[i], "jobs/", maxBytes); err != nil {
			return err
		}
	}
	return nil
}

func (o *options) operator(ctx context.Context, r *report, ns string, sel labels.Selector, maxBytes int64) error {
	var deps appsv1.DeploymentList
	if err := o.cl.List(ctx, &deps, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		r.problem("operator Deployments in %s (%s): %v", ns, sel, err)
	} else if err := r.list("operator/deployments.yaml", items(&deps)...); err != nil {
		return err
	}
	var pods corev1.PodList
	if err := o.cl.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		r.problem("operator pods in %s (%s): %v", ns, sel, err)
		return nil
	}
	if len(pods.Items) == 0 {
		r.problem("no operator pod in namespace %s matches %s: set --operator-namespace and --operator-selector", ns, sel)
	}
	for i := range pods.Items {
		if err := o.podAndLogs(ctx, r, &pods.Items[i], "operator/", maxBytes); err != nil {
			return err
		}
	}
	return nil
}

// secretNames lists the names of the cluster's Secrets: those carrying its
// instance label, and those its status and pods name. Only metadata is
// requested from the API server: no Secret data is read.
func (o *options) secretNames(ctx context.Context, r *report, w io.Writer, c *kshakav1alpha1.KshakaCluster) error {
	names := map[string]string{}
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := o.cl.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingLabels{labelInstance: c.Name}); err != nil {
		r.problem("Secret names (metadata only): %v", err)
	}
	for _, s := range list.Items {
		names[s.Name] = "labelled app.kubernetes.io/instance=" + c.Name
	}
	if t := c.Status.TLS; t != nil {
		for _, n := range append([]string{t.ClientSecretName}, t.ExtraClientSecretNames...) {
			if _, ok := names[n]; !ok && n != "" {
				names[n] = "named in status.tls"
			}
		}
	}
	keys := make([]string, 0, len(names))
	for n := range names {
		keys = append(keys, n)
	}
	slices.Sort(keys)
	fmt.Fprintf(w, "Secrets of KshakaCluster %s/%s (names only; no Secret data is in this report)\n\n", c.Namespace, c.Name)
	for _, n := range keys {
		fmt.Fprintf(w, "%s\t%s\n", n, names[n])
	}
	return nil
}

func (o *options) summary(w io.Writer, r *report, c *kshakav1alpha1.KshakaCluster, f reportFlags) error {
	server := "unknown"
	if v, err := o.discovery.ServerVersion(); err == nil {
		server = v.GitVersion
	} else {
		r.problem("server version: %v", err)
	}
	host := ""
	if cfg, err := o.flags.ToRESTConfig(); err == nil {
		host = cfg.Host
	}
	ctxName := ""
	if raw, err := o.flags.ToRawKubeConfigLoader().RawConfig(); err == nil {
		ctxName = raw.CurrentContext
		if o.flags.Context != nil && *o.flags.Context != "" {
			ctxName = *o.flags.Context
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Report of:\tKshakaCluster %s/%s (uid %s, generation %d)\n", c.Namespace, c.Name, c.UID, c.Generation)
	fmt.Fprintf(tw, "Made at:\t%s\n", r.now.Format(time.RFC3339))
	fmt.Fprintf(tw, "By:\t%s\n", versionString())
	fmt.Fprintf(tw, "API server:\t%s %s (context %s)\n", host, server, orDash(ctxName))
	fmt.Fprintf(tw, "Operator:\tnamespace %s, pods %s\n", f.operatorNamespace, f.operatorSelector)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nThe acceptors' state is the operator's record in the cluster's status (status.txt);")
	fmt.Fprintln(w, "the report does not connect to the acceptors. Secrets are listed by name only.")
	if len(r.problems) == 0 {
		fmt.Fprintln(w, "\nEverything was collected.")
	} else {
		fmt.Fprintf(w, "\nNot collected (%d):\n", len(r.problems))
		for _, p := range r.problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
	fmt.Fprintf(w, "\nFiles (%d besides this one):\n", len(r.entries)-1)
	for _, e := range r.entries {
		if e != "report.txt" {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	return nil
}

// eventTable prints events as kubectl get events does.
func eventTable(out io.Writer, evs []corev1.Event) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LAST SEEN\tTYPE\tREASON\tOBJECT\tCOUNT\tMESSAGE")
	for i := range evs {
		e := &evs[i]
		fmt.Fprintf(w, "%s\t%s\t%s\t%s/%s\t%d\t%s\n", eventTime(e).Format(time.RFC3339), e.Type, e.Reason,
			e.InvolvedObject.Kind, e.InvolvedObject.Name, eventCount(e), strings.TrimSpace(e.Message))
	}
	return w.Flush()
}
