package config

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"testing"
)

// secretMarker in a fuzzed value or file is replaced by the first secret,
// so the fuzzer also tries secrets pasted into plain inputs and the file.
const secretMarker = "$SECRET"

// FuzzLoad feeds arbitrary inputs (one "name=value" a line) and config
// files to Load. Load must not panic, must report only *InputErrors, must
// never show a secret, and a Config it accepts must satisfy every rule.
func FuzzLoad(f *testing.F) {
	f.Add("environment=staging\ndeployment=api\nimage=ghcr.io/acme/api:1", []byte(""), []byte{1, 2, 3})
	f.Add("environment=production\nimage=a:1", []byte(exampleYAML()), []byte("k"))
	f.Add("environment=qa\nconfig=x.yml\nurl=https://u:"+secretMarker+"@h", []byte("environments:\n  staging: {}\n"), []byte{})
	f.Add("environment=staging\ncontext="+secretMarker+"\nmanifests=a,"+secretMarker+"[", []byte("defaults:\n  namespace: "+secretMarker+"\n"), []byte{0xff})
	f.Add("environment=staging\nalert-error-rate=1\nrollback-error-rate=0.1\nmonitor-interval=1ms", []byte("defaults: {github-token: x}"), []byte("z"))
	f.Fuzz(func(t *testing.T, inputs string, file, secretSeed []byte) {
		secret := "greenlight-canary-" + hex.EncodeToString(secretSeed)
		values := make(map[string]string)
		for line := range strings.SplitSeq(inputs, "\n") {
			k, v, _ := strings.Cut(line, "=")
			values[k] = strings.ReplaceAll(v, secretMarker, secret)
		}
		// Every secret input holds a distinct canary, behind any fuzzed
		// prefix so that URL checks can pass or fail.
		var secrets []string
		for i, in := range Names() {
			if in.Kind == KindSecret {
				s := fmt.Sprintf("%s-%d", secret, i)
				values[in.Name] += s
				secrets = append(secrets, s)
			}
		}
		file = []byte(strings.ReplaceAll(string(file), secretMarker, secret))
		readFile := func(string) ([]byte, error) {
			if len(file) == 0 {
				return nil, fs.ErrNotExist
			}
			return file, nil
		}

		cfg, err := Load(MapLookup(values), readFile, "sha")
		if err != nil {
			msg := err.Error()
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Fatalf("error shows a secret: %s", msg)
				}
			}
			ies := InputErrors(err)
			if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != len(ies) {
				t.Fatalf("%d errors, %d of them *InputError", n, len(ies))
			}
			for _, ie := range ies {
				if ie.Input == "" || ie.Problem == "" {
					t.Fatalf("incomplete error %#v", ie)
				}
			}
			if cfg.Environment != "" || cfg.Kubeconfig != "" {
				t.Fatal("a failed Load returned a Config")
			}
			return
		}

		for _, out := range []string{fmt.Sprintf("%v %+v %#v", cfg, cfg, &cfg), mustJSON(t, cfg)} {
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Fatalf("printed Config shows a secret: %s", out)
				}
			}
		}
		checkInvariants(t, cfg)
	})
}

func checkInvariants(t *testing.T, c Config) {
	t.Helper()
	for name, f := range map[string]float64{
		"alert-error-rate": c.AlertErrorRate, "alert-availability": c.AlertAvailability, "rollback-error-rate": c.RollbackErrorRate,
	} {
		if f < 0 || f > 1 || math.IsNaN(f) {
			t.Fatalf("%s = %v, not a fraction", name, f)
		}
	}
	if c.RollbackErrorRate < c.AlertErrorRate || c.RollbackConsecutiveFailures < c.AlertConsecutiveFailures {
		t.Fatalf("rollback thresholds below alert thresholds: %+v", c)
	}
	if c.Timeout <= 0 || c.RolloutTimeout <= 0 || c.AlertResponseTime <= 0 || c.MonitorDuration < 0 || c.LockTimeout < 0 {
		t.Fatalf("bad durations: %+v", c)
	}
	if c.MonitorInterval < 100_000_000 || (c.MonitorDuration > 0 && c.MonitorInterval > c.MonitorDuration) {
		t.Fatalf("bad monitor interval: %+v", c)
	}
	if c.MinSamples < 1 || c.AlertConsecutiveFailures < 1 || c.Environment == "" || c.Kubeconfig == "" || c.Namespace == "" {
		t.Fatalf("missing values: %+v", c)
	}
	if c.Strategy != Rolling && c.Strategy != BlueGreen {
		t.Fatalf("strategy %q", c.Strategy)
	}
	if c.Strategy == BlueGreen && (c.Command == CommandDeploy || c.Command == CommandRollback) && c.Service == "" {
		t.Fatalf("blue-green without a service: %+v", c)
	}
	if c.Command == CommandDeploy && c.Image == "" && len(c.Manifests) == 0 {
		t.Fatalf("deploy without image or manifests: %+v", c)
	}
	if len(c.HealthPaths) == 0 {
		t.Fatal("no health paths")
	}
	for _, p := range c.HealthPaths {
		if !strings.HasPrefix(p, "/") {
			t.Fatalf("health path %q", p)
		}
	}
	if c.URL != "" && !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
		t.Fatalf("url %q", c.URL)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzParseDuration checks that the parser never panics, never accepts a
// negative duration and round-trips what it accepts.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"300", "90s", "5m", "-5m", "0", "1.5", "9223372037", "1h-1m", "+5s", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, p := parseDuration(s)
		if p != "" {
			if d != 0 {
				t.Fatalf("%q: problem %q with value %v", s, p, d)
			}
			return
		}
		if d < 0 {
			t.Fatalf("%q: accepted negative %v", s, d)
		}
		if again, p := parseDuration(d.String()); p != "" || again != d {
			t.Fatalf("%q: %v does not round-trip (%v, %q)", s, d, again, p)
		}
	})
}

// FuzzParsePercent checks that the parser never panics, stays within
// 0..100% and agrees with the written percentage form.
func FuzzParsePercent(f *testing.F) {
	for _, s := range []string{"10", "10%", "0.1", "1", "1.0", "0", "100%", "101", "-5%", ".5", "1e2", "NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, p := parsePercent(s)
		if p != "" {
			if v != 0 {
				t.Fatalf("%q: problem %q with value %v", s, p, v)
			}
			return
		}
		if v < 0 || v > 1 || math.IsNaN(v) {
			t.Fatalf("%q: %v is outside 0..1", s, v)
		}
		again, p := parsePercent(formatPercent(v))
		if p != "" || math.Abs(again-v) > 1e-6 {
			t.Fatalf("%q: %v does not round-trip through %q (%v, %q)", s, v, formatPercent(v), again, p)
		}
	})
}

// exampleYAML is the config file from the package's documentation.
func exampleYAML() string {
	return `defaults:
  namespace: payments
  deployment: payment-api
environments:
  staging:
    url: https://staging.example.com
    monitor-duration: 5m
  production:
    url: https://example.com
    strategy: blue-green
    replicas: 3
`
}
