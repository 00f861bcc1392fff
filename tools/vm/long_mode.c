// SPDX-License-Identifier: MIT
/*
 * long_mode.c - the x86-64 environment a guest needs before its first instruction:
 * identity-mapped page tables, a GDT with ring-0 and ring-3 segments, a TSS (for the
 * stack the CPU switches to on an exception) and an IDT whose stubs report any
 * exception to the VMM through an MMIO write.
 *
 * The vCPU starts directly in 64-bit mode (no real-mode or 32-bit boot code): KVM
 * lets us load CR0/CR4/EFER and the segment registers with KVM_SET_SREGS, and a
 * ring-3 start is just CS and SS with DPL 3.
 *
 * On a PVM host (pagetable-based KVM, as on this project's test machine) ring-3
 * guest code runs natively while ring-0 code is emulated, roughly 1000x slower. So guests start directly in ring 3
 * and ring 0 only runs the exception stubs. Entering ring 3 through KVM_SET_SREGS
 * (CS/SS with DPL 3, a TSS loaded) works there as it does on VMX/SVM.
 *
 * System area layout, in 4 KiB pages from sys_gpa:
 *   0     GDT (offset 0) and TSS (offset 0x800)
 *   1     IDT: 256 16-byte gates, the first 32 used
 *   2     exception stubs, 32 bytes each
 *   3     IST stack for exceptions (top = end of the page)
 *   4     PML4
 *   5     PDPT
 *   6...  one page directory (512 x 2 MiB) per GiB of map_size
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "vm/kvm_vm.h"
#include "vm/internal.h"

#define PG	  MINIVM_PAGE_SIZE
#define SYS_GDT	  0
#define SYS_TSS	  0x800
#define SYS_IDT	  (1 * PG)
#define SYS_STUBS (2 * PG)
#define SYS_STACK (3 * PG)
#define SYS_PML4  (4 * PG)
#define SYS_PDPT  (5 * PG)
#define SYS_PD	  (6 * PG)
#define STUB_SIZE 32
#define NR_EXC	  32

/* Selectors: index * 8 | requested privilege level. */
#define SEL_KCODE   0x08
#define SEL_KDATA   0x10
#define SEL_UDATA   (0x18 | 3)
#define SEL_UCODE   (0x20 | 3)
#define SEL_TSS	    0x28
#define GDT_ENTRIES 7 /* null, 4 segments, TSS (two slots) */

/* Page table entry bits. */
#define PTE_P  (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_US (1ULL << 2) /* ring 3 may access */
#define PTE_PS (1ULL << 7) /* 2 MiB page in a page directory */

#define CR0_PE	       (1ULL << 0)
#define CR0_MP	       (1ULL << 1)
#define CR0_ET	       (1ULL << 4)
#define CR0_NE	       (1ULL << 5)
#define CR0_WP	       (1ULL << 16)
#define CR0_PG	       (1ULL << 31)
#define CR4_PAE	       (1ULL << 5)
#define CR4_OSFXSR     (1ULL << 9)
#define CR4_OSXMMEXCPT (1ULL << 10)
#define EFER_LME       (1ULL << 8)
#define EFER_LMA       (1ULL << 10)

/* Vectors for which the CPU pushes an error code. */
#define EXC_WITH_ERRCODE                                                                           \
	((1u << 8) | (1u << 10) | (1u << 11) | (1u << 12) | (1u << 13) | (1u << 14) | (1u << 17) | \
	 (1u << 21) | (1u << 29) | (1u << 30))

static uint64_t nr_pds(uint64_t map_size)
{
	return (map_size + (1ULL << 30) - 1) >> 30;
}

uint64_t minivm_sys_area_size(uint64_t map_size)
{
	return SYS_PD + nr_pds(map_size) * PG;
}

/*
 * A code or data segment descriptor. In 64-bit mode base and limit are ignored but
 * we set the flat values anyway. access: P, DPL, S, type; flags: G, D/B, L.
 */
static uint64_t seg_desc(uint8_t access, uint8_t flags)
{
	return 0xffffULL | (uint64_t)access << 40 | 0xfULL << 48 | (uint64_t)flags << 52;
}

static void write_gdt_tss(char *sys, uint64_t sys_gpa)
{
	uint64_t *gdt = (uint64_t *)(sys + SYS_GDT);
	uint64_t tss_base = sys_gpa + SYS_TSS;
	uint64_t tss_limit = 0x67; /* the 104-byte 64-bit TSS */
	char *tss = sys + SYS_TSS;
	uint64_t ist1 = sys_gpa + SYS_STACK + PG;
	uint16_t iomap = 0x68; /* I/O bitmap beyond the limit: no port access from ring 3 */

	gdt[0] = 0;
	gdt[SEL_KCODE >> 3] = seg_desc(0x9b, 0xa); /* P, DPL0, code exec/read; G, L */
	gdt[SEL_KDATA >> 3] = seg_desc(0x93, 0xc); /* P, DPL0, data r/w; G, D */
	gdt[SEL_UDATA >> 3] = seg_desc(0xf3, 0xc); /* same with DPL3 */
	gdt[SEL_UCODE >> 3] = seg_desc(0xfb, 0xa);
	/* A 64-bit TSS descriptor takes two slots; type 9 = available TSS. */
	gdt[SEL_TSS >> 3] = (tss_limit & 0xffff) | (tss_base & 0xffffff) << 16 | 0x89ULL << 40 |
			    ((tss_base >> 24) & 0xff) << 56;
	gdt[(SEL_TSS >> 3) + 1] = tss_base >> 32;

	/* TSS: RSP0 at 4 and IST1 at 0x24 both point at the exception stack. */
	memset(tss, 0, 0x68);
	memcpy(tss + 4, &ist1, 8);
	memcpy(tss + 0x24, &ist1, 8);
	memcpy(tss + 0x66, &iomap, 2);
}

/*
 * Stub for vector v: make the frame uniform (push a 0 error code if the CPU did
 * not), then write the vector to the exception MMIO address and halt. The VMM reads
 * the frame from the IST stack, whose address it knows.
 */
static void write_stub(uint8_t *p, unsigned int v, uint64_t exc_mmio_gpa)
{
	if (!(EXC_WITH_ERRCODE & (1u << v))) {
		*p++ = 0x6a; /* push $0 */
		*p++ = 0x00;
	}
	*p++ = 0xb8; /* mov $v, %eax */
	memcpy(p, &v, 4);
	p += 4;
	*p++ = 0x48; /* movabs %rax, exc_mmio_gpa */
	*p++ = 0xa3;
	memcpy(p, &exc_mmio_gpa, 8);
	p += 8;
	*p++ = 0xf4; /* 1: hlt */
	*p++ = 0xeb; /* jmp 1b */
	*p++ = 0xfd;
}

static void write_idt(char *sys, uint64_t sys_gpa, uint64_t exc_mmio_gpa)
{
	uint64_t *idt = (uint64_t *)(sys + SYS_IDT);
	unsigned int v;

	memset(idt, 0, PG);
	memset(sys + SYS_STUBS, 0xcc, PG); /* int3 filler */
	for (v = 0; v < NR_EXC; v++) {
		uint64_t handler = sys_gpa + SYS_STUBS + v * STUB_SIZE;

		write_stub((uint8_t *)sys + SYS_STUBS + v * STUB_SIZE, v, exc_mmio_gpa);
		/*
		 * 64-bit interrupt gate: offset 15:0, selector, IST 1, type 0xe (interrupt
		 * gate, IF cleared on entry), DPL 0, present; offset 63:16 above.
		 */
		idt[2 * v] = (handler & 0xffff) | (uint64_t)SEL_KCODE << 16 | 1ULL << 32 |
			     0x8eULL << 40 | ((handler >> 16) & 0xffff) << 48;
		idt[2 * v + 1] = handler >> 32;
	}
}

/* Identity map [0, map_size) with 2 MiB pages, writable and user-accessible. */
static void write_page_tables(char *sys, uint64_t sys_gpa, uint64_t map_size)
{
	uint64_t *pml4 = (uint64_t *)(sys + SYS_PML4);
	uint64_t *pdpt = (uint64_t *)(sys + SYS_PDPT);
	uint64_t i, n = nr_pds(map_size);
	uint64_t flags = PTE_P | PTE_RW | PTE_US;

	memset(pml4, 0, PG);
	memset(pdpt, 0, PG);
	pml4[0] = (sys_gpa + SYS_PDPT) | flags;
	for (i = 0; i < n; i++) {
		uint64_t *pd = (uint64_t *)(sys + SYS_PD + i * PG);
		uint64_t j;

		memset(pd, 0, PG);
		pdpt[i] = (sys_gpa + SYS_PD + i * PG) | flags;
		for (j = 0; j < 512; j++) {
			uint64_t addr = (i << 30) | (j << 21);

			if (addr < map_size)
				pd[j] = addr | flags | PTE_PS;
		}
	}
}

int minivm_setup_long_mode(struct minivm *vm, uint64_t sys_gpa, uint64_t map_size,
			   uint64_t exc_mmio_gpa)
{
	uint64_t size = minivm_sys_area_size(map_size);
	char *sys;

	if (!map_size || map_size & (MINIVM_HUGE_PAGE_SIZE - 1) || map_size > (512ULL << 30))
		return -EINVAL;
	if (sys_gpa & (PG - 1) || sys_gpa + size > map_size)
		return -EINVAL;
	if (exc_mmio_gpa & 7 || exc_mmio_gpa + 8 > map_size ||
	    minivm_gpa_to_hva(vm, exc_mmio_gpa, 8))
		return -EINVAL; /* must be mapped by the guest but backed by no region */
	sys = minivm_gpa_to_hva(vm, sys_gpa, size);
	if (!sys)
		return -EFAULT;

	write_gdt_tss(sys, sys_gpa);
	write_idt(sys, sys_gpa, exc_mmio_gpa);
	write_page_tables(sys, sys_gpa, map_size);

	vm->sys_gpa = sys_gpa;
	vm->gdt_gpa = sys_gpa + SYS_GDT;
	vm->tss_gpa = sys_gpa + SYS_TSS;
	vm->idt_gpa = sys_gpa + SYS_IDT;
	vm->pml4_gpa = sys_gpa + SYS_PML4;
	vm->exc_mmio_gpa = exc_mmio_gpa;
	vm->map_size = map_size;
	return 0;
}

/* A flat segment as KVM_SET_SREGS wants it. */
static struct kvm_segment flat_seg(uint16_t sel, uint8_t type, bool code)
{
	struct kvm_segment s = {
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = type,
		.present = 1,
		.dpl = sel & 3,
		.db = code ? 0 : 1, /* a 64-bit code segment must have D = 0 */
		.s = 1,
		.l = code ? 1 : 0,
		.g = 1,
	};
	return s;
}

int minivm_vcpu_enter_long_mode(struct minivm_vcpu *vcpu, uint64_t rip, uint64_t rsp, bool user)
{
	struct minivm *vm = vcpu->vm;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_segment data;
	int ret;

	if (!vm->pml4_gpa)
		return -EINVAL; /* minivm_setup_long_mode() first */
	ret = minivm_ioctl(vcpu->fd, KVM_GET_SREGS, &sregs);
	if (ret < 0)
		return ret;

	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	sregs.cr3 = vm->pml4_gpa;
	sregs.efer = EFER_LME | EFER_LMA;

	/* Type 11 = execute/read, accessed; type 3 = read/write, accessed. */
	sregs.cs = flat_seg(user ? SEL_UCODE : SEL_KCODE, 11, true);
	data = flat_seg(user ? SEL_UDATA : SEL_KDATA, 3, false);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;

	sregs.gdt.base = vm->gdt_gpa;
	sregs.gdt.limit = GDT_ENTRIES * 8 - 1;
	sregs.idt.base = vm->idt_gpa;
	sregs.idt.limit = 256 * 16 - 1;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.base = vm->tss_gpa;
	sregs.tr.limit = 0x67;
	sregs.tr.selector = SEL_TSS;
	sregs.tr.type = 11; /* busy 64-bit TSS: what LTR would leave */
	sregs.tr.present = 1;
	memset(&sregs.ldt, 0, sizeof(sregs.ldt));
	sregs.ldt.unusable = 1;

	ret = minivm_ioctl(vcpu->fd, KVM_SET_SREGS, &sregs);
	if (ret < 0)
		return ret;

	memset(&regs, 0, sizeof(regs));
	regs.rip = rip;
	regs.rsp = rsp;
	regs.rflags = 0x2; /* bit 1 is always set; interrupts off */
	ret = minivm_ioctl(vcpu->fd, KVM_SET_REGS, &regs);
	return ret < 0 ? ret : 0;
}

int minivm_read_exception(struct minivm_vcpu *vcpu, struct minivm_exit *exit)
{
	struct minivm *vm = vcpu->vm;
	uint64_t vector = 0, frame[6];
	struct kvm_sregs sregs;
	void *stack_top_frame;
	int ret;

	/* The value written is the vector; the frame is at the top of the IST stack. */
	memcpy(&vector, vcpu->run->mmio.data, 4);
	stack_top_frame =
		minivm_gpa_to_hva(vm, vm->sys_gpa + SYS_STACK + PG - sizeof(frame), sizeof(frame));
	if (!stack_top_frame)
		return -EFAULT;
	/* error code, RIP, CS, RFLAGS, RSP, SS (pushed high to low) */
	memcpy(frame, stack_top_frame, sizeof(frame));

	memset(exit, 0, sizeof(*exit));
	exit->reason = MINIVM_EXIT_EXCEPTION;
	exit->kvm_reason = KVM_EXIT_MMIO;
	exit->exception.vector = vector;
	exit->exception.error_code = frame[0];
	exit->exception.rip = frame[1];
	exit->exception.cs = frame[2];
	ret = minivm_ioctl(vcpu->fd, KVM_GET_SREGS, &sregs);
	if (ret < 0)
		return ret;
	exit->exception.cr2 = sregs.cr2;
	return 0;
}
