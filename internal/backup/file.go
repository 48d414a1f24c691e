package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// PartialSuffix is added to a backup file's name while it is written.
const PartialSuffix = ".partial"

// File is a backup file being written: its bytes go to PATH.partial, and
// only Commit makes them PATH. A failed or interrupted backup leaves at
// most the .partial file, never a file that looks complete.
type File struct {
	*os.File
	path string
}

// Create opens path+".partial" for writing, truncating a leftover one. The
// directory must exist.
func Create(path string) (*File, error) {
	f, err := os.OpenFile(path+PartialSuffix, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("while creating the backup file: %w", err)
	}
	return &File{File: f, path: path}, nil
}

// Path is the name the file gets on Commit.
func (f *File) Path() string { return f.path }

// Commit syncs the file, renames it to its final name (replacing a file of
// that name) and syncs the directory, so the rename survives a crash.
func (f *File) Commit() error {
	partial := f.Name()
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("while syncing %s: %w", partial, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("while closing %s: %w", partial, err)
	}
	if err := os.Rename(partial, f.path); err != nil {
		return fmt.Errorf("while renaming %s to %s: %w", partial, f.path, err)
	}
	return syncDir(filepath.Dir(f.path))
}

// Abort closes and removes the .partial file.
func (f *File) Abort() error {
	err := f.Close()
	if errors.Is(err, os.ErrClosed) {
		err = nil
	}
	if rerr := os.Remove(f.Name()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("while syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("while syncing directory %s: %w", dir, err)
	}
	return nil
}
