package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/hf"
)

const hfInitUsage = `Usage: reel hf init CONFIG.json --out DIR [--seed S]

Writes a random-weight model directory of the architecture CONFIG.json configures (any reel
implements): config.json, generation_config.json and model.safetensors under transformers' names,
shapes, dtype (the config's torch_dtype) and key layout, as from_config + save_pretrained would.
DIR must not exist, be empty, or hold only a previous hf init's files; it is built aside and
renamed into place. Prints a JSON summary.
`

// hfInit is 'reel hf init'.
func hfInit(args []string) error {
	fs := newFlags("hf init")
	out := fs.String("out", "", "the model directory to write")
	seed := fs.Int64("seed", 0, "seed of the random weights")
	backend := fs.String("backend", "", `compute backend (default: $GOMLX_BACKEND, else auto)`)
	fs.Usage = usageFunc(fs, hfInitUsage)
	if err := parseArgs(fs, args, 1, "expected one config.json"); err != nil {
		return err
	}
	if *out == "" {
		return &exitError{2, fmt.Errorf("hf init: --out DIR is required")}
	}
	b, _, err := backends.Select(*backend)
	if err != nil {
		return err
	}
	res, err := hf.Init(b, fs.Arg(0), *out, *seed)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
