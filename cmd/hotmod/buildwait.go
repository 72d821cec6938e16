package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hotmod/hotmod"
)

// openEvents opens the daemon's event stream (GET /v1/events). The daemon
// subscribes before it answers, so every event after this returns reaches
// the stream.
func (c *client) openEvents(ctx context.Context) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.unreachable(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return nil, c.apiError(resp.StatusCode, body)
	}
	return resp, nil
}

// eventData returns the data line of an event-stream line, if it is one.
func eventData(line []byte) ([]byte, bool) {
	return bytes.CutPrefix(line, []byte("data: "))
}

// waiter is build --wait's subscription to the daemon's events, opened
// before the artifact is published so that no event about it is missed.
type waiter struct {
	c      *client
	ctx    context.Context
	cancel context.CancelFunc
	resp   *http.Response
	sc     *bufio.Scanner
	// progress receives what the version waits for, while it waits.
	progress io.Writer
}

// subscribe opens the event stream for build --wait; progress receives
// what the version waits for while it waits.
func (c *client) subscribe(ctx context.Context, progress io.Writer) (*waiter, error) {
	ctx, cancel := context.WithCancel(ctx)
	resp, err := c.openEvents(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("--wait: %w", err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	return &waiter{c: c, ctx: ctx, cancel: cancel, resp: resp, sc: sc, progress: progress}, nil
}

func (w *waiter) close() {
	w.cancel()
	w.resp.Body.Close()
}

// waitFor is what build --wait waits for: the version in the artifact at
// path (module and version are empty when the manifest could not be read).
type waitFor struct {
	artifact, module, version string
}

// matches says whether e is about the published version: by module and
// version when they are known, else (and for a failure before the daemon
// read the manifest) by the artifact's file name, as the daemon may name the
// file by another path (its own working directory, a symbolic link).
func (f waitFor) matches(e hotmod.Event) bool {
	if f.module != "" && e.Module != "" {
		return e.Module == f.module && e.Version == f.version
	}
	return e.Artifact != "" && (e.Artifact == f.artifact || filepath.Base(e.Artifact) == filepath.Base(f.artifact))
}

func (f waitFor) ref() string {
	if f.module == "" {
		return f.artifact
	}
	return f.module + "@" + f.version
}

// verdict reads events until the daemon has taken the version (Active, a
// canary, Standby: a sentence that says which) or refused it (an error
// with its reason), for at most timeout.
func (w *waiter) verdict(want waitFor, timeout time.Duration) (string, error) {
	var timedOut atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		w.cancel() // ends the stream's read
	})
	defer timer.Stop()
	last := ""
	for w.sc.Scan() {
		data, ok := eventData(w.sc.Bytes())
		if !ok {
			continue
		}
		var e hotmod.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return "", fmt.Errorf("unexpected event from %s (is it a hotmod daemon?): %v", w.c.base, err)
		}
		if !want.matches(e) {
			continue
		}
		if want.module == "" && e.Module != "" {
			want.module, want.version = e.Module, e.Version
		}
		ref := want.ref()
		if e.Kind == hotmod.EventRollout {
			if ch := e.Rollout; ch != nil && ch.Action == "standby" {
				return standby(ref, want.module), nil
			}
			continue
		}
		switch e.To {
		case hotmod.StateFailed:
			if e.Err != nil {
				return "", fmt.Errorf("the daemon refused %s: %v", ref, e.Err)
			}
			return "", fmt.Errorf("the daemon refused %s", ref)
		case hotmod.StateStandby:
			return standby(ref, want.module), nil
		case hotmod.StateActive:
			return w.active(ref, want), nil
		}
		last = e.To.String()
		if e.Reason != "" {
			last += ": " + e.Reason
			fmt.Fprintf(w.progress, "%s waits: %s\n", ref, e.Reason)
		}
	}
	if timedOut.Load() {
		seen := "no event about it came; an artifact identical to the one loaded is not loaded again"
		if last != "" {
			seen = "it is " + last
		}
		return "", fmt.Errorf("--wait: no verdict on %s within %v (%s): is %s in the directory the daemon at %s watches? (raise --wait-timeout to wait longer)",
			want.ref(), timeout, seen, want.artifact, w.c.base)
	}
	if err := w.sc.Err(); err != nil {
		return "", fmt.Errorf("--wait: reading events from %s: %w", w.c.base, err)
	}
	return "", fmt.Errorf("--wait: the daemon at %s ended its event stream before it decided on %s (did it stop?)", w.c.base, want.ref())
}

// active says how an Active version serves: all plain calls, or a
// canary's share of them (the rollout status says; the canary event comes
// in the same step as the activation).
func (w *waiter) active(ref string, want waitFor) string {
	var st hotmod.RolloutStatus
	if _, err := w.c.get(w.ctx, "/v1/rollouts/"+url.PathEscape(want.module), &st); err == nil && st.Canary == want.version {
		return fmt.Sprintf("%s is a canary at %d %% (rollout %s; see hotmod rollout status %s)", ref, st.Percent, st.Policy, want.module)
	}
	return ref + " is active"
}

func standby(ref, module string) string {
	return fmt.Sprintf("%s waits Standby until hotmod promote %s", ref, module)
}
