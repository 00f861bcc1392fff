// SPDX-License-Identifier: MIT
/*
 * kvm_vm.c - VM and vCPU lifetime, guest memory regions and the run loop.
 * The long-mode environment (page tables, GDT, IDT) lives in long_mode.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "vm/kvm_vm.h"
#include "vm/internal.h"

/* ioctl() that returns 0/positive or -errno, retrying on EINTR where it is harmless. */
static int xioctl(int fd, unsigned long req, void *arg)
{
	int ret;

	do {
		ret = ioctl(fd, req, arg);
	} while (ret < 0 && errno == EINTR && req != KVM_RUN);
	return ret < 0 ? -errno : ret;
}

int minivm_ioctl(int fd, unsigned long req, void *arg)
{
	return xioctl(fd, req, arg);
}

static int open_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int ver;

	if (fd < 0)
		return -errno;
	ver = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		close(fd);
		return ver < 0 ? -ENODEV : -EPROTONOSUPPORT;
	}
	return fd;
}

int minivm_kvm_available(void)
{
	int fd = open_kvm();

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int minivm_create(struct minivm *vm)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->vm_fd = -1;
	vm->kvm_fd = open_kvm();
	if (vm->kvm_fd < 0)
		return vm->kvm_fd;

	ret = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret < 0) {
		ret = -errno;
		goto err;
	}
	vm->run_size = ret;

	/* Type 0: the default VM type. */
	ret = xioctl(vm->kvm_fd, KVM_CREATE_VM, (void *)0);
	if (ret < 0)
		goto err;
	vm->vm_fd = ret;
	return 0;
err:
	close(vm->kvm_fd);
	vm->kvm_fd = -1;
	vm->run_size = 0;
	return ret;
}

void minivm_destroy(struct minivm *vm)
{
	if (!vm->run_size)
		return; /* never created (or zeroed): no fds to close */
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = -1;
	vm->kvm_fd = -1;
	vm->run_size = 0;
}

int minivm_check_cap(struct minivm *vm, long cap)
{
	return xioctl(vm->vm_fd, KVM_CHECK_EXTENSION, (void *)cap);
}

int minivm_add_region(struct minivm *vm, uint64_t gpa, void *hva, uint64_t size)
{
	struct kvm_userspace_memory_region mr;
	struct minivm_region *r;
	int i, ret;

	if (!size || (gpa | size | (uintptr_t)hva) & (MINIVM_PAGE_SIZE - 1))
		return -EINVAL;
	if (vm->nr_regions >= MINIVM_MAX_REGIONS)
		return -ENOSPC;
	for (i = 0; i < vm->nr_regions; i++) {
		r = &vm->regions[i];
		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return -EEXIST;
	}

	/* Slots are handed out in order; the table index is the slot number. */
	memset(&mr, 0, sizeof(mr));
	mr.slot = vm->nr_regions;
	mr.guest_phys_addr = gpa;
	mr.memory_size = size;
	mr.userspace_addr = (uintptr_t)hva;
	ret = xioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr);
	if (ret < 0)
		return ret;

	r = &vm->regions[vm->nr_regions++];
	r->slot = mr.slot;
	r->gpa = gpa;
	r->size = size;
	r->hva = hva;
	return r->slot;
}

void *minivm_gpa_to_hva(struct minivm *vm, uint64_t gpa, uint64_t len)
{
	int i;

	for (i = 0; i < vm->nr_regions; i++) {
		struct minivm_region *r = &vm->regions[i];

		if (gpa >= r->gpa && len <= r->size && gpa - r->gpa <= r->size - len)
			return (char *)r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int minivm_load(struct minivm *vm, uint64_t gpa, const void *bytes, size_t len)
{
	void *dst = minivm_gpa_to_hva(vm, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, bytes, len);
	return 0;
}

/* Tell KVM which CPU features the guest has: all it supports (long mode included). */
static int set_supported_cpuid(struct minivm_vcpu *vcpu)
{
	struct kvm_cpuid2 *cpuid = NULL;
	int nent = 64, ret;

	for (;;) {
		free(cpuid);
		cpuid = calloc(1, sizeof(*cpuid) + nent * sizeof(cpuid->entries[0]));
		if (!cpuid)
			return -ENOMEM;
		cpuid->nent = nent;
		ret = xioctl(vcpu->vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid);
		if (ret != -E2BIG || nent >= 4096)
			break;
		nent *= 2;
	}
	if (ret >= 0)
		ret = xioctl(vcpu->fd, KVM_SET_CPUID2, cpuid);
	free(cpuid);
	return ret < 0 ? ret : 0;
}

int minivm_vcpu_create(struct minivm *vm, int id, struct minivm_vcpu *vcpu)
{
	void *run;
	int ret;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->id = id;
	ret = xioctl(vm->vm_fd, KVM_CREATE_VCPU, (void *)(long)id);
	if (ret < 0)
		return ret;
	vcpu->fd = ret;

	run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (run == MAP_FAILED) {
		ret = -errno;
		goto err_close;
	}
	vcpu->run = run;

	ret = set_supported_cpuid(vcpu);
	if (ret < 0)
		goto err_unmap;
	return 0;

err_unmap:
	munmap(vcpu->run, vm->run_size);
err_close:
	close(vcpu->fd);
	vcpu->fd = -1;
	vcpu->run = NULL;
	return ret;
}

void minivm_vcpu_destroy(struct minivm_vcpu *vcpu)
{
	if (!vcpu->run)
		return; /* never created (or zeroed) */
	munmap(vcpu->run, vcpu->vm->run_size);
	close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

int minivm_vcpu_set_args(struct minivm_vcpu *vcpu, uint64_t a0, uint64_t a1, uint64_t a2,
			 uint64_t a3)
{
	struct kvm_regs regs;
	int ret;

	ret = xioctl(vcpu->fd, KVM_GET_REGS, &regs);
	if (ret < 0)
		return ret;
	regs.rdi = a0;
	regs.rsi = a1;
	regs.rdx = a2;
	regs.rcx = a3;
	ret = xioctl(vcpu->fd, KVM_SET_REGS, &regs);
	return ret < 0 ? ret : 0;
}

void minivm_vcpu_mmio_reply(struct minivm_vcpu *vcpu, uint64_t value)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len <= 8 ? run->mmio.len : 8;

	/* x86 is little endian: the low 'len' bytes are the answer. */
	memcpy(run->mmio.data, &value, len);
}

void minivm_vcpu_request_exit(struct minivm_vcpu *vcpu, bool on)
{
	__atomic_store_n(&vcpu->run->immediate_exit, on ? 1 : 0, __ATOMIC_SEQ_CST);
}

static void fill_mmio(struct kvm_run *run, struct minivm_exit *exit)
{
	uint32_t len = run->mmio.len <= 8 ? run->mmio.len : 8;

	exit->reason = MINIVM_EXIT_MMIO;
	exit->mmio.addr = run->mmio.phys_addr;
	exit->mmio.len = run->mmio.len;
	exit->mmio.is_write = run->mmio.is_write;
	exit->mmio.data = 0;
	if (run->mmio.is_write)
		memcpy(&exit->mmio.data, run->mmio.data, len);
}

static void fill_io(struct kvm_run *run, struct minivm_exit *exit)
{
	uint32_t size = run->io.size <= 4 ? run->io.size : 4;

	exit->reason = MINIVM_EXIT_IO;
	exit->io.port = run->io.port;
	exit->io.size = run->io.size;
	exit->io.is_out = run->io.direction == KVM_EXIT_IO_OUT;
	exit->io.data = 0;
	if (exit->io.is_out)
		memcpy(&exit->io.data, (char *)run + run->io.data_offset, size);
}

int minivm_vcpu_run(struct minivm_vcpu *vcpu, struct minivm_exit *exit)
{
	struct kvm_run *run = vcpu->run;
	int ret;

	memset(exit, 0, sizeof(*exit));
	ret = xioctl(vcpu->fd, KVM_RUN, NULL);
	if (ret == -EINTR) {
		exit->reason = MINIVM_EXIT_INTR;
		exit->kvm_reason = KVM_EXIT_INTR;
		return 0;
	}
	if (ret < 0)
		return ret;

	exit->kvm_reason = run->exit_reason;
	switch (run->exit_reason) {
	case KVM_EXIT_MMIO:
		/* Our exception stubs report through one reserved MMIO address. */
		if (vcpu->vm->exc_mmio_gpa && run->mmio.is_write &&
		    run->mmio.phys_addr == vcpu->vm->exc_mmio_gpa)
			return minivm_read_exception(vcpu, exit);
		fill_mmio(run, exit);
		break;
	case KVM_EXIT_IO:
		fill_io(run, exit);
		break;
	case KVM_EXIT_HLT:
		exit->reason = MINIVM_EXIT_HLT;
		break;
	case KVM_EXIT_SHUTDOWN:
		exit->reason = MINIVM_EXIT_SHUTDOWN;
		break;
	case KVM_EXIT_INTR:
		exit->reason = MINIVM_EXIT_INTR;
		break;
	case KVM_EXIT_FAIL_ENTRY:
		exit->reason = MINIVM_EXIT_FAIL_ENTRY;
		exit->fail.hw_reason = run->fail_entry.hardware_entry_failure_reason;
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		exit->reason = MINIVM_EXIT_INTERNAL_ERROR;
		exit->fail.suberror = run->internal.suberror;
		break;
	default:
		exit->reason = MINIVM_EXIT_OTHER;
		break;
	}
	return 0;
}

const char *minivm_exit_name(enum minivm_exit_reason reason)
{
	switch (reason) {
	case MINIVM_EXIT_MMIO:
		return "MMIO";
	case MINIVM_EXIT_IO:
		return "IO";
	case MINIVM_EXIT_HLT:
		return "HLT";
	case MINIVM_EXIT_SHUTDOWN:
		return "SHUTDOWN";
	case MINIVM_EXIT_EXCEPTION:
		return "EXCEPTION";
	case MINIVM_EXIT_INTR:
		return "INTR";
	case MINIVM_EXIT_FAIL_ENTRY:
		return "FAIL_ENTRY";
	case MINIVM_EXIT_INTERNAL_ERROR:
		return "INTERNAL_ERROR";
	case MINIVM_EXIT_OTHER:
		return "OTHER";
	}
	return "UNKNOWN";
}
