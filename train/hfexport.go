package train

import (
	"path/filepath"

	"github.com/reelml/reel/backends"
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

// ExportHF writes checkpoint dir of a Hugging Face fine-tune to the directory out as a
// transformers model directory (hf.ExportModel, LoRA merged) or, with peft, as a PEFT adapter
// (hf.ExportPEFT), building the architecture's graph on backend (backends.Select's name).
func ExportHF(dir, out string, peft, ema bool, backend string) (*hf.Exported, error) {
	src, err := HFExportSource(dir, ema)
	if err != nil {
		return nil, err
	}
	b, _, err := backends.Select(backend)
	if err != nil {
		return nil, err
	}
	if peft {
		return hf.ExportPEFT(b, src, out)
	}
	return hf.ExportModel(b, src, out)
}
