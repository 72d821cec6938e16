// Package proctree keeps the processes a child process starts, at any
// depth, within reach of the host, so that they end when the child does.
//
// A child in a process group of its own is killed with its group; but a
// descendant that calls setsid (a daemonizing helper, `setsid cmd &`) leaves
// the group, and when its parent exits it is re-parented away from the
// child's tree. Linux offers three ways to keep it in reach, and a Tree uses
// each that the host has:
//
//  1. The tree itself: before the child is killed, its descendants are read
//     from /proc/PID/task/TID/children, recursively, and killed too.
//  2. A marker: every child gets an environment variable (MarkerEnv) naming
//     its tree; descendants inherit it. Processes that left the tree (their
//     parent exited) are found by it: among the host's own children when
//     the host is a child subreaper (BecomeSubreaper: orphans re-parent to
//     it), else anywhere in /proc. A process that clears its environment
//     escapes this way, not the next.
//  3. A cgroup (v2) per tree, where the host may create one (see Cgroups):
//     the child starts in it (clone3 CLONE_INTO_CGROUP) and writing
//     cgroup.kill kills every process in it, whatever it did.
//
// Kill repeats the sweep until it finds nothing left, so a process forked
// while the tree is being killed is caught in a later round. A host that is
// a subreaper also reaps what it adopted, so no zombies pile up.
package proctree
