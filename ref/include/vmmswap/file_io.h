/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/file_io.h - whole-buffer pread/pwrite.
 *
 * Contract: transfer exactly len bytes at off, retrying short transfers and EINTR.
 * Return 0, a negative errno, or -EIO when the file ended (read) or the kernel
 * accepted nothing (write) before len bytes were transferred.
 */
#ifndef VMMSWAP_FILE_IO_H
#define VMMSWAP_FILE_IO_H

#include <stdint.h>

int vms_pwrite_all(int fd, const void *buf, uint64_t len, uint64_t off);
int vms_pread_all(int fd, void *buf, uint64_t len, uint64_t off);

#endif /* VMMSWAP_FILE_IO_H */
