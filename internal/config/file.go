package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

const (
	// maxFileSize bounds the config file; a real one is a few hundred bytes.
	maxFileSize = 1 << 20
	// maxFileErrors bounds the messages about one file: past a screenful,
	// the file is probably not a greenlight config at all.
	maxFileErrors = 20
)

// fileValues are the raw values the config file contributes to one run.
type fileValues struct {
	// path is the file that was read, or "" when there was none.
	path string
	// envName is the environments.<name> section that applies, or "".
	envName string
	// defaults and env map input names to raw values.
	defaults, env map[string]string
}

// lookup returns the file's value for name, environment section first, and
// where it came from for error messages.
func (f fileValues) lookup(name string) (value, where string, ok bool) {
	if v, ok := f.env[name]; ok {
		return v, fmt.Sprintf(" (set in %s under environments.%s)", f.path, f.envName), true
	}
	if v, ok := f.defaults[name]; ok {
		return v, fmt.Sprintf(" (set in %s under defaults)", f.path), true
	}
	return "", "", false
}

// readConfigFile reads the file named by the config input, or the default
// path when that exists, and returns the values for env.
func readConfigFile(path string, readFile func(string) ([]byte, error), env string, ins []Input) (fileValues, []*InputError) {
	explicit := path != ""
	if !explicit {
		path = DefaultConfigPath
	}
	bad := func(problem string) (fileValues, []*InputError) {
		return fileValues{}, []*InputError{{Input: "config", Problem: problem, Accepted: "a path to a YAML file"}}
	}
	if readFile == nil {
		if explicit {
			return bad(fmt.Sprintf("file %s cannot be read: no file access was given", show(path)))
		}
		return fileValues{}, nil
	}
	data, err := readFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		return fileValues{}, nil
	case errors.Is(err, fs.ErrNotExist):
		return bad(fmt.Sprintf("file %s does not exist", show(path)))
	case err != nil:
		return bad(fmt.Sprintf("read config file %s: %v", show(path), err))
	}
	return parseConfigFile(data, path, env, ins)
}

// parseConfigFile turns the file's YAML into raw values for env. It checks
// every section's keys, not only env's, so a typo in the production section
// shows up on the first staging run.
func parseConfigFile(data []byte, path, env string, ins []Input) (fileValues, []*InputError) {
	fileErr := func(problem, accepted string) *InputError {
		return &InputError{Input: "config", Problem: problem, Accepted: accepted}
	}
	const shape = "a YAML mapping with the keys defaults and environments"
	if len(data) > maxFileSize {
		return fileValues{}, []*InputError{fileErr(fmt.Sprintf("file %s is larger than %d bytes", path, maxFileSize), shape)}
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		// The parser's message may span many lines (one per duplicate
		// key); an error is one short line.
		msg := strings.Join(strings.Fields(err.Error()), " ")
		if strings.Contains(msg, "map key") {
			// The parser's message for a non-text key dumps the whole entry,
			// which may hold a secret pasted into the file by mistake.
			msg = "a mapping key is null, a list or a mapping; keys must be plain text"
		}
		if r := []rune(msg); len(r) > 300 {
			msg = string(r[:300]) + "…"
		}
		return fileValues{}, []*InputError{fileErr(fmt.Sprintf("file %s is not valid YAML: %s", path, msg), shape)}
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber() // keeps "0.10" and big integers as written
	if err := dec.Decode(&doc); err != nil {
		return fileValues{}, []*InputError{fileErr(fmt.Sprintf("file %s is not valid YAML: %v", path, err), shape)}
	}
	f := fileValues{path: path}
	if doc == nil {
		return f, nil
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return fileValues{}, []*InputError{fileErr(fmt.Sprintf("file %s is not a mapping", path), shape)}
	}

	var errs []*InputError
	for _, k := range sortedKeys(top) {
		if k != "defaults" && k != "environments" {
			errs = append(errs, fileErr(fmt.Sprintf("unknown key %s at the top of %s", show(k), path), shape))
		}
	}

	byName := make(map[string]Input, len(ins))
	for _, in := range ins {
		byName[in.Name] = in
	}

	switch d := top["defaults"].(type) {
	case nil:
	case map[string]any:
		var es []*InputError
		f.defaults, es = fileSection(d, path, "defaults", byName, ins)
		errs = append(errs, es...)
	default:
		errs = append(errs, fileErr(fmt.Sprintf("defaults in %s is not a mapping", path), "defaults: followed by input names and values"))
	}

	envs, hasEnvs := top["environments"]
	switch e := envs.(type) {
	case nil:
		hasEnvs = false
	case map[string]any:
		names := sortedKeys(e)
		for _, name := range names {
			where := "environments." + name
			switch sec := e[name].(type) {
			case nil: // an environment listed without overrides
			case map[string]any:
				values, es := fileSection(sec, path, where, byName, ins)
				errs = append(errs, es...)
				if name == env {
					f.env = values
				}
			default:
				errs = append(errs, fileErr(fmt.Sprintf("%s in %s is not a mapping", where, path), "environments: followed by environment names, each with input names and values"))
			}
		}
		if env != "" && !slices.Contains(names, env) {
			errs = append(errs, &InputError{
				Input:    "environment",
				Problem:  fmt.Sprintf("%s is not in the environments of %s", show(env), path),
				Accepted: "one of the environments in " + path + ": " + strings.Join(names, ", "),
			})
		}
	default:
		errs = append(errs, fileErr(fmt.Sprintf("environments in %s is not a mapping", path), "environments: followed by environment names, each with input names and values"))
	}
	if hasEnvs {
		f.envName = env
	}
	if len(errs) > maxFileErrors {
		more := len(errs) - maxFileErrors
		errs = append(errs[:maxFileErrors], fileErr(fmt.Sprintf("%d more problems in %s are not shown", more, path), shape))
	}
	return f, errs
}

// fileSection checks one section's keys and turns its YAML values into the
// same raw strings an input would carry.
func fileSection(sec map[string]any, path, where string, byName map[string]Input, ins []Input) (map[string]string, []*InputError) {
	out := make(map[string]string, len(sec))
	var errs []*InputError
	for _, k := range sortedKeys(sec) {
		in, known := byName[k]
		switch {
		case !known:
			problem := fmt.Sprintf("unknown key %s in %s under %s", show(k), path, where)
			if s := closest(k, ins); s != "" {
				problem += fmt.Sprintf(" (did you mean %q?)", s)
			}
			errs = append(errs, &InputError{Input: "config", Problem: problem, Accepted: "one of these keys: " + fileKeys(ins)})
			continue
		case in.Kind == KindSecret:
			// The value is not looked at, let alone shown.
			errs = append(errs, &InputError{
				Input:    "config",
				Problem:  fmt.Sprintf("key %q in %s under %s is a secret and must not be in a file in the repository", k, path, where),
				Accepted: fmt.Sprintf("remove it from the file and pass %s as an input from a GitHub secret", k),
			})
			continue
		case !in.InFile:
			errs = append(errs, &InputError{
				Input:    "config",
				Problem:  fmt.Sprintf("key %q in %s under %s cannot be set in the file", k, path, where),
				Accepted: fmt.Sprintf("pass %s as an input or flag; in the file: %s", k, fileKeys(ins)),
			})
			continue
		}
		v, problem := fileValue(sec[k], in.Kind)
		if problem != "" {
			errs = append(errs, &InputError{Input: k, Problem: fmt.Sprintf("%s in %s under %s", problem, path, where), Accepted: in.Accepted})
			continue
		}
		if v != "" {
			out[k] = v
		}
	}
	return out, errs
}

// fileValue renders a decoded YAML value as input text: numbers as
// written, booleans as true/false, lists (for list inputs) one item a line.
func fileValue(v any, kind Kind) (string, string) {
	switch t := v.(type) {
	case nil:
		return "", ""
	case string:
		return strings.TrimSpace(t), ""
	case json.Number:
		return t.String(), ""
	case bool:
		if t {
			return "true", ""
		}
		return "false", ""
	case []any:
		if kind != KindList {
			return "", "the value is a list"
		}
		items := make([]string, 0, len(t))
		for _, item := range t {
			s, p := fileValue(item, KindString)
			if p != "" {
				return "", "a list item is not plain text"
			}
			items = append(items, s)
		}
		return strings.Join(items, "\n"), ""
	default:
		return "", "the value is a mapping"
	}
}

// fileKeys lists the input names the file may set.
func fileKeys(ins []Input) string {
	var names []string
	for _, in := range ins {
		if in.InFile {
			names = append(names, in.Name)
		}
	}
	return strings.Join(names, ", ")
}

// closest suggests the file key nearest to an unknown one, such as
// "monitor-duration" for "monitor_duration"; "" when nothing is close.
func closest(key string, ins []Input) string {
	k := strings.ReplaceAll(strings.ToLower(key), "_", "-")
	best, bestDist := "", 3
	for _, in := range ins {
		if !in.InFile {
			continue
		}
		if d := editDistance(k, in.Name, bestDist); d < bestDist {
			best, bestDist = in.Name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or limit when it is
// at least limit; the limit keeps long garbage keys cheap.
func editDistance(a, b string, limit int) int {
	if len(a) > len(b)+limit || len(b) > len(a)+limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
