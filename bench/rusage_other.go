//go:build !unix

package bench

import "time"

// cpuTimes is unknown here (0, 0).
func cpuTimes() (self, children time.Duration) { return 0, 0 }
