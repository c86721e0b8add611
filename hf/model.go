package hf

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/hub"
	"github.com/reelml/reel/models"
)

// Transforms between a checkpoint tensor and its reel variable.
const (
	TransformNone      = ""          // same shape and layout
	TransformTranspose = "transpose" // nn.Linear weight [out, in] → reel Linear weights [in, out]
	TransformPatch     = "patch"     // nn.Conv2d patch embedding [D, C, p, p] → Linear weights [p·p·C, D]
)

// Param ties one checkpoint tensor to the reel variable holding it: the mapping a fine-tuned
// model is exported back through (Name/Source, HFShape and DType are the checkpoint's).
type Param struct {
	Var       string // reel variable path, e.g. /model/layers/0/self_attn/q_proj/weights
	Name      string // transformers 5.x name, e.g. model.layers.0.self_attn.q_proj.weight
	Source    string // the name in the checkpoint (differs from Name for a 4.x VLM)
	File      string // the safetensors file holding it
	HFShape   []int  // shape in the checkpoint
	Shape     []int  // shape of the reel variable
	DType     string // stored dtype: F32, BF16 or F16
	Transform string
}

// Model is a loaded checkpoint: its configuration, the mapping of its tensors and the store
// holding them as f32 variables.
type Model struct {
	Dir     string
	Config  *Config
	Layout  string       // key layout of the checkpoint (Layout4, Layout5 or Layout5Flat)
	Files   []string     // safetensors files read
	Params  []Param      // in the order of the reel variables
	Ignored []string     // checkpoint tensors reel does not use (tied lm_head, non-persistent buffers, unused heads)
	Store   *model.Store // the f32 variables (nil for Inspect)
}

// NumParams is the number of model parameters (tied embeddings counted once).
func (m *Model) NumParams() int {
	n := 0
	for _, p := range m.Params {
		n += shapes.Make(dtypes.Float32, p.Shape...).Size()
	}
	return n
}

// Load reads the model directory: config.json, the safetensors weights (every tensor checked
// against the architecture: missing, unexpected and mis-shaped tensors are one error naming each
// tensor and both shapes) into a new store of f32 variables.
//
// dir may also name a Hugging Face repository ORG/NAME[@REVISION] already in the Hub cache
// (hub.Model).
func Load(backend compute.Backend, dir string) (*Model, error) {
	dir, err := hub.Model(dir)
	if err != nil {
		return nil, err
	}
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	w, err := ReadWeights(dir)
	if err != nil {
		return nil, err
	}
	return FromWeights(backend, cfg, w)
}

// FromWeights maps read weights onto cfg's architecture and fills a store with them (see Load).
func FromWeights(backend compute.Backend, cfg *Config, w *Weights) (*Model, error) {
	m, err := Match(backend, cfg, w)
	if err != nil {
		return nil, err
	}
	m.Store = model.NewStore()
	for _, p := range m.Params {
		val, err := convert(w.Tensors[p.Name], p)
		if err != nil {
			return nil, fmt.Errorf("hf: %s: tensor %s: %w", w.Dir, p.Source, err)
		}
		if _, err := m.Store.CreateVariable(p.Var, val); err != nil {
			return nil, fmt.Errorf("hf: %s: tensor %s: %w", w.Dir, p.Source, err)
		}
	}
	return m, nil
}

// Inspect reads a model directory's config.json and safetensors headers (no tensor data) and maps
// the checkpoint onto the architecture: the Model without a store.
// dir may name a cached Hugging Face repository, as for Load.
func Inspect(backend compute.Backend, dir string) (*Model, error) {
	dir, err := hub.Model(dir)
	if err != nil {
		return nil, err
	}
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	w, err := ReadWeightShapes(dir)
	if err != nil {
		return nil, err
	}
	return Match(backend, cfg, w)
}

// Match maps the checkpoint's tensors (w.Shapes) onto cfg's architecture: one Param per reel
// variable, or one error naming every missing, unexpected and mis-shaped tensor.
func Match(backend compute.Backend, cfg *Config, w *Weights) (*Model, error) {
	// The config must describe tensors of about the size the checkpoint holds before anything
	// is built from it.
	var have float64
	for _, s := range w.Shapes {
		have += float64(s.Size())
	}
	if need := cfg.MinParams(); need > have {
		return nil, fmt.Errorf("hf: %s: config.json describes a %s of at least %.3g parameters, but the checkpoint's tensors hold %.3g (check vocab_size, hidden_size, num_hidden_layers, patch_size)",
			w.Dir, cfg.Arch, need, have)
	}
	vars, err := Variables(backend, cfg)
	if err != nil {
		return nil, err
	}
	m := &Model{Dir: w.Dir, Config: cfg, Layout: w.Layout, Files: w.Files}
	used := map[string]bool{}
	var missing, misShaped []string
	for _, v := range vars {
		name, tr := HFName(v.Path, len(v.Shape))
		st, ok := w.Shapes[name]
		if !ok {
			missing = append(missing, fmt.Sprintf("%s %v", name, hfShape(v.Shape, tr, cfg)))
			continue
		}
		used[name] = true
		hs := st.Dimensions
		if !slices.Equal(reelShape(hs, tr), v.Shape) {
			misShaped = append(misShaped, fmt.Sprintf("%s: checkpoint %v, model %v", name, hs, hfShape(v.Shape, tr, cfg)))
			continue
		}
		m.Params = append(m.Params, Param{Var: v.Path, Name: name, Source: w.Source[name], File: w.File[name],
			HFShape: slices.Clone(hs), Shape: slices.Clone(v.Shape), DType: dtypeName(st.DType), Transform: tr})
	}
	var unexpected []string
	for _, name := range slices.Sorted(maps.Keys(w.Shapes)) {
		if used[name] {
			continue
		}
		if ignorable(cfg, name) {
			m.Ignored = append(m.Ignored, w.Source[name])
			continue
		}
		unexpected = append(unexpected, fmt.Sprintf("%s %v", w.Source[name], w.Shapes[name].Dimensions))
	}
	if len(missing)+len(unexpected)+len(misShaped) > 0 {
		var parts []string
		if len(missing) > 0 {
			parts = append(parts, "missing "+strings.Join(missing, ", "))
		}
		if len(unexpected) > 0 {
			parts = append(parts, "unexpected "+strings.Join(unexpected, ", "))
		}
		if len(misShaped) > 0 {
			parts = append(parts, "mis-shaped "+strings.Join(misShaped, ", "))
		}
		return nil, fmt.Errorf("hf: %s: the checkpoint does not match %s as config.json configures it: %s",
			w.Dir, cfg.Arch, strings.Join(parts, "; "))
	}
	return m, nil
}

// HFName is the transformers name of a reel variable path and the transform between them:
// "/a/b/weights" ↔ a.b.weight (a Linear: transposed; the patch_embedding convolution:
// permuted, see models.PatchEmbedHF), "/a/b/biases" ↔ a.b.bias, "/a/b/x" ↔ a.b.x.
func HFName(path string, rank int) (string, string) {
	name := strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", ".")
	switch {
	case strings.HasSuffix(name, ".patch_embedding.weights") && rank == 2:
		return strings.TrimSuffix(name, "s"), TransformPatch
	case strings.HasSuffix(name, ".weights") && rank == 2:
		return strings.TrimSuffix(name, "s"), TransformTranspose
	case strings.HasSuffix(name, ".biases"):
		return strings.TrimSuffix(name, "es"), TransformNone
	}
	return name, TransformNone
}

// reelShape is the reel shape of a checkpoint tensor of shape hs under transform tr.
func reelShape(hs []int, tr string) []int {
	switch {
	case tr == TransformTranspose && len(hs) == 2:
		return []int{hs[1], hs[0]}
	case tr == TransformPatch && len(hs) == 4:
		return []int{hs[2] * hs[3] * hs[1], hs[0]}
	}
	return hs
}

// hfShape is the checkpoint shape a reel variable of shape s expects under transform tr.
func hfShape(s []int, tr string, cfg *Config) []int {
	switch tr {
	case TransformTranspose:
		return []int{s[1], s[0]}
	case TransformPatch:
		v := cfg.VisionTower()
		return []int{s[1], v.Channels, v.PatchSize, v.PatchSize}
	}
	return s
}

// convert turns a stored tensor into the f32 value of its reel variable.
func convert(t *tensors.Tensor, p Param) (*tensors.Tensor, error) {
	v, err := Float32Values(t)
	if err != nil {
		return nil, err
	}
	hs := p.HFShape
	switch p.Transform {
	case TransformTranspose: // [out, in] → [in, out]
		o, in := hs[0], hs[1]
		out := make([]float32, len(v))
		for i := range o {
			for j := range in {
				out[j*o+i] = v[i*in+j]
			}
		}
		v = out
	case TransformPatch: // [D, C, p, q] → [(py, px, c), D]
		d, c, ph, pw := hs[0], hs[1], hs[2], hs[3]
		out := make([]float32, len(v))
		for o := range d {
			for ci := range c {
				for y := range ph {
					for x := range pw {
						out[((y*pw+x)*c+ci)*d+o] = v[((o*c+ci)*ph+y)*pw+x]
					}
				}
			}
		}
		v = out
	}
	return tensors.FromFlatDataAndDimensions(v, p.Shape...), nil
}

// ignorable reports checkpoint tensors transformers itself does not load into these models:
// non-persistent buffers some exporters saved, the reel.* tensors of a reel export, lm_head when the embeddings are tied, and a
// vision tower's pooling head, which PaliGemma and LLaVA never run.
func ignorable(cfg *Config, name string) bool {
	switch {
	case strings.HasSuffix(name, ".position_ids"), strings.HasSuffix(name, "rotary_emb.inv_freq"):
		return true
	case strings.HasPrefix(name, "reel."): // a reel export's variables without a transformers name (ReelName)
		return true
	case name == "lm_head.weight" && cfg.Text() != nil && cfg.Text().TieEmbeddings:
		return true
	case cfg.Kind == KindVLM && strings.HasPrefix(name, "model.vision_tower.vision_model.head."):
		return true
	}
	return false
}

// Variable is a reel variable an architecture uses: its path and shape.
type Variable struct {
	Path  string
	Shape []int
}

// Variables returns the variables of cfg's architecture, in creation order, without building
// anything at the configured size: the forward graph is built (on a scratch store: no weights,
// nothing compiled) with at most 2 and 3 layers per tower, the layers are checked to repeat
// alike between those two builds, and the configured number of layers is filled in by repeating
// the last one's variables. An architecture whose layers do not repeat alike is built as
// configured.
func Variables(backend compute.Backend, cfg *Config) ([]Variable, error) {
	if maxLayers(cfg) <= 3 {
		return buildVariables(backend, cfg)
	}
	v2, err2 := buildVariables(backend, withLayers(cfg, 2))
	v3, err3 := buildVariables(backend, withLayers(cfg, 3))
	if err2 == nil && err3 == nil {
		if guess, ok := repeatLayers(v2, withLayers(cfg, 3)); ok && slices.EqualFunc(guess, v3, sameVariable) {
			if out, ok := repeatLayers(v2, cfg); ok {
				return out, nil
			}
		}
	}
	return buildVariables(backend, cfg)
}

func sameVariable(a, b Variable) bool { return a.Path == b.Path && slices.Equal(a.Shape, b.Shape) }

// layerPath splits a variable path at its layer index: "/model/layers/3/mlp/x" → "/model/layers/",
// 3, "/mlp/x".
var layerPath = regexp.MustCompile(`^(.*?/layers/)(\d+)(/.*)$`)

// towerLayers is the configured number of layers of the tower a layer prefix belongs to.
func towerLayers(cfg *Config, prefix string) int {
	if strings.Contains(prefix, "vision") {
		if v := cfg.VisionTower(); v != nil {
			return v.Layers
		}
		return -1
	}
	if t := cfg.Text(); t != nil {
		return t.Layers
	}
	if cfg.Contrastive != nil {
		return cfg.Contrastive.Text.Layers
	}
	return -1
}

// repeatLayers extends vars, built with two layers per tower (fewer where the tower has fewer),
// to the layer counts of cfg by repeating each tower's last built layer after it.
func repeatLayers(vars []Variable, cfg *Config) ([]Variable, bool) {
	last := map[string]int{} // prefix → index of the last built layer
	for _, v := range vars {
		if m := layerPath.FindStringSubmatch(v.Path); m != nil {
			i, _ := strconv.Atoi(m[2])
			last[m[1]] = max(last[m[1]], i)
		}
	}
	var out []Variable
	for k, v := range vars {
		out = append(out, v)
		m := layerPath.FindStringSubmatch(v.Path)
		if m == nil {
			continue
		}
		i, _ := strconv.Atoi(m[2])
		if i != last[m[1]] {
			continue
		}
		if k+1 < len(vars) {
			if n := layerPath.FindStringSubmatch(vars[k+1].Path); n != nil && n[1] == m[1] && n[2] == m[2] {
				continue // not the layer's last variable yet
			}
		}
		want := towerLayers(cfg, m[1])
		if want < i+1 {
			return nil, false
		}
		var layer []Variable // the last built layer's variables
		for _, u := range vars {
			if n := layerPath.FindStringSubmatch(u.Path); n != nil && n[1] == m[1] && n[2] == m[2] {
				layer = append(layer, u)
			}
		}
		for j := i + 1; j < want; j++ {
			for _, u := range layer {
				n := layerPath.FindStringSubmatch(u.Path)
				out = append(out, Variable{Path: n[1] + strconv.Itoa(j) + n[3], Shape: slices.Clone(u.Shape)})
			}
		}
	}
	return out, true
}

// maxLayers is the largest layer count of cfg's towers.
func maxLayers(cfg *Config) int {
	n := 0
	if t := cfg.Text(); t != nil {
		n = max(n, t.Layers)
	}
	if cfg.Contrastive != nil {
		n = max(n, cfg.Contrastive.Text.Layers)
	}
	if v := cfg.VisionTower(); v != nil {
		n = max(n, v.Layers)
	}
	return n
}

// withLayers is a copy of cfg with at most k layers per tower.
func withLayers(cfg *Config, k int) *Config {
	c := *cfg
	cut := func(n *int) { *n = min(*n, k) }
	switch {
	case c.Decoder != nil:
		d := *c.Decoder
		c.Decoder = &d
	case c.PaliGemma != nil:
		p := *c.PaliGemma
		c.PaliGemma = &p
	case c.Llava != nil:
		l := *c.Llava
		c.Llava = &l
	case c.Contrastive != nil:
		x := *c.Contrastive
		c.Contrastive = &x
		cut(&x.Text.Layers)
	case c.Vision != nil:
		v := *c.Vision
		c.Vision = &v
	case c.QwenVL != nil:
		q := *c.QwenVL
		c.QwenVL = &q
	case c.Idefics3 != nil:
		x := *c.Idefics3
		c.Idefics3 = &x
	}
	if t := c.Text(); t != nil {
		cut(&t.Layers)
		if len(t.LayerTypes) > t.Layers {
			t.LayerTypes = t.LayerTypes[:t.Layers]
		}
	}
	if v := c.VisionTower(); v != nil {
		cut(&v.Layers)
	}
	return &c
}

// buildVariables builds cfg's forward graph once on a scratch store (no weights, nothing
// compiled) and returns the variables it creates, in creation order.
func buildVariables(backend compute.Backend, cfg *Config) (vars []Variable, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("hf: building %s: %v", cfg.Arch, r)
		}
	}()
	store := model.NewStore()
	g := graph.NewGraph(backend, "hf_variables")
	defer g.Finalize()
	in := exampleInputs(g, cfg)
	Forward(store.RootScope(), cfg, in)
	for v := range store.IterVariables() {
		vars = append(vars, Variable{Path: v.Path(), Shape: slices.Clone(v.Shape().Dimensions)})
	}
	return vars, nil
}

// Inputs are the graph inputs of a forward pass (nil when the model takes none of that kind).
type Inputs struct {
	IDs        *graph.Node // [B, T] int32 token ids (VLMs: with image placeholders)
	Pixels     *graph.Node // [Bi, C, H, W] f32 pixel_values
	TokenTypes *graph.Node // [B, T] int32 (PaliGemma)

	// Qwen2-VL / Qwen2.5-VL: Pixels are pixel_values [N, C·T·P·P]
	VideoPixels            *graph.Node   // pixel_values_videos [N, C·T·P·P]
	Positions              *graph.Node   // [3, B, T] int32 M-RoPE positions
	ImageGrids, VideoGrids []models.Grid // image_grid_thw, video_grid_thw (static)
}

// Outputs are a forward pass's results under transformers' names.
type Outputs struct {
	Logits                        *graph.Node
	ImageEmbeds, TextEmbeds       *graph.Node
	LogitsPerImage                *graph.Node
	LastHiddenState, PoolerOutput *graph.Node
}

// exampleInputs are one-example parameters for shape discovery.
func exampleInputs(g *graph.Graph, cfg *Config) Inputs {
	var in Inputs
	if q := cfg.QwenVL; q != nil { // one image of 2×2 patches: one merged token
		m := q.Vision.MergeSize
		in.ImageGrids = []models.Grid{{T: 1, H: m, W: m}}
		in.Pixels = graph.Parameter(g, "pixels", shapes.Make(dtypes.Float32, m*m, q.Vision.PatchDim()))
		in.IDs = graph.Parameter(g, "ids", shapes.Make(dtypes.Int32, 1, 2))
		in.Positions = graph.Parameter(g, "positions", shapes.Make(dtypes.Int32, 3, 1, 2))
		return in
	}
	if v := cfg.VisionTower(); v != nil {
		in.Pixels = graph.Parameter(g, "pixels", shapes.Make(dtypes.Float32, 1, v.Channels, v.ImageSize, v.ImageSize))
	}
	if cfg.Kind != KindVision {
		t := 1 + cfg.ImageTokens()
		in.IDs = graph.Parameter(g, "ids", shapes.Make(dtypes.Int32, 1, t))
	}
	return in
}

// Forward builds cfg's forward pass in scope (the store's root).
func Forward(scope *model.Scope, cfg *Config, in Inputs) Outputs {
	switch {
	case cfg.Decoder != nil:
		return Outputs{Logits: models.CausalLM(scope, *cfg.Decoder, in.IDs)}
	case cfg.PaliGemma != nil:
		return Outputs{Logits: models.PaliGemma(scope, *cfg.PaliGemma, in.IDs, in.Pixels, in.TokenTypes)}
	case cfg.Llava != nil:
		return Outputs{Logits: models.Llava(scope, *cfg.Llava, in.IDs, in.Pixels)}
	case cfg.QwenVL != nil:
		return Outputs{Logits: models.QwenVL(scope, *cfg.QwenVL, models.QwenVLInputs{IDs: in.IDs, Positions: in.Positions,
			Images: in.Pixels, ImageGrids: in.ImageGrids, Videos: in.VideoPixels, VideoGrids: in.VideoGrids})}
	case cfg.Idefics3 != nil:
		return Outputs{Logits: models.Idefics3(scope, *cfg.Idefics3, in.IDs, in.Pixels)}
	case cfg.Contrastive != nil:
		o := models.Contrastive(scope, *cfg.Contrastive, in.Pixels, in.IDs)
		return Outputs{ImageEmbeds: o.ImageEmbeds, TextEmbeds: o.TextEmbeds, LogitsPerImage: o.LogitsPerImage}
	default:
		o := models.VisionTower(models.WithInit(scope).In("vision_model"), *cfg.Vision, in.Pixels)
		return Outputs{LastHiddenState: o.Last, PoolerOutput: o.Pooled}
	}
}

// CopyInto sets the variables of store (built by the same architecture, e.g. a training task's
// fresh initialisation) to the checkpoint's weights and returns how many it set. A variable of
// the checkpoint that store lacks, or has with another shape, is an error.
func (m *Model) CopyInto(store *model.Store) (int, error) {
	for _, p := range m.Params {
		dst := store.GetVariable(p.Var)
		if dst == nil {
			return 0, fmt.Errorf("hf: %s: the model has no variable %s for %s", m.Dir, p.Var, p.Source)
		}
		val, err := m.Store.GetVariable(p.Var).Value()
		if err != nil {
			return 0, fmt.Errorf("hf: %s: %s: %w", m.Dir, p.Source, err)
		}
		if !val.Shape().Equal(dst.Shape()) {
			return 0, fmt.Errorf("hf: %s: %s has shape %s, the model's %s has %s", m.Dir, p.Source, val.Shape(), p.Var, dst.Shape())
		}
		if err := dst.SetValue(val); err != nil {
			return 0, fmt.Errorf("hf: %s: %s: %w", m.Dir, p.Source, err)
		}
	}
	return len(m.Params), nil
}
