// SPDX-License-Identifier: GPL-2.0
/*
 * The USDT probes of libbring.so: provider "bring", the four wait probes,
 * each guarded by a semaphore, with arguments libbpf can parse.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"

/* libbring.so of this build: <out>/lib, two levels above this program. */
static int find_lib(char *path, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;
	int i;

	if (n < 0)
		return -errno;
	exe[n] = '\0';
	for (i = 0; i < 3; i++) {
		slash = strrchr(exe, '/');
		if (!slash)
			return -ENOENT;
		*slash = '\0';
	}
	snprintf(path, size, "%.*s/lib/libbring.so", (int)(size - 17), exe);
	return access(path, R_OK) ? -errno : 0;
}

struct probe_note {
	char name[64];
	char args[256];
	int semaphore;
};

/* Parse `readelf -n` output into up to @max notes of provider bring. */
static int read_notes(const char *lib, struct probe_note *notes, int max)
{
	char cmd[PATH_MAX + 64], line[512];
	int n = -1, bring = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "readelf -n '%s' 2>&1", lib);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *p;

		if ((p = strstr(line, "Provider: "))) {
			bring = !strncmp(p + 10, "bring\n", 6);
			if (bring && n + 1 < max)
				memset(&notes[++n], 0, sizeof(notes[0]));
		} else if (bring && n >= 0 && (p = strstr(line, "Name: "))) {
			sscanf(p + 6, "%63s", notes[n].name);
		} else if (bring && n >= 0 && (p = strstr(line, "Semaphore: "))) {
			notes[n].semaphore = strtoull(p + 11, NULL, 16) != 0;
		} else if (bring && n >= 0 && (p = strstr(line, "Arguments: "))) {
			snprintf(notes[n].args, sizeof(notes[n].args), "%s",
				 p + 11);
		}
	}
	pclose(f);
	return n + 1;
}

static int find_count(const struct probe_note *notes, int n, const char *name)
{
	int i, k = 0;

	for (i = 0; i < n; i++)
		k += !strcmp(notes[i].name, name);
	return k;
}

static int count_args(const char *args)
{
	int n = 0;

	for (; *args; args++)
		if (*args == '@')
			n++;
	return n;
}

TEST(wait_probes_are_in_the_shared_library)
{
	/*
	 * The ring waits at two sites each: the blocking call, and prepare
	 * or finish, where a writer's wait starts in two prepares (for
	 * room, bring_write_wait_prepare(); for readers to drain,
	 * bring_drain_wait_prepare()) and a reader's in two (for a message,
	 * for one past those it holds: bring_reader_wait_more_prepare());
	 * the durable wait at one (a push's flush).
	 */
	static const struct {
		const char *name;
		int args, sites;
	} want[] = {
		{ "write_wait_start", 5, 3 },	{ "write_wait_end", 6, 2 },
		{ "read_wait_start", 4, 3 },	{ "read_wait_end", 5, 2 },
		{ "durable_wait_start", 3, 1 }, { "durable_wait_end", 4, 1 },
	};
	const unsigned int nr_want = sizeof(want) / sizeof(want[0]);
	struct probe_note notes[16];
	char lib[PATH_MAX];
	unsigned int k;
	int i, n;

	if (find_lib(lib, sizeof(lib)))
		SKIP(return, "libbring.so not built next to this test");
	if (system("readelf --version >/dev/null 2>&1"))
		SKIP(return, "readelf (binutils) is not installed");
	n = read_notes(lib, notes, 16);
	ASSERT_EQ(12, n) TH_LOG("bring probes in %s: %d", lib, n);
	for (i = 0; i < n; i++) {
		const struct probe_note *p = &notes[i];

		for (k = 0; k < nr_want && strcmp(want[k].name, p->name); k++)
			;
		ASSERT_LT(k, nr_want) TH_LOG("unknown probe %s", p->name);
		EXPECT_EQ(want[k].sites, find_count(notes, n, p->name))
			TH_LOG("probe %s: %d sites", p->name,
			       find_count(notes, n, p->name));
		EXPECT_TRUE(p->semaphore)
			TH_LOG("probe %s has no semaphore", p->name);
		EXPECT_EQ(want[k].args, count_args(p->args))
			TH_LOG("%s: %s", p->name, p->args);
		/* libbpf 1.1 cannot parse scale-index operands. */
		EXPECT_NULL(strstr(p->args, ",8)"))
			TH_LOG("%s: %s", p->name, p->args);
	}
}

TEST_HARNESS_MAIN
