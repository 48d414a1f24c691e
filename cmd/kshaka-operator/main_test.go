package main

import (
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.metricsAddr != ":8443" || !o.metricsSecure || o.probeAddr != ":8081" || o.leaderElect || o.rescanBatch != 1000 || o.rpcTimeout != 2*time.Second {
		t.Fatalf("defaults %+v", o)
	}
	o, err = parseFlags([]string{"--leader-elect", "--metrics-bind-address=:8080", "--metrics-secure=false", "--watch-namespaces=a,b", "--rescan-batch=10"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.leaderElect || o.metricsAddr != ":8080" || o.metricsSecure || o.watchNamespaces != "a,b" || o.rescanBatch != 10 {
		t.Fatalf("parsed %+v", o)
	}
	for _, bad := range [][]string{{"--rescan-batch=0"}, {"extra"}, {"--nope"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
