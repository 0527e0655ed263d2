#!/usr/bin/env bash
# nn.h compiled to WebAssembly against TensorFlow.js in node (issue 13's target: nn.h's wasm predict of
# the 10k Fashion-MNIST test images at batch 32 <= 0.25x of tfjs's wasm backend), the seed CNN of
# examples/fashion_cnn.c, one thread, one core.  Outside CI; run by hand:
#
#   bash bench/tfjs_compare.sh          (after `make data`; prints a markdown table, also build/tfjs_compare.md)
#
# What it does:
#   1. npm-installs @tensorflow/tfjs@$TFJS and @tensorflow/tfjs-backend-wasm@$TFJS (4.22) into
#      build/tfjs/node_modules (build/ is gitignored) unless they are already there -- the only step
#      that uses the network (the npm registry); nothing downloads while measuring.
#   2. builds examples/fashion_cnn.c three times: native (cc -O2, as `make examples`), and with emcc
#      for node: -O2 -msimd128 and -O2 scalar, -sALLOW_MEMORY_GROWTH=1 -sNODERAWFS=1 -sEXIT_RUNTIME=1
#      (NODE_PATH=/usr/share/nodejs for emcc 3.1.6 under node 20; see TRAPS.md, WebAssembly).  nn.h
#      picks its best backend in each (a SIMD128 "wasm" backend once it exists; scalar before).
#   3. runs, each pinned with taskset -c $CPU:
#      - nn.h: fashion_cnn --epochs 1 --limit $LIMIT --threads 1 (trains briefly on the first $LIMIT
#        images: the weights do not matter for speed), then its infer_s: the 10k test images at batch
#        32 (nn_predict_dataset); native also with --backend avx2 (the Chromium target's reference);
#        train step = train_s / ceil($LIMIT / 32) (the epoch's mean, batch 32);
#      - tfjs (bench/tfjs_cnn.js): wasm backend (XNNPACK, SIMD128, one thread) on the 10k test images
#        at batch 32, and a training step if it can (4.22's cannot: no Conv2DBackpropFilter); cpu backend
#        (plain JavaScript) on the first $CPU_IMAGES test images scaled to 10k, and $CPU_STEPS
#        training steps (about 10 s each) -- CPU_IMAGES=0 skips the cpu backend.
#      every node run with `node --no-experimental-fetch` (emcc 3.1.6's loader and node's fetch).
# Environment: DATA (data/fashion-mnist), CPU (0), LIMIT (2000), CPU_IMAGES (320), CPU_STEPS (2),
# TFJS (4.22), NODE (node), CC (cc), EMCC (emcc), OUT (build/tfjs).  Logs: $OUT/<row>.{out,err}.
# Figures on a machine shared with other work are provisional: run it twice.
set -u
cd "$(dirname "$0")/.."

DATA=${DATA:-data/fashion-mnist}
CPU=${CPU:-0}
LIMIT=${LIMIT:-2000}
CPU_IMAGES=${CPU_IMAGES:-320}
CPU_STEPS=${CPU_STEPS:-2}
TFJS=${TFJS:-4.22}
NODE=${NODE:-node}
CC=${CC:-cc}
EMCC=${EMCC:-emcc}
OUT=${OUT:-build/tfjs}
EMFLAGS=(-O2 -sALLOW_MEMORY_GROWTH=1 -sNODERAWFS=1 -sEXIT_RUNTIME=1)

die() { echo "tfjs_compare.sh: $*" >&2; exit 1; }
for v in LIMIT CPU_IMAGES CPU_STEPS CPU; do
    case ${!v} in ''|*[!0-9]*) die "$v must be a whole number, not '${!v}'" ;; esac
done
[ "$LIMIT" -ge 32 ] || die "LIMIT must be >= 32 (one batch)"
command -v "$NODE" >/dev/null || die "no node ($NODE)"
command -v "$EMCC" >/dev/null || die "no emcc: apt-get install -y --no-install-recommends emscripten"
command -v npm >/dev/null || die "no npm: apt-get install -y --no-install-recommends npm"
[ -s "$DATA/t10k-images-idx3-ubyte" ] || die "no Fashion-MNIST in $DATA: make data"
mkdir -p "$OUT"

# 1. tfjs, installed once into $OUT/node_modules
have_tfjs() {
    local p
    for p in tfjs tfjs-backend-wasm; do
        grep -q "\"version\": \"$TFJS" "$OUT/node_modules/@tensorflow/$p/package.json" 2>/dev/null || return 1
    done
}
if ! have_tfjs; then
    [ -f "$OUT/package.json" ] || echo '{ "name": "nnh-tfjs-bench", "private": true }' > "$OUT/package.json"
    echo ">>> npm install @tensorflow/tfjs@$TFJS @tensorflow/tfjs-backend-wasm@$TFJS (into $OUT)" >&2
    (cd "$OUT" && npm install --no-audit --no-fund --ignore-scripts \
        "@tensorflow/tfjs@$TFJS" "@tensorflow/tfjs-backend-wasm@$TFJS" >&2) || die "npm install failed"
    have_tfjs || die "npm installed something other than tfjs $TFJS"
fi

# 2. nn.h builds
echo ">>> building fashion_cnn: native and emcc (simd128, scalar)" >&2
"$CC" -O2 -o "$OUT/fashion_cnn_native" examples/fashion_cnn.c -lm || die "native build failed"
NODE_PATH=/usr/share/nodejs "$EMCC" "${EMFLAGS[@]}" -msimd128 -o "$OUT/fashion_cnn_simd128.js" examples/fashion_cnn.c \
    || die "emcc -msimd128 build failed"
NODE_PATH=/usr/share/nodejs "$EMCC" "${EMFLAGS[@]}" -o "$OUT/fashion_cnn_scalar.js" examples/fashion_cnn.c \
    || die "emcc scalar build failed"

# value KEY FILE: KEY=value from the last RESULT line of FILE (empty if absent)
value() {
    grep '^RESULT ' "$2" 2>/dev/null | tail -n 1 | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}
row() {  # row NAME CMD...: stdout to $OUT/NAME.out, stderr to $OUT/NAME.err
    local n=$1; shift
    echo ">>> $*" >&2
    /usr/bin/time -f '%e %U %S' -o "$OUT/$n.time" "$@" > "$OUT/$n.out" 2> "$OUT/$n.err" ||
        { echo "tfjs_compare.sh: $n failed (exit $?), see $OUT/$n.err" >&2; tail -n 3 "$OUT/$n.err" >&2; }
}

# 3. measurements, one at a time, pinned
NN_ARGS=(--epochs 1 --limit "$LIMIT" --threads 1 --data "$DATA")
PIN=(taskset -c "$CPU")
row nn_native "${PIN[@]}" "$OUT/fashion_cnn_native" "${NN_ARGS[@]}"
row nn_native_avx2 "${PIN[@]}" "$OUT/fashion_cnn_native" "${NN_ARGS[@]}" --backend avx2
row nn_wasm_simd128 "${PIN[@]}" "$NODE" --no-experimental-fetch "$OUT/fashion_cnn_simd128.js" "${NN_ARGS[@]}"
row nn_wasm_scalar "${PIN[@]}" "$NODE" --no-experimental-fetch "$OUT/fashion_cnn_scalar.js" "${NN_ARGS[@]}"
TF_ARGS=(--modules "$OUT/node_modules" --data "$DATA" --batch 32)
row tfjs_wasm "${PIN[@]}" "$NODE" --no-experimental-fetch bench/tfjs_cnn.js "${TF_ARGS[@]}" --backend wasm \
    --images 10000 --train-steps 3
if [ "$CPU_IMAGES" -gt 0 ]; then
    row tfjs_cpu "${PIN[@]}" "$NODE" --no-experimental-fetch bench/tfjs_cnn.js "${TF_ARGS[@]}" --backend cpu \
        --images "$CPU_IMAGES" --train-steps "$CPU_STEPS"
fi

# 4. the table
tf_wasm=$(value predict_s "$OUT/tfjs_wasm.out")
ratio() {  # A / B to two decimals (empty if either is missing)
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) exit; printf "%.2f", a / b }'
}
# share NAME: the process's CPU time over its wall time; well below 1 = the core was shared, the row
# is not clean (the whole run: loading and training included)
share() {
    awk '{ if ($1 > 0) printf "%.2f", ($2 + $3) / $1 }' "$OUT/$1.time" 2>/dev/null
}
rows=()
status=0
nn_row() {  # nn_row NAME RUNTIME
    local f="$OUT/$1.out" inf tr be step
    inf=$(value infer_s "$f"); tr=$(value train_s "$f"); be=$(value backend "$f")
    if [ -z "$inf" ]; then
        rows+=("| nn.h | $2 | | failed, see $OUT/$1.err | | | |"); status=1; return
    fi
    step=$(awk -v t="$tr" -v n="$LIMIT" 'BEGIN { printf "%.2f", 1e3 * t / int((n + 31) / 32) }')
    rows+=("| nn.h | $2 | $be | $inf | $step | $(ratio "$inf" "$tf_wasm") | $(share "$1") |")
}
tf_row() {  # tf_row NAME RUNTIME
    local f="$OUT/$1.out" inf est="" tr
    inf=$(value predict_10k_s "$f")
    if [ -n "$inf" ]; then est=" (from $(value images "$f") images)"; else inf=$(value predict_s "$f"); fi
    if [ -z "$inf" ]; then
        rows+=("| tfjs | $2 | | failed, see $OUT/$1.err | | | |"); status=1; return
    fi
    tr=$(value train_step_ms "$f")
    [ -z "$tr" ] && tr="cannot: $(value train_error "$f" | tr '_' ' ' | tr -d '"')"
    rows+=("| tfjs $(value version "$f") | $2 | $(value backend "$f")$([ "$(value simd "$f")" = 1 ] && echo ", SIMD"), $(value threads "$f") thread | $inf$est | $tr | $(ratio "$inf" "$tf_wasm") | $(share "$1") |")
}
nn_row nn_native "native (cc -O2)"
nn_row nn_native_avx2 "native (cc -O2), --backend avx2"
nn_row nn_wasm_simd128 "wasm (emcc -O2 -msimd128), node"
nn_row nn_wasm_scalar "wasm (emcc -O2), node"
tf_row tfjs_wasm "wasm, node"
[ "$CPU_IMAGES" -gt 0 ] && tf_row tfjs_cpu "JavaScript, node"

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
fam=$(lscpu | sed -n 's/^CPU family: *//p' | head -n 1)
mod=$(lscpu | sed -n 's/^Model: *//p' | head -n 1)
simd=$(value infer_s "$OUT/nn_wasm_simd128.out")
{
    echo
    echo "## nn.h in WebAssembly vs TensorFlow.js, the seed CNN, one thread (taskset -c $CPU)"
    echo
    echo "CPU: $cpu (family $fam, model $mod); node $("$NODE" --version); $(NODE_PATH=/usr/share/nodejs "$EMCC" --version | head -n 1 | sed 's/ (Emscripten[^)]*)//; s/ ()$//'); tfjs $(value version "$OUT/tfjs_wasm.out")"
    echo
    echo "Predict: the 10k Fashion-MNIST test images at batch 32, probabilities read back. Train step: batch 32," \
        "Adam, cross-entropy (nn.h: the mean over one epoch of $LIMIT images; tfjs: the median of a few steps)."
    echo
    echo "| library | runtime | backend | predict 10k, batch 32, s | train step, ms | predict / tfjs wasm | cpu/wall |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Target (issue 13): nn.h wasm predict <= 0.25x of tfjs wasm: $(ratio "$simd" "$tf_wasm")x" \
        "(nn.h wasm SIMD128 build, backend $(value backend "$OUT/nn_wasm_simd128.out"))." \
        "nn.h wasm SIMD128 over the scalar build: predict $(ratio "$(value infer_s "$OUT/nn_wasm_scalar.out")" "$simd")x."
    echo "cpu/wall: the process's CPU time over its wall time; well below 1.00 means the core was shared and the" \
        "row is not clean (figures on a busy machine are provisional)."
} | tee build/tfjs_compare.md
exit $status
