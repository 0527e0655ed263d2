#!/bin/sh
# bench/st_load.sh - loading a 100 MB safetensors file against reading it
# with cat, page cache warm (issue 11's target: <= 2x).  bench/st_load.c
# writes build/st_100mb_{dense,embedding}.safetensors (25.2 M F32
# parameters each) and times, interleaved, read() as cat does and
# nn_load_safetensors into the compiled model (and nn_load, which also
# builds the model); then cat itself (mean of 10 runs, process included).
#   sh bench/st_load.sh            every core (NN_THREADS=1 for one)
set -e
cd "$(dirname "$0")/.."
mkdir -p build
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores); threads: ${NN_THREADS:-all}"
${CC:-cc} -O2 -I. -o build/st_load bench/st_load.c -lm
build/st_load build 21
for f in build/st_100mb_dense.safetensors build/st_100mb_embedding.safetensors; do
    t0=$(date +%s%N)
    for i in 1 2 3 4 5 6 7 8 9 10; do cat $f >/dev/null; done
    t1=$(date +%s%N)
    echo "cat $f > /dev/null: $(awk "BEGIN{printf \"%.1f\", ($t1 - $t0) / 1e7}") ms each (mean of 10, the process included)"
done
