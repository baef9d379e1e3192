//go:build !race

package main

// raceEnabled is false: the binary is built as the Dockerfile builds it.
const raceEnabled = false
