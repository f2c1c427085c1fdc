#!/usr/bin/env bash
# workerd with its output line-buffered; each garbage-collection line of `--trace-gc` is also appended to
# $RELAY_BENCH_GC_LOG, stamped with the wall-clock time it was printed. Started by miniflare through
# MINIFLARE_WORKERD_PATH when the bench runs with --gc-trace (bench/lib/gc-trace.mjs).
set -u
stamp() {
  local line
  while IFS= read -r line; do
    printf '%s\n' "$line"
    case "$line" in
      *" ms: Scavenge"* | *" ms: Mark-"* | *" ms: Minor Mark-"*)
        local t=$EPOCHREALTIME
        printf '%s %s\n' "$(( ${t%[.,]*} * 1000 + 10#${t#*[.,]} / 1000 ))" "$line" >>"$RELAY_BENCH_GC_LOG" ;;
    esac
  done
}
buffered=()
command -v stdbuf >/dev/null && buffered=(stdbuf -oL -eL)
exec "${buffered[@]}" "$RELAY_BENCH_WORKERD_BIN" "$@" > >(stamp)
