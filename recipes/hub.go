package recipes

import (
	"fmt"

	"github.com/reelml/reel/hub"
)

// ResolveRepos replaces each field that names a model directory or a dataset (model.pretrained,
// model.tokenizer, data.dir of a LeRobot source, eval.dir) by the directory on disk: the path
// itself when it exists, else a Hugging Face repository ORG/NAME[@REVISION] found in the Hub cache
// (models) or where LeRobot keeps datasets (see package hub). Nothing is downloaded; a repository
// that is not on disk is one error naming the field, every place looked and the command that would
// fetch it. Load leaves the fields as written (a recipe names what the user named); the task
// resolves them before it reads anything.
func (r *Recipe) ResolveRepos() error {
	for _, f := range []struct {
		key     string
		p       *string
		dataset bool
	}{
		{"model.pretrained", &r.Model.Pretrained, false},
		{"model.tokenizer", &r.Model.Tokenizer, false},
		{"data.dir", &r.Data.Dir, true},
		{"eval.dir", &r.Eval.Dir, true},
	} {
		if f.key == "data.dir" && r.Data.Source != "lerobot" {
			continue // a folder of images: not a repository
		}
		resolve := hub.Model
		if f.dataset {
			resolve = hub.Dataset
		}
		dir, err := resolve(*f.p)
		if err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
		*f.p = dir
	}
	return nil
}
