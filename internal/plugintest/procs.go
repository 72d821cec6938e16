package plugintest

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PIDsIn waits (up to 30 s) until file holds at least n process ids, one
// per field, and returns them: a test module writes the ids of what it
// starts there.
func PIDsIn(t testing.TB, file string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _ := os.ReadFile(file)
		var pids []int
		for _, f := range strings.Fields(string(data)) {
			if p, err := strconv.Atoi(f); err == nil {
				pids = append(pids, p)
			}
		}
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d pids after 30s; want %d", file, len(pids), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Running says whether pid is a live process (a zombie is not); Linux only.
func Running(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && !strings.HasPrefix(string(data[i+1:]), " Z")
}

// WaitEnded fails the test unless every pid has ended within 5 s; it kills
// what is left, so a failure leaves nothing behind.
func WaitEnded(t testing.TB, what string, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left []int
		for _, p := range pids {
			if Running(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			t.Fatalf("%s: processes %v still ran 5s later", what, left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
