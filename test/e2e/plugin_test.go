//go:build e2e

package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// plugin runs bin/kubectl-kshaka against the local control plane and
// returns its standard output and exit code.
func (e *env) plugin(t *testing.T, args ...string) (string, int) {
	t.Helper()
	bin := filepath.Join(e.repo, "bin", "kubectl-kshaka")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("bin/kubectl-kshaka is missing: run `make build` (or `make e2e`)")
	}
	cmd := exec.CommandContext(ctxT(t, 2*time.Minute), bin, append([]string{"--kubeconfig", e.kube.KubeconfigPath()}, args...)...)
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kubectl-kshaka %s: %v", strings.Join(args, " "), err)
	}
	if errw.Len() > 0 {
		t.Logf("kubectl-kshaka %s (exit %d) stderr:\n%s", strings.Join(args, " "), code, errw.String())
	}
	return out.String(), code
}

// testPlugin runs the kubectl plugin against the running cluster: status
// as a table and as JSON agrees with the resource, and report writes the
// acceptors' and the operator's real logs and not a byte of the cluster's
// Secrets.
func testPlugin(t *testing.T, e *env) {
	kc := e.waitStable(t, ns, name, 3, settle)

	table, code := e.plugin(t, "status", name, "-n", ns)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, table)
	}
	for _, want := range []string{"Quorum:", "Healthy", "Tolerates:", "1 more failure", "Members:", "CA expires:", "Conditions:"} {
		if !strings.Contains(table, want) {
			t.Errorf("status lacks %q:\n%s", want, table)
		}
	}
	t.Logf("kubectl kshaka status %s -n %s:\n%s", name, ns, table)

	out, code := e.plugin(t, "status", name, "-n", ns, "-o", "json")
	var s struct {
		Quorum struct {
			Health    string `json:"health"`
			Epoch     int64  `json:"epoch"`
			Tolerates int    `json:"tolerates"`
		} `json:"quorum"`
		Members []struct {
			Pod         string `json:"pod"`
			Incarnation string `json:"incarnation"`
			Serving     bool   `json:"serving"`
		} `json:"members"`
		RetiredIncarnations []string `json:"retiredIncarnations"`
	}
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil {
		t.Fatalf("status -o json: exit %d, %v\n%s", code, err, out)
	}
	if s.Quorum.Health != "Healthy" || s.Quorum.Epoch != kc.Status.Configuration.Epoch || s.Quorum.Tolerates != 1 || len(s.Members) != 3 ||
		!slices.Equal(s.RetiredIncarnations, append([]string{}, kc.Status.RetiredIncarnations...)) {
		t.Errorf("status -o json %+v, the resource's status %+v", s, kc.Status)
	}
	for i, m := range s.Members {
		if !m.Serving || m.Incarnation != kc.Status.Members[i].Incarnation {
			t.Errorf("member %+v, the resource's %+v", m, kc.Status.Members[i])
		}
	}

	zipPath := filepath.Join(t.TempDir(), "report.zip")
	if out, code := e.plugin(t, "report", name, "-n", ns, "--out", zipPath); code != 0 || !strings.Contains(out, "wrote "+zipPath) {
		t.Fatalf("report: exit %d\n%s", code, out)
	}
	zr, err := zip.OpenReader(zipPath)
	must(t, err)
	defer func() { _ = zr.Close() }()
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		must(t, err)
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		must(t, err)
		files[strings.TrimPrefix(f.Name, "report/")] = b
	}
	for _, m := range s.Members {
		if len(files["logs/"+m.Pod+"/acceptor.log"]) == 0 {
			t.Errorf("the report has no log of %s: %v", m.Pod, slices.Sorted(maps.Keys(files)))
		}
	}
	var opLog bool
	for f, b := range files {
		opLog = opLog || strings.HasPrefix(f, "operator/logs/") && len(b) > 0
	}
	if !opLog || !strings.Contains(string(files["report.txt"]), "Everything was collected.") {
		t.Errorf("the report lacks the operator's logs or missed something:\n%s", files["report.txt"])
	}
	var secrets corev1.SecretList
	must(t, e.cl.List(ctxT(t, 30*time.Second), &secrets, client.InNamespace(ns)))
	for _, sec := range secrets.Items {
		for k, v := range sec.Data {
			if len(v) < 16 {
				continue
			}
			for f, b := range files {
				if bytes.Contains(b, v) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString(v))) {
					t.Errorf("%s holds the data of Secret %s key %s", f, sec.Name, k)
				}
			}
		}
		if sec.Labels["app.kubernetes.io/instance"] == name && !strings.Contains(string(files["secrets.txt"]), sec.Name) {
			t.Errorf("secrets.txt lacks %s:\n%s", sec.Name, files["secrets.txt"])
		}
	}
	t.Logf("report: %d files; report.txt:\n%s", len(files), files["report.txt"])
}
