package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/spf13/cobra"
)

// maxEventLine bounds one line of the event stream.
const maxEventLine = 1 << 20

func eventsCmd() *cobra.Command {
	var addr clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events [--json]",
		Short: "Print the daemon's lifecycle events as they happen",
		Long: `events follows the daemon's lifecycle events (GET /v1/events) and prints one
line per event until interrupted: a version loaded, validated, waiting for a
requirement, activated, draining, unloaded or failed, with the reason and, when
a load ends, how long each of its stages took.

--json prints each event as one line of JSON.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(addr)
			if err != nil {
				return err
			}
			return c.followEvents(cmd, asJSON)
		},
	}
	addrFlag(cmd, &addr)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each event as a line of JSON")
	return cmd
}

func (c *client) followEvents(cmd *cobra.Command, asJSON bool) error {
	resp, err := c.openEvents(cmd.Context())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out := cmd.OutOrStdout()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	for sc.Scan() {
		data, ok := eventData(sc.Bytes())
		if !ok {
			continue // ids, event names, comments, blank lines
		}
		if asJSON {
			if _, err := fmt.Fprintf(out, "%s\n", data); err != nil {
				return err
			}
			continue
		}
		var e hotmod.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("unexpected event from %s (is it a hotmod daemon?): %v", c.base, err)
		}
		if _, err := fmt.Fprintln(out, eventLine(e)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && cmd.Context().Err() == nil {
		return fmt.Errorf("reading events from %s: %w", c.base, err)
	}
	return nil
}

// eventLine is one event on one line: its time, what changed, why, and the
// stages of a load that ended.
func eventLine(e hotmod.Event) string {
	var b strings.Builder
	b.WriteString(e.Time.Local().Format("15:04:05.000"))
	b.WriteByte(' ')
	b.WriteString(strings.ReplaceAll(e.String(), "\n", " "))
	if e.Transport != "" {
		fmt.Fprintf(&b, " [%s]", e.Transport)
	}
	if len(e.Stages) > 0 {
		var total time.Duration
		parts := make([]string, len(e.Stages))
		for i, s := range e.Stages {
			parts[i] = s.Name + " " + round(s.Duration).String()
			total += s.Duration
		}
		fmt.Fprintf(&b, " (%s: %s)", round(total), strings.Join(parts, ", "))
	}
	return b.String()
}

// round shortens a duration for people: three significant places at most.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
