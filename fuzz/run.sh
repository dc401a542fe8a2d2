#!/usr/bin/env bash
# One fuzzing campaign (docs/fuzzing.md): fuzz/run.sh TARGET MAX_LEN [RUNS]
# Runs TARGET for RUNS executions (default 10 million) under nice, growing corpus/TARGET from
# seeds/TARGET; the whole libFuzzer output goes to logs/TARGET.log, a summary to stdout.
set -euo pipefail
cd "$(dirname "$0")"
target=$1
max_len=$2
runs=${3:-10000000}
mkdir -p "corpus/$target" logs
start=$(date +%s.%N)
set +e
RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz run -s none --codegen-units 16 "$target" \
  "corpus/$target" "seeds/$target" -- \
  -runs="$runs" -max_len="$max_len" -rss_limit_mb=512 -timeout=5 -print_final_stats=1 \
  >"logs/$target.log" 2>&1
rc=$?
set -e
end=$(date +%s.%N)
stat() { sed -n "s/^stat::$1: *//p" "logs/$target.log"; }
# fuzzing_s: libFuzzer's own count; wall_s also holds the build and the corpus loading.
printf '%s: rc=%s executions=%s exec/s=%s peak_rss_mb=%s fuzzing_s=%s wall_s=%.0f corpus=%s crashes=%s\n' \
  "$target" "$rc" "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" \
  "$(stat peak_rss_mb)" "$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "logs/$target.log")" \
  "$(echo "$end - $start" | bc)" "$(ls "corpus/$target" | wc -l)" \
  "$(ls "artifacts/$target" 2>/dev/null | wc -l)"
exit "$rc"
