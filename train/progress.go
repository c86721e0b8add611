package train

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows a progress bar on a terminal, or plain log lines otherwise.
type progress struct {
	opts    Options
	bar     *progressbar.ProgressBar
	start   time.Time
	first   int64
	ema     float64
	emaInit bool
}

func newProgress(opts Options, total, step int64) *progress {
	p := &progress{opts: opts, start: time.Now(), first: step}
	if opts.Progress {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(opts.Log),
			progressbar.OptionSetDescription(opts.Recipe.Name),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetWidth(24),
		)
		_ = p.bar.Set64(step)
	}
	return p
}

func (p *progress) Update(step int64, loss, dt, examples, mfu float64) {
	if !p.emaInit {
		p.ema, p.emaInit = loss, true
	} else {
		p.ema = 0.9*p.ema + 0.1*loss
	}
	if p.bar != nil {
		m := ""
		if mfu > 0 {
			m = fmt.Sprintf(" MFU %.0f%%", 100*mfu)
		}
		p.bar.Describe(fmt.Sprintf("%s loss %.4f %.1f steps/s %.0f ex/s%s", p.opts.Recipe.Name, p.ema, 1/dt, examples/dt, m))
		_ = p.bar.Set64(step)
	}
}

// Log prints a plain progress line (only when no bar is drawn).
func (p *progress) Log(step, total int64, loss, lr, dt, examples, mfu float64) {
	if p.bar != nil {
		return
	}
	elapsed := time.Since(p.start).Seconds()
	rate := float64(step-p.first) / max(elapsed, 1e-9)
	eta := time.Duration(float64(total-step)/max(rate, 1e-9)) * time.Second
	m := ""
	if mfu > 0 {
		m = fmt.Sprintf(" MFU %.1f%%", 100*mfu)
	}
	fmt.Fprintf(p.opts.Log, "step %d/%d loss %.4f lr %.3g %.1f steps/s %.0f ex/s%s ETA %s\n",
		step, total, loss, lr, rate, rate*examples, m, eta.Round(time.Second))
}

func (p *progress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.opts.Log)
	}
}
