package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/reelml/reel/checkpoints"
	"github.com/reelml/reel/tasks"
	"github.com/reelml/reel/train"
)

const exportUsage = `Usage: reel export RUN_DIR|CHECKPOINT_DIR --format safetensors [--out FILE]
       reel export RUN_DIR|CHECKPOINT_DIR --format hf|peft|lerobot [--out DIR]

Writes the model's weights (optimizer state left out) to one safetensors file, tensor names
being the variable paths ("policy/vision/patch_embed/weights"). A policy's normalisation is
tensors too ("norm/state_offset", "norm/state_scale", "norm/action_offset", "norm/action_scale":
x_normalised = (x − offset) / scale); the metadata holds the recipe YAML, the step, the reel
format version and a policy's spec (policy.json).

A fine-tune of a Hugging Face model (model.pretrained) exports back to its formats: --format hf
writes a transformers model directory (config.json, model.safetensors under the pretrained
checkpoint's tensor names, shapes and dtypes with the LoRA adapters merged, W + (alpha/r)·B·A,
and the tokenizer and preprocessor files copied); --format peft writes the LoRA adapters as a
PEFT adapter (adapter_config.json, adapter_model.safetensors). Variables without a transformers
name are written as "reel." + their path with "/" → ".". A pi0, pi05 or smolvla run exports with
--format lerobot as a LeRobot policy directory of its type (config.json, model.safetensors under LeRobot's names, the
processor pipelines with the run's normalisation statistics; docs/lerobot-policies.md).`

func cmdExport(args []string) error {
	fs := newFlags("export")
	format := fs.String("format", "safetensors", "output format: safetensors, hf (a Hugging Face model directory, LoRA merged), peft (a PEFT LoRA adapter directory) or lerobot (a pi0, pi05 or smolvla run as a LeRobot policy directory)")
	out := fs.String("out", "", "output file (default: CHECKPOINT_DIR/model.safetensors; for hf and peft a directory, default CHECKPOINT_DIR/hf or CHECKPOINT_DIR/peft)")
	backend := fs.String("backend", "", "backend that builds the architecture's graph for hf and peft (default: automatic)")
	ema := fs.Bool("ema", false, "export the moving average of the weights (runs trained with train.ema)")
	fs.Usage = usageFunc(fs, exportUsage)
	if err := parseArgs(fs, args, 1, "expected one run or checkpoint directory"); err != nil {
		return err
	}
	if *format != "safetensors" && *format != "hf" && *format != "peft" && *format != "lerobot" {
		return &exitError{2, fmt.Errorf("export: --format %q is not supported (want safetensors, hf, peft or lerobot)", *format)}
	}
	dir, err := checkpoints.Resolve(fs.Arg(0), warn)
	if err != nil {
		return err
	}
	if *format == "lerobot" {
		if *out == "" {
			*out = filepath.Join(dir, "lerobot")
		}
		res, err := tasks.ExportLeRobot(dir, *out, *ema)
		if err != nil {
			return err
		}
		fmt.Printf("wrote %d tensors of %s (step %d, %d LoRA adapters merged) as a LeRobot %s policy directory to %s\n", res.Tensors, dir, res.Step, res.Merged, res.Type, *out)
		return nil
	}
	if *format != "safetensors" {
		return exportHF(dir, *format, *out, *ema, *backend)
	}
	if *out == "" {
		*out = filepath.Join(dir, "model.safetensors")
	}
	n, step, err := checkpoints.ExportSafetensors(dir, *out, *ema)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d tensors of %s (step %d) to %s\n", n, dir, step, *out)
	return nil
}

// exportHF writes the checkpoint dir of a Hugging Face fine-tune as a transformers model
// directory (format "hf") or a PEFT adapter ("peft").
func exportHF(dir, format, out string, ema bool, backend string) error {
	if out == "" {
		out = filepath.Join(dir, format)
	}
	if st, err := os.Stat(out); err == nil && !st.IsDir() {
		return fmt.Errorf("export: --out %s: expected a directory for --format %s, got a file", out, format)
	}
	res, err := train.ExportHF(dir, out, format == "peft", ema, backend)
	if err != nil {
		return err
	}
	if w := res.Warning(); w != "" {
		warn(w)
	}
	if format == "peft" {
		fmt.Printf("wrote the %d LoRA adapters of %s (step %d) as a PEFT adapter to %s\n", res.Merged, dir, res.Step, out)
		return nil
	}
	if n := res.Note(); n != "" {
		logf("%s", n)
	}
	fmt.Printf("wrote %d tensors of %s (step %d, %d LoRA adapters merged) as a Hugging Face model to %s\n", res.Tensors, dir, res.Step, res.Merged, out)
	return nil
}
