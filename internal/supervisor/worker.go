package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// IsWorker reports whether this process was started by a Supervisor.
func IsWorker() bool { return os.Getenv(WorkerEnv) != "" }

// Worker is the worker's side of the protocol.
type Worker struct {
	ln       net.Listener
	handover bool
	mu       sync.Mutex
	report   *os.File
}

// OpenWorker takes over what the supervisor passed: the listener and the
// report pipe. Processes the worker starts inherit neither, nor WorkerEnv.
func OpenWorker() (*Worker, error) {
	if !IsWorker() {
		return nil, errors.New("not started by a hotmod supervisor")
	}
	handover := os.Getenv(WorkerEnv) == workerHandover
	os.Unsetenv(WorkerEnv)
	syscall.CloseOnExec(listenerFD)
	syscall.CloseOnExec(reportFD)
	lf := os.NewFile(listenerFD, "listener")
	ln, err := net.FileListener(lf)
	lf.Close() // FileListener made its own copy
	if err != nil {
		return nil, fmt.Errorf("the listener from the supervisor (fd %d): %w", listenerFD, err)
	}
	return &Worker{ln: ln, handover: handover, report: os.NewFile(reportFD, "report")}, nil
}

// AcceptWhenReady reports whether this worker replaces one that still
// serves: it must not accept a connection before it is ready, or callers
// would find modules it has not loaded yet.
func (w *Worker) AcceptWhenReady() bool { return w.handover }

// Listener is the socket to serve on, shared with the supervisor and with
// any other worker.
func (w *Worker) Listener() net.Listener { return w.ln }

// Ready tells the supervisor this worker serves everything it was started
// to serve: during a recycle, the old worker is retired now.
func (w *Worker) Ready() error { return w.send("ready") }

// RequestRecycle asks the supervisor to replace this worker.
func (w *Worker) RequestRecycle(reason string) error { return w.send("recycle " + reason) }

func (w *Worker) send(msg string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.report.WriteString(msg + "\n"); err != nil {
		return fmt.Errorf("telling the supervisor %q: %w", msg, err)
	}
	return nil
}

// HandoverGrace bounds how long a retiring worker keeps serving the
// keep-alive connections it has, telling each client to close after its
// next answer, before it closes those still idle.
const HandoverGrace = 2 * time.Second

// Handover lets an HTTP server retire without failing a request: Handler
// and ConnState wrap the server's; Retire stops accepting, answers every
// further request on an open connection with "Connection: close" (so the
// client does not send another on it), and waits until the connections
// are gone or HandoverGrace passed. http.Server.Shutdown then does the
// rest. (Closing an idle keep-alive connection races with a client that
// is just sending on it; a connection that has answered "Connection:
// close" does not.)
type Handover struct {
	retiring atomic.Bool
	conns    atomic.Int64
}

// Handler wraps next.
func (h *Handover) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.retiring.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// ConnState is the server's ConnState hook: it counts open connections.
func (h *Handover) ConnState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		h.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		h.conns.Add(-1)
	}
}

// Retiring reports whether Retire was called.
func (h *Handover) Retiring() bool { return h.retiring.Load() }

// Retire closes ln and waits (bounded by HandoverGrace and ctx) for the
// open connections to close.
func (h *Handover) Retire(ctx context.Context, ln net.Listener) {
	h.retiring.Store(true)
	_ = ln.Close()
	ctx, cancel := context.WithTimeout(ctx, HandoverGrace)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for h.conns.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
