package config

import (
	"strings"
)

// VersionCheckMode is how the served version is read, if at all.
type VersionCheckMode string

// Version check modes.
const (
	VersionCheckAuto   VersionCheckMode = "auto"
	VersionCheckOff    VersionCheckMode = "off"
	VersionCheckJSON   VersionCheckMode = "json"
	VersionCheckHeader VersionCheckMode = "header"
)

// VersionCheck is the parsed version-check input.
type VersionCheck struct {
	Mode VersionCheckMode `json:"mode"`
	// Name is the JSON field or header that reports the version.
	Name string `json:"name,omitempty"`
	// Path is where it is read; empty means the first health path.
	Path string `json:"path,omitempty"`
}

// String is the input's spelling.
func (v VersionCheck) String() string {
	switch v.Mode {
	case VersionCheckJSON, VersionCheckHeader:
		s := string(v.Mode) + ":" + v.Name
		if v.Path != "" {
			s += "@" + v.Path
		}
		return s
	case "":
		return string(VersionCheckAuto)
	}
	return string(v.Mode)
}

// ParseVersionCheck parses auto, off, json:<field>[@<path>] or
// header:<name>[@<path>]; the problem says what is wrong without quoting.
func ParseVersionCheck(v string) (VersionCheck, string) {
	v = strings.TrimSpace(v)
	switch v {
	case "", string(VersionCheckAuto):
		return VersionCheck{Mode: VersionCheckAuto}, ""
	case string(VersionCheckOff):
		return VersionCheck{Mode: VersionCheckOff}, ""
	}
	kind, rest, ok := strings.Cut(v, ":")
	mode := VersionCheckMode(kind)
	if !ok || (mode != VersionCheckJSON && mode != VersionCheckHeader) {
		return VersionCheck{}, "is not auto, off, json:<field>[@<path>] or header:<name>[@<path>]"
	}
	name, path, hasPath := strings.Cut(rest, "@")
	if name == "" {
		return VersionCheck{}, "names no " + map[VersionCheckMode]string{VersionCheckJSON: "JSON field", VersionCheckHeader: "header"}[mode]
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return VersionCheck{}, "has a space or control character in its name"
	}
	if hasPath {
		if p := checkHealthPath(path); p != "" {
			return VersionCheck{}, "path " + p
		}
	}
	return VersionCheck{Mode: mode, Name: name, Path: path}, ""
}
