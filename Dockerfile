# The image of the greenlight container Action: one static Go binary on a
# distroless base. The runner builds this file for
# `uses: ebeautything/greenlight@v1`; release.yml publishes the same image to
# ghcr.io so a workflow can skip the build by pinning it by digest.
#
# internal/packaging tests this file: the build stage's `go build` line is run
# as written, and the final stage is checked for what the runner needs.

# Pinned by tag only: its digest could not be checked against the registry
# when this was written. Pin it (golang:1.26-bookworm@sha256:<digest>) from a
# machine that can pull it, and let a dependency bot move the pin.
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/greenlight ./cmd/greenlight

# distroless static: CA certificates (for the GitHub, Slack and cluster APIs),
# tzdata and /etc/passwd, no shell, no libc. Pinned by the digest of its
# multi-platform index for the `latest` tag, so a rebuild of the same release
# gets the same base.
#
# The `latest` variant runs as root, and that is deliberate. GitHub runs a
# container action as the image's user, and the files the action must write,
# $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY under /github/file_commands and the
# workspace at /github/workspace, are mounted from the host and cannot be
# written by a non-root user such as distroless's `nonroot` (65532): actions
# that switched to a non-root USER failed with "Permission denied" on
# GITHUB_OUTPUT. GitHub's Dockerfile guidance for actions says the same: no
# USER instruction. There is no WORKDIR either: the runner mounts the
# workspace and makes it the working directory itself.
FROM gcr.io/distroless/static-debian12:latest@sha256:d75cdd72874d4790092fcb1b058493ecf6bb5bf2b2b897045b00ff01d91843f2
COPY --from=build /out/greenlight /greenlight
# Exec form with an absolute path: the runner starts the container in the
# workspace, and no args are passed; the binary reads its INPUT_* variables.
ENTRYPOINT ["/greenlight"]
