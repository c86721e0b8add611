package policy

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// ResizePadTopLeft is LeRobot's SmolVLA resize_with_pad: on images downscaled, upscaled and
// taller than wide, every value equals torch's (testdata/resize_pad_topleft.json, written by
// gen_resize_pad_topleft.py from LeRobot's vla_utils.py with torch 1.13) within 1e-5, the padding
// on the left and top.
func TestResizePadTopLeftIsLeRobots(t *testing.T) {
	b, err := os.ReadFile("testdata/resize_pad_topleft.json")
	require.NoError(t, err)
	var cases []struct {
		W, H, TW, TH int
		In, Out      []float32
	}
	require.NoError(t, json.Unmarshal(b, &cases))
	require.Len(t, cases, 3)
	for _, c := range cases {
		got, err := Resize(Image{W: c.W, H: c.H, Pix: c.In}, c.TW, c.TH, ResizePadTopLeft)
		require.NoError(t, err)
		require.Equal(t, c.TW, got.W)
		require.InDeltaSlice(t, c.Out, got.Pix, 1e-5, "%d×%d → %d×%d", c.W, c.H, c.TW, c.TH)
	}
	// 20×15 into 8×8: resized to 8×6, two black rows on top; the bottom row is not black.
	got, err := Resize(Image{W: cases[0].W, H: cases[0].H, Pix: cases[0].In}, 8, 8, ResizePadTopLeft)
	require.NoError(t, err)
	for i := range 2 * 8 * 3 {
		require.Zero(t, got.Pix[i])
	}
	require.NotZero(t, got.Pix[7*8*3])
}
