package hf

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/reelml/reel/internal/safeio"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/internal/atomicfile"
	"github.com/reelml/reel/models"
)

// InitResult describes a directory written by Init.
type InitResult struct {
	Dir     string   `json:"dir"`
	Arch    string   `json:"architecture"`
	Layout  string   `json:"layout"`
	DType   string   `json:"dtype"`
	Tensors int      `json:"tensors"`
	Params  int      `json:"parameters"`
	Files   []string `json:"files"`
}

// initFiles are the files Init writes; a directory holding only these is one Init may replace.
var initFiles = []string{"config.json", "generation_config.json", "model.safetensors"}

// Init writes a random-weight model directory of the architecture configPath (a config.json)
// configures, as transformers' AutoModel*.from_config(config) followed by save_pretrained(out)
// would: config.json, generation_config.json (generative models with bos/eos ids) and
// model.safetensors under transformers' names and shapes (Linear weights [out, in], the patch
// embedding [D, C, p, p]; tied lm_head not saved), in the config's torch_dtype / dtype (float32,
// bfloat16 or float16; float32 when unset). VLMs are written in the layout transformers 5 saves
// (Layout5Flat), with the SigLIP pooling head their vision tower holds when vision_use_head is
// true. The values are reel's initialisation (what a fresh training run starts from: LeCun-normal
// Linear weights, N(0, 0.02²) embeddings, zero biases, norms at their identity), drawn from seed,
// rather than transformers' N(0, initializer_range²): the names, shapes, dtypes and layout are
// transformers', the random values are not meant to match any.
//
// out must not exist, be empty, or hold only the files Init writes (a previous Init's output);
// the directory is built aside and renamed into place, so an error leaves out as it was.
func Init(backend compute.Backend, configPath, out string, seed int64) (*InitResult, error) {
	raw, err := safeio.ReadFile(configPath, safeio.JSONLimit)
	if err != nil {
		return nil, fmt.Errorf("hf init: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("hf init: %s: invalid JSON: %w", configPath, err)
	}
	cfg, err := ParseConfig(m)
	if err != nil {
		return nil, fmt.Errorf("hf init: %s: %w", configPath, err)
	}
	name := "F32"
	switch cfg.DType {
	case "", "float32", "auto":
	case "bfloat16":
		name = "BF16"
	case "float16":
		name = "F16"
	default:
		return nil, fmt.Errorf("hf init: %s: field torch_dtype: %q (want float32, bfloat16 or float16)", configPath, cfg.DType)
	}
	if err := checkInitOut(out); err != nil {
		return nil, err
	}
	store, err := initStore(backend, cfg, m, seed)
	if err != nil {
		return nil, fmt.Errorf("hf init: %s: %w", configPath, err)
	}
	res := &InitResult{Dir: out, Arch: cfg.Arch, Layout: Layout5, DType: name}
	if cfg.Kind == KindVLM && cfg.Idefics3 == nil { // Idefics3/SmolVLM: one layout in 4.x and 5.x
		res.Layout = Layout5Flat
	}
	named := map[string]*tensors.Tensor{}
	for v := range store.IterVariables() {
		if strings.Contains(v.Path(), "#") { // the store's RNG state
			continue
		}
		hfName, tr := HFName(v.Path(), v.Shape().Rank())
		if ignorable(cfg, hfName) && !strings.HasPrefix(hfName, "model.vision_tower.vision_model.head.") {
			continue
		}
		val, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("hf init: %s: %w", v.Path(), err)
		}
		p := Param{Var: v.Path(), Name: hfName, Transform: tr, DType: name}
		t, err := toHF(val, p, cfg)
		if err != nil {
			return nil, fmt.Errorf("hf init: %s: %w", v.Path(), err)
		}
		if res.Layout == Layout5Flat {
			hfName = Layout5ToFlat(hfName)
		}
		named[hfName] = t
		res.Params += t.Shape().Size()
	}
	res.Tensors = len(named)

	parent := filepath.Dir(filepath.Clean(out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("hf init: --out %s: %w", out, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".init-")
	if err != nil {
		return nil, fmt.Errorf("hf init: --out %s: %w", out, err)
	}
	defer os.RemoveAll(tmp)
	if err := checkpoints.WriteSafetensors(filepath.Join(tmp, "model.safetensors"), named, map[string]string{"format": "pt"}); err != nil {
		return nil, fmt.Errorf("hf init: %w", err)
	}
	if _, ok := m["architectures"]; !ok {
		m["architectures"] = []string{cfg.Arch}
	}
	files := []string{"config.json", "model.safetensors"}
	if err := writeInitJSON(filepath.Join(tmp, "config.json"), m); err != nil {
		return nil, err
	}
	if t := cfg.Text(); t != nil && (t.BOS != nil || t.EOS != nil) {
		gen := map[string]any{}
		if t.BOS != nil {
			gen["bos_token_id"] = oneOrList(t.BOS)
		}
		if t.EOS != nil {
			gen["eos_token_id"] = oneOrList(t.EOS)
		}
		if err := writeInitJSON(filepath.Join(tmp, "generation_config.json"), gen); err != nil {
			return nil, err
		}
		files = append(files, "generation_config.json")
	}
	slices.Sort(files)
	res.Files = files
	if err := swapInto(tmp, out); err != nil {
		return nil, err
	}
	return res, nil
}

// initStore builds cfg's variables in a store seeded with seed and initialises them.
func initStore(backend compute.Backend, cfg *Config, m map[string]any, seed int64) (store *model.Store, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("building %s: %v", cfg.Arch, r)
		}
	}()
	store = model.NewStore()
	if err := store.SetRNGStateFromSeed(seed); err != nil {
		return nil, err
	}
	g := graph.NewGraph(backend, "hf_init")
	in := exampleInputs(g, cfg)
	Forward(store.RootScope(), cfg, in)
	if v := cfg.VisionTower(); cfg.Kind == KindVLM && cfg.Idefics3 == nil && v.Arch == "siglip" && visionUseHead(m) { // Idefics3VisionTransformer has no head
		// The VLM never runs its tower's pooling head, but transformers builds (and saves) it.
		vh := *v
		vh.UseHead = true
		models.VisionTower(models.WithInit(store.RootScope()).In("model").In("vision_tower").In("vision_model"), vh, in.Pixels)
	}
	g.Finalize()
	if err := store.InitializeVariables(backend, nil); err != nil {
		return nil, err
	}
	return store, nil
}

// visionUseHead is vision_config.vision_use_head (SiglipVisionConfig's default: true).
func visionUseHead(m map[string]any) bool {
	vc, _ := m["vision_config"].(map[string]any)
	b, ok := vc["vision_use_head"].(bool)
	return !ok || b
}

func oneOrList(ids []int) any {
	if len(ids) == 1 {
		return ids[0]
	}
	return ids
}

func writeInitJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("hf init: %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, append(b, '\n'))
}

// checkInitOut refuses an out that exists and holds anything but Init's own files.
func checkInitOut(out string) error {
	st, err := os.Stat(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hf init: --out %s: %w", out, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("hf init: --out %s exists and is not a directory", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("hf init: --out %s: %w", out, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !slices.Contains(initFiles, e.Name()) {
			return fmt.Errorf("hf init: --out %s is not empty (it holds %s, which hf init did not write): choose another directory", out, e.Name())
		}
	}
	return nil
}

// swapInto renames the built directory tmp to out, moving a previous out aside first and
// removing it only once the new one is in place.
func swapInto(tmp, out string) error {
	old := ""
	if _, err := os.Stat(out); err == nil {
		old = tmp + ".old"
		if err := os.Rename(out, old); err != nil {
			return fmt.Errorf("hf init: --out %s: %w", out, err)
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		if old != "" {
			os.Rename(old, out)
		}
		return fmt.Errorf("hf init: --out %s: %w", out, err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}
