package recipes

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Validate checks a decoded recipe: range, enum and required tags, then cross-field rules.
// The error is a single line; several problems are joined with "; ".
func Validate(r *Recipe) error {
	if r == nil {
		return errors.New("no recipe")
	}
	return validate(r, nil, nil)
}

// validate is Validate with the origin ("FILE:LINE" or "--set ...") of each dotted path, used
// to prefix messages, and explicit, which reports whether the user set a path (in the recipe file
// named or with --set, rather than through a base recipe or the defaults): such a setting must be
// one the recipe's task and model.arch use.
func validate(r *Recipe, pos map[string]string, explicit func(path string) bool) error {
	if r.Pruning.Method == "exevrm" { // the former name of spatiotemporal (recipes, checkpoints)
		r.Pruning.Method = "spatiotemporal"
	}
	var errs []string
	add := func(p, msg string) {
		errs = append(errs, fmt.Sprintf("%s%s: %s", prefix(pos[p]), p, msg))
	}
	checkFields(reflect.ValueOf(r).Elem(), "", add)
	if len(errs) == 0 {
		checkCross(r, add)
	}
	if len(errs) == 0 && explicit != nil {
		def := Defaults()
		walkUnused(r, reflect.ValueOf(r).Elem(), reflect.ValueOf(&def).Elem(), "", nil, func(fp, kind, got, values string, v, d reflect.Value) {
			if explicit(fp) && !reflect.DeepEqual(v.Interface(), d.Interface()) {
				add(fp, fmt.Sprintf("is not used by %s %s (it applies to %s %s); remove it",
					map[string]string{"arch": "model.arch", "task": "task"}[kind], got, kind, strings.ReplaceAll(values, "|", ", ")))
			}
		})
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}

func fmtNum(v reflect.Value) (float64, string) {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(v.Int()), strconv.FormatInt(v.Int(), 10)
	case reflect.Float32, reflect.Float64:
		return v.Float(), strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return math.NaN(), ""
}

func checkFields(v reflect.Value, p string, add func(p, msg string)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := yamlKey(f)
		if key == "" {
			continue
		}
		fp := joinPath(p, key)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			checkFields(fv, fp, add)
			continue
		}
		if f.Tag.Get("required") == "true" && fv.IsZero() {
			add(fp, "is required")
			continue
		}
		if enum := f.Tag.Get("enum"); enum != "" {
			allowed := strings.Split(enum, "|")
			check := func(ep, s string) {
				for _, a := range allowed {
					if s == a {
						return
					}
				}
				msg := fmt.Sprintf("%q is not one of %s", s, strings.Join(allowed, ", "))
				if sg := suggest(s, allowed); sg != "" && s != "" && len(allowed) > 1 {
					msg += fmt.Sprintf(" (did you mean %q?)", sg)
				}
				add(ep, msg)
			}
			switch fv.Kind() {
			case reflect.String:
				check(fp, fv.String())
			case reflect.Slice:
				for j := 0; j < fv.Len(); j++ {
					check(fmt.Sprintf("%s[%d]", fp, j), fv.Index(j).String())
				}
			}
		}
		if rng := f.Tag.Get("range"); rng != "" {
			x, s := fmtNum(fv)
			if s == "" {
				continue
			}
			lo, hi, _ := strings.Cut(rng, ",")
			lo, hi = strings.TrimSpace(lo), strings.TrimSpace(hi)
			bad := false
			if lo != "" {
				if b, err := strconv.ParseFloat(lo, 64); err == nil && x < b {
					bad = true
				}
			}
			if hi != "" {
				if b, err := strconv.ParseFloat(hi, 64); err == nil && x > b {
					bad = true
				}
			}
			if bad {
				switch {
				case hi == "":
					add(fp, fmt.Sprintf("%s is out of range (must be >= %s)", s, lo))
				case lo == "":
					add(fp, fmt.Sprintf("%s is out of range (must be <= %s)", s, hi))
				default:
					add(fp, fmt.Sprintf("%s is out of range [%s, %s]", s, lo, hi))
				}
			}
		}
	}
}

func checkCross(r *Recipe, add func(p, msg string)) {
	m, d, t, e := &r.Model, &r.Data, &r.Train, &r.Eval
	if m.ImageSize%m.PatchSize != 0 {
		add("model.patch_size", fmt.Sprintf("%d does not divide model.image_size (%d)", m.PatchSize, m.ImageSize))
	}
	if m.ConvStem && m.PatchSize&(m.PatchSize-1) != 0 {
		add("model.conv_stem", fmt.Sprintf("needs a power-of-two model.patch_size (got %d)", m.PatchSize))
	}
	if m.VisionDim%m.VisionHeads != 0 {
		add("model.vision_heads", fmt.Sprintf("%d does not divide model.vision_dim (%d)", m.VisionHeads, m.VisionDim))
	}
	if m.TextDim%m.TextHeads != 0 {
		add("model.text_heads", fmt.Sprintf("%d does not divide model.text_dim (%d)", m.TextHeads, m.TextDim))
	}
	if d.MinObjects > d.MaxObjects {
		add("data.min_objects", fmt.Sprintf("%d is greater than data.max_objects (%d)", d.MinObjects, d.MaxObjects))
	}
	if d.MinSize > d.MaxSize {
		add("data.min_size", fmt.Sprintf("%g is greater than data.max_size (%g)", d.MinSize, d.MaxSize))
	}
	if t.BatchSize%t.GradAccum != 0 {
		add("train.grad_accum", fmt.Sprintf("%d does not divide train.batch_size (%d)", t.GradAccum, t.BatchSize))
	}
	video := r.Task == "videoclip"
	archs := map[string]string{"vqa": "vlm", "videoclip": "trajvit2|vivit", "videoqa": "videovlm", "vla": "policy|rdvla|pi0|pi05|smolvla", "exevrm": "videovlm"}
	setsOf := map[string]string{"vqa": "counting|general|counting_ood", "videoclip": "retrieval", "videoqa": "videoqa", "vla": "actions", "exevrm": "reward"}
	if !strings.Contains("|"+archs[r.Task]+"|", "|"+m.Arch+"|") {
		add("model.arch", fmt.Sprintf("%s does not fit task %s (want %s)", m.Arch, r.Task, strings.ReplaceAll(archs[r.Task], "|", " or ")))
	}
	for _, set := range e.Sets {
		if !strings.Contains("|"+setsOf[r.Task]+"|", "|"+set+"|") {
			add("eval.sets", fmt.Sprintf("%q is not an eval set of task %s (vqa: counting, general, counting_ood; videoclip: retrieval; videoqa: videoqa; vla: actions; exevrm: reward)", set, r.Task))
		}
	}
	if r.Task == "videoqa" || r.Task == "exevrm" {
		// With model.pretrained the tower's patch grid and depth are checked by the task.
		if m.Pretrained == "" && (m.ImageSize%m.PatchSize != 0 || (m.ImageSize/m.PatchSize)%m.Group != 0) {
			add("model.group", fmt.Sprintf("%d does not divide the patch grid side %d (image_size/patch_size)", m.Group, m.ImageSize/m.PatchSize))
		}
		if m.Pretrained == "" && m.ScoreAfter >= m.VisionLayers {
			add("model.score_after", fmt.Sprintf("%d must be less than model.vision_layers (%d): the block after scoring is part of the encoder", m.ScoreAfter, m.VisionLayers))
		}
		if r.Pruning.Method != "none" && m.Frames < 2 {
			add("model.frames", "pruning needs at least 2 frames")
		}
		if r.Task == "videoqa" && d.MotionFrames >= m.Frames {
			add("data.motion_frames", fmt.Sprintf("%d must be less than model.frames (%d): the rest of the clip is static", d.MotionFrames, m.Frames))
		}
	}
	if r.Task == "vla" {
		pc := &r.Policy
		if pc.Execute > pc.Horizon {
			add("policy.execute", fmt.Sprintf("%d is more than policy.horizon (%d)", pc.Execute, pc.Horizon))
		}
		if dl := r.Eval.InferenceDelay; dl > 0 && (dl > pc.Execute || dl >= pc.Horizon) {
			add("eval.inference_delay", fmt.Sprintf("%d must be at most policy.execute (%d) and less than policy.horizon (%d): the actions executed while the next chunk is computed come from the last one", dl, pc.Execute, pc.Horizon))
		}
		if uses(r, "policy.expert_heads") && pc.ExpertDim%pc.ExpertHeads != 0 {
			add("policy.expert_heads", fmt.Sprintf("%d does not divide policy.expert_dim (%d)", pc.ExpertHeads, pc.ExpertDim))
		}
		if d.Source == "lerobot" && d.Dir == "" {
			add("data.dir", "is required when data.source is lerobot (a dataset written by 'reel data gen-sim')")
		}
		if d.Source == "folder" {
			add("data.source", "folder is not a vla source (use synthetic or lerobot)")
		}
		for i, dep := range e.Depths {
			if dep < 1 || dep > 256 {
				add(fmt.Sprintf("eval.depths[%d]", i), fmt.Sprintf("%d is out of range [1, 256]", dep))
			}
		}
		if d.Source == "synthetic" && len(d.Families) == 0 {
			add("data.families", "must not be empty")
		}
	} else if r.Task == "exevrm" {
		if d.Source == "lerobot" && d.Dir == "" {
			add("data.dir", "is required when data.source is lerobot (a dataset written by 'reel data gen-reward')")
		}
		if d.Source == "folder" {
			add("data.source", "folder is not an exevrm source (use synthetic or lerobot)")
		}
	} else if d.Source == "lerobot" {
		add("data.source", "lerobot datasets are for tasks vla and exevrm")
	}
	if video {
		if m.Arch == "vivit" && m.Frames%m.Tubelet != 0 {
			add("model.tubelet", fmt.Sprintf("%d does not divide model.frames (%d)", m.Tubelet, m.Frames))
		}
		if m.Arch == "trajvit2" && m.ImageSize%m.FeatStride != 0 {
			add("model.feat_stride", fmt.Sprintf("%d does not divide model.image_size (%d)", m.FeatStride, m.ImageSize))
		}
		if d.Source == "synthetic" && d.MaxObjects > 8 {
			add("data.max_objects", fmt.Sprintf("%d is above 8, the most objects a synthetic video has", d.MaxObjects))
		}
	} else if r.Task == "vqa" && e.OODMax < d.MaxObjects {
		add("eval.ood_max_objects", fmt.Sprintf("%d is less than data.max_objects (%d)", e.OODMax, d.MaxObjects))
	}
	switch d.Source {
	case "folder":
		if r.Task == "vla" {
			break
		}
		if video {
			if d.Captions == "" {
				add("data.captions", "is required when data.source is folder (task videoclip)")
			}
			break
		}
		if d.Dir == "" {
			add("data.dir", "is required when data.source is folder")
		}
		if d.Questions == "" {
			add("data.questions", "is required when data.source is folder")
		}
	case "synthetic":
		if len(d.Shapes) == 0 {
			add("data.shapes", "must not be empty")
		}
		if len(d.Colors) == 0 {
			add("data.colors", "must not be empty")
		}
	}
}

// walkUnused calls f for every field (v, with its default d) that the recipe's task and
// model.arch ignore. A field (or a section) tagged for:"arch=a|b" or for:"task=x|y" applies only
// to those; tags of enclosing sections must hold too. kind, got and values describe the first
// condition that fails.
func walkUnused(r *Recipe, v, d reflect.Value, p string, outer []string, f func(fp, kind, got, values string, v, d reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key := yamlKey(sf)
		if key == "" {
			continue
		}
		fp := joinPath(p, key)
		conds := outer
		if c := sf.Tag.Get("for"); c != "" {
			conds = append(append([]string(nil), outer...), c)
		}
		if v.Field(i).Kind() == reflect.Struct {
			walkUnused(r, v.Field(i), d.Field(i), fp, conds, f)
			continue
		}
		for _, c := range conds {
			kind, values, _ := strings.Cut(c, "=")
			got := r.Task
			if kind == "arch" {
				got = r.Model.Arch
			}
			if !slices.Contains(strings.Split(values, "|"), got) {
				f(fp, kind, got, values, v.Field(i), d.Field(i))
				break
			}
		}
	}
}

// uses reports whether the recipe's task and model.arch read the field at path (its for: tags and
// its sections').
func uses(r *Recipe, path string) bool {
	used := true
	def := Defaults()
	walkUnused(r, reflect.ValueOf(r).Elem(), reflect.ValueOf(&def).Elem(), "", nil, func(fp, _, _, _ string, _, _ reflect.Value) {
		used = used && fp != path
	})
	return used
}

// resetUnused sets every field the recipe's task and model.arch ignore back to its default, so
// that a resolved recipe (`reel recipes show`, a run's recipe.yaml) holds only settings that act.
func resetUnused(r *Recipe) {
	def := Defaults()
	walkUnused(r, reflect.ValueOf(r).Elem(), reflect.ValueOf(&def).Elem(), "", nil, func(_, _, _, _ string, v, d reflect.Value) {
		v.Set(d)
	})
}
