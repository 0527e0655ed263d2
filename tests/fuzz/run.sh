#!/bin/sh
# tests/fuzz/run.sh - `make fuzz [FUZZ_SECONDS=N]`: each libFuzzer harness
# (built by make as build/fuzz_<name>) first replays its committed crash
# inputs (tests/fuzz/crashes/<name>/*, regressions), then fuzzes for N
# seconds on a copy of its seed corpus (build/fuzz_corpus_<name>: the
# committed seeds are never written to), single-threaded (NN_THREADS=1).
# A harness named in tests/fuzz/known.txt (a crash nn.h does not fix yet)
# is built but neither replayed nor run: SKIP with the reason given there.
# Crashes go to build/fuzz_artifacts/<name>-crash-*; the closing table gives
# executions per second per harness; the exit status is 1 when any harness
# found a crash, a timeout or an out-of-memory.
#
#   sh tests/fuzz/run.sh SECONDS name:seeds[:dict] ...
SECS=${1:-60}
shift
BUILD=${BUILD:-build}
DIR=$(dirname "$0")
ART="$BUILD/fuzz_artifacts"
mkdir -p "$ART"
export NN_THREADS=1
FAILED=""
SUMMARY=""
for spec in "$@"; do
    name=${spec%%:*}
    rest=${spec#*:}
    seeds=${rest%%:*}
    dict=""
    case "$rest" in *:*) dict=${rest#*:} ;; esac
    bin="$BUILD/fuzz_$name"
    known=$(sed -n "s/^$name[[:space:]]\{1,\}//p" "$DIR/known.txt" 2>/dev/null | head -1)
    if [ -n "$known" ]; then
        echo "== fuzz_$name: SKIP (tests/fuzz/known.txt: $known)"
        SUMMARY="$SUMMARY
fuzz_$name	SKIP (known.txt)"
        continue
    fi
    if [ -d "$DIR/crashes/$name" ] && [ -n "$(ls "$DIR/crashes/$name" 2>/dev/null)" ]; then
        echo "== fuzz_$name: replaying tests/fuzz/crashes/$name"
        if ! "$bin" -runs=1 "$DIR"/crashes/"$name"/* >"$ART/$name.replay.log" 2>&1; then
            tail -40 "$ART/$name.replay.log"
            echo "== fuzz_$name: a committed crash input crashes again (log: $ART/$name.replay.log)"
            FAILED="$FAILED $name"
            SUMMARY="$SUMMARY
fuzz_$name	REGRESSION"
            continue
        fi
    fi
    corpus="$BUILD/fuzz_corpus_$name"
    rm -rf "$corpus"
    mkdir -p "$corpus"
    cp "$DIR/$seeds"/* "$corpus/"
    echo "== fuzz_$name: ${SECS}s on $corpus (seeds: tests/fuzz/$seeds)"
    set -- -max_total_time="$SECS" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$ART/$name-" -error_exitcode=77 -timeout_exitcode=78
    [ -n "$dict" ] && set -- "$@" -dict="$DIR/$dict"
    "$bin" "$@" "$corpus" >"$ART/$name.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$ART/$name.log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$ART/$name.log" | tail -1)
    cov=$(grep -E '^#[0-9]+' "$ART/$name.log" | tail -1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    if [ "$rc" -ne 0 ]; then
        grep -E 'ERROR: |runtime error|SUMMARY|Test unit written|^    #[0-9] ' "$ART/$name.log" | head -30
        echo "== fuzz_$name: FAILED (exit $rc; log: $ART/$name.log)"
        FAILED="$FAILED $name"
        SUMMARY="$SUMMARY
fuzz_$name	FAIL	exec/s ${eps:-?}	execs ${execs:-?}	cov ${cov:-?}"
    else
        echo "== fuzz_$name: ok, ${execs:-?} executions, ${eps:-?} exec/s, cov ${cov:-?}"
        SUMMARY="$SUMMARY
fuzz_$name	ok	exec/s ${eps:-?}	execs ${execs:-?}	cov ${cov:-?}"
    fi
done
echo "== fuzz summary (${SECS}s each):$SUMMARY"
if [ -n "$FAILED" ]; then
    echo "fuzz: FAILED:$FAILED (inputs: $ART/)"
    exit 1
fi
echo "fuzz: all harnesses clean"
