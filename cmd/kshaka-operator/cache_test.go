package main

import (
	"maps"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
	"github.com/kshaka-io/kshaka/controllers"
)

// selectorFor is the label selector cacheOptions gives kind's type, nil if
// that kind is cached whole.
func selectorFor(o cache.Options, kind client.Object) labels.Selector {
	for obj, by := range o.ByObject {
		if reflect.TypeOf(obj) == reflect.TypeOf(kind) {
			return by.Label
		}
	}
	return nil
}

// TestCachedKindsCarryTheLabel: everything of a label-filtered kind that the
// reconciler reads carries the label, or the operator would not see it. The
// acceptor pods are made from the StatefulSet's pod template; their volume
// claims from its claim templates, whose labels the StatefulSet controller
// copies (adding the selector's; k8s.io/kubernetes
// pkg/controller/statefulset getPersistentVolumeClaims).
func TestCachedKindsCarryTheLabel(t *testing.T) {
	o := cacheOptions(nil)
	kc := &kshakav1alpha1.KshakaCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "kc", Namespace: "ns", UID: types.UID("uid-1")},
		Spec:       kshakav1alpha1.KshakaClusterSpec{Replicas: 3},
	}
	sts := controllers.StatefulSet(kc, 3)
	podSel := selectorFor(o, &corev1.Pod{})
	pvcSel := selectorFor(o, &corev1.PersistentVolumeClaim{})
	secretSel := selectorFor(o, &corev1.Secret{})
	if podSel == nil || pvcSel == nil || secretSel == nil {
		t.Fatalf("Pods, PersistentVolumeClaims and Secrets must be label-filtered: %+v", o.ByObject)
	}
	if !podSel.Matches(labels.Set(sts.Spec.Template.Labels)) {
		t.Errorf("the acceptor pods' labels %v do not match the pod cache's selector %s", sts.Spec.Template.Labels, podSel)
	}
	for _, tmpl := range sts.Spec.VolumeClaimTemplates {
		claim := maps.Clone(tmpl.Labels)
		maps.Copy(claim, sts.Spec.Selector.MatchLabels)
		if !pvcSel.Matches(labels.Set(claim)) {
			t.Errorf("the volume claims' labels %v do not match the claim cache's selector %s", claim, pvcSel)
		}
	}
	// Every object the operator builds carries the same label, so the
	// Secrets it writes are seen as well.
	for _, obj := range []client.Object{sts, controllers.PeerService(kc), controllers.ClientService(kc)} {
		if !secretSel.Matches(labels.Set(obj.GetLabels())) {
			t.Errorf("%s %s: labels %v do not match the Secret cache's selector %s", reflect.TypeOf(obj).Elem().Name(), obj.GetName(), obj.GetLabels(), secretSel)
		}
	}
	if got := secretSel.String(); got != controllers.LabelManagedBy+"=kshaka-operator" {
		t.Errorf("selector %q", got)
	}
}

// TestCacheOptionsNamespaces: the watched namespaces, or all.
func TestCacheOptionsNamespaces(t *testing.T) {
	if o := cacheOptions(nil); o.DefaultNamespaces != nil {
		t.Errorf("no namespaces given: DefaultNamespaces %v, want nil (all)", o.DefaultNamespaces)
	}
	o := cacheOptions([]string{"a", "b"})
	if len(o.DefaultNamespaces) != 2 {
		t.Errorf("DefaultNamespaces %v, want a and b", o.DefaultNamespaces)
	}
	for _, ns := range []string{"a", "b"} {
		if _, ok := o.DefaultNamespaces[ns]; !ok {
			t.Errorf("DefaultNamespaces %v lacks %s", o.DefaultNamespaces, ns)
		}
	}
}
