package plugin

import (
	"strconv"
	"strings"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// The operator's names the plugin relies on. They are the operator's
// (package controllers), copied so that the plugin does not link the
// operator, its gRPC client and the proposer; names_test.go checks that
// they agree.
const (
	// annotationRetire is controllers.AnnotationRetire: comma-separated
	// incarnations a person asserts will never come back.
	annotationRetire = "kshaka.io/retire-incarnations"
	// labelInstance is controllers.LabelInstance: the cluster's name.
	labelInstance = "app.kubernetes.io/instance"
)

// selectorLabels are controllers.SelectorLabels: the labels of c's
// acceptor pods and of the objects the operator owns.
func selectorLabels(c *kshakav1alpha1.KshakaCluster) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":      "kshaka",
		labelInstance:                 c.Name,
		"app.kubernetes.io/component": "acceptor",
	}
}

// peerServiceName is controllers.PeerServiceName.
func peerServiceName(c *kshakav1alpha1.KshakaCluster) string { return c.Name + "-peers" }

// ordinal is controllers.Ordinal: the ordinal in a pod name of c.
func ordinal(c *kshakav1alpha1.KshakaCluster, pod string) (int32, bool) {
	rest, ok := strings.CutPrefix(pod, c.Name+"-")
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 32)
	if err != nil || n < 0 {
		return 0, false
	}
	return int32(n), true
}
