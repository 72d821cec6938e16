package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/audit"
	"github.com/hotmod/hotmod/internal/server"
	"github.com/hotmod/hotmod/internal/supervisor"
	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/spf13/cobra"
)

const defaultListen = "127.0.0.1:7700"

type serveFlags struct {
	sec                    *securityFlags
	dir, listen, cacheDir  string
	wasmGrants             []string
	timeout                time.Duration
	concurrency, breaker   int
	logFormat, logLevel    string
	drainTimeout, shutdown time.Duration
	intake                 *intakeFlags
	trust                  *trustFlags
	stateDir               string
	recycle                recycleFlags
	contain                *containFlags // contain.go
	rollout                *rolloutFlags
	observe                *observeFlags
	wasm                   *wasmFlags // wasmrt.go
}

func serveCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve [--dir DIR] [--listen ADDR]",
		Short: "Serve the modules in a directory over HTTP",
		Long: `serve loads every artifact in --dir, keeps the registry in step with the
directory (new or changed files are loaded, removed ones unloaded) and
answers the HTTP API on --listen:

  POST /v1/invoke/{module}/{method}   params as a JSON object
  GET  /v1/modules, /v1/modules/{name}, /v1/events, /metrics, /healthz, /readyz

The daemon is two processes: a supervisor that holds the socket and the
state directory, and a worker that loads the modules and serves. A native
module that kills the worker (a panic in a goroutine of its own, os.Exit)
costs the calls in flight: the supervisor starts a new worker, and the
artifact that ended the old one is quarantined (hotmod quarantine ls).
hotmod recycle (or SIGHUP) replaces the worker without failing a call,
giving back the memory of native versions that cannot be unloaded.

Every endpoint but /healthz needs a bearer token (see hotmod token). On
first start serve makes an admin token in --state-dir and publishes it for
the user running it, so the hotmod CLI on this machine needs no set-up.
Plain HTTP is refused on an address other machines reach: give --tls-cert
and --tls-key (and --client-ca for client certificates), or --insecure.

Publish an artifact by renaming it into the directory (hotmod build does).
Logs go to stderr. SIGINT or SIGTERM stops the daemon: calls in flight
finish, then modules are unloaded; a second signal stops it at once.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if supervisor.IsWorker() {
				return serve(f, cmd.ErrOrStderr())
			}
			return supervise(f, cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	f.sec = addSecurityFlags(fl)
	fl.StringVar(&f.dir, "dir", "./plugins", "directory of artifacts to serve (created if missing)")
	fl.StringVar(&f.listen, "listen", defaultListen, "address to listen on; port 0 picks a free port (see the \"listening\" log line)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "least level logged: debug, info, warn or error")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "where private copies of loaded artifacts are kept (default: hotmod under the user cache directory)")
	fl.StringArrayVar(&f.wasmGrants, "wasm-grant", nil, "grant WebAssembly modules a capability they ask for: env=NAME[,NAME], fs=DIR or fs-ro=DIR, or deny the wall clock they get by default (-clock), optionally for one module (pricing:fs-ro=/srv); repeatable")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "a call's deadline; past it the caller gets timeout (a native call runs on, and a version with 5 such calls still running is quarantined)")
	fl.IntVar(&f.concurrency, "concurrency", 64, "calls one module may run at once; more get overloaded")
	fl.IntVar(&f.breaker, "breaker-failures", 3, "consecutive failures of a method that open its circuit (its calls then get circuit_open; one probe after 5s)")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "how long a replaced or removed version waits for its calls in flight")
	f.intake = addIntakeFlags(fl)
	f.trust = addTrustFlags(fl)
	f.rollout = addRolloutFlags(fl)
	f.observe = addObserveFlags(fl)
	f.wasm = addWasmFlags(fl)
	fl.DurationVar(&f.shutdown, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long to wait for HTTP requests in flight, then again for modules to drain")
	fl.StringVar(&f.stateDir, "state-dir", "", "where the daemon keeps state that outlives it: the crash journal, the quarantine list, the lock (default DIR/.hotmod)")
	f.recycle.add(fl)
	f.contain = addContainFlags(fl)
	return cmd
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		opts.ReplaceAttr = durationsInSeconds
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: use text or json", format)
}

// serve is the worker: it loads the directory's modules and serves the
// API on the listener the supervisor passed (see supervise).
func serve(f serveFlags, stderr io.Writer) error {
	logger, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	logger = logger.With("worker", os.Getpid())
	dir, stateDir, err := serveDirs(f)
	if err != nil {
		return err
	}
	sec, err := f.sec.prepare(f.listen, stateDir, logger)
	if err != nil {
		return err
	}
	wk, err := supervisor.OpenWorker()
	if err != nil {
		return err
	}
	ln := wk.Listener()
	defer ln.Close()
	if ln, err = sec.listen(ln, wk.AcceptWhenReady()); err != nil {
		return err
	}

	// Signals first, so one that arrives while the directory is scanned is
	// not lost; after the first, signal.Stop restores the default, so a
	// second one ends the process at once. RetireSignal: a new worker
	// serves now (see hotmod recycle).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, supervisor.RetireSignal)
	defer signal.Stop(sigs)

	opts, err := registryOptions(f, dir, logger)
	if err != nil {
		return err
	}
	opts = append(opts, hotmod.WithStateDir(stateDir))
	defer sec.close()
	obs, err := newObservability(f.observe, logger) // observe.go: metrics, traces
	if err != nil {
		return err
	}
	reg := hotmod.New(append(opts, obs.opts...)...)
	defer obs.watch(reg)()
	events, _ := reg.Subscribe() // closed by reg.Close
	follower := audit.Follow(events, logger)
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()

	var ready atomic.Bool
	var hand supervisor.Handover
	daemon := server.Daemon{
		Ready: func() (bool, string) {
			if !ready.Load() {
				return false, "loading the modules of " + dir
			}
			for _, w := range reg.WatchStatus() {
				if !w.Watching {
					return false, fmt.Sprintf("the module directory %s is gone since %s (%s); the modules loaded from it keep serving, and it is picked up again when it is back", w.Dir, w.Since.Format(time.RFC3339), w.Reason)
				}
			}
			return true, ""
		},
		Recycle: wk.RequestRecycle,
	}
	srv := &http.Server{
		Handler: hand.Handler(obs.handler(server.New(reg, logger,
			append(append(sec.options(), server.WithDaemon(reg, daemon)), obs.routes...)...))),
		ConnState: hand.ConnState,
		ErrorLog:  slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	sec.configure(srv)
	served := make(chan error, 1)
	addr := ln.Addr().String()
	accept := func() {
		go func() { served <- srv.Serve(ln) }()
		sec.serveUnix(srv, served)
		logger.Debug("worker serving", "addr", addr)
	}
	// The first scan runs while the API already answers (calls to modules
	// not loaded yet get unknown_module, /readyz says 503) — unless this
	// worker replaces one that still serves everything.
	if !wk.AcceptWhenReady() {
		accept()
	}
	watched := make(chan error, 1)
	go func() {
		start := time.Now()
		if err := reg.Watch(watchCtx, dir); err != nil {
			watched <- err
			return
		}
		ready.Store(true)
		logger.Info("watching", "dir", dir, "first_load", time.Since(start).Round(time.Millisecond))
		if wk.AcceptWhenReady() {
			accept()
		}
		if err := wk.Ready(); err != nil {
			logger.Warn("cannot tell the supervisor this worker is ready", "error", err)
		}
		f.recycle.watch(watchCtx, reg, wk, logger)
	}()

	var failure error
	select {
	case sig := <-sigs:
		signal.Stop(sigs)
		if sig == supervisor.RetireSignal {
			logger.Info("retiring: a new worker serves; finishing the calls in flight", "timeout", f.shutdown)
			ctx, cancel := context.WithTimeout(context.Background(), f.shutdown)
			hand.Retire(ctx, ln)
			cancel()
		} else {
			logger.Info("shutting down", "signal", sig.String(), "timeout", f.shutdown)
		}
	case err := <-watched:
		failure = fmt.Errorf("watching %s: %w", dir, err)
		logger.Error("shutting down", "error", err)
	case err := <-served:
		failure = fmt.Errorf("serving HTTP on %s: %w", addr, err)
		logger.Error("shutting down", "error", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), f.shutdown)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("HTTP requests still running at the shutdown timeout; closing their connections", "error", err)
		_ = srv.Close()
	}
	stopWatch()
	follower.As(audit.Shutdown)
	ctx, cancel = context.WithTimeout(context.Background(), f.shutdown)
	defer cancel()
	if err := reg.Close(ctx); err != nil {
		// The daemon still stopped as asked; the log says what was cut short.
		logger.Warn("modules did not all drain in time", "error", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	follower.Wait()
	if failure != nil {
		return failure
	}
	logger.Info("worker stopped")
	return nil
}

// registryOptions are the registry's options from the flags; the supervisor
// calls it too (with a logger that discards), to refuse bad flags before
// any worker starts.
func registryOptions(f serveFlags, dir string, logger *slog.Logger) ([]hotmod.Option, error) {
	opts := []hotmod.Option{hotmod.WithLogger(logger), hotmod.WithDrainTimeout(f.drainTimeout),
		hotmod.WithGuards(hotmod.Guards{Timeout: f.timeout, Concurrency: f.concurrency, BreakerFailures: f.breaker})}
	if f.cacheDir != "" {
		opts = append(opts, hotmod.WithCacheDir(f.cacheDir))
	}
	if len(f.wasmGrants) > 0 {
		if err := wasm.CheckGrants(f.wasmGrants); err != nil {
			return nil, usagef("--wasm-grant: %v", err)
		}
		opts = append(opts, hotmod.WithWasmGrants(f.wasmGrants...))
	}
	intake, err := f.intake.options(logger)
	if err != nil {
		return nil, err
	}
	contain, err := f.contain.options() // contain.go
	if err != nil {
		return nil, err
	}
	opts = append(opts, contain...)
	rollout, err := f.rollout.options() // rollout.go
	if err != nil {
		return nil, err
	}
	opts = append(opts, rollout...)
	wasmOpts, err := f.wasm.options(logger) // wasmrt.go
	if err != nil {
		return nil, err
	}
	opts = append(opts, wasmOpts...)
	trust, err := f.trust.options(logger, dir)
	if err != nil {
		return nil, err
	}
	return append(append(opts, intake...), trust...), nil
}

// serveDirs are the module directory and the state directory, absolute.
func serveDirs(f serveFlags) (dir, stateDir string, err error) {
	if dir, err = filepath.Abs(f.dir); err != nil {
		return "", "", err
	}
	stateDir = f.stateDir
	if stateDir == "" {
		stateDir = filepath.Join(dir, ".hotmod")
	}
	stateDir, err = filepath.Abs(stateDir)
	return dir, stateDir, err
}
