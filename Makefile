# nn.h - build, test and benchmark (C99; nn.h runs on every core unless NN_THREADS says otherwise).
CC      ?= cc
CXX     ?= c++
CFLAGS  ?= -O2
WARN     = -std=c99 -Wall -Wextra -pedantic
BUILD    = build
ARM_CC  ?= aarch64-linux-gnu-gcc
QEMU    ?= qemu-aarch64

.PHONY: test-i386 test-wasm bench-wasm amdahl test-win32 test-valgrind all test test-asan test-asan-clang test-tsan test-arm test-arm-clang bench bench-build demo examples clean

all: $(BUILD)/run_tests examples

$(BUILD):
	mkdir -p $(BUILD)

TEST_SRC = $(wildcard tests/test_*.c)

$(BUILD)/run_tests: $(TEST_SRC) tests/tt.h tests/fixtures/portable.h nn.h | $(BUILD)
	$(CC) $(CFLAGS) $(WARN) -Werror -I. -o $@ $(TEST_SRC) -lm

# README's test command.  tests/run.sh runs the build checks (gcc/clang
# -Werror, C++, NN_STATIC, NN_NO_SIMD, two translation units) and the test
# binary, and prints one closing line "N passed, N failed, N skipped".
test: $(BUILD)/run_tests
	sh tests/run.sh $(BUILD)/run_tests

$(BUILD)/run_tests_asan: $(TEST_SRC) tests/tt.h tests/fixtures/portable.h nn.h | $(BUILD)
	$(CC) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer $(WARN) -I. -o $@ $(TEST_SRC) -lm

test-asan: $(BUILD)/run_tests_asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/run_tests_asan

# clang's UBSan checks more (e.g. pointer arithmetic on out-of-range offsets)
$(BUILD)/run_tests_asan_clang: $(TEST_SRC) tests/tt.h tests/fixtures/portable.h nn.h | $(BUILD)
	clang -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer $(WARN) -I. -o $@ $(TEST_SRC) -lm

test-asan-clang: $(BUILD)/run_tests_asan_clang
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/run_tests_asan_clang

# ThreadSanitizer over the whole suite: the backend choice, separate models
# trained from separate threads (tests/test_threads.c), the first kernel call
# from two threads (tests/test_main.c).
$(BUILD)/run_tests_tsan: $(TEST_SRC) tests/tt.h tests/fixtures/portable.h nn.h | $(BUILD)
	clang -O1 -g -fsanitize=thread -fno-omit-frame-pointer $(WARN) -I. -o $@ $(TEST_SRC) -lm

test-tsan: $(BUILD)/run_tests_tsan
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 $(BUILD)/run_tests_tsan

# NEON for real: cross-compiled, run under qemu with small sizes (NN_TEST_SMALL),
# twice: on qemu's default CPU (max: it has the dot product, so the int8 GEMM
# runs sdot) and on a Cortex-A57 (ARMv8.0, no dot product: the widening int8
# kernel).  Never time anything under qemu.
$(BUILD)/run_tests_arm: $(TEST_SRC) tests/tt.h tests/fixtures/portable.h nn.h | $(BUILD)
	$(ARM_CC) -O2 $(WARN) -Werror -DNN_TEST_SMALL -I. -o $@ $(TEST_SRC) -lm

test-arm: $(BUILD)/run_tests_arm
	NN_THREADS=2 $(QEMU) -L /usr/aarch64-linux-gnu $(BUILD)/run_tests_arm
	NN_THREADS=2 $(QEMU) -cpu cortex-a57 -L /usr/aarch64-linux-gnu $(BUILD)/run_tests_arm

# The kernel tables and int8 groups built by clang (its target attribute for
# the dot product is not gcc's), on both CPUs.
$(BUILD)/run_tests_arm_clang: $(TEST_SRC) tests/tt.h tests/fixtures/portable.h nn.h | $(BUILD)
	clang --target=aarch64-linux-gnu -O2 $(WARN) -Werror -DNN_TEST_SMALL -I. -o $@ $(TEST_SRC) -lm

test-arm-clang: $(BUILD)/run_tests_arm_clang
	for cpu in max cortex-a57; do for g in tables int8; do \
		NN_THREADS=2 $(QEMU) -cpu $$cpu -L /usr/aarch64-linux-gnu $(BUILD)/run_tests_arm_clang --only $$g || exit 1; \
	done; done

# 32-bit x86 (Debian: gcc-multilib): size_t and long are 32 bits.  The suite
# runs with SSE2 arithmetic (-msse2 -mfpmath=sse, as on every x86 CPU since
# 2003): the default i386 code uses x87, whose excess precision
# (FLT_EVAL_METHOD 2) keeps the scalar twins' intermediates in 80 bits, so
# the SIMD-against-scalar checks that require identical bits cannot hold.
# The plain -m32 (x87) build is checked to compile with -Werror.
$(BUILD)/run_tests_i386: $(TEST_SRC) tests/tt.h tests/fixtures/portable.h nn.h | $(BUILD)
	$(CC) -m32 -O2 $(WARN) -Werror -I. -o $(BUILD)/run_tests_i386_x87 $(TEST_SRC) -lm
	$(CC) -m32 -msse2 -mfpmath=sse -O2 $(WARN) -Werror -I. -o $@ $(TEST_SRC) -lm

test-i386: $(BUILD)/run_tests_i386
	$(BUILD)/run_tests_i386

# WebAssembly under node (Debian: emscripten, nodejs): the suite built with
# emcc twice, with SIMD128 (the wasm backend, compared with scalar as every
# SIMD backend is) and without (scalar only).  emcc 3.1.6 under node 20
# needs NODE_PATH for its acorn; -sWASM_ASYNC_COMPILATION=0 avoids its
# loader's fetch of a file path; tests/wasm_pre.js hands the environment
# (NN_BACKEND, NN_THREADS) to getenv.  No -pthread: the pool runs on the
# calling thread and the tests that start threads skip.
EMCC       ?= emcc
NODE       ?= node
EMCC_FLAGS  = -O2 $(WARN) -Werror -I. -sALLOW_MEMORY_GROWTH=1 -sNODERAWFS=1 -sEXIT_RUNTIME=1 \
	-sWASM_ASYNC_COMPILATION=0 --pre-js tests/wasm_pre.js
$(BUILD)/run_tests_wasm.js: $(TEST_SRC) tests/tt.h tests/fixtures/portable.h tests/wasm_pre.js nn.h | $(BUILD)
	NODE_PATH=$${NODE_PATH:-/usr/share/nodejs} $(EMCC) -msimd128 $(EMCC_FLAGS) -o $@ $(TEST_SRC)
$(BUILD)/run_tests_wasm_scalar.js: $(TEST_SRC) tests/tt.h tests/fixtures/portable.h tests/wasm_pre.js nn.h | $(BUILD)
	NODE_PATH=$${NODE_PATH:-/usr/share/nodejs} $(EMCC) $(EMCC_FLAGS) -o $@ $(TEST_SRC)

test-wasm: $(BUILD)/run_tests_wasm.js $(BUILD)/run_tests_wasm_scalar.js
	@echo "---- wasm, SIMD128 build (backends scalar and wasm)"
	$(NODE) $(BUILD)/run_tests_wasm.js
	NN_BACKEND=scalar $(NODE) $(BUILD)/run_tests_wasm.js --expect-backend scalar
	NN_BACKEND=wasm $(NODE) $(BUILD)/run_tests_wasm.js --expect-backend wasm
	@echo "---- wasm, scalar build (no -msimd128)"
	$(NODE) $(BUILD)/run_tests_wasm_scalar.js
	@echo "---- wasm, the header as C++ and with NN_STATIC (-msimd128, -Werror)"
	printf '#define NN_IMPLEMENTATION\n#include "nn.h"\nint main(void){return nn_get_backend() != NN_BACKEND_WASM;}\n' \
		> $(BUILD)/wasm_main.c
	NODE_PATH=$${NODE_PATH:-/usr/share/nodejs} $(EMCC) -x c++ -O2 -msimd128 -Wall -Wextra -Werror -I. \
		-sWASM_ASYNC_COMPILATION=0 -o $(BUILD)/wasm_cpp.js $(BUILD)/wasm_main.c && $(NODE) $(BUILD)/wasm_cpp.js
	NODE_PATH=$${NODE_PATH:-/usr/share/nodejs} $(EMCC) -O2 -msimd128 $(WARN) -Werror -DNN_STATIC -I. \
		-sWASM_ASYNC_COMPILATION=0 -o $(BUILD)/wasm_static.js $(BUILD)/wasm_main.c && $(NODE) $(BUILD)/wasm_static.js

# SIMD128 against scalar in node (bench/wasm_bench.c, two emcc builds): SGEMM
# 256 and 512, the seed CNN's training step and predict at batch 32; prints
# the markdown table (build/bench_wasm.md).
BENCH_EMCC = -O2 $(WARN) -Werror -sALLOW_MEMORY_GROWTH=1 -sNODERAWFS=1 -sEXIT_RUNTIME=1 -sWASM_ASYNC_COMPILATION=0
$(BUILD)/wasm_bench_simd.js: bench/wasm_bench.c nn.h | $(BUILD)
	NODE_PATH=$${NODE_PATH:-/usr/share/nodejs} $(EMCC) -msimd128 $(BENCH_EMCC) -o $@ bench/wasm_bench.c
$(BUILD)/wasm_bench_scalar.js: bench/wasm_bench.c nn.h | $(BUILD)
	NODE_PATH=$${NODE_PATH:-/usr/share/nodejs} $(EMCC) $(BENCH_EMCC) -o $@ bench/wasm_bench.c

bench-wasm: $(BUILD)/wasm_bench_simd.js $(BUILD)/wasm_bench_scalar.js
	NODE=$(NODE) OUT=$(BUILD)/bench_wasm.md sh bench/wasm_bench.sh $^

# Examples: each also builds alone with the one cc command at its top.
EXAMPLES = $(BUILD)/xor $(BUILD)/fashion_mlp $(BUILD)/fashion_cnn $(BUILD)/kernels $(BUILD)/autoencoder $(BUILD)/char_rnn $(BUILD)/timeseries $(BUILD)/tabular
$(BUILD)/%: examples/%.c examples/common/*.h nn.h | $(BUILD)
	$(CC) -O2 -o $@ $< -lm

examples: $(EXAMPLES)

# README's first command: builds the examples, fetches Fashion-MNIST as
# `make data` does, trains the CNN for one epoch (progress line on a
# terminal) and prints the test accuracy.  Without the data it says so and
# runs XOR instead.
demo: examples
	@if bash scripts/get_data.sh; then \
		$(BUILD)/fashion_cnn --epochs 1; \
	else \
		echo "demo: Fashion-MNIST is not available here (see the message above); running the XOR example instead"; \
		$(BUILD)/xor; \
	fi

clean:
	rm -rf $(BUILD)

# ---- benchmarks: `make bench` [BLAS=openblas] -----------------------------
# bench/harness.c compiles nn.h as C; bench/bench.cc is the Google Benchmark
# driver (C++).  Both at plain -O2, no -m flags: nn.h picks scalar / AVX2 /
# AVX-512 at run time and every row selects its backend.  Runs are pinned to
# core 0; medians of BENCH_REPS randomly interleaved repetitions go to
# build/bench_*.json, and bench/summary.py prints the markdown tables (also
# saved to build/bench_summary.md).  BLAS=openblas adds cblas_sgemm rows from
# two more processes: OpenBLAS's own best kernel and OPENBLAS_CORETYPE=Haswell
# (OpenBLAS reads the core type once per process).  A second, unpinned process
# (bench --threads) times nn_sgemm and the CNN training step at 1 thread and
# at every core (build/bench_threads.json).
BENCH_REPS     ?= 5
BENCH_MIN_TIME ?= 0.1
BENCH_FILTER   ?= .
BENCH_PY       ?= python3
BENCH_OB_INC   ?= /usr/include/x86_64-linux-gnu/openblas-pthread
BENCH_ARGS = --benchmark_filter='$(BENCH_FILTER)' --benchmark_repetitions=$(BENCH_REPS) \
	--benchmark_min_time=$(BENCH_MIN_TIME) --benchmark_enable_random_interleaving=true \
	--benchmark_report_aggregates_only=true --benchmark_out_format=json
BENCH_ID = $(shell (git rev-parse --short HEAD && (git diff --quiet HEAD -- nn.h || echo +modified) && \
	sha1sum nn.h | cut -c1-10) 2>/dev/null | tr '\n' ' ')
ifeq ($(BLAS),openblas)
BENCH_BIN  = $(BUILD)/bench_openblas
BENCH_DEFS = -DNN_BENCH_OPENBLAS -I$(BENCH_OB_INC)
BENCH_LIBS = -lopenblas
BENCH_OB   = $(BUILD)/bench_openblas_best.json $(BUILD)/bench_openblas_haswell.json
else
BENCH_BIN  = $(BUILD)/bench
endif

$(BENCH_BIN): bench/bench.cc bench/harness.c bench/harness.h nn.h | $(BUILD)
	$(CC) -O2 -I. -c bench/harness.c -o $@_harness.o
	$(CXX) -O2 -I. $(BENCH_DEFS) -DNN_BENCH_NNH_ID='"$(strip $(BENCH_ID))"' -o $@ bench/bench.cc $@_harness.o \
		$(BENCH_LIBS) -lbenchmark -lpthread -lm

bench-build: $(BENCH_BIN)

bench: $(BENCH_BIN)
	OPENBLAS_NUM_THREADS=1 taskset -c 0 $(BENCH_BIN) $(BENCH_ARGS) --benchmark_out=$(BUILD)/bench_nn.json
	OPENBLAS_NUM_THREADS=1 $(BENCH_BIN) --threads $(BENCH_ARGS) --benchmark_out=$(BUILD)/bench_threads.json
ifeq ($(BLAS),openblas)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 taskset -c 0 \
		$(BENCH_BIN) --openblas $(BENCH_ARGS) --benchmark_out=$(BUILD)/bench_openblas_best.json
	env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1 taskset -c 0 \
		$(BENCH_BIN) --openblas $(BENCH_ARGS) --benchmark_out=$(BUILD)/bench_openblas_haswell.json
endif
	@$(BENCH_PY) bench/summary.py --make-cmd 'make bench$(if $(BLAS), BLAS=$(BLAS))' \
		$(BUILD)/bench_nn.json $(BUILD)/bench_threads.json $(BENCH_OB) | tee $(BUILD)/bench_summary.md

# ---- data and the PyTorch comparison: `make data`, `make compare` [EPOCHS=N] [THREADS=N] ----
# scripts/get_data.sh gunzips Debian's dataset-fashion-mnist into data/fashion-mnist/.
# bench/compare.sh runs bench/torch_reference.py (Debian's torch under /usr/bin/python3, OpenBLAS
# on its own best kernel) and build/fashion_{mlp,cnn}, each pinned to core 0 under /usr/bin/time -v,
# and prints the markdown table (also build/compare.md).  THREADS=N (default 1; 0 = every core): both
# on N threads (torch.set_num_threads(N), OPENBLAS_NUM_THREADS=1; the examples' --threads N), on cores 0..N-1.
# INT8=1 (default; 0 = off): both sides also quantize the trained model to int8 (PyTorch's onednn
# post-training static quantization, nn.h's nn_quantize) and a second table compares the two (issue 12).
EPOCHS ?= 1
THREADS ?= 1
INT8 ?= 1

.PHONY: data compare tfjs-compare ab

data:
	bash scripts/get_data.sh

compare: data examples
	EPOCHS=$(EPOCHS) THREADS=$(THREADS) INT8=$(INT8) bash bench/compare.sh

# nn.h built with emcc (SIMD128 and scalar) and natively against TensorFlow.js 4.22 in node (issue 13):
# bench/tfjs_compare.sh npm-installs tfjs into build/tfjs once (the npm registry), needs emscripten.
# Outside CI and `make test`.
tfjs-compare: data
	bash bench/tfjs_compare.sh

# ---- A/B against an earlier revision: `make ab [AB_BASE=rev] [AB_PAIRS=n]` ----
# bench/ab.sh: the same weights bit for bit (scalar and best backend), then CNN epoch, MLP epoch and
# char-LSTM step times in pinned, alternating pairs.  For refactors: no result may move.
AB_BASE  ?= HEAD~1
AB_PAIRS ?= 5
ab: data
	bash bench/ab.sh $(AB_BASE) $(AB_PAIRS)

# Threads: the serial fraction and regions of a step, projected to 4..64 cores
# (README "Threads").  Two builds of bench/amdahl.c: one measures a region's
# start and end on the live pool, the other (NN__PAR_STATS) times every region.
amdahl: | $(BUILD)
	$(CC) -O2 -o $(BUILD)/region_cost bench/amdahl.c -lm
	$(CC) -O2 -DNN__PAR_STATS -o $(BUILD)/amdahl bench/amdahl.c -lm
	NN_REGION_US=$$($(BUILD)/region_cost) $(BUILD)/amdahl

# The Win32 thread pool for real: cross-compiled with mingw-w64 (-Werror), run under wine64
# (Debian: gcc-mingw-w64-x86-64, wine64).
test-win32: | $(BUILD)
	x86_64-w64-mingw32-gcc -std=c99 -O2 -Wall -Wextra -pedantic -Werror -I. -o $(BUILD)/win32_smoke.exe tests/win32_smoke.c
	WINEDEBUG=-all $${WINE:-$$(command -v wine64 || echo /usr/lib/wine/wine64)} $(BUILD)/win32_smoke.exe

# ---- fuzzing: `make fuzz [FUZZ_SECONDS=60]` --------------------------------
# libFuzzer harnesses (tests/fuzz/fuzz_*.c; clang -fsanitize=fuzzer,address,undefined):
# nn_load on raw bytes, nn_load behind a CRC the harness repairs, IDX, CSV,
# safetensors (nn_load and nn_load_safetensors into fixed models).
# tests/fuzz/run.sh replays tests/fuzz/crashes/<name>/, then fuzzes each for
# FUZZ_SECONDS on a copy of its seeds (build/fuzz_corpus_<name>), skips the
# harnesses tests/fuzz/known.txt names, prints exec/s per harness, and fails
# on any crash (inputs in build/fuzz_artifacts/).  Seeds: tests/fuzz/gen_seeds.c.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_FLAGS    = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_NAMES    = load_raw load_crc idx csv safetensors
FUZZ_SPECS    = load_raw:model:model.dict load_crc:model:model.dict idx:idx:idx.dict csv:csv:csv.dict \
                safetensors:safetensors:safetensors.dict

.PHONY: fuzz fuzz-build

$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h nn.h | $(BUILD)
	$(FUZZ_CC) $(FUZZ_FLAGS) -I. $< -o $@ -lm

fuzz-build: $(addprefix $(BUILD)/fuzz_,$(FUZZ_NAMES))

fuzz: fuzz-build
	BUILD=$(BUILD) sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_SPECS)

# memcheck over part of the suite and short example runs, threads on (tests/valgrind.sh)
$(BUILD)/run_tests_vg: $(TEST_SRC) tests/tt.h tests/fixtures/portable.h nn.h | $(BUILD)
	$(CC) -O1 -g $(WARN) -I. -o $@ $(TEST_SRC) -lm

test-valgrind: $(BUILD)/run_tests_vg examples
	sh tests/valgrind.sh $(BUILD)/run_tests_vg

# ---- the browser page: `make web`, `make test-web` -------------------------
# web/app.c (nn.h plus the functions the page calls) built twice with emcc:
# web/build/nn_simd.{js,wasm} (-msimd128) and nn_scalar.{js,wasm}; the page
# picks one with WebAssembly.validate.  No threads (NN_NO_THREADS): training
# runs in a Web Worker.  The data (train.bin, test.bin: raw uint8 pixels and
# labels) come from `make data` through web/make_data.py.  Open the page with
#   make web && python3 -m http.server -d web/build
# emcc under node 20 needs NODE_PATH=/usr/share/nodejs (TRAPS.md).
EMCC       ?= emcc
WEB        = web/build
WEB_STATIC = $(addprefix $(WEB)/,index.html style.css main.js worker.js)
WEB_EMFLAGS = -O3 -std=c99 -Wall -Wextra -pedantic -Werror -DNN_NO_THREADS \
	-sMODULARIZE=1 -sEXPORT_NAME=NNModule -sALLOW_MEMORY_GROWTH=1 -sENVIRONMENT=web,worker,node \
	-sEXPORTED_FUNCTIONS=_malloc,_free -sEXPORTED_RUNTIME_METHODS=UTF8ToString

.PHONY: web test-web

web: $(WEB)/nn_simd.js $(WEB)/nn_scalar.js $(WEB)/data/train.bin $(WEB_STATIC)

$(WEB)/nn_simd.js: web/app.c nn.h
	@mkdir -p $(WEB)
	NODE_PATH=$${NODE_PATH:-/usr/share/nodejs} $(EMCC) -msimd128 $(WEB_EMFLAGS) -o $@ web/app.c

$(WEB)/nn_scalar.js: web/app.c nn.h
	@mkdir -p $(WEB)
	NODE_PATH=$${NODE_PATH:-/usr/share/nodejs} $(EMCC) $(WEB_EMFLAGS) -o $@ web/app.c

$(WEB)/data/train.bin: web/make_data.py
	bash scripts/get_data.sh
	python3 web/make_data.py data/fashion-mnist $(WEB)/data

$(WEB)/%: web/%
	@mkdir -p $(WEB)
	cp $< $@

# headless Chromium (selenium + chromedriver, Debian's python3-selenium under
# /usr/bin/python3): the self-test page in both builds, then drawing, the
# autoencoder plane and a short benchmark; screenshots build/web_*.png.
test-web: web | $(BUILD)
	/usr/bin/python3 web/test_web.py $(WEB) $(BUILD)
