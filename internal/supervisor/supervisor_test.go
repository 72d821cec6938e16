package supervisor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	first, max := 250*time.Millisecond, 2*time.Second
	want := []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second}
	for i, w := range want {
		if got := Backoff(i+1, first, max); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestRing(t *testing.T) {
	r := newRing(3)
	for i := 1; i <= 5; i++ {
		r.add(strconv.Itoa(i))
	}
	if got := strings.Join(r.lines(), ","); got != "3,4,5" {
		t.Errorf("lines = %s, want 3,4,5", got)
	}
}

// TestHelperWorker is the worker the tests below supervise: it answers
// GET / with its pid, POST /die with a crash, and retires on RetireSignal.
func TestHelperWorker(t *testing.T) {
	if !IsWorker() {
		t.Skip("run by the supervisor tests")
	}
	w, err := OpenWorker()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, RetireSignal)
	var h Handover
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(rw http.ResponseWriter, _ *http.Request) { fmt.Fprint(rw, os.Getpid()) })
	mux.HandleFunc("POST /die", func(http.ResponseWriter, *http.Request) {
		fmt.Fprintln(os.Stderr, "panic: told to die")
		os.Exit(2)
	})
	srv := &http.Server{Handler: h.Handler(mux), ConnState: h.ConnState}
	go srv.Serve(w.Listener())
	_ = w.Ready()
	if sig := <-sigs; sig == RetireSignal {
		h.Retire(context.Background(), w.Listener())
	}
	_ = srv.Shutdown(context.Background())
	os.Exit(0)
}

type harness struct {
	url    string
	sigs   chan os.Signal
	sup    *Supervisor
	done   chan error
	mu     sync.Mutex
	deaths []Death
}

func supervise(t *testing.T) *harness {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	h := &harness{url: "http://" + ln.Addr().String(), sigs: make(chan os.Signal, 2), done: make(chan error, 1)}
	h.sup, err = New(Config{
		Listener: ln, Args: []string{"-test.run=^TestHelperWorker$"}, Stderr: io.Discard,
		OnDeath: func(d Death) { h.mu.Lock(); h.deaths = append(h.deaths, d); h.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { h.done <- h.sup.Run(h.sigs) }()
	t.Cleanup(func() {
		h.sigs <- syscall.SIGTERM
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("the supervisor did not stop within 30s")
		}
	})
	return h
}

// pid asks the worker for its pid, waiting in the backlog if need be.
func (h *harness) pid(t *testing.T) int {
	resp, err := http.Get(h.url + "/")
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, _ := strconv.Atoi(string(b))
	return n
}

// TestRestartAfterDeath: a worker that dies is reported with its last
// output and replaced; the next call waits in the backlog and is answered
// by the new worker.
func TestRestartAfterDeath(t *testing.T) {
	h := supervise(t)
	first := h.pid(t)
	if _, err := http.Post(h.url+"/die", "", nil); err == nil {
		t.Fatalf("a request that kills the worker got an answer")
	}
	died := time.Now()
	second := h.pid(t)
	gap := time.Since(died)
	t.Logf("restart gap (death → first answer, a worker that starts at once): %v", gap)
	if second == first || second == 0 {
		t.Fatalf("pid %d after the death of %d", second, first)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.deaths) != 1 || h.deaths[0].PID != first || h.deaths[0].Status != "exit status 2" ||
		!strings.Contains(strings.Join(h.deaths[0].Tail, "\n"), "panic: told to die") {
		t.Errorf("deaths: %+v", h.deaths)
	}
}

// TestRecycle: a recycle starts a new worker and retires the old one, and
// callers meanwhile get answers.
func TestRecycle(t *testing.T) {
	h := supervise(t)
	first := h.pid(t)
	h.sup.Recycle("test")
	deadline := time.Now().Add(30 * time.Second)
	for h.pid(t) == first {
		if time.Now().After(deadline) {
			t.Fatal("no new worker within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h.sup.CurrentPID() == first {
		t.Errorf("CurrentPID is still the old worker")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.deaths) != 0 {
		t.Errorf("a recycle is not a death: %+v", h.deaths)
	}
}

// BenchmarkRestart measures worker death → first answer from its
// replacement (a small worker: the test binary).
func BenchmarkRestart(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	h := &harness{url: "http://" + ln.Addr().String(), sigs: make(chan os.Signal, 2), done: make(chan error, 1)}
	h.sup, err = New(Config{Listener: ln, Args: []string{"-test.run=^TestHelperWorker$"}, Stderr: io.Discard,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FirstBackoff: time.Nanosecond, MaxBackoff: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	go func() { h.done <- h.sup.Run(h.sigs) }()
	get := func() {
		resp, err := http.Get(h.url + "/")
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	get()
	for b.Loop() {
		_, _ = http.Post(h.url+"/die", "", nil)
		get()
	}
	h.sigs <- syscall.SIGTERM
	<-h.done
}
