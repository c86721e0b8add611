// Package bench holds reel's benchmarks: training-step time against the PyTorch reference scripts
// beside this package (vit_torch.py, video_torch.py, trajvit_torch.py, stts_torch.py,
// hf_torch.py: `reel bench vit|video|hf`), STTS and spatiotemporal (raw-pixel) token pruning in a video VLM (`reel
// bench stts`), the recurrent-depth policy per depth (`reel bench rdvla`), fine-tuning memory
// (`reel bench finetune`) and the policy server under load (`reel bench serve`). Each benchmark
// is a Config, a Run returning rows (JSON-tagged) and a WriteTable that prints them as the CLI
// does; progress goes to a Log.
//
// The reference models timed on both sides (ViTClassifier, VideoClassifier, TrajViTClassifier,
// STTSClassifier, LMBench, VisionBench) are train.Tasks over one fixed random batch. Step times
// come from train.StepTimer; HeapPeak and LiveHeap measure the Go heap (the CPU backend's
// buffers).
//
// bench imports the packages it measures (train, tasks, hf, serve, models, tokenizers);
// nothing below cmd/reel imports bench.
package bench

// Logger prints one progress line; the CLI writes "reel: " + the line to stderr. A nil Logger is silent.
type Logger func(format string, a ...any)

func (l Logger) printf(format string, a ...any) {
	if l != nil {
		l(format, a...)
	}
}
