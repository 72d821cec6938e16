package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/journal"
	"github.com/spf13/cobra"
)

func quarantineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quarantine ls | lift HASH|FILE",
		Short: "Artifacts the daemon will not load because they killed its worker",
		Long: `When a native module kills the daemon's worker (a panic in a goroutine of its
own, os.Exit, a fatal runtime error), the crash journal names the artifact
and quarantines it by content hash: no worker loads it again, and hotmod ls
shows it Failed with the reason. A new build (other bytes) is not
quarantined. lift takes an artifact off the list (a sha256 prefix of at
least 8 digits, or the artifact's path) and loads it again.`,
	}
	var addr clientFlags
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls [--json]",
		Short: "List quarantined artifacts",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return showList(cmd, addr, asJSON, "/v1/quarantine", func(w io.Writer, list struct {
				Quarantined []hotmod.QuarantineEntry `json:"quarantined"`
			}) error {
				return writeQuarantine(w, list.Quarantined)
			})
		},
	}
	addrFlag(ls, &addr)
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var liftAddr clientFlags
	lift := &cobra.Command{
		Use:   "lift HASH|FILE",
		Short: "Take an artifact off the quarantine list and load it again",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, ctx, cancel, err := commandClient(cmd, liftAddr, requestTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			req, _ := json.Marshal(map[string]string{"target": a[0]})
			status, body, err := c.do(ctx, http.MethodPost, "/v1/quarantine/lift", req)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return c.apiError(status, body)
			}
			var res struct {
				Lifted []hotmod.QuarantineEntry `json:"lifted"`
			}
			if err := json.Unmarshal(body, &res); err != nil {
				return fmt.Errorf("unexpected answer from %s: %v", c.base, err)
			}
			for _, e := range res.Lifted {
				fmt.Fprintf(cmd.OutOrStdout(), "lifted %s %s\n", journal.Short(e.Sum), e.Path)
			}
			return nil
		},
	}
	addrFlag(lift, &liftAddr)
	cmd.AddCommand(ls, lift)
	return cmd
}

func writeQuarantine(w io.Writer, list []hotmod.QuarantineEntry) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "nothing is quarantined")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHA256\tMODULE\tARTIFACT\tSINCE\tREASON")
	for _, e := range list {
		mod := e.Module
		if mod == "" {
			mod = "-"
		} else if e.Version != "" {
			mod += "@" + e.Version
		}
		reason, _, _ := strings.Cut(e.Reason, "\n")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", journal.Short(e.Sum), mod, e.Path, e.Since.Format(time.RFC3339), reason)
	}
	return tw.Flush()
}
