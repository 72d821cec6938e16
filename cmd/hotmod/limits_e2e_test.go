package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/auth"
)

// TestSlowBodies: 1,000 clients that send a request's headers and then
// its body a byte at a time neither stop /healthz answering within a
// second nor hold their connections past --read-timeout.
func TestSlowBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that runs the hotmod binary")
	}
	const (
		clients     = 1000
		readTimeout = 2 * time.Second
	)
	d := startDaemon(t, t.TempDir(), "--read-timeout", readTimeout.String(), "--max-conns", "200")
	token, _ := auth.ReadCredential(d.addr)
	head := fmt.Sprintf("POST /v1/invoke/nope/m HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", d.addr, token)

	var wg sync.WaitGroup
	held := make(chan time.Duration, clients) // how long the daemon kept each connection
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", d.addr, 5*time.Second)
			if err != nil {
				held <- 0 // refused at once is fine
				return
			}
			defer c.Close()
			t0 := time.Now()
			if _, err := io.WriteString(c, head); err != nil {
				held <- time.Since(t0)
				return
			}
			// Trickle the body until the daemon answers or hangs up.
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = io.Copy(io.Discard, c)
			}()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					held <- time.Since(t0)
					return
				case <-tick.C:
					_, _ = c.Write([]byte(" "))
				case <-time.After(readTimeout + 10*time.Second):
					held <- time.Since(t0)
					return
				}
			}
		}()
	}
	// While they trickle, health checks are answered quickly.
	time.Sleep(500 * time.Millisecond)
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		resp, err := http.Get("http://" + d.addr + "/healthz")
		if err != nil {
			t.Fatalf("/healthz during the flood: %v", err)
		}
		resp.Body.Close()
		if took := time.Since(t0); resp.StatusCode != 200 || took > time.Second {
			t.Errorf("/healthz during the flood: %d after %v", resp.StatusCode, took)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	close(held)
	var longest time.Duration
	for h := range held {
		longest = max(longest, h)
	}
	if longest > readTimeout+3*time.Second {
		t.Errorf("a slow client held its connection %v; --read-timeout is %v", longest, readTimeout)
	}
	t.Logf("%d slow clients cut off within %v (read timeout %v), all done after %v", clients, longest, readTimeout, time.Since(start))
}

// TestBodyFlood: 100 clients each sending an 8 MiB body at once keep the
// daemon's peak resident memory (VmHWM) under a bound: the body budget
// (64 MiB) lets at most 8 be read at a time.
func TestBodyFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that runs the hotmod binary")
	}
	const (
		clients = 100
		size    = 8<<20 - 64
		bound   = 400 << 20 // see RATIONALE.md, "Why a body budget?"
	)
	d := startDaemon(t, t.TempDir())
	before := vmHWM(t, d.cmd.Process.Pid)
	body := `{"text":"` + strings.Repeat("a", size) + `"}`
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := d.request(t, "POST", "/v1/invoke/nope/m", body)
			if err != nil {
				t.Errorf("POST: %v", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	peak := vmHWM(t, d.cmd.Process.Pid)
	for code := range statuses {
		if code != http.StatusNotFound && code != http.StatusServiceUnavailable {
			t.Errorf("answers: %v; want 404 (read, no such module) or 503 (no room in the body budget)", statuses)
		}
	}
	if peak > bound {
		t.Errorf("the daemon's peak RSS was %d MiB under %d concurrent %d MiB bodies, want under %d MiB", peak>>20, clients, size>>20, bound>>20)
	}
	t.Logf("VmHWM %d MiB before, %d MiB after %d concurrent 8 MiB bodies; answers %v", before>>20, peak>>20, clients, statuses)
}

// vmHWM is the peak resident memory of process pid, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}
