package serve

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// The settings /config reads and changes, as the harness's model servers name them
// (vla-evaluation-harness src/vla_eval/model_servers/serve.py, _CONFIG_WHITELIST).
const (
	configMaxBatch = "max_batch_size" // int ≥ 1
	configMaxWait  = "max_wait_time"  // seconds ≥ 0
)

// MaxConfigWait bounds the max_wait_time a client may set through /config. The setting is the
// server's (as in the harness: one batching window for every connection), so any client's value
// delays every other client's next observation by up to that much: a second is more than a
// harness needs (its model servers use milliseconds) and bounds what one client can do to the
// others. A change applies at once, to the batch already waiting too.
const MaxConfigWait = time.Second

// maxConfigBody bounds a POST /config body.
const maxConfigBody = 64 << 10

// config serves /config as the harness does: GET /config returns {"applied": {}, "config":
// {"max_batch_size": n, "max_wait_time": seconds}}; GET /config?max_batch_size=8 (or a POST with
// the same query, a form or a JSON object body) sets the named settings and returns those applied
// with the current values. Unknown keys and bad values are listed under "errors"; when nothing
// could be applied the status is 422.
func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	values := r.URL.Query()
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, maxConfigBody+1))
		if err != nil || len(body) > maxConfigBody {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []string{fmt.Sprintf("request body unreadable or over %d bytes", maxConfigBody)}})
			return
		}
		if err := mergeConfigBody(values, r.Header.Get("Content-Type"), body); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": []string{err.Error()}})
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"errors": []string{"/config takes GET or POST"}})
		return
	}
	applied := map[string]any{}
	var errs []string
	for _, key := range slices.Sorted(maps.Keys(values)) {
		v := values[key][len(values[key])-1] // the last value wins, as in the harness
		switch key {
		case configMaxBatch:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Sprintf("bad value for %s: %q is not an integer ≥ 1", key, v))
				continue
			}
			s.SetBatching(n, -1)
			applied[key] = n
		case configMaxWait:
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 0) || math.IsInf(f, 0) || f > MaxConfigWait.Seconds() {
				errs = append(errs, fmt.Sprintf("bad value for %s: %q is not a number of seconds in [0, %g]", key, v, MaxConfigWait.Seconds()))
				continue
			}
			s.SetBatching(0, time.Duration(f*float64(time.Second)))
			applied[key] = f
		default:
			errs = append(errs, "unknown key: "+key)
		}
	}
	if len(errs) > 0 && len(applied) == 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": errs})
		return
	}
	n, window := s.Batching()
	body := map[string]any{"applied": applied, "config": map[string]any{configMaxBatch: n, configMaxWait: window.Seconds()}}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	if len(applied) > 0 {
		s.cfg.Logf("serve: /config applied %v", applied)
	}
	writeJSON(w, http.StatusOK, body)
}

// mergeConfigBody adds the settings of a POST body (a JSON object or a form) to values.
func mergeConfigBody(values url.Values, contentType string, body []byte) error {
	if len(body) == 0 {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/json" || (mt == "" && body[0] == '{') {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return fmt.Errorf("request body is not a JSON object: %w", err)
		}
		for k, v := range m {
			switch x := v.(type) {
			case string:
				values.Set(k, x)
			case float64:
				values.Set(k, strconv.FormatFloat(x, 'g', -1, 64))
			default:
				values.Set(k, fmt.Sprint(v))
			}
		}
		return nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return fmt.Errorf("request body is not a form: %w", err)
	}
	for k, vs := range form {
		for _, v := range vs {
			values.Add(k, v)
		}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
