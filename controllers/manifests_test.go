package controllers

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestChartFilesMatchManifests fails when the Helm chart's copies of the
// generated CRD and RBAC role drift from config/ (`make manifests` copies
// them).
func TestChartFilesMatchManifests(t *testing.T) {
	for gen, chart := range map[string]string{
		"config/crd/bases/kshaka.io_kshakaclusters.yaml":         "charts/kshaka-operator/files/crds/kshaka.io_kshakaclusters.yaml",
		"config/crd/bases/kshaka.io_kshakabackups.yaml":          "charts/kshaka-operator/files/crds/kshaka.io_kshakabackups.yaml",
		"config/crd/bases/kshaka.io_kshakascheduledbackups.yaml": "charts/kshaka-operator/files/crds/kshaka.io_kshakascheduledbackups.yaml",
		"config/rbac/role.yaml":                                  "charts/kshaka-operator/files/manager-role.yaml",
	} {
		a, err := os.ReadFile(filepath.Join("..", gen))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join("..", chart))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: run `make manifests`", chart, gen)
		}
	}
}
