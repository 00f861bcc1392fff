# SPDX-License-Identifier: MIT
#
# vmmswap: one build for the library (ref/), the tools, the guest fixtures and the
# selftests. Objects go to build/<variant>/, so the plain, sanitizer and TSan builds
# live side by side:
#   make            build/default   -O2 -g -Werror
#   make SAN=1      build/san       + AddressSanitizer and UndefinedBehaviorSanitizer
#   make TSAN=1     build/tsan      + ThreadSanitizer
#   make STATIC=1   build/static    statically linked (for the kernel matrix)
# Kernel headers come from Debian's linux-source-6.12 via 'make deps' (build/deps).

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
LDLIBS := -lcap

LIB_SRCS := $(wildcard ref/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/%.o)
LIB := $(O)/libvmmswap.a

# tools/vm/: the small KVM library (VM, guest memory, vCPU run loop) that minivmm
# and every C test needing a guest share.
VM_SRCS := $(wildcard tools/vm/*.c)
VM_OBJS := $(VM_SRCS:%.c=$(O)/%.o)
VMLIB := $(O)/libminivm.a

# Every selftests/*_test.c is one kselftest program; selftests/lib/*.c are shared
# test helpers linked into each of them.
TEST_SRCS := $(wildcard selftests/*_test.c)
TEST_PROGS := $(TEST_SRCS:selftests/%.c=$(O)/selftests/%)
TEST_LIB_OBJS := $(patsubst %.c,$(O)/%.o,$(wildcard selftests/lib/*.c))

# Every tools/*.c is one program.
TOOL_SRCS := $(wildcard tools/*.c)
TOOL_PROGS := $(TOOL_SRCS:tools/%.c=$(O)/tools/%)

.PHONY: all lib tools selftests deps check check-san check-tsan demo bench clean format
all: $(LIB) $(VMLIB) $(TOOL_PROGS) $(TEST_PROGS)
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

$(O)/selftests/%: $(O)/selftests/%.o $(TEST_LIB_OBJS) $(VMLIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/tools/%: $(O)/tools/%.o $(VMLIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# ---- fixtures: guest programs (owned by the fixtures/ rules below) ----
# ---- end of fixtures ----

# ---- kernel matrix (see tools/kernel_matrix*) ----
# ---- end of kernel matrix ----

# The README's test command: everything, plain and under ASan+UBSan.
check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 all
	@tools/check.sh

check-san: deps
	@$(MAKE) --no-print-directory SAN=1 all
	@tools/check.sh --variant san

# ThreadSanitizer over the threaded selftests (documented, not part of 'check').
check-tsan: deps
	@$(MAKE) --no-print-directory TSAN=1 all
	@tools/check.sh --variant tsan --threaded-only

# The README's main-job command. Until the VMM exists it prints the capability report.
demo: deps
	@$(MAKE) --no-print-directory all
	@$(O)/tools/vms_caps

bench: deps
	@$(MAKE) --no-print-directory all
	@tools/bench.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build/default build/san build/tsan build/static

-include $(shell find $(O) -name '*.d' 2>/dev/null)
