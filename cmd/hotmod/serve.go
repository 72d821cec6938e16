package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/server"
	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/spf13/cobra"
)

const defaultListen = "127.0.0.1:7700"

type serveFlags struct {
	dir, listen, cacheDir  string
	wasmGrants             []string
	timeout                time.Duration
	concurrency, breaker   int
	logFormat, logLevel    string
	drainTimeout, shutdown time.Duration
	observe                *observeFlags
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
  GET  /v1/modules, /v1/modules/{name}, /v1/events, /metrics, /healthz

Publish an artifact by renaming it into the directory (hotmod build does).
Logs go to stderr. SIGINT or SIGTERM stops the daemon: calls in flight
finish, then modules are unloaded; a second signal stops it at once.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(f, cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "dir", "./plugins", "directory of artifacts to serve (created if missing)")
	fl.StringVar(&f.listen, "listen", defaultListen, "address to listen on; port 0 picks a free port (see the \"listening\" log line)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "least level logged: debug, info, warn or error")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "where private copies of loaded artifacts are kept (default: hotmod under the user cache directory)")
	fl.StringArrayVar(&f.wasmGrants, "wasm-grant", nil, "grant WebAssembly modules a capability they ask for: clock, env=NAME[,NAME], fs=DIR or fs-ro=DIR, optionally for one module (pricing:fs-ro=/srv); repeatable")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "a call's deadline; past it the caller gets timeout (a native call runs on, and a version with 5 such calls still running is quarantined)")
	fl.IntVar(&f.concurrency, "concurrency", 64, "calls one module may run at once; more get overloaded")
	fl.IntVar(&f.breaker, "breaker-failures", 3, "consecutive failures that open a version's circuit (calls then get circuit_open; one probe after 5s)")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "how long a replaced or removed version waits for its calls in flight")
	f.observe = addObserveFlags(fl)
	fl.DurationVar(&f.shutdown, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long to wait for HTTP requests in flight, then again for modules to drain")
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

func serve(f serveFlags, stderr io.Writer) error {
	logger, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating the module directory: %w", err)
		}
		logger.Info("created the module directory", "dir", dir)
	}

	// Signals first, so one that arrives while the directory is scanned is
	// not lost; after the first, signal.Stop restores the default, so a
	// second one ends the process at once.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("cannot listen on %s: the address is in use (another `hotmod serve`?): stop it, or pick another address with --listen (port 0 picks a free one)", f.listen)
		}
		return fmt.Errorf("cannot listen on %s: %w", f.listen, err)
	}
	defer ln.Close()

	opts := []hotmod.Option{hotmod.WithLogger(logger), hotmod.WithDrainTimeout(f.drainTimeout),
		hotmod.WithGuards(hotmod.Guards{Timeout: f.timeout, Concurrency: f.concurrency, BreakerFailures: f.breaker})}
	if f.cacheDir != "" {
		opts = append(opts, hotmod.WithCacheDir(f.cacheDir))
	}
	if len(f.wasmGrants) > 0 {
		if err := wasm.CheckGrants(f.wasmGrants); err != nil {
			return usagef("--wasm-grant: %v", err)
		}
		opts = append(opts, hotmod.WithWasmGrants(f.wasmGrants...))
	}
	obs, err := newObservability(f.observe, logger)
	if err != nil {
		return err
	}
	reg := hotmod.New(append(opts, obs.opts...)...)
	defer obs.watch(reg)()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	if err := reg.Watch(watchCtx, dir); err != nil {
		_ = reg.Close(context.Background())
		return err
	}
	logger.Info("watching", "dir", dir)

	srv := &http.Server{
		Handler:           obs.handler(server.New(reg, logger, obs.routes...)),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	logger.Info("listening", "addr", addr, "url", "http://"+addr)

	var failure error
	select {
	case sig := <-sigs:
		signal.Stop(sigs)
		logger.Info("shutting down", "signal", sig.String(), "timeout", f.shutdown)
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
	ctx, cancel = context.WithTimeout(context.Background(), f.shutdown)
	defer cancel()
	if err := reg.Close(ctx); err != nil {
		// The daemon still stopped as asked; the log says what was cut short.
		logger.Warn("modules did not all drain in time", "error", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if failure != nil {
		return failure
	}
	logger.Info("stopped")
	return nil
}
