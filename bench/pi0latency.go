package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/internal/usage"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/train"
)

// Pi0LatencyConfig is `reel bench finetune --model pi0 --latency`: the time of one action chunk
// (batch 1: the prefix once, then Steps Euler steps of the expert over the cached keys and
// values, openpi's sample_actions, the robot-side call LeRobot's async inference serves) of a
// pi0 shape with random weights, optionally at a reduced depth (Layers joint layers, the vision
// tower cut in the same proportion: real widths, fewer layers, for a CPU where the real depth
// does not fit in time or memory), alternating with the PyTorch twin when Python is set.
type Pi0LatencyConfig struct {
	Shape   FinetuneShape
	Layers  int // joint layers (0: the shape's); the vision tower keeps the same fraction of its own
	Cameras int
	Rounds  int
	Backend string
	Python  string // "" : reel only; "auto": a python3 with torch
	Twin    string // the PyTorch twin's module (tasks/testdata/lerobot_pi0/gen_pi0_twin.py)
	Script  string // bench/pi0_torch.py
	Log     Logger
}

// Pi0LatencyRow is one implementation's chunk latency.
type Pi0LatencyRow struct {
	Impl         string    `json:"impl"` // reel or pytorch
	Layers       int       `json:"layers"`
	VisionLayers int       `json:"vision_layers"`
	Params       int64     `json:"params"`
	ChunkS       float64   `json:"chunk_s"` // best round
	Spread       float64   `json:"spread"`  // (worst − best) / best
	Rounds       []float64 `json:"rounds"`
	Load         []float64 `json:"load"` // the 1-minute load average before each round
}

// loadAvg is the 1-minute load average (0 where /proc/loadavg is not there).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

// RunPi0Latency measures the chunk latency of reel's pi0 and, with c.Python, of the PyTorch twin
// in alternating rounds (each after one warm-up chunk).
func RunPi0Latency(c Pi0LatencyConfig) ([]Pi0LatencyRow, error) {
	if c.Shape.ExpertDim == 0 {
		return nil, usage.Errorf("bench finetune --latency: the model must be a pi0 shape")
	}
	if c.Rounds < 1 || c.Cameras < 1 || c.Layers < 0 {
		return nil, usage.Errorf("bench finetune --latency: --rounds and --cameras must be ≥ 1, --layers ≥ 0")
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(c.Shape.HFConfig), &m); err != nil {
		return nil, err
	}
	hc, err := hf.ParseConfig(m)
	if err != nil {
		return nil, err
	}
	pg := *hc.PaliGemma
	if c.Layers > 0 && c.Layers < pg.Text.Layers {
		pg.Vision.Layers = max(1, (pg.Vision.Layers*c.Layers+pg.Text.Layers/2)/pg.Text.Layers)
		pg.Text.Layers = c.Layers
		pg.Text.VocabSize = min(pg.Text.VocabSize, 1024) // a reduced model: the lookup costs nothing, the table gigabytes
	}
	horizon, tokens := 50, 48
	cfg := models.Pi0Config{PaliGemma: pg, Expert: models.Pi0Expert(pg.Text, c.Shape.ExpertDim, c.Shape.ExpertMLP),
		Cameras: c.Cameras, StateDim: 8, ActionDim: 8, Horizon: horizon, EulerSteps: 10}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var params int64
	for _, n := range Pi0Params(pg, c.Shape.ExpertDim, c.Shape.ExpertMLP) {
		params += n
	}
	b, info, err := backends.Select(c.Backend)
	if err != nil {
		return nil, err
	}
	c.Log.printf("pi0 chunk latency on %s: %d joint layers, %d vision layers (%.2fB parameters), %d camera(s) at %d px, %d tokens, horizon %d, %d Euler steps, batch 1",
		info, pg.Text.Layers, pg.Vision.Layers, float64(params)/1e9, c.Cameras, pg.Vision.ImageSize, tokens, horizon, cfg.EulerSteps)
	store, err := train.NewStore(1)
	if err != nil {
		return nil, err
	}
	e, err := model.NewExecCanonical(b, store, func(scope *model.Scope, g *Graph, in []*Node) []*Node {
		b := train.Bind[pi0SampleInputs](in)
		return []*Node{models.Pi0Sample(scope, cfg, b.Images, b.Tokens, b.State, b.Noise, true)}
	}, -1, -1, false, true, true)
	if err != nil {
		return nil, err
	}
	defer e.Finalize()
	rng := rand.New(rand.NewPCG(1, 2))
	s := pg.Vision.ImageSize
	img := make([]float32, c.Cameras*s*s*3)
	for i := range img {
		img[i] = rng.Float32()
	}
	tok := make([]int32, tokens)
	for i := range tok {
		tok[i] = 1 + rng.Int32N(int32(pg.Text.VocabSize-1))
	}
	in := []any{tensors.FromFlatDataAndDimensions(img, 1, c.Cameras, s, s, 3), tensors.FromFlatDataAndDimensions(tok, 1, tokens),
		models.NormalTensor(rng, 1, 8), models.NormalTensor(rng, 1, horizon, models.Pi0PadDim)}
	chunk := func() (float64, error) {
		t0 := time.Now()
		out, err := e.Exec(in...)
		if err != nil {
			return 0, err
		}
		finalize(out)
		return time.Since(t0).Seconds(), nil
	}
	t0 := time.Now()
	if _, err := chunk(); err != nil { // random initialisation, compilation, first chunk
		return nil, fmt.Errorf("pi0 chunk: %w", err)
	}
	c.Log.printf("initialised and compiled, first chunk in %.1fs", time.Since(t0).Seconds())
	rows := []Pi0LatencyRow{{Impl: "reel", Layers: pg.Text.Layers, VisionLayers: pg.Vision.Layers, Params: params}}
	var tw *torchTwin
	if c.Python != "" {
		if tw, err = startPi0Twin(c, pg.Text.Layers, pg.Vision.Layers, tokens, horizon); err != nil {
			return nil, err
		}
		defer tw.close()
		if _, err := tw.chunk(); err != nil { // warm-up
			return nil, err
		}
		rows = append(rows, Pi0LatencyRow{Impl: "pytorch", Layers: pg.Text.Layers, VisionLayers: pg.Vision.Layers, Params: tw.params})
	}
	for round := range c.Rounds {
		for i := range rows {
			load := loadAvg()
			var sec float64
			if rows[i].Impl == "reel" {
				sec, err = chunk()
			} else {
				sec, err = tw.chunk()
			}
			if err != nil {
				return nil, err
			}
			rows[i].Rounds, rows[i].Load = append(rows[i].Rounds, sec), append(rows[i].Load, load)
			c.Log.printf("round %d, %s: %.2fs per chunk (load average %.1f)", round+1, rows[i].Impl, sec, load)
		}
	}
	for i := range rows {
		rows[i].ChunkS, rows[i].Spread = bestSpread(rows[i].Rounds)
	}
	return rows, nil
}

func finalize(ts []*tensors.Tensor) {
	for _, t := range ts {
		t.FinalizeAll()
	}
}

// torchTwin is a running bench/pi0_torch.py: a line on its stdin runs one chunk.
type torchTwin struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	params int64
}

func startPi0Twin(c Pi0LatencyConfig, layers, vlayers, tokens, horizon int) (*torchTwin, error) {
	cmd := exec.Command(findPython(c.Python), c.Script, c.Twin, strconv.Itoa(layers), strconv.Itoa(vlayers), strconv.Itoa(c.Cameras),
		strconv.Itoa(tokens), strconv.Itoa(horizon), "10")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pytorch twin: %w", err)
	}
	t := &torchTwin{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	var ready struct {
		Params int64 `json:"params"`
	}
	if !t.out.Scan() || json.Unmarshal(t.out.Bytes(), &ready) != nil {
		t.close()
		return nil, fmt.Errorf("pytorch twin %s: did not start (%q)", c.Script, t.out.Text())
	}
	t.params = ready.Params
	return t, nil
}

func (t *torchTwin) chunk() (float64, error) {
	if _, err := io.WriteString(t.in, "go\n"); err != nil {
		return 0, fmt.Errorf("pytorch twin: %w", err)
	}
	var r struct {
		ChunkS float64 `json:"chunk_s"`
	}
	if !t.out.Scan() || json.Unmarshal(t.out.Bytes(), &r) != nil {
		return 0, fmt.Errorf("pytorch twin: no chunk time (%q)", t.out.Text())
	}
	return r.ChunkS, nil
}

func (t *torchTwin) close() {
	t.in.Close()
	t.cmd.Wait()
}

// WritePi0Latency prints the rows as `reel bench finetune --latency` does.
func WritePi0Latency(w io.Writer, rows []Pi0LatencyRow) {
	fmt.Fprintf(w, "%-8s %-8s %-10s %-20s %s\n", "impl", "layers", "params", "chunk s (spread)", "load average per round")
	for _, r := range rows {
		var loads []string
		for _, l := range r.Load {
			loads = append(loads, fmt.Sprintf("%.1f", l))
		}
		fmt.Fprintf(w, "%-8s %-8s %-10s %-20s %s\n", r.Impl, fmt.Sprintf("%d+%dv", r.Layers, r.VisionLayers), fmt.Sprintf("%.2fB", float64(r.Params)/1e9),
			fmt.Sprintf("%.2f (±%.0f%%)", r.ChunkS, 100*r.Spread), strings.Join(loads, " "))
	}
}

// pi0SampleInputs are the inputs of one pi0 chunk (models.Pi0Sample), in order.
type pi0SampleInputs struct {
	Images, Tokens, State, Noise *Node
}
