package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"sync"
	"time"
)

// Progress modes of backup and restore (--progress).
const (
	progressAuto = "" // text on a terminal, none otherwise
	progressText = "text"
	progressJSON = "json"
	progressNone = "none"
)

func checkProgress(mode string) error {
	switch mode {
	case progressAuto, progressText, progressJSON, progressNone:
		return nil
	}
	return usageErrorf("--progress must be text, json or none, not %q", mode)
}

// progressLine is one --progress json line; its shape is an interface (the
// operator's backup Job parses it).
type progressLine struct {
	Phase         string  `json:"phase"`
	Keys          int64   `json:"keys"`
	EstimatedKeys int64   `json:"estimatedKeys"`
	Bytes         int64   `json:"bytes"`
	Percent       float64 `json:"percent"`
	KeysPerSecond float64 `json:"keysPerSecond"`
	SHA256        string  `json:"sha256,omitempty"`
	Path          string  `json:"path,omitempty"`
	Error         string  `json:"error,omitempty"`
}

// progress reports a backup or restore on stderr: with json one line at
// most every second and a final one; with text a line rewritten in place
// on a terminal (or a line every 10 seconds elsewhere) and a final one.
type progress struct {
	mode string
	w    io.Writer
	tty  bool
	path string
	verb func(phase string) string // "backed up", ...

	mu       sync.Mutex
	phase    string
	start    time.Time
	snapshot func() (keys, bytes, estimate int64, percent float64)
	lastLen  int
	once     sync.Once
	stop     chan struct{}
	done     chan struct{}
}

func newProgress(mode string, w io.Writer, path string, verb func(string) string) *progress {
	tty := isTerminal(w)
	if mode == progressAuto {
		mode = progressNone
		if tty {
			mode = progressText
		}
	}
	p := &progress{mode: mode, w: w, tty: tty, path: path, verb: verb, stop: make(chan struct{}), done: make(chan struct{})}
	p.snapshot = func() (int64, int64, int64, float64) { return 0, 0, 0, 0 }
	every := time.Second
	if mode == progressText && !tty {
		every = 10 * time.Second
	}
	go p.loop(every)
	return p
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// setPhase starts a phase; snap returns its counters (keys done, data
// bytes, estimated keys, percent or a negative number to compute it from
// keys and the estimate).
func (p *progress) setPhase(phase string, snap func() (keys, bytes, estimate int64, percent float64)) {
	p.mu.Lock()
	p.phase, p.start = phase, time.Now()
	if snap != nil {
		p.snapshot = snap
	}
	p.mu.Unlock()
	p.emit(false, "", nil)
}

func (p *progress) loop(every time.Duration) {
	defer close(p.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.emit(false, "", nil)
		case <-p.stop:
			return
		}
	}
}

// finish stops the ticks and writes the final line: phase "done" with the
// checksum, or "failed" with err. Later calls do nothing.
func (p *progress) finish(sha string, err error) {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.emit(true, sha, err)
	})
}

// line is the line to write now; p.mu is held.
func (p *progress) line(final bool, sha string, err error) progressLine {
	keys, bytes, est, pct := p.snapshot()
	l := progressLine{Phase: p.phase, Keys: keys, EstimatedKeys: est, Bytes: bytes, Path: p.path}
	if el := time.Since(p.start).Seconds(); el > 0 {
		l.KeysPerSecond = math.Round(float64(keys) / el)
	}
	if pct < 0 {
		pct = 0
		if est > 0 {
			pct = min(99, 100*float64(keys)/float64(est))
		}
	}
	l.Percent = math.Round(pct*10) / 10
	if final {
		if err != nil {
			l.Phase, l.Error = "failed", err.Error()
		} else {
			l.Phase, l.SHA256, l.Percent = "done", sha, 100
		}
	}
	return l
}

func (p *progress) emit(final bool, sha string, err error) {
	if p.mode == progressNone {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.line(final, sha, err)
	if p.mode == progressJSON {
		b, _ := json.Marshal(l)
		fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	text := p.text(l)
	if !p.tty {
		fmt.Fprintln(p.w, text)
		return
	}
	pad := ""
	if n := p.lastLen - len(text); n > 0 {
		pad = fmt.Sprintf("%*s", n, "")
	}
	p.lastLen = len(text)
	fmt.Fprintf(p.w, "\r%s%s", text, pad)
	if final {
		fmt.Fprintln(p.w)
	}
}

// text is the --progress text form of l, e.g. "backed up 45,000 of
// ~100,000 keys (45%), 4.1 MB, 9,800 keys/s".
func (p *progress) text(l progressLine) string {
	switch l.Phase {
	case "failed":
		return fmt.Sprintf("%s failed after %s keys: %s", p.verb("failed"), group(l.Keys), l.Error)
	case "done":
		return fmt.Sprintf("%s %s keys, %s, %s keys/s", p.verb("done"), group(l.Keys), megabytes(l.Bytes), group(int64(l.KeysPerSecond)))
	}
	switch l.Phase {
	case "listing":
		return "connecting and asking a prepare quorum for its keys"
	case "verifying":
		return fmt.Sprintf("verified %s keys (%s%% of the file), %s", group(l.Keys), strconv.FormatFloat(math.Floor(l.Percent), 'f', 0, 64), megabytes(l.Bytes))
	}
	of := ""
	if l.EstimatedKeys > 0 {
		of = " of ~" + group(l.EstimatedKeys)
	}
	return fmt.Sprintf("%s %s%s keys (%s%%), %s, %s keys/s", p.verb(l.Phase), group(l.Keys), of,
		strconv.FormatFloat(math.Floor(l.Percent), 'f', 0, 64), megabytes(l.Bytes), group(int64(l.KeysPerSecond)))
}

// group writes n with thousands separators: 45,000.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// megabytes writes n bytes in decimal megabytes: 4.1 MB.
func megabytes(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
