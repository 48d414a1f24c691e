// Package podinit is the small step localkube runs between starting a pod's
// process and executing the container's binary: it bind-mounts the pod's
// resolv.conf over /etc/resolv.conf, in the mount namespace of its own that
// the process was started in (syscall.SysProcAttr.Unshareflags
// CLONE_NEWNS, which also makes every mount private, so nothing leaks to
// the host), and then replaces itself with the container's binary
// (execve: same pid, process group and parent-death signal).
//
// localkube starts this step by executing its own binary (/proc/self/exe)
// with Arg0 as argv[0]: the package's init function recognises it and never
// returns. Every program that imports localkube therefore carries the step;
// in any other process the init function does nothing. The package imports
// only the standard library, so its init runs before the heavy
// initialisation of the rest of the binary (Kubernetes schemes, protobuf
// registries), which an exec'd container would not use.
package podinit
