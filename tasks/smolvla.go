package tasks

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
)

// The SmolVLA family (model.arch smolvla, models.SmolVLAPolicy): the VLA task with LeRobot's
// SmolVLA network. model.pretrained is a LeRobot smolvla policy directory (smolvla_lerobot.go:
// every size, the cut depth and the attention pattern are the directory's), or 'random' with a
// SmolVLM (Idefics3) model.hf_config, whose text model is used whole as the cut backbone, with
// LeRobot's defaults: cross_attn, self-attention every 2 layers, the expert policy.expert_dim wide
// (0: 0.75 of the VLM) with policy.expert_mlp (0: get_intermediate_size of it).

func init() {
	registerVLAFamily("smolvla", openSmolVLA)
	registerPolicyDir(policyDir{is: isLeRobotSmolVLA, open: openLeRobotSmolVLAPolicy, recipe: leRobotSmolVLARecipe})
	leRobotLayouts["smolvla"] = leRobotLayout{name: smolVLAName, files: leRobotSmolVLAComplete}
}

type smolVLAFamily struct {
	r     *recipes.Recipe
	vlm   *models.Idefics3Config
	codec *textCodec
	lr    *leRobotSmolVLA // model.pretrained is a LeRobot smolvla directory
}

func openSmolVLA(r *recipes.Recipe, ckpt string) (vlaFamily, error) {
	if r.Train.Remat {
		return nil, fmt.Errorf("train.remat: not implemented for model.arch smolvla (its layers are not checkpointed)")
	}
	f := &smolVLAFamily{r: r}
	m := r.Model
	switch {
	case isLeRobotSmolVLA(m.Pretrained):
		lr, err := openLeRobotSmolVLA(m.Pretrained)
		if err != nil {
			return nil, fmt.Errorf("model.pretrained: %w", err)
		}
		if s := lr.cfg.Resize[0]; s != m.ImageSize {
			return nil, fmt.Errorf("model.image_size: %d must equal the LeRobot policy's resize_imgs_with_padding %d", m.ImageSize, s)
		}
		f.lr, f.vlm = lr, lr.vlm
	case m.Pretrained == "random":
		c, err := pretrainedConfig(m)
		if err != nil {
			return nil, err
		}
		if c.Idefics3 == nil {
			return nil, fmt.Errorf("model.hf_config: smolvla needs a SmolVLM (SmolVLMForConditionalGeneration), got %s", c.Arch)
		}
		if v := c.Idefics3.Vision; v.ImageSize != m.ImageSize || v.Channels != 3 {
			return nil, fmt.Errorf("model.image_size: %d must equal the vision tower's image_size %d (RGB)", m.ImageSize, v.ImageSize)
		}
		f.vlm = c.Idefics3 // its rope_theta is not read: SmolVLA's RoPE wavelength is fixed (models/smolvla.go)
	default:
		return nil, fmt.Errorf("model.pretrained: %q: smolvla needs a LeRobot smolvla policy directory (config.json \"type\": \"smolvla\") or 'random' with a SmolVLM model.hf_config", m.Pretrained)
	}
	tokenizer := pi0Tokenizer(r)
	if ckpt != "" && hasTokenizer(ckpt) {
		tokenizer = ckpt
	}
	codec, err := instructionText(tokenizer, 0)
	if err != nil {
		return nil, err
	}
	// SmolVLA's preprocessor ends the task with "\n" before its tokenizer (smolvla_new_line_processor);
	// reel's word vocabulary has no newline and is left as it is.
	codec.newline = tokenizer != ""
	f.codec = codec
	return f, nil
}

func (f *smolVLAFamily) text() *textCodec { return f.codec }

// network sizes SmolVLA for spec.
func (f *smolVLAFamily) network(spec policy.Spec, norm models.Normalization, _ bool) (models.Policy, error) {
	p := f.r.Policy
	if n := f.codec.size(); n > f.vlm.Text.VocabSize {
		return nil, fmt.Errorf("model.pretrained: the instruction vocabulary has %d ids, more than the text model's vocab_size %d", n, f.vlm.Text.VocabSize)
	}
	if spec.StateDim > models.SmolVLAPadDim || spec.ActionDim > models.SmolVLAPadDim {
		return nil, fmt.Errorf("data: the robot has %d state and %d action dimensions; smolvla pads them to %d, so at most %d each",
			spec.StateDim, spec.ActionDim, models.SmolVLAPadDim, models.SmolVLAPadDim)
	}
	var c models.SmolVLAConfig
	if f.lr != nil {
		c = f.lr.config(len(spec.Cameras), spec.StateDim, spec.ActionDim, p.Horizon, p.EulerSteps)
		if p.NormStats == "checkpoint" {
			mode, err := f.lr.common.normMode()
			if err != nil {
				return nil, fmt.Errorf("policy.norm_stats: checkpoint: %w", err)
			}
			if spec.Normalization != mode {
				return nil, fmt.Errorf("policy.norm_stats: checkpoint keeps %s's %s statistics; set data.normalization: %s", f.lr.dir, mode, mode)
			}
			var err2 error
			if norm, err2 = f.lr.common.normalization(spec); err2 != nil {
				return nil, fmt.Errorf("policy.norm_stats: checkpoint: %w", err2)
			}
		}
	} else {
		e, mlp := p.ExpertDim, p.ExpertMLP
		if e <= 0 {
			e = f.vlm.Text.Hidden * 3 / 4
		}
		if mlp <= 0 {
			mlp = models.SmolVLAIntermediate(e)
		}
		c = models.SmolVLAConfig{VLM: *f.vlm, Expert: models.SmolVLAExpert(f.vlm.Text, e, mlp), SelfAttnEvery: 2, CrossAttn: true,
			Cameras: len(spec.Cameras), StateDim: spec.StateDim, ActionDim: spec.ActionDim, Horizon: p.Horizon, EulerSteps: p.EulerSteps}
	}
	return models.SmolVLAPolicy{Config: c, Norm: norm}, nil
}

// InitVariables implements train.Initializer: a LeRobot smolvla directory's weights.
func (f *smolVLAFamily) InitVariables(_ compute.Backend, store *model.Store) (int, string, error) {
	if f.lr == nil {
		return 0, "", nil
	}
	n, err := f.lr.loadWeights(store)
	if err != nil {
		return 0, "", fmt.Errorf("model.pretrained: %w", err)
	}
	return n, f.lr.dir + " (LeRobot smolvla)", nil
}

// leRobotSmolVLARecipe is the smolvla recipe of a LeRobot smolvla directory as it is, sized by its
// config.json with sets over it, its normalisation statistics kept; and the spec of its features.
func leRobotSmolVLARecipe(dir string, sets []string) (*recipes.Recipe, policy.Spec, error) {
	l, err := openLeRobotSmolVLA(dir)
	if err != nil {
		return nil, policy.Spec{}, err
	}
	return l.recipe(sets)
}

func (l *leRobotSmolVLA) recipe(sets []string) (*recipes.Recipe, policy.Spec, error) {
	dir := l.dir
	mode, err := l.common.normMode()
	if err != nil {
		return nil, policy.Spec{}, err
	}
	c := l.cfg
	base := []string{"model.pretrained=" + dir, "model.hf_config=", "model.image_size=" + strconv.Itoa(c.Resize[0]),
		"model.max_text_len=" + strconv.Itoa(c.TokenizerMaxLength), "policy.horizon=" + strconv.Itoa(c.ChunkSize),
		"policy.execute=" + strconv.Itoa(c.NActionSteps), "policy.euler_steps=" + strconv.Itoa(c.NumSteps),
		"policy.norm_stats=checkpoint", "data.normalization=" + mode, "train.precision=f32"}
	r, err := recipes.Load("smolvla", append(base, sets...))
	if err != nil {
		return nil, policy.Spec{}, err
	}
	spec, err := l.spec("lerobot:"+filepath.Base(filepath.Clean(dir)), r.Model.MaxTextLen)
	if err != nil {
		return nil, policy.Spec{}, err
	}
	return r, spec, nil
}

// openLeRobotSmolVLAPolicy opens a LeRobot smolvla directory as a trained policy, as it is: the
// smolvla recipe sized by its config.json with sets over it, the spec from its features, the
// weights and statistics its own.
func openLeRobotSmolVLAPolicy(backend compute.Backend, dir string, sets []string, seed uint64) (Policy, error) {
	l, err := openLeRobotSmolVLA(dir)
	if err != nil {
		return nil, err
	}
	r, spec, err := l.recipe(sets)
	if err != nil {
		return nil, err
	}
	return openPolicyDir(backend, r, spec, dir, seed, l.loadWeights)
}
