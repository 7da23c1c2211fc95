#!/usr/bin/env bash
# Fails when a tracked C++ file is not clang-format clean.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
mapfile -t files < <(git ls-files '*.cc' '*.h' 2>/dev/null || find . -name '*.cc' -o -name '*.h')
if ((${#files[@]} == 0)); then exit 0; fi
clang-format-14 --dry-run --Werror "${files[@]}"
echo "clang-format: ${#files[@]} files clean"
