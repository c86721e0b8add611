package sim

import (
	"github.com/reelml/reel/data"

	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pixel(img []float32, n, x, y int) []float32 { return img[(y*n+x)*3 : (y*n+x)*3+3] }

func rgb(c [3]float32) []float32 { return c[:] }

func dark(p []float32) bool { return p[0] < 0.1 && p[1] < 0.1 && p[2] < 0.1 }

func TestRenderScene(t *testing.T) {
	n := 32
	w := handWorld(t, "pick", 0.75, 0.75, object{"circle", "red", 0.25, 0.25, 0.07})
	w.bowls[0].X, w.bowls[0].Y = 0.25, 0.75
	obs := w.Observe()
	require.Equal(t, n, obs.Images[CameraScene].W)
	require.Equal(t, w.State(), obs.State)
	require.Equal(t, w.Instruction(), obs.Instruction)
	require.Len(t, obs.Images, 1)
	img := obs.Images[CameraScene].Pix
	require.Len(t, img, n*n*3)
	assert.Equal(t, rgb(data.ColorRGB("red")), pixel(img, n, 8, 8), "object centre")
	assert.Equal(t, tableColor[:], pixel(img, n, 31, 0), "flat background")
	assert.Equal(t, tableColor[:], pixel(img, n, 24, 24), "between the open fingers")
	assert.True(t, dark(pixel(img, n, 22, 24)), "left finger at x = 0.70: %v", pixel(img, n, 22, 24))
	assert.True(t, dark(pixel(img, n, 25, 24)), "right finger at x = 0.80: %v", pixel(img, n, 25, 24))
	ring := pixel(img, n, 8, 24+3) // the bowl's rim, below its centre
	assert.InDelta(t, data.ColorRGB("blue")[2], ring[2], 0.25)
	assert.Greater(t, ring[2], ring[0]+0.3, "blue rim: %v", ring)

	w.closed = true
	shut := w.Observe().Images[CameraScene].Pix
	assert.False(t, dark(pixel(shut, n, 22, 24)), "closed: fingers moved in")
	assert.Less(t, pixel(shut, n, 23, 24)[0], pixel(img, n, 23, 24)[0]-0.2)

	// a held object is drawn under the gripper
	w = handWorld(t, "pick", 0.5, 0.5, object{"circle", "red", 0.5, 0.5, 0.07})
	w.cfg.ImageSize, n = 64, 64
	w.Step([]float32{0, 0, 1})
	img = w.Observe().Images[CameraScene].Pix
	assert.True(t, dark(pixel(img, n, 30, 32)), "finger over the object")
	assert.Equal(t, rgb(data.ColorRGB("red")), pixel(img, n, 31, 35), "object below the fingers")
}

func TestRenderWrist(t *testing.T) {
	n := 32
	w := handWorld(t, "pick", 0.6, 0.4, object{"circle", "red", 0.2, 0.8, 0.07})
	w.cfg.Wrist = true
	obs := w.Observe()
	require.Len(t, obs.Images, 2)
	img := obs.Images[CameraWrist].Pix
	f := int(16 - fingerOpen/(wristView/float64(n))) // left finger column
	assert.True(t, dark(pixel(img, n, f, 17)), "finger left of the centre")
	assert.Equal(t, tableColor[:], pixel(img, n, 16, 17), "between the fingers")
	w.gx, w.gy = 0.1, 0.1 // the view follows the gripper: the same picture, plus the floor
	moved := w.Observe().Images[CameraWrist].Pix
	assert.Equal(t, pixel(img, n, f, 17), pixel(moved, n, f, 17))
	assert.Equal(t, floorColor[:], pixel(moved, n, 0, 0), "off the table")
}

func TestRenderVariation(t *testing.T) {
	plain, varied := DefaultConfig(), DefaultConfig()
	varied.Variation, varied.ImageSize, varied.Wrist = 1, 64, true
	differ := 0
	for i := range 30 {
		a, err := NewWorld(plain, uint64(i))
		require.NoError(t, err)
		b, err := NewWorld(varied, uint64(i))
		require.NoError(t, err)
		require.Equal(t, a.Instruction(), b.Instruction(), "variation changes the looks, not the scene")
		ob := b.Observe()
		for _, img := range ob.Images {
			for _, v := range img.Pix {
				require.True(t, v >= 0 && v <= 1, "value %v", v)
			}
		}
		if pixel(ob.Images[CameraScene].Pix, 64, 32, 2)[0] != tableColor[0] {
			differ++
		}
		b2, _ := NewWorld(varied, uint64(i))
		require.Equal(t, ob, b2.Observe(), "rendering is deterministic")
		require.Equal(t, ob, b.Observe(), "and cached backgrounds change nothing")
	}
	assert.Greater(t, differ, 25, "backgrounds and lighting vary")
}
