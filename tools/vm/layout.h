/* SPDX-License-Identifier: MIT */
/*
 * vm/layout.h - the guest-physical layout every ring-3 guest of this tree shares
 * (minivmm's guest ABI, the guest-level benchmark, kvm_uffd_test): where
 * libminivm's system area goes, where the guest code is loaded, how much the
 * identity map covers, and the MMIO window with libminivm's exception doorbell.
 * Freestanding (the guest programs include it through guest_abi.h).
 */
#ifndef MINIVM_LAYOUT_H
#define MINIVM_LAYOUT_H

#define MINIVM_SYS_GPA	 0x1000ULL		     /* minivm_setup_long_mode()'s system area */
#define MINIVM_CODE_GPA	 0x100000ULL		     /* guest code, entry at its first byte */
#define MINIVM_BOOT_SIZE 0x200000ULL		     /* [0, 2 MiB): boot RAM, never swapped */
#define MINIVM_MAP_SIZE	 (4ULL << 30)		     /* identity-mapped guest-physical space */
#define MINIVM_MMIO_BASE 0xd0000000ULL		     /* doorbells: no RAM behind them */
#define MINIVM_EXC_GPA	 (MINIVM_MMIO_BASE + 0x1000) /* exception reports */

#endif /* MINIVM_LAYOUT_H */
