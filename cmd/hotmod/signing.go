package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"aead.dev/minisign"
	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/process"
	"github.com/hotmod/hotmod/internal/signing"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// keyEnv names the environment variable with the secret key file's path,
// for hotmod sign and hotmod build --sign.
const keyEnv = "HOTMOD_SIGNING_KEY"

func keygenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keygen [NAME]",
		Short: "Make a key pair for signing artifacts",
		Long: `keygen writes a new minisign key pair: the secret key to NAME.key (mode 0600,
not encrypted: keep it where only the signer can read it) and the public key
to NAME.pub (default NAME: hotmod). Sign with the secret key (hotmod sign,
hotmod build --sign); give the public key to hotmod serve --trust.

The files are minisign's: ` + "`minisign -S -s NAME.key`" + ` signs with the secret key and
` + "`minisign -V -p NAME.pub`" + ` verifies with the public one.`,
		Args: args(0, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			name := "hotmod"
			if len(a) == 1 {
				name = a[0]
			}
			pub, err := signing.GenerateKey(name+".key", name+".pub")
			if err != nil {
				return fmt.Errorf("keygen: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "secret key %s (keep it secret)\npublic key %s, id %s:\n%s\n",
				name+".key", name+".pub", signing.KeyID(pub.ID()), pub.String())
			return nil
		},
	}
	return cmd
}

// signFlags are how sign and build --sign find the key and the claim.
type signFlags struct {
	key, module, version string
}

func (f *signFlags) add(fl *pflag.FlagSet, keyFlag string) {
	fl.StringVar(&f.key, keyFlag, "", "secret key file (default $"+keyEnv+"); an encrypted key's password comes from $"+signing.PasswordEnv)
	fl.StringVar(&f.module, "module", "", "module name to sign for (default: read from the artifact's manifest)")
	fl.StringVar(&f.version, "version", "", "module version to sign for (default: read from the artifact's manifest)")
}

// secretKey reads the key that --key or $HOTMOD_SIGNING_KEY names.
func (f *signFlags) secretKey(flag string) (minisign.PrivateKey, error) {
	path := f.key
	if path == "" {
		path = os.Getenv(keyEnv)
	}
	if path == "" {
		return minisign.PrivateKey{}, usagef("no signing key: give --%s FILE or set %s (hotmod keygen makes one)", flag, keyEnv)
	}
	return signing.ReadSecretKey(path, os.Getenv(signing.PasswordEnv))
}

// claim is what path is signed as: --module and --version, or its manifest,
// read the way hotmod inspect reads it (which loads the artifact here).
func (f *signFlags) claim(cmd *cobra.Command, path string) (signing.Claim, error) {
	if (f.module == "") != (f.version == "") {
		return signing.Claim{}, usagef("give both --module and --version, or neither (then they are read from the artifact)")
	}
	if f.module != "" {
		return signing.Claim{Module: f.module, Version: f.version}, nil
	}
	in, err := inspect(cmd, path)
	if err != nil {
		return signing.Claim{}, err
	}
	if in.Manifest == nil {
		return signing.Claim{}, fmt.Errorf("cannot read the manifest of %s to sign it for its module and version: %s; give --module and --version",
			filepath.Base(path), strings.Join(in.Problems, "; "))
	}
	return signing.Claim{Module: in.Manifest.Name, Version: in.Manifest.Version}, nil
}

// signTo signs the file at path for c and writes the signature to dst.
func signTo(key minisign.PrivateKey, path, dst string, c signing.Claim) error {
	sig, err := signing.Sign(key, path, c)
	if err != nil {
		return fmt.Errorf("signing %s: %w", path, err)
	}
	return signing.WriteSignature(dst, sig)
}

func signCmd() *cobra.Command {
	var f signFlags
	cmd := &cobra.Command{
		Use:   "sign ARTIFACT... [--key FILE] [--module NAME --version VERSION]",
		Short: "Sign artifacts for hotmod serve --trust",
		Long: `sign writes ARTIFACT.sig beside each artifact: a minisign signature of its
bytes whose signed trusted comment names the module and version it holds
("hotmod module=NAME version=VERSION"), read from its manifest (which loads
the artifact here, as hotmod inspect does) unless --module and --version say.
A daemon started with --trust loads the artifact only with a valid signature
by a trusted key, and only as that module and version.

A launch file (NAME.process.json) is signed together with every file it
names in its directory (its script, say), each for the same module.

The secret key comes from --key or $` + keyEnv + ` (hotmod keygen makes one;
a key made by minisign -G works too).`,
		Args: args(1, -1),
		RunE: func(cmd *cobra.Command, a []string) error {
			key, err := f.secretKey("key")
			if err != nil {
				return err
			}
			for _, path := range a {
				c, err := f.claim(cmd, path)
				if err != nil {
					return err
				}
				files := []string{path}
				if process.IsArtifact(path) && strings.HasSuffix(path, process.LaunchExt) {
					more, err := signing.LaunchFiles(path)
					if err != nil {
						return fmt.Errorf("signing %s: %w", path, err)
					}
					// The files it runs first: the launch file's signature
					// makes the daemon reconsider it.
					files = append(more, path)
				}
				for _, p := range files {
					if err := signTo(key, p, p+signing.Ext, c); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s (%s@%s, key %s)\n", p+signing.Ext, c.Module, c.Version, signing.KeyID(key.ID()))
				}
			}
			return nil
		},
	}
	f.add(cmd.Flags(), "key")
	cmd.Flags().StringArray("allow-command", nil, "as for serve: a program a launch file may start to tell its manifest, besides those in its own directory; repeatable")
	return cmd
}

func verifyCmd() *cobra.Command {
	var trust []string
	cmd := &cobra.Command{
		Use:   "verify ARTIFACT... --trust PUBKEY [--trust PUBKEY]...",
		Short: "Check artifacts' signatures as hotmod serve --trust would",
		Long: `verify checks each ARTIFACT.sig against the trusted public keys (a key file
such as hotmod keygen writes, or the key's base64 line) and prints the module
and version the signature names. It runs none of the artifact's code; the
daemon also checks, before activating it, that the artifact's manifest is
that module and version.

Exit status 0 when every artifact is signed by a trusted key, 1 otherwise.`,
		Args: args(1, -1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(trust) == 0 {
				return usagef("give the public key to trust with --trust FILE|KEY")
			}
			v, err := signing.NewVerifier(trust...)
			if err != nil {
				return usagef("--trust: %v", err)
			}
			bad := 0
			for _, path := range a {
				got, err := v.Verify(path)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: refused: %v\n", path, err)
					bad++
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: signed by key %s as %s@%s\n", path, got.KeyID, got.Module, got.Version)
			}
			if bad > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&trust, "trust", nil, "a trusted public key: a file, or the key's base64 line; repeatable")
	return cmd
}

// trustFlags are serve's --trust.
type trustFlags struct{ keys []string }

func addTrustFlags(fl *pflag.FlagSet) *trustFlags {
	t := &trustFlags{}
	fl.StringArrayVar(&t.keys, "trust", nil, "load only artifacts signed (ARTIFACT.sig, see hotmod sign) by this minisign public key: a file, or the key's base64 line; repeatable, for key rotation")
	return t
}

// options checks the keys and returns the registry options; without
// --trust it says loudly that nothing is checked.
func (t *trustFlags) options(logger *slog.Logger, dir string) ([]hotmod.Option, error) {
	if len(t.keys) == 0 {
		logger.Warn("artifact signatures are not checked: any artifact placed in the directory runs with this daemon's rights; use --trust PUBKEY to load only signed artifacts", "dir", dir)
		return nil, nil
	}
	v, err := signing.NewVerifier(t.keys...)
	if err != nil {
		return nil, usagef("--trust: %v", err)
	}
	logger.Info("loading only signed artifacts", "trusted_keys", strings.Join(v.KeyIDs(), ","))
	return []hotmod.Option{hotmod.WithTrustedKeys(t.keys...)}, nil
}

// signBeside is build --sign: sign the built artifact for c and put the
// signature beside dest, where the artifact is about to be renamed to, so a
// daemon with --trust finds both when it looks.
func signBeside(cmd *cobra.Command, key minisign.PrivateKey, built, dest string, c signing.Claim) error {
	dst := dest + signing.Ext
	if err := signTo(key, built, dst, c); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "signed %s@%s with key %s: %s\n", c.Module, c.Version, signing.KeyID(key.ID()), dst)
	return nil
}
