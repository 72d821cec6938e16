package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hotmod/hotmod/internal/build"
	"github.com/hotmod/hotmod/internal/native"
	"github.com/spf13/cobra"
)

func buildCmd() *cobra.Command {
	var transport, out, signKey string
	cmd := &cobra.Command{
		Use:   "build [--transport native|wasm|process] [-o DIR] [--sign KEY] [PKG]",
		Short: "Build a module into an artifact this hotmod loads",
		Long: `build compiles the module's main package in directory PKG (default ".") into
DIR/<name of PKG>.so (native), .wasm (wasm) or .process (process) and prints
the artifact's path. The artifact is written
under a temporary name and renamed into place, so building straight into the
directory ` + "`hotmod serve`" + ` watches publishes it safely.

A native artifact only loads into a host built by the same Go toolchain with
the same flags, so build uses the toolchain and flags this hotmod binary was
built with. A GOTOOLCHAIN set in the environment wins (build then warns when
this hotmod would refuse the result).

A wasm or process artifact survives a change of the host's toolchain: set
GOTOOLCHAIN to build it with another Go (wasm needs Go 1.24 or later, process
modules Go 1.22 or later).

--sign KEY signs the artifact with the secret key file KEY as hotmod sign
does, and writes ARTIFACT.sig into DIR before the artifact is renamed in.`,
		Args: args(0, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			builders := map[string]func(context.Context, build.Options) (string, error){
				"native": build.Native, "process": build.Process, "wasm": build.Wasm,
			}
			builder, ok := builders[transport]
			if !ok {
				return usagef("unknown transport %q: use native, wasm or process", transport)
			}
			pkg := "."
			if len(a) == 1 {
				pkg = a[0]
			}
			dir, err := filepath.Abs(pkg)
			if err != nil {
				return err
			}
			opts := build.Options{Dir: dir, Out: out}
			if signKey != "" {
				sf := signFlags{key: signKey}
				if opts.BeforePublish, err = sf.beforePublish(cmd, out); err != nil {
					return err
				}
			}
			path, err := builder(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if transport != "native" {
				fmt.Fprintln(cmd.OutOrStdout(), path)
				return nil
			}
			if rep, err := native.Preflight(path); err == nil && len(rep.Problems) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: this hotmod (%s) will refuse %s:\n  - %s\n",
					hostVersion(), path, strings.Join(rep.Problems, "\n  - "))
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		},
	}
	cmd.Flags().StringVar(&transport, "transport", "native", "artifact kind: native, wasm or process")
	cmd.Flags().StringVarP(&out, "out", "o", ".", "directory to write the artifact to (created if missing)")
	cmd.Flags().StringVar(&signKey, "sign", "", "sign the artifact with this secret key file (see hotmod keygen); ARTIFACT.sig arrives with it")
	return cmd
}
