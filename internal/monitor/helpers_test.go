package monitor

import (
	"time"
)

// t0 is a fixed origin so figures and golden files are reproducible.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// okSample and failSample build samples i seconds after t0.
func okSample(i int, latency time.Duration) Sample {
	return Sample{Time: t0.Add(time.Duration(i) * time.Second), Endpoint: "https://app.example.test/health", Latency: latency, StatusCode: 200, OK: true}
}

func failSample(i int, latency time.Duration) Sample {
	return Sample{Time: t0.Add(time.Duration(i) * time.Second), Endpoint: "https://app.example.test/health", Latency: latency, StatusCode: 503, Err: "status 503"}
}
