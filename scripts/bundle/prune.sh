#!/usr/bin/env bash
# Removes from a production node_modules what is not needed at run time: docs, tests, type declarations,
# sources and build intermediates of the native modules (only their compiled .node files stay).
#   prune.sh NODE_MODULES
set -euo pipefail
nm="$1"
[ -d "$nm" ] || { echo "prune.sh: no $nm" >&2; exit 1; }
before=$(du -sk "$nm" | cut -f1)

# Native modules: the build/Release/*.node files and the JavaScript that loads them.
for mod in better-sqlite3 @serialport/bindings-cpp; do
  d="$nm/$mod"
  [ -d "$d" ] || continue
  rm -rf "$d/deps" "$d/src" "$d/prebuilds" "$d/binding.gyp" "$d/docs"
  if [ -d "$d/build" ]; then
    find "$d/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
    find "$d/build/Release" -mindepth 1 -maxdepth 1 ! -name '*.node' -exec rm -rf {} +
  fi
done
# better-sqlite3 also builds test_extension.node, an SQLite extension for its own tests: not loaded at run time.
rm -f "$nm/better-sqlite3/build/Release/test_extension.node"
# node-gyp-build stays: @serialport/bindings-cpp finds its binding through it at run time.

find "$nm" \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.md' -o -name '*.markdown' \
  -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name 'tsconfig*.json' -o -name '.eslintrc*' -o -name '.prettierrc*' \
  -o -name '.editorconfig' -o -name '.npmignore' -o -name '.travis.yml' -o -name '.github' -o -name 'Makefile' \
  -o -name '*.gyp' -o -name '*.gypi' -o -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.h' -o -name '*.o' \) \
  -prune -exec rm -rf {} +
# Test, example and doc folders only at a package's top (deeper ones may be code: yaml/dist/doc is).
find "$nm" -mindepth 2 -maxdepth 3 -type d \( -name test -o -name tests -o -name __tests__ -o -name example -o -name examples \
  -o -name docs -o -name doc -o -name benchmark -o -name benchmarks -o -name bench -o -name coverage -o -name '.nyc_output' \) \
  -regextype posix-extended -regex '.*/node_modules/(@[^/]+/)?[^/]+/[^/]+' -prune -exec rm -rf {} +
rm -rf "$nm/.bin" "$nm/.package-lock.json"
after=$(du -sk "$nm" | cut -f1)
echo "prune.sh: node_modules $(( before / 1024 )) MiB -> $(( after / 1024 )) MiB" >&2
