package health

import (
	"context"
	"net/http"
	"testing"
)

// A realistic detailed body: a handful of components with latencies.
var (
	benchPlainBody = []byte(`{"status":"ok","version":"v2.3.1","checks":{
		"db":{"status":"up","responseTime":12,"message":"primary"},
		"cache":{"status":"up","latency":"3ms"},
		"queue":{"status":"up","responseTime":4.5},
		"search":{"status":"degraded","responseTime":250,"message":"replica lag"},
		"payments":{"status":"up","latency":"40ms"}}}`)
	benchHealthJSONBody = []byte(`{"status":"pass","version":"1","releaseId":"2.3.1","checks":{
		"db:responseTime":[
			{"componentId":"primary","status":"pass","observedValue":12,"observedUnit":"ms"},
			{"componentId":"replica","status":"pass","observedValue":15,"observedUnit":"ms"}],
		"cache:responseTime":[{"status":"pass","observedValue":3,"observedUnit":"ms"}],
		"cpu:utilization":[{"componentType":"system","status":"pass","observedValue":45,"observedUnit":"percent"}],
		"uptime":[{"componentType":"system","status":"pass","observedValue":1209600.245,"observedUnit":"s"}]}}`)
)

func BenchmarkParseDetailed(b *testing.B) {
	for _, bc := range []struct {
		name, contentType string
		body              []byte
	}{
		{"json", "application/json", benchPlainBody},
		{"health+json", "application/health+json", benchHealthJSONBody},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				if _, err := ParseDetailed(bc.contentType, bc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkProbe(b *testing.B) {
	target, _ := serve(b, jsonHandler(http.StatusOK, `{"status":"ok","version":"v2"}`))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := Probe(ctx, target, "/health", 0); !res.OK {
			b.Fatal(res.Err)
		}
	}
}
