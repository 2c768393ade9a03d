// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * bpftrace_test - run every bpftrace one-liner of Documentation/tracing.rst
 * against bring_blocker (linked with libbring.so) and check its numbers.
 *
 * The one-liners live only in the documentation. Each is a literal line
 * "   # bpftrace ..." preceded by an rst comment ".. recipe: NAME" naming
 * the check below that applies to it. The documented library path
 * /usr/local/lib/libbring.so.0 is replaced by the build tree's, and $PID
 * is set in the environment of the shell that runs the line.
 *
 * A one-liner without a check, or a check without its one-liner, fails
 * recipes.all_checked: the two cannot drift apart.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "bpf_test_util.h"

#define DOC "Documentation/tracing.rst"
#define DOC_LIB "/usr/local/lib/libbring.so.0"
#define W_RING "blk_write"
#define R_RING "blk_read"
#define D_RING "blk_durable"
/* defaults: 6 writer, 10 reader waits; 2 of each time out; 4 durable pushes */
#define BLOCKER_ARGS "-t 2 -d 4"
#define NR_TIMEOUTS 2
#define NR_DURABLE 4
#define ETIMEDOUT_NEG "-110"

/* ---- the documentation's one-liners ------------------------------------ */

struct recipe {
	char name[64];
	char cmd[4096];
	int line;
};

#define MAX_RECIPES 32
static struct recipe recipes[MAX_RECIPES];
static int nr_recipes;

/* Read the one-liners; -1 when the documentation cannot be read. */
static int load_recipes(void)
{
	char line[4096], pending[64] = "";
	int lineno = 0;
	FILE *f;

	nr_recipes = 0;
	f = fopen(tu_src_path(DOC), "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *nl = strchr(line, '\n');

		lineno++;
		if (nl)
			*nl = '\0';
		if (!strncmp(line, ".. recipe: ", 11)) {
			snprintf(pending, sizeof(pending), "%.63s", line + 11);
			continue;
		}
		/* bringcat_trace_test runs and checks those. */
		if (!strncmp(line, ".. bringcat-recipe: ", 20)) {
			strcpy(pending, "-");
			continue;
		}
		if (!strcmp(pending, "-") && strstr(line, "# bpftrace ")) {
			pending[0] = '\0';
			continue;
		}
		while (*p == ' ')
			p++;
		if (p == line || strncmp(p, "# bpftrace ", 11))
			continue;
		if (nr_recipes == MAX_RECIPES)
			break;
		snprintf(recipes[nr_recipes].name, sizeof(recipes[0].name),
			 "%.63s", pending);
		snprintf(recipes[nr_recipes].cmd, sizeof(recipes[0].cmd),
			 "%.4000s", p + 2);
		recipes[nr_recipes++].line = lineno;
		pending[0] = '\0';
	}
	fclose(f);
	return 0;
}

static const struct recipe *find_recipe(const char *name)
{
	int i;

	for (i = 0; i < nr_recipes; i++)
		if (!strcmp(recipes[i].name, name))
			return &recipes[i];
	return NULL;
}

/* ---- bpftrace's output -------------------------------------------------- */

struct bt_entry {
	char map[64]; /* "@write_wait_us" */
	char key[128]; /* "blk_write" or "123, blk_read", "" */
	char value[256]; /* scalar maps; "" for histograms */
	unsigned long long slots[TU_SLOTS];
	bool hist;
};

#define MAX_ENTRIES 64
struct bt_out {
	struct bt_entry e[MAX_ENTRIES];
	int n;
	char *text; /* all of it, for the log and printf recipes */
};

static unsigned long long parse_size(const char *s, char **end)
{
	unsigned long long v = strtoull(s, end, 10);

	switch (**end) {
	case 'K':
		v <<= 10;
		(*end)++;
		break;
	case 'M':
		v <<= 20;
		(*end)++;
		break;
	case 'G':
		v <<= 30;
		(*end)++;
		break;
	}
	return v;
}

static void parse_bt(struct bt_out *o, const char *text)
{
	const char *line = text;
	struct bt_entry *cur = NULL;

	o->n = 0;
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[1024];

		if (len >= sizeof(buf))
			len = sizeof(buf) - 1;
		memcpy(buf, line, len);
		buf[len] = '\0';
		line = nl ? nl + 1 : NULL;

		if (buf[0] == '@' && o->n < MAX_ENTRIES) {
			char *colon = strstr(buf, ": ");
			char *br = strchr(buf, '[');
			char *end = buf + strlen(buf);

			if (!colon && end > buf && end[-1] == ':')
				colon = end - 1;
			if (!colon)
				continue;
			cur = &o->e[o->n++];
			memset(cur, 0, sizeof(*cur));
			*colon = '\0';
			if (br && br < colon) {
				*br = '\0';
				if (colon[-1] == ']')
					colon[-1] = '\0';
				snprintf(cur->key, sizeof(cur->key), "%.127s",
					 br + 1);
			}
			snprintf(cur->map, sizeof(cur->map), "%.63s", buf);
			snprintf(cur->value, sizeof(cur->value), "%.255s",
				 colon[1] ? colon + 2 : "");
			while (cur->value[0] &&
			       cur->value[strlen(cur->value) - 1] == ' ')
				cur->value[strlen(cur->value) - 1] = '\0';
			cur->hist = !cur->value[0];
		} else if (cur && cur->hist && buf[0] == '[') {
			/* "[16K, 32K)     6 |@@@@|" or "[0]   1 |@|" */
			char *p, *close = strpbrk(buf, ")]");
			unsigned long long low, count;
			int slot;

			if (!close)
				continue;
			low = parse_size(buf + 1, &p);
			count = strtoull(close + 1, NULL, 10);
			slot = tu_slot_of(low);
			if (slot < TU_SLOTS)
				cur->slots[slot] += count;
		} else if (!buf[0]) {
			cur = cur && cur->hist ? cur : NULL;
		}
	}
}

static const struct bt_entry *bt_find(const struct bt_out *o, const char *map,
				      const char *key)
{
	int i;

	for (i = 0; i < o->n; i++)
		if (!strcmp(o->e[i].map, map) && !strcmp(o->e[i].key, key))
			return &o->e[i];
	return NULL;
}

/* ---- running one -------------------------------------------------------- */

/*
 * Start the workload held, the one-liner on it, wait until every probe is
 * attached, run the workload, then Ctrl-C bpftrace and parse what it
 * printed. 0, or -1 after logging why.
 */
static int run_recipe(struct __test_metadata *_metadata, const struct recipe *r,
		      struct tu_blocker *blk, struct bt_out *o)
{
	char cmd[8192], env[64], *p, *q;
	const char *lib = tu_out_path("lib/libbring.so.0");
	struct tu_proc bt;
	const char *l;
	int want = 0, have = 0, i, rc;

	/* exec: SIGINT must reach bpftrace, not the shell */
	q = cmd + snprintf(cmd, sizeof(cmd), "exec ");
	for (p = (char *)r->cmd; *p && q < cmd + sizeof(cmd) - PATH_MAX;) {
		if (!strncmp(p, DOC_LIB, strlen(DOC_LIB))) {
			q += sprintf(q, "%s", lib);
			p += strlen(DOC_LIB);
		} else {
			*q++ = *p++;
		}
	}
	*q = '\0';

	if (tu_blocker_start(blk, "selftests/bpf/bring_blocker_shared",
			     BLOCKER_ARGS)) {
		TH_LOG("bring_blocker_shared did not start");
		return -1;
	}
	snprintf(env, sizeof(env), "PID=%d", blk->pid);
	TH_LOG("line %d: %s", r->line, r->cmd);
	if (tu_spawn_sh(&bt, cmd, strdup(env), TU_MERGE_STDERR | TU_STDIN_NULL))
		return -1;
	l = tu_wait_for(&bt, "Attaching ", 30000);
	if (!l) {
		tu_finish(&bt, 5000);
		TH_LOG("bpftrace did not attach:\n%s", bt.buf ? bt.buf : "");
		tu_cleanup(&bt);
		return -1;
	}
	want = atoi(l + 10);
	/* "Attaching" comes before the attachment itself */
	for (i = 0; i < 300 && (have = tu_perf_events_of(bt.pid)) < want; i++)
		usleep(50000);
	if (have < want)
		TH_LOG("after %d s, bpftrace holds %d of its %d probes", i / 20,
		       have, want);
	if (tu_blocker_run(blk, 30000)) {
		TH_LOG("bring_blocker did not finish");
		tu_cleanup(&bt);
		return -1;
	}
	/* Ctrl-C; again if it was busy when the first one came */
	for (i = 0, rc = -1; i < 3 && rc == -1; i++) {
		kill(bt.pid, SIGINT);
		rc = tu_finish(&bt, 10000);
	}
	if (rc == -1)
		TH_LOG("bpftrace did not exit within 30 s of SIGINT");
	tu_blocker_end(blk);
	o->text = strdup(bt.buf ? bt.buf : "");
	tu_cleanup(&bt);
	if (rc != 0) {
		TH_LOG("bpftrace exited with %d:\n%s", rc, o->text);
		return -1;
	}
	parse_bt(o, o->text);
	return 0;
}

/* ---- the checks, one per recipe name ----------------------------------- */

#define BT_LOG TH_LOG("bpftrace printed:\n%s", o->text)

#define CHECK_SLOTS(blk, ring, side, slots)                                  \
	do {                                                                 \
		const char *why_ =                                           \
			tu_check_slots(blk, ring, side, slots, TU_SLOTS, 1); \
		EXPECT_NULL(why_) TH_LOG("%s", why_);                        \
	} while (0)

typedef void (*check_fn)(struct __test_metadata *_metadata,
			 const struct tu_blocker *blk, const struct bt_out *o);

static unsigned long long value_of(const struct bt_entry *e)
{
	return e ? strtoull(e->value, NULL, 10) : 0;
}

/* @writer_waits[ring], @reader_waits[ring]: counts */
static void check_waits_per_ring(struct __test_metadata *_metadata,
				 const struct tu_blocker *blk,
				 const struct bt_out *o)
{
	const struct bt_entry *w = bt_find(o, "@writer_waits", W_RING);
	const struct bt_entry *r = bt_find(o, "@reader_waits", R_RING);

	ASSERT_NE_NULL(w) BT_LOG;
	ASSERT_NE_NULL(r) BT_LOG;
	EXPECT_EQ(tu_blocker_stats(blk, W_RING)->write_waits, value_of(w))
	BT_LOG;
	EXPECT_EQ(tu_blocker_stats(blk, R_RING)->read_waits, value_of(r))
	BT_LOG;
	EXPECT_EQ(2, o->n) BT_LOG;
}

/* @write_wait_us[ring]: hist */
static void check_write_hist(struct __test_metadata *_metadata,
			     const struct tu_blocker *blk,
			     const struct bt_out *o)
{
	const struct bt_entry *w = bt_find(o, "@write_wait_us", W_RING);

	ASSERT_NE_NULL(w) BT_LOG;
	EXPECT_TRUE(w->hist) BT_LOG;
	EXPECT_EQ(1, o->n) BT_LOG;
	CHECK_SLOTS(blk, W_RING, "writer", w->slots);
}

/* @read_wait_us[ring]: hist */
static void check_read_hist(struct __test_metadata *_metadata,
			    const struct tu_blocker *blk,
			    const struct bt_out *o)
{
	const struct bt_entry *r = bt_find(o, "@read_wait_us", R_RING);

	ASSERT_NE_NULL(r) BT_LOG;
	EXPECT_TRUE(r->hist) BT_LOG;
	EXPECT_EQ(1, o->n) BT_LOG;
	CHECK_SLOTS(blk, R_RING, "reader", r->slots);
}

/* @durable_wait_us[ring]: hist, one wait per durable push */
static void check_durable_hist(struct __test_metadata *_metadata,
			       const struct tu_blocker *blk,
			       const struct bt_out *o)
{
	const struct bt_entry *d = bt_find(o, "@durable_wait_us", D_RING);
	unsigned long long sum = 0;
	int s;

	ASSERT_NE_NULL(d) BT_LOG;
	EXPECT_TRUE(d->hist) BT_LOG;
	EXPECT_EQ(1, o->n) BT_LOG;
	for (s = 0; s < TU_SLOTS; s++)
		sum += d->slots[s];
	EXPECT_EQ(NR_DURABLE, sum) BT_LOG;
	CHECK_SLOTS(blk, D_RING, "durable", d->slots);
}

/*
 * @wait_us[tid, ring]: hist. The workload's main thread (tid == pid) makes
 * every writer wait, the reader waits that time out and the durable
 * pushes; a second thread makes the other reader waits.
 */
static void check_per_thread(struct __test_metadata *_metadata,
			     const struct tu_blocker *blk,
			     const struct bt_out *o)
{
	unsigned long long w[TU_SLOTS] = { 0 }, r[TU_SLOTS] = { 0 };
	unsigned long long d[TU_SLOTS] = { 0 }, main_reads = 0;
	int i, s, wkeys = 0, rkeys = 0, dkeys = 0, other_tid = 0;

	for (i = 0; i < o->n; i++) {
		const struct bt_entry *e = &o->e[i];
		int tid = atoi(e->key);
		const char *ring = strstr(e->key, ", ");
		unsigned long long sum = 0;

		ASSERT_STREQ("@wait_us", e->map) BT_LOG;
		ASSERT_NE_NULL(ring) BT_LOG;
		ring += 2;
		for (s = 0; s < TU_SLOTS; s++)
			sum += e->slots[s];
		if (!strcmp(ring, W_RING)) {
			wkeys++;
			EXPECT_EQ(blk->pid, tid) BT_LOG;
			for (s = 0; s < TU_SLOTS; s++)
				w[s] += e->slots[s];
		} else if (!strcmp(ring, R_RING)) {
			rkeys++;
			if (tid == blk->pid)
				main_reads = sum;
			else
				other_tid = tid;
			for (s = 0; s < TU_SLOTS; s++)
				r[s] += e->slots[s];
		} else if (!strcmp(ring, D_RING)) {
			dkeys++;
			EXPECT_EQ(blk->pid, tid) BT_LOG;
			for (s = 0; s < TU_SLOTS; s++)
				d[s] += e->slots[s];
		} else {
			EXPECT_STREQ(W_RING, ring) BT_LOG;
		}
	}
	EXPECT_EQ(1, wkeys) BT_LOG;
	EXPECT_EQ(1, dkeys) BT_LOG;
	CHECK_SLOTS(blk, D_RING, "durable", d);
	EXPECT_EQ(2, rkeys) BT_LOG;
	EXPECT_NE(0, other_tid) BT_LOG;
	EXPECT_EQ(NR_TIMEOUTS, main_reads) BT_LOG;
	CHECK_SLOTS(blk, W_RING, "writer", w);
	CHECK_SLOTS(blk, R_RING, "reader", r);
}

/* @write_errors[ring, err], @read_errors[ring, err]: counts */
static void check_errors(struct __test_metadata *_metadata,
			 const struct tu_blocker *blk, const struct bt_out *o)
{
	const struct bt_entry *w, *r;

	w = bt_find(o, "@write_errors", W_RING ", " ETIMEDOUT_NEG);
	r = bt_find(o, "@read_errors", R_RING ", " ETIMEDOUT_NEG);
	ASSERT_NE_NULL(w) BT_LOG;
	ASSERT_NE_NULL(r) BT_LOG;
	EXPECT_EQ(NR_TIMEOUTS, value_of(w)) BT_LOG;
	EXPECT_EQ(NR_TIMEOUTS, value_of(r)) BT_LOG;
	EXPECT_EQ(2, o->n) BT_LOG;
}

/* @need_bytes[ring]: count N, average A, total T */
static void check_need(struct __test_metadata *_metadata,
		       const struct tu_blocker *blk, const struct bt_out *o)
{
	const struct bt_entry *w = bt_find(o, "@need_bytes", W_RING);
	unsigned long long count = 0, avg = 0, total = 0;

	ASSERT_NE_NULL(w) BT_LOG;
	ASSERT_EQ(3, sscanf(w->value, "count %llu, average %llu, total %llu",
			    &count, &avg, &total))
	BT_LOG;
	EXPECT_EQ(tu_blocker_stats(blk, W_RING)->write_waits, count) BT_LOG;
	/* 48-byte payloads plus 16 bytes of framing */
	EXPECT_EQ(64, avg) BT_LOG;
	EXPECT_EQ(64 * count, total) BT_LOG;
}

/* printf lines "HH:MM:SS ring: writer TID waited N ms for B bytes" */
static void check_slow_writers(struct __test_metadata *_metadata,
			       const struct tu_blocker *blk,
			       const struct bt_out *o)
{
	const char *line = o->text;
	int lines = 0, i, timed_slow = 0;

	while ((line = strstr(line, ": writer "))) {
		char ring[32] = "";
		int tid = 0, ms = 0, bytes = 0;
		const char *start = line;

		while (start > o->text && start[-1] != '\n')
			start--;
		EXPECT_EQ(4, sscanf(start,
				    "%*d:%*d:%*d %31[^:]: writer %d waited %d "
				    "ms for %d bytes",
				    ring, &tid, &ms, &bytes))
		BT_LOG;
		EXPECT_STREQ(W_RING, ring) BT_LOG;
		EXPECT_EQ(blk->pid, tid) BT_LOG;
		EXPECT_GE(ms, 15) BT_LOG;
		EXPECT_EQ(64, bytes) BT_LOG;
		lines++;
		line += 9;
	}
	for (i = 0; i < blk->nr_timed; i++)
		if (!strcmp(blk->timed[i].side, "writer") &&
		    blk->timed[i].us >= 15000)
			timed_slow++;
	EXPECT_EQ(timed_slow, lines) BT_LOG;
	EXPECT_GE(lines, 6) BT_LOG; /* the ~20 ms waits */
}

static const struct {
	const char *name;
	check_fn check;
} checks[] = {
	{ "waits-per-ring", check_waits_per_ring },
	{ "write-wait-hist", check_write_hist },
	{ "read-wait-hist", check_read_hist },
	{ "wait-hist-per-thread", check_per_thread },
	{ "wait-errors", check_errors },
	{ "need-bytes", check_need },
	{ "slow-writers", check_slow_writers },
	{ "durable-wait-hist", check_durable_hist },
};
#define NR_CHECKS (int)(sizeof(checks) / sizeof(checks[0]))

/* ---- tests -------------------------------------------------------------- */

/* Every one-liner of the documentation has a check, and every check a line. */
TEST(all_checked)
{
	int i, j, found;

	ASSERT_EQ(0, load_recipes()) TH_LOG("cannot read %s", tu_src_path(DOC));
	EXPECT_GE(nr_recipes, NR_CHECKS);
	for (i = 0; i < nr_recipes; i++) {
		found = 0;
		for (j = 0; j < NR_CHECKS; j++)
			found += !strcmp(recipes[i].name, checks[j].name);
		EXPECT_EQ(1, found)
		TH_LOG("%s:%d: bpftrace one-liner without a check (\".. "
		       "recipe: NAME\" before it): %s",
		       DOC, recipes[i].line, recipes[i].cmd);
		for (j = 0; j < i; j++)
			EXPECT_STRNE(recipes[j].name, recipes[i].name)
		TH_LOG("%s:%d: recipe name used twice", DOC, recipes[i].line);
	}
	for (j = 0; j < NR_CHECKS; j++)
		EXPECT_NE_NULL(find_recipe(checks[j].name))
	TH_LOG("%s has no one-liner for the check \"%s\"", DOC, checks[j].name);
}

FIXTURE(recipe)
{
	struct tu_blocker blk;
	struct bt_out out;
};

FIXTURE_VARIANT(recipe)
{
	const char *name;
};

FIXTURE_VARIANT_ADD(recipe, waits_per_ring){
	.name = "waits-per-ring",
};
FIXTURE_VARIANT_ADD(recipe, write_wait_hist){
	.name = "write-wait-hist",
};
FIXTURE_VARIANT_ADD(recipe, read_wait_hist){
	.name = "read-wait-hist",
};
FIXTURE_VARIANT_ADD(recipe, wait_hist_per_thread){
	.name = "wait-hist-per-thread",
};
FIXTURE_VARIANT_ADD(recipe, wait_errors){
	.name = "wait-errors",
};
FIXTURE_VARIANT_ADD(recipe, need_bytes){
	.name = "need-bytes",
};
FIXTURE_VARIANT_ADD(recipe, slow_writers){
	.name = "slow-writers",
};
FIXTURE_VARIANT_ADD(recipe, durable_wait_hist){
	.name = "durable-wait-hist",
};

FIXTURE_SETUP(recipe)
{
	const char *why = tu_bpftrace_skip_reason();

	if (why)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, load_recipes()) TH_LOG("cannot read %s", tu_src_path(DOC));
}

FIXTURE_TEARDOWN(recipe)
{
	if (self->blk.p.pid > 0)
		tu_cleanup(&self->blk.p);
	free(self->out.text);
}

TEST_F_TIMEOUT(recipe, run, 90)
{
	const struct recipe *r = find_recipe(variant->name);
	int i;

	ASSERT_NE_NULL(r)
	TH_LOG("%s has no \".. recipe: %s\" one-liner", DOC, variant->name);
	ASSERT_EQ(0, run_recipe(_metadata, r, &self->blk, &self->out));
	ASSERT_EQ(2, self->blk.nr_st);
	for (i = 0; i < NR_CHECKS; i++)
		if (!strcmp(checks[i].name, variant->name))
			checks[i].check(_metadata, &self->blk, &self->out);
}

TEST_HARNESS_MAIN
