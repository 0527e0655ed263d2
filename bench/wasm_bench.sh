#!/bin/sh
# bench/wasm_bench.sh - `make bench-wasm`: SIMD128 against scalar in node.
#
#   sh bench/wasm_bench.sh build/wasm_bench_simd.js build/wasm_bench_scalar.js
#
# Runs the two emcc builds of bench/wasm_bench.c (pinned to core 0 when
# taskset exists), then prints the markdown table (also build/bench_wasm.md):
# the scalar build (no -msimd128, what a browser without SIMD128 runs), the
# scalar backend of the SIMD build (its plain C auto-vectorised by clang)
# and the wasm backend, with the ratio wasm / scalar build.
SIMD=${1:-build/wasm_bench_simd.js}
SCALAR=${2:-build/wasm_bench_scalar.js}
NODE=${NODE:-node}
OUT=${OUT:-build/bench_wasm.md}
PIN=""
command -v taskset >/dev/null 2>&1 && PIN="taskset -c 0"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nn_wasm_bench.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT INT TERM
$PIN $NODE "$SCALAR" >"$TMP/scalar" || exit 1
$PIN $NODE "$SIMD" >"$TMP/simd" || exit 1
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
{
    echo "WebAssembly in node $($NODE --version), one thread, CPU: ${cpu:-unknown}; medians of 5 (\`make bench-wasm\`)"
    echo
    echo "| | scalar build | SIMD build, scalar backend | SIMD build, wasm backend | wasm / scalar build |"
    echo "|---|---|---|---|---|"
    awk '
        FNR == 1 { f++ }
        $1 == "ROW" {
            k = $2
            if (!(k in unit)) { order[n++] = k; unit[k] = $5 }
            if (f == 1) sb[k] = $4
            else if ($3 == "scalar") ss[k] = $4
            else w[k] = $4
        }
        END {
            for (i = 0; i < n; i++) {
                k = order[i]
                name = k
                sub(/^sgemm_/, "SGEMM ", name)
                if (k ~ /^sgemm_/) name = name " (" unit[k] ")"
                else if (k == "cnn_step") name = "CNN training step, batch 32 (" unit[k] ")"
                else if (k == "cnn_predict") name = "CNN predict, 32 images (" unit[k] ")"
                r = (unit[k] == "ms") ? sb[k] / w[k] : w[k] / sb[k]
                printf "| %s | %s | %s | %s | %.1fx |\n", name, sb[k], ss[k], w[k], r
            }
        }' "$TMP/scalar" "$TMP/simd"
} | tee "$OUT"
