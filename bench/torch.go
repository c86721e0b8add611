package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
)

// torchResult is what a bench/*_torch.py script prints.
type torchResult struct {
	StepS   float64 `json:"step_s"`
	PeakMiB float64 `json:"peak_mib"`
	Params  int     `json:"params"`
	Threads int     `json:"threads"`
	Torch   string  `json:"torch"`
}

// torchRun times job j's PyTorch twin, one round per call. On the CPU the first round runs it
// with PyTorch's intra-op threads at the core count and at 1 and keeps the faster setting for the
// later rounds: Debian's torch calls an OpenBLAS with its own thread pool, and with both pools at
// full size the cores are oversubscribed (a vit-tiny step took 0.65 s so, 0.37 s with one
// intra-op thread, on 2 cores); with MKL or on other machines the full count can win. The
// comparison is with PyTorch at its better setting.
type torchRun struct {
	python    string
	job       Job
	device    string
	precision string
	steps     int
	threads   int         // the chosen intra-op thread count (0: PyTorch's default), after round 1
	best      torchResult // the result of the best round
	rounds    int
}

// round runs the twin once (twice in the first round on a multi-core CPU) and returns its step time.
func (t *torchRun) round() (float64, error) {
	settings := []int{t.threads}
	if t.rounds == 0 && t.device == "cpu" && runtime.NumCPU() > 1 {
		settings = []int{runtime.NumCPU(), 1}
	}
	t.rounds++
	best := -1.0
	for _, n := range settings {
		res, err := runTorch(t.python, t.job, t.device, t.precision, t.steps, n)
		if err != nil {
			return 0, err
		}
		if best < 0 || res.StepS < best {
			best, t.threads = res.StepS, n
		}
		if t.best.StepS == 0 || res.StepS < t.best.StepS {
			t.best = res
		}
	}
	return best, nil
}

// runTorch runs job j's PyTorch twin once with n intra-op threads (0: PyTorch's default).
func runTorch(python string, j Job, device, precision string, steps, n int) (torchResult, error) {
	cmd := exec.Command(python, append(append([]string{j.Script}, j.Args...), "2", strconv.Itoa(steps), device, precision)...)
	cmd.Env = os.Environ()
	if n > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("REEL_TORCH_THREADS=%d", n))
	}
	out, err := cmd.Output()
	var res torchResult
	if err == nil {
		err = json.Unmarshal(out, &res)
	}
	return res, err
}

// findPython resolves "auto" to a Python with torch: Debian's /usr/bin/python3 (pyenv shims may
// shadow it) when it imports torch, else python3 from PATH.
func findPython(python string) string {
	if python != "auto" {
		return python
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}
