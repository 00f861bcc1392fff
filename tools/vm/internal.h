/* SPDX-License-Identifier: MIT */
/*
 * vm/internal.h - helpers shared between the libminivm files; not part of the API.
 */
#ifndef MINIVM_INTERNAL_H
#define MINIVM_INTERNAL_H

#include "vm/kvm_vm.h"

/* ioctl() returning the result or -errno; retries EINTR except for KVM_RUN. */
int minivm_ioctl(int fd, unsigned long req, void *arg);

/* Fill *exit from the exception frame our IDT stubs left on the IST stack. */
int minivm_read_exception(struct minivm_vcpu *vcpu, struct minivm_exit *exit);

#endif /* MINIVM_INTERNAL_H */
