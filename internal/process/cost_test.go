package process

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// cost is the CPU time and the voluntary context switches (a thread that
// blocked and was woken) of the test process and of some child processes,
// so far: measures of a call's cost that a busy machine disturbs less than
// the wall clock.
type cost struct {
	cpuNs int64 // user + system
	csw   int64 // voluntary context switches, every thread
}

func costNow(pids []int) cost {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	c := cost{
		cpuNs: (ru.Utime.Sec+ru.Stime.Sec)*1e9 + (ru.Utime.Usec+ru.Stime.Usec)*1e3,
		csw:   ru.Nvcsw,
	}
	tick := int64(1e9 / 100) // USER_HZ
	for _, pid := range pids {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			c.cpuNs += (ut + st) * tick
		}
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
		for _, t := range tasks {
			b, _ := os.ReadFile(t)
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					c.csw += n
				}
			}
		}
	}
	return c
}

// reportCost reports what happened since start per operation: cpu-ns/op and
// csw/op (on Linux; elsewhere the child's part is missing).
func reportCost(b *testing.B, start cost, pids []int) {
	end := costNow(pids)
	b.ReportMetric(float64(end.cpuNs-start.cpuNs)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(end.csw-start.csw)/float64(b.N), "csw/op")
}
