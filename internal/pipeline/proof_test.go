package pipeline

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/health"
)

func TestPlanProof(t *testing.T) {
	t.Parallel()
	sha := "0123456789abcdef0123456789abcdef01234567"
	auto := config.VersionCheck{Mode: config.VersionCheckAuto}
	jsonAt := config.VersionCheck{Mode: config.VersionCheckJSON, Name: "version", Path: "/version"}
	tests := []struct {
		name     string
		check    config.VersionCheck
		expected string
		tag      string
		before   Before
		want     ProofPlan
	}{
		{"first deploy", auto, "", sha, Before{}, ProofPlan{Proof: health.ProofEndpoints, Reason: "nothing served before this deploy, so it is unknown whether the app reports its version"}},
		{"app reports its own tag", auto, "", "v2", Before{Served: true, Tag: "v1", Reported: "1"}, ProofPlan{Proof: health.ProofVersion, Want: "v2", Reason: "the version serving before the deploy reported its own tag v1"}},
		{"podinfo reports its semver, not the sha", auto, "", sha, Before{Served: true, Tag: sha, Reported: "6.9.2"}, ProofPlan{Proof: health.ProofEndpoints, Reason: "the version serving before the deploy reported 6.9.2, not its image tag " + sha}},
		{"no version reported", auto, "", sha, Before{Served: true, Tag: sha}, ProofPlan{Proof: health.ProofEndpoints, Reason: "the version serving before the deploy reported no version"}},
		{"digest-only image before", auto, "", "v2", Before{Served: true, Reported: "v1"}, ProofPlan{Proof: health.ProofEndpoints, Reason: "the version serving before the deploy reported v1, and its image has no tag to compare"}},
		{"digest-only new image", auto, "", "", Before{Served: true, Tag: "v1", Reported: "v1"}, ProofPlan{Proof: health.ProofEndpoints, Reason: "the new image has no tag and expected-version is empty"}},
		{"off", config.VersionCheck{Mode: config.VersionCheckOff}, "", "v2", Before{Served: true, Tag: "v1", Reported: "v1"}, ProofPlan{Proof: health.ProofEndpoints, Reason: "version-check is off"}},
		{"json field with expected version", jsonAt, "6.9.2", sha, Before{}, ProofPlan{Proof: health.ProofVersion, Want: "6.9.2", Reason: "version-check is json:version@/version"}},
		{"json field without anything to expect", jsonAt, "", "", Before{}, ProofPlan{Proof: health.ProofEndpoints, Reason: "the image has no tag and expected-version is empty, so there is no version to expect"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, PlanProof(tt.check, tt.expected, tt.tag, tt.before))
		})
	}
}

func TestVersionAnswer(t *testing.T) {
	t.Parallel()
	paths := health.Paths{Basic: "/healthz", Ready: "/version", Detailed: "/health/detailed"}
	tests := []struct {
		name          string
		endpoints     []health.EndpointResult
		version, path string
	}{
		{"nothing reported", []health.EndpointResult{{Endpoint: health.EndpointBasic, Path: "/healthz"}}, "", ""},
		{"the first health path", []health.EndpointResult{{Endpoint: health.EndpointBasic, Version: "v2"}, {Endpoint: health.EndpointReady, Version: "v3"}}, "v2", "/healthz"},
		{"podinfo's /version as the second path", []health.EndpointResult{{Endpoint: health.EndpointBasic}, {Endpoint: health.EndpointReady, Version: "6.9.2"}}, "6.9.2", "/version"},
		{"only the detailed endpoint, which needs the token", []health.EndpointResult{{Endpoint: health.EndpointBasic}, {Endpoint: health.EndpointDetailed, Version: "v2"}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			version, path := VersionAnswer(health.Result{Endpoints: tt.endpoints}, paths)
			assert.Equal(t, tt.version, version)
			assert.Equal(t, tt.path, path)
		})
	}
}

func TestTellsApart(t *testing.T) {
	t.Parallel()
	byVersion := ProofPlan{Proof: health.ProofVersion, Want: "v2", Reason: "the version serving before the deploy reported its own tag v1"}
	byEndpoints := ProofPlan{Proof: health.ProofEndpoints, Reason: "version-check is off"}
	tests := []struct {
		name  string
		plan  ProofPlan
		other string
		want  ProofPlan
	}{
		{"another version answers before", byVersion, "v1", byVersion},
		{"nothing reported before", byVersion, "", byVersion},
		{"the same version both sides", byVersion, "v2", ProofPlan{Proof: health.ProofEndpoints, Reason: "the version serving before the deploy reports v2 too, so answers cannot tell the two apart"}},
		{"the same version, spelled with a v", byVersion, "2", ProofPlan{Proof: health.ProofEndpoints, Reason: "the version serving before the deploy reports 2 too, so answers cannot tell the two apart"}},
		{"an endpoints proof stays", byEndpoints, "v2", byEndpoints},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, TellsApart(tt.plan, tt.other, "the version serving before the deploy"))
		})
	}
}

func TestOtherVersionFailsPreTrafficCheck(t *testing.T) {
	t.Parallel()
	res := health.Result{Endpoints: []health.EndpointResult{{Path: "/health", Version: "1.0.0"}, {Path: "/health/ready", Version: "1.1.0"}}}
	assert.EqualError(t, otherVersion(res, "1.1.0"), "/health was answered by version 1.0.0, not 1.1.0")
	assert.NoError(t, otherVersion(health.Result{Endpoints: []health.EndpointResult{{Path: "/health", Version: "v1.1.0"}, {Path: "/x"}}}, "1.1.0"))
}
