package main

import "testing"

// The tiny LeRobot-layout pi05 directory (tasks/testdata/lerobot_pi05/tiny, written by a PyTorch
// twin of LeRobot's modeling_pi05.py) is served as it is; pi05-tiny fine-tunes from it on the real
// G1 dataset fixture (26-D state written into the prompt); the run exports with --format lerobot
// as a pi05 directory (checked by an independent standard-library reader written from LeRobot's
// code), which serves and loads again as model.pretrained: at lr 0 with the export's own
// statistics its evaluation is the run's.
func TestPi05LeRobotDirectoryFineTunesServesExports(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes video and trains")
	}
	lerobotPolicyRoundTrip(t, lerobotPolicyCase{recipe: "pi05-tiny", tiny: "../../tasks/testdata/lerobot_pi05/tiny",
		checker: "../../tasks/testdata/lerobot_pi05/check_pi05_export.py", image: 32, state: []float32{0.1, 0.2, 0.3, 0.4, 0.5, 0.6},
		marker: "(LeRobot pi05)", fromTiny: true})
}
