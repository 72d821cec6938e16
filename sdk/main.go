package sdk

import (
	"fmt"
	"os"
	"sync/atomic"
)

// declared is the first module New made in this program. A module's main
// package declares one; transports whose entry points are not main (a wasm
// guest's exports) serve that one.
var declared atomic.Pointer[Module]

// Declared returns the first module New made in this program, or nil.
func Declared() *Module { return declared.Load() }

// Main is what a module's main function calls. Built as a native plugin, a
// module's main never runs. Started by a host as a process module (the
// environment variable HOTMOD_PROCESS is set), Main serves the process
// protocol on stdin and stdout until the host closes the module or goes
// away, then exits; while it serves, os.Stdout is the process's stderr, so
// that a stray fmt.Println ends up in the host's log instead of in the
// protocol. Run by hand, Main says what the module is and how to load it,
// and exits with status 2.
func Main(m *Module) {
	if code, served := serveProcessIfAsked(m); served {
		os.Exit(code)
	}
	man := m.Manifest()
	fmt.Fprintf(os.Stderr, "%s@%s is a hotmod module (methods:", man.Name, man.Version)
	for _, mi := range man.Methods {
		fmt.Fprintf(os.Stderr, " %s", mi.Name)
	}
	fmt.Fprintln(os.Stderr, ").\nBuild it with `hotmod build` and drop the artifact into the directory `hotmod serve` watches.")
	os.Exit(2)
}
