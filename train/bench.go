package train

import (
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/internal/errline"
	"github.com/reelml/reel/recipes"
)

// StepStats is what StepTime measures.
type StepStats struct {
	StepS     float64 // mean wall time of a timed step
	CompileS  float64 // first step's extra time over a timed step: graph building and compilation
	FLOPs     float64 // model FLOPs of one step (see GraphFLOPs)
	HalfFLOPs float64 // of which in bf16/f16 products (train.precision: bf16)
	Peak      Peak    // the backend's peak (see PeakFLOPS)
	Params    int     // trainable parameters of the model
}

// MFU is the model-FLOPs utilisation of the timed steps (0 when the peak is unknown).
func (s StepStats) MFU() float64 {
	if s.Peak.FLOPS <= 0 || s.StepS <= 0 {
		return 0
	}
	return s.FLOPs / s.StepS / s.Peak.FLOPS
}

// StepTime measures a task's training step: it initialises the model, runs warm optimizer steps
// (the first includes compilation) and returns the mean wall time of the next `steps` steps on
// micro-batch 0 (data generation excluded: only the graph executions, including a
// BatchPreparer's).
func StepTime(task Task, r *recipes.Recipe, backend compute.Backend, warm, steps int) (st StepStats, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("benchmark failed: %s", errline.First(rec))
		}
	}()
	t := &Trainer{opts: Options{Recipe: r, Backend: backend, Log: io.Discard}, task: task, cfg: r.Train}
	if t.store, err = NewStore(r.Train.Seed); err != nil {
		return st, err
	}
	if err := t.buildExecs(); err != nil {
		return st, err
	}
	if err := t.warmUp(); err != nil {
		return st, err
	}
	for v := range t.store.IterVariables() {
		if v.Trainable {
			st.Params += v.Shape().Size()
		}
	}
	batch, err := task.MicroBatch(0)
	if err != nil {
		return st, err
	}
	lr := tensors.FromScalar(float32(r.Train.LR))
	step := func() (flopCount, error) {
		in, f1, err := prepareFLOPs(t.prepExec, task, batch)
		if err != nil {
			return flopCount{}, err
		}
		out, f2, err := t.dp.call(t.applyExec, append([]*tensors.Tensor{lr}, in...))
		if err != nil {
			return flopCount{}, err
		}
		_ = scalar(out[0]) // read the loss, as the training loop does: on XLA this waits for the step
		finalize(out)
		return flopCount{f1.total + f2.total, f1.half + f2.half}, nil
	}
	first := 0.0
	for i := range max(1, warm) {
		start := time.Now()
		c, err := step()
		if err != nil {
			return st, err
		}
		st.FLOPs, st.HalfFLOPs = c.total, c.half
		if i == 0 {
			first = time.Since(start).Seconds()
		}
	}
	start := time.Now()
	for range steps {
		if _, err := step(); err != nil {
			return st, err
		}
	}
	st.StepS = time.Since(start).Seconds() / float64(max(1, steps))
	st.CompileS = max(0, first-st.StepS)
	st.Peak = PeakFLOPS(backend, r.Train.Precision)
	return st, nil
}

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
