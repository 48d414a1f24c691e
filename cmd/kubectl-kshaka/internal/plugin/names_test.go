package plugin

import (
	"maps"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
	"github.com/kshaka-io/kshaka/controllers"
)

// TestNamesAgreeWithTheOperator checks the copies of names.go against the
// operator's own.
func TestNamesAgreeWithTheOperator(t *testing.T) {
	c := &kshakav1alpha1.KshakaCluster{ObjectMeta: metav1.ObjectMeta{Name: "kc", Namespace: "ns"}}
	if annotationRetire != controllers.AnnotationRetire || labelInstance != controllers.LabelInstance {
		t.Fatal("the annotation or label differs from the operator's")
	}
	if !maps.Equal(selectorLabels(c), controllers.SelectorLabels(c)) || peerServiceName(c) != controllers.PeerServiceName(c) {
		t.Fatalf("labels %v, operator's %v", selectorLabels(c), controllers.SelectorLabels(c))
	}
	for _, pod := range []string{"kc-0", "kc-12", "kc-01", "kc-", "kc", "other-1", "kc--1", "kc-x", "kc-99999999999"} {
		n, ok := ordinal(c, pod)
		wn, wok := controllers.Ordinal(c, pod)
		if n != wn || ok != wok {
			t.Errorf("ordinal(%q) = %d, %v; the operator's %d, %v", pod, n, ok, wn, wok)
		}
	}
}
