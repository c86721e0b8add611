// Package tasks connects a recipe to the trainer: it builds a train.Task (data + model + loss +
// evaluation) from the recipe's `task` and `model.arch`.
package tasks

import (
	"fmt"
	"sync"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/train"
)

// New returns the task a recipe describes. Fields naming Hugging Face repositories or LeRobot
// datasets (ORG/NAME[@REVISION]) are first resolved to their directories in place
// (Recipe.ResolveRepos).
func New(r *recipes.Recipe) (train.Task, error) {
	if err := r.ResolveRepos(); err != nil {
		return nil, err
	}
	switch r.Task {
	case "vqa":
		return NewVQA(r)
	case "videoclip":
		return NewVideoCLIP(r)
	case "videoqa":
		return NewVideoQA(r)
	case "vla":
		return NewVLA(r)
	case "exevrm":
		return NewExeVRM(r)
	}
	return nil, fmt.Errorf("task: %q is not a known task", r.Task)
}

// evalCache holds a task's evaluation sets, each built once (they are fixed: generated from
// eval.seed or read from disk) and reused by every evaluation, also from concurrent callers.
type evalCache struct {
	mu   sync.Mutex
	sets map[string]train.EvalData
}

// get returns the set called name, building it with build the first time.
func (c *evalCache) get(name string, build func() (train.EvalData, error)) (train.EvalData, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.sets[name]; ok {
		return s, nil
	}
	s, err := build()
	if err != nil {
		return nil, err
	}
	if c.sets == nil {
		c.sets = map[string]train.EvalData{}
	}
	c.sets[name] = s
	return s, nil
}

// evalBatches splits a fixed evaluation set into batches of bs examples (bs ≤ len(items)); the
// last batch is padded by repeating the last example, so every batch has one shape and one
// compiled graph serves them all (Metrics ignores the padding). build turns one batch of
// examples into graph inputs; start is the index of its first example.
func evalBatches[T any](items []T, bs int, build func(chunk []T, start int) ([]*tensors.Tensor, error)) ([][]*tensors.Tensor, error) {
	var out [][]*tensors.Tensor
	for start := 0; start < len(items); start += bs {
		chunk := make([]T, bs)
		for j := range chunk {
			chunk[j] = items[min(start+j, len(items)-1)]
		}
		b, err := build(chunk, start)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
