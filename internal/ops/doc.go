// Package ops holds the operator commands an incident needs besides a
// deploy: what serves an environment now (status), what happened to it
// (history), more or fewer replicas of the serving Deployment (scale), and
// the application's maintenance flag with the restart that applies it
// (maintenance).
//
// Each command works on the Deployment that serves traffic, read from the
// Service's selector (the active color of a blue-green environment), never
// from memory. Decisions and rendering are pure functions over values; the
// functions that talk to the cluster are thin loops around them. Taking the
// deploy lock is the caller's job, so one lock spans the whole command.
package ops
