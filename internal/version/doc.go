// Package version says which build of Kshaka's commands is running: the
// release set at link time, else the module version, with the VCS commit
// from the build information. The kshaka CLI and the kubectl-kshaka plugin
// print it (`version`, `--version`) and record it in what they write
// (backup headers, bug reports).
package version
