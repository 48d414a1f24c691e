package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Operator metrics, served with controller-runtime's reconcile metrics on
// the manager's metrics endpoint.
var (
	stepsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kshaka_operator_membership_steps_total",
		Help: "Membership steps taken (one per Event the operator emits), by reason.",
	}, []string{"reason"})
	actionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kshaka_operator_actions_total",
		Help: "Actions carried out on acceptors and volumes, by kind and result.",
	}, []string{"action", "result"})
	actionSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kshaka_operator_action_duration_seconds",
		Help:    "Duration of the actions of membership steps (installs, rescan batches, pod and volume deletions), by kind.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	}, []string{"action"})
	rescannedKeysTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kshaka_operator_rescanned_keys_total",
		Help: "Keys touched by membership-change rescans (every key is touched).",
	})
)

func init() {
	metrics.Registry.MustRegister(stepsTotal, actionsTotal, actionSeconds, rescannedKeysTotal)
}
