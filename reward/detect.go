package reward

import (
	"math"
	"slices"
)

// Detection counts a success detector's decisions against labels.
type Detection struct {
	TP, FP, TN, FN int
	Threshold      float64
}

// Accuracy is the fraction of correct decisions (0 with none).
func (d Detection) Accuracy() float64 { return ratio(d.TP+d.TN, d.TP+d.FP+d.TN+d.FN) }

// Precision is TP / (TP + FP) (0 when nothing was called a success).
func (d Detection) Precision() float64 { return ratio(d.TP, d.TP+d.FP) }

// Recall is TP / (TP + FN) (0 when there are no successes).
func (d Detection) Recall() float64 { return ratio(d.TP, d.TP+d.FN) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Detect calls every score above threshold a success and counts the outcome against labels.
func Detect(scores []float64, labels []bool, threshold float64) Detection {
	d := Detection{Threshold: threshold}
	for i, s := range scores {
		switch pred := s > threshold; {
		case pred && labels[i]:
			d.TP++
		case pred:
			d.FP++
		case labels[i]:
			d.FN++
		default:
			d.TN++
		}
	}
	return d
}

// ChooseThreshold returns the threshold with the best accuracy on (scores, labels) — a train
// split's — among the midpoints between consecutive distinct scores, one below them all (every
// episode a success) and the highest score (none); ties go to the lowest such threshold. It returns 0 for no scores.
func ChooseThreshold(scores []float64, labels []bool) float64 {
	if len(scores) == 0 {
		return 0
	}
	u := slices.Clone(scores)
	slices.Sort(u)
	u = slices.Compact(u)
	cands := []float64{u[0] - 1}
	for i := 1; i < len(u); i++ {
		cands = append(cands, u[i-1]+(u[i]-u[i-1])/2)
	}
	cands = append(cands, u[len(u)-1])
	best, bestAcc := cands[0], math.Inf(-1)
	for _, c := range cands {
		if a := Detect(scores, labels, c).Accuracy(); a > bestAcc {
			best, bestAcc = c, a
		}
	}
	return best
}
