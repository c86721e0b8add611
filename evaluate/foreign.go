package evaluate

import (
	"fmt"

	"github.com/gomlx/compute"

	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/sim"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

// Foreign evaluates a policy directory another framework wrote (a LeRobot pi0 policy,
// tasks.ForeignPolicy) as it is: r is the recipe that starts from it (its weights and
// normalisation statistics, with o.Sets over it: the dataset is data.dir), spec the spec of its
// features. The offline action error is that of the directory's weights on r's eval sets (the
// model as a fresh run of r initialises it, nothing trained); the closed-loop evaluation runs
// when spec fits r's simulator. Nothing is written into dir (no eval.json, no rollout videos:
// the directory is not reel's), the result is returned.
func Foreign(b compute.Backend, dir string, r *recipes.Recipe, spec policy.Spec, o Options) (Result, error) {
	res := Result{Checkpoint: dir, Recipe: r.Name + " (" + dir + ")"}
	if o.Remote != nil {
		return res, fmt.Errorf("eval --remote: %s is a policy directory of another framework; serve it (reel serve %s) and evaluate the server", dir, dir)
	}
	r.Eval.Videos = 0 // rollout videos live under a run directory
	task, err := tasks.New(r)
	if err != nil {
		return res, err
	}
	if c, ok := task.(interface{ Close() }); ok {
		defer c.Close()
	}
	pt, ok := task.(PolicyTask)
	if !ok {
		return res, fmt.Errorf("eval: %s: recipe %s is task %s, not a policy", dir, r.Name, r.Task)
	}
	store, err := train.InitialStore(b, pt, r.Train)
	if err != nil {
		return res, fmt.Errorf("eval: %s: %w", dir, err)
	}
	rep, err := train.EvaluateStore(b, pt, store, r.Train)
	if err != nil {
		return res, fmt.Errorf("eval: %s: %w", dir, err)
	}
	res.Metrics = rep.Metrics
	o.log("%s (as it is): %s", dir, train.FormatMetrics(rep.Metrics))
	if err := sim.Fits(pt.Sim(), spec); err != nil {
		o.log("no closed-loop evaluation: %v", err)
		return res, nil
	}
	p, err := tasks.OpenPolicy(b, dir, o.Sets, uint64(pt.EvalConfig().Seed))
	if err != nil {
		return res, err
	}
	defer p.Close()
	return res, closedLoop(&res, pt, dir, spec, p, o)
}
