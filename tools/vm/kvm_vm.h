/* SPDX-License-Identifier: MIT */
/*
 * vm/kvm_vm.h - libminivm: the smallest KVM layer a VMM or a C test needs.
 *
 * Contract:
 *  - Every function returns 0 (or a documented non-negative value) or a negative
 *    errno. Nothing here exits, aborts, prints or keeps global state.
 *  - The caller owns guest RAM: it maps memory (memfd MAP_SHARED, anonymous, ...) and
 *    hands the mapping to minivm_add_region() at a guest-physical address. Guest
 *    physical addresses that no region covers are MMIO: a guest access there exits
 *    with MINIVM_EXIT_MMIO.
 *  - minivm_setup_long_mode() writes page tables, GDT, TSS, IDT and exception stubs
 *    into a "system area" of guest RAM the caller reserves. Guest-physical memory
 *    [0, map_size) is identity mapped with 2 MiB pages, writable and user-accessible,
 *    so guest code can run in ring 3 (the fast path on PVM hosts).
 *  - A vCPU belongs to one thread: minivm_vcpu_*() on one vCPU must not run
 *    concurrently, different vCPUs may run in parallel. Create regions and vCPUs
 *    before starting vCPU threads (the region table is not locked).
 *  - A guest exception (ring 3 or ring 0) ends in MINIVM_EXIT_EXCEPTION with the
 *    vector and the faulting RIP, instead of a silent triple fault.
 */
#ifndef MINIVM_KVM_VM_H
#define MINIVM_KVM_VM_H

#include <vm/layout.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kvm_run;

#define MINIVM_MAX_REGIONS    32
#define MINIVM_PAGE_SIZE      4096ULL
#define MINIVM_HUGE_PAGE_SIZE (2ULL << 20)

/* One guest RAM region: guest-physical [gpa, gpa + size) is host memory at hva. */
struct minivm_region {
	uint32_t slot;
	uint64_t gpa;
	uint64_t size;
	void *hva;
};

struct minivm {
	int kvm_fd;
	int vm_fd;
	int run_size; /* size of each vCPU's mmap'ed struct kvm_run */
	int nr_regions;
	struct minivm_region regions[MINIVM_MAX_REGIONS];
	/* Set by minivm_setup_long_mode(); 0 until then. */
	uint64_t sys_gpa;
	uint64_t pml4_gpa;
	uint64_t gdt_gpa;
	uint64_t idt_gpa;
	uint64_t tss_gpa;
	uint64_t exc_mmio_gpa; /* where the exception stubs report */
	uint64_t map_size;
};

struct minivm_vcpu {
	struct minivm *vm;
	int id;
	int fd;
	struct kvm_run *run; /* shared with the kernel, run_size bytes */
};

/* Why minivm_vcpu_run() returned. */
enum minivm_exit_reason {
	MINIVM_EXIT_MMIO = 1,	    /* guest read/wrote an address no region covers */
	MINIVM_EXIT_IO,		    /* port I/O (ring 0 only; ring 3 has no I/O permission) */
	MINIVM_EXIT_HLT,	    /* HLT in ring 0 */
	MINIVM_EXIT_SHUTDOWN,	    /* triple fault: the guest is dead */
	MINIVM_EXIT_EXCEPTION,	    /* guest exception, reported by our IDT stubs */
	MINIVM_EXIT_INTR,	    /* KVM_RUN interrupted by a signal or immediate_exit */
	MINIVM_EXIT_FAIL_ENTRY,	    /* the CPU refused the vCPU state */
	MINIVM_EXIT_INTERNAL_ERROR, /* KVM could not emulate something */
	MINIVM_EXIT_OTHER,	    /* any other KVM exit reason, see 'kvm_reason' */
};

struct minivm_exit {
	enum minivm_exit_reason reason;
	uint32_t kvm_reason; /* the raw KVM_EXIT_* value */
	union {
		struct {
			uint64_t addr;
			uint64_t data; /* the value written (little endian, zero-extended) */
			uint32_t len;  /* 1, 2, 4 or 8 */
			bool is_write; /* reads: answer with minivm_vcpu_mmio_reply() */
		} mmio;
		struct {
			uint16_t port;
			uint32_t data; /* value written (first element) */
			uint8_t size;
			bool is_out;
		} io;
		struct {
			uint32_t vector;     /* 0..31, e.g. 14 = page fault, 13 = #GP */
			uint64_t error_code; /* 0 for vectors that push none */
			uint64_t rip;	     /* the faulting instruction */
			uint64_t cs;	     /* its code segment (low 2 bits = ring) */
			uint64_t cr2;	     /* fault address for vector 14 */
		} exception;
		struct {
			uint64_t hw_reason; /* FAIL_ENTRY hardware reason */
			uint32_t suberror;  /* INTERNAL_ERROR suberror */
		} fail;
	};
};

/* 0 if /dev/kvm can be opened and speaks API version 12, else a negative errno. */
int minivm_kvm_available(void);

/* Open /dev/kvm and create a VM. On error nothing is left open. */
int minivm_create(struct minivm *vm);

/*
 * Close the VM and /dev/kvm (vCPUs must be destroyed first). Guest RAM stays mapped.
 * Like minivm_vcpu_destroy(), safe on a zeroed or already destroyed struct.
 */
void minivm_destroy(struct minivm *vm);

/* KVM_CHECK_EXTENSION on the VM: the capability's value (>= 0) or a negative errno. */
int minivm_check_cap(struct minivm *vm, long cap);

/*
 * Make host memory [hva, hva + size) guest-physical [gpa, gpa + size). gpa, size and
 * hva must be 4 KiB aligned; regions must not overlap. Returns the slot number used.
 */
int minivm_add_region(struct minivm *vm, uint64_t gpa, void *hva, uint64_t size);

/* Host address of guest-physical gpa with len bytes inside one region, or NULL. */
void *minivm_gpa_to_hva(struct minivm *vm, uint64_t gpa, uint64_t len);

/* Copy len bytes of guest code (or data) to guest-physical gpa. -EFAULT if unbacked. */
int minivm_load(struct minivm *vm, uint64_t gpa, const void *bytes, size_t len);

/*
 * Bytes of system area minivm_setup_long_mode() needs for an identity map of
 * [0, map_size): GDT+TSS, IDT, exception stubs, a ring-0 stack and the page tables.
 */
uint64_t minivm_sys_area_size(uint64_t map_size);

/*
 * Build the long-mode environment in guest RAM at [sys_gpa, sys_gpa +
 * minivm_sys_area_size(map_size)), which must be 4 KiB aligned and backed by one
 * region (not userfaultfd-registered, or KVM's own page walks would fault on it).
 * map_size (a multiple of 2 MiB, at most 512 GiB) is how much guest-physical space
 * is identity mapped; exc_mmio_gpa is an unbacked address inside it where the
 * exception stubs report (8 bytes). The guest could overwrite the system area: this
 * is a test VM, not a sandbox.
 */
int minivm_setup_long_mode(struct minivm *vm, uint64_t sys_gpa, uint64_t map_size,
			   uint64_t exc_mmio_gpa);

/* Create vCPU 'id' and give it every CPUID feature KVM supports (long mode among them). */
int minivm_vcpu_create(struct minivm *vm, int id, struct minivm_vcpu *vcpu);
void minivm_vcpu_destroy(struct minivm_vcpu *vcpu);

/*
 * Put the vCPU in 64-bit mode at rip with stack rsp, in ring 3 (user = true, the
 * normal case) or ring 0. General registers other than rip/rsp/rflags are zeroed;
 * set arguments afterwards with minivm_vcpu_set_args(). Also the way to restart a
 * vCPU after MINIVM_EXIT_EXCEPTION (which leaves it halted in ring 0).
 */
int minivm_vcpu_enter_long_mode(struct minivm_vcpu *vcpu, uint64_t rip, uint64_t rsp, bool user);

/* Set rdi, rsi, rdx, rcx (the SysV argument registers) for guest code. */
int minivm_vcpu_set_args(struct minivm_vcpu *vcpu, uint64_t a0, uint64_t a1, uint64_t a2,
			 uint64_t a3);

/*
 * Run until an exit the caller must see, described in *exit. Returns 0, or a negative
 * errno if KVM_RUN itself failed (EINTR is not an error: MINIVM_EXIT_INTR).
 * After an MMIO write just call run again; after an MMIO read, reply first.
 */
int minivm_vcpu_run(struct minivm_vcpu *vcpu, struct minivm_exit *exit);

/* Value the guest's pending MMIO read returns (call before the next run). */
void minivm_vcpu_mmio_reply(struct minivm_vcpu *vcpu, uint64_t value);

/*
 * Make the next (or current) KVM_RUN return MINIVM_EXIT_INTR at once. To stop a vCPU
 * that is inside KVM_RUN, call this and then signal its thread (any handled signal).
 * Cleared again with minivm_vcpu_request_exit(vcpu, false).
 */
void minivm_vcpu_request_exit(struct minivm_vcpu *vcpu, bool on);

/* A name for reports: "MMIO", "HLT", ... */
const char *minivm_exit_name(enum minivm_exit_reason reason);

#endif /* MINIVM_KVM_VM_H */
