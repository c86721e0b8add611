package train

import (
	"path"
	"strings"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
)

// GraphOptions are the graph-wide options a recipe's train section sets for every graph of its
// model, training and inference alike: matrix-product precision, LoRA adapters, activation
// checkpointing (inference graphs need no backward pass, so they recompute nothing).
func GraphOptions(c recipes.TrainConfig) models.GraphOptions {
	return models.GraphOptions{Precision: c.Precision, Remat: c.Remat,
		LoRA: models.LoRAConfig{Rank: c.LoRA.Rank, Alpha: c.LoRA.Alpha, Dropout: c.LoRA.Dropout, Targets: c.LoRA.Targets}}
}

// frozen reports whether a variable path matches one of the recipe's train.freeze globs; both
// "/" (reel's scope paths) and "." (Hugging Face's tensor names) separate path elements, and a
// leading separator is optional.
func frozen(patterns []string, varPath string) bool {
	p := strings.TrimPrefix(varPath, "/")
	dotted := strings.ReplaceAll(p, "/", ".")
	for _, pat := range patterns {
		pat = strings.TrimPrefix(strings.TrimPrefix(pat, "/"), ".")
		for _, cand := range []string{p, dotted} {
			if ok, _ := path.Match(pat, cand); ok {
				return true
			}
			// "vision_tower.*" also freezes everything below vision_tower (globs stop at "/").
			if pre, ok := strings.CutSuffix(pat, "*"); ok && !strings.ContainsAny(pre, "*?[") && strings.HasPrefix(cand, pre) {
				return true
			}
		}
	}
	return false
}
