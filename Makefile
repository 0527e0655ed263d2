# nn.h - build, test and benchmark.  Everything is single-threaded C99.
CC      ?= cc
CXX     ?= c++
CFLAGS  ?= -O2
WARN     = -std=c99 -Wall -Wextra -pedantic
BUILD    = build
ARM_CC  ?= aarch64-linux-gnu-gcc
QEMU    ?= qemu-aarch64

.PHONY: all test test-asan test-arm bench demo examples clean

all: $(BUILD)/run_tests examples

$(BUILD):
	mkdir -p $(BUILD)

TEST_SRC = $(wildcard tests/test_*.c)

$(BUILD)/run_tests: $(TEST_SRC) tests/tt.h nn.h | $(BUILD)
	$(CC) $(CFLAGS) $(WARN) -Werror -I. -o $@ $(TEST_SRC) -lm

# README's test command.  tests/run.sh runs the build checks (gcc/clang
# -Werror, C++, NN_STATIC, NN_NO_SIMD, two translation units) and the test
# binary, and prints one closing line "N passed, N failed, N skipped".
test: $(BUILD)/run_tests
	sh tests/run.sh $(BUILD)/run_tests

$(BUILD)/run_tests_asan: $(TEST_SRC) tests/tt.h nn.h | $(BUILD)
	$(CC) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer $(WARN) -I. -o $@ $(TEST_SRC) -lm

test-asan: $(BUILD)/run_tests_asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/run_tests_asan

# NEON for real: cross-compiled, run under qemu with small sizes (NN_TEST_SMALL).
$(BUILD)/run_tests_arm: $(TEST_SRC) tests/tt.h nn.h | $(BUILD)
	$(ARM_CC) -O2 $(WARN) -Werror -DNN_TEST_SMALL -I. -o $@ $(TEST_SRC) -lm

test-arm: $(BUILD)/run_tests_arm
	$(QEMU) -L /usr/aarch64-linux-gnu $(BUILD)/run_tests_arm

clean:
	rm -rf $(BUILD)
