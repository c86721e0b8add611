// Package recipes defines reel's typed YAML recipe schema, loads recipes (embedded or from files),
// resolves `base:` inheritance and `--set` overrides, and validates every field before any compute.
package recipes

// Recipe is one fully resolved training recipe.
//
// Validation is driven by struct tags:
//   - yaml:"name"            the YAML key (unknown keys are errors, with a did-you-mean suggestion)
//   - range:"min,max"        inclusive numeric bounds; either side may be empty ("1," means ≥ 1)
//   - enum:"a|b|c"           allowed values of a string (or of each element of a []string)
//   - required:"true"        must be set (non-zero) in the resolved recipe
//   - doc:"..."              one-line help shown by `reel recipes show --doc` and in error messages
//   - for:"arch=a|b"         the field (or section) applies only to these model.arch values, or
//     for:"task=x|y"         tasks; setting it for another is an error naming the field
type Recipe struct {
	Name        string `yaml:"name" required:"true" doc:"recipe name"`
	Description string `yaml:"description" doc:"one-line description shown by 'reel recipes list'"`
	// Base names another recipe (embedded name or a path relative to this file) to inherit from.
	Base string `yaml:"base,omitempty" doc:"recipe to inherit from; keys here override it"`
	Task string `yaml:"task" required:"true" enum:"vqa|videoclip|videoqa|vla|exevrm" doc:"what is trained: vqa = image + question -> answer; videoclip = video-text contrastive (retrieval); videoqa = video + question -> answer; vla = camera images + instruction + robot state -> action chunk; exevrm = execution video + instruction -> task accomplished (reward model)"`

	Model      ModelConfig      `yaml:"model"`
	Data       DataConfig       `yaml:"data"`
	Train      TrainConfig      `yaml:"train"`
	Eval       EvalConfig       `yaml:"eval"`
	Checkpoint CheckpointConfig `yaml:"checkpoint"`
	Pruning    PruningConfig    `yaml:"pruning" for:"arch=videovlm"`
	Policy     PolicyConfig     `yaml:"policy" for:"task=vla"`
}

// PolicyConfig describes a VLA policy's action head (task vla).
type PolicyConfig struct {
	Head        string  `yaml:"head" for:"arch=policy" enum:"flow|mse" doc:"flow = flow-matching action expert (MolmoBot/pi0); mse = the same expert regressing the chunk directly (baseline)"`
	Flow        string  `yaml:"flow" for:"arch=policy" enum:"molmobot|pi0" doc:"flow-matching time convention: molmobot = t=0 noise, x_t=(1-t)e+t*a, target a-e, t=0.999*Beta(1,1.5); pi0 = t=1 noise, target e-a, t=0.999*Beta(1.5,1)+0.001"`
	Horizon     int     `yaml:"horizon" range:"1,256" doc:"actions per predicted chunk"`
	Execute     int     `yaml:"execute" range:"1,256" doc:"actions of each chunk executed before the policy is queried again; at most horizon"`
	EulerSteps  int     `yaml:"euler_steps" for:"arch=policy|pi0|pi05|smolvla" range:"1,1000" doc:"flow: Euler integration steps at inference"`
	TimeSamples int     `yaml:"time_samples" for:"arch=policy" range:"1,64" doc:"flow: flow times sampled per example and backbone pass in training"`
	ExpertDim   int     `yaml:"expert_dim" range:"8,4096" doc:"action expert width (pi0: the Gemma expert's hidden size; openpi's gemma_300m: 1024)"`
	ExpertHeads int     `yaml:"expert_heads" for:"arch=policy|rdvla" range:"1,64" doc:"action expert heads; must divide expert_dim"`
	ExpertMLP   int     `yaml:"expert_mlp" for:"arch=pi0|pi05|smolvla" range:"8,65536" doc:"pi0: the Gemma action expert's MLP width (openpi's gemma_300m: 4096); its depth, heads and head_dim are the PaliGemma decoder's (joint attention)"`
	NormStats   string  `yaml:"norm_stats" for:"arch=pi0|pi05|smolvla" enum:"dataset|checkpoint" doc:"pi0 from a LeRobot policy directory (model.pretrained): dataset = normalise with the new dataset's statistics (LeRobot's fine-tuning); checkpoint = keep the directory's own (openpi keeps the base's; needs the same state/action dimensions and data.normalization its mode)"`
	PointWeight float64 `yaml:"point_weight" range:"0,100" doc:"weight of the pointing loss: the backbone points (spatial soft-argmax) at the simulator's focus point (the object or bowl the task is about); synthetic data only"`

	// pi05 only.
	KnowledgeInsulation bool `yaml:"knowledge_insulation" for:"arch=pi05" doc:"pi05: the action expert reads the VLM's keys and values through a stop-gradient, so the action loss trains the expert and the projections only (knowledge insulation, arXiv:2505.23705)"`

	// Recurrent-depth head (model.arch rdvla).
	MeanDepth     float64 `yaml:"mean_depth" for:"arch=rdvla" range:"1,64" doc:"rdvla: mean training depth r̄: r = Poisson(exp(τ)) + 1, τ ~ N(ln r̄ − 0.125, 0.5), clamped to [1, 64]"`
	BPTT          int     `yaml:"bptt" for:"arch=rdvla" range:"1,64" doc:"rdvla: iterations backpropagated through (truncated BPTT); earlier ones run without gradient"`
	CoreLayers    int     `yaml:"core_layers" for:"arch=rdvla" range:"1,16" doc:"rdvla: transformer blocks in the weight-tied recurrent core"`
	MaxDepth      int     `yaml:"max_depth" for:"arch=rdvla" range:"1,256" doc:"rdvla: most iterations at inference (adaptive stopping cap)"`
	StopThreshold float64 `yaml:"stop_threshold" for:"arch=rdvla" range:"0,10" doc:"rdvla: adaptive stopping: stop once MSE(a_k, a_k-1) (normalised units) is below this"`
}

// PruningConfig selects how a videovlm drops video tokens inside its vision encoder.
type PruningConfig struct {
	Method    string  `yaml:"method" enum:"none|random|stts|spatiotemporal|exevrm" doc:"none = keep every token; random = keep a random subset (first frame kept); stts = learned spatio-temporal token scoring; spatiotemporal = the training-free raw-pixel spatiotemporal token pruning of the ExeVRM paper (large uniform regions and tokens unchanged since their last kept frame are dropped; a different count per video, packed); exevrm = the former name of spatiotemporal, still accepted"`
	Keep      float64 `yaml:"keep" range:"0.01,1" doc:"fraction of the video's group tokens kept (random, stts; spatiotemporal decides by itself)"`
	AuxWeight float64 `yaml:"aux_weight" range:"0,100" doc:"stts: weight of the auxiliary MSE(score, 1 - cos(x_t-1, x_t)) loss"`
}

// ModelConfig describes the architecture.
type ModelConfig struct {
	Arch         string  `yaml:"arch" required:"true" enum:"vlm|trajvit2|vivit|videovlm|policy|rdvla|pi0|pi05|smolvla" doc:"architecture: policy = ViT + instruction backbone with an action expert (task vla); rdvla = the same backbone with a recurrent-depth action head (task vla); pi0 = openpi's pi0: a PaliGemma (model.pretrained) prefix and a Gemma action expert over state and action tokens, joint attention per layer (task vla); pi05 = pi0.5: pi0's network with the state as discretised text in the prompt, no state token, and the expert's norms conditioned on the flow time (adaptive RMSNorm) (task vla); vlm = ViT -> projector -> causal text decoder; videovlm = per-frame ViT -> token pruning -> projector -> causal text decoder; trajvit2 = TrajTok trajectory tokens -> video ViT + text encoder; vivit = tubelet tokens -> video ViT + text encoder; smolvla = LeRobot's SmolVLA: a SmolVLM2 cut to its first layers and an action expert interleaving cross- and self-attention (task vla, model.pretrained a LeRobot smolvla directory or random); policy = ViT + instruction backbone with an action expert (task vla); rdvla = the same backbone with a recurrent-depth action head (task vla); pi0 = openpi's pi0: a PaliGemma (model.pretrained) prefix and a Gemma action expert over state and action tokens, joint attention per layer (task vla); vlm = ViT -> projector -> causal text decoder; videovlm = per-frame ViT -> token pruning -> projector -> causal text decoder; trajvit2 = TrajTok trajectory tokens -> video ViT + text encoder; vivit = tubelet tokens -> video ViT + text encoder"`
	ImageSize    int     `yaml:"image_size" range:"8,1024" doc:"square input image side, pixels"`
	PatchSize    int     `yaml:"patch_size" range:"2,64" doc:"ViT patch side, pixels; must divide image_size"`
	VisionDim    int     `yaml:"vision_dim" range:"8,4096" doc:"ViT embedding width"`
	VisionLayers int     `yaml:"vision_layers" range:"1,64" doc:"ViT blocks"`
	VisionHeads  int     `yaml:"vision_heads" range:"1,64" doc:"ViT attention heads; must divide vision_dim"`
	TextDim      int     `yaml:"text_dim" range:"8,8192" doc:"decoder width"`
	TextLayers   int     `yaml:"text_layers" range:"1,96" doc:"decoder blocks"`
	TextHeads    int     `yaml:"text_heads" range:"1,128" doc:"decoder heads; must divide text_dim"`
	MLPRatio     float64 `yaml:"mlp_ratio" range:"0.5,16" doc:"MLP hidden width / model width"`
	SinCosPos    bool    `yaml:"sincos_pos" doc:"add fixed 2-D sine-cosine position features to the ViT's learned positions (vlm, videovlm, policy, rdvla)"`
	ConvStem     bool    `yaml:"conv_stem" doc:"ViT patch embedding by stride-2 3x3 convolutions instead of a linear map (patch_size must be a power of two)"`
	MaxTextLen   int     `yaml:"max_text_len" range:"4,4096" doc:"text tokens per example (question + answer, or caption), padded"`
	Tokenizer    string  `yaml:"tokenizer" for:"task=vla|videoclip" doc:"vla, videoclip: encode instructions or captions with this tokenizer (tokenizer.json, SentencePiece .model, vocab.json + merges.txt, or a model directory, or a repo id ORG/NAME[@REVISION] in the local Hugging Face cache) instead of reel's word vocabulary; its files are copied into every checkpoint"`
	// Pretrained Hugging Face models (task vqa, arch vlm; task videoqa, arch videovlm; task vla, arch
	// pi0): the vision_*/text_* sizes (and for videoqa patch_size) are then the checkpoint's.
	Pretrained string `yaml:"pretrained" doc:"vqa: fine-tune a pretrained Hugging Face VLM (PaliGemma or LLaVA) from this local directory (config.json + safetensors + tokenizer), or 'random' for the architecture of model.hf_config with random weights; image placeholders precede the question. videoqa: a LLaVA with a SigLIP tower, STTS scoring after tower layer score_after and pruning of group×group patch groups, the kept patches before the question. pi0: the PaliGemma directory (its tensors named reel.* load into the action expert, so an exported pi0 loads again; without them the expert starts random; its tokenizer encodes instructions unless model.tokenizer is set), or 'random'. A directory may also be named by its Hugging Face repo id ORG/NAME[@REVISION], read from the local Hub cache (never downloaded)"`
	HFConfig   string `yaml:"hf_config" doc:"vqa, videoqa, pi0, pretrained: random: the model's config.json as inline JSON (reel's word vocabulary is the text vocabulary: vocab_size must exceed it, and for vqa image_token_index lie beyond it)"`
	// Video models (trajvit2, vivit). vision_* size the video encoder, text_* the text encoder.
	Frames          int  `yaml:"frames" for:"arch=vivit|trajvit2|videovlm" range:"1,1024" doc:"video frames per clip"`
	Tubelet         int  `yaml:"tubelet" for:"arch=vivit" range:"1,64" doc:"vivit: frames per tubelet (spatial extent is patch_size); must divide frames"`
	Latents         int  `yaml:"latents" for:"arch=trajvit2" range:"1,1024" doc:"trajvit2: TrajTok latents K, the most trajectory tokens a video can have"`
	FeatStride      int  `yaml:"feat_stride" for:"arch=trajvit2" range:"1,32" doc:"trajvit2: backbone stride; masks live on an (image_size/feat_stride)^2 grid per frame"`
	FeatDim         int  `yaml:"feat_dim" for:"arch=trajvit2" range:"4,4096" doc:"trajvit2: backbone feature channels"`
	GroupDim        int  `yaml:"group_dim" for:"arch=trajvit2" range:"4,1024" doc:"trajvit2: dimension of the normalised grouping embeddings"`
	PerceiverLayers int  `yaml:"perceiver_layers" for:"arch=trajvit2" range:"1,16" doc:"trajvit2: depth of the grouping Perceiver"`
	EmbedDim        int  `yaml:"embed_dim" for:"task=videoclip" range:"4,4096" doc:"video-text shared embedding dimension"`
	ScoreAfter      int  `yaml:"score_after" for:"arch=videovlm" range:"0,64" doc:"videovlm: per-frame ViT blocks before grouping/scoring; the next block is video-wide with the score bias, then tokens are pruned"`
	Motion          bool `yaml:"motion" for:"arch=videovlm" doc:"videovlm: add a learned projection of each group token's change since the previous frame before the video-wide blocks"`
	Group           int  `yaml:"group" for:"arch=videovlm" range:"1,8" doc:"videovlm: side of the attention-pooled patch groups (3 = 3x3 patches per token)"`
}

// DataConfig describes where training and evaluation examples come from.
type DataConfig struct {
	Source string `yaml:"source" required:"true" enum:"synthetic|folder|lerobot" doc:"synthetic scenes, a folder of images + questions.jsonl, or (task vla) a LeRobot dataset (v3.0, v2.1 or reel's v2.0) in data.dir (a directory, or ORG/NAME[@REVISION] where LeRobot or the Hugging Face cache keeps it): any robot, its cameras, state and action read from meta/info.json"`
	// Folder source.
	Dir       string  `yaml:"dir" doc:"folder source: directory holding the images"`
	Questions string  `yaml:"questions" doc:"folder source: JSONL file with {image, question, answer[, kind]} per line"`
	Captions  string  `yaml:"captions" for:"task=videoclip" doc:"folder source, videoclip: JSONL file with {video, caption} per line (paths relative to it)"`
	FPS       float64 `yaml:"fps" range:"0.1,240" doc:"folder source, videoclip: frames per second sampled from each video"`
	SkipBad   bool    `yaml:"skip_bad" for:"task=videoclip" doc:"folder source, videoclip: skip (and count) videos that fail to decode instead of stopping"`
	// Synthetic source.
	CountingFraction float64  `yaml:"counting_fraction" for:"task=vqa" range:"0,1" doc:"share of counting questions in training batches"`
	MinObjects       int      `yaml:"min_objects" range:"0,50" doc:"fewest objects per scene"`
	MaxObjects       int      `yaml:"max_objects" range:"1,50" doc:"most objects per scene (training)"`
	Shapes           []string `yaml:"shapes" enum:"circle|square|triangle|diamond|cross" doc:"object shapes used"`
	Colors           []string `yaml:"colors" enum:"red|green|blue|yellow|purple|orange|white|cyan" doc:"object colours used"`
	MinSize          float64  `yaml:"min_size" range:"0.02,0.5" doc:"smallest object size, fraction of the image side"`
	MaxSize          float64  `yaml:"max_size" range:"0.02,0.5" doc:"largest object size, fraction of the image side"`
	Overlap          bool     `yaml:"overlap" doc:"allow objects to overlap"`
	Background       string   `yaml:"background" enum:"solid|gradient|noise|mixed" doc:"background style"`
	MaxSpeed         float64  `yaml:"max_speed" for:"task=videoclip|videoqa" range:"0,0.5" doc:"videoclip: fastest object speed, fraction of the side per frame"`
	AppearLeave      bool     `yaml:"appear_leave" for:"task=videoclip|videoqa" doc:"videoclip: objects may appear after the first frame or leave before the last"`
	MotionFrames     int      `yaml:"motion_frames" for:"task=videoqa" range:"1,1024" doc:"videoqa: frames during which the moving object moves; the rest of the clip is static"`
	QAKinds          []string `yaml:"qa_kinds" for:"task=videoqa" enum:"count|moved|direction|color_change|appeared" doc:"videoqa: question kinds"`
	// Simulated robot world (task vla).
	Families      []string `yaml:"families" for:"task=vla|exevrm" enum:"pick|place|push|pick_any|chain" doc:"vla: task families (pick_any has two equally valid targets; chain, opt-in, names its target through 1-3 spatial hops)"`
	Variation     float64  `yaml:"variation" for:"task=vla" range:"0,1" doc:"vla: procedural variation of backgrounds, lighting and camera pose (0 = none)"`
	Wrist         bool     `yaml:"wrist" for:"task=vla" doc:"vla: also render a wrist camera"`
	Bowls         int      `yaml:"bowls" for:"task=vla|exevrm" range:"1,2" doc:"vla: bowls (receptacles) per scene"`
	MaxSteps      int      `yaml:"max_steps" for:"task=vla|exevrm" range:"5,10000" doc:"vla: control steps before an episode is cut off"`
	ExpertNoise   float64  `yaml:"expert_noise" for:"task=vla|exevrm" range:"0,2" doc:"vla: std of the scripted expert's executed motion noise"`
	Normalization string   `yaml:"normalization" for:"task=vla" enum:"mean_std|min_max|quantiles" doc:"vla: how states and actions are normalised from the data's statistics: mean_std ((x-mean)/std), min_max ([min,max] to [-1,1]) or quantiles ([q01,q99] to [-1,1], openpi's choice for pi0); stored in the checkpoint"`
	Resize        string   `yaml:"resize" for:"task=vla|exevrm" enum:"pad|crop|stretch|pad_topleft" doc:"vla: how camera images of another size or aspect are fitted to model.image_size: pad (keep the aspect ratio, pad with black), crop (keep the aspect ratio, cut the centre), stretch, or pad_topleft (LeRobot's SmolVLA: keep the aspect ratio, torch bilinear without antialiasing, pad on the left and top)"`
	Episodes      int      `yaml:"episodes" for:"task=exevrm" range:"3,1000000" doc:"exevrm, synthetic: training episodes recorded from the simulator (a third each expert, failed and adversarial; see 'reel data gen-reward')"`
	PrefixShare   float64  `yaml:"prefix_share" for:"task=exevrm" range:"0,1" doc:"exevrm: share of training clips cut at a random prefix of the episode (positive only once the decision step is in it)"`
	PositiveShare float64  `yaml:"positive_share" for:"task=exevrm" range:"0,1" doc:"exevrm: share of each training batch drawn as positive clips (0 = as the pool falls: about a third positives; 0.5 balances the classes so that the answer prior alone gains nothing)"`
	SuccessTail   int      `yaml:"success_tail" for:"task=vla|exevrm" range:"0,1000" doc:"exevrm and gen-reward, synthetic: frames recorded after a solved episode's decision step, the gripper heading back to where it started with its grip unchanged (the task stays solved), so the decisive step is not the last frame; 0 ends a solved episode at its decision step"`
	// Image augmentation for policy training (task vla).
	Augment  AugmentConfig `yaml:"augment" for:"task=vla"`
	Prefetch int           `yaml:"prefetch" range:"0,256" doc:"batches generated ahead of compute"`
	Workers  int           `yaml:"workers" range:"0,64" doc:"data goroutines (0 = number of CPUs)"`
}

// AugmentConfig perturbs camera images on the fly in policy training, after they are fitted to
// model.image_size, and never in evaluation or serving (package augment: openpi's
// preprocess_observation, with torchvision's colour-jitter formulas). Every strength 0 turns the
// section off. Draws come from the recipe's seed and the micro-batch index: a resumed run
// reproduces them exactly.
type AugmentConfig struct {
	Crop       float64  `yaml:"crop" range:"0,0.5" doc:"fraction of each image side cut away by a random crop that is resized back (openpi: 0.05, a 95% crop; 0 = off)"`
	Rotate     float64  `yaml:"rotate" range:"0,45" doc:"random rotation, uniform in ±this many degrees (openpi: 5; 0 = off)"`
	Brightness float64  `yaml:"brightness" range:"0,1" doc:"colour jitter: pixels times a factor uniform in [1-s, 1+s] (openpi: 0.3; 0 = off)"`
	Contrast   float64  `yaml:"contrast" range:"0,1" doc:"colour jitter: distance from the mean grey level times a factor in [1-s, 1+s] (openpi: 0.4; 0 = off)"`
	Saturation float64  `yaml:"saturation" range:"0,1" doc:"colour jitter: distance from each pixel's grey level times a factor in [1-s, 1+s] (openpi: 0.5; 0 = off)"`
	Cameras    []string `yaml:"cameras" doc:"cameras augmented, by name (empty = every camera)"`
	ColorOnly  []string `yaml:"color_only" doc:"cameras whose name contains one of these get colour jitter only, no crop or rotation (openpi: wrist)"`
}

// TrainConfig holds the optimisation settings.
type TrainConfig struct {
	Steps       int     `yaml:"steps" range:"1," doc:"optimizer steps"`
	BatchSize   int     `yaml:"batch_size" range:"1,65536" doc:"examples per optimizer step (split over grad_accum micro-batches)"`
	GradAccum   int     `yaml:"grad_accum" range:"1,1024" doc:"micro-batches per optimizer step; must divide batch_size"`
	LR          float64 `yaml:"lr" range:"0,10" doc:"peak learning rate"`
	Schedule    string  `yaml:"schedule" enum:"constant|cosine" doc:"learning-rate schedule after warmup"`
	WarmupSteps int     `yaml:"warmup_steps" range:"0," doc:"linear warmup steps"`
	MinLRRatio  float64 `yaml:"min_lr_ratio" range:"0,1" doc:"final lr / peak lr for cosine"`
	WeightDecay float64 `yaml:"weight_decay" range:"0,1" doc:"AdamW decoupled weight decay"`
	Beta1       float64 `yaml:"beta1" range:"0,0.99999" doc:"AdamW beta1"`
	Beta2       float64 `yaml:"beta2" range:"0,0.999999" doc:"AdamW beta2"`
	GradClip    float64 `yaml:"grad_clip" range:"0," doc:"clip gradients to this global L2 norm (0 = off)"`
	Seed        int64   `yaml:"seed" doc:"fixes data order, initialisation and noise"`
	LogEvery    int     `yaml:"log_every" range:"1," doc:"plain log line every N steps when not on a terminal"`
	EvalEvery   int     `yaml:"eval_every" range:"0," doc:"evaluate every N steps (0 = only at the end)"`
	InitFrom    string  `yaml:"init_from" doc:"run or checkpoint directory to load weights from (fine-tuning)"`
	Precision   string  `yaml:"precision" enum:"f32|bf16" doc:"matmul/attention precision: f32, or bf16 mixed precision (parameters, optimizer state and reductions stay f32)"`
	Devices     int     `yaml:"devices" range:"0,4096" doc:"data-parallel devices: the batch is sharded over this many devices and gradients all-reduced (0 = all visible devices)"`
	// Parameter-efficient fine-tuning and memory.
	LoRA   LoRAConfig `yaml:"lora"`
	Freeze []string   `yaml:"freeze" doc:"variables not trained, by glob over their path ('vision_tower.*', 'policy/vision/*'; '.' and '/' both separate path elements)"`
	Remat  bool       `yaml:"remat" doc:"activation checkpointing: keep only each transformer block's input for the backward pass and recompute the rest (less memory, about one more forward pass)"`
	EMA    float64    `yaml:"ema" range:"0,0.999999" doc:"decay of an exponential moving average of the weights kept beside them (0 = off); 'reel eval --ema' and 'reel export --ema' use it"`
	// Reward-aligned behaviour cloning.
	SampleWeights string `yaml:"sample_weights" for:"task=vla" enum:"none|progress" doc:"vla: none, or progress: RA-BC (LeRobot's reward-aligned behaviour cloning) weighs each training sample by its progress increment over the action chunk, read from data.dir/topreward_progress.parquet ('reel reward progress --write'); the loss is Σ w·loss / Σ w (data.source lerobot)"`
	// Video-text contrastive training.
	Temperature      float64 `yaml:"temperature" for:"task=videoclip" range:"0.001,10" doc:"videoclip: InfoNCE temperature (initial value if learned)"`
	LearnTemperature bool    `yaml:"learn_temperature" for:"task=videoclip" doc:"videoclip: learn the InfoNCE temperature (CLIP's logit scale)"`
	DiceWeight       float64 `yaml:"dice_weight" for:"arch=trajvit2" range:"0,100" doc:"trajvit2: weight of the dice loss on Hungarian-matched masks"`
	FocalWeight      float64 `yaml:"focal_weight" for:"arch=trajvit2" range:"0,100" doc:"trajvit2: weight of the focal loss on Hungarian-matched masks"`
}

// LoRAConfig adds low-rank adapters to Linear layers (LoRA, arXiv:2106.09685); the adapted layers'
// own weights are frozen.
type LoRAConfig struct {
	Rank    int      `yaml:"rank" range:"0,1024" doc:"adapter rank (0 = no LoRA)"`
	Alpha   float64  `yaml:"alpha" range:"0,100000" doc:"scale numerator: the adapter adds (alpha/rank)·x·A·B (0 = 2·rank)"`
	Dropout float64  `yaml:"dropout" range:"0,0.99" doc:"dropout on the adapter's input in training"`
	Targets []string `yaml:"targets" doc:"Linear layers that get adapters, by the last element of their scope path (q_proj, v_proj, qkv, fc1, ...) or a glob over the path; empty = every attention and MLP projection"`
}

// EvalConfig describes evaluation.
type EvalConfig struct {
	Examples  int      `yaml:"examples" range:"1," doc:"examples per eval set"`
	BatchSize int      `yaml:"batch_size" range:"1,65536" doc:"eval batch size"`
	Sets      []string `yaml:"sets" enum:"counting|general|counting_ood|retrieval|videoqa|actions|reward" doc:"eval sets: vqa: counting (in-distribution), general QA, counting_ood (distribution shifts); videoclip: retrieval (held-out video-text pairs); videoqa: held-out video questions; vla: actions (held-out expert chunks, offline); exevrm: reward (held-out execution videos)"`
	Episodes  int      `yaml:"episodes" for:"task=vla|exevrm" range:"1," doc:"vla: closed-loop episodes 'reel eval' rolls out in held-out scenes; exevrm: held-out reward episodes (synthetic) evaluated"`
	Videos    int      `yaml:"videos" for:"task=vla" range:"0," doc:"vla: rollout videos 'reel eval' writes (first N episodes)"`
	Chunking  string   `yaml:"chunking" for:"task=vla" enum:"newest|average|ema|rtc" doc:"vla: how closed-loop evaluation executes the policy's chunks: newest = policy.execute actions of each (execute-k); average, ema = the policy re-queried every policy.execute actions and the actions left blended with the next chunk's (the vla-eval harness's action_ensemble, as 'reel serve --chunking'); rtc = real-time chunking, the next chunk of a flow policy guided to continue the actions left (Black et al. 2025)"`
	EMAWeight float64  `yaml:"ema_weight" for:"task=vla" range:"0.001,1" doc:"vla, eval.chunking ema: weight of the new chunk's action (the harness's ema_alpha)"`
	// InferenceDelay and the RTC settings below are policy.Chunking's Delay, RTCHorizon,
	// MaxGuidance and Schedule.
	InferenceDelay int     `yaml:"inference_delay" for:"task=vla" range:"0,256" doc:"vla: simulated inference delay d in control steps: the robot executes d more actions of what is buffered while the next chunk is computed (at most policy.execute); with chunking newest this is naive asynchronous execution"`
	RTCHorizon     int     `yaml:"rtc_horizon" for:"task=vla" range:"0,256" doc:"vla, eval.chunking rtc: actions left of the last chunk the next one is guided toward (LeRobot's execution_horizon); 0 = all of them"`
	MaxGuidance    float64 `yaml:"max_guidance" for:"task=vla" range:"0.001,1000" doc:"vla, eval.chunking rtc: clip beta of the guidance weight (the paper's evaluation uses 5)"`
	RTCSchedule    string  `yaml:"rtc_schedule" for:"task=vla" enum:"exp|linear|ones|zeros" doc:"vla, eval.chunking rtc: weights over the overlap after the d frozen actions: exp (the paper's), linear, ones, zeros (hard masking)"`
	Depths         []int   `yaml:"depths" for:"arch=rdvla" doc:"rdvla: fixed depths 'reel eval' sweeps (besides adaptive stopping)"`
	Seed           int64   `yaml:"seed" doc:"seed of the (fixed) eval sets"`
	Dir            string  `yaml:"dir" for:"task=exevrm" doc:"exevrm: a held-out LeRobot reward dataset (episode metadata success, optionally decision_step and kind) to evaluate on instead of eval.episodes held-out simulated episodes"`
	OODMax         int     `yaml:"ood_max_objects" for:"task=vqa" range:"1,50" doc:"most objects in the counting_ood set"`
}

// CheckpointConfig describes checkpointing.
type CheckpointConfig struct {
	Every int `yaml:"every" range:"0," doc:"save every N steps (0 = only at the end)"`
	Keep  int `yaml:"keep" range:"1,1000" doc:"checkpoints kept"`
}
