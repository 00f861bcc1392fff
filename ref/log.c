// SPDX-License-Identifier: MIT
/*
 * log.c - the library's single diagnostics sink (see vmmswap/log.h).
 *
 * The settings are written by the application before it starts library threads
 * and only read afterwards; they are atomics so that a late change is not a race.
 */
#include <stdarg.h>
#include <stdio.h>

#include <vmmswap/log.h>

static _Atomic(vms_log_fn) log_fn;
static void *_Atomic log_arg;
static _Atomic int log_level = VMS_LOG_WARN;

static const char *const level_names[] = { "error", "warning", "info", "debug" };

void vms_set_log_fn(vms_log_fn fn, void *arg)
{
	log_arg = arg;
	log_fn = fn;
}

void vms_set_log_level(enum vms_log_level max_level)
{
	log_level = max_level;
}

void vms_log(enum vms_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	vms_log_fn fn = log_fn;

	if ((int)level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (fn) {
		fn(level, msg, log_arg);
		return;
	}
	fprintf(stderr, "vmmswap: %s: %s\n", level_names[level], msg);
}
