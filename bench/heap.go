package bench

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// HeapPeak runs fn while sampling the Go heap every millisecond and returns the peak heap above
// the heap before fn started (after a garbage collection): on the CPU backend, where tensors are
// Go memory, the memory a training step needs.
func HeapPeak(fn func() error) (uint64, error) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	runtime.GC()
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	err := fn()
	close(done)
	wg.Wait()
	return peak - min(peak, base), err
}

// LiveHeapPeak is HeapPeak with the collector running at GOGC=10 while fn runs, so that the peak
// follows the live memory (weights, optimizer state, the step's activations) rather than when
// garbage happens to be collected; times measured inside include that extra collection work.
func LiveHeapPeak(fn func() error) (uint64, error) {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	return HeapPeak(fn)
}

// LiveHeap is the Go heap after garbage collections: the memory live objects hold (three
// collections: tensors are released by finalizers, which run after the collection that found
// them unreachable, and pooled buffers survive one collection).
func LiveHeap() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	for range 3 {
		runtime.GC()
	}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}
