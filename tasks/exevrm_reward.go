package tasks

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/reward"
	"github.com/reelml/reel/train"
)

// exeVRMRewardBatch is the number of clips scored per graph call (the last call is padded), so
// one compiled graph serves every call.
const exeVRMRewardBatch = 16

// ExeVRMReward is an exevrm checkpoint as a reward.Model: LogPTrue is the model's
// log-probability that the instruction was accomplished in the clip, with the answer restricted
// to true/false: log σ(logit("true") − logit("false")) after "INSTRUCTION is the task complete ?"
// (model.frames keyframes sampled uniformly from the clip's frames).
type ExeVRMReward struct {
	task *ExeVRM
	exec *train.Inference
	Step int64 // the checkpoint's training step
}

// OpenExeVRMReward loads the exevrm run or checkpoint in dir (its newest valid checkpoint for a
// run) as a reward model on backend.
func OpenExeVRMReward(backend compute.Backend, dir string) (reward.Model, error) {
	ck, err := checkpoints.Resolve(dir, func(string) {})
	if err != nil {
		return nil, err
	}
	if _, err := checkpoints.Verify(ck); err != nil {
		return nil, err
	}
	r, err := recipes.Load(filepath.Join(ck, "recipe.yaml"), nil)
	if err != nil {
		return nil, err
	}
	if r.Task != "exevrm" {
		return nil, fmt.Errorf("%s is a %s checkpoint, not an ExeVRM reward model (task exevrm)", ck, r.Task)
	}
	r.Data.Source, r.Eval.Dir = "synthetic", "" // scoring needs no training or evaluation data
	t, err := NewExeVRM(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ck, err)
	}
	store, err := train.NewStore(0)
	if err != nil {
		return nil, err
	}
	st, err := checkpoints.Load(ck, store)
	if err != nil {
		return nil, err
	}
	loaded := checkpoints.Paths(store)
	exec, err := train.NewInference(backend, store, r.Train, func(scope *model.Scope, in []*Node) []*Node {
		return []*Node{t.Score(scope, in)}
	})
	if err != nil {
		return nil, err
	}
	m := &ExeVRMReward{task: t, exec: exec, Step: st.Step}
	// Build the graph once on a blank clip: a recipe that describes another model than the
	// checkpoint's creates variables the checkpoint lacks, and is refused.
	s := r.Model.ImageSize
	if _, err := m.LogPTrue([]reward.Clip{{Instruction: "pick up the red square", Frames: []policy.Image{policy.NewImage(s, s)}}}); err != nil {
		m.Close()
		return nil, fmt.Errorf("%s: %w (does the recipe still match the checkpoint's model?)", ck, err)
	}
	if err := checkpoints.CheckNoNewVariables(ck, store, loaded); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Scores returns each clip's success evidence logit("true") − logit("false").
func (m *ExeVRMReward) Scores(clips []reward.Clip) ([]float64, error) {
	out := make([]float64, 0, len(clips))
	for start := 0; start < len(clips); start += exeVRMRewardBatch {
		instr, frames := make([]string, exeVRMRewardBatch), make([][]policy.Image, exeVRMRewardBatch)
		for j := range exeVRMRewardBatch {
			c := clips[min(start+j, len(clips)-1)] // padding repeats the last clip
			instr[j], frames[j] = c.Instruction, c.Frames
		}
		in, err := m.task.ClipInputs(instr, frames)
		if err != nil {
			return nil, fmt.Errorf("reward clips %d..: %w", start, err)
		}
		res, err := m.exec.Call(in...)
		if err != nil {
			return nil, err
		}
		s := tensors.MustCopyFlatData[float32](res[0])
		for j := range min(exeVRMRewardBatch, len(clips)-start) {
			out = append(out, float64(s[j]))
		}
	}
	return out, nil
}

// LogPTrue implements reward.Model: log σ(score) of each clip.
func (m *ExeVRMReward) LogPTrue(clips []reward.Clip) ([]float64, error) {
	s, err := m.Scores(clips)
	if err != nil {
		return nil, err
	}
	for i, x := range s {
		s[i] = logSigmoid(x)
	}
	return s, nil
}

// logSigmoid is log σ(x) = −log(1 + e^{−x}), computed without overflow.
func logSigmoid(x float64) float64 {
	if x >= 0 {
		return -math.Log1p(math.Exp(-x))
	}
	return x - math.Log1p(math.Exp(x))
}

// Close implements reward.Model.
func (m *ExeVRMReward) Close() {
	if m.exec != nil {
		m.exec.Finalize()
		m.exec = nil
	}
}
