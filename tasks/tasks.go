// Package tasks connects a recipe to the trainer: it builds a train.Task (data + model + loss +
// evaluation) from the recipe's `task` and `model.arch`.
package tasks

import (
	"fmt"

	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/train"
)

// New returns the task a recipe describes.
func New(r *recipes.Recipe) (train.Task, error) {
	switch r.Task {
	case "vqa":
		return NewVQA(r)
	case "videoclip":
		return NewVideoCLIP(r)
	case "videoqa":
		return NewVideoQA(r)
	case "vla":
		return NewVLA(r)
	}
	return nil, fmt.Errorf("task: %q is not a known task", r.Task)
}
