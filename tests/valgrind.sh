#!/bin/sh
# tests/valgrind.sh - `make test-valgrind`: memcheck over a subset of the suite and short runs of
# two examples, with the thread pool on (NN_THREADS=2) and the AVX2 backend (valgrind has no
# AVX-512).  Any memcheck error or definite leak fails the run; the workers' thread stacks stay
# allocated for the life of the process ("possibly lost" in the report) and do not.
# Closing line: "N passed, N failed, N skipped".
BIN=${1:-build/run_tests_vg}
VG="valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite"
export NN_BACKEND=avx2 NN_THREADS=2
P=0
F=0
S=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nn_vg.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT INT TERM
for g in platform errors io alloc compat inputgrad safetensors; do
    $VG "$BIN" --only $g >"$TMP/out" 2>&1
    rc=$?
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$TMP/out" | tail -n 1)
    if [ $rc -ne 0 ] || [ -z "$counts" ]; then
        F=$((F + 1))
        echo "FAIL valgrind: group $g (exit status $rc)"
        grep -v '^ok' "$TMP/out" | head -40
    else
        set -- $counts
        P=$((P + $1))
        F=$((F + $3))
        S=$((S + $5))
        echo "ok   valgrind: group $g: $counts"
    fi
done
ex() { # NAME ARGS...: an example's short run
    name=$1
    shift
    if $VG "$@" >"$TMP/out" 2>&1; then
        P=$((P + 1))
        echo "ok   valgrind: $name"
    else
        F=$((F + 1))
        echo "FAIL valgrind: $name"
        tail -40 "$TMP/out"
    fi
}
ex "xor" build/xor
if [ -f data/fashion-mnist/train-images-idx3-ubyte ]; then
    ex "fashion_mlp, 1000 images, 1 epoch" build/fashion_mlp --limit 1000 --epochs 1
else
    S=$((S + 1))
    echo "SKIP valgrind: the Fashion-MNIST examples (no data: make data)"
fi
echo "$P passed, $F failed, $S skipped"
[ "$F" -eq 0 ]
