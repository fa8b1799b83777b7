#!/usr/bin/env bash
# Fails on any Rust source line longer than rustfmt's max_width (100, the default: no
# rustfmt.toml), counted in characters. rustfmt leaves an expression it cannot fit untouched and
# says nothing, so `cargo fmt --check` alone lets such lines through.
set -euo pipefail
cd "$(dirname "$0")/.."
max=100
long=$(find . -path ./target -prune -o -path ./.git -prune -o -name '*.rs' -print0 \
  | sort -z | xargs -0 env LC_ALL=C.UTF-8 grep -nHP "^.{$((max + 1)),}$" || true)
if [ -n "$long" ]; then
  printf '%s\n' "$long" | cut -c1-160 >&2
  echo "lines over $max characters: $(printf '%s\n' "$long" | wc -l)" >&2
  exit 1
fi
echo "no line over $max characters"
