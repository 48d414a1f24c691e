package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// RSSInterval is how often an RSSSampler reads the servers' memory.
const RSSInterval = 200 * time.Millisecond

const mib = 1 << 20

// ReadRSS returns the resident set size of process pid in bytes: VmRSS from
// /proc/<pid>/status (Linux only). It counts anonymous memory (Go heap,
// Pebble's manually allocated cache and memtables) and the file pages the
// process has mapped in (etcd's bbolt mmap), like `ps -o rss`.
func ReadRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmRSS(f)
}

// parseVmRSS reads the VmRSS line ("VmRSS:     12345 kB") of a
// /proc/<pid>/status file.
func parseVmRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) != 2 || string(fields[1]) != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected VmRSS line %q: %w", sc.Text(), err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line (a kernel thread, or not Linux)")
}

// RSS is what an RSSSampler saw, per server process, in MiB. A process whose
// memory could never be read has 0.
type RSS struct {
	// PeakMiB is each process's largest sample.
	PeakMiB []float64
	// EndMiB is each process's last sample.
	EndMiB []float64
}

// MaxPeakMiB is the largest peak of any process: the figure to hold against
// a per-process memory budget.
func (r RSS) MaxPeakMiB() float64 { return maxOf(r.PeakMiB) }

// MaxEndMiB is the largest last sample of any process.
func (r RSS) MaxEndMiB() float64 { return maxOf(r.EndMiB) }

func maxOf(vs []float64) float64 {
	var m float64
	for _, v := range vs {
		m = max(m, v)
	}
	return m
}

// RSSSampler reads the RSS of a set of processes every RSSInterval until
// Stop. It is how the harness measures the servers it started; processes
// it cannot read (gone, or not Linux) are skipped.
type RSSSampler struct {
	pids []int
	stop chan struct{}
	done chan struct{}
	mu   struct {
		sync.Mutex
		peak, last []int64
	}
}

// StartRSSSampler takes a first sample of pids and keeps sampling in the
// background. With no pids it does nothing.
func StartRSSSampler(pids []int) *RSSSampler {
	s := &RSSSampler{pids: pids, stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.peak = make([]int64, len(pids))
	s.mu.last = make([]int64, len(pids))
	s.sample()
	go s.loop()
	return s
}

func (s *RSSSampler) loop() {
	defer close(s.done)
	if len(s.pids) == 0 {
		return
	}
	t := time.NewTicker(RSSInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *RSSSampler) sample() {
	for i, pid := range s.pids {
		b, err := ReadRSS(pid)
		if err != nil {
			continue
		}
		s.mu.Lock()
		s.mu.last[i] = b
		s.mu.peak[i] = max(s.mu.peak[i], b)
		s.mu.Unlock()
	}
}

// CurrentMaxMiB is the largest last sample of any process so far.
func (s *RSSSampler) CurrentMaxMiB() float64 { return s.snapshot().MaxEndMiB() }

func (s *RSSSampler) snapshot() RSS {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := RSS{PeakMiB: make([]float64, len(s.pids)), EndMiB: make([]float64, len(s.pids))}
	for i := range s.pids {
		r.PeakMiB[i] = float64(s.mu.peak[i]) / mib
		r.EndMiB[i] = float64(s.mu.last[i]) / mib
	}
	return r
}

// Stop takes a last sample, stops sampling and returns what it saw.
func (s *RSSSampler) Stop() RSS {
	close(s.stop)
	<-s.done
	s.sample()
	return s.snapshot()
}
