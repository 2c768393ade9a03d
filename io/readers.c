// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * readers.c - bringcat's named readers in a file ring, for operators.
 *
 * Each sink reads the ring through a named reader that persists in the
 * file, so the name must follow the sink, not its place on the command
 * line: a restart with one -o fewer must not leave a reader behind that
 * nobody reads (it holds its messages, and once it holds the whole ring
 * every writer blocks), and must not hand one sink's cursor to another.
 * A sink's reader is named after its URI. At start bringcat says loudly
 * which readers match no sink, with the command that removes them;
 * --list-readers and --remove-reader are that command.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bring.h"
#include "readers.h"

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261U;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619U;
	return h;
}

/*
 * The reader name of sink @i of @uris: its URI when it fits, else the
 * URI's first 22 bytes, '~' and 8 hex digits of a hash of all of it (the
 * same URI always gives the same name). The same URI given again (two
 * -o file:/dev/null) is "URI#2", "URI#3", ... before that rule.
 */
void readers_sink_name(const char *const *uris, unsigned int i,
		       char name[BRING_NAME_MAX])
{
	char key[4096 + 16];
	unsigned int j, nth = 1;

	for (j = 0; j < i; j++)
		nth += !strcmp(uris[j], uris[i]);
	if (nth > 1)
		snprintf(key, sizeof(key), "%s#%u", uris[i], nth);
	else
		snprintf(key, sizeof(key), "%s", uris[i]);
	if (strlen(key) < BRING_NAME_MAX)
		snprintf(name, BRING_NAME_MAX, "%s", key);
	else
		snprintf(name, BRING_NAME_MAX, "%.22s~%08x", key, fnv1a(key));
}

static const char *reader_label(const struct bring_reader_stats *st)
{
	return st->name[0] ? st->name : "(default)";
}

/* At start: a line for each reader that none of the @n sinks uses. */
unsigned int readers_warn_orphans(struct bring *r, const char *path,
				  const char *const *sinks, unsigned int n)
{
	struct bring_reader_stats st;
	char name[BRING_NAME_MAX];
	unsigned int idx, i, found = 0;

	for (idx = 0; idx <= BRING_READERS_MAX; idx++) {
		st.sz = sizeof(st);
		if (bring_get_reader_stats(r, idx, &st))
			continue;
		for (i = 0; i < n; i++) {
			readers_sink_name(sinks, i, name);
			if (!strcmp(name, st.name))
				break;
		}
		if (i < n)
			continue;
		found++;
		fprintf(stderr,
			"bringcat: WARNING: ring %s: reader '%s' matches no -o "
			"sink and holds %llu bytes; writers block once it holds "
			"the whole ring. Remove it with: bringcat "
			"--remove-reader '%s' %s\n",
			path, reader_label(&st), (unsigned long long)st.lag,
			st.name, path);
	}
	return found;
}

/* --list-readers: one line per reader. */
int readers_list(struct bring *r, FILE *f)
{
	struct bring_reader_stats st;
	time_t now = time(NULL);
	unsigned int idx;

	fprintf(f, "%-32s %14s %12s %12s %10s %-14s %8s\n", "reader", "position",
		"lag bytes", "msgs out", "idle s", "owner", "stuck");
	for (idx = 0; idx <= BRING_READERS_MAX; idx++) {
		char owner[24], idle[24];

		st.sz = sizeof(st);
		if (bring_get_reader_stats(r, idx, &st))
			continue;
		if (!st.owner)
			snprintf(owner, sizeof(owner), "none");
		else
			snprintf(owner, sizeof(owner), "%d (%s)", (int)st.owner,
				 st.owner_alive ? "alive" : "dead");
		if (st.last_active && (uint64_t)now >= st.last_active)
			snprintf(idle, sizeof(idle), "%llu",
				 (unsigned long long)now - st.last_active);
		else
			snprintf(idle, sizeof(idle), "-");
		fprintf(f, "%-32s %14llu %12llu %12llu %10s %-14s %8llu\n",
			reader_label(&st), (unsigned long long)st.pos,
			(unsigned long long)st.lag,
			(unsigned long long)st.msgs_out, idle, owner,
			(unsigned long long)st.stuck);
	}
	return 0;
}
