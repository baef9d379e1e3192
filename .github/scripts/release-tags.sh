#!/usr/bin/env bash
# release-tags.sh VERSION IMAGE [REMOTE]
#
# Makes the release tag VERSION (such as v1.4.2) run the published image
# instead of building the Dockerfile: on top of the commit VERSION names it
# commits action.yml pinned to IMAGE (docker://ghcr.io/<owner>/<repo>@sha256:
# <digest>, see pin-action-image.sh), on no branch, so main keeps the
# Dockerfile for development. It then moves VERSION and its major tag (v1) to
# that commit and, given REMOTE, force-pushes both tags there.
#
# The repository's working tree and index are not touched: the commit is
# built from the tag's tree with a temporary index. Run from the repository;
# the committer and tagger come from git's usual identity settings.
#
# Exit codes: 0 done, 1 git or the rewrite failed, 2 a bad argument.
set -euo pipefail

usage() { echo "usage: release-tags.sh VERSION IMAGE [REMOTE]  (VERSION such as v1.4.2, IMAGE docker://NAME@sha256:<digest>)" >&2; exit 2; }
[ $# -eq 2 ] || [ $# -eq 3 ] || usage
version=$1 image=$2 remote=${3:-}

if ! [[ $version =~ ^v([0-9]+)\.[0-9]+\.[0-9]+$ ]]; then
  echo "release-tags.sh: VERSION \"$version\" is not a full version tag such as v1.4.2" >&2
  exit 2
fi
major=v${BASH_REMATCH[1]}
if ! [[ $image =~ ^docker://[a-z0-9][a-z0-9._/-]*@sha256:[0-9a-f]{64}$ ]]; then
  echo "release-tags.sh: IMAGE \"$image\" is not pinned by digest: want docker://NAME@sha256:<64 hex digits>" >&2
  exit 2
fi
base=$(git rev-parse --verify --quiet "refs/tags/$version^{commit}") || {
  echo "release-tags.sh: there is no tag $version" >&2
  exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

git show "$base:action.yml" >"$tmp/action.yml"
"$here/pin-action-image.sh" "$tmp/action.yml" "$image"
blob=$(git hash-object -w "$tmp/action.yml")

export GIT_INDEX_FILE="$tmp/index"
git read-tree "$base"
git update-index --cacheinfo "100644,$blob,action.yml"
tree=$(git write-tree)
unset GIT_INDEX_FILE

commit=$(git commit-tree "$tree" -p "$base" -m "greenlight $version: action.yml runs the published image

${image#docker://}")
git tag --force --annotate --message "greenlight $version" "$version" "$commit" >/dev/null
git tag --force "$major" "$commit" >/dev/null
echo "release-tags.sh: $version and $major point at $commit, whose action.yml runs $image"

if [ -n "$remote" ]; then
  git push --force "$remote" "refs/tags/$version" "refs/tags/$major"
fi
