package tasks

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/policy"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/text"
)

// Each vla model.arch opens its own family's network type, and only RD-VLA's is recurrent (the
// optional interface reel eval's depth sweep asks for); an arch without a family is refused with
// one line naming model.arch and the families there are.
func TestVLAFamiliesByArch(t *testing.T) {
	for _, c := range []struct {
		recipe    string
		want      models.Policy
		recurrent bool
	}{{"molmobot-tiny", models.MolmoBotPolicy{}, false}, {"molmobot-mse-tiny", models.MolmoBotPolicy{}, false},
		{"rdvla-tiny", models.RDVLAPolicy{}, true}, {"pi0-tiny", models.Pi0Policy{}, false}, {"pi05-tiny", models.Pi05Policy{}, false},
		{"smolvla-tiny", models.SmolVLAPolicy{}, false}} {
		r, err := recipes.Load(c.recipe, nil)
		require.NoError(t, err)
		task, err := NewVLA(r)
		require.NoError(t, err, c.recipe)
		require.IsType(t, c.want, task.Network(), c.recipe)
		_, ok := task.Network().(models.Recurrent)
		require.Equal(t, c.recurrent, ok, c.recipe)
		task.Close()
	}
	r, err := recipes.Load("molmobot-tiny", nil)
	require.NoError(t, err)
	r.Model.Arch = "nosuch"
	_, err = NewVLA(r)
	require.EqualError(t, err, `model.arch: "nosuch" is not a policy family (want pi0, pi05, policy, rdvla, smolvla)`)
}

// pi05's prompt carries the state: the task encodes "Task: …, State: …;\nAction: " with the state
// normalised by the policy's statistics and discretised into 256 bins, read by pi05-tiny's word
// vocabulary word by word (no unknown ids).
func TestPi05PromptCarriesNormalisedState(t *testing.T) {
	r, err := recipes.Load("pi05-tiny", nil)
	require.NoError(t, err)
	task, err := NewVLA(r)
	require.NoError(t, err)
	defer task.Close()
	f := task.family.(*pi05Family)
	f.setNormalization(models.Normalization{StateOffset: []float32{1, 0}, StateScale: []float32{2, 0.5}})
	obs := policy.Observation{Instruction: "pick up the red circle", State: []float32{3, -0.25}}
	// (3−1)/2 = 1 → bin 255; −0.25/0.5 = −0.5 → bin 64.
	require.Equal(t, "Task: pick up the red circle, State: 255 64;\nAction: ", task.prompt(obs))
	ids := task.text.encode(task.prompt(obs))
	require.Len(t, ids, 15)
	require.NotContains(t, ids, text.UNKID)
	require.Equal(t, task.text.encode("255"), ids[10:11])
}
