// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * bringlat_test - bringlat attached to bring_blocker, whose waits have
 * known counts and lengths: writers ~20 ms on ring "blk_write", readers
 * ~5 ms on ring "blk_read", and optional ~10 ms waits that time out.
 *
 * Every test checks numbers: the waits bringlat counts per ring and side
 * equal what the library counted itself (bring_get_stats, printed by the
 * workload), and they sit in the log2 bucket of their length.
 *
 * Needs root, kernel BTF and uprobes, and bringlat built; SKIPs saying
 * which is missing otherwise.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "bpf_test_util.h"

#define W_RING "blk_write"
#define R_RING "blk_read"
#define NR_WRITES 6 /* bring_blocker defaults */
#define NR_READS 10
#define WRITE_US 20000
#define READ_US 5000
#define TIMEOUT_US 10000

#define SLOT_US(us) tu_slot_of(us)
#define SLOT_MS(us) tu_slot_of((us) / 1000)

#define SKIP_UNLESS_READY()                                  \
	do {                                                 \
		const char *why = tu_bringlat_skip_reason(); \
		if (why)                                     \
			SKIP(return, "%s", why);             \
	} while (0)

static const char *bringlat_path(void)
{
	return tu_out_path("bpf/bringlat");
}

/* Start bringlat with space-separated args (after the path). */
static int spawn_bringlat(struct tu_proc *p, const char *args, int flags)
{
	char buf[4096], *argv[32], *tok, *save;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", args);
	argv[n++] = (char *)bringlat_path();
	for (tok = strtok_r(buf, " ", &save); tok && n < 31;
	     tok = strtok_r(NULL, " ", &save))
		argv[n++] = tok;
	argv[n] = NULL;
	return tu_spawn(p, argv, flags);
}

/* ... and wait until it has attached (its "Tracing" banner). */
static int start_bringlat(struct tu_proc *p, const char *args, int flags)
{
	if (spawn_bringlat(p, args, flags | TU_STDIN_NULL))
		return -1;
	return tu_wait_for(p, "Tracing", 15000) ? 0 : -1;
}

/* Count the lines of s (the last one may lack its newline). */
static int count_lines(const char *s)
{
	int n = 0;

	for (; s && *s; s++)
		if (*s == '\n' || !s[1])
			n++;
	return n;
}

/*
 * A refusal: exit status 1, nothing on stdout, exactly one line on stderr
 * that contains want.
 */
static void expect_refusal(struct __test_metadata *_metadata, struct tu_proc *p,
			   const char *want)
{
	int rc = tu_finish(p, 15000);
	const char *err = p->ebuf ? p->ebuf : "";

	TH_LOG("bringlat said: %s", err);
	EXPECT_EQ(1, rc);
	EXPECT_EQ(0, p->len);
	EXPECT_EQ(1, count_lines(err));
	EXPECT_EQ(0, strncmp(err, "bringlat: ", 10));
	EXPECT_NE_NULL(strstr(err, want));
}

/* ---- the workload, untraced ------------------------------------------- */

/*
 * The ground truth the other tests compare with: the workload makes the
 * waits it was designed to, as counted by the library, none shorter than
 * its designed minimum. Needs no privilege.
 */
TEST(workload_waits_as_designed)
{
	const struct tu_ring_stats *ws, *rs;
	struct tu_blocker blk;
	int i;

	if (tu_blocker_skip_reason())
		SKIP(return, "%s", tu_blocker_skip_reason());
	ASSERT_EQ(0, tu_blocker_start(&blk, "selftests/bpf/bring_blocker",
				      "-t 2"));
	ASSERT_EQ(0, tu_blocker_run(&blk, 20000));
	ASSERT_EQ(0, tu_blocker_end(&blk));
	ws = tu_blocker_stats(&blk, W_RING);
	rs = tu_blocker_stats(&blk, R_RING);
	ASSERT_NE_NULL(ws);
	ASSERT_NE_NULL(rs);
	EXPECT_EQ(NR_WRITES + 2, ws->write_waits);
	EXPECT_EQ(0, ws->read_waits);
	EXPECT_EQ(0, rs->write_waits);
	EXPECT_EQ(NR_READS + 2, rs->read_waits);
	EXPECT_EQ(NR_WRITES + 2, tu_blocker_nr_timed(&blk, W_RING, "writer"));
	EXPECT_EQ(NR_READS + 2, tu_blocker_nr_timed(&blk, R_RING, "reader"));
	for (i = 0; i < blk.nr_timed; i++)
		EXPECT_GE(blk.timed[i].us, blk.timed[i].min_us)
	TH_LOG("%s/%s wait of %llu us", blk.timed[i].ring, blk.timed[i].side,
	       blk.timed[i].us);
	tu_cleanup(&blk.p);
}

/* ---- refusals --------------------------------------------------------- */

TEST(refuses_without_privileges)
{
	struct tu_proc p;
	char args[64];

	if (access(bringlat_path(), X_OK))
		SKIP(return,
			   "bringlat not built: the BPF toolchain is missing");
	snprintf(args, sizeof(args), "-p %d", getpid());
	/* as uid 65534 when root: no capabilities left */
	ASSERT_EQ(0, spawn_bringlat(&p, args, TU_AS_NOBODY | TU_STDIN_NULL));
	expect_refusal(_metadata, &p,
		       "not root: missing CAP_BPF and CAP_PERFMON");
	tu_cleanup(&p);
}

/* Hide a sysfs directory from bringlat in a private mount namespace. */
static void hide_dir(struct __test_metadata *_metadata, const char *dir)
{
	ASSERT_EQ(0, unshare(CLONE_NEWNS))
	TH_LOG("unshare: %s", strerror(errno));
	ASSERT_EQ(0, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	ASSERT_EQ(0, mount("tmpfs", dir, "tmpfs", MS_RDONLY, NULL))
	TH_LOG("mount tmpfs on %s: %s", dir, strerror(errno));
}

TEST(refuses_without_btf)
{
	struct tu_proc p;
	char args[64];

	SKIP_UNLESS_READY();
	hide_dir(_metadata, "/sys/kernel/btf");
	snprintf(args, sizeof(args), "-p %d", getpid());
	ASSERT_EQ(0, spawn_bringlat(&p, args, TU_STDIN_NULL));
	expect_refusal(_metadata, &p, "kernel BTF not available");
	tu_cleanup(&p);
}

TEST(refuses_without_uprobes)
{
	struct tu_proc p;
	char args[64];

	SKIP_UNLESS_READY();
	/* a symlink to /sys/devices/uprobe: the mount lands there */
	hide_dir(_metadata, "/sys/bus/event_source/devices/uprobe");
	snprintf(args, sizeof(args), "-p %d", getpid());
	ASSERT_EQ(0, spawn_bringlat(&p, args, TU_STDIN_NULL));
	expect_refusal(_metadata, &p, "kernel has no uprobe support");
	tu_cleanup(&p);
}

TEST(refuses_object_without_probes)
{
	struct tu_proc p;

	SKIP_UNLESS_READY();
	ASSERT_EQ(0, spawn_bringlat(&p, "-l /bin/true", TU_STDIN_NULL));
	expect_refusal(_metadata, &p, "no bring USDT probes");
	tu_cleanup(&p);
}

TEST(refuses_pin_outside_bpffs)
{
	struct tu_proc p;
	char args[PATH_MAX + 64];

	SKIP_UNLESS_READY();
	snprintf(args, sizeof(args), "-l %s --pin /tmp/bringlat-test-pin",
		 tu_out_path("selftests/bpf/bring_blocker"));
	ASSERT_EQ(0, spawn_bringlat(&p, args, TU_STDIN_NULL));
	expect_refusal(_metadata, &p, "is not a bpf file system");
	tu_cleanup(&p);
	EXPECT_NE(0, access("/tmp/bringlat-test-pin/hists", F_OK));
}

/* ---- histograms --------------------------------------------------------- */

FIXTURE(trace)
{
	struct tu_blocker blk;
	struct tu_proc bl;
	struct tu_hist h[16];
	int nh;
};

FIXTURE_SETUP(trace)
{
	const char *why = tu_bringlat_skip_reason();

	self->blk.p.pid = self->bl.pid = -1;
	self->blk.p.in = self->blk.p.out = self->blk.p.err = -1;
	self->bl.in = self->bl.out = self->bl.err = -1;
	if (why)
		SKIP(return, "%s", why);
}

FIXTURE_TEARDOWN(trace)
{
	if (self->bl.pid > 0)
		tu_cleanup(&self->bl);
	if (self->blk.p.pid > 0)
		tu_cleanup(&self->blk.p);
}

/* Run the held workload to "done", let it exit, read bringlat to its end. */
static void run_and_collect(struct __test_metadata *_metadata,
			    FIXTURE_DATA(trace) * self)
{
	ASSERT_EQ(0, tu_blocker_run(&self->blk, 20000));
	ASSERT_EQ(2, self->blk.nr_st);
	EXPECT_EQ(0, tu_blocker_end(&self->blk));
	/* -p: bringlat prints and exits once the process is gone */
	ASSERT_EQ(0, tu_finish(&self->bl, 15000))
	TH_LOG("stderr: %s", self->bl.ebuf ? self->bl.ebuf : "");
	self->nh = tu_parse_text(tu_rest(&self->bl), self->h, 16);
}

/* The traced slots hold exactly the waits the workload timed. */
#define CHECK_SLOTS(blk, ring, side, slots, nr, unit_us)                     \
	do {                                                                 \
		const char *why_ =                                           \
			tu_check_slots(blk, ring, side, slots, nr, unit_us); \
		EXPECT_NULL(why_) TH_LOG("%s", why_);                        \
	} while (0)

/* After a failed check: what bringlat printed. */
#define OUT TH_LOG("bringlat printed:\n%s", self->bl.buf ? self->bl.buf : "")

/*
 * -p PID, text: one histogram per ring and side, every wait counted, in
 * the bucket of its length; the timed-out waits counted as errors.
 */
TEST_F_TIMEOUT(trace, pid_text_histograms, 60)
{
	const struct tu_ring_stats *ws, *rs;
	const struct tu_hist *w, *r;
	char args[64];

	ASSERT_EQ(0, tu_blocker_start(&self->blk, "selftests/bpf/bring_blocker",
				      "-t 2"));
	snprintf(args, sizeof(args), "-p %d", self->blk.pid);
	ASSERT_EQ(0, start_bringlat(&self->bl, args, 0));
	run_and_collect(_metadata, self);

	ws = tu_blocker_stats(&self->blk, W_RING);
	rs = tu_blocker_stats(&self->blk, R_RING);
	ASSERT_NE_NULL(ws);
	ASSERT_NE_NULL(rs);
	EXPECT_EQ(NR_WRITES + 2, ws->write_waits);
	EXPECT_EQ(NR_READS + 2, rs->read_waits);

	ASSERT_EQ(2, self->nh) OUT;
	w = tu_find_hist(self->h, self->nh, W_RING, "writer", 0);
	r = tu_find_hist(self->h, self->nh, R_RING, "reader", 0);
	ASSERT_NE_NULL(w);
	ASSERT_NE_NULL(r);

	EXPECT_EQ(ws->write_waits, w->waits) OUT;
	EXPECT_EQ(w->waits, tu_hist_sum(w)) OUT;
	CHECK_SLOTS(&self->blk, W_RING, "writer", w->slots, TU_SLOTS, 1);
	EXPECT_EQ(16384, w->low[SLOT_US(WRITE_US)]) OUT;
	EXPECT_EQ(2, w->errors) OUT;

	EXPECT_EQ(rs->read_waits, r->waits) OUT;
	EXPECT_EQ(r->waits, tu_hist_sum(r)) OUT;
	CHECK_SLOTS(&self->blk, R_RING, "reader", r->slots, TU_SLOTS, 1);
	EXPECT_EQ(4096, r->low[SLOT_US(READ_US)]) OUT;
	EXPECT_EQ(2, r->errors) OUT;
}

/*
 * A push to a BRING_DURABLE_ALWAYS file ring waits for its flush: each
 * one is a "durable" wait of its ring, in the bucket of its length, and
 * the only waits of the run.
 */
TEST_F_TIMEOUT(trace, durable_pushes_wait_for_their_flush, 60)
{
	const struct tu_hist *d;
	char args[64];
	const char *line;
	int pushes = 0, flushes = -1;

	ASSERT_EQ(0, tu_blocker_start(&self->blk, "selftests/bpf/bring_blocker",
				      "-w 0 -r 0 -d 8"));
	snprintf(args, sizeof(args), "-p %d", self->blk.pid);
	ASSERT_EQ(0, start_bringlat(&self->bl, args, 0));
	run_and_collect(_metadata, self);

	line = self->blk.p.buf ? strstr(self->blk.p.buf, "durable ring=") : NULL;
	ASSERT_NE_NULL(line);
	ASSERT_EQ(2, sscanf(line, "durable ring=blk_durable pushes=%d flushes=%d",
			    &pushes, &flushes));
	EXPECT_EQ(8, pushes);
	/* Alone, each push flushes once (no group to join). */
	EXPECT_EQ(8, flushes);
	EXPECT_EQ(8, tu_blocker_nr_timed(&self->blk, "blk_durable", "durable"));

	ASSERT_EQ(1, self->nh) OUT;
	d = tu_find_hist(self->h, self->nh, "blk_durable", "durable", 0);
	ASSERT_NE_NULL(d) OUT;
	EXPECT_EQ(8, d->waits) OUT;
	EXPECT_EQ(d->waits, tu_hist_sum(d)) OUT;
	EXPECT_EQ(0, d->errors) OUT;
	CHECK_SLOTS(&self->blk, "blk_durable", "durable", d->slots, TU_SLOTS,
		    1);
}

struct jsum {
	unsigned long long count, errors, slots[TU_SLOTS];
	unsigned long long unit_low[TU_SLOTS];
	int seen;
};

/* Add the histogram for (ring, side) of one JSON line into s. */
static int json_add(const char *line, const char *ring, const char *side,
		    struct jsum *s, char *unit, size_t unit_len)
{
	struct tu_json *j = tu_json_parse(line), *hists, *u;
	int i, k;

	if (!j)
		return -1;
	u = tu_json_get(j, "unit");
	if (u && u->type == TU_JSTR && unit)
		snprintf(unit, unit_len, "%s", u->str);
	hists = tu_json_get(j, "hists");
	if (!hists || hists->type != TU_JARR) {
		tu_json_free(j);
		return -1;
	}
	for (i = 0; i < tu_json_len(hists); i++) {
		struct tu_json *h = tu_json_at(hists, i);
		struct tu_json *r = tu_json_get(h, "ring");
		struct tu_json *sd = tu_json_get(h, "side");
		struct tu_json *b = tu_json_get(h, "buckets");

		if (!r || !sd || r->type != TU_JSTR || sd->type != TU_JSTR ||
		    strcmp(r->str, ring) || strcmp(sd->str, side))
			continue;
		s->seen++;
		s->count += (unsigned long long)tu_json_get(h, "count")->num;
		s->errors += (unsigned long long)tu_json_get(h, "errors")->num;
		for (k = 0; k < tu_json_len(b); k++) {
			struct tu_json *e = tu_json_at(b, k);
			unsigned long long high = tu_json_get(e, "high")->num;
			int slot = tu_slot_of(high);

			if (slot < TU_SLOTS) {
				s->slots[slot] += tu_json_get(e, "count")->num;
				s->unit_low[slot] = tu_json_get(e, "low")->num;
			}
		}
	}
	tu_json_free(j);
	return 0;
}

/* -j -m: JSON lines, msecs buckets, same counts. */
TEST_F_TIMEOUT(trace, pid_json_msecs, 60)
{
	struct jsum w = { 0 }, r = { 0 };
	const struct tu_ring_stats *ws, *rs;
	char args[64], unit[16] = "";
	const char *l;
	int lines = 0;

	ASSERT_EQ(0, tu_blocker_start(&self->blk, "selftests/bpf/bring_blocker",
				      NULL));
	snprintf(args, sizeof(args), "-p %d -j -m", self->blk.pid);
	/* -j: the banner goes to stderr, JSON alone to stdout */
	ASSERT_EQ(0, spawn_bringlat(&self->bl, args, TU_STDIN_NULL));
	ASSERT_TRUE(tu_wait_stderr(&self->bl, "Tracing", 15000));
	ASSERT_EQ(0, tu_blocker_run(&self->blk, 20000));
	EXPECT_EQ(0, tu_blocker_end(&self->blk));
	ASSERT_EQ(0, tu_finish(&self->bl, 15000));
	while ((l = tu_read_line(&self->bl, 0))) {
		lines++;
		ASSERT_EQ(0,
			  json_add(l, W_RING, "writer", &w, unit, sizeof(unit)))
		TH_LOG("not JSON: %s", l);
		ASSERT_EQ(0, json_add(l, R_RING, "reader", &r, NULL, 0));
	}
	EXPECT_EQ(1, lines);
	EXPECT_STREQ("msecs", unit);
	ws = tu_blocker_stats(&self->blk, W_RING);
	rs = tu_blocker_stats(&self->blk, R_RING);
	ASSERT_NE_NULL(ws);
	ASSERT_NE_NULL(rs);
	EXPECT_EQ(NR_WRITES, ws->write_waits);
	EXPECT_EQ(ws->write_waits, w.count) OUT;
	CHECK_SLOTS(&self->blk, W_RING, "writer", w.slots, TU_SLOTS, 1000);
	if (w.slots[SLOT_MS(WRITE_US)])
		EXPECT_EQ(16, w.unit_low[SLOT_MS(WRITE_US)]) OUT;
	EXPECT_EQ(0, w.errors) OUT;
	EXPECT_EQ(NR_READS, rs->read_waits);
	EXPECT_EQ(rs->read_waits, r.count) OUT;
	CHECK_SLOTS(&self->blk, R_RING, "reader", r.slots, TU_SLOTS, 1000);
	if (r.slots[SLOT_MS(READ_US)])
		EXPECT_EQ(4, r.unit_low[SLOT_MS(READ_US)]) OUT;
}

/* -i: interval lines; their counts add up to the whole run. */
TEST_F_TIMEOUT(trace, interval_counts_add_up, 60)
{
	struct jsum w = { 0 }, r = { 0 };
	const struct tu_ring_stats *ws, *rs;
	char args[64];
	const char *l;
	int lines = 0;

	/* ~0.6 s of waits, cut into 0.1 s intervals */
	ASSERT_EQ(0, tu_blocker_start(&self->blk, "selftests/bpf/bring_blocker",
				      "-w 15 -r 40"));
	snprintf(args, sizeof(args), "-p %d -j -i 0.1", self->blk.pid);
	ASSERT_EQ(0, spawn_bringlat(&self->bl, args, TU_STDIN_NULL));
	ASSERT_TRUE(tu_wait_stderr(&self->bl, "Tracing", 15000));
	ASSERT_EQ(0, tu_blocker_run(&self->blk, 20000));
	EXPECT_EQ(0, tu_blocker_end(&self->blk));
	ASSERT_EQ(0, tu_finish(&self->bl, 15000));
	while ((l = tu_read_line(&self->bl, 0))) {
		lines++;
		ASSERT_EQ(0, json_add(l, W_RING, "writer", &w, NULL, 0));
		ASSERT_EQ(0, json_add(l, R_RING, "reader", &r, NULL, 0));
	}
	ws = tu_blocker_stats(&self->blk, W_RING);
	rs = tu_blocker_stats(&self->blk, R_RING);
	ASSERT_NE_NULL(ws);
	ASSERT_NE_NULL(rs);
	TH_LOG("%d interval lines, writer hists in %d, reader hists in %d",
	       lines, w.seen, r.seen);
	EXPECT_GE(lines, 5);
	EXPECT_GE(w.seen, 2); /* the waits really were spread out */
	EXPECT_EQ(15, ws->write_waits);
	EXPECT_EQ(ws->write_waits, w.count) OUT;
	CHECK_SLOTS(&self->blk, W_RING, "writer", w.slots, TU_SLOTS, 1);
	EXPECT_EQ(40, rs->read_waits);
	EXPECT_EQ(rs->read_waits, r.count) OUT;
	CHECK_SLOTS(&self->blk, R_RING, "reader", r.slots, TU_SLOTS, 1);
}

/* -i -c: exactly COUNT intervals, then exit 0. */
TEST_F_TIMEOUT(trace, count_stops_after_n_intervals, 30)
{
	struct jsum w = { 0 };
	char args[64];
	const char *l;
	int lines = 0;

	ASSERT_EQ(0, tu_blocker_start(&self->blk, "selftests/bpf/bring_blocker",
				      NULL));
	snprintf(args, sizeof(args), "-p %d -j -i 0.2 -c 3", self->blk.pid);
	ASSERT_EQ(0, spawn_bringlat(&self->bl, args, TU_STDIN_NULL));
	ASSERT_EQ(0, tu_finish(&self->bl, 15000));
	while ((l = tu_read_line(&self->bl, 0))) {
		lines++;
		ASSERT_EQ(0, json_add(l, W_RING, "writer", &w, NULL, 0));
	}
	EXPECT_EQ(3, lines);
	EXPECT_EQ(0, w.count); /* the workload was held: no waits */
	tu_blocker_end(&self->blk);
}

/* -n: only the named ring. */
TEST_F_TIMEOUT(trace, ring_filter, 60)
{
	char args[64];

	ASSERT_EQ(0, tu_blocker_start(&self->blk, "selftests/bpf/bring_blocker",
				      NULL));
	snprintf(args, sizeof(args), "-p %d -n " R_RING, self->blk.pid);
	ASSERT_EQ(0, start_bringlat(&self->bl, args, 0));
	run_and_collect(_metadata, self);
	ASSERT_EQ(1, self->nh) OUT;
	EXPECT_STREQ(R_RING, self->h[0].ring) OUT;
	EXPECT_STREQ("reader", self->h[0].side) OUT;
	EXPECT_EQ(NR_READS, self->h[0].waits) OUT;
	CHECK_SLOTS(&self->blk, R_RING, "reader", self->h[0].slots, TU_SLOTS,
		    1);
}

/*
 * -L: one histogram per thread. The workload's main thread (tid == pid)
 * makes the writer waits, its reader thread the reader waits.
 */
TEST_F_TIMEOUT(trace, per_thread, 60)
{
	const struct tu_hist *w, *r;
	char args[64];

	ASSERT_EQ(0, tu_blocker_start(&self->blk, "selftests/bpf/bring_blocker",
				      NULL));
	snprintf(args, sizeof(args), "-p %d -L", self->blk.pid);
	ASSERT_EQ(0, start_bringlat(&self->bl, args, 0));
	run_and_collect(_metadata, self);
	ASSERT_EQ(2, self->nh) OUT;
	w = tu_find_hist(self->h, self->nh, W_RING, "writer", 0);
	r = tu_find_hist(self->h, self->nh, R_RING, "reader", 0);
	ASSERT_NE_NULL(w) OUT;
	ASSERT_NE_NULL(r) OUT;
	EXPECT_EQ((unsigned int)self->blk.pid, w->pid) OUT;
	EXPECT_NE((unsigned int)self->blk.pid, r->pid) OUT;
	EXPECT_NE(0, r->pid) OUT;
	EXPECT_EQ(NR_WRITES, w->waits) OUT;
	EXPECT_EQ(NR_READS, r->waits) OUT;
	CHECK_SLOTS(&self->blk, W_RING, "writer", w->slots, TU_SLOTS, 1);
	CHECK_SLOTS(&self->blk, R_RING, "reader", r->slots, TU_SLOTS, 1);
}

/*
 * -l libbring.so: attached before the process exists, and still catches
 * it (uprobes on the library's inode, semaphores set at mmap).
 */
TEST_F_TIMEOUT(trace, lib_path_catches_later_process, 60)
{
	const struct tu_hist *w, *r;
	char args[PATH_MAX + 16], wring[32], rring[32], names[80];

	/*
	 * -l traces every process of the library, and CI's sanitized runs
	 * run bpftrace_test (its blockers use the same library) beside
	 * this one: rings of our own tell ours apart.
	 */
	snprintf(wring, sizeof(wring), "lp_write_%d", (int)getpid());
	snprintf(rring, sizeof(rring), "lp_read_%d", (int)getpid());
	snprintf(names, sizeof(names), "-w 4 -r 7 -W %s -R %s", wring, rring);
	snprintf(args, sizeof(args), "-l %s", tu_out_path("lib/libbring.so.0"));
	ASSERT_EQ(0, start_bringlat(&self->bl, args, 0));
	/* started after bringlat attached */
	ASSERT_EQ(0, tu_blocker_start(&self->blk,
				      "selftests/bpf/bring_blocker_shared",
				      names));
	ASSERT_EQ(0, tu_blocker_run(&self->blk, 20000));
	EXPECT_EQ(0, tu_blocker_end(&self->blk));
	/* -l: runs until Ctrl-C */
	kill(self->bl.pid, SIGINT);
	ASSERT_EQ(0, tu_finish(&self->bl, 15000));
	self->nh = tu_parse_text(tu_rest(&self->bl), self->h, 16);
	w = tu_find_hist(self->h, self->nh, wring, "writer", 0);
	r = tu_find_hist(self->h, self->nh, rring, "reader", 0);
	ASSERT_NE_NULL(w) OUT;
	ASSERT_NE_NULL(r) OUT;
	EXPECT_EQ(4, w->waits) OUT;
	CHECK_SLOTS(&self->blk, wring, "writer", w->slots, TU_SLOTS, 1);
	EXPECT_EQ(7, r->waits) OUT;
	CHECK_SLOTS(&self->blk, rring, "reader", r->slots, TU_SLOTS, 1);
	EXPECT_EQ(tu_blocker_stats(&self->blk, wring)->write_waits, w->waits)
	OUT;
	EXPECT_EQ(tu_blocker_stats(&self->blk, rring)->read_waits, r->waits)
	OUT;
}

/*
 * -l on a statically linked program, -P: two processes of it, one
 * histogram each, under their own pid.
 */
TEST_F_TIMEOUT(trace, static_binary_per_process, 60)
{
	struct tu_blocker b2;
	const struct tu_hist *w1, *r1, *w2, *r2;
	char args[PATH_MAX + 16];

	snprintf(args, sizeof(args), "-P -l %s",
		 tu_out_path("selftests/bpf/bring_blocker"));
	ASSERT_EQ(0, start_bringlat(&self->bl, args, 0));
	ASSERT_EQ(0, tu_blocker_start(&self->blk, "selftests/bpf/bring_blocker",
				      "-w 2 -r 3"));
	ASSERT_EQ(0, tu_blocker_start(&b2, "selftests/bpf/bring_blocker",
				      "-w 3 -r 5"));
	ASSERT_EQ(0, tu_blocker_run(&self->blk, 20000));
	ASSERT_EQ(0, tu_blocker_run(&b2, 20000));
	EXPECT_EQ(0, tu_blocker_end(&self->blk));
	EXPECT_EQ(0, tu_blocker_end(&b2));
	kill(self->bl.pid, SIGINT);
	ASSERT_EQ(0, tu_finish(&self->bl, 15000));
	self->nh = tu_parse_text(tu_rest(&self->bl), self->h, 16);
	EXPECT_EQ(4, self->nh) OUT;
	w1 = tu_find_hist(self->h, self->nh, W_RING, "writer", self->blk.pid);
	r1 = tu_find_hist(self->h, self->nh, R_RING, "reader", self->blk.pid);
	w2 = tu_find_hist(self->h, self->nh, W_RING, "writer", b2.pid);
	r2 = tu_find_hist(self->h, self->nh, R_RING, "reader", b2.pid);
	tu_cleanup(&b2.p);
	ASSERT_NE_NULL(w1) OUT;
	ASSERT_NE_NULL(r1) OUT;
	ASSERT_NE_NULL(w2) OUT;
	ASSERT_NE_NULL(r2) OUT;
	EXPECT_EQ(2, w1->waits) OUT;
	EXPECT_EQ(3, r1->waits) OUT;
	EXPECT_EQ(3, w2->waits) OUT;
	EXPECT_EQ(5, r2->waits) OUT;
	CHECK_SLOTS(&self->blk, W_RING, "writer", w1->slots, TU_SLOTS, 1);
	CHECK_SLOTS(&self->blk, R_RING, "reader", r1->slots, TU_SLOTS, 1);
	CHECK_SLOTS(&b2, W_RING, "writer", w2->slots, TU_SLOTS, 1);
	CHECK_SLOTS(&b2, R_RING, "reader", r2->slots, TU_SLOTS, 1);
}

/* Run a command, return its stdout (malloc'ed) and exit status. */
static char *run_capture(const char *cmd, int *rc)
{
	struct tu_proc p;
	char *out;

	if (tu_spawn_sh(&p, cmd, NULL, TU_STDIN_NULL)) {
		*rc = -1;
		return NULL;
	}
	*rc = tu_finish(&p, 20000);
	out = strdup(p.buf ? p.buf : "");
	tu_cleanup(&p);
	return out;
}

/*
 * --pin: with bpffs not mounted (a private mount namespace without it),
 * bringlat mounts it and pins "hists" with BTF; bpftool's JSON dump has
 * named fields holding the same counts as bringlat's output; bpftool perf
 * list shows the probes; the pin is gone after bringlat exits.
 */
TEST_F_TIMEOUT(trace, pin_bpftool_dump, 60)
{
	const char *dir = "/sys/fs/bpf/bringlat-selftest";
	struct tu_json *dump, *perf;
	char cmd[512], args[256], pin[256];
	unsigned long long wcount = 0, rcount = 0;
	unsigned long long wslots[TU_SLOTS] = { 0 }, rslots[TU_SLOTS] = { 0 };
	int rc, i, k, uprobes = 0;
	char *out;

	if (system("command -v bpftool >/dev/null 2>&1"))
		SKIP(return, "bpftool is not installed");
	ASSERT_EQ(0, unshare(CLONE_NEWNS));
	ASSERT_EQ(0, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	while (umount2("/sys/fs/bpf", MNT_DETACH) == 0)
		;

	ASSERT_EQ(0, tu_blocker_start(&self->blk, "selftests/bpf/bring_blocker",
				      NULL));
	snprintf(args, sizeof(args), "-p %d --pin %s", self->blk.pid, dir);
	ASSERT_EQ(0, start_bringlat(&self->bl, args, 0))
	TH_LOG("stderr: %s", self->bl.ebuf ? self->bl.ebuf : "");
	EXPECT_NE_NULL(strstr(self->bl.ebuf ? self->bl.ebuf : "",
			      "mounted bpffs on /sys/fs/bpf"));
	ASSERT_EQ(0, tu_blocker_run(&self->blk, 20000));

	/* the workload is held: bringlat is still attached */
	snprintf(pin, sizeof(pin), "%s/hists", dir);
	snprintf(cmd, sizeof(cmd), "bpftool -j map dump pinned %s", pin);
	out = run_capture(cmd, &rc);
	ASSERT_EQ(0, rc);
	dump = tu_json_parse(out);
	ASSERT_NE_NULL(dump) TH_LOG("bpftool output is not JSON: %s", out);
	free(out);
	ASSERT_EQ(TU_JARR, dump->type);
	EXPECT_EQ(2, tu_json_len(dump));
	for (i = 0; i < tu_json_len(dump); i++) {
		struct tu_json *e = tu_json_at(dump, i);
		/* BTF: named fields under "formatted", not hex bytes */
		struct tu_json *ring = tu_json_path(e, "formatted.key.ring");
		struct tu_json *side = tu_json_path(e, "formatted.key.side");
		struct tu_json *count =
			tu_json_path(e, "formatted.value.count");
		struct tu_json *slots =
			tu_json_path(e, "formatted.value.slots");

		ASSERT_NE_NULL(ring);
		ASSERT_NE_NULL(side);
		ASSERT_NE_NULL(count);
		ASSERT_NE_NULL(slots);
		ASSERT_EQ(TU_JSTR, ring->type);
		ASSERT_EQ(TU_JSTR, side->type);
		if (!strcmp(ring->str, W_RING)) {
			EXPECT_STREQ("BRINGLAT_WRITER", side->str);
			wcount = count->num;
			for (k = 0; k < TU_SLOTS && k < tu_json_len(slots); k++)
				wslots[k] = tu_json_at(slots, k)->num;
		} else if (!strcmp(ring->str, R_RING)) {
			EXPECT_STREQ("BRINGLAT_READER", side->str);
			rcount = count->num;
			for (k = 0; k < TU_SLOTS && k < tu_json_len(slots); k++)
				rslots[k] = tu_json_at(slots, k)->num;
		}
	}
	tu_json_free(dump);
	EXPECT_EQ(NR_WRITES, wcount) OUT;
	CHECK_SLOTS(&self->blk, W_RING, "writer", wslots, TU_SLOTS, 1);
	EXPECT_EQ(NR_READS, rcount) OUT;
	CHECK_SLOTS(&self->blk, R_RING, "reader", rslots, TU_SLOTS, 1);

	/* bpftool perf list: bringlat's uprobes on the workload */
	out = run_capture("bpftool -j perf list", &rc);
	ASSERT_EQ(0, rc);
	perf = tu_json_parse(out);
	ASSERT_NE_NULL(perf) TH_LOG("bpftool output is not JSON: %s", out);
	free(out);
	for (i = 0; i < tu_json_len(perf); i++) {
		struct tu_json *e = tu_json_at(perf, i);
		struct tu_json *pid = tu_json_get(e, "pid");
		struct tu_json *type = tu_json_get(e, "fd_type");
		struct tu_json *file = tu_json_get(e, "filename");

		if (pid && (pid_t)pid->num == self->bl.pid && type &&
		    type->type == TU_JSTR && !strcmp(type->str, "uprobe") &&
		    file && strstr(file->str, "bring_blocker"))
			uprobes++;
	}
	tu_json_free(perf);
	/*
	 * Six probes: the four ring waits at two sites each (a blocking
	 * call, prepare/finish), write_wait_start and read_wait_start at a
	 * third (the drain wait's prepare, the wait for more), the durable
	 * wait's two at one each.
	 */
	EXPECT_EQ(12, uprobes);

	EXPECT_EQ(0, tu_blocker_end(&self->blk));
	ASSERT_EQ(0, tu_finish(&self->bl, 15000));
	self->nh = tu_parse_text(tu_rest(&self->bl), self->h, 16);
	ASSERT_EQ(2, self->nh) OUT;
	EXPECT_EQ(wcount, tu_find_hist(self->h, 2, W_RING, "writer", 0)->waits)
	OUT;
	EXPECT_EQ(rcount, tu_find_hist(self->h, 2, R_RING, "reader", 0)->waits)
	OUT;
	/* unpinned, and the directory it made removed */
	EXPECT_NE(0, access(pin, F_OK));
	EXPECT_NE(0, access(dir, F_OK));
}

TEST_HARNESS_MAIN
