// Command churn measures what tombstone GC does for a churn workload
// (issue 14): on a `kshaka local` cluster it creates and deletes many
// distinct keys over time — each key is put, and deleted once Window newer
// keys exist — and samples every acceptor's disk use (du of its data
// directory, and the store's own kshaka_acceptor_disk_usage_bytes, keys and
// tombstones from its metrics) as it goes. With --gc a GC pass (the
// library's, proposer.Client.CollectTombstones, with configurations
// installed by Admin SetConfig as kshaka local's control plane does) runs
// every --gc-interval. After the churn, --throughput measures put×C
// throughput on fresh keys without GC and then while GC collects the
// churn's tombstones, in the same run, and reports the GC's keys/s.
//
// It prints a JSON line per sample and per phase on stdout and a summary on
// stderr. `make bench-churn` runs it with and without GC;
// docs/bench/tombstone-gc.md has the numbers.
package main
