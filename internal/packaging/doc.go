// Package packaging holds the tests that keep greenlight's distribution
// files honest: action.yml is generated from config.Names, the Dockerfile's
// build command really builds from the context .dockerignore leaves, the
// workflows pass actionlint and pin every third-party action to a commit,
// and the example .github/greenlight.yml loads. It has no code of its own.
package packaging
