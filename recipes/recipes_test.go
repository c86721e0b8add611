package recipes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func requireOneLine(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.NotContains(t, err.Error(), "\n")
}

func TestDefaultsValidate(t *testing.T) {
	r := Defaults()
	r.Name = "defaults"
	require.NoError(t, Validate(&r))
}

func TestEmbeddedRecipesLoad(t *testing.T) {
	list := List()
	var names []string
	for _, in := range list {
		names = append(names, in.Name)
		require.NotEmpty(t, in.Description, in.Name)
	}
	require.Equal(t, []string{"counting-finetune", "counting-finetune-hf", "counting-finetune-hf-tiny", "counting-finetune-lora-tiny", "counting-finetune-mix-tiny", "counting-finetune-only-tiny", "counting-finetune-qwen2.5vl", "counting-finetune-qwen2.5vl-tiny", "counting-finetune-tiny", "counting-pretrain", "counting-pretrain-long-tiny", "counting-pretrain-tiny", "exevrm", "exevrm-qwen3vl", "exevrm-qwen3vl-tiny", "exevrm-tiny", "molmobot", "molmobot-chain-tiny", "molmobot-mse-tiny", "molmobot-tiny", "pi0", "pi0-tiny", "pi05", "pi05-tiny", "rdvla", "rdvla-chain-tiny", "rdvla-tiny", "smolvla", "smolvla-tiny", "stts-videoqa", "stts-videoqa-hf", "stts-videoqa-hf-tiny", "stts-videoqa-qwen2.5vl", "stts-videoqa-qwen2.5vl-tiny", "stts-videoqa-tiny", "trajvit2", "trajvit2-tiny", "vivit-baseline", "vivit-baseline-tiny"}, names)
	for _, name := range names {
		r, err := Load(name, nil)
		require.NoError(t, err, name)
		require.Equal(t, name, r.Name)
		require.Empty(t, r.Base)
		require.NoError(t, Validate(r), name)
		src, err := Source(name)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(src), "#"), "%s should start with a comment", name)
	}
}

func TestEmbeddedInheritance(t *testing.T) {
	full, err := Load("counting-pretrain", nil)
	require.NoError(t, err)
	require.Equal(t, 224, full.Model.ImageSize)
	require.Equal(t, 3e-4, full.Train.LR)
	require.Equal(t, []string{"counting", "general", "counting_ood"}, full.Eval.Sets)

	tiny, err := Load("counting-pretrain-tiny", nil)
	require.NoError(t, err)
	require.Equal(t, 32, tiny.Model.ImageSize)
	require.Equal(t, 0.05, tiny.Train.WeightDecay) // inherited from counting-pretrain
	require.Equal(t, int64(1), tiny.Train.Seed)    // inherited
	require.Equal(t, []string{"circle", "square", "triangle"}, tiny.Data.Shapes)

	ft, err := Load("counting-finetune-tiny", nil)
	require.NoError(t, err)
	require.Equal(t, "counting-finetune-tiny", ft.Name)
	require.Equal(t, 32, ft.Model.ImageSize) // tiny model via counting-pretrain-tiny
	require.Equal(t, 0.6, ft.Data.CountingFraction)
	require.Equal(t, 600, ft.Train.Steps)
	require.Equal(t, 25, ft.Train.LogEvery)
	require.Equal(t, 200, ft.Checkpoint.Every)
	require.Equal(t, 3, ft.Checkpoint.Keep)
	require.Equal(t, "runs/counting-pretrain-tiny", ft.Train.InitFrom)

	big, err := Load("counting-finetune", nil)
	require.NoError(t, err)
	require.Equal(t, 224, big.Model.ImageSize)
	require.Equal(t, "runs/counting-pretrain", big.Train.InitFrom)
	require.Equal(t, "Fine-tune a counting-pretrain checkpoint on synthetic counting data", big.Description)
}

func TestFileBaseAndOverridePrecedence(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "parent.yaml", `name: parent
description: the parent
base: counting-pretrain-tiny
train:
  steps: 77
  lr: 0.005
data:
  shapes: [circle]
`)
	child := writeFile(t, dir, "child.yaml", `base: parent.yaml
train:
  lr: 0.004
`)
	r, err := Load(child, nil)
	require.NoError(t, err)
	require.Equal(t, "child", r.Name) // name is not inherited; defaults to the file name
	require.Equal(t, "", r.Description)
	require.Equal(t, 77, r.Train.Steps)       // from parent
	require.Equal(t, 0.004, r.Train.LR)       // child wins
	require.Equal(t, 50, r.Train.WarmupSteps) // from counting-pretrain-tiny
	require.Equal(t, []string{"circle"}, r.Data.Shapes)
	require.Equal(t, 64, r.Model.VisionDim)

	r, err = Load(child, []string{"train.lr=3e-4", "train.steps=50", "data.shapes=[circle,square]", "train.init_from=runs/x", "data.overlap=true"})
	require.NoError(t, err)
	require.Equal(t, 3e-4, r.Train.LR)
	require.Equal(t, 50, r.Train.Steps)
	require.Equal(t, []string{"circle", "square"}, r.Data.Shapes)
	require.Equal(t, "runs/x", r.Train.InitFrom)
	require.True(t, r.Data.Overlap)

	// A later override wins over an earlier one.
	r, err = Load("counting-pretrain-tiny", []string{"train.steps=5", "train.steps=6"})
	require.NoError(t, err)
	require.Equal(t, 6, r.Train.Steps)
}

func TestUnknownKey(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "bad.yaml", `name: bad
base: counting-pretrain-tiny
# a comment

train:
  steps: 10
  lrr: 0.1
`)
	_, err := Load(p, nil)
	requireOneLine(t, err)
	require.Equal(t, p+`:7: unknown key "lrr" in train (did you mean "lr"?)`, err.Error())

	p = writeFile(t, dir, "bad2.yaml", "name: bad\nzzzzzz: 1\n")
	_, err = Load(p, nil)
	requireOneLine(t, err)
	require.Contains(t, err.Error(), p+`:2: unknown key "zzzzzz" in recipe (valid keys: name, description, base, task, model`)
}

func TestErrorInBaseFilePointsAtBase(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "parent.yaml", "name: parent\nmodel:\n  image_size: 32\n  patch_sise: 8\n")
	child := writeFile(t, dir, "child.yaml", "base: parent.yaml\ntrain:\n  steps: 3\n")
	_, err := Load(child, nil)
	requireOneLine(t, err)
	require.Equal(t, filepath.Join(dir, "parent.yaml")+`:4: unknown key "patch_sise" in model (did you mean "patch_size"?)`, err.Error())

	// A range error in the inherited value points at the base file; the child's value at the child.
	writeFile(t, dir, "parent2.yaml", "name: parent\ntrain:\n  lr: 20\n")
	child2 := writeFile(t, dir, "child2.yaml", "base: parent2.yaml\ntrain:\n  steps: 3\n")
	_, err = Load(child2, nil)
	require.Equal(t, filepath.Join(dir, "parent2.yaml")+`:3: train.lr: 20 is out of range [0, 10]`, err.Error())
}

func TestWrongType(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "bad.yaml", "name: bad\ntrain:\n  steps: abc\n")
	_, err := Load(p, nil)
	requireOneLine(t, err)
	require.Equal(t, p+`:3: train.steps: expected an integer, got "abc"`, err.Error())

	cases := map[string]string{
		"train:\n  lr: fast\n":             `:2: train.lr: expected a number, got "fast"`,
		"data:\n  overlap: maybe\n":        `:2: data.overlap: expected true or false, got "maybe"`,
		"data:\n  shapes: circle\n":        `:2: data.shapes: expected a list like [a, b], got "circle"`,
		"train: 5\n":                       `:1: train: expected a mapping of keys, got "5"`,
		"data:\n  source:\n    a: b\n":     `:3: data.source: expected a string, got a mapping`,
		"train:\n  steps: 1.5\n":           `:2: train.steps: expected an integer, got "1.5"`,
		"model:\n  image_size: [1, 2]\n":   `:2: model.image_size: expected an integer, got a list`,
		"data:\n  shapes: [circle, [a]]\n": `:2: data.shapes[1]: expected a string, got a list`,
		"name: x\nname: y\n":               `:2: duplicate key "name"`,
		"train:\n  steps: [\n":             `invalid YAML`,
		"- a\n- b\n":                       `:1: a recipe must be a mapping`,
	}
	for body, want := range cases {
		p := writeFile(t, dir, "case.yaml", body)
		_, err := Load(p, nil)
		requireOneLine(t, err)
		require.Contains(t, err.Error(), p, body)
		require.Contains(t, err.Error(), want, body)
	}
}

func TestRangeEnumCross(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"train:\n  lr: 20\n":                              `:2: train.lr: 20 is out of range [0, 10]`,
		"train:\n  steps: 0\n":                            `:2: train.steps: 0 is out of range (must be >= 1)`,
		"model:\n  arch: vit\n":                           `:2: model.arch: "vit" is not one of vlm`,
		"train:\n  schedule: cosin\n":                     `:2: train.schedule: "cosin" is not one of constant, cosine (did you mean "cosine"?)`,
		"data:\n  shapes: [circle, hexagon]\n":            `:2: data.shapes[1]: "hexagon" is not one of circle, square, triangle, diamond, cross`,
		"model:\n  patch_size: 7\n":                       `:2: model.patch_size: 7 does not divide model.image_size (32)`,
		"model:\n  vision_heads: 3\n":                     `:2: model.vision_heads: 3 does not divide model.vision_dim (64)`,
		"model:\n  text_heads: 5\n":                       `:2: model.text_heads: 5 does not divide model.text_dim (64)`,
		"data:\n  min_objects: 9\n":                       `:2: data.min_objects: 9 is greater than data.max_objects (6)`,
		"data:\n  min_size: 0.3\n":                        `:2: data.min_size: 0.3 is greater than data.max_size (0.22)`,
		"train:\n  grad_accum: 5\n":                       `:2: train.grad_accum: 5 does not divide train.batch_size (32)`,
		"eval:\n  ood_max_objects: 3\n":                   `:2: eval.ood_max_objects: 3 is less than data.max_objects (6)`,
		"data:\n  source: folder\n  questions: q.jsonl\n": `data.dir: is required when data.source is folder`,
		"data:\n  shapes: []\n":                           `:2: data.shapes: must not be empty`,
		"task: \"\"\n":                                    `:1: task: is required`,
	}
	for body, want := range cases {
		p := writeFile(t, dir, "case.yaml", body)
		_, err := Load(p, nil)
		requireOneLine(t, err)
		require.Contains(t, err.Error(), want, body)
		if strings.HasPrefix(want, ":") {
			require.True(t, strings.HasPrefix(err.Error(), p+":"), err.Error())
		}
	}

	// Validate on its own has no file positions.
	r := Defaults()
	r.Name = "x"
	r.Train.LR = 20
	require.EqualError(t, Validate(&r), "train.lr: 20 is out of range [0, 10]")
	r.Train.LR = 0.1
	r.Model.Arch = "vit"
	r.Data.MaxSize = 0.6
	require.EqualError(t, Validate(&r), `model.arch: "vit" is not one of vlm, trajvit2, vivit, videovlm, policy, rdvla, pi0, pi05, smolvla (did you mean "vlm"?); data.max_size: 0.6 is out of range [0.02, 0.5]`)

	// Task / architecture / eval-set agreement.
	r = Defaults()
	r.Name = "x"
	r.Model.Arch = "trajvit2"
	require.EqualError(t, Validate(&r), `model.arch: trajvit2 does not fit task vqa (want vlm)`)
	r.Task = "videoclip"
	require.EqualError(t, Validate(&r), `eval.sets: "counting" is not an eval set of task videoclip (vqa: counting, general, counting_ood; videoclip: retrieval; videoqa: videoqa; vla: actions; exevrm: reward); eval.sets: "general" is not an eval set of task videoclip (vqa: counting, general, counting_ood; videoclip: retrieval; videoqa: videoqa; vla: actions; exevrm: reward)`)
	r.Eval.Sets = []string{"retrieval"}
	r.Model.Arch, r.Model.Tubelet = "vivit", 3
	require.EqualError(t, Validate(&r), `model.tubelet: 3 does not divide model.frames (8)`)
}

func TestSetOverrides(t *testing.T) {
	r, err := Load("counting-pretrain-tiny", []string{"train.steps=50"})
	require.NoError(t, err)
	require.Equal(t, 50, r.Train.Steps)

	_, err = Load("counting-pretrain-tiny", []string{"train.steps=abc"})
	requireOneLine(t, err)
	require.Equal(t, `--set train.steps=abc: train.steps: expected an integer, got "abc"`, err.Error())

	_, err = Load("counting-pretrain-tiny", []string{"train.nope=1"})
	requireOneLine(t, err)
	require.Contains(t, err.Error(), `--set train.nope=1: unknown key "nope" in train (valid keys: steps, batch_size,`)

	_, err = Load("counting-pretrain-tiny", []string{"train.stpes=1"})
	require.EqualError(t, err, `--set train.stpes=1: unknown key "stpes" in train (did you mean "steps"?)`)

	_, err = Load("counting-pretrain-tiny", []string{"trian.steps=1"})
	require.EqualError(t, err, `--set trian.steps=1: unknown key "trian" in recipe (did you mean "train"?)`)

	r, err = Load("counting-pretrain-tiny", []string{"data.shapes=[circle]"})
	require.NoError(t, err)
	require.Equal(t, []string{"circle"}, r.Data.Shapes)

	_, err = Load("counting-pretrain-tiny", []string{"data.shapes=[hexagon]"})
	requireOneLine(t, err)
	require.Equal(t, `--set data.shapes=[hexagon]: data.shapes[0]: "hexagon" is not one of circle, square, triangle, diamond, cross`, err.Error())

	_, err = Load("counting-pretrain-tiny", []string{"train.lr=20"})
	require.EqualError(t, err, `--set train.lr=20: train.lr: 20 is out of range [0, 10]`)

	_, err = Load("counting-pretrain-tiny", []string{"train.steps"})
	require.ErrorContains(t, err, "expected key=value")

	_, err = Load("molmobot-tiny", []string{"eval.inference_delay=5"}) // execute 4
	require.ErrorContains(t, err, "eval.inference_delay: 5 must be at most policy.execute (4)")
	_, err = Load("molmobot-tiny", []string{"eval.chunking=rtc", "eval.inference_delay=4", "eval.rtc_schedule=zeros"})
	require.NoError(t, err)

	_, err = Load("counting-pretrain-tiny", []string{"train.lr.x=1"})
	require.ErrorContains(t, err, "train.lr is not a section")

	r, err = Load("counting-pretrain-tiny", []string{"train.init_from="})
	require.NoError(t, err)
	require.Equal(t, "", r.Train.InitFrom)

	// The same checks apply when the override creates a section the file does not have.
	dir := t.TempDir()
	p := writeFile(t, dir, "min.yaml", "name: min\n")
	r, err = Load(p, []string{"checkpoint.keep=9"})
	require.NoError(t, err)
	require.Equal(t, 9, r.Checkpoint.Keep)
}

func TestBaseCycle(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yaml", "name: a\nbase: b.yaml\n")
	writeFile(t, dir, "b.yaml", "name: b\n\nbase: a.yaml\n")
	_, err := Load(a, nil)
	requireOneLine(t, err)
	require.Contains(t, err.Error(), "cycle")
	require.Equal(t, filepath.Join(dir, "b.yaml")+":3: base: cycle: "+a+" -> "+filepath.Join(dir, "b.yaml")+" -> "+filepath.Join(dir, "a.yaml"), err.Error())

	self := writeFile(t, dir, "self.yaml", "base: self.yaml\n")
	_, err = Load(self, nil)
	require.ErrorContains(t, err, "cycle")

	missing := writeFile(t, dir, "missing.yaml", "base: counting-pretrian\n")
	_, err = Load(missing, nil)
	requireOneLine(t, err)
	require.Contains(t, err.Error(), missing+`:1: base: unknown recipe "counting-pretrian" (did you mean "counting-pretrain"?)`)
}

func TestYAMLRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, in := range List() {
		r, err := Load(in.Name, []string{"train.init_from=runs/some thing: x", "data.overlap=true", "train.lr=1.25e-5"})
		require.NoError(t, err, in.Name)
		b, err := r.YAML()
		require.NoError(t, err)
		p := writeFile(t, dir, in.Name+".yaml", string(b))
		r2, err := Load(p, nil)
		require.NoError(t, err, string(b))
		require.Equal(t, r, r2)
		for _, key := range []string{"model:", "data:", "train:", "eval:", "checkpoint:", "init_from:", "workers:", "min_lr_ratio:"} {
			require.Contains(t, string(b), key)
		}
		require.NotContains(t, string(b), "base:")
	}
}

func TestUnknownEmbeddedName(t *testing.T) {
	_, err := Load("counting-pretrian", nil)
	requireOneLine(t, err)
	require.Contains(t, err.Error(), `unknown recipe "counting-pretrian" (did you mean "counting-pretrain"?)`)
	require.Contains(t, err.Error(), "counting-finetune-tiny")

	_, err = Source("nope")
	require.ErrorContains(t, err, `unknown recipe "nope"`)

	_, err = Load("does/not/exist.yaml", nil)
	requireOneLine(t, err)
	require.Contains(t, err.Error(), "exist.yaml")
}

// An empty or comment-only recipe file is an error naming it, not a silent default run.
func TestEmptyRecipeFile(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"empty.yaml": "", "comments.yaml": "# nothing here\n\n# yet\n", "null.yaml": "~\n"} {
		p := writeFile(t, dir, name, body)
		_, err := Load(p, nil)
		require.ErrorContains(t, err, p+": the recipe is empty", name)
	}
	// An empty base is named too.
	writeFile(t, dir, "hollow.yaml", "# a forgotten base\n")
	child := writeFile(t, dir, "child.yaml", "name: c\nbase: hollow.yaml\n")
	_, err := Load(child, nil)
	require.ErrorContains(t, err, "hollow.yaml: the recipe is empty")
}

// A setting the recipe's model.arch or task ignores is an error naming the field, whether it is
// in the file or given with --set; inherited ones are reset to their defaults instead, so a
// resolved recipe holds only settings that act.
func TestSettingIgnoredByArch(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "rd.yaml", "name: rd\nbase: rdvla-tiny\npolicy:\n  euler_steps: 5\n")
	_, err := Load(p, nil)
	require.ErrorContains(t, err, p+":4: policy.euler_steps: is not used by model.arch rdvla (it applies to arch policy, pi0, pi05, smolvla)")
	_, err = Load("rdvla-tiny", []string{"policy.head=mse"})
	require.ErrorContains(t, err, "--set policy.head=mse: policy.head: is not used by model.arch rdvla")
	_, err = Load("counting-pretrain-tiny", []string{"pruning.method=stts"})
	require.ErrorContains(t, err, "pruning.method: is not used by model.arch vlm")
	_, err = Load("molmobot-tiny", []string{"eval.depths=[1, 2]"})
	require.ErrorContains(t, err, "eval.depths: is not used by model.arch policy")
	// The default value is harmless.
	_, err = Load("rdvla-tiny", []string{"policy.head=flow"})
	require.NoError(t, err)
	// A base with another arch: its settings for that arch are inherited silently and reset.
	q := writeFile(t, dir, "switch.yaml", "name: sw\nbase: molmobot\nmodel:\n  arch: rdvla\n") // molmobot sets time_samples: 8
	r, err := Load(q, nil)
	require.NoError(t, err)
	require.Equal(t, Defaults().Policy.TimeSamples, r.Policy.TimeSamples)
	require.Equal(t, Defaults().Pruning, r.Pruning)
}

// TestPruningMethodAlias: "exevrm", the former name of the spatiotemporal pruning method, still
// loads (recipes and checkpoints written before the rename) and means spatiotemporal.
func TestPruningMethodAlias(t *testing.T) {
	for _, m := range []string{"exevrm", "spatiotemporal"} {
		r, err := Load("stts-videoqa-tiny", []string{"pruning.method=" + m})
		require.NoError(t, err, m)
		require.Equal(t, "spatiotemporal", r.Pruning.Method, m)
	}
	r, err := Load("exevrm-tiny", nil)
	require.NoError(t, err)
	require.Equal(t, "spatiotemporal", r.Pruning.Method)
}
