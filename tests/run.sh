#!/bin/sh
# tests/run.sh - `make test`: build checks of the header, then the test binary.
#
#   sh tests/run.sh build/run_tests
#
# Each build check counts as one test: the header with a small main must
# build with -Werror (and the program must run) under gcc and clang at
# -std=c99 -Wall -Wextra -pedantic, with NN_NO_SIMD, with NN_STATIC (nothing
# used), from two translation units, and as C++ (g++, clang++).  A missing
# compiler counts as skipped.  Then the test binary runs, once normally and
# twice with NN_BACKEND set (--expect-backend).  The last line is the total:
# "N passed, N failed, N skipped"; the exit status is 1 when anything failed.

BIN=${1:-build/run_tests}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nn_run.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT INT TERM

P=0
F=0
S=0
WARN="-std=c99 -Wall -Wextra -pedantic -Werror"

pass() { P=$((P + 1)); echo "ok   build: $1"; }
fail() {
    F=$((F + 1))
    echo "FAIL build: $1"
    sed -n '1,25s/^/     | /p' "$TMP/log"
}
skip() { S=$((S + 1)); echo "SKIP build: $1"; }
have() { command -v "$1" >/dev/null 2>&1; }

# ---- sources for the build checks ------------------------------------------
cat >"$TMP/main.c" <<'EOF'
#define NN_IMPLEMENTATION
#include "nn.h"
int main(void) {
    float a[3] = {1, 2, 3}, b[3] = {4, 5, 6}, c[1] = {0};
    if (nn_sgemm(0, 0, 1, 1, 3, 1.0f, a, 3, b, 1, 0.0f, c, 1) != NN_OK || c[0] != 32.0f) return 1;
    if (nn_vdot(3, a, b) != 32.0f) return 1;
    if (!nn_strerror(NN_ERR_SHAPE)) return 1;
#ifdef EXPECT_SCALAR
    if (nn_get_backend() != NN_BACKEND_SCALAR || nn_backend_available(NN_BACKEND_AVX2) ||
        nn_backend_available(NN_BACKEND_AVX512) || nn_backend_available(NN_BACKEND_NEON) ||
        nn_backend_available(NN_BACKEND_WASM))
        return 1;
#endif
    return 0;
}
EOF
cat >"$TMP/static.c" <<'EOF'
#define NN_STATIC
#define NN_IMPLEMENTATION
#include "nn.h"
int main(void) { return 0; }
EOF
cat >"$TMP/tu1.c" <<'EOF'
#define NN_IMPLEMENTATION
#include "nn.h"
int other_tu(void);
int main(void) { return other_tu(); }
EOF
cat >"$TMP/tu2.c" <<'EOF'
#include "nn.h"
int other_tu(void);
int other_tu(void) {
    float a[4] = {1, 2, 3, 4}, y[4];
    nn_rng r;
    nn_rng_seed(&r, 1);
    (void)nn_rng_u32(&r);
    if (nn_set_backend(NN_BACKEND_AUTO) != NN_OK || nn_get_backend() == NN_BACKEND_AUTO) return 1;
    nn_vadd(4, a, a, y);
    if (y[3] != 8.0f || nn_vsum(4, a) != 10.0f) return 1;
    return nn_strerror(NN_OK) ? 0 : 1;
}
EOF

# build_check NAME COMPILER ARGS... : compile (and link) then run the program
build_check() {
    name=$1
    shift
    rm -f "$TMP/a.out"
    if "$@" -o "$TMP/a.out" >"$TMP/log" 2>&1 && "$TMP/a.out" >>"$TMP/log" 2>&1; then
        pass "$name"
    else
        fail "$name"
    fi
}

for cc in gcc clang; do
    if ! have $cc; then
        skip "$cc: not found (5 checks)"
        S=$((S + 4))
        continue
    fi
    build_check "$cc $WARN" $cc -O2 $WARN -I"$ROOT" "$TMP/main.c" -lm
    # -O3 inlines more and warns where -O2 did not (maybe-uninitialized)
    build_check "$cc -O3 $WARN" $cc -O3 $WARN -I"$ROOT" "$TMP/main.c" -lm
    build_check "$cc $WARN -DNN_NO_SIMD" $cc -O2 $WARN -DNN_NO_SIMD -DEXPECT_SCALAR -I"$ROOT" "$TMP/main.c" -lm
    build_check "$cc $WARN -DNN_STATIC (nothing used)" $cc -O2 $WARN -I"$ROOT" "$TMP/static.c" -lm
    build_check "$cc $WARN two translation units" $cc -O2 $WARN -I"$ROOT" "$TMP/tu1.c" "$TMP/tu2.c" -lm
done
# threads compiled out: builds, runs, and references no pthread symbol
if have gcc; then
    build_check "gcc $WARN -DNN_NO_THREADS" gcc -O2 $WARN -DNN_NO_THREADS -I"$ROOT" "$TMP/main.c" -lm
    if [ -f "$TMP/a.out" ] && nm -u "$TMP/a.out" 2>/dev/null | grep -q pthread; then
        fail "-DNN_NO_THREADS references pthread symbols: $(nm -u "$TMP/a.out" | grep pthread | tr '\n' ' ')"
    fi
fi
for cxx in g++ clang++; do
    if ! have $cxx; then
        skip "$cxx: not found"
        continue
    fi
    build_check "$cxx -x c++ -Wall -Wextra -Werror" $cxx -O2 -x c++ -Wall -Wextra -Werror -I"$ROOT" "$TMP/main.c" -x none -lm
done

# ---- the test binary ---------------------------------------------------------
echo "---- $BIN"
{
    "$BIN"
    echo $? >"$TMP/rc"
} 2>&1 | tee "$TMP/out"
rc=$(cat "$TMP/rc" 2>/dev/null || echo 99)
counts=$(tail -n 1 "$TMP/out" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed, \([0-9][0-9]*\) skipped$/\1 \2 \3/p')
if [ -z "$counts" ]; then
    F=$((F + 1))
    echo "FAIL $BIN did not finish (exit status $rc, no closing line)"
else
    set -- $counts
    P=$((P + $1))
    F=$((F + $2))
    S=$((S + $3))
    if [ "$2" -eq 0 ] && [ "$rc" -ne 0 ]; then
        F=$((F + 1))
        echo "FAIL $BIN exited with status $rc but reported no failure"
    fi
fi

# ---- the suite again, every parallel region split as finely as it goes -------
# (SGEMM and conv work of any size on the pool, element-wise work in chunks
# of 64) and 3 threads: the whole suite through the parallel paths
if have "${CC:-cc}"; then
    echo "---- the suite with every parallel threshold at its minimum, NN_THREADS=3"
    if "${CC:-cc}" -O2 $WARN -DNN__GEMM_PAR_MIN=0 -DNN__PAR_ELEMS=64 -I"$ROOT" -o "$TMP/run_tests_fine" \
        "$ROOT"/tests/test_*.c -lm >"$TMP/log" 2>&1; then
        NN_THREADS=3 "$TMP/run_tests_fine" >"$TMP/fine" 2>&1
        echo $? >"$TMP/rc"
        grep -E "^(FAIL|SKIP)" "$TMP/fine" | grep -v "backend not available" | head -20
        counts=$(tail -n 1 "$TMP/fine" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed, \([0-9][0-9]*\) skipped$/\1 \2 \3/p')
        tail -n 1 "$TMP/fine"
        if [ -z "$counts" ]; then
            F=$((F + 1))
            echo "FAIL fine-grained suite did not finish"
        else
            set -- $counts
            P=$((P + $1))
            F=$((F + $2))
            S=$((S + $3))
        fi
    else
        fail "fine-grained build"
    fi
fi

# ---- NN_BACKEND environment variable (one test each) --------------------------
env_check() { # VALUE EXPECT
    if NN_BACKEND=$1 "$BIN" --expect-backend "$2" >"$TMP/log" 2>&1; then
        P=$((P + 1))
        echo "ok   NN_BACKEND=$1: nn_set_backend(AUTO) selects $2"
    else
        F=$((F + 1))
        echo "FAIL NN_BACKEND=$1: nn_set_backend(AUTO) does not select $2"
        sed -n '1,10s/^/     | /p' "$TMP/log"
    fi
}
env_check scalar scalar
env_check no-such-backend best

echo "$P passed, $F failed, $S skipped"
[ "$F" -eq 0 ]
