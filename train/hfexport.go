package train

import (
	"path/filepath"

	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/recipes"
)

// HFExportSource is what hf.ExportModel and hf.ExportPEFT need of checkpoint dir, a fine-tune
// of a Hugging Face model: its recipe's model.pretrained, model.hf_config and LoRA adapters
// (the graph options it trained with); ema exports the moving average of the weights.
func HFExportSource(dir string, ema bool) (hf.ExportSource, error) {
	r, err := recipes.Load(filepath.Join(dir, "recipe.yaml"), nil)
	if err != nil {
		return hf.ExportSource{}, err
	}
	return hf.ExportSource{Checkpoint: dir, Pretrained: r.Model.Pretrained, ConfigJSON: r.Model.HFConfig,
		LoRA: GraphOptions(r.Train).LoRA, EMA: ema}, nil
}
