package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// rolloutFlags are serve's rollout flags.
type rolloutFlags struct {
	policy, steps   string
	perModule       []string
	interval        time.Duration
	standbyVersions int
	standbyFor      time.Duration
}

func addRolloutFlags(fl *pflag.FlagSet) *rolloutFlags {
	f := &rolloutFlags{}
	fl.StringVar(&f.policy, "rollout", "immediate", "how a new version of a module takes over: immediate, canary (a share of calls, step by step, rolled back when clearly worse) or manual (Standby until `hotmod promote`)")
	fl.StringArrayVar(&f.perModule, "rollout-for", nil, "a policy for one module, overriding --rollout: NAME=immediate|canary|manual (a canary takes --canary-steps and --canary-interval); repeatable")
	fl.StringVar(&f.steps, "canary-steps", "10,50,100", "the canary's share of calls at each step, in percent")
	fl.DurationVar(&f.interval, "canary-interval", 30*time.Second, "how long the canary holds each step")
	fl.IntVar(&f.standbyVersions, "standby-versions", -1, "replaced versions kept Standby for `hotmod rollback` (default: 1 under canary or manual, 0 under immediate)")
	fl.DurationVar(&f.standbyFor, "standby-for", 15*time.Minute, "how long a replaced version stays Standby")
	return f
}

// options are the registry options the flags ask for (the state directory,
// where rollouts are kept, is serve's --state-dir).
func (f *rolloutFlags) options() ([]hotmod.Option, error) {
	p, err := hotmod.ParseRollout(f.policy, f.steps, f.interval)
	if err != nil {
		return nil, usagef("--rollout/--canary-steps/--canary-interval: %v", err)
	}
	opts := []hotmod.Option{hotmod.WithRollout(p)}
	for _, pm := range f.perModule {
		name, kind, ok := strings.Cut(pm, "=")
		if !ok || name == "" {
			return nil, usagef("--rollout-for %q: use NAME=immediate, NAME=canary or NAME=manual", pm)
		}
		mp, err := hotmod.ParseRollout(kind, f.steps, f.interval)
		if err != nil {
			return nil, usagef("--rollout-for %s: %v", pm, err)
		}
		opts = append(opts, hotmod.WithRollout(mp, name))
	}
	if f.standbyVersions >= 0 {
		opts = append(opts, hotmod.WithStandby(f.standbyVersions, f.standbyFor))
	}
	return opts, nil
}

func rolloutCmd() *cobra.Command {
	var addr clientFlags
	var asJSON bool
	status := &cobra.Command{
		Use:   "status [MODULE] [--json]",
		Short: "Where each module's plain calls go, and what comes next",
		Long: `status shows, for each module (or MODULE), the version plain calls reach,
the canary of a rollout in progress with its share, step and health (calls,
failures and p99 latency of stable and canary over the step), the versions
kept Standby for a rollback, and what comes next.`,
		Args: args(0, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, ctx, cancel, err := commandClient(cmd, addr, time.Minute)
			if err != nil {
				return err
			}
			defer cancel()
			var list struct {
				Rollouts []hotmod.RolloutStatus `json:"rollouts"`
			}
			var body []byte
			if len(a) == 1 {
				var one hotmod.RolloutStatus
				body, err = c.get(ctx, "/v1/rollouts/"+url.PathEscape(a[0]), &one)
				list.Rollouts = append(list.Rollouts, one)
			} else {
				body, err = c.get(ctx, "/v1/rollouts", &list)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeIndented(cmd.OutOrStdout(), body)
			}
			return writeRollouts(cmd.OutOrStdout(), list.Rollouts)
		},
	}
	addrFlag(status, &addr)
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "See rollouts (status); change them with promote, rollback, pin, unpin",
	}
	cmd.AddCommand(status)
	return cmd
}

// routeCmds are promote, rollback, pin, unpin and unload.
func routeCmds() []*cobra.Command {
	type op struct {
		use, short, long string
		request          func(arg string) (method, path string)
	}
	post := func(op string) func(string) (string, string) {
		return func(a string) (string, string) {
			return http.MethodPost, "/v1/modules/" + url.PathEscape(a) + "/" + op
		}
	}
	ops := []op{
		{"promote MODULE", "Move a module's canary to its next step, or to every call",
			"promote moves MODULE's canary to its next step, or routes every plain call to it\nwhen the next step is the last; the version it replaces stays Standby. Without a\nrollout in progress it starts one with the newest Standby version.", post("promote")},
		{"rollback MODULE", "Send every call to a module back to the version before, at once",
			"rollback sends every plain call to MODULE back to the stable version (during a\nrollout) or to the version kept Standby; the version rolled back is Failed, and\nstays so across restarts.", post("rollback")},
		{"pin MODULE@VERSION", "Route every plain call to a module to one version",
			"pin routes every plain call to MODULE to VERSION (Active or Standby) until unpin;\nnew versions that arrive meanwhile wait Standby.", post("pin")},
		{"unpin MODULE", "Let a module's calls follow its rollout policy again", "", post("unpin")},
		{"unload MODULE@VERSION", "Drain and unload a version (MODULE: every version)",
			"unload drains and unloads MODULE@VERSION (or every version of MODULE). A version\nan active module requires, or the stable version of a rollout in progress, is refused.",
			func(a string) (string, string) { return http.MethodDelete, "/v1/modules/" + url.PathEscape(a) }},
	}
	var out []*cobra.Command
	for _, o := range ops {
		var addr clientFlags
		cmd := &cobra.Command{
			Use: o.use, Short: o.short, Long: o.long,
			Args: args(1, 1),
			RunE: func(cmd *cobra.Command, a []string) error {
				c, ctx, cancel, err := commandClient(cmd, addr, time.Minute)
				if err != nil {
					return err
				}
				defer cancel()
				method, path := o.request(a[0])
				status, body, err := c.do(ctx, method, path, []byte("{}"))
				if err != nil {
					return err
				}
				if status != http.StatusOK {
					return c.apiError(status, body)
				}
				var st hotmod.RolloutStatus
				if json.Unmarshal(body, &st) == nil && st.Module != "" {
					return writeRollouts(cmd.OutOrStdout(), []hotmod.RolloutStatus{st})
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "unloaded %s\n", a[0])
				return err
			},
		}
		addrFlag(cmd, &addr)
		out = append(out, cmd)
	}
	return out
}

// writeRollouts writes one block per module:
//
//	greeter  canary 10,50,100% every 30s
//	  stable   1.0.0  90 %  812 calls, 0 % failed, p99 ≤ 1.049ms
//	  canary   1.1.0  10 %  88 calls, 0 % failed, p99 ≤ 1.049ms (step 1 of 3)
//	  standby  0.9.0
//	  next     50 % at 2026-12-05T16:41:45Z if healthy
func writeRollouts(w io.Writer, rs []hotmod.RolloutStatus) error {
	var b strings.Builder
	for _, s := range rs {
		fmt.Fprintf(&b, "%s  %s\n", s.Module, s.Policy)
		stable := orDash(s.Stable)
		if s.Pinned {
			stable += "  pinned"
		} else {
			stable += fmt.Sprintf("  %d %%", 100-s.Percent)
		}
		if s.Health != nil {
			stable += "  " + health(s.Health.Stable)
		}
		fmt.Fprintf(&b, "  stable   %s\n", stable)
		if s.Canary != "" {
			line := fmt.Sprintf("%s  %d %%", s.Canary, s.Percent)
			if s.Health != nil {
				line += "  " + health(s.Health.Canary) + fmt.Sprintf(" (step %d of %d)", s.Step, len(s.Steps)-1)
			} else {
				line += "  Standby"
			}
			fmt.Fprintf(&b, "  canary   %s\n", line)
		}
		if len(s.Standby) > 0 {
			fmt.Fprintf(&b, "  standby  %s\n", strings.Join(s.Standby, ", "))
		}
		if s.Next != "" {
			fmt.Fprintf(&b, "  next     %s\n", s.Next)
		}
	}
	if len(rs) == 0 {
		b.WriteString("no modules loaded\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func health(c hotmod.CallStats) string {
	return fmt.Sprintf("%d calls, %.1f %% failed, p99 ≤ %s", c.Calls, 100*c.FailureRate, c.P99)
}
