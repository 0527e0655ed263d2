#!/usr/bin/env bash
# bench/ab.sh - A/B of nn.h against an earlier revision: same results, and speed.
#
#   bash bench/ab.sh [BASE_REV] [PAIRS]        (defaults: HEAD~1, 5)
#   make ab [AB_BASE=rev] [AB_PAIRS=n]
#
# Builds build/ab/{base,new}/{fashion_cnn,fashion_mlp,char_rnn} with each example's own one-line
# command (cc -O2 ... -lm): BASE_REV's nn.h and examples against the working tree's, then:
#  1. results: each model trained by both builds (scalar backend: CNN on 3000 images, the char LSTM
#     60 steps; the best backend: CNN and MLP one epoch, GRU 60 steps), the saved parameters
#     compared bit for bit (build/ab/cmp, which loads both files with the working tree's nn.h);
#  2. speed: PAIRS back-to-back pairs, order alternating, pinned to core 0 (taskset -c 0), of the
#     CNN epoch (train_s), the MLP epoch and the char-LSTM step (ms_per_step, char_rnn defaults,
#     500 steps), printing each pair and the median of new/base.  One thread on both sides: the
#     pairs run with NN_THREADS=1, and with --threads 1 on both builds when BASE_REV's example
#     source has the flag (grep; an older base would reject it as an unknown flag).
# Needs `make data` (Fashion-MNIST) and /usr/share/common-licenses (char_rnn's default text).
set -u
cd "$(dirname "$0")/.."
BASE=${1:-HEAD~1}
PAIRS=${2:-5}
OUT=build/ab
mkdir -p "$OUT/base/examples" "$OUT/new"
# each side builds its own revision's examples (the base's may predate a flag)
rm -rf "$OUT/base/examples" && mkdir -p "$OUT/base/examples/common"
git show "$BASE:nn.h" > "$OUT/base/nn.h" || exit 1
for f in $(git ls-tree --name-only "$BASE" examples/common/); do
    git show "$BASE:$f" > "$OUT/base/$f" || exit 1
done
EX="fashion_cnn fashion_mlp char_rnn"
for e in $EX; do
    git show "$BASE:examples/$e.c" > "$OUT/base/examples/$e.c" || exit 1
    (cd "$OUT/base" && cc -O2 -o "$e" "examples/$e.c" -lm) || exit 1
    cc -O2 -o "$OUT/new/$e" "examples/$e.c" -lm || exit 1
done
cat > "$OUT/cmp.c" <<'EOC'
#define NN_IMPLEMENTATION
#include "nn.h"
#include <stdio.h>
#include <string.h>
/* cmp A B: do two model files hold bit-identical parameters and buffers? */
int main(int argc, char **argv) {
    nn_model *a, *b;
    size_t na, nb, i, diff = 0;
    float *pa, *pb;
    if (argc != 3 || nn_load(&a, argv[1]) != NN_OK || nn_load(&b, argv[2]) != NN_OK) {
        printf("cannot load\n");
        return 2;
    }
    pa = nn_model_params(a, &na);
    pb = nn_model_params(b, &nb);
    for (i = 0; i < na && na == nb; i++) diff += memcmp(pa + i, pb + i, 4) != 0;
    printf("%lu parameters, %lu differ%s\n", (unsigned long)na, (unsigned long)diff, na == nb ? "" : " (counts differ)");
    return diff || na != nb;
}
EOC
cc -O2 -I. -o "$OUT/cmp" "$OUT/cmp.c" -lm || exit 1
# --threads 1 for the pinned pairs, per example, when the base's example takes it
declare -A THR
for e in $EX; do
    THR[$e]=""
    grep -q -- "--threads" "$OUT/base/examples/$e.c" && THR[$e]="--threads 1"
done

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), family $(lscpu | sed -n 's/^CPU family: *//p') model $(lscpu | sed -n 's/^Model: *//p') ($(nproc) cores); base $(git rev-parse --short "$BASE"), new $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- nn.h || echo '+working tree')"
echo
echo "## Same results (saved parameters, bit for bit)"
same=0
result() { # result NAME FLAGS...
    local name=$1; shift
    for v in base new; do "$OUT/$v/$@" --save "$OUT/$v.$name.nn" > "$OUT/$v.$name.out" 2>/dev/null; done
    printf '%-28s %s\n' "$name" "$("$OUT/cmp" "$OUT/base.$name.nn" "$OUT/new.$name.nn" || echo FAIL)"
    "$OUT/cmp" "$OUT/base.$name.nn" "$OUT/new.$name.nn" > /dev/null || same=1
}
result cnn_scalar fashion_cnn --backend scalar --epochs 1 --limit 3000
result lstm_scalar char_rnn --backend scalar --steps 60 --eval-every 1000 --sample 0
result cnn_best fashion_cnn --epochs 1
result mlp_best fashion_mlp --epochs 1
result gru_best char_rnn --cell gru --steps 60 --eval-every 1000 --sample 0

echo
echo "## Speed: $PAIRS pairs, pinned to core 0, order alternating"
val() { grep '^RESULT ' "$1" | tail -1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }
speed() { # speed NAME KEY PROGRAM FLAGS...
    local name=$1 key=$2 prog=$3; shift 3
    local i ratios=() line=""
    for i in $(seq 1 "$PAIRS"); do
        local order="base new"
        [ $((i % 2)) -eq 0 ] && order="new base"
        # shellcheck disable=SC2086 # THR is "" or "--threads 1"
        for v in $order; do
            NN_THREADS=1 taskset -c 0 "$OUT/$v/$prog" ${THR[$prog]} "$@" > "$OUT/$v.speed.out" 2>/dev/null
        done
        local b n
        b=$(val "$OUT/base.speed.out" "$key")
        n=$(val "$OUT/new.speed.out" "$key")
        line="$line $b/$n"
        ratios+=("$(awk -v b="$b" -v n="$n" 'BEGIN{printf "%.4f", n/b}')")
    done
    local med
    med=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}')
    printf '%-16s %-12s base/new:%s  median new/base %.3f%s\n' "$name" "$key" "$line" "$med" \
        "$([ -n "${THR[$prog]}" ] && echo "  (${THR[$prog]})")"
}
speed cnn_epoch train_s fashion_cnn --epochs 1
speed mlp_epoch s_per_epoch fashion_mlp --epochs 1
speed lstm_step ms_per_step char_rnn --steps 500 --eval-every 10000 --sample 0
exit $same
