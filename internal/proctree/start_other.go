//go:build !linux

package proctree

import "os/exec"

// Start starts cmd; only Linux has Pdeathsig and its thread caveat.
func Start(cmd *exec.Cmd) error { return cmd.Start() }
