package localkube

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

// A container log file has one line per line of output:
//
//	2026-01-02T15:04:05.123456789Z stdout the line
//
// like the CRI log format, so that --timestamps and --since work.

// logFile is one run of a container: both of its streams, line by line.
type logFile struct {
	mu sync.Mutex
	f  *os.File
}

func createLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &logFile{f: f}, nil
}

func (l *logFile) writeLine(stream string, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	b.WriteString(time.Now().UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.Write(line)
	b.WriteByte('\n')
	_, _ = l.f.Write(b.Bytes())
}

func (l *logFile) Close() error { return l.f.Close() }

// streamWriter splits what a process writes to one stream into lines.
type streamWriter struct {
	log     *logFile
	stream  string
	partial []byte
}

func (w *streamWriter) Write(p []byte) (int, error) {
	n := len(p)
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) > 64<<10 { // flush very long lines in pieces
				w.log.writeLine(w.stream, w.partial)
				w.partial = w.partial[:0]
			}
			return n, nil
		}
		line := p[:i]
		if len(w.partial) > 0 {
			line = append(w.partial, line...)
			w.partial = w.partial[:0]
		}
		w.log.writeLine(w.stream, line)
		p = p[i+1:]
	}
}

// flush writes out a last line without a newline.
func (w *streamWriter) flush() {
	if len(w.partial) > 0 {
		w.log.writeLine(w.stream, w.partial)
		w.partial = nil
	}
}

// logLine is one parsed line.
type logLine struct {
	ts   time.Time
	text string // without the stream, with the newline
}

func parseLogLine(s string) logLine {
	tsStr, rest, _ := strings.Cut(s, " ")
	ts, _ := time.Parse(time.RFC3339Nano, tsStr)
	_, text, _ := strings.Cut(rest, " ")
	return logLine{ts: ts, text: text + "\n"}
}

func (l logLine) format(timestamps bool) string {
	if timestamps {
		return l.ts.Format(time.RFC3339Nano) + " " + l.text
	}
	return l.text
}

// readLog serves a log file with the options of `kubectl logs`. When
// opts.Follow is set it keeps reading appended lines until running is
// closed (the run ended) and the file is drained, or ctx ends.
func readLog(ctx context.Context, path string, opts api.ContainerLogOpts, running <-chan struct{}) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var since time.Time
	if !opts.SinceTime.IsZero() {
		since = opts.SinceTime
	}
	if opts.SinceSeconds > 0 {
		since = time.Now().Add(-time.Duration(opts.SinceSeconds) * time.Second)
	}
	keep := func(l logLine) bool { return since.IsZero() || !l.ts.Before(since) }

	// Everything present now, with Tail applied.
	r := bufio.NewReader(f)
	var lines []logLine
	var pending string // an incomplete last line (still being written)
	for {
		s, err := r.ReadString('\n')
		if err != nil {
			pending = s
			break
		}
		if l := parseLogLine(strings.TrimSuffix(s, "\n")); keep(l) {
			lines = append(lines, l)
			if opts.Tail > 0 && len(lines) > opts.Tail {
				lines = lines[1:]
			}
		}
	}
	var head bytes.Buffer
	for _, l := range lines {
		head.WriteString(l.format(opts.Timestamps))
	}
	if !opts.Follow {
		f.Close()
		return limit(io.NopCloser(&head), opts.LimitBytes), nil
	}

	pr, pw := io.Pipe()
	go func() {
		defer f.Close()
		if _, err := pw.Write(head.Bytes()); err != nil {
			return
		}
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		ended := false
		for {
			s, err := r.ReadString('\n')
			pending += s
			if err == nil {
				l := parseLogLine(strings.TrimSuffix(pending, "\n"))
				pending = ""
				if keep(l) {
					if _, err := pw.Write([]byte(l.format(opts.Timestamps))); err != nil {
						return
					}
				}
				continue
			}
			if ended {
				_ = pw.Close()
				return
			}
			select {
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
				return
			case <-running:
				ended = true // one more pass drains what was written last
			case <-tick.C:
			}
		}
	}()
	return limit(pr, opts.LimitBytes), nil
}

func limit(rc io.ReadCloser, n int) io.ReadCloser {
	if n <= 0 {
		return rc
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(rc, int64(n)), rc}
}
