// Package hub finds Hugging Face repositories that are already on this machine: a model named
// ORG/NAME[@REVISION] in the Hugging Face Hub cache, a LeRobot dataset ORG/NAME[@REVISION] where
// LeRobot keeps them. It never downloads: a repository that is not on disk is an error of one line
// naming every place looked and the command that would fetch it.
//
// The cache layout and environment variables are huggingface_hub's (huggingface/huggingface_hub,
// src/huggingface_hub/constants.py and file_download.py try_to_load_from_cache):
//
//	HF_HOME       = $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface
//	HF_HUB_CACHE  = $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else HF_HOME/hub
//	HF_HUB_CACHE/models--ORG--NAME/refs/REVISION   holds a commit hash SHA (REVISION default main)
//	HF_HUB_CACHE/models--ORG--NAME/snapshots/SHA/  the files (symlinks into ../../blobs)
//
// A REVISION with no refs file names a snapshot directly (a commit hash). LeRobot's dataset
// locations are LeRobot's (huggingface/lerobot, src/lerobot/utils/constants.py and
// src/lerobot/datasets/dataset_metadata.py):
//
//	HF_LEROBOT_HOME = $HF_LEROBOT_HOME, else HF_HOME/lerobot
//	HF_LEROBOT_HOME/ORG/NAME                        a dataset recorded or downloaded to its root
//	HF_LEROBOT_HOME/hub/datasets--ORG--NAME/...     LeRobot's own snapshot cache (revision v3.0)
//	HF_HUB_CACHE/datasets--ORG--NAME/...            'hf download ORG/NAME --repo-type dataset'
package hub

import (
	"fmt"
	"github.com/reelml/reel/internal/safeio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Env reads the environment (os.Getenv in normal use; tests give a map).
type Env func(key string) string

// Places are the directories repositories are looked up in.
type Places struct {
	HubCache    string // Hugging Face Hub cache (models--*, datasets--*)
	LeRobotHome string // LeRobot's home (ORG/NAME datasets and its own hub/ cache)
}

// Locate computes the places from env (nil: the process environment), as huggingface_hub and
// LeRobot do.
func Locate(env Env) Places {
	if env == nil {
		env = os.Getenv
	}
	home := env("HF_HOME")
	if home == "" {
		cache := env("XDG_CACHE_HOME")
		if cache == "" {
			cache = filepath.Join(userHome(env), ".cache")
		}
		home = filepath.Join(cache, "huggingface")
	}
	home = expand(home, env)
	hubCache := env("HF_HUB_CACHE")
	if hubCache == "" {
		hubCache = env("HUGGINGFACE_HUB_CACHE")
	}
	if hubCache == "" {
		hubCache = filepath.Join(home, "hub")
	}
	lr := env("HF_LEROBOT_HOME")
	if lr == "" {
		lr = filepath.Join(home, "lerobot")
	}
	return Places{HubCache: expand(hubCache, env), LeRobotHome: expand(lr, env)}
}

func userHome(env Env) string {
	if h := env("HOME"); h != "" {
		return h
	}
	h, _ := os.UserHomeDir()
	return h
}

// expand resolves a leading ~ (Python's expanduser) and $VARS (expandvars).
func expand(p string, env Env) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = userHome(env) + p[1:]
	}
	return os.Expand(p, func(k string) string { return env(k) })
}

// Ref is a repository id with an optional revision: ORG/NAME[@REVISION].
type Ref struct {
	Org, Name, Revision string
}

func (r Ref) ID() string { return r.Org + "/" + r.Name }

func (r Ref) String() string {
	if r.Revision == "" {
		return r.ID()
	}
	return r.ID() + "@" + r.Revision
}

// Hub repository names: letters, digits, '-', '_', '.', not starting with '.' or '-'
// (huggingface_hub's validate_repo_id); a revision is a branch, tag or commit (refs/pr/N too).
var refRE = regexp.MustCompile(`^([A-Za-z0-9_][A-Za-z0-9._-]*)/([A-Za-z0-9_][A-Za-z0-9._-]*)(?:@([A-Za-z0-9_][A-Za-z0-9._/-]*))?$`)

// ParseRef parses ORG/NAME[@REVISION]; ok is false for anything else (an absolute or ./ path, a
// path of three elements, ".." in it).
func ParseRef(s string) (Ref, bool) {
	m := refRE.FindStringSubmatch(s)
	if m == nil || strings.Contains(s, "..") || strings.Contains(m[3], "//") || strings.HasSuffix(m[3], "/") {
		return Ref{}, false
	}
	return Ref{Org: m[1], Name: m[2], Revision: m[3]}, true
}

// NotFoundError says that a repository is neither a local path nor in any cache.
type NotFoundError struct {
	Ref     Ref
	Kind    string   // "model" or "dataset"
	Looked  []string // every place looked, in order
	Cached  []string // revisions that are cached, when the repository is but not the one asked for
	Command string   // what would fetch it ("hf download ORG/NAME ...")
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s is not on this machine (looked in %s)", e.Kind, e.Ref, strings.Join(e.Looked, ", "))
	if len(e.Cached) > 0 {
		fmt.Fprintf(&b, "; cached revisions: %s", strings.Join(e.Cached, ", "))
	}
	fmt.Fprintf(&b, "; reel never downloads: fetch it with '%s'", e.Command)
	if args, ok := strings.CutPrefix(e.Command, "hf download "); ok {
		fmt.Fprintf(&b, " (or 'huggingface-cli download %s')", args)
	}
	return b.String()
}

// Model resolves a model directory: ref itself when it exists on disk, else ORG/NAME[@REVISION]
// in the Hub cache. A ref that is not a repository id is returned unchanged (its reader reports
// what is wrong with it); "" and "random" are returned unchanged.
func Model(ref string) (string, error) { return Locate(nil).Model(ref) }

// Dataset resolves a LeRobot dataset directory: ref itself when it exists on disk, else
// ORG/NAME[@REVISION] where LeRobot keeps datasets (see the package comment). A ref that is not a
// repository id is returned unchanged.
func Dataset(ref string) (string, error) { return Locate(nil).Dataset(ref) }

// Model is the package function Model on these places.
func (p Places) Model(ref string) (string, error) {
	if ref == "" || ref == "random" || exists(ref) {
		return ref, nil
	}
	r, ok := ParseRef(ref)
	if !ok {
		return ref, nil
	}
	rev := r.Revision
	if rev == "" {
		rev = "main"
	}
	e := &NotFoundError{Ref: r, Kind: "model", Looked: []string{local(ref)}, Command: "hf download " + r.ID()}
	if r.Revision != "" {
		e.Command += " --revision " + r.Revision
	}
	repo := filepath.Join(p.HubCache, "models--"+r.Org+"--"+r.Name)
	dir, looked := snapshot(repo, rev)
	if dir != "" {
		return dir, nil
	}
	e.Looked = append(e.Looked, looked)
	e.Cached = revisions(repo)
	return "", e
}

// lerobotRevisions are the revisions tried for a dataset named without one: the codebase
// versions LeRobot itself asks the Hub for (dataset_metadata.py CODEBASE_VERSION, and the v2.1
// datasets reel also reads), then main, where 'hf download' puts them.
var lerobotRevisions = []string{"v3.0", "v2.1", "main"}

// Dataset is the package function Dataset on these places.
func (p Places) Dataset(ref string) (string, error) {
	if ref == "" || exists(ref) {
		return ref, nil
	}
	r, ok := ParseRef(ref)
	if !ok {
		return ref, nil
	}
	e := &NotFoundError{Ref: r, Kind: "dataset", Looked: []string{local(ref)}, Command: "hf download " + r.ID() + " --repo-type dataset"}
	revs := lerobotRevisions
	if r.Revision != "" {
		revs = []string{r.Revision}
		e.Command += " --revision " + r.Revision
	} else {
		root := filepath.Join(p.LeRobotHome, r.Org, r.Name)
		if exists(filepath.Join(root, "meta", "info.json")) {
			return root, nil
		}
		e.Looked = append(e.Looked, root)
	}
	for _, cache := range []string{filepath.Join(p.LeRobotHome, "hub"), p.HubCache} {
		repo := filepath.Join(cache, "datasets--"+r.Org+"--"+r.Name)
		var looked []string
		for _, rev := range revs {
			dir, l := snapshot(repo, rev)
			if dir != "" {
				return dir, nil
			}
			looked = append(looked, l)
		}
		if !exists(repo) {
			looked = []string{repo}
		}
		e.Looked = append(e.Looked, looked...)
		e.Cached = append(e.Cached, revisions(repo)...)
	}
	return "", e
}

// snapshot returns repo's snapshot for rev (refs/REV's commit, else snapshots/REV) and, when
// there is none, the place looked.
func snapshot(repo, rev string) (dir, looked string) {
	refFile := filepath.Join(repo, "refs", filepath.FromSlash(rev))
	if b, err := safeio.ReadFile(refFile, 4<<10); err == nil {
		sha := strings.TrimSpace(string(b))
		d := filepath.Join(repo, "snapshots", sha)
		if sha != "" && !strings.ContainsAny(sha, `/\`) && isDir(d) {
			return d, ""
		}
		return "", d + " (named by " + refFile + ")"
	}
	if d := filepath.Join(repo, "snapshots", rev); !strings.Contains(rev, "/") && isDir(d) {
		return d, ""
	}
	return "", refFile
}

// revisions lists the refs and snapshots cached for repo ("main", "v3.0", "refs/pr/1" as
// "pr/1", snapshot hashes shortened to 12 characters).
func revisions(repo string) []string {
	var out []string
	refs := filepath.Join(repo, "refs")
	_ = filepath.Walk(refs, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			if rel, err := filepath.Rel(refs, p); err == nil {
				out = append(out, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	snaps, _ := os.ReadDir(filepath.Join(repo, "snapshots"))
	for _, s := range snaps {
		n := s.Name()
		if len(n) > 12 {
			n = n[:12]
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// local names a relative ref as the absolute path it was looked up as.
func local(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
