package tasks

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reelml/reel/models"
	"github.com/reelml/reel/recipes"
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
		{"rdvla-tiny", models.RDVLAPolicy{}, true}, {"pi0-tiny", models.Pi0Policy{}, false},
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
	require.ErrorContains(t, err, `model.arch: "nosuch" is not a policy family (want pi0, policy, rdvla, `)
}
