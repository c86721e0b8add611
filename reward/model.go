package reward

import "github.com/reelml/reel/policy"

// Clip is an instruction and the frames of (a prefix of) an execution video, oldest first.
type Clip struct {
	Instruction string
	Frames      []policy.Image // github.com/reelml/reel/policy
}

// Model scores clips: the log-probability that the instruction was accomplished in the clip
// (TOPReward's log p("True") after "is the task complete?"; ExeVRM's log p(success)).
type Model interface {
	LogPTrue(clips []Clip) ([]float64, error)
	Close()
}
