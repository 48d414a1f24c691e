// Command kubectl-kshaka is the kubectl plugin of Kshaka: `kubectl kshaka
// status|backup|restore|retire|pause|resume|report|version` on
// KshakaClusters. Installed anywhere on PATH (make install-plugin), kubectl
// finds it as `kubectl kshaka`. Run `kubectl kshaka --help` for the
// commands and exit codes; the program is internal/plugin.
package main
