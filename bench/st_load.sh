#!/bin/sh
# bench/st_load.sh - loading a 100 MB safetensors file against reading it
# with cat, page cache warm (issue 11's target: <= 2x).  Writes
# build/st_100mb.safetensors (dense 1024-4096-4096-1024, 25.2 M F32
# parameters), then: cat itself (mean of 10 runs, the process included),
# and bench/st_load.c (read() as cat does, nn_load_safetensors into the
# compiled model, interleaved; nn_load, which also builds the model).
#   sh bench/st_load.sh            every core (NN_THREADS=1 for one)
set -e
cd "$(dirname "$0")/.."
mkdir -p build
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores); threads: ${NN_THREADS:-all}"
${CC:-cc} -O2 -I. -o build/st_load bench/st_load.c -lm
build/st_load build/st_100mb.safetensors 1 >/dev/null # write the file
t0=$(date +%s%N)
for i in 1 2 3 4 5 6 7 8 9 10; do cat build/st_100mb.safetensors >/dev/null; done
t1=$(date +%s%N)
echo "cat build/st_100mb.safetensors > /dev/null: $(awk "BEGIN{printf \"%.1f\", ($t1 - $t0) / 1e7}") ms each (mean of 10, the process included)"
build/st_load build/st_100mb.safetensors 21
