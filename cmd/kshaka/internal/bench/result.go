package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"
)

// Result is one (target, workload) run. Its JSON form is the `--json` line
// format of `kshaka bench`.
type Result struct {
	Target    string  `json:"target"`
	Workload  string  `json:"workload"`
	Clients   int     `json:"clients"`
	ValueSize int     `json:"value_size"`
	Keys      int     `json:"keys"`
	DurationS float64 `json:"duration_s"`
	Ops       int64   `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	P999us    float64 `json:"p999_us"`
	Errors    int64   `json:"errors"`
	Unknown   int64   `json:"unknown"`
	// Conflicts counts CAS retries (cas-hot only).
	Conflicts int64 `json:"conflicts,omitempty"`
	// FirstError describes the first definite error, if any.
	FirstError string `json:"first_error,omitempty"`

	// Resident memory of the server processes the harness started (absent
	// for clusters it did not start), sampled every RSSInterval from the
	// start of the warm-up to the end of the measured phase, in MiB.
	// ServerRSSMaxMiB is the peak of the largest process: the figure to
	// hold against a per-process budget.
	ServerRSSMaxMiB float64 `json:"server_rss_max_mib,omitempty"`
	// ServerRSSEndMiB is the largest process at the end of the run.
	ServerRSSEndMiB float64 `json:"server_rss_end_mib,omitempty"`
	// ServerRSSPeakMiB is each process's peak, in the order they were
	// started.
	ServerRSSPeakMiB []float64 `json:"server_rss_peak_mib,omitempty"`

	// Contention holds the contention workload's counts and final check
	// (absent for the other workloads). Its Ops and Latencies count every
	// operation, whatever its outcome; Errors are its give-ups.
	Contention *ContentionStats `json:"contention,omitempty"`

	// Latencies of the successful operations, sorted (not in JSON).
	Latencies []time.Duration `json:"-"`
}

func summarize(target string, o Options, elapsed time.Duration, ws []*worker) Result {
	r := Result{
		Target: target, Workload: o.Workload, Clients: o.Clients,
		ValueSize: o.ValueSize, Keys: o.Keys, DurationS: elapsed.Seconds(),
	}
	for _, w := range ws {
		r.Latencies = append(r.Latencies, w.lat...)
		r.Errors += w.errors
		r.Unknown += w.unknown
		r.Conflicts += w.conflicts
		if r.FirstError == "" && w.firstErr != nil {
			r.FirstError = w.firstErr.Error()
		}
	}
	slices.Sort(r.Latencies)
	r.Ops = int64(len(r.Latencies))
	r.OpsPerSec = float64(r.Ops) / elapsed.Seconds()
	r.P50us = us(Percentile(r.Latencies, 0.50))
	r.P99us = us(Percentile(r.Latencies, 0.99))
	r.P999us = us(Percentile(r.Latencies, 0.999))
	return r
}

// SetRSS fills r's server memory from m.
func (r *Result) SetRSS(m RSS) {
	r.ServerRSSMaxMiB = round1(m.MaxPeakMiB())
	r.ServerRSSEndMiB = round1(m.MaxEndMiB())
	r.ServerRSSPeakMiB = make([]float64, len(m.PeakMiB))
	for i, v := range m.PeakMiB {
		r.ServerRSSPeakMiB[i] = round1(v)
	}
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Percentile returns the q-quantile (0..1) of sorted, by nearest rank.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// WriteTable writes results as an aligned table; "max RSS MiB" is
// ServerRSSMaxMiB ("-" when not measured). When a pair of results
// shares workload and clients, a ratio row compares the first target with
// the second.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\ttarget\tclients\tops/s\tp50 µs\tp99 µs\tp99.9 µs\terrors\tunknown\tmax RSS MiB\t")
	for _, r := range rs {
		rss := "-"
		if r.ServerRSSMaxMiB > 0 {
			rss = fmt.Sprintf("%.0f", r.ServerRSSMaxMiB)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%d\t%s\t\n",
			r.Workload, r.Target, r.Clients, r.OpsPerSec, r.P50us, r.P99us, r.P999us, r.Errors, r.Unknown, rss)
	}
	return tw.Flush()
}

// WriteContentionTable writes the contention results of rs (the others are
// skipped) as a table of outcomes per 10,000 operations and the final check.
func WriteContentionTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	header := false
	for _, r := range rs {
		c := r.Contention
		if c == nil {
			continue
		}
		if !header {
			fmt.Fprintln(tw, "target\tprocs\tgoroutines\thot keys\tops\tops/s\tincr/s\tp50 µs\tp99 µs\t"+
				"mismatch/10k\tunknown/10k\tgive-ups/10k\tno quorum\tcheck\t")
			header = true
		}
		check := "ok"
		if !c.Verified {
			check = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%d\t%s\t\n",
			r.Target, c.Procs, c.Goroutines, c.HotKeys, r.Ops, r.OpsPerSec, c.IncrementsPerSec, r.P50us, r.P99us,
			c.MismatchesPer10k, c.UnknownPer10k, c.GiveUpsPer10k, c.NoQuorum, check)
	}
	return tw.Flush()
}
