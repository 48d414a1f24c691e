package acceptor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrWALMismatch is returned by Open when Options.WALDir is not the
// write-ahead log of the store in Options.Dir: it was lost (an empty
// directory where the log of an existing store should be), or it belongs
// to another store. Opening anyway would lose the writes the acceptor
// acknowledged from the log only (or replay another store's) while it
// keeps its incarnation, so that no one could tell it forgot promises:
// the acceptor refuses to start instead. Delete both directories (both
// volumes) so that it rejoins as a new member (docs/operations/lost-disk.md).
var ErrWALMismatch = errors.New("the write-ahead log directory does not belong to this store")

// walMarkName is the file in a separate WAL directory that names the
// incarnation whose log it holds.
const walMarkName = "KSHAKA-WAL-INCARNATION"

// walState is what a separate WAL directory, and the data directory next
// to it, hold before the store opens.
type walState struct {
	dir      string
	dataDir  string
	mark     uint64 // the WAL directory's marker; 0: none
	dataMark uint64 // the data directory's copy of it; 0: none
	logs     bool   // Pebble WAL files are in the WAL directory
	fresh    bool   // the data directory has no store yet
}

// readWALState looks at opts.WALDir and opts.Dir before Pebble opens them
// (Pebble replays every log it finds and creates a new one). ok is false
// when the WAL is inside the data directory: nothing to check.
func readWALState(opts *Options) (st walState, ok bool, err error) {
	if opts.WALDir == "" || opts.WALDir == opts.Dir {
		return st, false, nil
	}
	st.dir, st.dataDir = opts.WALDir, opts.Dir
	names, err := listDir(opts.FS, opts.WALDir)
	if err != nil {
		return st, true, err
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			st.logs = true
		}
	}
	if st.mark, err = readMark(opts.FS, opts.WALDir); err != nil {
		return st, true, err
	}
	data, err := listDir(opts.FS, opts.Dir)
	if err != nil {
		return st, true, err
	}
	st.fresh = !hasPebbleStore(data)
	if st.dataMark, err = readMark(opts.FS, opts.Dir); err != nil {
		return st, true, err
	}
	return st, true, nil
}

func listDir(fs vfs.FS, dir string) ([]string, error) {
	names, err := fs.List(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("while listing %s: %w", dir, err)
	}
	return names, nil
}

// readMark reads the marker in dir; 0 when there is none.
func readMark(fs vfs.FS, dir string) (uint64, error) {
	path := fs.PathJoin(dir, walMarkName)
	f, err := fs.Open(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("while reading the WAL marker: %w", err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("while reading the WAL marker: %w", err)
	}
	inc, err := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 64)
	if err != nil || inc == 0 {
		return 0, fmt.Errorf("%w: the marker %s holds %q, not an incarnation", ErrWALMismatch, path, b)
	}
	return inc, nil
}

// hasPebbleStore reports whether a directory listing holds a Pebble store.
func hasPebbleStore(names []string) bool {
	for _, n := range names {
		if n == "CURRENT" || strings.HasPrefix(n, "MANIFEST-") {
			return true
		}
	}
	return false
}

// checkBeforeOpen refuses, before Pebble replays anything:
//   - an empty data directory next to a WAL directory that holds a log (the
//     data volume was lost and the WAL volume kept: Pebble would replay the
//     old log into the new store);
//   - a store whose WAL directory holds neither its marker nor a log (the
//     WAL volume was lost or replaced, and with it every write acknowledged
//     since the last flush);
//   - a WAL directory whose marker is not the one the data directory
//     recorded (another store's log).
//
// A store with a log but no marker was made before markers: it is adopted.
func (st walState) checkBeforeOpen() error {
	switch {
	case st.fresh && (st.mark != 0 || st.logs):
		return fmt.Errorf("%w: the data directory %s is empty but the WAL directory %s holds the log of an earlier store "+
			"(incarnation %x); its data volume was lost: empty the WAL directory (or delete its volume) too, "+
			"so that the acceptor starts as a new member", ErrWALMismatch, st.dataDir, st.dir, st.mark)
	case st.fresh:
		return nil
	case st.mark == 0 && !st.logs:
		return fmt.Errorf("%w: the store in %s has no log in %s: the WAL volume was lost or replaced, "+
			"and with it the writes this acceptor acknowledged since its last flush; delete the data directory "+
			"(its volume) too, so that the acceptor rejoins as a new member", ErrWALMismatch, st.dataDir, st.dir)
	case st.mark != 0 && st.dataMark != 0 && st.mark != st.dataMark:
		return fmt.Errorf("%w: %s holds the log of incarnation %x, the store in %s is incarnation %x",
			ErrWALMismatch, st.dir, st.mark, st.dataDir, st.dataMark)
	}
	return nil
}

// checkAfterOpen compares the store's incarnation inc with the markers and
// writes them where they are missing (a new store, or one made before
// markers), the WAL directory's first.
func (st walState) checkAfterOpen(fs vfs.FS, inc uint64) error {
	for _, m := range []struct {
		dir  string
		mark uint64
	}{{st.dir, st.mark}, {st.dataDir, st.dataMark}} {
		switch {
		case m.mark == inc:
		case m.mark != 0:
			return fmt.Errorf("%w: the marker in %s names incarnation %x, this store is incarnation %x",
				ErrWALMismatch, m.dir, m.mark, inc)
		default:
			if err := writeWALMark(fs, m.dir, inc); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeWALMark writes the marker durably: the file, then its directory.
func writeWALMark(fs vfs.FS, dir string, inc uint64) error {
	tmp := fs.PathJoin(dir, walMarkName+".tmp")
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("while writing the WAL marker: %w", err)
	}
	_, err = fmt.Fprintf(f, "%016x\n", inc)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, fs.PathJoin(dir, walMarkName))
	}
	if err == nil {
		var d vfs.File
		if d, err = fs.OpenDir(dir); err == nil {
			err = errors.Join(d.Sync(), d.Close())
		}
	}
	if err != nil {
		return fmt.Errorf("while writing the WAL marker: %w", err)
	}
	return nil
}
