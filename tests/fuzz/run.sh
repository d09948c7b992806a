#!/usr/bin/env bash
# Runs every libFuzzer target (fuzz_*) found in TARGET_DIR for SECONDS each, starting from a copy of
# its seed corpus tests/fuzz/corpus/<target>/ in a temp dir (the repository corpus is never written).
# Exits non-zero if any target crashes, leaks, times out or is missing; crash inputs are kept and
# their paths printed. Usage: tests/fuzz/run.sh build/fuzz/tests/fuzz 60
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 TARGET_DIR SECONDS" >&2
  exit 2
fi
target_dir=$1
seconds=$2
corpus_root=$(cd "$(dirname "$0")" && pwd)/corpus
work=$(mktemp -d "${TMPDIR:-/tmp}/mailward-fuzz.XXXXXX")

failed=0
ran=0
for bin in "$target_dir"/fuzz_*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  name=$(basename "$bin")
  ran=$((ran + 1))
  mkdir -p "$work/$name/corpus" "$work/$name/artifacts"
  if [ -d "$corpus_root/$name" ]; then
    cp "$corpus_root/$name"/* "$work/$name/corpus/" 2>/dev/null
  fi
  echo "== $name: ${seconds}s, $(ls "$work/$name/corpus" | wc -l) seeds"
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/$name/artifacts/" "$work/$name/corpus" >"$work/$name/log" 2>&1
  rc=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$work/$name/log" | sed 's/^/   /'
  if [ $rc -ne 0 ] || ls "$work/$name/artifacts"/* >/dev/null 2>&1; then
    failed=$((failed + 1))
    echo "!! $name failed (exit $rc); log: $work/$name/log"
    grep -E 'ERROR|invariant broken|SUMMARY' "$work/$name/log" | head -5 | sed 's/^/   /'
    ls "$work/$name/artifacts"/* 2>/dev/null | sed 's/^/   artifact: /'
  fi
done

if [ $ran -eq 0 ]; then
  echo "no fuzz_* executables in $target_dir" >&2
  exit 2
fi
if [ $failed -ne 0 ]; then
  echo "$failed of $ran fuzz targets failed; work dir kept: $work"
  exit 1
fi
echo "all $ran fuzz targets ran ${seconds}s without a crash"
rm -rf "$work"
exit 0
