package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/hotmod/hotmod/internal/journal"
	"github.com/hotmod/hotmod/internal/proctree"
	"github.com/hotmod/hotmod/internal/supervisor"
)

// supervise is `hotmod serve` itself: it holds the listening socket and the
// state directory, and keeps a worker (this program again, same arguments)
// serving on the socket; see internal/supervisor. A worker that dies is
// replaced, after the crash journal named and quarantined what killed it.
func supervise(f serveFlags, stderr io.Writer) error {
	logger, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	dir, stateDir, err := serveDirs(f)
	if err != nil {
		return err
	}
	// Bad flags are refused here, once, before any worker starts (the
	// worker logs what they set up).
	if _, err := registryOptions(f, dir, slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating the module directory: %w", err)
		}
		logger.Info("created the module directory", "dir", dir)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("--dir %s is not a directory", dir)
	}
	sd, unlock, err := lockStateDir(dir, stateDir)
	if err != nil {
		return err
	}
	defer unlock()
	sec, err := f.sec.prepare(f.listen, sd.Path(), logger)
	if err != nil {
		return err
	}

	// Signals before the socket, so none is lost. SIGHUP recycles the worker.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("cannot listen on %s: the address is in use (another `hotmod serve`?): stop it, or pick another address with --listen (port 0 picks a free one)", f.listen)
		}
		return fmt.Errorf("cannot listen on %s: %w", f.listen, err)
	}
	defer ln.Close()

	sup, err := supervisor.New(supervisor.Config{
		Listener: ln,
		Args:     os.Args[1:],
		Logger:   logger,
		Stderr:   stderr,
		OnDeath: func(d supervisor.Death) {
			// What the dead worker's process modules started, even in
			// sessions of their own, goes with it.
			if n := proctree.Sweep(d.PID); n > 0 {
				logger.Warn("stopped processes the dead worker's process modules left running", "count", n, "worker", d.PID)
			}
			findings, err := journal.Recover(sd.Path(), d.PID, &journal.Crash{Who: "the worker", Died: d.Died, Status: d.Status, Tail: d.Tail})
			if err != nil {
				logger.Error("reading the crash journal", "error", err)
			}
			for _, fd := range findings {
				journal.Log(logger.Error, fd)
			}
		},
	})
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	defer sec.publish(addr)()
	logger.Info("listening", "addr", addr, "url", sec.scheme()+"://"+addr, "state_dir", sd.Path())
	go func() {
		for range hup {
			sup.Recycle("SIGHUP")
		}
	}()
	if err := sup.Run(sigs); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}
