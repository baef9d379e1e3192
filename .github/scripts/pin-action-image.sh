#!/usr/bin/env bash
# pin-action-image.sh ACTION_YML IMAGE
#
# Points the container action at a prebuilt image instead of its Dockerfile:
# rewrites the one `  image: Dockerfile` line under runs: to `  image: IMAGE`.
# The release workflow runs it on the release tag's commit with the pushed
# image's digest, docker://ghcr.io/<owner>/<repo>@sha256:<digest>, so a job
# that uses the action pulls the image instead of building it. The end-to-end
# tests run it with a local image.
#
# Exit codes: 0 rewritten, 1 the file is not the action.yml it expects, 2 a
# bad argument.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: pin-action-image.sh ACTION_YML IMAGE (such as docker://ghcr.io/acme/app@sha256:<digest>)" >&2
  exit 2
fi
file=$1 image=$2

# The image goes into a sed replacement and a YAML plain scalar: only the
# characters of an image reference are let through.
if ! [[ $image =~ ^docker://[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?(@sha256:[0-9a-f]{64})?$ ]]; then
  echo "pin-action-image.sh: IMAGE \"$image\" is not docker://NAME[:TAG][@sha256:DIGEST] in lower case" >&2
  exit 2
fi
if [ ! -f "$file" ]; then
  echo "pin-action-image.sh: ACTION_YML \"$file\" is not a file" >&2
  exit 2
fi

# Exactly one runs.image line naming the Dockerfile, and docker as the runner.
n=$(grep -c '^  image: Dockerfile$' "$file" || true)
if [ "$n" != 1 ]; then
  echo "pin-action-image.sh: $file has $n lines \"  image: Dockerfile\"; want exactly one, under runs:" >&2
  exit 1
fi
if ! grep -q '^  using: docker$' "$file"; then
  echo "pin-action-image.sh: $file is not a container action (no \"  using: docker\" under runs:)" >&2
  exit 1
fi

tmp=$(mktemp "$file.XXXXXX")
trap 'rm -f "$tmp"' EXIT
sed "s#^  image: Dockerfile\$#  image: ${image}#" "$file" >"$tmp"
chmod --reference="$file" "$tmp"
mv "$tmp" "$file"
trap - EXIT
