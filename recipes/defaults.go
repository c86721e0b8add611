package recipes

// Defaults returns a recipe with a sensible default for every field. Recipe files are decoded
// over it, so keys a file omits keep these values. Name is left empty (Load fills it from the
// file or embedded recipe name when the recipe does not set one).
func Defaults() Recipe {
	return Recipe{
		Task: "vqa",
		Model: ModelConfig{
			Arch:         "vlm",
			ImageSize:    32,
			PatchSize:    8,
			VisionDim:    64,
			VisionLayers: 2,
			VisionHeads:  4,
			TextDim:      64,
			TextLayers:   2,
			TextHeads:    4,
			MLPRatio:     4,
			MaxTextLen:   12,
		},
		Data: DataConfig{
			Source:           "synthetic",
			CountingFraction: 0.1,
			MinObjects:       1,
			MaxObjects:       6,
			Shapes:           []string{"circle", "square", "triangle"},
			Colors:           []string{"red", "green", "blue", "yellow"},
			MinSize:          0.12,
			MaxSize:          0.22,
			Overlap:          false,
			Background:       "mixed",
			Prefetch:         8,
			Workers:          0,
		},
		Train: TrainConfig{
			Steps:       100,
			BatchSize:   32,
			GradAccum:   1,
			LR:          1e-3,
			Schedule:    "cosine",
			WarmupSteps: 10,
			MinLRRatio:  0.1,
			WeightDecay: 0.01,
			Beta1:       0.9,
			Beta2:       0.999,
			GradClip:    1.0,
			Seed:        1,
			LogEvery:    10,
			EvalEvery:   0,
		},
		Eval: EvalConfig{
			Examples:  256,
			BatchSize: 64,
			Sets:      []string{"counting", "general"},
			Seed:      12345,
			OODMax:    9,
		},
		Checkpoint: CheckpointConfig{
			Every: 0,
			Keep:  3,
		},
	}
}
