package controllers

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

func claim(name, tmpl string, ord int32, req string, capacity string, fsPending bool) ClaimInfo {
	c := ClaimInfo{Name: name, Template: tmpl, Ordinal: ord, Requested: resource.MustParse(req), FileSystemResizePending: fsPending}
	if capacity != "" {
		c.Capacity = ptr.To(resource.MustParse(capacity))
	}
	return c
}

func TestPlanVolumes(t *testing.T) {
	sized := func(data, wal string) *kshakav1alpha1.KshakaCluster {
		c := newCluster(3)
		c.Spec.Storage.Size = ptr.To(resource.MustParse(data))
		if wal != "" {
			c.Spec.Storage.WAL = &kshakav1alpha1.VolumeSpec{Size: ptr.To(resource.MustParse(wal))}
		}
		return c
	}
	stsOf := func(c *kshakav1alpha1.KshakaCluster) *appsv1.StatefulSet { return StatefulSet(c, 3) }
	for _, tc := range []struct {
		name      string
		c         *kshakav1alpha1.KshakaCluster
		sts       *appsv1.StatefulSet
		claims    []ClaimInfo
		grow      []string
		recreate  bool
		expanding []string
		mismatch  string
	}{{
		name:   "in step",
		c:      sized("1Gi", ""),
		sts:    stsOf(sized("1Gi", "")),
		claims: []ClaimInfo{claim("data-kc-0", "data", 0, "1Gi", "1Gi", false), claim("data-kc-1", "data", 1, "1Gi", "", false)},
	}, {
		name:     "grown: every smaller claim and the StatefulSet",
		c:        sized("2Gi", ""),
		sts:      stsOf(sized("1Gi", "")),
		claims:   []ClaimInfo{claim("data-kc-0", "data", 0, "1Gi", "1Gi", false), claim("data-kc-1", "data", 1, "3Gi", "3Gi", false)},
		grow:     []string{"data-kc-0"},
		recreate: true,
	}, {
		name:      "requested, waiting for the provisioner and a restart",
		c:         sized("2Gi", "1Gi"),
		sts:       stsOf(sized("2Gi", "1Gi")),
		claims:    []ClaimInfo{claim("data-kc-0", "data", 0, "2Gi", "1Gi", true), claim("wal-kc-0", "wal", 0, "1Gi", "1Gi", false)},
		expanding: []string{"data-kc-0 (1Gi of 2Gi): the file system is resized when pod kc-0 restarts"},
	}, {
		name:     "the WAL grows on its own",
		c:        sized("1Gi", "2Gi"),
		sts:      stsOf(sized("1Gi", "1Gi")),
		claims:   []ClaimInfo{claim("data-kc-0", "data", 0, "1Gi", "", false), claim("wal-kc-0", "wal", 0, "1Gi", "", false)},
		grow:     []string{"wal-kc-0"},
		recreate: true,
	}, {
		name:     "a WAL volume added after creation is refused",
		c:        sized("1Gi", "1Gi"),
		sts:      stsOf(sized("1Gi", "")),
		mismatch: "was created without a WAL volume",
	}, {
		name:     "a WAL volume removed after creation is refused",
		c:        sized("1Gi", ""),
		sts:      stsOf(sized("1Gi", "1Gi")),
		mismatch: "has a WAL volume, but spec.storage.wal is unset",
	}, {
		name:   "no StatefulSet yet: only claims",
		c:      sized("2Gi", ""),
		claims: []ClaimInfo{claim("data-kc-0", "data", 0, "1Gi", "", false)},
		grow:   []string{"data-kc-0"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanVolumes(tc.c, tc.sts, tc.claims)
			var grow []string
			for _, g := range p.Grow {
				grow = append(grow, g.Name)
				if !g.To.Equal(wantSizes(tc.c)[strings.SplitN(g.Name, "-", 2)[0]]) {
					t.Errorf("grow %s to %s", g.Name, g.To.String())
				}
			}
			if strings.Join(grow, ",") != strings.Join(tc.grow, ",") || p.RecreateStatefulSet != tc.recreate ||
				strings.Join(p.Expanding, ",") != strings.Join(tc.expanding, ",") {
				t.Fatalf("plan %+v, want grow %v recreate %v expanding %v", p, tc.grow, tc.recreate, tc.expanding)
			}
			if (tc.mismatch == "") != (p.Mismatch == "") || !strings.Contains(p.Mismatch, tc.mismatch) {
				t.Fatalf("mismatch %q, want %q", p.Mismatch, tc.mismatch)
			}
			if tc.mismatch != "" && specError(tc.c, p) == "" {
				t.Fatal("a mismatch is not a spec error")
			}
		})
	}
}

func TestClaimInfo(t *testing.T) {
	c := newCluster(3)
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "wal-kc-2"}}
	pvc.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}
	pvc.Status.Phase = corev1.ClaimBound
	pvc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	pvc.Status.Conditions = []corev1.PersistentVolumeClaimCondition{{Type: corev1.PersistentVolumeClaimFileSystemResizePending, Status: corev1.ConditionTrue}}
	info, ok := claimInfo(c, pvc)
	if !ok || info.Template != "wal" || info.Ordinal != 2 || info.Capacity == nil || info.Capacity.String() != "1Gi" || !info.FileSystemResizePending {
		t.Fatalf("claimInfo = %+v, %v", info, ok)
	}
	for _, name := range []string{"data-other-1", "backup-kc-1", "data-kc-x"} {
		if _, ok := claimInfo(c, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name}}); ok {
			t.Errorf("claimInfo(%s) is a member's claim", name)
		}
	}
}
