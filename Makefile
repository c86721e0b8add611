# reel — build, train and test. Every target pins the Go toolchain and the SIMD experiment, so a
# fresh machine (Go 1.26, GOTOOLCHAIN=local) needs nothing else: the go command fetches go1.27.3.
export GOTOOLCHAIN := go1.27.3
export GOEXPERIMENT := simd
export GOFLAGS := -buildvcs=false

GO ?= go
BIN := bin/reel
RUNS ?= runs

.PHONY: all build train test test-short lint bench bench-deps clean deps

all: build

build:
	$(GO) build -o $(BIN) ./cmd/reel

# The default tiny recipes end to end on CPU: pretrain, fine-tune on counting, then evaluate the
# fine-tune against its init_from (before, after and delta on every split; plots/numerosity.png).
train: build
	./$(BIN) doctor
	./$(BIN) train counting-pretrain-tiny --out $(RUNS)/counting-pretrain-tiny --overwrite
	./$(BIN) train counting-finetune-tiny --out $(RUNS)/counting-finetune-tiny --overwrite \
		--set train.init_from=$(RUNS)/counting-pretrain-tiny
	@echo "== fine-tune (after) vs its init_from (baseline): metrics, baseline.metrics, delta =="
	@./$(BIN) eval $(RUNS)/counting-finetune-tiny

# ffmpeg (video decoding/encoding), python3-protobuf (the independent TensorBoard reader of the
# tests) and Debian's python3 msgpack, websockets, numpy and PIL (the vla-eval harness-style
# client of the serve tests) are installed when missing and apt-get can run; otherwise the tests
# that need them skip with a message. The npm package hyparquet (an independent parquet reader the
# LeRobot tests check reel's files with) goes into the git-ignored .deps/node when npm is there;
# otherwise that test skips with a message.
HYPARQUET := 1.33.0
deps:
	@command -v ffmpeg >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		{ apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null; } ; } || \
		echo "note: ffmpeg not found and not installable here; video file tests will skip"
	@/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		{ apt-get update -qq && apt-get install -y -qq python3-protobuf >/dev/null; } ; } || \
		echo "note: python3-protobuf not installable here; TensorBoard files will not be read back"
	@[ -f .deps/node/node_modules/hyparquet/package.json ] || { command -v npm >/dev/null && \
		mkdir -p .deps/node && npm install --silent --no-audit --no-fund --prefix .deps/node hyparquet@$(HYPARQUET) >/dev/null; } || \
		echo "note: npm not found or hyparquet not installable; the hyparquet check of LeRobot parquet files will skip"
	@/usr/bin/python3 -c 'import msgpack, websockets, numpy, PIL' 2>/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		{ apt-get update -qq && apt-get install -y -qq python3-msgpack python3-websockets python3-numpy python3-pil >/dev/null; } ; } || \
		echo "note: python3 with msgpack, websockets, numpy and PIL not found and not installable here; the harness-client tests will skip"

test: lint deps
	$(GO) test -count=1 -timeout 40m ./...

test-short:
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Benchmarks print ratios measured in the same run. ViT: reel vs PyTorch (bench/vit_torch.py with
# Debian's python3-torch, skipped with a note when missing) on the same model and shapes: step
# time, ratio, compile time, model FLOPs, MFU and peak memory, then a sequence-length sweep (how
# the step time grows with tokens per image, attention's quadratic term). On a GPU machine run
# `reel bench vit --size b --precision bf16` for the GPU figures. Video: the same for the ViViT
# tubelet tokenizer + TrajViT2/ViViT encoder tower, TrajTok + that tower, and the STTS video encoder (pruning to half
# the tokens), sweeping clip length (tokens per video). STTS: training-step time unpruned vs pruned
# (keep 0.5) at several frame counts, on the tiny model deepened to 12 ViT blocks so that, as in
# the paper, most of the encoder runs after the pruning point. RD-VLA: step time and peak memory per
# recurrent depth, truncated vs full BPTT. Fine-tuning: step time and peak memory of a
# PaliGemma-shaped model in full, LoRA and frozen-tower fine-tunes, with and without train.remat.
bench: build bench-deps
	./$(BIN) bench vit --size tiny --tokens 16,64,256,1024
	./$(BIN) bench video --size tiny --frames 4,8,16,32
	./$(BIN) bench video --arch trajvit2 --frames 4,8,16,32
	./$(BIN) bench video --arch stts --keep 0.5 --frames 8,16,32
	./$(BIN) bench stts --frames 16,32,64,128 --steps 3 --set model.vision_layers=12 --set model.text_layers=4
	./$(BIN) bench rdvla --depths 4,32,64 --steps 2
	./$(BIN) bench finetune

# The CPU reference of the benchmarks: Debian's python3-torch with OpenBLAS, installed when missing
# and apt-get can run; otherwise the benchmarks print reel's side and a note.
bench-deps:
	@/usr/bin/python3 -c 'import torch' 2>/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		{ apt-get update -qq && apt-get install -y -qq python3-torch libopenblas0-pthread >/dev/null; } ; } || \
		echo "note: python3-torch not found and not installable here; benchmarks run without the PyTorch reference"

clean:
	rm -rf bin
