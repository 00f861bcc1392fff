// SPDX-License-Identifier: MIT
/*
 * replay_main - a main() for a fuzz target without libFuzzer: runs
 * LLVMFuzzerTestOneInput() once on every file named on the command line (a
 * directory: on every regular file in it, in name order). Built with the variant's
 * compiler and sanitizers (build/san: gcc's ASan+UBSan), so the corpus and every
 * kept crash input are replayed in 'make check' without clang.
 *
 * Usage: build/san/fuzz/NAME FILE|DIR...
 * Output: one line "NAME: N inputs, no crash"; a failing input aborts (the
 * sanitizer or FUZZ_CHECK says why) after "replaying FILE" names it.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "fuzz/fuzz.h"

/* The whole file in a fresh heap buffer of exactly its size (ASan sees overreads). */
static uint8_t *read_file(const char *path, size_t *size)
{
	uint8_t *buf = NULL;
	struct stat st;
	size_t done = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0, "%s: %s", path, strerror(errno));
	FUZZ_CHECK(!fstat(fd, &st), "%s: %s", path, strerror(errno));
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	FUZZ_CHECK(buf, "out of memory");
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		FUZZ_CHECK(n > 0, "%s: short read", path);
		done += (size_t)n;
	}
	close(fd);
	*size = done;
	return buf;
}

static void replay(const char *path)
{
	size_t size;
	uint8_t *buf = read_file(path, &size);

	fprintf(stderr, "replaying %s\n", path);
	LLVMFuzzerTestOneInput(buf, size);
	free(buf);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	unsigned long n = 0;
	const char *name;

	for (int i = 1; i < argc; i++) {
		struct dirent **ents;
		struct stat st;
		int k;

		FUZZ_CHECK(!stat(argv[i], &st), "%s: %s", argv[i], strerror(errno));
		if (!S_ISDIR(st.st_mode)) {
			replay(argv[i]);
			n++;
			continue;
		}
		k = scandir(argv[i], &ents, NULL, by_name);
		FUZZ_CHECK(k >= 0, "%s: %s", argv[i], strerror(errno));
		for (int j = 0; j < k; j++) {
			char path[4096];

			snprintf(path, sizeof(path), "%s/%s", argv[i], ents[j]->d_name);
			if (!stat(path, &st) && S_ISREG(st.st_mode)) {
				replay(path);
				n++;
			}
			free(ents[j]);
		}
		free(ents);
	}
	name = strrchr(argv[0], '/');
	printf("%s: %lu inputs, no crash\n", name ? name + 1 : argv[0], n);
	return 0;
}
