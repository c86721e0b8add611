package train

import (
	"fmt"
	"io"
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

// StepTimer times a task's training step, repeatedly, over one initialised and compiled model:
// benchmarks alternate its rounds with the reference's and report the best and the spread.
type StepTimer struct {
	t     *Trainer
	task  Task
	batch []*tensors.Tensor
	lr    *tensors.Tensor
	stats StepStats
}

// NewStepTimer initialises the model of task, runs warm optimizer steps on micro-batch 0 (the
// first includes compilation) and returns a timer; Stats holds the compile time (against the
// first timed round), parameters, FLOPs and the MFU peak.
func NewStepTimer(task Task, r *recipes.Recipe, backend compute.Backend, warm int) (st *StepTimer, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("benchmark failed: %s", errline.First(rec))
		}
	}()
	t := &Trainer{opts: Options{Recipe: r, Backend: backend, Log: io.Discard}, task: task, cfg: r.Train}
	if t.store, err = NewStore(r.Train.Seed); err != nil {
		return nil, err
	}
	if err := t.buildExecs(); err != nil {
		return nil, err
	}
	if err := t.warmUp(); err != nil {
		return nil, err
	}
	t.freeze()
	s := &StepTimer{t: t, task: task, lr: tensors.FromScalar(float32(r.Train.LR))}
	for v := range t.store.IterVariables() {
		if v.Trainable {
			s.stats.Params += v.Shape().Size()
		}
	}
	if s.batch, err = task.MicroBatch(0); err != nil {
		return nil, err
	}
	for i := range max(1, warm) {
		start := time.Now()
		c, err := s.step()
		if err != nil {
			return nil, err
		}
		s.stats.FLOPs, s.stats.HalfFLOPs = c.total, c.half
		if i == 0 {
			s.stats.CompileS = time.Since(start).Seconds()
		}
	}
	s.stats.Peak = PeakFLOPS(backend, r.Train.Precision)
	return s, nil
}

func (s *StepTimer) step() (flopCount, error) {
	in, f1, err := prepareFLOPs(s.t.prepExec, s.task, s.batch)
	if err != nil {
		return flopCount{}, err
	}
	out, f2, err := s.t.dp.call(s.t.applyExec, append([]*tensors.Tensor{s.lr}, in...))
	if err != nil {
		return flopCount{}, err
	}
	_ = scalar(out[0]) // read the loss, as the training loop does: on XLA this waits for the step
	finalize(out)
	return flopCount{f1.total + f2.total, f1.half + f2.half}, nil
}

// Time runs steps training steps and returns their mean wall time (data generation excluded:
// only the graph executions, a BatchPreparer's included). The first call also fixes Stats'
// compile time as the first step's extra time over this mean.
func (s *StepTimer) Time(steps int) (sec float64, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("benchmark failed: %s", errline.First(rec))
		}
	}()
	start := time.Now()
	for range max(1, steps) {
		if _, err := s.step(); err != nil {
			return 0, err
		}
	}
	sec = time.Since(start).Seconds() / float64(max(1, steps))
	if s.stats.StepS == 0 {
		s.stats.CompileS = max(0, s.stats.CompileS-sec)
	}
	if s.stats.StepS == 0 || sec < s.stats.StepS {
		s.stats.StepS = sec
	}
	return sec, nil
}

// Stats are the model's parameters, FLOPs, MFU peak, compile time and best timed step so far.
func (s *StepTimer) Stats() StepStats { return s.stats }

// StepTime measures a task's training step: NewStepTimer, then one timed round of steps.
func StepTime(task Task, r *recipes.Recipe, backend compute.Backend, warm, steps int) (StepStats, error) {
	s, err := NewStepTimer(task, r, backend, warm)
	if err != nil {
		return StepStats{}, err
	}
	if _, err := s.Time(steps); err != nil {
		return StepStats{}, err
	}
	return s.Stats(), nil
}
