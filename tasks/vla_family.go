package tasks

import (
	"fmt"

	"github.com/gomlx/compute"
	"slices"
	"strings"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/sim"
	"github.com/reelml/reel/text"
)

// A policy family of the vla task is one model.arch: a models.Policy type (the graph) and, here,
// what binds it to a recipe — its configuration, its instruction tokenizer, its pretrained
// weights. Each family registers itself from its own file (vla_molmobot.go, vla_rdvla.go,
// pi0.go), so a new family is a new file; the task and the trained policy only see the
// vlaFamily and models.Policy interfaces (docs/policies.md).

// vlaFamily is an opened policy family: the recipe's configuration read, its tokenizer loaded.
// A family that starts from pretrained weights also implements train.Initializer.
type vlaFamily interface {
	// text is the codec instructions are encoded with.
	text() *textCodec
	// network sizes the family's network for spec with the normalisation norm; focus reports
	// whether the training data carry the simulator's focus points (pointing supervision).
	network(spec policy.Spec, norm models.Normalization, focus bool) (models.Policy, error)
}

// prompter is the optional interface of a family whose network reads a prompt built from the
// instruction and the raw state (pi0.5's discretised state, pi05.go) instead of the instruction.
type prompter interface {
	prompt(instruction string, state []float32) string
}

// normalized is the optional interface of a family whose host-side inputs depend on the
// normalisation statistics: a trained policy tells it the ones its checkpoint holds.
type normalized interface {
	setNormalization(models.Normalization)
}

// openVLAFamily opens a family for recipe r. ckpt is the checkpoint directory a trained policy is
// reopened from ("" when training): the tokenizer files it holds are the ones the policy was
// trained with, and take the place of the recipe's.
type openVLAFamily func(r *recipes.Recipe, ckpt string) (vlaFamily, error)

// vlaFamilies are the registered families by model.arch.
var vlaFamilies = map[string]openVLAFamily{}

// registerVLAFamily registers the family of model.arch arch (from an init function).
func registerVLAFamily(arch string, open openVLAFamily) {
	if _, dup := vlaFamilies[arch]; dup {
		panic("tasks: policy family " + arch + " registered twice")
	}
	vlaFamilies[arch] = open
}

// openFamily opens the family of r's model.arch.
func openFamily(r *recipes.Recipe, ckpt string) (vlaFamily, error) {
	open, ok := vlaFamilies[r.Model.Arch]
	if !ok {
		var archs []string
		for a := range vlaFamilies {
			archs = append(archs, a)
		}
		slices.Sort(archs)
		return nil, fmt.Errorf("model.arch: %q is not a policy family (want %s)", r.Model.Arch, strings.Join(archs, ", "))
	}
	return open(r, ckpt)
}

// policyDir is a policy directory in another framework's layout that a family opens as it is
// (pi0's LeRobot directories): is recognises one, open opens it as a trained policy with the
// recipe settings sets over the family's defaults.
type policyDir struct {
	is   func(dir string) bool
	open func(backend compute.Backend, dir string, sets []string, seed uint64) (Policy, error)
	// recipe is the recipe that evaluates the directory as it is (ForeignPolicy); nil: the
	// layout is served but not evaluated.
	recipe func(dir string, sets []string) (*recipes.Recipe, policy.Spec, error)
}

// ForeignPolicy reports whether dir is a policy directory another framework wrote (a LeRobot
// pi0 policy) and returns the recipe that starts from it as it is (model.pretrained: dir, sized
// by its configuration, its normalisation statistics kept), with sets over it, and the spec of its
// features. ok is false for anything else (a reel checkpoint).
func ForeignPolicy(dir string, sets []string) (r *recipes.Recipe, spec policy.Spec, ok bool, err error) {
	for _, d := range policyDirs {
		if d.is(dir) {
			if d.recipe == nil {
				return nil, spec, true, fmt.Errorf("%s: this policy directory can be served but not evaluated", dir)
			}
			r, spec, err = d.recipe(dir, sets)
			return r, spec, true, err
		}
	}
	return nil, spec, false, nil
}

// policyDirs are the registered layouts, consulted by OpenPolicy before reel's checkpoints.
var policyDirs []policyDir

// registerPolicyDir registers a layout (from a family's init function).
func registerPolicyDir(d policyDir) { policyDirs = append(policyDirs, d) }

// instructionText is the instruction codec of a policy: the tokenizer at path, its ids shifted
// past reserved ids, or reel's word vocabulary of the simulator's instructions (path "").
func instructionText(path string, reserved int) (*textCodec, error) {
	return newTextCodecReserving(path, text.NewVocab(sim.Words()), reserved)
}
