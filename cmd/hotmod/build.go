package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"aead.dev/minisign"
	"github.com/hotmod/hotmod/internal/build"
	"github.com/hotmod/hotmod/internal/native"
	"github.com/hotmod/hotmod/internal/signing"
	"github.com/hotmod/hotmod/sdk"
	"github.com/spf13/cobra"
)

// defaultWaitTimeout is how long build --wait waits for the daemon's verdict.
const defaultWaitTimeout = 2 * time.Minute

// artifactExt is the extension of each transport's artifact.
var artifactExt = map[string]string{"native": ".so", "wasm": ".wasm", "process": ".process"}

func buildCmd() *cobra.Command {
	var transport, out, signKey string
	var wait, relocate bool
	var waitTimeout time.Duration
	var addr clientFlags
	cmd := &cobra.Command{
		Use:   "build [--transport native|wasm|process] [-o DIR|FILE] [--sign KEY] [--wait] [PKG]",
		Short: "Build a module into an artifact this hotmod loads",
		Long: `build compiles the module's main package in directory PKG (default ".") into
an artifact, .so (native), .wasm (wasm) or .process (process), and prints its
path. The artifact is written under a temporary name and renamed into place,
so building straight into the directory ` + "`hotmod serve`" + ` watches publishes it
safely.

-o says where it goes (default "."):
  -o FILE  a path ending in .so, .wasm or .process is the artifact's file;
           its extension must be the transport's
  -o DIR   any other path is a directory (created if missing); the artifact
           is DIR/<module name><ext>, the name read from the module's
           manifest (the package directory's name when the manifest cannot
           be read here, with a warning)

Reading the manifest runs the built module briefly: a native module's package
initialisation runs in a throwaway child process, a process module starts
and stops, a wasm guest is instantiated. -o FILE without --sign or --wait
runs nothing.

A native artifact only loads into a host built by the same Go toolchain with
the same flags, so build uses the toolchain and flags this hotmod binary was
built with. A GOTOOLCHAIN set in the environment wins (build then warns when
this hotmod would refuse the result).

A native build relocates every package the module does not share with the
host (all but the standard library and the hotmod sdk) to an import path
unique to its content, so that versions whose own packages or dependencies
differ load side by side (see docs/native-builds.md). --relocate=false builds
from the module's own directory: then only the main package may differ
between versions loaded in one process.

A wasm or process artifact survives a change of the host's toolchain: set
GOTOOLCHAIN to build it with another Go (wasm needs Go 1.24 or later, process
modules Go 1.22 or later).

--sign KEY signs the artifact with the secret key file KEY as hotmod sign
does, and writes ARTIFACT.sig beside it before the artifact is renamed in.

--wait (for an artifact built into the directory a daemon watches) follows
the daemon's events (--addr/HOTMOD_ADDR, as other client commands) from
before the artifact is published until the daemon has activated the new
version or refused it. A version a rollout policy keeps Standby (until
hotmod promote) or starts as a canary counts as accepted; build says which.
Exit status 1, with the daemon's reason, when it refused the version or
--wait-timeout passed first.`,
		Args: args(0, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			builders := map[string]func(context.Context, build.Options) (string, error){
				"native": build.Native, "process": build.Process, "wasm": build.Wasm,
			}
			builder, ok := builders[transport]
			if !ok {
				return usagef("unknown transport %q: use native, wasm or process", transport)
			}
			if waitTimeout <= 0 {
				return usagef("--wait-timeout %v: give a positive duration, e.g. 2m", waitTimeout)
			}
			pkg := "."
			if len(a) == 1 {
				pkg = a[0]
			}
			dir, err := filepath.Abs(pkg)
			if err != nil {
				return err
			}
			opts, err := outputOptions(dir, out, transport)
			if err != nil {
				return err
			}
			opts.NoRelocate = !relocate
			var key *minisign.PrivateKey
			if signKey != "" {
				sf := signFlags{key: signKey}
				k, err := sf.secretKey("sign")
				if err != nil {
					return err
				}
				key = &k
			}
			var w *waiter
			if wait {
				c, err := newClient(addr)
				if err != nil {
					return err
				}
				if w, err = c.subscribe(cmd.Context(), cmd.ErrOrStderr()); err != nil {
					return err
				}
				defer w.close()
			}

			// The manifest, read once from the built artifact: it names the
			// artifact, the signature's claim and the version --wait waits
			// for.
			var manifest *sdk.Manifest
			var problems []string
			read := func(built string) {
				if manifest == nil && problems == nil {
					manifest, problems = readManifest(cmd, built, transport)
				}
			}
			if opts.Name == "" {
				opts.Place = func(built string) (string, error) {
					read(built)
					name := filepath.Base(dir)
					if manifest != nil && usableName(manifest.Name) {
						name = manifest.Name
					} else {
						fmt.Fprintf(cmd.ErrOrStderr(), "warning: cannot read the module's name from its manifest (%s): the artifact is named after its directory\n",
							strings.Join(problems, "; "))
					}
					return filepath.Join(opts.Out, name+artifactExt[transport]), nil
				}
			}
			opts.BeforePublish = func(built, dest string) error {
				if w != nil {
					read(built) // the version to wait for
				}
				if key == nil {
					return nil
				}
				read(built)
				if manifest == nil {
					return fmt.Errorf("cannot read the manifest of %s to sign it for its module and version: %s; build it, then sign it with hotmod sign --module NAME --version VERSION",
						filepath.Base(built), strings.Join(problems, "; "))
				}
				return signBeside(cmd, *key, built, dest, signing.Claim{Module: manifest.Name, Version: manifest.Version})
			}
			path, err := builder(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if transport == "native" {
				if rep, err := native.Preflight(path); err == nil && len(rep.Problems) > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: this hotmod (%s) will refuse %s:\n  - %s\n",
						hostVersion(), path, strings.Join(rep.Problems, "\n  - "))
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			if w == nil {
				return nil
			}
			var want waitFor
			want.artifact = path
			if manifest != nil {
				want.module, want.version = manifest.Name, manifest.Version
			}
			msg, err := w.verdict(want, waitTimeout)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&transport, "transport", "native", "artifact kind: native, wasm or process")
	fl.StringVarP(&out, "out", "o", ".", "where to write the artifact: a FILE ending in .so, .wasm or .process, else a directory (created if missing) that gets <module name><ext>")
	fl.StringVar(&signKey, "sign", "", "sign the artifact with this secret key file (see hotmod keygen); ARTIFACT.sig arrives with it")
	fl.BoolVar(&relocate, "relocate", true, "native: give every package not shared with the host an import path of its own, so versions load side by side")
	fl.BoolVar(&wait, "wait", false, "wait until the daemon has activated the new version (or taken it as a canary or Standby); exit 1 with its reason when it refuses it")
	fl.DurationVar(&waitTimeout, "wait-timeout", defaultWaitTimeout, "how long --wait waits for the daemon's verdict, from when the artifact is published")
	addrFlag(cmd, &addr)
	return cmd
}

// outputOptions reads -o: a path ending in an artifact extension is the
// artifact's file (the extension must be the transport's); any other path is
// a directory, and the artifact's name comes later, from its manifest.
func outputOptions(dir, out, transport string) (build.Options, error) {
	opts := build.Options{Dir: dir, Out: out}
	ext := filepath.Ext(out)
	isArtifact := false
	for _, e := range artifactExt {
		isArtifact = isArtifact || e == ext
	}
	if !isArtifact {
		if fi, err := os.Stat(out); err == nil && !fi.IsDir() {
			return opts, usagef("-o %s is a file that is not a .so, .wasm or .process artifact: give a directory, or a file name with the artifact's extension", out)
		}
		return opts, nil
	}
	if ext != artifactExt[transport] {
		return opts, usagef("-o %s: a %s artifact is a %s file, not %s: name it NAME%s (or pick --transport)", out, transport, artifactExt[transport], ext, artifactExt[transport])
	}
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		return opts, usagef("-o %s is a directory: give a file name that is not one, or the directory without the extension", out)
	}
	opts.Out, opts.Name = filepath.Dir(out), strings.TrimSuffix(filepath.Base(out), ext)
	return opts, nil
}

// readManifest reads the manifest of a built artifact, or says why it
// cannot. A native one is read in a throwaway child process (the loader's
// probe), so nothing the module's init starts runs on in this one; a process
// module is started and stopped, a wasm guest instantiated, as hotmod
// inspect does.
func readManifest(cmd *cobra.Command, built, transport string) (*sdk.Manifest, []string) {
	if transport == "native" {
		if rep, err := native.Preflight(built); err != nil {
			return nil, []string{err.Error()}
		} else if len(rep.Problems) > 0 {
			return nil, rep.Problems
		}
		m, err := native.ReadManifest(cmd.Context(), built)
		if err != nil {
			return nil, []string{sdk.AsError(err).Message}
		}
		return &m, nil
	}
	in, err := inspect(cmd, built)
	switch {
	case err != nil:
		return nil, []string{err.Error()}
	case in.Manifest == nil:
		return nil, append([]string{}, in.Problems...)
	}
	return in.Manifest, nil
}

// usableName says whether a module name can be an artifact's file name.
func usableName(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.ContainsAny(name, `/\`+"\x00")
}
