#!/usr/bin/env bash
# Builds the explorer's bundle (ui/dist/: app.js, app.css, index.html), which the astrolabe
# binary embeds at compile time, so `cargo build` needs neither node nor the network.
#   scripts/ui-build.sh          npm ci, type-check, bundle with esbuild into ui/dist/
#   scripts/ui-build.sh --check  the same into a temporary copy; fails if the committed
#                                ui/dist/ differs from what the sources build (the build is
#                                deterministic: same sources and lockfile, same bytes)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../ui"

command -v npm >/dev/null || { echo "ui-build: npm is required (apt-get install -y nodejs npm)" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
npx --no-install tsc --noEmit -p .

if [[ "${1:-}" == "--check" ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  node build.mjs "$work"
  if ! diff -r "$work" dist >/dev/null; then
    echo "ui-build: ui/dist/ is not what ui/src builds; run scripts/ui-build.sh and commit ui/dist/" >&2
    diff -rq "$work" dist >&2 || true
    exit 1
  fi
  echo "ui-build: ui/dist/ matches the sources"
else
  node build.mjs
  echo "ui-build: wrote ui/dist/ ($(wc -c < dist/app.js) bytes of JavaScript)"
fi
