package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/reelml/reel/backends"
	"github.com/reelml/reel/hf"
	"github.com/reelml/reel/recipes"
	"github.com/reelml/reel/train"
)

// exportHF writes the checkpoint dir of a Hugging Face fine-tune as a transformers model
// directory (format "hf") or a PEFT adapter ("peft").
func exportHF(dir, format, out string, ema bool, backend string) error {
	r, err := recipes.Load(filepath.Join(dir, "recipe.yaml"), nil)
	if err != nil {
		return err
	}
	if out == "" {
		out = filepath.Join(dir, format)
	}
	if st, err := os.Stat(out); err == nil && !st.IsDir() {
		return fmt.Errorf("export: --out %s: expected a directory for --format %s, got a file", out, format)
	}
	b, _, err := backends.Select(backend)
	if err != nil {
		return err
	}
	src := hf.ExportSource{Checkpoint: dir, Pretrained: r.Model.Pretrained, ConfigJSON: r.Model.HFConfig,
		LoRA: train.GraphOptions(r.Train).LoRA, EMA: ema}
	if format == "peft" {
		res, err := hf.ExportPEFT(b, src, out)
		if err != nil {
			return err
		}
		if n := len(res.NotInAdapter); n > 0 {
			fmt.Fprintf(os.Stderr, "reel: warning: %d trained variables outside the adapters (%s) are not in a PEFT adapter: applied to the base, it does not reproduce the run (freeze them with train.freeze, or export --format hf)\n",
				n, firstNames(res.NotInAdapter, 3))
		}
		fmt.Printf("wrote the %d LoRA adapters of %s (step %d) as a PEFT adapter to %s\n", res.Merged, dir, res.Step, out)
		return nil
	}
	res, err := hf.ExportModel(b, src, out)
	if err != nil {
		return err
	}
	if len(res.ReelOnly) > 0 {
		fmt.Fprintf(os.Stderr, "reel: %d variables have no transformers name and are written as reel.* (%s)\n", len(res.ReelOnly), firstNames(res.ReelOnly, 3))
	}
	fmt.Printf("wrote %d tensors of %s (step %d, %d LoRA adapters merged) as a Hugging Face model to %s\n", res.Tensors, dir, res.Step, res.Merged, out)
	return nil
}

// firstNames is "a, b, c and N more".
func firstNames(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
