# SPDX-License-Identifier: MIT
#
# vmmswap: one build for the library (ref/), the tools, the guest fixtures and the
# selftests. Objects go to build/<variant>/, so the plain, sanitizer and TSan builds
# live side by side:
#   make            build/default   -O2 -g -Werror
#   make SAN=1      build/san       + AddressSanitizer and UndefinedBehaviorSanitizer
#   make TSAN=1     build/tsan      + ThreadSanitizer
#   make STATIC=1   build/static    statically linked (for the kernel matrix)
#   make FUZZ=1     build/fuzz      clang + libFuzzer coverage + ASan/UBSan ('make fuzz')
# Kernel headers come from Debian's linux-source-6.12 via 'make deps' (build/deps).

FUZZ_CC ?= clang-14

ifeq ($(SAN),1)
VARIANT := san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else ifeq ($(TSAN),1)
VARIANT := tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else ifeq ($(STATIC),1)
# Statically linked programs, for the kernel-matrix initramfs.
VARIANT := static
SANFLAGS := -static
else ifeq ($(FUZZ),1)
# The libFuzzer builds of tools/fuzz/ ('make fuzz'): Debian's clang, everything
# instrumented for libFuzzer's coverage feedback and under ASan+UBSan.
VARIANT := fuzz
CC := $(FUZZ_CC)
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
else
VARIANT := default
SANFLAGS :=
endif

CC ?= gcc
DEPS := build/deps
O := build/$(VARIANT)

CPPFLAGS := -D_GNU_SOURCE -Iref/include -Iref -Itools -isystem $(DEPS)/uapi -isystem $(DEPS)/kselftest
CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -pthread -MMD -MP $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(SANFLAGS)
LDLIBS := -lcap -lseccomp

LIB_SRCS := $(wildcard ref/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/%.o)
LIB := $(O)/libvmmswap.a

# tools/vm/: the small KVM library (a VM, its memory slots, long mode, vCPU runs)
# that minivmm, the guest benchmark and the KVM contract test share; it knows
# nothing of vmmswap.
VM_SRCS := $(wildcard tools/vm/*.c)
VM_OBJS := $(VM_SRCS:%.c=$(O)/%.o)
VMLIB := $(O)/libminivm.a

# tools/vmm/: the VMM's parts (guest RAM, vCPU threads and the guest command
# channel, device processes, balloon, control socket), shared by minivmm, the CLI
# (the control socket's client side), minivmm_test and the fuzz targets.
MVM_SRCS := $(filter-out tools/vmm/minivmm.c,$(wildcard tools/vmm/*.c))
MVM_OBJS := $(MVM_SRCS:%.c=$(O)/%.o)
MVMLIB := $(O)/libminivmm.a

# Every selftests/*_test.c is one kselftest program; selftests/lib/*.c are shared
# test helpers linked into each of them.
TEST_SRCS := $(wildcard selftests/*_test.c)
TEST_PROGS := $(TEST_SRCS:selftests/%.c=$(O)/selftests/%)
TEST_LIB_OBJS := $(patsubst %.c,$(O)/%.o,$(wildcard selftests/lib/*.c))

# The programs, one concern per directory: the VMM, the CLI, the benchmarks, the
# capability report, the documentation tools. Each lands in $(O)/tools/NAME.
TOOL_SRCS := tools/vmm/minivmm.c tools/cli/vmmswap.c $(wildcard tools/bench/*.c) \
	$(wildcard tools/caps/*.c) $(wildcard tools/docs/*.c)
TOOL_PROGS := $(addprefix $(O)/tools/,$(basename $(notdir $(TOOL_SRCS))))

.PHONY: all lib tools selftests deps check check-san check-tsan demo bench clean format
all: $(LIB) $(VMLIB) $(MVMLIB) $(TOOL_PROGS) $(TEST_PROGS)
lib: $(LIB)
tools: $(TOOL_PROGS)
selftests: $(TEST_PROGS)

# The headers must exist before anything compiles; 'deps' is cheap when done.
$(DEPS)/.extracted:
	@tools/deps.sh

deps:
	@tools/deps.sh

$(O)/%.o: %.c | $(DEPS)/.extracted
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(VMLIB): $(VM_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(MVMLIB): $(MVM_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(O)/selftests/%: $(O)/selftests/%.o $(TEST_LIB_OBJS) $(MVMLIB) $(VMLIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

define tool_rule
$(O)/tools/$(basename $(notdir $(1))): $(O)/$(1:.c=.o) $(MVMLIB) $(VMLIB) $(LIB)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach src,$(TOOL_SRCS),$(eval $(call tool_rule,$(src))))

# ---- fixtures: guest programs (owned by the fixtures/ rules below) ----
# Every fixtures/*.c is one freestanding guest program: no libc, no sanitizers, no
# -pthread (the variant's CFLAGS are not used), linked by fixtures/guest.lds to a flat
# image at the guest load address and loaded by minivmm from
# build/<variant>/fixtures/NAME.bin.
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -nostdlib -static \
	-fno-pic -no-pie -mno-red-zone -fno-stack-protector -mgeneral-regs-only \
	-fno-asynchronous-unwind-tables -fno-tree-loop-distribute-patterns -fcf-protection=none \
	-Itools
FIXTURE_SRCS := $(wildcard fixtures/*.c)
FIXTURE_BINS := $(FIXTURE_SRCS:fixtures/%.c=$(O)/fixtures/%.bin)

$(O)/fixtures/%.elf: fixtures/%.c fixtures/guest.lds tools/vmm/guest_abi.h tools/vm/layout.h
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -Wl,-T,fixtures/guest.lds -Wl,--build-id=none -o $@ $<

$(O)/fixtures/%.bin: $(O)/fixtures/%.elf
	objcopy -O binary $< $@

.PHONY: fixtures
.PRECIOUS: $(O)/fixtures/%.elf
all: $(FIXTURE_BINS)
fixtures: $(FIXTURE_BINS)
# ---- end of fixtures ----

# ---- fuzz targets (see tools/fuzz/fuzz.h) ----
# Every tools/fuzz/*.c but replay_main.c is one libFuzzer target, with its corpus
# and kept crash inputs in fixtures/fuzz/NAME/. In every variant, $(O)/fuzz/NAME is
# the target linked with replay_main.c (runs it once per input file; part of 'all',
# and 'make check' replays the corpus with build/san). With FUZZ=1 it is linked with
# libFuzzer instead.
#   make fuzz          build with clang (installed on demand) and run every target
#                      FUZZ_RUNS times (default 10^6), one after the other
#   make fuzz-replay   every corpus input through its build/san target (seconds)
#   make fuzz FUZZ_TARGETS="proto_cmd cli_args" FUZZ_RUNS=100000
FUZZ_SRCS := $(filter-out tools/fuzz/replay_main.c,$(wildcard tools/fuzz/*.c))
FUZZ_PROGS := $(FUZZ_SRCS:tools/fuzz/%.c=$(O)/fuzz/%)
FUZZ_RUNS ?= 1000000
FUZZ_TARGETS ?=
ifeq ($(FUZZ),1)
FUZZ_MAIN :=
FUZZ_LDFLAGS := -fsanitize=fuzzer
else
FUZZ_MAIN := $(O)/tools/fuzz/replay_main.o
FUZZ_LDFLAGS :=
endif

$(O)/fuzz/%: $(O)/tools/fuzz/%.o $(FUZZ_MAIN) $(MVMLIB) $(VMLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(FUZZ_LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: fuzz fuzz-replay fuzz-progs
.SECONDARY: $(FUZZ_SRCS:%.c=$(O)/%.o) $(FUZZ_MAIN)
all: $(FUZZ_PROGS)
fuzz-progs: $(FUZZ_PROGS)

fuzz:
	@tools/deps.sh --extra clang-14 libclang-rt-14-dev
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-progs
	@tools/fuzz/fuzz.sh --build build/fuzz --runs $(FUZZ_RUNS) $(FUZZ_TARGETS)

fuzz-replay: deps
	@$(MAKE) --no-print-directory SAN=1 fuzz-progs
	@tools/fuzz/fuzz.sh --replay --build build/san $(FUZZ_TARGETS)
# ---- end of fuzz targets ----

# ---- kernel matrix (see tools/kernel_matrix*) ----
# 'make kernel-matrix' boots each kernel of KERNELS under qemu (TCG) with an initramfs
# of the statically linked kernel-contract selftests, the kernel's own
# mm/uffd-unit-tests and a tiny init, and prints the matrix (one row per test, one
# column per kernel); results in build/kernel-matrix/ (tools/kernel_matrix/README.md). Not
# part of 'check': it takes minutes. 'make kernel-matrix-install' only builds the
# run_kselftest.sh install tree (build/kernel-matrix/kselftest_install.tar.gz).
#   make kernel-matrix KERNELS="running debian-6.1 debian-6.12 /path/to/bzImage"
#   make kernel-matrix KM_FLAGS="--timeout 600 --hugepages 64"
KERNELS ?= running debian-6.1 debian-6.12
KM_FLAGS ?=
KM_DIR := build/kernel-matrix
KM_TESTS := uffd_api_test uffd_missing_test uffd_modes_test uffd_process_test \
	uffd_remove_test uffd_register_test uffd_wake_test uffd_events_test uffd_wp_test \
	memfd_seek_test shmem_thp_test hugetlb_uffd_test

.PHONY: kernel-matrix kernel-matrix-install kernel-matrix-progs kernel-matrix-report
kernel-matrix-progs: deps
	@tools/deps.sh --extra qemu-system-x86 cpio
	@$(MAKE) --no-print-directory STATIC=1 $(KM_TESTS:%=build/static/selftests/%)
	@$(MAKE) --no-print-directory $(KM_DIR)/init

$(KM_DIR)/init: tools/kernel_matrix/init.c
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -std=gnu11 -O2 -g -Wall -Wextra -Werror -static -o $@ $<

kernel-matrix: kernel-matrix-progs
	@tools/kernel_matrix.sh --kernels "$(KERNELS)" $(KM_FLAGS)

kernel-matrix-install: kernel-matrix-progs
	@tools/kernel_matrix.sh --install-only $(KM_FLAGS)

# Parse the logs of the last run again and redraw the matrix (after editing the awk).
kernel-matrix-report:
	@tools/kernel_matrix.sh --report-only
# ---- end of kernel matrix ----

# ---- kernel mutation (see tools/kernel_mutation.sh) ----
# 'make kernel-mutation' builds a small 6.12 kernel from linux-source-6.12, then one
# per seeded regression in fixtures/mutations/kernel/, runs the kernel matrix on each
# and prints which mutants our suite and uffd-unit-tests caught. Not part of 'check'.
#   make kernel-mutation KMUT_FLAGS="--reuse-baseline fixtures/mutations/kernel/001-*.patch"
KMUT_FLAGS ?=
.PHONY: kernel-mutation
kernel-mutation: kernel-matrix-progs
	@tools/deps.sh --extra flex bison bc libelf-dev
	@tools/kernel_mutation.sh $(KMUT_FLAGS)
# ---- end of kernel mutation ----

# ---- LAVA jobs (see tools/lava/README.md) ----
# 'make lava-jobs' writes one LAVA job definition per kernel of KERNELS into build/lava/
# (qemu device type; artefacts in build/lava/artefacts/, found at LAVA_ARTEFACT_URL,
# default file:// paths). 'make lava-matrix' also runs each job here with Debian's
# lava-dispatcher (lava-run; installed on demand) and prints the kernel matrix from
# LAVA's logs (build/lava/matrix.txt). Not part of 'check': minutes per kernel.
#   make lava-jobs KERNELS="debian-6.1 debian-6.12" LAVA_ARTEFACT_URL=https://host/dir
LAVA_ARTEFACT_URL ?=
.PHONY: lava-jobs lava-matrix
lava-jobs: kernel-matrix-progs
	@tools/lava/run.sh --jobs-only --kernels "$(KERNELS)" $(KM_FLAGS) \
		$(if $(LAVA_ARTEFACT_URL),--url "$(LAVA_ARTEFACT_URL)")

lava-matrix: kernel-matrix-progs
	@tools/lava/run.sh --kernels "$(KERNELS)" $(KM_FLAGS)
# ---- end of LAVA jobs ----

# ---- mutation testing (see tools/mutation.sh, fixtures/mutations/README.md) ----
# 'make mutation' seeds each bug of fixtures/mutations/ref/*.patch, one at a time,
# into a scratch copy of the tree (build/mutation/src), builds it and runs the
# selftests the patch names, then the others; prints caught/missed per mutant and
# "caught N of M". Minutes; not part of 'check', which only checks that every patch
# still applies (tools/mutation.sh --check).
#   make mutation MUTATION_FLAGS="--vmtests"     also the KVM scenarios for a miss
#   make mutation MUTANTS="003 swap-in"          only patches whose name matches
MUTATION_FLAGS ?=
MUTANTS ?=
.PHONY: mutation
mutation: deps
	@tools/mutation.sh $(MUTATION_FLAGS) $(MUTANTS)
# ---- end of mutation testing ----

# ---- docs (see tools/docs/docs.sh, ref/CONTRACT.md, ref/TOUR.md) ----
# 'make docs' draws ref/pictures/ from the code's own tables: the swap state machine
# (tools/vms_sm_dump --dot) and the page-state transitions (tools/vms_page_dump
# --dot), as .dot sources, SVG and PNG, installing Debian's graphviz when 'dot' is
# missing. Commit all three; 'make check' compares the .dot sources with what the
# tools print (item docs_up_to_date) and checks every contract citation.
.PHONY: docs
docs: deps
	@$(MAKE) --no-print-directory $(O)/tools/vms_sm_dump $(O)/tools/vms_page_dump
	@tools/docs/docs.sh --build $(O)
# ---- end of docs ----

# The README's test command: everything, plain and under ASan+UBSan.
check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 all
	@tools/check.sh

check-san: deps
	@$(MAKE) --no-print-directory SAN=1 all
	@tools/check.sh --variant san

# ThreadSanitizer over every selftest (documented, not part of 'check').
check-tsan: deps
	@$(MAKE) --no-print-directory TSAN=1 all
	@tools/check.sh --variant tsan --no-unpriv --no-vmtests

# The README's main-job command: boot a guest and take it through a full swap cycle.
demo: deps
	@$(MAKE) --no-print-directory all
	@tools/demo.sh --variant $(VARIANT)

# The racy selftest programs many times under CPU load (tools/stress.sh; not in
# 'check'). STRESS_RUNS runs per program; STRESS_PROGS to pick programs.
STRESS_RUNS ?= 500
STRESS_PROGS ?=
.PHONY: stress
stress: deps
	@$(MAKE) --no-print-directory all
	@tools/stress.sh --runs $(STRESS_RUNS) --variant $(VARIANT) $(STRESS_PROGS)

bench: deps
	@$(MAKE) --no-print-directory all
	@tools/bench/bench.sh

# Guest-level demand paging beside the kernel's demand_paging_test and a raw
# UFFDIO_COPY host thread (tools/bench/vms_bench_guest.c; README: Benchmarks).
.PHONY: bench-guest
bench-guest: deps
	@$(MAKE) --no-print-directory all
	@$(O)/tools/vms_bench_guest

format:
	clang-format -i $$(git ls-files 'ref/*.[ch]' 'tools/*.[ch]' 'fixtures/*.c')

clean:
	rm -rf build/default build/san build/tsan build/static build/fuzz

-include $(shell find $(O) -name '*.d' 2>/dev/null)
