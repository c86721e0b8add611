package tasks

import (
	"fmt"
	"path/filepath"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/train"
)

// Adapter-only checkpoints (checkpoints.Base) are loaded wherever a checkpoint is: their frozen
// base is rebuilt here, from the checkpoint's recipe, as a fresh run of it starts.
func init() { checkpoints.SetBaseBuilder(rebuildBase) }

// rebuildBase checks the sources of the base of the checkpoint in dir (the model.pretrained
// directory's weight files, the train.init_from checkpoint's state) and re-runs the recipe's
// initialisation from its seed on the backend a run would use.
func rebuildBase(dir string, base checkpoints.Base) (map[string]*tensors.Tensor, error) {
	var sets []string
	if p := base.Pretrained; p != "" && p != "random" {
		if err := checkpoints.CheckFiles("model.pretrained", p, base.PretrainedFiles); err != nil {
			return nil, err
		}
		sets = append(sets, "model.pretrained="+p)
	}
	if p := base.InitFrom; p != "" {
		sum, err := checkpoints.SumFile(filepath.Join(p, "state.json"))
		if err != nil {
			return nil, fmt.Errorf("train.init_from %s is missing (expected the checkpoint this fine-tune started from)", p)
		}
		if want := base.InitFromState; want != nil && sum != *want {
			return nil, fmt.Errorf("train.init_from %s changed since the fine-tune started from it (state.json sha256 %s, expected %s)", p, sum.SHA256, want.SHA256)
		}
		sets = append(sets, "train.init_from="+p)
	}
	r, err := recipes.Load(filepath.Join(dir, "recipe.yaml"), sets)
	if err != nil {
		return nil, err
	}
	r.Train.Seed = base.Seed
	task, err := New(r)
	if err != nil {
		return nil, err
	}
	if c, ok := task.(interface{ Close() }); ok {
		defer c.Close()
	}
	b, _, err := backends.Select("")
	if err != nil {
		return nil, err
	}
	return train.InitBase(b, task, r.Train)
}
