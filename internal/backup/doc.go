// Package backup is the Kshaka backup file format and the two loops that
// produce and consume it: Dump (list every key, read each one through the
// protocol, write the records in key order) and Load (restore each record).
// The kshaka CLI's backup and restore commands drive them
// (docs/design.md, "Backup and restore").
//
// # Format
//
// A backup is one stream, written and read with bounded memory:
//
//	"KSHAKABK" | format version (1 byte) | uvarint length | header JSON
//	records, in strictly increasing key order:
//	  0x01 | uvarint key length | key | uvarint version | flags (bit 0: deleted) | uvarint data length | data
//	trailer:
//	  0x02 | uvarint record count | uvarint data bytes | SHA-256 of every byte before the trailer | "KSBK-END"
//
// Uvarints are minimally encoded. A record is a key's latest chosen register
// value with its version, tombstones included (deleted, no data, the
// version of the delete), so versions never go backwards after a restore.
// Keys and data are bounded by the proposer's limits (MaxKeySize,
// MaxValueSize), so every record can be restored.
//
// # Contract
//
//   - Writer refuses a record the Reader would refuse, so it never writes a
//     file its own reader rejects; nothing is complete before Close writes
//     the trailer.
//   - Reader refuses, as a *CorruptError (errors.Is ErrCorrupt) naming the
//     byte offset, every kind of damage: a wrong magic, an unknown format
//     version, a length past the limits, a non-minimal or overflowing
//     uvarint, keys out of order, a truncated stream, counts or checksum
//     that do not match, a missing end marker, bytes after it. Records are
//     returned before the checksum at the end is checked; Verify reads the
//     whole stream, and a restore must Verify before it writes anything.
//   - File writes PATH.partial and Commit renames it to PATH after syncing
//     the file, then syncs the directory: an interrupted backup never
//     leaves a file that looks complete.
//   - Consistency: each record is linearizable at the moment its key was
//     read; a backup is not a snapshot across keys.
package backup
