// Command hotmod runs and talks to a hotmod daemon, and builds, inspects and
// scaffolds modules.
//
//	hotmod serve [--dir ./plugins] [--listen 127.0.0.1:7700]   run the daemon
//	hotmod ls [--json]                                         what the daemon holds
//	hotmod events [--json]                                     follow the lifecycle events
//	hotmod invoke MODULE[@RANGE] METHOD ['{"json":"params"}']  call a method
//	hotmod inspect FILE [--json]                               what an artifact is, and whether this hotmod loads it
//	hotmod build [-o DIR|FILE] [--sign KEY] [--wait] [PKG]      build an artifact this hotmod loads
//	hotmod new NAME [--dir DIR]                                start a module
//	hotmod contract diff OLD NEW | export ARTIFACT             compare module contracts (for CI)
//	hotmod recycle                                             replace the daemon's worker, failing no call
//	hotmod quarantine ls | lift HASH|FILE                      artifacts that killed the worker
//	hotmod version                                             version, commit, and what native modules need
//	hotmod completion bash|zsh|fish|powershell                 a shell completion script
//	hotmod keygen [NAME] | sign ARTIFACT | verify ARTIFACT     sign artifacts for serve --trust
//	hotmod rollout status [MODULE]                             where plain calls go, canary step and health
//	hotmod promote|rollback|unpin MODULE, pin|unload MODULE@VERSION   change it
//	hotmod token create|ls|revoke|print                        API tokens
//
// Exit status: 0 on success, 1 when the command failed, 2 for a usage error.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root, started := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	var usage usageError
	if errors.As(err, &usage) || !*started {
		// Cobra's own errors (unknown command or flag, wrong arguments) come
		// before any command starts: all of them are usage errors.
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", cmd.CommandPath(), err, cmd.CommandPath())
		return 2
	}
	fmt.Fprintln(stderr, err)
	return 1
}

// newRoot returns the hotmod command; *started becomes true once a command's
// own code runs, which separates usage errors from failures.
func newRoot() (*cobra.Command, *bool) {
	started := new(bool)
	root := &cobra.Command{
		Use:   "hotmod",
		Short: "Hot-loading module registry for Go",
		Long: `hotmod loads modules at run time, calls them through one contract and swaps
in new versions while calls are in flight.

Start a daemon that serves the modules in a directory, then talk to it:

  hotmod serve --dir ./plugins &
  hotmod build -o ./plugins ./greeter
  hotmod invoke greeter hello '{"name":"Ada"}'

Client commands (ls, invoke, token) find the daemon with --addr or
$HOTMOD_ADDR (default ` + defaultAddr + `) and send --token or $HOTMOD_TOKEN,
else the admin token a daemon at that address published for this user.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(*cobra.Command, []string) {
			*started = true
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	// `hotmod completion bash|zsh|fish|powershell` writes a shell completion
	// script (cobra's own command).
	root.AddCommand(serveCmd(), lsCmd(), eventsCmd(), invokeCmd(), inspectCmd(), buildCmd(), newCmd(), newContractCmd(), versionCmd(), tokenCmd(),
		keygenCmd(), signCmd(), verifyCmd(), recycleCmd(), quarantineCmd())
	root.AddCommand(append(routeCmds(), rolloutCmd())...)
	return root, started
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode ends the command with that status; whatever needed saying is
// already said.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// args checks the number of positional arguments; a wrong number is a usage
// error that shows the expected form.
func args(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) < min || (max >= 0 && len(a) > max) {
			return usagef("wrong number of arguments (%d): usage: %s", len(a), cmd.UseLine())
		}
		return nil
	}
}
