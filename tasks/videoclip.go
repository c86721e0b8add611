package tasks

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/reelml/reel/data"
	"github.com/reelml/reel/losses"
	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/text"
	"github.com/reelml/reel/train"
	"github.com/reelml/reel/videotok"
)

// VideoCLIP trains a video-text contrastive model (TrajViT2 or the ViViT baseline) on captioned
// clips. Training inputs: video [B, T, S, S, 3] f32, caption tokens [B, L] i32; TrajViT2 adds the
// ground-truth trajectory masks on its mask grid, gt [B, G, N] f32 and gtValid [B, G] f32 (G = 9:
// background + up to 8 objects; each cell holds the fraction of its pixels with that label), and
// after Prepare the Hungarian-matched targets [B, K, N] and weights [B, K].
type VideoCLIP struct {
	r     *recipes.Recipe
	arch  string
	traj  videotok.TrajTokConfig
	tub   videotok.TubeletConfig
	clip  models.VideoCLIPConfig
	vocab *text.Vocab
	text  *textCodec // captions: the word vocabulary or model.tokenizer
	gen   *data.VideoGenerator
	train []data.Video // folder source
	eval  []data.Video // folder source: held out
	micro int
	evals evalCache
}

// gtSlots is the number of ground-truth trajectories a batch carries: background + 8 objects.
const gtSlots = 9

// NewVideoCLIP builds the videoclip task of a recipe.
func NewVideoCLIP(r *recipes.Recipe) (train.Task, error) {
	m, d := r.Model, r.Data
	t := &VideoCLIP{r: r, arch: m.Arch, vocab: data.VideoVocab(), micro: r.Train.BatchSize / r.Train.GradAccum}
	var err error
	if t.text, err = newTextCodecReserving(m.Tokenizer, t.vocab, 3); err != nil {
		return nil, err
	}
	t.traj = TrajTokConfig(m)
	t.tub = videotok.TubeletConfig{Frames: m.Frames, ImageSize: m.ImageSize, Tubelet: m.Tubelet, Patch: m.PatchSize, Dim: m.VisionDim}
	t.clip = models.VideoCLIPConfig{VideoDim: m.VisionDim, VideoLayers: m.VisionLayers, VideoHeads: m.VisionHeads,
		TextDim: m.TextDim, TextLayers: m.TextLayers, TextHeads: m.TextHeads, MLPRatio: m.MLPRatio,
		MaxTextLen: m.MaxTextLen, VocabSize: t.text.size(), EmbedDim: m.EmbedDim}
	if m.Arch == "trajvit2" && m.FeatDim%m.VisionHeads != 0 {
		return nil, fmt.Errorf("model.vision_heads: %d does not divide model.feat_dim (%d), which the TrajTok Perceiver uses as its width", m.VisionHeads, m.FeatDim)
	}
	switch d.Source {
	case "synthetic":
		gen, err := data.NewVideoGenerator(data.VideoConfig{Size: m.ImageSize, Frames: m.Frames, MinObjects: max(1, d.MinObjects),
			MaxObjects: d.MaxObjects, Shapes: d.Shapes, Colors: d.Colors, MinSize: d.MinSize, MaxSize: d.MaxSize,
			Background: d.Background, MaxSpeed: d.MaxSpeed, AppearLeave: d.AppearLeave})
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		t.gen = gen
	case "folder":
		videos, skipped, err := data.LoadVideoDataset(d.Captions, d.FPS, m.ImageSize, m.Frames, d.SkipBad)
		if err != nil {
			return nil, fmt.Errorf("data.captions: %w", err)
		}
		if skipped > 0 {
			fmt.Printf("reel: data: skipped %d videos that failed to decode (data.skip_bad)\n", skipped)
		}
		// The last fifth (at most eval.examples) is held out for retrieval evaluation.
		n := min(r.Eval.Examples, len(videos)/5)
		if n < 2 || len(videos)-n < 1 {
			return nil, fmt.Errorf("data.captions: %s has %d usable videos; need at least 10 (a fifth is held out for evaluation)", d.Captions, len(videos))
		}
		t.train, t.eval = videos[:len(videos)-n], videos[len(videos)-n:]
	}
	if m.Arch == "trajvit2" {
		return &trajCLIP{t}, nil
	}
	return t, nil
}

// TrajTokConfig is the TrajTok tokenizer a trajvit2 recipe's model section describes (the
// Perceiver uses the video encoder's head count).
func TrajTokConfig(m recipes.ModelConfig) videotok.TrajTokConfig {
	return videotok.TrajTokConfig{Frames: m.Frames, ImageSize: m.ImageSize, Stride: m.FeatStride, FeatDim: m.FeatDim,
		Latents: m.Latents, GroupDim: m.GroupDim, Heads: m.VisionHeads, Layers: m.PerceiverLayers}
}

// MicroBatchSize implements train.Task.
func (t *VideoCLIP) MicroBatchSize() int { return t.micro }

// videos returns micro-batch i's clips: synthetic ones from (seed, i), folder ones by a per-epoch
// permutation.
func (t *VideoCLIP) videos(i int64) []data.Video {
	out := make([]data.Video, t.micro)
	if t.gen != nil {
		rng := data.NewRand(seedFor(t.r.Train.Seed, "train", i))
		for j := range out {
			out[j] = t.gen.Sample(rng)
		}
		return out
	}
	n := int64(len(t.train))
	for j := range out {
		k := i*int64(t.micro) + int64(j)
		perm := permutation(seedFor(t.r.Train.Seed, "epoch", k/n), int(n))
		out[j] = t.train[perm[k%n]]
	}
	return out
}

// MicroBatch implements train.Task.
func (t *VideoCLIP) MicroBatch(i int64) ([]*tensors.Tensor, error) {
	return t.tensors(t.videos(i), t.arch == "trajvit2")
}

// tensors lays out clips (and, with masks, their ground-truth trajectory masks).
func (t *VideoCLIP) tensors(vs []data.Video, masks bool) ([]*tensors.Tensor, error) {
	m := t.r.Model
	b, s, f, L := len(vs), m.ImageSize, m.Frames, m.MaxTextLen
	pix := f * s * s * 3
	video := make([]float32, b*pix)
	text := make([]int32, b*L)
	for i, v := range vs {
		if v.T != f || v.Size != s || len(v.Frames) != pix {
			return nil, fmt.Errorf("video %q is %d frames of %d×%d, want %d of %d×%d", v.Source, v.T, v.Size, v.Size, f, s, s)
		}
		copy(video[i*pix:], v.Frames)
		copy(text[i*L:], t.encodeCaption(v.Caption, L))
	}
	out := []*tensors.Tensor{tensors.FromFlatDataAndDimensions(video, b, f, s, s, 3), tensors.FromFlatDataAndDimensions(text, b, L)}
	if !masks {
		return out, nil
	}
	n := t.traj.Pixels()
	gt := make([]float32, b*gtSlots*n)
	valid := make([]float32, b*gtSlots)
	for i, v := range vs {
		if v.Masks == nil {
			continue // real video: no mask supervision (valid stays 0)
		}
		gridMasks(v, t.traj.Stride, gt[i*gtSlots*n:(i+1)*gtSlots*n], valid[i*gtSlots:(i+1)*gtSlots])
	}
	return append(out, tensors.FromFlatDataAndDimensions(gt, b, gtSlots, n), tensors.FromFlatDataAndDimensions(valid, b, gtSlots)), nil
}

// gridMasks pools a clip's per-pixel instance masks onto the stride×stride mask grid: gt[g][cell]
// is the fraction of the cell's pixels labelled g (0 = background, k = object k−1); valid[g] = 1
// when label g covers any pixel.
func gridMasks(v data.Video, stride int, gt, valid []float32) {
	s := v.Size
	gs := s / stride
	n := v.T * gs * gs
	w := 1 / float32(stride*stride)
	for f := range v.T {
		for y := range s {
			for x := range s {
				label := int(v.Masks[(f*s+y)*s+x])
				if label >= gtSlots {
					continue
				}
				cell := (f*gs+y/stride)*gs + x/stride
				gt[label*n+cell] += w
				valid[label] = 1
			}
		}
	}
}

// encodeCaption lays out a caption as [BOS tokens… EOS PAD…] of length maxLen (truncated to
// fit): reel's words (EncodeText), or model.tokenizer's tokens shifted past PAD, BOS and EOS.
func (t *VideoCLIP) encodeCaption(caption string, maxLen int) []int32 {
	if t.text.shift == 0 {
		return EncodeText(t.vocab, caption, maxLen)
	}
	out := make([]int32, maxLen)
	out[0] = captionBOS
	p := 1
	for _, id := range t.text.encode(caption) {
		if p >= maxLen-1 {
			break
		}
		out[p] = int32(id)
		p++
	}
	out[p] = captionEOS
	return out
}

// CheckpointFiles implements train.CheckpointFiler: model.tokenizer's files, if any.
func (t *VideoCLIP) CheckpointFiles() (map[string][]byte, error) { return t.text.files, nil }

// The caption markers when model.tokenizer encodes the captions (its ids start at 3).
const captionBOS, captionEOS = 1, 2

// EncodeText lays out a caption as [BOS words… EOS PAD…] of length maxLen (truncated to fit,
// unknown words → UNK).
func EncodeText(v *text.Vocab, caption string, maxLen int) []int32 {
	out := make([]int32, maxLen)
	out[0] = text.BOSID
	p := 1
	for _, w := range text.Tokenize(caption) {
		if p >= maxLen-1 {
			break
		}
		out[p] = int32(v.ID(w))
		p++
	}
	out[p] = text.EOSID
	return out
}

// VideoCLIPBatch is the graph side of a video-CLIP batch, bound once from the graph's inputs by
// train.Bind. The host lists the tensors in this field order: the clips and captions, for
// trajvit2 the ground-truth trajectory masks, and after trajCLIP.Prepare the matched targets.
type VideoCLIPBatch struct {
	Video   *Node // [B, F, S, S, 3] float32 in [0, 1]
	Text    *Node // [B, L] int32 caption tokens
	GTMasks *Node // [B, gtSlots, pixels] float32 ground-truth trajectory masks (trajvit2)
	GTValid *Node // [B, gtSlots] float32: 1 for the slots that hold a trajectory (trajvit2)
	Targets *Node // [B, K, pixels] float32: the ground-truth mask matched to each latent (trajvit2)
	Weights *Node // [B, K] float32: 1 for the latents matched to a ground-truth trajectory (trajvit2)
}

// towers builds the video and text embeddings (and TrajTok's output for trajvit2).
func (t *VideoCLIP) towers(scope *model.Scope, video, text *Node) (v, tx *Node, tok *videotok.TrajTokOutput) {
	if t.arch == "trajvit2" {
		o := videotok.TrajTok(scope.In("trajtok"), t.traj, video)
		tok = &o
		v = models.VideoEncoder(scope.In("video"), t.clip, o.Tokens, o.Active)
	} else {
		v = models.VideoEncoder(scope.In("video"), t.clip, videotok.Tubelets(scope.In("tubelets"), t.tub, video), nil)
	}
	return v, models.TextEncoder(scope.In("text"), t.clip, text), tok
}

func (t *VideoCLIP) temperature(scope *model.Scope, g *Graph) *Node {
	if t.r.Train.LearnTemperature {
		return losses.LearnableTemperature(scope.In("clip"), g, dtypes.Float32)
	}
	return Scalar(g, dtypes.Float32, t.r.Train.Temperature)
}

// Loss implements train.Task: symmetric InfoNCE (+ for trajvit2 the mask losses on matched pairs:
// total = InfoNCE + focal_weight·focal + dice_weight·dice).
func (t *VideoCLIP) Loss(scope *model.Scope, in []*Node) *Node {
	b := train.Bind[VideoCLIPBatch](in)
	v, tx, tok := t.towers(scope, b.Video, b.Text)
	loss := losses.InfoNCE(v, tx, t.temperature(scope, b.Video.Graph()))
	if tok != nil {
		targets, weights := b.Targets, b.Weights
		loss = Add(loss, MulScalar(losses.FocalLoss(tok.Masks, targets, weights, 0.25, 2), t.r.Train.FocalWeight))
		loss = Add(loss, MulScalar(losses.DiceLoss(tok.Masks, targets, weights), t.r.Train.DiceWeight))
	}
	return loss
}

// EvalGraph implements train.Task: video and text embeddings and the number of tokens per clip.
func (t *VideoCLIP) EvalGraph(scope *model.Scope, in []*Node) []*Node {
	b := train.Bind[VideoCLIPBatch](in)
	v, tx, tok := t.towers(scope, b.Video, b.Text)
	var count *Node
	if tok != nil {
		count = ReduceSum(ConvertDType(tok.Active, dtypes.Float32), -1)
	} else {
		count = Add(ZerosLike(Slice(v, AxisRange(), AxisElem(0))), Scalar(v.Graph(), v.DType(), float64(t.tub.NumTokens())))
		count = Squeeze(count, 1)
	}
	return []*Node{L2Normalize(v, -1), L2Normalize(tx, -1), count}
}

// EvalSets implements train.Task.
func (t *VideoCLIP) EvalSets() []string { return t.r.Eval.Sets }

// EvalSet implements train.Task: held-out clips (synthetic from eval.seed, or the folder's
// held-out fifth).
func (t *VideoCLIP) EvalSet(name string) (train.EvalData, error) {
	if name != "retrieval" {
		return nil, fmt.Errorf("eval.sets: unknown set %q for task videoclip (want retrieval)", name)
	}
	return t.evals.get(name, t.buildEvalSet)
}

func (t *VideoCLIP) buildEvalSet() (train.EvalData, error) {
	vs := t.eval
	if t.gen != nil {
		rng := data.NewRand(seedFor(t.r.Eval.Seed, "eval/retrieval", 0))
		vs = make([]data.Video, t.r.Eval.Examples)
		for i := range vs {
			vs[i] = t.gen.Sample(rng)
		}
	}
	bs := min(t.r.Eval.BatchSize, len(vs))
	e := &clipEval{n: len(vs), bs: bs}
	var err error
	e.batches, err = evalBatches(vs, bs, func(chunk []data.Video, _ int) ([]*tensors.Tensor, error) { return t.tensors(chunk, false) })
	if err != nil {
		return nil, fmt.Errorf("eval set retrieval: %w", err)
	}
	for _, v := range vs {
		e.objects = append(e.objects, float64(v.NumObjects()))
	}
	return e, nil
}

// clipEval is the retrieval set: recall@K in both directions over the whole set, and the tokens
// per clip (mean, quantiles, and Spearman's ρ against the number of objects).
type clipEval struct {
	n, bs   int
	batches [][]*tensors.Tensor
	objects []float64
}

func (e *clipEval) NumBatches() int               { return len(e.batches) }
func (e *clipEval) Batch(i int) []*tensors.Tensor { return e.batches[i] }

func (e *clipEval) Metrics(outs [][]*tensors.Tensor) map[string]float64 {
	var vids, txts [][]float32
	var counts []float64
	for _, o := range outs {
		v := tensors.MustCopyFlatData[float32](o[0])
		tx := tensors.MustCopyFlatData[float32](o[1])
		c := tensors.MustCopyFlatData[float32](o[2])
		d := len(v) / e.bs
		for j := range e.bs {
			if len(vids) == e.n {
				break
			}
			vids = append(vids, v[j*d:(j+1)*d])
			txts = append(txts, tx[j*d:(j+1)*d])
			counts = append(counts, float64(c[j]))
		}
	}
	sim := func(i, j int) float64 { // video i · text j
		s := 0.0
		for k := range vids[i] {
			s += float64(vids[i][k]) * float64(txts[j][k])
		}
		return s
	}
	// rank of the true pair among all candidates (0 = first).
	var t2v1, t2v5, v2t1, v2t5 float64
	for i := range e.n {
		rv, rt := 0, 0
		si := sim(i, i)
		for j := range e.n {
			if j != i && sim(j, i) > si {
				rv++
			}
			if j != i && sim(i, j) > si {
				rt++
			}
		}
		t2v1, t2v5 = t2v1+b2f(rv < 1), t2v5+b2f(rv < 5)
		v2t1, v2t5 = v2t1+b2f(rt < 1), v2t5+b2f(rt < 5)
	}
	n := float64(e.n)
	m := map[string]float64{"t2v_r1": t2v1 / n, "t2v_r5": t2v5 / n, "v2t_r1": v2t1 / n, "v2t_r5": v2t5 / n}
	sorted := slices.Clone(counts)
	sort.Float64s(sorted)
	mean := 0.0
	for _, c := range counts {
		mean += c
	}
	m["tokens_mean"] = mean / n
	m["tokens_p10"] = sorted[int(0.1*float64(len(sorted)-1))]
	m["tokens_p50"] = sorted[int(0.5*float64(len(sorted)-1))]
	m["tokens_p90"] = sorted[int(0.9*float64(len(sorted)-1))]
	if rho, ok := Spearman(e.objects, counts); ok {
		m["tokens_objects_spearman"] = rho
	}
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Spearman returns the rank correlation of x and y (average ranks for ties); ok is false when
// either is constant.
func Spearman(x, y []float64) (float64, bool) {
	rx, ry := ranks(x), ranks(y)
	n := float64(len(x))
	var mx, my float64
	for i := range rx {
		mx, my = mx+rx[i], my+ry[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range rx {
		a, b := rx[i]-mx, ry[i]-my
		sxy, sxx, syy = sxy+a*b, sxx+a*a, syy+b*b
	}
	if sxx == 0 || syy == 0 {
		return 0, false
	}
	return sxy / math.Sqrt(sxx*syy), true
}

func ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		for k := i; k <= j; k++ {
			r[idx[k]] = float64(i+j)/2 + 1
		}
		i = j + 1
	}
	return r
}

// trajCLIP is VideoCLIP with TrajViT2's Hungarian mask matching (a train.BatchPreparer).
type trajCLIP struct{ *VideoCLIP }

// PrepareGraph implements train.BatchPreparer: TrajTok's soft masks [B, K, N] for the batch.
func (t *trajCLIP) PrepareGraph(scope *model.Scope, in []*Node) []*Node {
	o := videotok.TrajTok(scope.In("trajtok"), t.traj, train.Bind[VideoCLIPBatch](in).Video)
	return []*Node{o.Masks}
}

// Prepare implements train.BatchPreparer: per clip, match the K predicted trajectories to the
// ground-truth ones by Hungarian matching on −IoU (soft IoU of the predicted mask), exactly, and
// return the batch with the matched targets [B, K, N] and pair weights [B, K].
func (t *trajCLIP) Prepare(batch, outs []*tensors.Tensor) ([]*tensors.Tensor, error) {
	pred := tensors.MustCopyFlatData[float32](outs[0])
	gt := tensors.MustCopyFlatData[float32](batch[2])
	valid := tensors.MustCopyFlatData[float32](batch[3])
	k, n := t.traj.Latents, t.traj.Pixels()
	b := len(valid) / gtSlots
	targets := make([]float32, b*k*n)
	weights := make([]float32, b*k)
	for i := range b {
		var gs []int
		for g := range gtSlots {
			if valid[i*gtSlots+g] > 0 {
				gs = append(gs, g)
			}
		}
		if len(gs) == 0 {
			continue
		}
		cost := make([][]float64, len(gs))
		for a, g := range gs {
			cost[a] = make([]float64, k)
			tg := gt[(i*gtSlots+g)*n : (i*gtSlots+g+1)*n]
			for kk := range k {
				cost[a][kk] = -SoftIoU(pred[(i*k+kk)*n:(i*k+kk+1)*n], tg)
			}
		}
		assign, _ := losses.Hungarian(cost) // each ground-truth trajectory → a distinct latent
		for a, kk := range assign {
			if kk < 0 {
				continue
			}
			copy(targets[(i*k+kk)*n:(i*k+kk+1)*n], gt[(i*gtSlots+gs[a])*n:(i*gtSlots+gs[a]+1)*n])
			weights[i*k+kk] = 1
		}
	}
	return append(batch, tensors.FromFlatDataAndDimensions(targets, b, k, n), tensors.FromFlatDataAndDimensions(weights, b, k)), nil
}

// SoftIoU is Σ p·t / (Σ p + Σ t − Σ p·t) for a soft predicted mask p and target t.
func SoftIoU(p, t []float32) float64 {
	var inter, sp, st float64
	for i := range p {
		inter += float64(p[i]) * float64(t[i])
		sp += float64(p[i])
		st += float64(t[i])
	}
	u := sp + st - inter
	if u <= 0 {
		return 0
	}
	return inter / u
}

// permutation is a seeded permutation of [0, n).
func permutation(seed uint64, n int) []int {
	return rand.New(rand.NewPCG(seed, 1)).Perm(n)
}
