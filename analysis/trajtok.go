package analysis

import (
	"fmt"
	"image"
	"image/color"
	"path/filepath"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/data"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
	"github.com/reelml/reel/videotok"
)

// Trajectory is one active TrajTok token of a video.
type Trajectory struct {
	ID         int     `json:"id"`          // latent index k
	PixelShare float64 `json:"pixel_share"` // fraction of the video's mask-grid cells it owns
	Frames     []int   `json:"frames"`      // frames in which it owns at least one cell
}

// TokenizeResult describes how a TrajViT2 checkpoint tokenizes one video.
type TokenizeResult struct {
	Checkpoint   string       `json:"checkpoint"`
	Video        string       `json:"video"`
	Frames       int          `json:"frames"`
	Size         int          `json:"size"`
	Grid         int          `json:"grid"`   // mask grid side per frame
	Tokens       int          `json:"tokens"` // active trajectories
	Latents      int          `json:"latents"`
	Trajectories []Trajectory `json:"trajectories"`
	Strip        string       `json:"strip"` // PNG written
}

// Tokenize runs a TrajViT2 checkpoint's tokenizer on a video file (decoded with ffmpeg at the
// recipe's fps and size) and writes a PNG strip of the frames with each trajectory's hard mask in
// its own colour into outDir.
func Tokenize(backend compute.Backend, ckptPath, videoPath, outDir string, warn func(string)) (*TokenizeResult, error) {
	dir, err := checkpoints.Resolve(ckptPath, warn)
	if err != nil {
		return nil, err
	}
	r, err := recipes.Load(filepath.Join(dir, "recipe.yaml"), nil)
	if err != nil {
		return nil, err
	}
	m := r.Model
	if m.Arch != "trajvit2" {
		return nil, fmt.Errorf("%s: reel tokenize needs a trajvit2 checkpoint (recipe %s has model.arch %s)", dir, r.Name, m.Arch)
	}
	v, err := data.DecodeVideo(videoPath, r.Data.FPS, m.ImageSize, m.Frames)
	if err != nil {
		return nil, err
	}
	cfg := tasks.TrajTokConfig(m)
	store, err := train.NewStore(0)
	if err != nil {
		return nil, err
	}
	if _, err := checkpoints.Load(dir, store); err != nil {
		return nil, err
	}
	e, err := train.NewInference(backend, store, r.Train, func(scope *model.Scope, in []*Node) []*Node {
		o := videotok.TrajTok(scope.In("trajtok"), cfg, train.Bind[tasks.VideoCLIPBatch](in).Video)
		return []*Node{o.Logits}
	})
	if err != nil {
		return nil, err
	}
	defer e.Finalize()
	out, err := run(e, tensors.FromFlatDataAndDimensions(v.Frames, 1, m.Frames, m.ImageSize, m.ImageSize, 3))
	if err != nil {
		return nil, fmt.Errorf("%s: %w (does the recipe still match the checkpoint's model?)", dir, err)
	}
	logits := flat32(out[0]) // [1, K, N]
	k, n, gs := cfg.Latents, cfg.Pixels(), cfg.Grid()
	assign := make([]int, n)
	for p := range n {
		best := 0
		for j := range k {
			if logits[j*n+p] > logits[best*n+p] {
				best = j
			}
		}
		assign[p] = best
	}
	res := &TokenizeResult{Checkpoint: dir, Video: videoPath, Frames: m.Frames, Size: m.ImageSize, Grid: gs, Latents: k}
	for j := range k {
		cells, frames := 0, []int{}
		for f := range m.Frames {
			in := false
			for c := range gs * gs {
				if assign[f*gs*gs+c] == j {
					cells++
					in = true
				}
			}
			if in {
				frames = append(frames, f)
			}
		}
		if cells > 0 {
			res.Trajectories = append(res.Trajectories, Trajectory{ID: j, PixelShare: float64(cells) / float64(n), Frames: frames})
		}
	}
	res.Tokens = len(res.Trajectories)
	res.Strip = filepath.Join(outDir, filepath.Base(videoPath)+".tokens.png")
	if err := writeStrip(res.Strip, v, assign, gs); err != nil {
		return nil, err
	}
	return res, nil
}

// writeStrip draws the frames left to right (×4 nearest-neighbour), each above its mask view: the
// frame blended 50/50 with its trajectory's colour.
func writeStrip(path string, v data.Video, assign []int, gs int) error {
	const zoom = 4
	s := v.Size
	w, h := v.T*s*zoom, 2*s*zoom
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	stride := s / gs
	for f := range v.T {
		for y := range s {
			for x := range s {
				p := v.Frames[((f*s+y)*s+x)*3:]
				px := color.RGBA{uint8(255 * p[0]), uint8(255 * p[1]), uint8(255 * p[2]), 255}
				tc := trajColor(assign[(f*gs+y/stride)*gs+x/stride])
				mix := color.RGBA{(px.R + tc.R) / 2, (px.G + tc.G) / 2, (px.B + tc.B) / 2, 255}
				for dy := range zoom {
					for dx := range zoom {
						img.Set(f*s*zoom+x*zoom+dx, y*zoom+dy, px)
						img.Set(f*s*zoom+x*zoom+dx, (s+y)*zoom+dy, mix)
					}
				}
			}
		}
	}
	return train.WritePNG(path, img)
}

// trajColor is a fixed, well-spread colour per trajectory id (golden-angle hues).
func trajColor(k int) color.RGBA {
	hue := float64(k) * 137.508
	hue -= 360 * float64(int(hue/360))
	c := 0.85
	x := c * (1 - abs(modf(hue/60, 2)-1))
	var r, g, b float64
	switch int(hue / 60) {
	case 0:
		r, g = c, x
	case 1:
		r, g = x, c
	case 2:
		g, b = c, x
	case 3:
		g, b = x, c
	case 4:
		r, b = x, c
	default:
		r, b = c, x
	}
	return color.RGBA{uint8(255 * (r + 0.1)), uint8(255 * (g + 0.1)), uint8(255 * (b + 0.1)), 255}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func modf(x, m float64) float64 { return x - m*float64(int(x/m)) }
