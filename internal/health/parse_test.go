package health

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseDetailed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
		body        string
		want        Detailed
		wantErr     string
	}{
		{
			name:        "plain checks with latency in ms and as duration",
			contentType: "application/json",
			body: `{"status":"healthy","checks":{
				"db":{"status":"up","responseTime":12},
				"cache":{"status":"up","latency":"3ms","message":"warm"}}}`,
			want: Detailed{Format: FormatJSON, Status: "healthy", Components: []Component{
				{Name: "cache", Status: "up", Latency: 3 * time.Millisecond, Message: "warm"},
				{Name: "db", Status: "up", Latency: 12 * time.Millisecond},
			}},
		},
		{
			name:        "spring boot components",
			contentType: "application/vnd.spring-boot.actuator.v3+json",
			body:        `{"status":"DOWN","components":{"db":{"status":"DOWN","details":{"error":"x"}},"ping":{"status":"UP"}}}`,
			want: Detailed{Format: FormatJSON, Status: "DOWN", Components: []Component{
				{Name: "db", Status: "DOWN"},
				{Name: "ping", Status: "UP"},
			}},
		},
		{
			name: "services with bare statuses and error message",
			body: `{"status":"degraded","services":{"queue":"ok","search":{"status":"error","error":"timeout","latency":"250"}}}`,
			want: Detailed{Format: FormatJSON, Status: "degraded", Components: []Component{
				{Name: "queue", Status: "ok"},
				{Name: "search", Status: "error", Message: "timeout", Latency: 250 * time.Millisecond},
			}},
		},
		{
			name:        "health+json arrays of observations",
			contentType: "application/health+json; charset=utf-8",
			body: `{"status":"warn","version":"1","releaseId":"1.2.0","checks":{
				"db:responseTime":[
					{"componentId":"primary","status":"pass","observedValue":250,"observedUnit":"ms"},
					{"componentId":"replica","status":"fail","observedValue":9000,"observedUnit":"ms","output":"too slow"}],
				"uptime":[{"componentType":"system","observedValue":1209600.245,"observedUnit":"s","status":"pass"}]}}`,
			want: Detailed{Format: FormatHealthJSON, Status: "warn", Components: []Component{
				{Name: "db:responseTime[primary]", Status: "pass", Latency: 250 * time.Millisecond, ObservedValue: "250", ObservedUnit: "ms"},
				{Name: "db:responseTime[replica]", Status: "fail", Latency: 9 * time.Second, ObservedValue: "9000", ObservedUnit: "ms", Message: "too slow"},
				{Name: "uptime", Status: "pass", ObservedValue: "1209600.245", ObservedUnit: "s"},
			}},
		},
		{
			name:        "health+json single observation keeps the key as name",
			contentType: "application/health+json",
			body:        `{"status":"pass","checks":{"cpu:utilization":[{"componentId":"6fd4","status":"pass","observedValue":85,"observedUnit":"percent"}]}}`,
			want: Detailed{Format: FormatHealthJSON, Status: "pass", Components: []Component{
				{Name: "cpu:utilization", Status: "pass", ObservedValue: "85", ObservedUnit: "percent"},
			}},
		},
		{
			name: "microprofile checks as a list",
			body: `{"status":"UP","checks":[{"name":"db","status":"UP"},{"status":"DOWN"}]}`,
			want: Detailed{Format: FormatJSON, Status: "UP", Components: []Component{
				{Name: "#1", Status: "DOWN"},
				{Name: "db", Status: "UP"},
			}},
		},
		{
			name: "unknown shape keeps the raw status",
			body: `{"status":{"code":1},"uptime":5}`,
			want: Detailed{Format: FormatJSON, Status: `{"code":1}`},
		},
		{
			name: "boolean status",
			body: `{"status":true}`,
			want: Detailed{Format: FormatJSON, Status: "true"},
		},
		{
			name: "bare JSON string",
			body: `"ok"`,
			want: Detailed{Format: FormatJSON, Status: "ok"},
		},
		{
			name: "JSON list is an unknown shape",
			body: `[1,2]`,
			want: Detailed{Format: FormatJSON},
		},
		{
			name:        "bad content type is treated as plain JSON",
			contentType: ";;;",
			body:        `{"status":"pass"}`,
			want:        Detailed{Format: FormatJSON, Status: "pass"},
		},
		{
			name:    "not JSON",
			body:    "OK",
			want:    Detailed{Format: FormatJSON},
			wantErr: "body is not JSON",
		},
		{
			name:    "empty",
			body:    "  \n",
			want:    Detailed{Format: FormatJSON},
			wantErr: "body is empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDetailed(tt.contentType, []byte(tt.body))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDetailedFailing(t *testing.T) {
	t.Parallel()
	d := Detailed{Components: []Component{
		{Name: "a", Status: "UP"}, {Name: "b", Status: "Down"}, {Name: "c", Status: "warn"},
		{Name: "d", Status: "unhealthy"}, {Name: "e", Status: ""},
	}}
	assert.Equal(t, []Component{{Name: "b", Status: "Down"}, {Name: "d", Status: "unhealthy"}}, d.Failing())
}

func TestStatusFailing(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"down": true, "DOWN": true, "fail": true, "unhealthy": true, "error": true,
		" failed ": true, "OUT_OF_SERVICE": true, "critical": true,
		"up": false, "pass": false, "ok": false, "healthy": false, "warn": false,
		"degraded": false, "": false, "UNKNOWN": false,
	}
	for status, want := range tests {
		assert.Equal(t, want, StatusFailing(status), "status %q", status)
	}
}

func TestServedVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header http.Header
		body   string
		want   string
	}{
		{name: "body field", body: `{"status":"ok","version":"v2.1.0"}`, want: "v2.1.0"},
		{name: "body wins over header", header: http.Header{"X-App-Version": {"h"}}, body: `{"version":"b"}`, want: "b"},
		{name: "numeric version", body: `{"version": 3}`, want: "3"},
		{name: "X-App-Version", header: http.Header{"X-App-Version": {" v1 "}}, body: "OK", want: "v1"},
		{name: "X-Version", header: http.Header{"X-Version": {"v9"}}, want: "v9"},
		{name: "X-App-Version before X-Version", header: http.Header{"X-Version": {"b"}, "X-App-Version": {"a"}}, want: "a"},
		{name: "object version ignored", header: http.Header{"X-Version": {"h"}}, body: `{"version":{"major":1}}`, want: "h"},
		{name: "nested version ignored", body: `{"app":{"version":"1"}}`, want: ""},
		{name: "other case ignored", body: `{"Version":"1"}`, want: ""},
		{name: "invalid JSON falls back", header: http.Header{"X-Version": {"h"}}, body: `{"version":`, want: "h"},
		{name: "nothing", want: ""},
		{name: "nil header", header: nil, body: `[]`, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, ServedVersion(tt.header, []byte(tt.body)))
		})
	}
}

func TestServedVersionIsBounded(t *testing.T) {
	t.Parallel()
	long := make([]byte, 1000)
	for i := range long {
		long[i] = 'a'
	}
	got := ServedVersion(http.Header{"X-Version": {string(long)}}, nil)
	assert.Less(t, len(got), 200)
}
