package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// grant is the verbs granted on one resource of one API group, and why the
// operator needs each of them.
type grant struct {
	group, resource string
	verbs           []string
	why             string
}

// managerGrants is everything the operator's manager role may grant
// (config/rbac/role.yaml, generated from the +kubebuilder:rbac markers in
// controllers/, and its copy the Helm chart binds). Every verb is one the
// code calls; a marker that grants more, or a call that needs more, fails
// TestManagerRoleGrantsWhatTheCodeUses until this list says why.
var managerGrants = []grant{
	{"kshaka.io", "kshakaclusters", []string{"get", "list", "watch"},
		"Reconcile reads the cluster (For); the operator never writes a KshakaCluster, only its status, and adds no finalizer"},
	{"kshaka.io", "kshakaclusters/status", []string{"update"},
		"Status().Update: the intent before each step, the rescan's progress"},
	{"kshaka.io", "kshakaclusters/finalizers", []string{"update"},
		"owned objects carry a controller reference with blockOwnerDeletion, which OwnerReferencesPermissionEnforcement admits only from who may update the owner's finalizers (TestOwnerReferencesNeedFinalizersUpdate)"},
	{"apps", "statefulsets", []string{"create", "delete", "get", "list", "update", "watch"},
		"applyStatefulSet: Get, Create, Update (Owns); resize deletes it with propagation Orphan to recreate it with grown claim templates (controllers/volumes.go)"},
	{"", "services", []string{"create", "get", "list", "update", "watch"},
		"apply: Get, Create, Update of the peer and client Services (Owns)"},
	{"policy", "poddisruptionbudgets", []string{"create", "delete", "get", "list", "update", "watch"},
		"apply; applyObjects deletes it when spec.replicas drops below 3"},
	{"", "pods", []string{"delete", "get", "list", "watch"},
		"observe lists them; deletePod recycles a member or restarts it for a rolling update"},
	{"", "persistentvolumeclaims", []string{"delete", "get", "list", "patch", "watch"},
		"observe lists them; deleteClaims after a member is removed or recycled; resize patches spec.resources.requests.storage when storage grows"},
	{"events.k8s.io", "events", []string{"create", "patch"},
		"the events.k8s.io recorder creates an Event and patches it into a series"},
	{"", "secrets", []string{"create", "delete", "get", "list", "patch", "update", "watch"},
		"the CA, acceptor, operator and client certificate Secrets (docs/design.md §9.2)"},
	{"networking.k8s.io", "networkpolicies", []string{"create", "delete", "get", "list", "patch", "update", "watch"},
		"each cluster's NetworkPolicy"},
	{"cert-manager.io", "certificates", []string{"create", "delete", "get", "list", "patch", "update", "watch"},
		"the cert-manager mode's Certificates"},
	{"kshaka.io", "kshakabackups", []string{"create", "delete", "get", "list", "watch"},
		"BackupReconciler reads them (For); the schedule creates them and deletes those beyond its history limit; the restore reads its source"},
	{"kshaka.io", "kshakabackups/status", []string{"update"},
		"BackupReconciler records the phase, progress and checksum"},
	{"kshaka.io", "kshakabackups/finalizers", []string{"update"},
		"the backup Job's controller reference to its KshakaBackup (blockOwnerDeletion)"},
	{"kshaka.io", "kshakascheduledbackups", []string{"get", "list", "watch"},
		"ScheduledBackupReconciler reads them (For)"},
	{"kshaka.io", "kshakascheduledbackups/status", []string{"update"},
		"ScheduledBackupReconciler records last and next schedule times"},
	{"kshaka.io", "kshakascheduledbackups/finalizers", []string{"update"},
		"a scheduled KshakaBackup's controller reference to its schedule (blockOwnerDeletion)"},
	{"batch", "jobs", []string{"create", "get", "list", "watch"},
		"the backup and restore Jobs: created once, read for their outcome (Owns); never deleted (owner references delete them)"},
	{"", "pods/log", []string{"get"},
		"the progress and checksum lines of the backup and restore Jobs' logs (tailLines)"},
}

// pendingGrants: none; kept so the checks can name grants in flight.
var pendingGrants = []grant{}

// leaderElectionGrants is the leader-election Role in the operator's own
// namespace: the Lease lock (client-go resourcelock.LeaseLock gets, creates
// and updates it) and the core/v1 Events it records on a leadership change.
var leaderElectionGrants = []grant{
	{"coordination.k8s.io", "leases", []string{"create", "get", "update"}, "resourcelock.LeaseLock"},
	{"", "events", []string{"create", "patch"}, "the leader-election event recorder (core/v1)"},
}

type resourceKey struct{ group, resource string }

func (k resourceKey) String() string {
	g := k.group
	if g == "" {
		g = "core"
	}
	return g + "/" + k.resource
}

// flatten maps every (group, resource) the rules name to its sorted verbs.
// Rules with resourceNames or non-resource URLs are reported, not merged:
// none of the operator's roles has one.
func flatten(t *testing.T, rules []rbacv1.PolicyRule) map[resourceKey][]string {
	t.Helper()
	out := map[resourceKey][]string{}
	for _, r := range rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("unexpected rule with resource names or non-resource URLs: %+v", r)
			continue
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				k := resourceKey{g, res}
				out[k] = append(out[k], r.Verbs...)
			}
		}
	}
	for k, v := range out {
		slices.Sort(v)
		out[k] = slices.Compact(v)
	}
	return out
}

// checkGrants fails unless rules grant exactly want, plus any of pending
// (each exactly as listed).
func checkGrants(t *testing.T, what string, rules []rbacv1.PolicyRule, want, pending []grant) {
	t.Helper()
	got := flatten(t, rules)
	seen := map[resourceKey]bool{}
	check := func(g grant, required bool) {
		k := resourceKey{g.group, g.resource}
		seen[k] = true
		have, ok := got[k]
		switch {
		case !ok && required:
			t.Errorf("%s: grants nothing on %s; the operator needs %v (%s)", what, k, g.verbs, g.why)
		case ok && !slices.Equal(have, g.verbs):
			t.Errorf("%s: grants %v on %s, want %v (%s)", what, have, k, g.verbs, g.why)
		}
	}
	for _, g := range want {
		check(g, true)
	}
	for _, g := range pending {
		check(g, false)
	}
	var extra []string
	for k, v := range got {
		if !seen[k] {
			extra = append(extra, fmt.Sprintf("%s %v", k, v))
		}
	}
	slices.Sort(extra)
	if len(extra) > 0 {
		t.Errorf("%s: grants what no code here is listed as using: %s\n(list it in rbac_test.go with the call that needs it, or drop the marker)", what, strings.Join(extra, ", "))
	}
}

func readRules(t *testing.T, path string) []rbacv1.PolicyRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	var role struct {
		Rules []rbacv1.PolicyRule `json:"rules"`
	}
	if err := yaml.Unmarshal(b, &role); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(role.Rules) == 0 {
		t.Fatalf("%s has no rules", path)
	}
	return role.Rules
}

// TestManagerRoleGrantsWhatTheCodeUses: the generated manager role grants
// exactly managerGrants (and the pending ones), no more and no less.
func TestManagerRoleGrantsWhatTheCodeUses(t *testing.T) {
	checkGrants(t, "config/rbac/role.yaml", readRules(t, "config/rbac/role.yaml"), managerGrants, pendingGrants)
}

func TestLeaderElectionRole(t *testing.T) {
	checkGrants(t, "config/rbac/leader_election_role.yaml", readRules(t, "config/rbac/leader_election_role.yaml"), leaderElectionGrants, nil)
}
