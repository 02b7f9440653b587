#!/usr/bin/env bash
# The first run is quiet (issue 25): `make demo` in a fresh clone of this checkout's HEAD, with a new venv,
# writes to stderr only our own lines: no third-party warnings, deprecation banners, pip notices or
# progress bars. Fails (exit 1) and prints the offending lines otherwise.
#   scripts/check-quiet-demo.sh
# RA_SHARED_DIR: the shared data (default ../shared). QUIET_DEMO_CACHE: the model cache the demo uses
# (default a new one, so the checker training, the ONNX export and the model assembly all run as on a
# first run; CI passes its tests' cache, where those are done, to save their ~6 min). pip's own cache
# (~/.cache/pip, PIP_CACHE_DIR) keeps downloads from one run to the next.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
shared="${RA_SHARED_DIR:-$(cd "$repo/.." && pwd)/shared}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cache="${QUIET_DEMO_CACHE:-$work/cache}"

git clone -q "$repo" "$work/repo"
start=$SECONDS
status=0
(cd "$work/repo" && RA_CACHE_DIR="$cache" make demo SHARED="$shared" >"$work/stdout" 2>"$work/stderr") || status=$?
echo "make demo in a fresh clone: $((SECONDS - start)) s, exit $status, $(grep -c . "$work/stderr") stderr lines"
if [ "$status" != 0 ]; then
    tail -n 40 "$work/stderr" >&2
    exit 1
fi
# Ours start with "warning:" or "error:" in lower case; Python's warnings end in "Warning:", setuptools'
# banners are framed in asterisks, pip's notices are "[notice]", tqdm's bars hold "%|".
noise="$(grep -E 'Warning|deprecat|\*\*\*\*|\[notice\]|%\|' "$work/stderr" || true)"
if [ -n "$noise" ]; then
    echo "make demo wrote lines to stderr that are not ours (silence them, or fix their cause):" >&2
    echo "$noise" >&2
    exit 1
fi
