package tasks

import (
	"fmt"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
)

// The π0 family (model.arch pi0, models.Pi0Policy): the VLA task with openpi's network. The
// PaliGemma comes from model.pretrained (a directory, or 'random' with model.hf_config inline); the
// expert is sized by policy.expert_dim and policy.expert_mlp; the robot's state and actions stay
// unpadded in the spec (policy.json) and are padded to models.Pi0PadDim inside the graph.

func init() {
	registerVLAFamily("pi0", openPi0)
	registerPolicyDir(policyDir{is: isLeRobotPi0, open: openLeRobotPi0Policy, recipe: leRobotPi0Recipe})
}

type pi0Family struct {
	r     *recipes.Recipe
	pg    *models.PaliGemmaConfig
	codec *textCodec
	lr    *leRobotPi0 // model.pretrained is a LeRobot pi0 policy directory (pi0_lerobot.go)
}

// openPi0 reads the PaliGemma configuration and loads the instruction tokenizer: the checkpoint's
// when reopening one that has it, else pi0Tokenizer's. Gemma's id 0 is <pad>, so the ids are not
// shifted.
// pi0Base is the PaliGemma of a pi0-style recipe: a LeRobot policy directory's (is/open; the
// recipe's image size must be the directory's), else the one pi0PaliGemma reads or sizes.
func pi0Base(r *recipes.Recipe, is func(string) bool, open func(string) (*leRobotPi0, error)) (*leRobotPi0, *models.PaliGemmaConfig, error) {
	if !is(r.Model.Pretrained) {
		pg, err := pi0PaliGemma(r)
		return nil, pg, err
	}
	lr, err := open(r.Model.Pretrained)
	if err != nil {
		return nil, nil, fmt.Errorf("model.pretrained: %w", err)
	}
	if s := lr.pg.Vision.ImageSize; s != r.Model.ImageSize {
		return nil, nil, fmt.Errorf("model.image_size: %d must equal the LeRobot policy's image_resolution %d", r.Model.ImageSize, s)
	}
	return lr, lr.pg, nil
}

func openPi0(r *recipes.Recipe, ckpt string) (vlaFamily, error) {
	var lr *leRobotPi0
	var pg *models.PaliGemmaConfig
	var err error
	if lr, pg, err = pi0Base(r, isLeRobotPi0, openLeRobotPi0); err != nil {
		return nil, err
	}
	tokenizer := pi0Tokenizer(r)
	if ckpt != "" && hasTokenizer(ckpt) {
		tokenizer = ckpt // the tokenizer travels in the checkpoint
	}
	codec, err := instructionText(tokenizer, 0)
	if err != nil {
		return nil, err
	}
	return &pi0Family{r: r, pg: pg, codec: codec, lr: lr}, nil
}

func (f *pi0Family) text() *textCodec { return f.codec }

// pi0PaliGemma reads the PaliGemma configuration of a pi0 recipe and checks it against the
// recipe's image size.
func pi0PaliGemma(r *recipes.Recipe) (*models.PaliGemmaConfig, error) {
	m := r.Model
	if m.Pretrained == "" {
		return nil, fmt.Errorf("model.pretrained: required for model.arch pi0 (a PaliGemma directory, or 'random' with model.hf_config)")
	}
	c, err := pretrainedConfig(m)
	if err != nil {
		return nil, err
	}
	if c.PaliGemma == nil {
		return nil, fmt.Errorf("model.pretrained: pi0 needs a PaliGemma (PaliGemmaForConditionalGeneration), got %s", c.Arch)
	}
	if v := c.PaliGemma.Vision; v.ImageSize != m.ImageSize || v.Channels != 3 {
		return nil, fmt.Errorf("model.image_size: %d must equal the vision tower's image_size %d (RGB)", m.ImageSize, v.ImageSize)
	}
	return c.PaliGemma, nil
}

// pi0Tokenizer is the tokenizer a pi0 recipe encodes instructions with: model.tokenizer, else
// the pretrained directory's tokenizer when it has one ("" : reel's word vocabulary).
func pi0Tokenizer(r *recipes.Recipe) string {
	m := r.Model
	if m.Tokenizer != "" || m.Pretrained == "" || m.Pretrained == "random" {
		return m.Tokenizer
	}
	if hasTokenizer(m.Pretrained) {
		return m.Pretrained
	}
	return ""
}

// network sizes π0 for spec.
func (f *pi0Family) network(spec policy.Spec, norm models.Normalization, _ bool) (models.Policy, error) {
	pg := *f.pg
	p := f.r.Policy
	if n := f.codec.size(); n > pg.Text.VocabSize {
		return nil, fmt.Errorf("model.pretrained: the instruction vocabulary has %d ids, more than the decoder's vocab_size %d", n, pg.Text.VocabSize)
	}
	expertDim, expertMLP := p.ExpertDim, p.ExpertMLP
	if f.lr != nil { // the expert is the directory's
		expertDim, expertMLP = f.lr.expertDim, f.lr.expertMLP
		if p.NormStats == "checkpoint" {
			mode, err := f.lr.normMode()
			if err != nil {
				return nil, fmt.Errorf("policy.norm_stats: checkpoint: %w", err)
			}
			if spec.Normalization != mode {
				return nil, fmt.Errorf("policy.norm_stats: checkpoint keeps %s's %s statistics; set data.normalization: %s", f.lr.dir, mode, mode)
			}
			if norm, err = f.lr.normalization(spec); err != nil {
				return nil, fmt.Errorf("policy.norm_stats: checkpoint: %w", err)
			}
		}
	}
	c := models.Pi0Config{PaliGemma: pg, Expert: models.Pi0Expert(pg.Text, expertDim, expertMLP), Cameras: len(spec.Cameras),
		StateDim: spec.StateDim, ActionDim: spec.ActionDim, Horizon: p.Horizon, EulerSteps: p.EulerSteps}
	if spec.StateDim > models.Pi0PadDim || spec.ActionDim > models.Pi0PadDim {
		return nil, fmt.Errorf("data: the robot has %d state and %d action dimensions; pi0 pads them to %d, so at most %d each",
			spec.StateDim, spec.ActionDim, models.Pi0PadDim, models.Pi0PadDim)
	}
	return models.Pi0Policy{Config: c, Norm: norm}, nil
}

// InitVariables implements train.Initializer: for pi0 with model.pretrained a directory, the
// PaliGemma's weights, and the tensors named "reel.<scope path with dots>" (an exported pi0's
// action expert and projections) into the matching variables; the data's normalisation
// statistics (reel.norm.*) are kept.
func (f *pi0Family) InitVariables(backend compute.Backend, store *model.Store) (int, string, error) {
	dir := f.r.Model.Pretrained
	if dir == "" || dir == "random" {
		return 0, "", nil
	}
	if f.lr != nil {
		n, err := f.lr.loadWeights(store)
		if err != nil {
			return 0, "", fmt.Errorf("model.pretrained: %w", err)
		}
		return n, dir + " (LeRobot pi0)", nil
	}
	w, err := hf.ReadWeights(dir)
	if err != nil {
		return 0, "", fmt.Errorf("model.pretrained: %w", err)
	}
	own, err := hf.TakeReelTensors(w)
	if err != nil {
		return 0, "", fmt.Errorf("model.pretrained: %w", err)
	}
	cfg, err := hf.ReadConfig(dir)
	if err != nil {
		return 0, "", fmt.Errorf("model.pretrained: %w", err)
	}
	m, err := hf.FromWeights(backend, cfg, w)
	if err != nil {
		return 0, "", fmt.Errorf("model.pretrained: %w", err)
	}
	n := 0
	for _, p := range m.Params {
		dst := store.GetVariable(p.Var)
		if dst == nil { // lm_head and the like: pi0 does not read them
			continue
		}
		val, err := m.Store.GetVariable(p.Var).Value()
		if err != nil {
			return 0, "", fmt.Errorf("model.pretrained: %s: %w", p.Source, err)
		}
		if err := dst.SetValue(val); err != nil {
			return 0, "", fmt.Errorf("model.pretrained: %s: %w", p.Source, err)
		}
		n++
	}
	for path, val := range own {
		if strings.HasPrefix(path, "/norm/") {
			continue
		}
		dst := store.GetVariable(path)
		if dst == nil {
			return 0, "", fmt.Errorf("model.pretrained: %s: tensor reel.%s has no variable %s in this pi0 (does the recipe describe the exported model?)",
				dir, strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "."), path)
		}
		if !val.Shape().Equal(dst.Shape()) {
			return 0, "", fmt.Errorf("model.pretrained: %s: reel tensor for %s has shape %s, the model's %s", dir, path, val.Shape(), dst.Shape())
		}
		if err := dst.SetValue(val); err != nil {
			return 0, "", fmt.Errorf("model.pretrained: %s: %w", path, err)
		}
		n++
	}
	return n, dir, nil
}
