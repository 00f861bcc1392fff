/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * contract.h - helpers for the kernel-contract selftests.
 *
 * These tests check what the *kernel* does with raw syscalls and ioctls; nothing
 * here calls the vmmswap library. Every helper takes its state explicitly (a
 * struct ct_env, a struct ct_uffd, ...): there is no hidden global state.
 *
 * The helpers never use the harness's ASSERT_* (they may run on helper threads or
 * in forked children); they return 0 / -errno and the test decides. The few
 * CT_*_OR_SKIP() macros expand inside a TEST body and use SKIP()/ASSERT_*().
 */
#ifndef VMMSWAP_SELFTESTS_CONTRACT_H
#define VMMSWAP_SELFTESTS_CONTRACT_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/userfaultfd.h>

#define CT_DEV_UFFD	  "/dev/userfaultfd"
#define CT_THP_SHMEM	  "/sys/kernel/mm/transparent_hugepage/shmem_enabled"
#define CT_IOCTL_BIT(nr)  (1ULL << (nr))

/* Deadlines: how long a positive wait may take, and the negative-check window. */
#define CT_DEADLINE_MS	  5000
#define CT_NEGATIVE_MS	  200

/* What the machine and the process allow. Filled by ct_env_init(). */
struct ct_env {
	size_t page_size;
	unsigned int kmajor, kminor;
	bool root;		/* effective uid 0 */
	bool cap_sys_ptrace;	/* CAP_SYS_PTRACE in the effective set */
	bool dev_uffd;		/* /dev/userfaultfd exists and is read-write accessible */
	int unpriv_sysctl;	/* vm.unprivileged_userfaultfd, -1 if unreadable */
	bool any_kernel;	/* CT_ENV_ANY_KERNEL=1: no version gates (backports) */
};

/*
 * Kernel versions: every contract test names the upstream release that introduced
 * the behaviour it checks (CT_REQUIRE_KERNEL below) and SKIPs, with that reason, on
 * an older kernel; a FAIL on a kernel at or above it is a regression report. The
 * same rule holds for uffd features (ct_features[] in contract.c): a feature the
 * kernel does not offer SKIPs below the release that introduced it and FAILs at or
 * above it, naming what the swap design loses. For a distribution kernel with
 * backports, set CT_ENV_ANY_KERNEL=1 in the environment to run every test regardless
 * of the version; a feature the kernel does not offer then SKIPs.
 */
#define CT_ENV_ANY_KERNEL "CT_ENV_ANY_KERNEL"

void ct_env_init(struct ct_env *env);
bool ct_kernel_at_least(const struct ct_env *env, unsigned int major, unsigned int minor);

/* How to create a uffd (ct_uffd_open 'how' bits). */
#define CT_VIA_DEVICE	  0x1u	/* USERFAULTFD_IOC_NEW on /dev/userfaultfd (>= 6.1) */
#define CT_VIA_SYSCALL	  0x2u	/* userfaultfd(2) */
#define CT_VIA_ANY	  (CT_VIA_DEVICE | CT_VIA_SYSCALL)
#define CT_USER_MODE_ONLY 0x4u	/* always pass UFFD_USER_MODE_ONLY */
#define CT_USER_MODE_OK	  0x8u	/* the test makes only user-mode accesses to registered
				 * memory: fall back to a UFFD_USER_MODE_ONLY syscall uffd
				 * when kernel-mode faults are not permitted */
#define CT_BLOCKING	  0x10u /* no O_NONBLOCK */

struct ct_uffd {
	int fd;
	unsigned int via;	/* CT_VIA_DEVICE or CT_VIA_SYSCALL */
	bool user_mode_only;
	uint64_t features;	/* requested (enabled) features */
	uint64_t offered;	/* every feature the kernel offered */
	uint64_t ioctls;	/* ioctls offered on the uffd itself */
};

/* ct_uffd_open() result: 0 ok, CT_SKIP (reason in why), or -errno (a failure). */
#define CT_SKIP 1

/* Create a raw uffd (no handshake). Returns fd, or -errno with a reason in why. */
int ct_uffd_raw(const struct ct_env *env, unsigned int how, unsigned int *via_out,
		bool *umo_out, char *why, size_t whylen);
/* UFFDIO_API with 'features'; returns 0 or -errno. Outputs may be NULL. */
int ct_uffd_api(int fd, uint64_t features, uint64_t *offered_out, uint64_t *ioctls_out);
/* What the kernel offers, via a throw-away uffd. 0, CT_SKIP or -errno. */
int ct_uffd_offered(const struct ct_env *env, unsigned int how, uint64_t *features_out,
		    uint64_t *ioctls_out, char *why, size_t whylen);
/*
 * Create + handshake with 'features'. CT_SKIP when no permitted path exists, or when
 * a requested feature is not offered and the kernel predates it; -EOPNOTSUPP when the
 * kernel should offer it (ct_features_missing()). why names what is missing.
 */
int ct_uffd_open(struct ct_uffd *u, const struct ct_env *env, unsigned int how,
		 uint64_t features, char *why, size_t whylen);
void ct_uffd_close(struct ct_uffd *u);

/*
 * The uffd features the suite knows, one entry each in ct_features[] (contract.c,
 * the only such table): the upstream release that introduced the feature, the
 * Kconfig option without which the kernel does not offer it (NULL: none beyond
 * CONFIG_USERFAULTFD), and what the swap design loses on a kernel without it.
 */
struct ct_feature {
	uint64_t bit;
	const char *name;		/* "UFFD_FEATURE_..." */
	unsigned int major, minor;	/* the upstream release that introduced it */
	const char *config;
	const char *loses;
};
/* The table entry of one feature bit, or NULL when the bit is not in the table. */
const struct ct_feature *ct_feature_info(uint64_t bit);
/*
 * Requested features the kernel did not offer ('missing'): CT_SKIP (why: the release
 * each needs) when the running kernel predates every one of them, or when
 * CT_ENV_ANY_KERNEL=1; else -EOPNOTSUPP, a failure: why names each feature this
 * kernel should offer and what the design loses without it.
 */
int ct_features_missing(const struct ct_env *env, uint64_t missing, char *why,
			size_t whylen);

/* Thin ioctl wrappers: return 0 or -errno. The output field is stored in *field. */
int ct_register(int fd, void *addr, size_t len, uint64_t mode, uint64_t *ioctls_out);
int ct_unregister(int fd, void *addr, size_t len);
int ct_copy(int fd, void *dst, const void *src, size_t len, uint64_t mode, int64_t *field);
int ct_zeropage(int fd, void *dst, size_t len, uint64_t mode, int64_t *field);
int ct_continue(int fd, void *dst, size_t len, uint64_t mode, int64_t *field);
int ct_poison(int fd, void *dst, size_t len, uint64_t mode, int64_t *field);
int ct_move(int fd, void *dst, void *src, size_t len, uint64_t mode, int64_t *field);
int ct_wake(int fd, void *addr, size_t len);
int ct_writeprotect(int fd, void *addr, size_t len, uint64_t mode);

/*
 * poll() the uffd for POLLIN for up to timeout_ms. Returns 1 readable, 0 timeout,
 * -errno, or -EIO when poll reported POLLERR.
 */
int ct_uffd_wait_readable(int fd, int timeout_ms);
/* Non-blocking read of one message: 0, -EAGAIN when none pending, -errno. */
int ct_uffd_read_msg(int fd, struct uffd_msg *msg);
/* Wait (bounded) for and read one message. 0, -ETIMEDOUT, -errno. */
int ct_uffd_next_msg(int fd, struct uffd_msg *msg, int timeout_ms);

/* A memfd of 'len' bytes mapped MAP_SHARED, optionally twice (alias). */
struct ct_mem {
	int memfd;
	size_t len;
	char *addr;
	char *alias;	/* second mapping of the same memfd, or NULL */
	void *raw;	/* what to munmap for addr (aligned mappings) */
	size_t raw_len;
};
/* align: 0 for no constraint, else the address alignment of addr (power of two). */
int ct_mem_create(struct ct_mem *m, size_t len, bool alias, size_t align);
void ct_mem_destroy(struct ct_mem *m);
/* A MAP_PRIVATE anonymous area, or NULL. */
void *ct_anon_map(size_t len);

/* Pattern helpers: a byte pattern derived from seed and the byte's offset. */
void ct_fill(void *p, size_t len, unsigned int seed);
/* -1 if p matches the pattern, else the first mismatching offset. */
long ct_check(const void *p, size_t len, unsigned int seed);
bool ct_is_zero(const void *p, size_t len);

/*
 * A function run on its own thread, with an eventfd signalled when it returns, so
 * the test can make bounded "has it returned yet?" checks without sleeping.
 */
struct ct_async {
	pthread_t thread;
	int done_efd;
	int start_efd;
	pid_t tid;
	long (*fn)(void *arg);
	void *arg;
	long ret;
	int err;	/* errno after fn */
	bool started, joined;
};
int ct_async_start(struct ct_async *a, long (*fn)(void *arg), void *arg);
/* true when fn has returned within timeout_ms (the thread is then joined). */
bool ct_async_done_within(struct ct_async *a, int timeout_ms);
/* Join if started; only call when the thread is known to be able to finish. */
void ct_async_join(struct ct_async *a);
/*
 * Wait (bounded) until the thread sleeps (state S or D in /proc), i.e. is blocked
 * in a fault or syscall. 0, -ETIMEDOUT, -errno.
 */
int ct_async_wait_sleeping(struct ct_async *a, int timeout_ms);

/* Ready-made async bodies. */
struct ct_madv {
	void *addr;
	size_t len;
	int advice;
};
long ct_madvise_fn(void *arg);	/* madvise(); returns its result, errno in err */

struct ct_touch {
	volatile char *addr;
	size_t len;		/* bytes to read (or write) */
	int write;		/* 0: read; 1: write 'val' to every byte */
	char val;
	unsigned int seed;	/* read: check for pattern 'seed' (0: expect zeroes) */
	int expect_pattern;	/* read: 1 check ct_check(seed), 0 check zeroes, -1 none */
	char first;		/* read: the first byte seen */
};
long ct_touch_fn(void *arg);	/* 0 ok, 1 content mismatch */

/*
 * Event reader thread: reads every uffd message into a queue, and optionally
 * serves page faults (so that callers of madvise() and faulting threads never
 * stay blocked): CT_SERVE_ZERO resolves MISSING faults with UFFDIO_ZEROPAGE
 * (EEXIST -> UFFDIO_WAKE, EAGAIN -> retried after draining events).
 */
enum ct_serve { CT_SERVE_NONE = 0, CT_SERVE_ZERO = 1 };
#define CT_QLEN 256

struct ct_reader {
	int uffd;
	int stop_efd;
	enum ct_serve serve;
	size_t page_size;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct uffd_msg q[CT_QLEN];
	unsigned int head, count;
	unsigned long lost;	/* messages dropped because the queue was full */
	unsigned long nr_faults, nr_removes, nr_served;
	int err;		/* first unexpected error seen by the thread */
};
int ct_reader_start(struct ct_reader *r, int uffd, enum ct_serve serve, size_t page_size);
/* Pop the oldest queued message of type 'event' (0: any). 0 or -ETIMEDOUT. */
int ct_reader_wait(struct ct_reader *r, uint8_t event, struct uffd_msg *msg, int timeout_ms);
/* Page faults read so far (under the reader's lock). */
unsigned long ct_reader_nr_faults(struct ct_reader *r);
/* Stop and join the thread; returns its first error (0 if none). */
int ct_reader_stop(struct ct_reader *r);

/* Pass an fd over a unix socket. */
int ct_send_fd(int sock, int fd);
int ct_recv_fd(int sock);

/* Wait for a child with a deadline; kills it on timeout. 0 + *status, or -ETIMEDOUT. */
int ct_waitpid_deadline(pid_t pid, int *status, int timeout_ms);

/*
 * The hugetlb pool of one huge page size (/sys/kernel/mm/hugepages/hugepages-<kB>kB).
 * ct_hugepages_reserve() makes 'need' huge pages free: as root it raises nr_hugepages
 * by what is missing (saved and changed record the old value), without root it only
 * checks. ct_hugepages_restore() writes the old value back; call it from a teardown
 * that runs also when the test fails (FIXTURE_TEARDOWN_PARENT).
 */
#define CT_HUGEPAGES_DIR "/sys/kernel/mm/hugepages"

struct ct_hugepages {
	unsigned long size_kb;
	char dir[96];		/* CT_HUGEPAGES_DIR "/hugepages-<kB>kB" */
	long saved;		/* nr_hugepages before ct_hugepages_reserve() */
	bool changed;		/* nr_hugepages was written: restore 'saved' */
};
/* Fill in the pool of size_kb. 0, CT_SKIP (no such pool: why) or -errno. */
int ct_hugepages_init(struct ct_hugepages *h, unsigned long size_kb, char *why, size_t whylen);
/* A counter of the pool ("free_hugepages", "resv_hugepages", ...), or -errno. */
long ct_hugepages_read(const struct ct_hugepages *h, const char *name);
/* Make 'need' huge pages free. 0, CT_SKIP (impossible: why) or -errno. */
int ct_hugepages_reserve(struct ct_hugepages *h, const struct ct_env *env, long need,
			 char *why, size_t whylen);
/* Write nr_hugepages back if ct_hugepages_reserve() changed it. 0 or -errno. */
int ct_hugepages_restore(struct ct_hugepages *h);

/* sysfs-style files: read (trailing newline stripped) and write. 0 or -errno. */
int ct_read_file(const char *path, char *buf, size_t len);
int ct_write_file(const char *path, const char *val);
/* The bracketed word of a "[a] b c" sysfs choice, copied to out. 0 or -errno. */
int ct_sysfs_choice(const char *path, char *out, size_t len);

/* Sum of a field (e.g. "ShmemPmdMapped:") in /proc/self/smaps for the VMA at addr, kB. */
long ct_smaps_field_kb(void *addr, const char *field);

uint64_t ct_now_ms(void);

/*
 * Test-body macros (they expand inside a TEST/TEST_F and use the harness).
 */

/* Open a uffd into *u, or SKIP with the reason; a failure (e.g. a feature this kernel
 * should offer is missing) fails the test with the reason. */
#define CT_UFFD_OPEN_OR_SKIP(u, env, how, features)                                \
	do {                                                                       \
		char _why[512] = "";                                               \
		int _r = ct_uffd_open(u, env, how, features, _why, sizeof(_why));  \
		if (_r == CT_SKIP)                                                 \
			SKIP(return, "%s", _why);                                  \
		ASSERT_EQ(0, _r) TH_LOG("creating a uffd failed: %s (%s)",         \
					strerror(-_r), _why);                      \
	} while (0)

/* SKIP unless the kernel is at least major.minor, the release that introduced 'what'. */
#define CT_REQUIRE_KERNEL(env, major, minor, what)                                 \
	do {                                                                       \
		if (!ct_kernel_at_least(env, major, minor))                        \
			SKIP(return, "%s needs Linux %u.%u, running %u.%u", what,  \
			     major, minor, (env)->kmajor, (env)->kminor);          \
	} while (0)

#endif /* VMMSWAP_SELFTESTS_CONTRACT_H */
