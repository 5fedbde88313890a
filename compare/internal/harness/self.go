package harness

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// RaiseFileLimit lifts the soft limit on open files to the hard limit.
func RaiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return nil
}

// Memory is a process's memory figures, in bytes.
type Memory struct {
	RSS        uint64 `json:"rss"`
	HeapInuse  uint64 `json:"heapInuse"`
	StackInuse uint64 `json:"stackInuse"`
	Sys        uint64 `json:"sys"`
}

// MeasureSelf collects garbage, returns freed memory to the OS and reads
// this process's memory figures.
func MeasureSelf() Memory {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Memory{RSS: VmRSS(), HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Sys: ms.Sys}
}

// VmRSS reads VmRSS from /proc/self/status, in bytes (0 if unavailable).
func VmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			if f := strings.Fields(rest); len(f) > 0 { // "12345 kB"
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
