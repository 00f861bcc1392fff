/* SPDX-License-Identifier: MIT */
/*
 * fuzz/fuzz.h - what the fuzz targets in tools/fuzz/ share: the libFuzzer entry
 * point, a check that aborts with a message (libFuzzer and the replay driver both
 * report an abort as a crash), an fd-leak check and a small JSON syntax check.
 *
 * Each target is built twice (Makefile): with clang -fsanitize=fuzzer,address,
 * undefined into build/fuzz/fuzz/NAME for 'make fuzz', and with the variant's
 * compiler and replay_main.c into build/VARIANT/fuzz/NAME, which 'make fuzz-replay'
 * (and 'make check', in the ASan+UBSan build) runs over fixtures/fuzz/NAME/.
 */
#ifndef VMS_FUZZ_H
#define VMS_FUZZ_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, fmt, ...)                                                           \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: fuzz check failed: %s: " fmt "\n", __FILE__, \
				__LINE__, #cond, ##__VA_ARGS__);                             \
			abort();                                                             \
		}                                                                            \
	} while (0)

/*
 * An fd-leak check. fuzz_fds_mark(), once the target's own fds are open, notes the
 * lowest free fd and which of the 64 after it are open already (inherited ones);
 * fuzz_fds_check(), after a run, fails on any other of them that is open: a run
 * takes its fds from the lowest free numbers up, so what it leaked is among them.
 */
struct fuzz_fds {
	int base;
	uint64_t open; /* bit i: base + i was open at the mark */
};

static inline void fuzz_fds_mark(struct fuzz_fds *f)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	FUZZ_CHECK(fd >= 0, "open /dev/null: %s", strerror(errno));
	close(fd);
	f->base = fd;
	f->open = 0;
	for (int i = 0; i < 64; i++) {
		if (fcntl(fd + i, F_GETFD) >= 0)
			f->open |= 1ull << i;
	}
}

static inline void fuzz_fds_check(const struct fuzz_fds *f)
{
	for (int i = 0; i < 64; i++) {
		if (!(f->open & (1ull << i)))
			FUZZ_CHECK(fcntl(f->base + i, F_GETFD) < 0 && errno == EBADF,
				   "fd %d leaked", f->base + i);
	}
}

/* ---- JSON syntax (RFC 8259; bytes >= 0x80 pass inside strings unchecked) ---- */

static inline void fuzz_json_ws(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
		(*p)++;
}

static inline bool fuzz_json_string(const char **p)
{
	const char *s = *p;

	if (*s++ != '"')
		return false;
	for (;;) {
		unsigned char ch = (unsigned char)*s++;

		if (ch == '"')
			break;
		if (ch < 0x20) /* also the end of the text */
			return false;
		if (ch != '\\')
			continue;
		ch = (unsigned char)*s++;
		if (ch == 'u') {
			for (int i = 0; i < 4; i++, s++) {
				if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
				      (*s >= 'A' && *s <= 'F')))
					return false;
			}
		} else if (!ch || !strchr("\"\\/bfnrt", ch)) {
			return false;
		}
	}
	*p = s;
	return true;
}

static inline bool fuzz_json_digits(const char **p)
{
	const char *s = *p;

	while (**p >= '0' && **p <= '9')
		(*p)++;
	return *p != s;
}

static inline bool fuzz_json_number(const char **p)
{
	if (**p == '-')
		(*p)++;
	if (**p == '0')
		(*p)++;
	else if (!(**p >= '1' && **p <= '9') || !fuzz_json_digits(p))
		return false;
	if (**p == '.') {
		(*p)++;
		if (!fuzz_json_digits(p))
			return false;
	}
	if (**p == 'e' || **p == 'E') {
		(*p)++;
		if (**p == '+' || **p == '-')
			(*p)++;
		if (!fuzz_json_digits(p))
			return false;
	}
	return true;
}

static inline bool fuzz_json_value(const char **p, int depth)
{
	static const char *const words[] = { "true", "false", "null" };
	char open, close;

	fuzz_json_ws(p);
	open = **p;
	close = open == '{' ? '}' : ']';
	if (open == '"')
		return fuzz_json_string(p);
	if (open == '-' || (open >= '0' && open <= '9'))
		return fuzz_json_number(p);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t l = strlen(words[i]);

		if (!strncmp(*p, words[i], l)) {
			*p += l;
			return true;
		}
	}
	if ((open != '{' && open != '[') || depth > 32)
		return false;
	(*p)++;
	fuzz_json_ws(p);
	if (**p == close) {
		(*p)++;
		return true;
	}
	for (;;) {
		if (open == '{') {
			fuzz_json_ws(p);
			if (!fuzz_json_string(p))
				return false;
			fuzz_json_ws(p);
			if (*(*p)++ != ':')
				return false;
		}
		if (!fuzz_json_value(p, depth + 1))
			return false;
		fuzz_json_ws(p);
		if (**p == close) {
			(*p)++;
			return true;
		}
		if (*(*p)++ != ',')
			return false;
	}
}

/* Is text exactly one JSON object (surrounding whitespace allowed)? */
static inline bool fuzz_json_object(const char *text)
{
	const char *p = text;

	fuzz_json_ws(&p);
	if (*p != '{' || !fuzz_json_value(&p, 0))
		return false;
	fuzz_json_ws(&p);
	return *p == '\0';
}

#endif /* VMS_FUZZ_H */
