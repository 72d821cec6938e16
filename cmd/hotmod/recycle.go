package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/supervisor"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// rssCheckInterval is how often a worker with --recycle-rss reads its RSS.
const rssCheckInterval = 10 * time.Second

// recycleFlags are serve's policies for replacing the worker.
type recycleFlags struct {
	nativeVersions int
	rss            int64
}

func (r *recycleFlags) add(fl *pflag.FlagSet) {
	fl.IntVar(&r.nativeVersions, "recycle-native-versions", 0, "replace the worker once this many native module versions were loaded after its first load (they can never be unloaded; 0: never)")
	fl.Int64Var(&r.rss, "recycle-rss", 0, "replace the worker when its resident memory exceeds this many bytes (checked every 10s; ignored when a fresh worker is already over it; 0: never)")
}

// watch starts the worker's recycle policies; they ask the supervisor
// once, then stop.
func (r recycleFlags) watch(ctx context.Context, reg *hotmod.Registry, wk *supervisor.Worker, logger *slog.Logger) {
	ask := func(why string) {
		logger.Info("asking for a new worker", "why", why)
		if err := wk.RequestRecycle(why); err != nil {
			logger.Warn("cannot ask for a new worker", "error", err)
		}
	}
	if n := r.nativeVersions; n > 0 {
		events, cancel := reg.Subscribe()
		go func() {
			defer cancel()
			loaded := map[string]bool{} // module@version: the same bytes loaded again map nothing new
			for {
				select {
				case <-ctx.Done():
					return
				case e, ok := <-events:
					if !ok {
						return
					}
					if e.Transport == hotmod.Native && e.To == hotmod.StateLoaded {
						if loaded[e.Module+"@"+e.Version] = true; len(loaded) >= n {
							ask(strconv.Itoa(len(loaded)) + " native versions loaded since the worker's first load")
							return
						}
					}
				}
			}
		}()
	}
	if limit := r.rss; limit > 0 {
		if rss := residentBytes(os.Getpid()); rss > limit {
			// A new worker would be over it too: recycling could not help.
			logger.Warn("--recycle-rss is below what the worker holds after its first load; not recycling for it",
				"rss", rss, "limit", limit)
			return
		}
		go func() {
			tick := time.NewTicker(rssCheckInterval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if rss := residentBytes(os.Getpid()); rss > limit {
						ask("resident memory " + strconv.FormatInt(rss, 10) + " bytes, over --recycle-rss " + strconv.FormatInt(limit, 10))
						return
					}
				}
			}
		}()
	}
}

// residentBytes is a process's resident set size (VmRSS), or 0.
func residentBytes(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func recycleCmd() *cobra.Command {
	var addr clientFlags
	cmd := &cobra.Command{
		Use:   "recycle",
		Short: "Replace the daemon's worker without failing a call",
		Long: `recycle asks the daemon for a new worker process (POST /v1/recycle): it
starts on the same socket and loads the directory; once it is ready, the old
worker stops accepting, finishes its calls and exits. Native versions can
never be unloaded from a process; this gives their memory back.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := commandClient(cmd, addr, requestTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			status, body, err := c.do(ctx, http.MethodPost, "/v1/recycle", []byte("{}"))
			if err != nil {
				return err
			}
			if status != http.StatusAccepted {
				return c.apiError(status, body)
			}
			return writeIndented(cmd.OutOrStdout(), body)
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}
