/* SPDX-License-Identifier: MIT */
/*
 * vmmswap/log.h - where libvmmswap's diagnostics go.
 *
 * Contract: the library never prints to stdout. Every diagnostic goes through
 * vms_log(), which calls the function set with vms_set_log_fn() (default: one line
 * on stderr with a "vmmswap: " prefix). The log function may be called from any
 * library thread, so it must be thread-safe; the default is (one fprintf per line).
 */
#ifndef VMMSWAP_LOG_H
#define VMMSWAP_LOG_H

enum vms_log_level {
	VMS_LOG_ERROR = 0,
	VMS_LOG_WARN = 1,
	VMS_LOG_INFO = 2,
	VMS_LOG_DEBUG = 3,
};

typedef void (*vms_log_fn)(enum vms_log_level level, const char *msg, void *arg);

/* Set the log function (NULL restores the default) and the most verbose level shown. */
void vms_set_log_fn(vms_log_fn fn, void *arg);
void vms_set_log_level(enum vms_log_level max_level);

void vms_log(enum vms_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* VMMSWAP_LOG_H */
