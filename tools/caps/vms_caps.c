// SPDX-License-Identifier: MIT
/*
 * vms_caps - report what the running kernel offers for userfaultfd-based guest
 * memory swap: uffd features and ioctls (also per registration mode on shmem), the
 * ways a uffd can be created here, the privileges that decide that, THP settings
 * and KVM.
 *
 * Usage: vms_caps [--json] [--help]
 *
 * Everything is gathered first into a struct report, then printed as text or JSON,
 * so the two outputs cannot disagree.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/kvm.h>

#include <vmmswap/uffd.h>

/* Capabilities newer than Debian's 6.1 <linux/kvm.h>. */
#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_CAP_MEMORY_FAULT_INFO
#define KVM_CAP_MEMORY_FAULT_INFO 232
#endif
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD 234
#endif

static const struct {
	const char *name;
	long cap;
} kvm_caps[] = {
	{ "KVM_CAP_USER_MEMORY", KVM_CAP_USER_MEMORY },
	{ "KVM_CAP_SYNC_MMU", KVM_CAP_SYNC_MMU },
	{ "KVM_CAP_NR_MEMSLOTS", KVM_CAP_NR_MEMSLOTS },
	{ "KVM_CAP_NR_VCPUS", KVM_CAP_NR_VCPUS },
	{ "KVM_CAP_MAX_VCPUS", KVM_CAP_MAX_VCPUS },
	{ "KVM_CAP_IMMEDIATE_EXIT", KVM_CAP_IMMEDIATE_EXIT },
	{ "KVM_CAP_READONLY_MEM", KVM_CAP_READONLY_MEM },
	{ "KVM_CAP_ASYNC_PF", KVM_CAP_ASYNC_PF },
	{ "KVM_CAP_USER_MEMORY2", KVM_CAP_USER_MEMORY2 },
	{ "KVM_CAP_MEMORY_FAULT_INFO", KVM_CAP_MEMORY_FAULT_INFO },
	{ "KVM_CAP_GUEST_MEMFD", KVM_CAP_GUEST_MEMFD },
};
#define NR_KVM_CAPS (sizeof(kvm_caps) / sizeof(kvm_caps[0]))

/* Registration modes probed on a shmem (memfd) range, with the feature each needs. */
static const struct {
	const char *name;
	uint64_t mode;
	uint64_t feature;
} reg_modes[] = {
	{ "MISSING", UFFDIO_REGISTER_MODE_MISSING, UFFD_FEATURE_MISSING_SHMEM },
	{ "WP", UFFDIO_REGISTER_MODE_WP, UFFD_FEATURE_WP_HUGETLBFS_SHMEM },
	{ "MINOR", UFFDIO_REGISTER_MODE_MINOR, UFFD_FEATURE_MINOR_SHMEM },
};
#define NR_REG_MODES (sizeof(reg_modes) / sizeof(reg_modes[0]))

/* Creation paths: the flags for vms_uffd_new() that select exactly one path. */
static const struct {
	const char *name;  /* for JSON */
	const char *label; /* for text */
	unsigned int flags;
} paths[] = {
	{ "device", "USERFAULTFD_IOC_NEW", VMS_UFFD_NO_SYSCALL },
	{ "device_user_mode_only", "USERFAULTFD_IOC_NEW + UFFD_USER_MODE_ONLY",
	  VMS_UFFD_NO_SYSCALL | VMS_UFFD_USER_MODE_ONLY },
	{ "syscall", "userfaultfd(2)", VMS_UFFD_NO_DEVICE },
	{ "syscall_user_mode_only", "userfaultfd(2) + UFFD_USER_MODE_ONLY",
	  VMS_UFFD_NO_DEVICE | VMS_UFFD_USER_MODE_ONLY },
};
#define NR_PATHS (sizeof(paths) / sizeof(paths[0]))

struct report {
	char release[65];

	int probe_err;		   /* 0, or why no uffd could be created */
	bool user_mode_only;	   /* the probe needed UFFD_USER_MODE_ONLY (unprivileged) */
	uint64_t features;	   /* offered by UFFDIO_API */
	uint64_t api_ioctls;	   /* offered on the uffd itself */
	int reg_err[NR_REG_MODES]; /* 0, or why registering that mode failed */
	uint64_t reg_ioctls[NR_REG_MODES];

	int dev_access_err; /* access(/dev/userfaultfd, R|W) */
	int path_err[NR_PATHS];

	unsigned int euid;
	int cap_sys_ptrace; /* 1, 0, or a negative errno */
	int unpriv_uffd;    /* the sysctl value, or -1 if unreadable */

	char thp_enabled[128], thp_shmem[128], thp_pmd_size[32]; /* "" if unreadable */

	int kvm_err; /* 0 if /dev/kvm opened */
	int kvm_api;
	int kvm_cap[NR_KVM_CAPS]; /* value, or a negative errno */
};

static const char *err_name(int err)
{
	const char *s = strerrorname_np(err < 0 ? -err : err);

	return s ? s : "unknown error";
}

/* Read one line of a small file into buf (newline stripped); "" on error. */
static void read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (!f)
		return;
	if (!fgets(buf, size, f))
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/* Register a 2-page memfd range once per mode and keep the ioctls each offers. */
static void probe_registration(struct report *r)
{
	uint64_t want = 0;
	struct vms_uffd u;
	size_t len = 2 * (size_t)sysconf(_SC_PAGESIZE);
	unsigned int i;
	void *mem;
	int fd, ret;

	for (i = 0; i < NR_REG_MODES; i++)
		want |= reg_modes[i].feature;
	/* Prefer a full uffd: KVM's accesses to guest RAM are kernel-mode. */
	ret = vms_uffd_create(&u, r->features & want,
			      r->user_mode_only ? VMS_UFFD_USER_MODE_ONLY : 0);
	if (ret) {
		for (i = 0; i < NR_REG_MODES; i++)
			r->reg_err[i] = ret;
		return;
	}
	fd = memfd_create("vms_caps", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, len) < 0) {
		ret = -errno;
		goto out;
	}
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		ret = -errno;
		goto out;
	}
	for (i = 0; i < NR_REG_MODES; i++) {
		r->reg_err[i] = vms_uffd_register(u.fd, (uintptr_t)mem, len, reg_modes[i].mode, 0,
						  &r->reg_ioctls[i]);
		if (!r->reg_err[i])
			vms_uffd_unregister(u.fd, (uintptr_t)mem, len);
	}
	munmap(mem, len);
	ret = 0;
out:
	if (ret)
		for (i = 0; i < NR_REG_MODES; i++)
			r->reg_err[i] = ret;
	if (fd >= 0)
		close(fd);
	vms_uffd_close(&u);
}

static void probe_uffd(struct report *r)
{
	unsigned int i;

	r->probe_err = vms_uffd_probe(0, &r->features, &r->api_ioctls);
	if (r->probe_err &&
	    !vms_uffd_probe(VMS_UFFD_USER_MODE_ONLY, &r->features, &r->api_ioctls)) {
		/* Unprivileged: only a user-mode-only uffd is allowed; still report. */
		r->probe_err = 0;
		r->user_mode_only = true;
	}
	if (r->probe_err) {
		for (i = 0; i < NR_REG_MODES; i++)
			r->reg_err[i] = r->probe_err;
	} else {
		probe_registration(r);
	}

	r->dev_access_err = access("/dev/userfaultfd", R_OK | W_OK) ? -errno : 0;
	for (i = 0; i < NR_PATHS; i++) {
		int fd;

		r->path_err[i] = vms_uffd_new(paths[i].flags, &fd, NULL);
		if (!r->path_err[i])
			close(fd);
	}
}

static void probe_privileges(struct report *r)
{
	cap_flag_value_t v = CAP_CLEAR;
	char buf[32];
	cap_t caps;

	r->euid = geteuid();
	caps = cap_get_proc();
	if (!caps) {
		r->cap_sys_ptrace = -errno;
	} else {
		if (cap_get_flag(caps, CAP_SYS_PTRACE, CAP_EFFECTIVE, &v))
			r->cap_sys_ptrace = -errno;
		else
			r->cap_sys_ptrace = v == CAP_SET;
		cap_free(caps);
	}
	read_line("/proc/sys/vm/unprivileged_userfaultfd", buf, sizeof(buf));
	r->unpriv_uffd = buf[0] ? (int)strtol(buf, NULL, 10) : -1;
}

static void probe_kvm(struct report *r)
{
	unsigned int i;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	r->kvm_err = fd < 0 ? -errno : 0;
	if (fd < 0)
		return;
	r->kvm_api = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (r->kvm_api < 0)
		r->kvm_api = -errno;
	for (i = 0; i < NR_KVM_CAPS; i++) {
		r->kvm_cap[i] = ioctl(fd, KVM_CHECK_EXTENSION, kvm_caps[i].cap);
		if (r->kvm_cap[i] < 0)
			r->kvm_cap[i] = -errno;
	}
	close(fd);
}

static void gather(struct report *r)
{
	struct utsname u;

	memset(r, 0, sizeof(*r));
	if (!uname(&u))
		snprintf(r->release, sizeof(r->release), "%s", u.release);
	probe_uffd(r);
	probe_privileges(r);
	read_line("/sys/kernel/mm/transparent_hugepage/enabled", r->thp_enabled,
		  sizeof(r->thp_enabled));
	read_line("/sys/kernel/mm/transparent_hugepage/shmem_enabled", r->thp_shmem,
		  sizeof(r->thp_shmem));
	read_line("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", r->thp_pmd_size,
		  sizeof(r->thp_pmd_size));
	probe_kvm(r);
}

/* The bits of mask that the table does not name. */
static uint64_t unknown_bits(const struct vms_uffd_bit_name *names, uint64_t mask)
{
	for (; names->name; names++)
		mask &= ~names->bit;
	return mask;
}

/* ---- text output ---- */

static void text_bits(const struct vms_uffd_bit_name *names, uint64_t mask)
{
	const struct vms_uffd_bit_name *n;
	uint64_t unknown = unknown_bits(names, mask);

	for (n = names; n->name; n++)
		if (mask & n->bit)
			printf(" %s", n->name);
	if (unknown)
		printf(" unknown:0x%llx", (unsigned long long)unknown);
	if (!mask)
		printf(" (none)");
	printf("\n");
}

static const char *ok_or(int err)
{
	return err ? err_name(err) : "ok";
}

static void print_text(const struct report *r)
{
	unsigned int i;

	printf("kernel release: %s\n\n", r->release);

	printf("userfaultfd:\n");
	if (r->probe_err) {
		printf("  no uffd could be created: %s\n", err_name(r->probe_err));
	} else {
		if (r->user_mode_only)
			printf("  (probed with UFFD_USER_MODE_ONLY: no full uffd is allowed)\n");
		printf("  features offered (0x%llx):", (unsigned long long)r->features);
		text_bits(vms_uffd_feature_names, r->features);
		printf("  ioctls on the uffd (0x%llx):", (unsigned long long)r->api_ioctls);
		text_bits(vms_uffd_ioctl_names, r->api_ioctls);
		printf("  ioctls on a registered shmem range:\n");
		for (i = 0; i < NR_REG_MODES; i++) {
			printf("    %-8s", reg_modes[i].name);
			if (r->reg_err[i])
				printf(" register failed: %s\n", err_name(r->reg_err[i]));
			else
				text_bits(vms_uffd_ioctl_names, r->reg_ioctls[i]);
		}
	}
	printf("  creation paths:\n");
	printf("    %-42s %s\n", "/dev/userfaultfd read/write access",
	       r->dev_access_err ? err_name(r->dev_access_err) : "yes");
	for (i = 0; i < NR_PATHS; i++)
		printf("    %-42s %s\n", paths[i].label, ok_or(r->path_err[i]));

	printf("\nprivileges:\n");
	printf("  euid                          %u\n", r->euid);
	if (r->cap_sys_ptrace < 0)
		printf("  CAP_SYS_PTRACE (effective)    unknown: %s\n",
		       err_name(r->cap_sys_ptrace));
	else
		printf("  CAP_SYS_PTRACE (effective)    %s\n", r->cap_sys_ptrace ? "yes" : "no");
	if (r->unpriv_uffd < 0)
		printf("  vm.unprivileged_userfaultfd   unreadable\n");
	else
		printf("  vm.unprivileged_userfaultfd   %d\n", r->unpriv_uffd);

	printf("\ntransparent huge pages:\n");
	printf("  enabled                       %s\n", r->thp_enabled[0] ? r->thp_enabled : "-");
	printf("  shmem_enabled                 %s\n", r->thp_shmem[0] ? r->thp_shmem : "-");
	printf("  hpage_pmd_size                %s\n", r->thp_pmd_size[0] ? r->thp_pmd_size : "-");

	printf("\nKVM:\n");
	if (r->kvm_err) {
		printf("  /dev/kvm                      %s\n", err_name(r->kvm_err));
		return;
	}
	printf("  /dev/kvm                      ok\n");
	printf("  KVM_GET_API_VERSION           %d\n", r->kvm_api);
	for (i = 0; i < NR_KVM_CAPS; i++) {
		if (r->kvm_cap[i] < 0)
			printf("  %-29s %s\n", kvm_caps[i].name, err_name(r->kvm_cap[i]));
		else
			printf("  %-29s %d\n", kvm_caps[i].name, r->kvm_cap[i]);
	}
}

/* ---- JSON output ---- */

/* A JSON string; the inputs here are sysfs text, so escape only what JSON needs. */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* null for no error, else the errno name. */
static void json_err(int err)
{
	if (err)
		json_str(err_name(err));
	else
		printf("null");
}

static void json_bits(const struct vms_uffd_bit_name *names, uint64_t mask)
{
	const struct vms_uffd_bit_name *n;
	bool first = true;

	printf("{\"raw\": \"0x%llx\", \"names\": [", (unsigned long long)mask);
	for (n = names; n->name; n++) {
		if (!(mask & n->bit))
			continue;
		printf("%s", first ? "" : ", ");
		json_str(n->name);
		first = false;
	}
	printf("], \"unknown\": \"0x%llx\"}", (unsigned long long)unknown_bits(names, mask));
}

static void json_text_or_null(const char *s)
{
	if (s[0])
		json_str(s);
	else
		printf("null");
}

static void print_json(const struct report *r)
{
	unsigned int i;

	printf("{\n  \"kernel_release\": ");
	json_str(r->release);

	printf(",\n  \"uffd\": {\n    \"probe_error\": ");
	json_err(r->probe_err);
	printf(",\n    \"probed_user_mode_only\": %s", r->user_mode_only ? "true" : "false");
	if (!r->probe_err) {
		printf(",\n    \"features\": ");
		json_bits(vms_uffd_feature_names, r->features);
		printf(",\n    \"ioctls\": ");
		json_bits(vms_uffd_ioctl_names, r->api_ioctls);
	}
	printf(",\n    \"shmem_register\": {");
	for (i = 0; i < NR_REG_MODES; i++) {
		printf("%s\n      \"%s\": {\"error\": ", i ? "," : "", reg_modes[i].name);
		json_err(r->reg_err[i]);
		if (!r->reg_err[i]) {
			printf(", \"ioctls\": ");
			json_bits(vms_uffd_ioctl_names, r->reg_ioctls[i]);
		}
		printf("}");
	}
	printf("\n    },\n    \"creation\": {\n      \"dev_userfaultfd_access_error\": ");
	json_err(r->dev_access_err);
	for (i = 0; i < NR_PATHS; i++) {
		printf(",\n      \"%s\": {\"ok\": %s, \"error\": ", paths[i].name,
		       r->path_err[i] ? "false" : "true");
		json_err(r->path_err[i]);
		printf("}");
	}
	printf("\n    }\n  },\n");

	printf("  \"privileges\": {\"euid\": %u, \"cap_sys_ptrace\": ", r->euid);
	if (r->cap_sys_ptrace < 0)
		printf("null");
	else
		printf("%s", r->cap_sys_ptrace ? "true" : "false");
	printf(", \"unprivileged_userfaultfd\": ");
	if (r->unpriv_uffd < 0)
		printf("null");
	else
		printf("%d", r->unpriv_uffd);
	printf("},\n");

	printf("  \"thp\": {\"enabled\": ");
	json_text_or_null(r->thp_enabled);
	printf(", \"shmem_enabled\": ");
	json_text_or_null(r->thp_shmem);
	printf(", \"hpage_pmd_size\": ");
	if (r->thp_pmd_size[0])
		printf("%llu", strtoull(r->thp_pmd_size, NULL, 10));
	else
		printf("null");
	printf("},\n");

	printf("  \"kvm\": {\"error\": ");
	json_err(r->kvm_err);
	if (!r->kvm_err) {
		printf(", \"api_version\": %d, \"caps\": {", r->kvm_api);
		for (i = 0; i < NR_KVM_CAPS; i++) {
			printf("%s\"%s\": ", i ? ", " : "", kvm_caps[i].name);
			if (r->kvm_cap[i] < 0)
				json_err(r->kvm_cap[i]);
			else
				printf("%d", r->kvm_cap[i]);
		}
		printf("}");
	}
	printf("}\n}\n");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vms_caps [--json] [--help]\n"
		   "Report the userfaultfd, privilege, THP and KVM capabilities of the\n"
		   "running kernel that userfaultfd-based guest memory swap depends on.\n"
		   "  --json   machine-readable output\n"
		   "  --help   this text\n");
}

int main(int argc, char **argv)
{
	struct report r;
	bool json = false;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "vms_caps: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	gather(&r);
	if (json)
		print_json(&r);
	else
		print_text(&r);
	return fflush(stdout) ? 1 : 0;
}
