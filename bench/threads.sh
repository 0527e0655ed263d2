#!/usr/bin/env bash
# bench/threads.sh - the examples on one thread against every core, side by side.
#
#   bash bench/threads.sh [ROUNDS]          (default 5; needs `make data`)
#
# Each round runs fashion_cnn (1 epoch), fashion_mlp (3 epochs) and char_rnn (500 steps, its
# defaults) with --threads 1 and then --threads N (N = nn_cpu_cores(), every core of the
# affinity mask), unpinned, and prints their RESULT fields and the cache-line round trip between
# two threads before and after (build/region_cost: 80-110 ns when the cores are close; a host
# that runs the vCPUs on distant cores shows 400+ ns, and small regions lose there).  The end:
# medians of each figure and the ratio N threads / 1 thread.
set -u
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
D=data/fashion-mnist
make -s examples >/dev/null || exit 1
mkdir -p build
cc -O2 -o build/region_cost bench/amdahl.c -lm || exit 1
N=$(nproc)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), family $(lscpu | sed -n 's/^CPU family: *//p') model $(lscpu | sed -n 's/^Model: *//p'), $N cores; nn.h $(git rev-parse --short HEAD 2>/dev/null)"
OUT=build/threads_runs.txt
: >"$OUT"
rt() { build/region_cost 2>&1 >/dev/null | sed -n 's/.*: //p'; }
for r in $(seq 1 "$ROUNDS"); do
    echo "-- round $r (round trip $(rt))"
    for t in 1 "$N"; do
        line=$(build/fashion_cnn --data $D --epochs 1 --threads $t 2>&1 | grep '^RESULT')
        echo "cnn  threads=$t $line" | tee -a "$OUT" | cut -c1-140
    done
    for t in 1 "$N"; do
        line=$(build/fashion_mlp --data $D --epochs 3 --threads $t 2>&1 | grep '^RESULT')
        echo "mlp  threads=$t $line" | tee -a "$OUT" | cut -c1-140
    done
    for t in 1 "$N"; do
        line=$(build/char_rnn --steps 500 --threads $t 2>&1 | grep '^RESULT')
        echo "lstm threads=$t $line" | tee -a "$OUT" | cut -c1-140
    done
    echo "   (round trip after: $(rt))"
done
med() { # model threads field
    grep "^$1 *threads=$2 " "$OUT" | grep -o " $3=[0-9.]*" | cut -d= -f2 | sort -g |
        awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "nan"}'
}
echo
echo "| workload | 1 thread | $N threads | $N / 1 |"
echo "|---|---|---|---|"
for row in "cnn train_s CNN-epoch-s" "cnn infer_s CNN-predict-10k-s" "mlp s_per_epoch MLP-epoch-s" "lstm ms_per_step LSTM-step-ms"; do
    set -- $row
    a=$(med "$1" 1 "$2")
    b=$(med "$1" "$N" "$2")
    echo "| $3 | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", b/a}') |"
done
echo
echo "accuracy / bits per char, 1 vs $N threads (must be equal): cnn $(med cnn 1 test_acc) / $(med cnn "$N" test_acc), mlp $(med mlp 1 test_acc) / $(med mlp "$N" test_acc), lstm $(med lstm 1 val_bpc) / $(med lstm "$N" val_bpc)"
