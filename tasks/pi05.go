package tasks

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/internal/safeio"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/sim"
	"github.com/reelml/reel/text"
)

// The π0.5 family (model.arch pi05, models.Pi05Policy): the VLA task with LeRobot's PI05Pytorch
// network. It starts as pi0 does — a PaliGemma directory or 'random' with model.hf_config, the
// expert sized by policy.expert_dim/expert_mlp — or from a LeRobot pi05 policy directory
// (config.json "type": "pi05", read by pi0_lerobot.go's loader). The prompt the network reads is
// built on the host from the instruction and the state normalised with the policy's statistics
// (models.Pi05Prompt, LeRobot's Pi05PrepareStateTokenizerProcessorStep): the family implements
// prompter, which the task asks when it encodes an observation.

func init() {
	registerVLAFamily("pi05", openPi05)
	registerPolicyDir(policyDir{is: isLeRobotPi05, open: openLeRobotPi05Policy, recipe: leRobotPi05Recipe})
}

// isLeRobotPi05 reports whether dir is a LeRobot pi05 policy directory.
func isLeRobotPi05(dir string) bool { return isLeRobotDir(dir, "pi05") }

// openLeRobotPi05 opens a LeRobot pi05 directory: PI05Config's defaults are PI0Config's but for
// tokenizer_max_length 200 and QUANTILES normalisation of the state and actions. PI05Config's MEM
// observation memory (use_visual_memory, use_proprioceptive_memory) changes the network and the
// prompt, and is refused naming the key.
func openLeRobotPi05(dir string) (*leRobotPi0, error) {
	l, err := openLeRobotDir(dir, leRobotPi0Config{Type: "pi05", TokenizerMaxLength: 200,
		NormalizationMapping: map[string]string{"VISUAL": "IDENTITY", "STATE": "QUANTILES", "ACTION": "QUANTILES"}})
	if err != nil {
		return nil, err
	}
	b, err := safeio.ReadFile(filepath.Join(dir, "config.json"), safeio.JSONLimit)
	if err != nil {
		return nil, err
	}
	var mem struct {
		Visual  bool `json:"use_visual_memory"`
		Proprio bool `json:"use_proprioceptive_memory"`
	}
	if err := json.Unmarshal(b, &mem); err != nil {
		return nil, fmt.Errorf("%s/config.json: %w", dir, err)
	}
	switch {
	case mem.Visual:
		return nil, fmt.Errorf("%s/config.json: use_visual_memory: true (MEM observation memory) is not implemented by reel's pi05", dir)
	case mem.Proprio:
		return nil, fmt.Errorf("%s/config.json: use_proprioceptive_memory: true (MEM state history) is not implemented by reel's pi05", dir)
	}
	return l, nil
}

// leRobotPi05Recipe is leRobotRecipe of a LeRobot pi05 directory.
func leRobotPi05Recipe(dir string, sets []string) (*recipes.Recipe, policy.Spec, error) {
	l, err := openLeRobotPi05(dir)
	if err != nil {
		return nil, policy.Spec{}, err
	}
	return leRobotRecipe(l, sets)
}

// openLeRobotPi05Policy opens a LeRobot pi05 directory as a trained policy, as it is.
func openLeRobotPi05Policy(backend compute.Backend, dir string, sets []string, seed uint64) (Policy, error) {
	l, err := openLeRobotPi05(dir)
	if err != nil {
		return nil, err
	}
	return openLeRobotPolicy(backend, l, sets, seed)
}

type pi05Family struct {
	r     *recipes.Recipe
	pg    *models.PaliGemmaConfig
	codec *textCodec
	lr    *leRobotPi0 // model.pretrained is a LeRobot pi05 policy directory
	norm  models.Normalization
}

// openPi05 opens the family: the PaliGemma configuration (a LeRobot pi05 directory's, or pi0's
// reading of model.pretrained) and the prompt tokenizer (pi0's choice; reel's word vocabulary
// gains the prompt's words and the 256 state bins).
func openPi05(r *recipes.Recipe, ckpt string) (vlaFamily, error) {
	var lr *leRobotPi0
	var pg *models.PaliGemmaConfig
	var err error
	if r.Train.Remat {
		return nil, fmt.Errorf("train.remat: not implemented for model.arch pi05")
	}
	if lr, pg, err = pi0Base(r, isLeRobotPi05, openLeRobotPi05); err != nil {
		return nil, err
	}
	tokenizer := pi0Tokenizer(r)
	if ckpt != "" && hasTokenizer(ckpt) {
		tokenizer = ckpt
	}
	var codec *textCodec
	if tokenizer == "" {
		codec = &textCodec{tok: pi05Words{text.Words{V: text.NewVocab(pi05Vocabulary())}}}
	} else {
		if codec, err = instructionText(tokenizer, 0); err != nil {
			return nil, err
		}
		codec.tok = pi05Special{codec.tok}
	}
	return &pi05Family{r: r, pg: pg, codec: codec, lr: lr}, nil
}

func (f *pi05Family) text() *textCodec { return f.codec }

// prompt implements prompter: models.Pi05Prompt of the instruction and the state normalised with
// the policy's statistics.
func (f *pi05Family) prompt(instruction string, state []float32) string {
	n := make([]float32, len(state))
	for i, x := range state {
		if i < len(f.norm.StateOffset) {
			x = (x - f.norm.StateOffset[i]) / f.norm.StateScale[i]
		}
		n[i] = x
	}
	return models.Pi05Prompt(instruction, n)
}

// setNormalization implements normalized: the statistics the policy acts with (a reopened
// checkpoint's, read from its variables once they are loaded).
func (f *pi05Family) setNormalization(n models.Normalization) { f.norm = n }

// network sizes π0.5 for spec.
func (f *pi05Family) network(spec policy.Spec, norm models.Normalization, _ bool) (models.Policy, error) {
	pg := *f.pg
	p := f.r.Policy
	if n := f.codec.size(); n > pg.Text.VocabSize {
		return nil, fmt.Errorf("model.pretrained: the prompt vocabulary has %d ids, more than the decoder's vocab_size %d", n, pg.Text.VocabSize)
	}
	expertDim, expertMLP := p.ExpertDim, p.ExpertMLP
	if f.lr != nil {
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
	if spec.StateDim == 0 { // PI05's state step raises "State is required for PI05"
		return nil, fmt.Errorf("data: pi05 writes the robot's state into its prompt, and the data has no observation.state")
	}
	if spec.StateDim > models.Pi0PadDim || spec.ActionDim > models.Pi0PadDim {
		return nil, fmt.Errorf("data: the robot has %d state and %d action dimensions; pi05 pads them to %d, so at most %d each",
			spec.StateDim, spec.ActionDim, models.Pi0PadDim, models.Pi0PadDim)
	}
	f.norm = norm
	c := models.Pi0Config{PaliGemma: pg, Expert: models.Pi0Expert(pg.Text, expertDim, expertMLP), Cameras: len(spec.Cameras),
		StateDim: spec.StateDim, ActionDim: spec.ActionDim, Horizon: p.Horizon, EulerSteps: p.EulerSteps}
	return models.Pi05Policy{Config: models.Pi05Config{Pi0Config: c, KnowledgeInsulation: p.KnowledgeInsulation}, Norm: norm}, nil
}

// InitVariables implements train.Initializer: a LeRobot pi05 directory's every tensor, else pi0's
// reading of a PaliGemma directory (its reel.* tensors included).
func (f *pi05Family) InitVariables(backend compute.Backend, store *model.Store) (int, string, error) {
	if f.lr == nil {
		return (&pi0Family{r: f.r, pg: f.pg, codec: f.codec}).InitVariables(backend, store)
	}
	n, err := f.lr.loadWeights(store)
	if err != nil {
		return 0, "", fmt.Errorf("model.pretrained: %w", err)
	}
	return n, f.r.Model.Pretrained + " (LeRobot pi05)", nil
}

// storeNormalization reads the normalisation a store's variables hold (models.Normalization's
// norm/…), the inverse of setNormalization.
func storeNormalization(store *model.Store) (models.Normalization, error) {
	var n models.Normalization
	dst := map[string]*[]float32{"state_offset": &n.StateOffset, "state_scale": &n.StateScale,
		"action_offset": &n.ActionOffset, "action_scale": &n.ActionScale}
	for v := range store.IterVariables() {
		p, ok := dst[strings.TrimPrefix(v.Path(), "/norm/")]
		if !ok || !strings.HasPrefix(v.Path(), "/norm/") {
			continue
		}
		val, err := v.Value()
		if err != nil {
			return n, fmt.Errorf("%s: %w", v.Path(), err)
		}
		*p = tensors.MustCopyFlatData[float32](val)
	}
	return n, nil
}

// pi05Vocabulary is reel's word vocabulary for π0.5 prompts: the simulator's words, the prompt's
// markers and punctuation, and the state bins 0…255.
func pi05Vocabulary() []string {
	w := append(sim.Words(), "task", "state", "action", ":", ",", ";")
	for i := range models.Pi05StateBins {
		w = append(w, strconv.Itoa(i))
	}
	return w
}

// pi05Special is a model tokenizer whose Encode adds the model's special tokens: LeRobot's
// TokenizerProcessorStep calls the PaliGemma tokenizer with transformers' default
// add_special_tokens=True, so the prompt starts with <bos> (src/lerobot/processor/
// tokenizer_processor.py _tokenize_text).
type pi05Special struct{ text.Tokenizer }

// Encode implements text.Tokenizer.
func (t pi05Special) Encode(s string) []int { return t.Tokenizer.EncodeSpecial(s) }

// pi05Words is reel's word tokenizer with the prompt's punctuation (":", ",", ";") split into
// words of their own, so that "Task: pick up the cube, State: 3 250;" reads every word.
type pi05Words struct{ text.Words }

var pi05Punct = strings.NewReplacer(":", " : ", ",", " , ", ";", " ; ")

// Encode implements text.Tokenizer.
func (w pi05Words) Encode(s string) []int { return w.Words.Encode(pi05Punct.Replace(s)) }

// EncodeSpecial implements text.Tokenizer.
func (w pi05Words) EncodeSpecial(s string) []int { return w.Words.EncodeSpecial(pi05Punct.Replace(s)) }
