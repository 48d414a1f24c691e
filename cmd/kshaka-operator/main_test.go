package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if o.metricsAddr != ":8443" || !o.metricsSecure || o.probeAddr != ":8081" || o.leaderElect || o.rescanBatch != 1000 || o.rpcTimeout != 2*time.Second ||
		o.watchNamespaces != nil || o.operatorNamespace != "" || o.leaderElectionNS != "" {
		t.Fatalf("defaults %+v", o)
	}
	o, err = parseFlags([]string{"--leader-elect", "--metrics-bind-address=:8080", "--metrics-secure=false", "--watch-namespaces=a, b", "--rescan-batch=10"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !o.leaderElect || o.metricsAddr != ":8080" || o.metricsSecure || !slices.Equal(o.watchNamespaces, []string{"a", "b"}) || o.rescanBatch != 10 {
		t.Fatalf("parsed %+v", o)
	}
	for _, bad := range [][]string{{"--rescan-batch=0"}, {"extra"}, {"--nope"}} {
		if _, err := parseFlags(bad, noEnv); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestOperatorNamespace: --operator-namespace defaults to POD_NAMESPACE (the
// downward API), and the leader-election Lease goes there unless
// --leader-election-namespace says otherwise.
func TestOperatorNamespace(t *testing.T) {
	env := func(k string) string {
		if k == "POD_NAMESPACE" {
			return "kshaka-system"
		}
		return ""
	}
	for _, tc := range []struct {
		args             []string
		getenv           func(string) string
		operator, leases string
	}{
		{nil, noEnv, "", ""},
		{nil, env, "kshaka-system", "kshaka-system"},
		{[]string{"--operator-namespace=ops"}, env, "ops", "ops"},
		{[]string{"--leader-election-namespace=locks"}, env, "kshaka-system", "locks"},
	} {
		o, err := parseFlags(tc.args, tc.getenv)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if o.operatorNamespace != tc.operator || o.leaderElectionNS != tc.leases {
			t.Errorf("%v: operator namespace %q, leases in %q; want %q, %q", tc.args, o.operatorNamespace, o.leaderElectionNS, tc.operator, tc.leases)
		}
	}
	if _, err := parseFlags(nil, func(string) string { return "Not_A_Namespace" }); err == nil || !strings.Contains(err.Error(), "POD_NAMESPACE") {
		t.Errorf("an invalid POD_NAMESPACE: error %v", err)
	}
}

// TestWatchNamespacesRejectsBadLists: a list that names no valid namespace
// is an error. Before, "--watch-namespaces=," left an empty namespace map,
// which controller-runtime reads as "all namespaces": a typo widened the
// operator's reach instead of failing.
func TestWatchNamespacesRejectsBadLists(t *testing.T) {
	for _, bad := range []string{",", " , ", "a,,b", "a,", "Team_A", "a,a", strings.Repeat("x", 64)} {
		o, err := parseFlags([]string{"--watch-namespaces=" + bad}, noEnv)
		if err == nil {
			t.Errorf("--watch-namespaces=%q accepted: %v", bad, o.watchNamespaces)
			continue
		}
		if !strings.Contains(err.Error(), "--watch-namespaces") {
			t.Errorf("--watch-namespaces=%q: error %q does not name the flag", bad, err)
		}
	}
	for in, want := range map[string][]string{"": nil, " ": nil, "a": {"a"}, " a , b ": {"a", "b"}} {
		o, err := parseFlags([]string{"--watch-namespaces=" + in}, noEnv)
		if err != nil || !slices.Equal(o.watchNamespaces, want) {
			t.Errorf("--watch-namespaces=%q: %v, %v; want %v", in, o, err, want)
		}
	}
}
