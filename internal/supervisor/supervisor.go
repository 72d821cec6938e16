// Package supervisor runs a daemon as two kinds of process: a small
// supervisor that owns what must outlive a crash (the listening socket, the
// state directory and its lock) and a worker — a re-execution of the same
// program with the same arguments — that does the work and serves on the
// listener it inherits.
//
// Native plugins share their host's address space: a goroutine a plugin
// starts can panic, a method can call os.Exit, and nothing inside that
// process can stop it. The supervisor survives it: when the worker dies it
// is told why (OnDeath, with the last lines of the worker's stderr) and
// starts another one, with a bounded backoff. Connections made meanwhile
// wait in the kernel's listen backlog; only the calls running on the dead
// worker fail.
//
// The same mechanism replaces a healthy worker without failing a call
// (Recycle): a new worker starts on the same socket, and once it reports
// ready the old one stops accepting, finishes what it serves and exits.
//
// The protocol between the two is small: the worker is started with
// WorkerEnv=1 (or =handover: accept only once ready) in its environment, the listener as file descriptor 3 and the
// write end of a report pipe as descriptor 4, on which it writes one line
// per message ("ready", "recycle <reason>"). It stops on SIGTERM (shutdown)
// and on RetireSignal (handover: stop accepting, drain, exit).
package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// WorkerEnv marks a worker process; see the package documentation. Its
// value says when the worker starts accepting connections.
const WorkerEnv = "HOTMOD_WORKER"

const (
	workerServeAtOnce = "1"        // a first start or a restart
	workerHandover    = "handover" // a recycle: the old worker serves until this one is ready
)

// RetireSignal tells a worker that a replacement serves now: stop accepting
// connections, finish the requests in flight and exit.
const RetireSignal = syscall.SIGUSR1

// File descriptors a worker inherits.
const (
	listenerFD = 3
	reportFD   = 4
)

// Defaults for Config's zero fields.
const (
	DefaultTailLines    = 200              // lines of worker stderr kept for crash reports
	DefaultMaxBackoff   = 10 * time.Second // the longest wait before a restart
	DefaultFirstBackoff = 250 * time.Millisecond
	DefaultHealthyAfter = 30 * time.Second // a worker up this long resets the backoff
	DefaultStopTimeout  = 70 * time.Second // SIGTERM → SIGKILL for a worker that does not stop
	// OutputGrace bounds how long the supervisor waits, after a worker
	// exited, for the rest of its stderr (a grandchild may hold the pipe).
	OutputGrace = 500 * time.Millisecond
)

// Config says how to run workers.
type Config struct {
	// Listener is the socket workers serve on (a *net.TCPListener or
	// *net.UnixListener). The supervisor never accepts on it.
	Listener net.Listener
	// Args are the worker's arguments (os.Args[1:], usually); Env is added
	// to the supervisor's own environment.
	Args []string
	Env  []string
	// Logger gets the supervisor's own log lines; Stderr gets every line
	// workers write to their stderr, unchanged.
	Logger *slog.Logger
	Stderr io.Writer
	// TailLines of each worker's stderr are kept for its Death.
	TailLines int
	// FirstBackoff is the wait before the second restart in a row (the
	// first is immediate); it doubles up to MaxBackoff, and a worker that
	// stayed up HealthyAfter resets it.
	FirstBackoff, MaxBackoff, HealthyAfter time.Duration
	// StopTimeout is how long a stopping worker may take before it is
	// killed.
	StopTimeout time.Duration
	// OnDeath, if set, is called after a worker died unasked, before the
	// next one starts, and after a worker asked to stop exited with a
	// failure (it runs on the supervisor's goroutine: keep it short).
	OnDeath func(Death)
}

// Death is a worker that exited without being asked to.
type Death struct {
	PID     int
	Started time.Time
	Died    time.Time
	Status  string   // "exit status 2", "signal: killed"
	Tail    []string // the last lines it wrote to stderr, oldest first
}

// Supervisor runs workers; see the package documentation.
type Supervisor struct {
	cfg  Config
	file *os.File // the listener's descriptor, passed to every worker
	exe  string

	recycle chan string
	mu      sync.Mutex
	current *worker // the worker that serves (nil between a death and a restart)
}

// New prepares a supervisor; Run starts it.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.TailLines <= 0 {
		cfg.TailLines = DefaultTailLines
	}
	if cfg.FirstBackoff <= 0 {
		cfg.FirstBackoff = DefaultFirstBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.HealthyAfter <= 0 {
		cfg.HealthyAfter = DefaultHealthyAfter
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	fl, ok := cfg.Listener.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("supervisor: a %T cannot be passed to a worker", cfg.Listener)
	}
	f, err := fl.File()
	if err != nil {
		return nil, fmt.Errorf("supervisor: the listener's descriptor: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("supervisor: cannot find its own executable to start a worker: %w", err)
	}
	return &Supervisor{cfg: cfg, file: f, exe: exe, recycle: make(chan string, 1)}, nil
}

// Recycle asks for the worker to be replaced (see the package
// documentation). A request while one is under way is dropped.
func (s *Supervisor) Recycle(reason string) {
	select {
	case s.recycle <- reason:
	default:
	}
}

// Backoff is the wait before restart number n in a row (n ≥ 1): none for
// the first, then first, doubling, up to max.
func Backoff(n int, first, max time.Duration) time.Duration {
	if n <= 1 {
		return 0
	}
	d := first
	for i := 2; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// Run starts a worker and keeps one running until the first signal on sigs
// arrives: that signal is forwarded to the workers as SIGTERM, and Run
// returns once they exited (a second signal kills them at once). A worker
// that dies is reported to OnDeath and replaced.
func (s *Supervisor) Run(sigs <-chan os.Signal) error {
	defer s.file.Close()
	events := make(chan workerEvent, 16)
	var (
		current, next *worker
		retiring      = map[*worker]bool{}
		deaths        int // in a row
		restart       <-chan time.Time
		stopping      bool
		recycleWhy    string
	)
	start := func(why string, handover bool) *worker {
		w, err := s.startWorker(events, handover)
		if err != nil {
			s.cfg.Logger.Error("cannot start a worker", "error", err)
			return nil
		}
		s.cfg.Logger.Info("worker started", "pid", w.pid, "why", why)
		return w
	}
	scheduleRestart := func() {
		deaths++
		wait := Backoff(deaths, s.cfg.FirstBackoff, s.cfg.MaxBackoff)
		if wait > 0 {
			s.cfg.Logger.Warn("restarting the worker after a backoff", "wait", wait, "deaths_in_a_row", deaths)
		}
		restart = time.After(wait)
	}
	setCurrent := func(w *worker) {
		current = w
		s.mu.Lock()
		s.current = w
		s.mu.Unlock()
	}
	setCurrent(start("start", false))
	if current == nil {
		return errors.New("the first worker did not start")
	}
	for {
		if stopping && current == nil && next == nil && len(retiring) == 0 {
			return nil
		}
		select {
		case <-restart:
			restart = nil
			if !stopping && current == nil {
				setCurrent(start("restart", false))
				if current == nil {
					scheduleRestart()
				}
			}
		case why := <-s.recycle:
			if stopping || next != nil || current == nil {
				continue
			}
			recycleWhy = why
			next = start("recycle: "+why, true)
		case ev := <-events:
			w := ev.w
			switch {
			case ev.ready:
				w.readyAt = time.Now()
				s.cfg.Logger.Info("worker ready", "pid", w.pid, "took", w.readyAt.Sub(w.started).Round(time.Millisecond))
				if w == next && !stopping {
					old := current
					setCurrent(next)
					next = nil
					if old != nil {
						retiring[old] = true
						_ = old.cmd.Process.Signal(RetireSignal)
						s.cfg.Logger.Info("worker recycled: the old one stops accepting and drains", "old", old.pid, "new", w.pid, "why", recycleWhy)
					}
				}
			case ev.recycle != "":
				if w == current {
					s.Recycle(ev.recycle)
				}
			case ev.exited:
				d := Death{PID: w.pid, Started: w.started, Died: w.died, Status: w.status, Tail: w.tail.lines()}
				expected := stopping || retiring[w]
				delete(retiring, w)
				if expected {
					s.cfg.Logger.Info("worker exited", "pid", w.pid, "status", w.status)
					if w.status != "exit status 0" && s.cfg.OnDeath != nil {
						s.cfg.OnDeath(d) // it crashed while stopping, or was killed at the stop timeout
					}
					if w == current {
						setCurrent(nil)
					}
					if w == next {
						next = nil
					}
					continue
				}
				if d.Died.Sub(w.started) >= s.cfg.HealthyAfter {
					deaths = 0
				}
				s.cfg.Logger.Error("worker died", "pid", w.pid, "status", w.status, "uptime", d.Died.Sub(w.started).Round(time.Millisecond))
				if s.cfg.OnDeath != nil {
					s.cfg.OnDeath(d)
				}
				switch w {
				case next: // the replacement died: the old one keeps serving
					next = nil
					s.cfg.Logger.Warn("recycle failed: the new worker died before it was ready; the old one keeps serving", "pid", w.pid)
				case current:
					setCurrent(nil)
					if next != nil { // a replacement is starting: it will serve
						setCurrent(next)
						next = nil
					} else {
						scheduleRestart()
					}
				}
			}
		case sig := <-sigs:
			if stopping {
				s.cfg.Logger.Warn("second signal: killing the workers", "signal", sig.String())
				for _, w := range []*worker{current, next} {
					if w != nil {
						_ = w.cmd.Process.Kill()
					}
				}
				for w := range retiring {
					_ = w.cmd.Process.Kill()
				}
				return fmt.Errorf("stopped by a second %v", sig)
			}
			stopping = true
			restart = nil
			s.cfg.Logger.Info("shutting down", "signal", sig.String())
			for _, w := range []*worker{current, next} {
				if w != nil {
					w.stop(s.cfg.StopTimeout)
				}
			}
			for w := range retiring {
				w.stop(s.cfg.StopTimeout)
			}
		}
	}
}

// workerEvent is what a worker's goroutines tell Run.
type workerEvent struct {
	w       *worker
	ready   bool
	recycle string
	exited  bool
}

type worker struct {
	cmd     *exec.Cmd
	pid     int
	started time.Time
	readyAt time.Time
	tail    *ring
	status  string    // once exited
	died    time.Time // when Wait returned
}

// startWorker starts a worker. A worker started for a handover accepts
// connections only once it is ready (the old one serves meanwhile); any
// other accepts at once, so that calls get an answer while it loads.
func (s *Supervisor) startWorker(events chan<- workerEvent, handover bool) (*worker, error) {
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		reportR.Close()
		reportW.Close()
		return nil, err
	}
	cmd := exec.Command(s.exe, s.cfg.Args...)
	mode := workerServeAtOnce
	if handover {
		mode = workerHandover
	}
	cmd.Env = append(append(os.Environ(), s.cfg.Env...), WorkerEnv+"="+mode)
	cmd.Stdin = nil
	cmd.Stdout = os.Stdout
	cmd.Stderr = errW
	cmd.ExtraFiles = []*os.File{s.file, reportW} // fds 3 and 4
	cmd.SysProcAttr = sysProcAttr()
	err = startCmd(cmd)
	reportW.Close()
	errW.Close()
	if err != nil {
		reportR.Close()
		errR.Close()
		return nil, err
	}
	w := &worker{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), tail: newRing(s.cfg.TailLines)}
	outDone := make(chan struct{})
	go func() { // stderr: passed on, and the tail kept
		defer close(outDone)
		defer errR.Close()
		r := bufio.NewReaderSize(errR, 64<<10)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				w.tail.add(strings.TrimRight(line, "\n"))
				_, _ = io.WriteString(s.cfg.Stderr, line)
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { // reports
		defer reportR.Close()
		sc := bufio.NewScanner(reportR)
		for sc.Scan() {
			msg, arg, _ := strings.Cut(sc.Text(), " ")
			switch msg {
			case "ready":
				events <- workerEvent{w: w, ready: true}
			case "recycle":
				events <- workerEvent{w: w, recycle: orDefault(arg, "asked by the worker")}
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		w.died = time.Now()
		w.status = "exit status 0"
		if err != nil {
			w.status = err.Error()
		}
		select { // the rest of its output, unless a grandchild holds the pipe
		case <-outDone:
		case <-time.After(OutputGrace):
		}
		events <- workerEvent{w: w, exited: true}
	}()
	return w, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// stop asks w to stop (SIGTERM) and kills it if it is still running after
// timeout.
func (w *worker) stop(timeout time.Duration) {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	p := w.cmd.Process
	time.AfterFunc(timeout, func() { _ = p.Kill() }) // harmless once it exited
}

// CurrentPID is the process id of the worker that serves, or 0.
func (s *Supervisor) CurrentPID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		return 0
	}
	return s.current.pid
}

// ring keeps the last n lines.
type ring struct {
	mu    sync.Mutex
	buf   []string
	next  int
	count int
}

func newRing(n int) *ring { return &ring{buf: make([]string, n)} }

func (r *ring) add(line string) {
	r.mu.Lock()
	r.buf[r.next] = line
	r.next = (r.next + 1) % len(r.buf)
	r.count = min(r.count+1, len(r.buf))
	r.mu.Unlock()
}

func (r *ring) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, r.count)
	for i := len(r.buf) - r.count; i < len(r.buf); i++ {
		out = append(out, r.buf[(r.next+i)%len(r.buf)])
	}
	return out
}
