package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/internal/server"
	"github.com/spf13/cobra"
)

func tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the daemon's API tokens",
		Long: `Every API endpoint but /healthz needs a bearer token with a role:

  read    lists, metrics, events
  invoke  calls (optionally of some modules only), and what read may do
  admin   everything that changes what runs, and tokens

The daemon keeps tokens hashed in its state directory. On first start it
makes an admin token and publishes it, for the user running it, where the
hotmod CLI finds it (so ls and invoke need nothing on that machine); other
clients set HOTMOD_TOKEN or --token. Managing tokens needs an admin token and
works against a remote daemon too.`,
	}
	cmd.AddCommand(tokenCreateCmd(), tokenLsCmd(), tokenRevokeCmd(), tokenPrintCmd())
	return cmd
}

// tokenRequest sends an admin request about tokens and decodes a
// successful answer into v.
func tokenRequest(cmd *cobra.Command, f clientFlags, method, path string, body []byte, v any) error {
	c, ctx, cancel, err := commandClient(cmd, f, requestTimeout)
	if err != nil {
		return err
	}
	defer cancel()
	status, data, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return c.apiError(status, data)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("unexpected answer from %s%s (is it a hotmod daemon?): %v", c.base, path, err)
	}
	return nil
}

func tokenCreateCmd() *cobra.Command {
	var (
		addr       clientFlags
		role, name string
		modules    []string
	)
	cmd := &cobra.Command{
		Use:   "create --role read|invoke|admin [--modules a,b] [--name NAME]",
		Short: "Make a token and print it (it is shown only once)",
		Long: `create makes a token with a role and prints it on stdout; the daemon keeps
only its hash, so it cannot be shown again. --modules limits an invoke token
to calling those modules. Without --name the token gets one from its role.

  export HOTMOD_TOKEN=$(hotmod token create --role invoke --modules pricing --name shop)`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return usagef("--role: %v", err)
			}
			body, _ := json.Marshal(server.TokenRequest{Name: name, Role: r, Modules: modules})
			var out server.TokenInfo
			if err := tokenRequest(cmd, addr, http.MethodPost, "/v1/tokens", body, &out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "created token %q (%s); it is shown only this once\n", out.Name, describe(out.Principal))
			return nil
		},
	}
	addrFlag(cmd, &addr)
	cmd.Flags().StringVar(&role, "role", "", "read, invoke or admin (required)")
	cmd.Flags().StringSliceVar(&modules, "modules", nil, "modules an invoke token may call, comma-separated (default: all)")
	cmd.Flags().StringVar(&name, "name", "", "the token's name, which logs and revoke use (default: ROLE-xxxxxx)")
	return cmd
}

func describe(p auth.Principal) string {
	if len(p.Modules) == 0 {
		return p.Role.String()
	}
	return p.Role.String() + " " + strings.Join(p.Modules, ",")
}

func tokenLsCmd() *cobra.Command {
	var addr clientFlags
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the daemon's tokens (names and roles, never the secrets)",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ Tokens []server.TokenInfo }
			if err := tokenRequest(cmd, addr, http.MethodGet, "/v1/tokens", nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tMODULES\tCREATED")
			for _, t := range out.Tokens {
				mods := strings.Join(t.Modules, ",")
				if mods == "" {
					mods = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Role, mods, t.Created)
			}
			return tw.Flush()
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}

func tokenRevokeCmd() *cobra.Command {
	var addr clientFlags
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token: requests with it fail from now on",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			var out map[string]string
			if err := tokenRequest(cmd, addr, http.MethodDelete, "/v1/tokens/"+url.PathEscape(a[0]), nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", a[0])
			return nil
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}

func tokenPrintCmd() *cobra.Command {
	var addr clientFlags
	cmd := &cobra.Command{
		Use:   "print",
		Short: "Print the token the CLI would send to the daemon (for curl)",
		Long: `print writes the token ls and invoke would send: --token, else HOTMOD_TOKEN,
else the admin token a daemon at the address published for this user.

  curl -H "Authorization: Bearer $(hotmod token print)" http://127.0.0.1:7700/v1/modules`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(addr)
			if err != nil {
				return err
			}
			if c.token == "" {
				p, _ := auth.CredentialPath(strings.TrimPrefix(strings.TrimPrefix(c.base, "http://"), "https://"))
				return fmt.Errorf("no token for %s: no --token, no HOTMOD_TOKEN, and no daemon there published one for this user (%s); is it running, as you?", c.base, p)
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.token)
			return nil
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}
