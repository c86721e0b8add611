package lerobot

import "syscall"

// adviseHugePages asks the kernel to back b (a decoded episode, megabytes, not yet touched)
// with transparent huge pages where it can (MADV_HUGEPAGE; a no-op where THP is "never").
func adviseHugePages(b []byte) {
	if len(b) >= 4<<20 {
		_ = syscall.Madvise(b, 14 /* MADV_HUGEPAGE */)
	}
}
