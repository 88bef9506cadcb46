# cllm build. `make` builds build/cllm and the tests; `make test` runs them;
# `make check` installs missing packages, runs the suite, then runs it again
# under AddressSanitizer + UndefinedBehaviorSanitizer (SAN=1, in build-san/),
# then every libFuzzer target for FUZZ_SECONDS each (FUZZ=1: clang with ASan +
# UBSan, whose float-cast-overflow check gcc lacks, in build-fuzz/).
#
# Sources are found by wildcard: adding src/<module>/<file>.c or
# tests/test_<module>.c needs no edit here. Files named *_avx2.c, *_avx512.c
# and *_amx.c are compiled with those ISA flags and must only be entered
# through run-time dispatch (src/kernels/), so the binary stays portable.

SAN ?= 0
FUZZ ?= 0
ifeq ($(FUZZ),1)
CC := clang
BUILD ?= build-fuzz
OPT ?= -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
       -Wno-unknown-warning-option -Wno-pass-failed
else ifeq ($(SAN),1)
BUILD ?= build-san
OPT ?= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
BUILD ?= build
OPT ?= -O2 -g
endif

CC ?= cc
PKGS := libpcre2-8 libcjson libmicrohttpd libedit
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# MPI (data-parallel training, docs/MPI.md): on when Open MPI is found (its
# pkg-config file ompi-c, else mpicc --showme); `make MPI=0` builds without it.
# Only src/train/dist.c includes <mpi.h>; without MPI it compiles a one-rank shim.
MPI ?= $(shell (pkg-config --exists ompi-c || command -v mpicc) >/dev/null 2>&1 && echo 1 || echo 0)
ifeq ($(MPI),1)
MPI_CFLAGS := $(or $(shell pkg-config --cflags ompi-c 2>/dev/null),$(shell mpicc --showme:compile 2>/dev/null)) -DCLLM_MPI=1
MPI_LIBS := $(or $(shell pkg-config --libs ompi-c 2>/dev/null),$(shell mpicc --showme:link 2>/dev/null))
endif

CFLAGS := -std=c11 -Wall -Wextra -Werror -Wno-format-truncation -D_GNU_SOURCE -fopenmp -Iinclude -Itools $(PKG_CFLAGS) $(OPT) $(EXTRA_CFLAGS)
LDLIBS := $(PKG_LIBS) $(MPI_LIBS) -ldnnl -lm -lpthread $(EXTRA_LDLIBS)
LDFLAGS := -fopenmp $(filter -fsanitize=%,$(OPT))

AVX2_FLAGS := -mavx2 -mfma -mf16c
AVX512_FLAGS := $(AVX2_FLAGS) -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16
AMX_FLAGS := $(AVX512_FLAGS) -mamx-tile -mamx-bf16 -mamx-int8

# MODULES limits the library to some src/ folders (e.g. MODULES="core train")
# so one module's tests build while another module is mid-edit.
MODULES ?= $(notdir $(wildcard src/*))
LIB_SRC := $(shell find $(addprefix src/,$(MODULES)) -name '*.c' 2>/dev/null | sort)
TOOL_SRC := $(wildcard tools/*.c)
TEST_MAIN_SRC := $(wildcard tests/test_*.c)
TEST_HELPER_SRC := $(filter-out $(TEST_MAIN_SRC),$(wildcard tests/*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
TEST_HELPER_OBJ := $(TEST_HELPER_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_MAIN_SRC:tests/%.c=$(BUILD)/tests/%)
LIB := $(BUILD)/libcllm.a
CLLM := $(BUILD)/cllm

.PHONY: all test check deps deps-build clean demo bench fuzz fuzz-run
.SECONDARY:
all: $(CLLM) $(TEST_BIN)

$(BUILD)/obj/%_avx2.o: EXTRA_ISA := $(AVX2_FLAGS)
$(BUILD)/obj/%_avx512.o: EXTRA_ISA := $(AVX512_FLAGS)
$(BUILD)/obj/%_amx.o: EXTRA_ISA := $(AMX_FLAGS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(EXTRA_ISA) -MMD -MP -c $< -o $@

# dist.o alone sees the MPI flags. BUILD/.mpi holds the MPI setting it was
# built with (tests/test_mpi.sh reads it); rewritten only when the setting
# changes, which rebuilds dist.o (a rule could not do it: .SECONDARY lets a
# missing prerequisite go unbuilt).
MPI_STAMP := $(BUILD)/.mpi
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(MPI_STAMP) 2>/dev/null)" = "$(MPI)" ] || echo $(MPI) >$(MPI_STAMP); })
endif
$(BUILD)/obj/src/train/dist.o: EXTRA_ISA += $(MPI_CFLAGS)
$(BUILD)/obj/src/train/dist.o: $(MPI_STAMP)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(CLLM): $(TOOL_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_HELPER_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_HELPER_OBJ) $(LIB) $(LDLIBS)

# bench/<name>.c -> $(BUILD)/bench/<name>, linked against the library
# (e.g. `make BUILD=... MODULES="core kernels" build/bench/bench_gemm`).
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Runs every test binary and every tests/*.sh script; prints one total line.
test: all
	CLLM_BUILD=$(BUILD) bash tests/run_all.sh $(BUILD)

# tests/fuzz/fuzz_<parser>.c -> $(BUILD)/fuzz/fuzz_<parser>, libFuzzer targets
# (FUZZ=1 only: they need clang's -fsanitize=fuzzer).
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB) $(LDLIBS)

# `make fuzz` runs each target FUZZ_SECONDS (default 60) and prints its inputs,
# coverage and findings (scripts/fuzz.sh); `make check` runs 10 s of each.
FUZZ_SECONDS ?= 60
fuzz:
	$(MAKE) FUZZ=1 fuzz-run
fuzz-run: $(FUZZ_BIN)
	bash scripts/fuzz.sh $(BUILD) $(FUZZ_SECONDS)

deps:
	bash scripts/install-deps.sh

# Only what building and running cllm needs (no Python, browser or npm peers).
deps-build:
	bash scripts/install-deps.sh --build

check: deps
	$(MAKE) test
	$(MAKE) SAN=1 test
	$(MAKE) fuzz FUZZ_SECONDS=10

# The README's main command: packages, the binary, then scripts/demo.sh (world ->
# tokenizer -> pre-train -> SFT -> DPO -> GRPO -> report; outputs in demo/).
# QUICK=1: the ~2-minute CI size, in demo-quick/. Installs only the build's
# packages (deps-build); the tests' peers come with make deps / make check.
demo: deps-build
	$(MAKE) $(CLLM)
	bash scripts/demo.sh $(if $(filter 1,$(QUICK)),--quick) --cllm $(CLLM)

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
