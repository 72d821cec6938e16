package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
)

func invokeCmd() *cobra.Command {
	var addr clientFlags
	cmd := &cobra.Command{
		Use:   "invoke MODULE[@VERSION|@RANGE] METHOD [PARAMS|-]",
		Short: "Call a method of a module",
		Long: `invoke calls METHOD of the newest active version of MODULE that matches
(greeter, greeter@1.2.3, greeter@^1.2) with PARAMS, a JSON object; "-" reads
the params from stdin, and no PARAMS means {}. The result is printed as
indented JSON. A failure prints "code: message" on stderr and exits 1.

  hotmod invoke greeter hello '{"name":"Ada"}'
  echo '{"name":"Ada"}' | hotmod invoke greeter@^1 hello -`,
		Args: args(2, 3),
		RunE: func(cmd *cobra.Command, a []string) error {
			var params []byte
			switch {
			case len(a) == 3 && a[2] == "-":
				var err error
				if params, err = io.ReadAll(cmd.InOrStdin()); err != nil {
					return fmt.Errorf("reading params from stdin: %w", err)
				}
			case len(a) == 3:
				params = []byte(a[2])
			}
			c, err := newClient(addr)
			if err != nil {
				return err
			}
			path := "/v1/invoke/" + url.PathEscape(a[0]) + "/" + url.PathEscape(a[1])
			status, body, err := c.do(cmd.Context(), http.MethodPost, path, params)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return c.apiError(status, body)
			}
			return writeIndented(cmd.OutOrStdout(), body)
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}
