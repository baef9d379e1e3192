//go:build race

package main

// raceEnabled tells TestMain to build the end-to-end binary with -race
// too, so a data race in the running action fails its run.
const raceEnabled = true
