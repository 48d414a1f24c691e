package acceptor

import "errors"

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
