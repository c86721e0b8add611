package tasks

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/compute"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/hub"
	"github.com/reelml/reel/lerobot"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/reward"
)

// ScoreProgress scores the progress of ds's episodes (reward.ScoreDataset) with the reward
// model at path (OpenRewardModel) on the backend named backend (backends.Select).
func ScoreProgress(backend, path string, ds *lerobot.Dataset, opts reward.Options) (*reward.Report, error) {
	b, _, err := backends.Select(backend)
	if err != nil {
		return nil, err
	}
	m, err := OpenRewardModel(b, path)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return reward.ScoreDataset(m, ds, opts)
}

// OpenRewardModel opens path as a reward model (reward.Model) by what it holds:
//   - a reel run of task exevrm or reward (recipe.yaml): its success log-probability
//     (OpenExeVRMReward);
//   - a pretrained Hugging Face VLM directory (config.json: PaliGemma, LLaVA or Qwen-VL with its
//     tokenizer): TOPReward's log p("True") (reward.OpenPretrained).
//
// A videoqa run is refused: its word vocabulary (data.VideoQAVocab) has no "true"/"false" and no
// words for an instruction, so it cannot be asked whether a task is complete.
//
// path may also name a Hugging Face repository already in the Hub cache (hub.Model).
func OpenRewardModel(backend compute.Backend, path string) (reward.Model, error) {
	path, err := hub.Model(path)
	if err != nil {
		return nil, fmt.Errorf("reward model: %w", err)
	}
	if _, err := os.Stat(filepath.Join(path, "recipe.yaml")); err == nil {
		r, err := recipes.Load(filepath.Join(path, "recipe.yaml"), nil)
		if err != nil {
			return nil, err
		}
		switch r.Task {
		case "exevrm", "reward":
			return OpenExeVRMReward(backend, path)
		case "videoqa":
			return nil, fmt.Errorf("%s: a videoqa run cannot score a task: its vocabulary has no True/False answer (train an exevrm run, or give a pretrained VLM directory)", path)
		}
		return nil, fmt.Errorf("%s: a %s run is not a reward model (want an exevrm run or a pretrained VLM directory)", path, r.Task)
	}
	if _, err := os.Stat(filepath.Join(path, "config.json")); err == nil {
		return reward.OpenPretrained(backend, path)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("reward model %s: %w", path, err)
	}
	return nil, fmt.Errorf("reward model %s: expected a reel run (recipe.yaml) or a Hugging Face VLM directory (config.json)", path)
}
