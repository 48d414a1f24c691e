// Package tlsreload serves TLS material that lives in files and reloads it
// when the files change, so that certificates rotate without a restart
// (docs/design.md §9.2). The acceptor's server certificate and client-CA
// bundle come from NewServer; the proposer's client certificate and CA
// bundle (a directory in the kubernetes.io/tls layout: ca.crt, tls.crt,
// tls.key) from NewClient.
//
// Contract:
//   - Polling, not notification. Every Options.Interval (default 2s) the
//     files are read whole through their paths, so a Kubernetes Secret
//     volume's atomic swap of its ..data symlink, a rename over the file and
//     an in-place rewrite are all seen. Nothing happens while the contents
//     are the ones last loaded.
//   - Consistent or nothing. Changed contents are read twice; when the two
//     reads differ the files are being written and the poll is skipped. Only
//     a set that reads the same twice is parsed, and only one that parses
//     whole (the key matches the certificate, every bundle holds at least one
//     certificate) replaces the current material, atomically. Anything else
//     keeps the current material, and Options.OnReload is told the error
//     once per bad content, not once per poll.
//   - A CA bundle may hold several CAs; all of them are trusted. That is how
//     a CA is rotated: the bundle carries the old and the new CA while the
//     leaves are reissued.
//   - The initial load is strict: New* fail when the files are missing or
//     invalid, with an error that names the file.
//   - Each TLS handshake uses the material current when it starts;
//     connections already established keep theirs.
//
// The package does not log; Options.OnReload reports reloads and errors.
package tlsreload
