package tasks

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
)

const smolVLATiny = "testdata/lerobot_smolvla/tiny"

// smolVLATinyNet is the smolvla network of the tiny LeRobot directory with its statistics.
func smolVLATinyNet(t *testing.T, dir string) (*leRobotSmolVLA, models.SmolVLAPolicy, policy.Spec) {
	l, err := openLeRobotSmolVLA(dir)
	require.NoError(t, err)
	spec, err := l.spec("lerobot:tiny", 6)
	require.NoError(t, err)
	norm, err := l.common.normalization(spec)
	require.NoError(t, err)
	p := models.SmolVLAPolicy{Config: l.config(len(spec.Cameras), spec.StateDim, spec.ActionDim, spec.Horizon, l.cfg.NumSteps), Norm: norm}
	require.NoError(t, p.Validate())
	return l, p, spec
}

// smolVLAStore creates net's variables (a sampling graph built once on zeros).
func smolVLAStore(t *testing.T, net models.Policy) *model.Store {
	store := model.NewStore()
	require.NoError(t, store.SetRNGStateFromSeed(1))
	e, err := model.NewExecCanonical(goBackend(t), store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		return []*Node{net.Loss(scope, models.PolicyBatch{Images: in[0], Tokens: in[1], State: in[2], Actions: in[3],
			Noise: map[string]*Node{"noise": in[4], "time": in[5]}})}
	}, -1, -1, false, true, true)
	require.NoError(t, err)
	defer e.Finalize()
	_, err = e.Exec(tensors.FromShape(shapesF32(1, 1, 16, 16, 3)), tensors.FromFlatDataAndDimensions(make([]int32, 6), 1, 6),
		tensors.FromShape(shapesF32(1, 6)), tensors.FromShape(shapesF32(1, 5, 6)), tensors.FromShape(shapesF32(1, 5, 32)),
		tensors.FromShape(shapesF32(1)))
	require.NoError(t, err)
	return store
}

// The tiny LeRobot-layout smolvla (written by gen_smolvla_twin.py) opens with the sizes of its
// tensors: the cut SmolVLM2 (3 text layers, heads of 64, GQA 2/1, pixel-shuffle scale 2), the
// expert 12 wide, and the spec of its features.
func TestLeRobotSmolVLADirectoryIsRecognised(t *testing.T) {
	require.True(t, isLeRobotSmolVLA(smolVLATiny))
	require.False(t, isLeRobotSmolVLA(leRobotTiny), "a LeRobot pi0 is not a smolvla")
	require.False(t, isLeRobotPi0(smolVLATiny), "a LeRobot smolvla is not a pi0")
	l, p, spec := smolVLATinyNet(t, smolVLATiny)
	c := p.Config
	require.Equal(t, 3, c.VLM.Text.Layers)
	require.Equal(t, 2, c.VLM.Text.Heads)
	require.Equal(t, 1, c.VLM.Text.KVHeads)
	require.Equal(t, 64, c.VLM.Text.HeadDim)
	require.Equal(t, 2, c.VLM.ScaleFactor)
	require.Equal(t, 16, c.VLM.Vision.ImageSize)
	require.Equal(t, 12, c.Expert.Hidden)
	require.Equal(t, 16, c.Expert.Intermediate)
	require.True(t, c.CrossAttn)
	require.Equal(t, 2, c.SelfAttnEvery)
	require.Equal(t, 10, l.cfg.NumSteps)
	require.Equal(t, []policy.Camera{{Name: "cam", Width: 16, Height: 16}}, spec.Cameras)
	require.Equal(t, 6, spec.StateDim)
	require.Equal(t, 6, spec.ActionDim)
	require.Equal(t, 5, spec.Horizon)
	require.Equal(t, 3, spec.Execute)
	require.Equal(t, policy.ResizePadTopLeft, spec.Resize, "SmolVLA's resize_with_pad")
	// SmolVLM2-500M's expert: get_intermediate_size(960·0.75) = 2048.
	require.Equal(t, 2048, models.SmolVLAIntermediate(720))
}

// Parity with LeRobot's SmolVLA: reel's training loss (the same noise and flow times) and its
// sampled actions (the same starting noise, 10 Euler steps, unnormalised by the postprocessor's
// statistics) on the tiny LeRobot directory equal the PyTorch twin's within 1e-4
// (testdata/lerobot_smolvla/parity.safetensors, README.md there).
func TestLeRobotSmolVLAParityWithPyTorchTwin(t *testing.T) {
	l, net, _ := smolVLATinyNet(t, smolVLATiny)
	want, _, err := checkpoints.ReadSafetensors("testdata/lerobot_smolvla/parity.safetensors")
	require.NoError(t, err)
	store := smolVLAStore(t, net)
	n, err := l.loadWeights(store)
	require.NoError(t, err)
	require.Greater(t, n, 50)
	requireFlowParity(t, net, store, want, true)
}

// A directory whose tensors do not fit names each problem on its own line.
func TestLeRobotSmolVLANamesMissingUnexpectedMisshaped(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"config.json", "policy_preprocessor.json", "policy_preprocessor_step_5_normalizer_processor.safetensors"} {
		b, err := os.ReadFile(filepath.Join(smolVLATiny, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	w, _, err := checkpoints.ReadSafetensors(filepath.Join(smolVLATiny, "model.safetensors"))
	require.NoError(t, err)
	delete(w, "model.state_proj.bias")
	w["model.vlm_with_expert.extra.weight"] = tensors.FromFlatDataAndDimensions([]float32{1}, 1)
	w["model.vlm_with_expert.lm_expert.layers.1.self_attn.k_proj.weight"] = tensors.FromFlatDataAndDimensions(make([]float32, 64*12), 64, 12)
	require.NoError(t, checkpoints.WriteSafetensors(filepath.Join(dir, "model.safetensors"), w, nil))
	_, net, _ := smolVLATinyNet(t, smolVLATiny)
	l, err := openLeRobotSmolVLA(dir)
	require.NoError(t, err)
	_, err = l.loadWeights(smolVLAStore(t, net))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 4, err.Error())
	require.Contains(t, err.Error(), "missing: model.state_proj.bias")
	require.Contains(t, err.Error(), "unexpected: model.vlm_with_expert.extra.weight")
	// A cross-attention layer's k_proj reads the VLM's keys (64 wide), not the expert's stream.
	require.Contains(t, err.Error(), "mis-shaped: model.vlm_with_expert.lm_expert.layers.1.self_attn.k_proj.weight")
}

// OpenPolicy opens the LeRobot smolvla directory as it is: its spec is the directory's, and its
// action chunks are finite and in the spec's shape.
func TestLeRobotSmolVLAOpenPolicyAsIs(t *testing.T) {
	p, err := OpenPolicy(goBackend(t), smolVLATiny, nil, 1)
	require.NoError(t, err)
	defer p.Close()
	spec := p.Spec()
	require.Equal(t, "lerobot:tiny", spec.Name)
	require.Equal(t, 5, spec.Horizon)
	obs := policy.Observation{Images: map[string]policy.Image{"cam": policy.NewImage(16, 16)}, State: make([]float32, 6), Instruction: "pick the red square"}
	acts, err := p.Act([]policy.Observation{obs})
	require.NoError(t, err)
	require.Len(t, acts, 1)
	require.Len(t, acts[0], 5)
	require.Len(t, acts[0][0], 6)
	for _, v := range acts[0][0] {
		require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0))
	}
}

// Settings reel's smolvla does not implement are refused with one line naming the key.
func TestLeRobotSmolVLARefusesWhatItCannotRun(t *testing.T) {
	for key, val := range map[string]any{"add_image_special_tokens": true, "num_expert_layers": 1, "empty_cameras": 1,
		"max_state_dim": 64, "attention_mode": "other", "num_vlm_layers": 16} {
		dir := t.TempDir()
		for _, f := range []string{"model.safetensors", "policy_preprocessor.json", "policy_preprocessor_step_5_normalizer_processor.safetensors"} {
			b, err := os.ReadFile(filepath.Join(smolVLATiny, f))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
		}
		var cfg map[string]any
		b, err := os.ReadFile(filepath.Join(smolVLATiny, "config.json"))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &cfg))
		cfg[key] = val
		b, err = json.Marshal(cfg)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
		_, err = openLeRobotSmolVLA(dir)
		require.Error(t, err, key)
		require.NotContains(t, err.Error(), "\n", key)
		if key == "num_vlm_layers" || key == "num_expert_layers" { // against the tensors: "the expert has 3 layers, …"
			require.Contains(t, err.Error(), "layers", key)
			continue
		}
		require.Contains(t, err.Error(), key)
	}
}

// Real-time chunking on the twin's SmolVLA: with no overlap (weights 0) SampleInpainting is Sample
// bit for bit; with a hard mask on the first two actions (β = 10) the chunk starts on the committed
// actions, ten times closer than plain sampling.
func TestLeRobotSmolVLAInpainting(t *testing.T) {
	l, net, _ := smolVLATinyNet(t, smolVLATiny)
	want, _, err := checkpoints.ReadSafetensors("testdata/lerobot_smolvla/parity.safetensors")
	require.NoError(t, err)
	img := want["images"]
	d := img.Shape().Dimensions
	images := tensors.FromFlatDataAndDimensions(tensors.MustCopyFlatData[float32](img), d[0], 1, d[1], d[2], d[3])
	tokens := tensors.FromFlatDataAndDimensions([]int32{5, 17, 33, 9, 0, 0, 2, 40, 61, 12, 7, 1}, 2, 6)
	store := smolVLAStore(t, net)
	_, err = l.loadWeights(store)
	require.NoError(t, err)
	b, h, a := 2, 5, 6
	prev := make([]float32, b*h*a)
	for i := range prev {
		prev[i] = float32(2 * math.Sin(float64(i)))
	}
	hard := make([]float32, b*h)
	for i := range b {
		hard[i*h], hard[i*h+1] = 1, 1
	}
	backend := goBackend(t)
	run := func(weights []float32) []float32 {
		e, err := model.NewExecCanonical(backend, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
			batch := models.PolicyBatch{Images: in[0], Tokens: in[1], State: in[2], Noise: map[string]*Node{"noise": in[3]}}
			if weights == nil {
				return []*Node{net.Sample(scope, batch)}
			}
			return []*Node{net.SampleInpainting(scope, batch, models.Inpainting{Prev: in[4], Weights: in[5], MaxGuidance: Scalar(g, in[4].DType(), 10)})}
		}, -1, -1, false, true, true)
		require.NoError(t, err)
		defer e.Finalize()
		in := []any{images, tokens, want["state"], want["sample_noise"]}
		if weights != nil {
			in = append(in, tensors.FromFlatDataAndDimensions(prev, b, h, a), tensors.FromFlatDataAndDimensions(weights, b, h))
		}
		out, err := e.Exec(in...)
		require.NoError(t, err)
		return tensors.MustCopyFlatData[float32](out[0])
	}
	plain, zero, guided := run(nil), run(make([]float32, b*h)), run(hard)
	require.Equal(t, plain, zero, "no overlap: plain sampling")
	var before, after float64
	for i := range b {
		for k := range 2 {
			for j := range a {
				x := i*h*a + k*a + j
				before += math.Abs(float64(plain[x] - prev[x]))
				after += math.Abs(float64(guided[x] - prev[x]))
			}
		}
	}
	require.Less(t, after, 0.1*before, "the committed prefix: distance %g guided, %g plain", after, before)
}

// smolvla_base's layout at its real sizes (SmolVLM2-500M-Video-Instruct cut to 16 layers, the
// expert 0.75 wide, LeRobot's defaults in config.json) opens with SmolVLM2's sizes: the tensors'
// header alone is read (the file is sparse: no weights are written).
func TestLeRobotSmolVLABaseSizes(t *testing.T) {
	dir := t.TempDir()
	sh := map[string][]int{}
	vt, tm, ex := smolVLAVLM+"model.vision_model.", smolVLAVLM+"model.text_model.", smolVLAExpert
	sh[vt+"embeddings.patch_embedding.weight"] = []int{768, 3, 16, 16}
	sh[vt+"embeddings.patch_embedding.bias"] = []int{768}
	sh[vt+"embeddings.position_embedding.weight"] = []int{1024, 768}
	for i := range 12 {
		p := fmt.Sprintf("%sencoder.layers.%d.", vt, i)
		for _, n := range []string{"q_proj", "k_proj", "v_proj", "out_proj"} {
			sh[p+"self_attn."+n+".weight"], sh[p+"self_attn."+n+".bias"] = []int{768, 768}, []int{768}
		}
		for _, n := range []string{"layer_norm1", "layer_norm2"} {
			sh[p+n+".weight"], sh[p+n+".bias"] = []int{768}, []int{768}
		}
		sh[p+"mlp.fc1.weight"], sh[p+"mlp.fc1.bias"], sh[p+"mlp.fc2.weight"], sh[p+"mlp.fc2.bias"] = []int{3072, 768}, []int{3072}, []int{768, 3072}, []int{768}
	}
	sh[vt+"post_layernorm.weight"], sh[vt+"post_layernorm.bias"] = []int{768}, []int{768}
	sh[smolVLAVLM+"model.connector.modality_projection.proj.weight"] = []int{960, 12288}
	sh[tm+"embed_tokens.weight"], sh[tm+"norm.weight"], sh[smolVLAVLM+"lm_head.weight"] = []int{49280, 960}, []int{960}, []int{49280, 960}
	layer := func(p string, w, mlp, kin int) {
		sh[p+"input_layernorm.weight"], sh[p+"post_attention_layernorm.weight"] = []int{w}, []int{w}
		sh[p+"self_attn.q_proj.weight"], sh[p+"self_attn.o_proj.weight"] = []int{960, w}, []int{w, 960}
		sh[p+"self_attn.k_proj.weight"], sh[p+"self_attn.v_proj.weight"] = []int{320, kin}, []int{320, kin}
		sh[p+"mlp.gate_proj.weight"], sh[p+"mlp.up_proj.weight"], sh[p+"mlp.down_proj.weight"] = []int{mlp, w}, []int{mlp, w}, []int{w, mlp}
	}
	for i := range 16 {
		layer(fmt.Sprintf("%slayers.%d.", tm, i), 960, 2560, 960)
		kin := 720
		if i%2 != 0 {
			kin = 320 // cross-attention: the VLM's keys and values
		}
		layer(fmt.Sprintf("%slayers.%d.", ex, i), 720, models.SmolVLAIntermediate(720), kin)
	}
	sh[ex+"norm.weight"] = []int{720}
	for n, d := range map[string][2]int{"state_proj": {960, 32}, "action_in_proj": {720, 32}, "action_out_proj": {32, 720},
		"action_time_mlp_in": {720, 1440}, "action_time_mlp_out": {720, 720}} {
		sh["model."+n+".weight"], sh["model."+n+".bias"] = []int{d[0], d[1]}, []int{d[0]}
	}
	header := map[string]any{}
	var off int64
	for _, n := range slices.Sorted(maps.Keys(sh)) {
		size := int64(4)
		for _, d := range sh[n] {
			size *= int64(d)
		}
		header[n] = map[string]any{"dtype": "F32", "shape": sh[n], "data_offsets": []int64{off, off + size}}
		off += size
	}
	hb, err := json.Marshal(header)
	require.NoError(t, err)
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	require.NoError(t, err)
	require.NoError(t, binary.Write(f, binary.LittleEndian, uint64(len(hb))))
	_, err = f.Write(hb)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(8+int64(len(hb))+off)) // sparse
	require.NoError(t, f.Close())
	cfg := `{"type": "smolvla", "input_features": {"observation.images.camera1": {"type": "VISUAL", "shape": [3, 256, 256]},
		"observation.state": {"type": "STATE", "shape": [6]}}, "output_features": {"action": {"type": "ACTION", "shape": [6]}}}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644))
	require.True(t, isLeRobotSmolVLA(dir))
	l, err := openLeRobotSmolVLA(dir)
	require.NoError(t, err)
	c := l.config(1, 6, 6, l.cfg.ChunkSize, l.cfg.NumSteps)
	require.NoError(t, c.Validate())
	require.Equal(t, 512, c.VLM.Vision.ImageSize)
	require.Equal(t, 12, c.VLM.Vision.Heads)
	require.Equal(t, 4, c.VLM.ScaleFactor)
	require.Equal(t, 64, c.VLM.ImageTokens())
	require.Equal(t, 16, c.VLM.Text.Layers)
	require.Equal(t, 15, c.VLM.Text.Heads)
	require.Equal(t, 5, c.VLM.Text.KVHeads)
	require.Equal(t, 720, c.Expert.Hidden)
	require.Equal(t, 2048, c.Expert.Intermediate)
	require.True(t, c.CrossAttn)
	require.Equal(t, 2, c.SelfAttnEvery)
	require.Equal(t, 50, c.Horizon)
	require.Equal(t, 10, c.EulerSteps)
}

// With a tokenizer, instructions end with "\n" before encoding, as SmolVLA's preprocessor's
// smolvla_new_line_processor makes them (once: a text already ending with it is kept).
func TestSmolVLAInstructionsEndWithNewline(t *testing.T) {
	r, err := recipes.Load("smolvla-tiny", []string{"model.tokenizer=../hf/testdata/smolvlm"})
	require.NoError(t, err)
	f, err := openSmolVLA(r, "")
	require.NoError(t, err)
	got := f.text().encode("pick the cube")
	plain, err := instructionText("../hf/testdata/smolvlm", 0)
	require.NoError(t, err)
	require.Equal(t, plain.encode("pick the cube\n"), got)
	require.NotEqual(t, plain.encode("pick the cube"), got)
	require.Equal(t, got, f.text().encode("pick the cube\n"))
}
