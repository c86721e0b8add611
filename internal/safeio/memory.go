package safeio

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// memTotal is the machine's physical memory in bytes (MemTotal of /proc/meminfo; 0 when unknown).
var memTotal = sync.OnceValue(func() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
})

// CheckMemory refuses to allocate n bytes for what (a file's declared content) when n exceeds
// the machine's physical memory: a self-consistent but huge (e.g. sparse) file gets one line
// instead of an out-of-memory crash.
func CheckMemory(what string, n int64) error {
	if m := memTotal(); m > 0 && n > m {
		return fmt.Errorf("%s needs %s of memory, more than this machine's %s", what, Size(n), Size(m))
	}
	return nil
}
