package analysis

// Visual Activation Patching (the counting paper's first localisation tool; Meng et al. 2022's
// causal tracing applied to image tokens). For a pair of images that differ by exactly one object
// (same scene otherwise), run the corrupted image (n−1 objects) and, at one site and one image-token
// position, replace the activation by the one the clean image (n objects) produces there. The
// logit difference LD = logit(n) − logit(n−1) at the answer position measures how much of the
// clean answer that single activation carries:
//
//	restoration(site, pos) = (LD_patched − LD_corrupt) / (LD_clean − LD_corrupt)
//
// averaged over pairs as a ratio of means. 0 = the activation carries nothing the corrupted run
// lacks; 1 = it restores the clean answer fully. Patching every image token at the decoder input
// ("projector", or any ViT block) restores exactly 1: everything downstream is a function of it
// and the (identical) question.

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/train"
)

// PatchQuestion is the question every patching pair asks.
const PatchQuestion = "how many objects ?"

// PatchingConfig configures Patching.
type PatchingConfig struct {
	Pairs int    // clean/corrupted pairs
	Seed  uint64 // scene seed
	// Identical makes the corrupted image equal to the clean one (a control: nothing can be
	// restored, so every numerator is exactly 0).
	Identical bool
}

// PatchCell is one (site, position) result.
type PatchCell struct {
	Site        string  `json:"site"`
	Position    int     `json:"position"` // image token index (row-major patch grid); -1 = all tokens
	Restoration float64 `json:"restoration"`
	// DeltaLD is mean LD_patched − mean LD_corrupt (the numerator).
	DeltaLD float64 `json:"delta_ld"`
}

// PatchingResult is the output of Patching.
type PatchingResult struct {
	Checkpoint string `json:"checkpoint"`
	Step       int64  `json:"step"`
	Question   string `json:"question"`
	Pairs      int    `json:"pairs"`
	GridSide   int    `json:"grid_side"` // image tokens form a GridSide × GridSide grid
	// CleanLD and CorruptLD are the mean logit differences logit(n) − logit(n−1).
	CleanLD   float64 `json:"clean_ld"`
	CorruptLD float64 `json:"corrupt_ld"`
	// CleanAccuracy and CorruptAccuracy: the argmax answer is n (clean) / n−1 (corrupted).
	CleanAccuracy   float64  `json:"clean_accuracy"`
	CorruptAccuracy float64  `json:"corrupt_accuracy"`
	Sites           []string `json:"sites"`
	// Restoration[site][pos]: pos < P is one image token, pos = P is all image tokens at once.
	Restoration [][]float64 `json:"restoration"`
	// Top lists the single-token cells by restoration, highest first (at most 10).
	Top []PatchCell `json:"top"`
}

// PatchSites are the sites patched: each ViT block, the projector output (image tokens entering
// the decoder) and each decoder block's output at the image positions.
func PatchSites(cfg models.VLMConfig) []string {
	var out []string
	for _, s := range models.VLMSites(cfg) {
		if s != "final" && !isHeads(s) {
			out = append(out, s)
		}
	}
	return out
}

func isHeads(site string) bool { return len(site) > 6 && site[len(site)-6:] == "/heads" }

func isDecoder(site string) bool { return len(site) > 8 && site[:8] == "decoder/" }

// pairs draws clean/corrupted scene pairs: the corrupted scene is the clean one minus one object.
func (s *Subject) pairs(c PatchingConfig) (clean, corrupt []data.Example, err error) {
	rng := data.NewRand(c.Seed)
	gc := s.Gen.Config()
	lo, hi := max(1, gc.MinObjects), max(1, gc.MaxObjects)
	for len(clean) < c.Pairs {
		sc := s.Gen.Sample(rng, lo, hi)
		if len(sc.Objects) == 0 {
			continue
		}
		cor := sc
		if !c.Identical {
			drop := rng.IntN(len(sc.Objects))
			cor.Objects = append(append([]data.Object{}, sc.Objects[:drop]...), sc.Objects[drop+1:]...)
		}
		mk := func(x data.Scene) data.Example {
			return data.Example{Image: s.Gen.Render(x), Size: gc.ImageSize, Question: PatchQuestion,
				Answer: strconv.Itoa(len(x.Objects)), Kind: "counting", Scene: &x}
		}
		clean, corrupt = append(clean, mk(sc)), append(corrupt, mk(cor))
	}
	return clean, corrupt, nil
}

// patchBatch is the input of the patching graphs: a Prompt's images and tokens, and for the
// patched runs the clean activation that replaces the site's image positions where the mask is set.
type patchBatch struct {
	Images      *Node // [B, S, S, 3]
	Tokens      *Node // [B, L] int32
	Replacement *Node // the clean run's activation at the site, image positions only
	PatchMask   *Node // [P] float32: 1 at the image positions patched
}

// Patching runs Visual Activation Patching on the subject.
func (s *Subject) Patching(c PatchingConfig) (*PatchingResult, error) {
	if c.Pairs < 1 {
		return nil, fmt.Errorf("patching: need at least one pair, got %d", c.Pairs)
	}
	clean, corrupt, err := s.pairs(c)
	if err != nil {
		return nil, err
	}
	pc, err := s.prompts(clean)
	if err != nil {
		return nil, err
	}
	pk, err := s.prompts(corrupt)
	if err != nil {
		return nil, err
	}
	idClean, idCorr := make([]int32, c.Pairs), make([]int32, c.Pairs)
	for i := range clean {
		if idClean[i], err = s.tokenID(clean[i].Answer); err != nil {
			return nil, err
		}
		n, _ := strconv.Atoi(clean[i].Answer)
		if idCorr[i], err = s.tokenID(strconv.Itoa(n - 1)); err != nil {
			return nil, err
		}
	}
	P := s.Cfg.Vision.NumPatches()
	sites := PatchSites(s.Cfg)

	// Capture the clean activations at every site (image positions only) and both runs' logits.
	capture, err := s.exec(func(scope *model.Scope, in []*Node) []*Node {
		b := train.Bind[patchBatch](in)
		acts := map[string]*Node{}
		tap := func(site string, x *Node) *Node {
			acts[site] = x
			return x
		}
		logits := answerLogits(models.VLMTapped(scope, s.Cfg, b.Images, b.Tokens, tap), pc.AnsPos)
		out := []*Node{logits}
		for _, site := range sites {
			a := acts[site]
			if isDecoder(site) {
				a = Slice(a, AxisRange(), AxisRange(0, P))
			}
			out = append(out, a)
		}
		return out
	})
	if err != nil {
		return nil, err
	}
	defer capture.Finalize()
	cleanOut, err := run(capture, pc.Images, pc.Tokens)
	if err != nil {
		return nil, err
	}
	corrOut, err := run(capture, pk.Images, pk.Tokens)
	if err != nil {
		return nil, err
	}
	V := s.Cfg.VocabSize
	meanLD := func(logits *tensors.Tensor) float64 {
		l, sum := flat32(logits), 0.0
		for i := range c.Pairs {
			sum += float64(l[i*V+int(idClean[i])] - l[i*V+int(idCorr[i])])
		}
		return sum / float64(c.Pairs)
	}
	res := &PatchingResult{Checkpoint: s.Dir, Step: s.Step, Question: PatchQuestion, Pairs: c.Pairs,
		GridSide: s.Cfg.Vision.ImageSize / s.Cfg.Vision.PatchSize, Sites: sites,
		CleanLD: meanLD(cleanOut[0]), CorruptLD: meanLD(corrOut[0]),
		CleanAccuracy: argmaxAccuracy(cleanOut[0], idClean), CorruptAccuracy: argmaxAccuracy(corrOut[0], idCorr)}
	denom := res.CleanLD - res.CorruptLD

	var cells []PatchCell
	for si, site := range sites {
		replacement := cleanOut[1+si]
		patch, err := s.exec(func(scope *model.Scope, in []*Node) []*Node {
			b := train.Bind[patchBatch](in)
			tap := func(name string, x *Node) *Node {
				if name != site {
					return x
				}
				img, rest := x, (*Node)(nil)
				if isDecoder(site) {
					img = Slice(x, AxisRange(), AxisRange(0, P))
					rest = Slice(x, AxisRange(), AxisRangeToEnd(P))
				}
				m := GreaterThan(b.PatchMask, ScalarZero(x.Graph(), dtypes.Float32)) // [P] bool
				m = BroadcastToDims(InsertAxes(m, 0, -1), img.Shape().Dimensions...)
				img = Where(m, b.Replacement, img)
				if rest != nil {
					return Concatenate([]*Node{img, rest}, 1)
				}
				return img
			}
			return []*Node{answerLogits(models.VLMTapped(scope, s.Cfg, b.Images, b.Tokens, tap), pk.AnsPos)}
		})
		if err != nil {
			return nil, err
		}
		row := make([]float64, P+1)
		for pos := 0; pos <= P; pos++ {
			mask := make([]float32, P)
			for j := range mask {
				if pos == P || j == pos {
					mask[j] = 1
				}
			}
			out, err := run(patch, pk.Images, pk.Tokens, replacement, tensors.FromFlatDataAndDimensions(mask, P))
			if err != nil {
				patch.Finalize()
				return nil, err
			}
			delta := meanLD(out[0]) - res.CorruptLD
			r := 0.0
			if denom != 0 {
				r = delta / denom
			}
			row[pos] = r
			if pos < P {
				cells = append(cells, PatchCell{Site: site, Position: pos, Restoration: r, DeltaLD: delta})
			}
		}
		patch.Finalize()
		res.Restoration = append(res.Restoration, row)
	}
	sort.SliceStable(cells, func(a, b int) bool { return cells[a].Restoration > cells[b].Restoration })
	res.Top = cells[:min(10, len(cells))]
	return res, nil
}

// argmaxAccuracy is the fraction of rows of logits [B, V] whose argmax is want[b].
func argmaxAccuracy(logits *tensors.Tensor, want []int32) float64 {
	l := flat32(logits)
	V := len(l) / len(want)
	ok := 0
	for i := range want {
		row := l[i*V : (i+1)*V]
		best := 0
		for v := range row {
			if row[v] > row[best] {
				best = v
			}
		}
		if int32(best) == want[i] {
			ok++
		}
	}
	return float64(ok) / float64(len(want))
}
