// SPDX-License-Identifier: GPL-2.0
/*
 * bringcat -b file:RING -i file:IN -o file:OUT run again after a kill:
 * the file: source resumes after its checkpoint, the file: sink cuts its
 * output back to the length stored with its last shift, so OUT holds
 * every line of IN once. The kill comes from the sink's fault hook
 * (BRING_FAULT_SINK_KILL=N: SIGKILL after the Nth batch is written and
 * before it is shifted), in all three io variants. tail: checkpoints are
 * in tail_test.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "io_test_util.h"

#define LINES 20000 /* 640 KB: several chunk records of 256 KiB reads */

FIXTURE(ckpt)
{
	char dir[64];
	char in[PATH_MAX], out[PATH_MAX], err[PATH_MAX], ring[PATH_MAX + 16];
	char src[PATH_MAX + 8], sink[PATH_MAX + 8];
	const char *mode;
	unsigned int next; /* next line number */
};

IO_MODE_VARIANTS(ckpt);

FIXTURE_SETUP(ckpt)
{
	find_bringcat();
	if (access(bringcat, X_OK))
		SKIP(return, "%s not built", bringcat);
	if (io_mode_missing(variant->mode))
		SKIP(return, "%s", io_mode_missing(variant->mode));
	self->mode = io_mode_flag(variant->mode, "--stats");
	strcpy(self->dir, "/tmp/ckpt_test.XXXXXX");
	ASSERT_NE_NULL(mkdtemp(self->dir));
	snprintf(self->in, sizeof(self->in), "%s/in", self->dir);
	snprintf(self->out, sizeof(self->out), "%s/out", self->dir);
	snprintf(self->err, sizeof(self->err), "%s/err", self->dir);
	snprintf(self->ring, sizeof(self->ring), "file:%s/ring:1M", self->dir);
	snprintf(self->src, sizeof(self->src), "file:%s", self->in);
	snprintf(self->sink, sizeof(self->sink), "file:%s", self->out);
}

FIXTURE_TEARDOWN(ckpt)
{
	char cmd[128];

	if (self->dir[0] && !strncmp(self->dir, "/tmp/ckpt_test.", 15)) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
		if (system(cmd) != 0)
			TH_LOG("could not remove %s", self->dir);
	}
}

/* Append lines [next, next + n) to IN. */
static int add_lines(FIXTURE_DATA(ckpt) *self, unsigned int n)
{
	FILE *f = fopen(self->in, "a");
	unsigned int i;

	if (!f)
		return -1;
	for (i = 0; i < n; i++)
		fprintf(f, "line %08u of the input file\n", self->next++);
	return fclose(f);
}

/* The lines [from, to) as IN holds them. */
static char *lines(unsigned int from, unsigned int to, size_t *len)
{
	char *buf = malloc((size_t)(to - from) * 40 + 1), *p = buf;
	unsigned int i;

	for (i = from; buf && i < to; i++)
		p += sprintf(p, "line %08u of the input file\n", i);
	*len = (size_t)(p - buf);
	return buf;
}

/* Run bringcat to its end; @kill_after: the fault hook's N, 0 for none. */
static int run(FIXTURE_DATA(ckpt) *self, unsigned int kill_after)
{
	const char *args[] = { self->mode, "--stats", "-b", self->ring, "-i",
			       self->src, "-o", self->sink, NULL };
	char n[16];

	snprintf(n, sizeof(n), "%u", kill_after);
	if (kill_after)
		setenv("BRING_FAULT_SINK_KILL", n, 1);
	else
		unsetenv("BRING_FAULT_SINK_KILL");
	return wait_rc(spawn(NULL, self->err, args), 60000);
}

/* OUT is exactly lines [from, to). */
static void expect_out(struct __test_metadata *_metadata,
		       FIXTURE_DATA(ckpt) *self, unsigned int from,
		       unsigned int to)
{
	size_t len, want_len;
	char *got = slurp(self->out, &len), *want = lines(from, to, &want_len);

	ASSERT_NE_NULL(got);
	ASSERT_NE_NULL(want);
	EXPECT_EQ(want_len, len);
	EXPECT_EQ(0, memcmp(got, want, len < want_len ? len : want_len));
	free(got);
	free(want);
}

static bool said(FIXTURE_DATA(ckpt) *self, const char *what)
{
	size_t len;
	char *s = slurp(self->err, &len);
	bool yes = s && strstr(s, what);

	if (!yes)
		printf("# stderr: %s\n", s ? s : "(none)");
	free(s);
	return yes;
}

/*
 * Killed between a batch's write and its shift, twice: each restart cuts
 * what was written after the last shift and writes it again; the source
 * resumes after its own checkpoint (it had read further than the sink
 * wrote). Every line once, in order.
 */
TEST_F(ckpt, sink_killed_between_write_and_shift_duplicates_nothing)
{
	ASSERT_EQ(0, add_lines(self, LINES));
	EXPECT_EQ(128 + 9, run(self, 1));
	EXPECT_GT(file_size(self->out), 0);
	EXPECT_EQ(128 + 9, run(self, 1));
	EXPECT_TRUE(said(self, "written after the last shift cut off"));
	EXPECT_EQ(0, run(self, 0));
	EXPECT_TRUE(said(self, "written after the last shift cut off"));
	expect_out(_metadata, self, 0, LINES);
}

/* Run again after the end: nothing more; new lines: only those. */
TEST_F(ckpt, source_resumes_after_its_checkpoint)
{
	ASSERT_EQ(0, add_lines(self, 1000));
	EXPECT_EQ(0, run(self, 0));
	EXPECT_EQ(0, run(self, 0));
	expect_out(_metadata, self, 0, 1000);
	ASSERT_EQ(0, add_lines(self, 500));
	EXPECT_EQ(0, run(self, 0));
	expect_out(_metadata, self, 0, 1500);
}

/*
 * An output shorter than at the last shift (rotated away by someone):
 * one line, then appended to, never cut.
 */
TEST_F(ckpt, shorter_output_is_appended_to)
{
	ASSERT_EQ(0, add_lines(self, 1000));
	EXPECT_EQ(0, run(self, 0));
	ASSERT_EQ(0, unlink(self->out));
	ASSERT_EQ(0, add_lines(self, 300));
	EXPECT_EQ(0, run(self, 0));
	EXPECT_TRUE(said(self, "rotated or truncated since; appending"));
	expect_out(_metadata, self, 1000, 1300);
}

/* Another file at the source's path: said, and read from its start. */
TEST_F(ckpt, replaced_input_is_read_from_the_start)
{
	char fresh[PATH_MAX + 8], *a, *b, *got;
	size_t a_len, b_len, len;

	ASSERT_EQ(0, add_lines(self, 1000));
	EXPECT_EQ(0, run(self, 0));
	/* A new inode: made before the old one goes. */
	snprintf(fresh, sizeof(fresh), "%s.new", self->in);
	ASSERT_EQ(0, rename(self->in, fresh));
	self->next = 5000;
	ASSERT_EQ(0, add_lines(self, 200));
	ASSERT_EQ(0, unlink(fresh));
	EXPECT_EQ(0, run(self, 0));
	EXPECT_TRUE(said(self, "not the file of the checkpoint"));
	a = lines(0, 1000, &a_len);
	b = lines(5000, 5200, &b_len);
	got = slurp(self->out, &len);
	ASSERT_NE_NULL(got);
	EXPECT_EQ(a_len + b_len, len);
	if (len == a_len + b_len) {
		EXPECT_EQ(0, memcmp(got, a, a_len));
		EXPECT_EQ(0, memcmp(got + a_len, b, b_len));
	}
	free(a);
	free(b);
	free(got);
}

/*
 * fdatasync()s of OUT by bringcat run under strace with @durability, or
 * -1 when strace could not trace it (no strace, no ptrace here).
 */
static int out_syncs(FIXTURE_DATA(ckpt) *self, const char *durability)
{
	char cmd[8 * PATH_MAX], trace[PATH_MAX + 8], *log, *p;
	size_t len;
	int n = 0, rc;

	snprintf(trace, sizeof(trace), "%s/trace", self->dir);
	/* LeakSanitizer cannot run under ptrace: off for this run. */
	snprintf(cmd, sizeof(cmd),
		 "ASAN_OPTIONS=detect_leaks=0 "
		 "strace -f -qq -y -e trace=fdatasync -o %s %s %s -q -b %s "
		 "--durability %s -i %s -o %s 2>>%s",
		 trace, bringcat, self->mode, self->ring, durability,
		 self->src, self->sink, self->err);
	rc = system(cmd);
	log = slurp(trace, &len);
	if (rc || !log) {
		free(log);
		return -1;
	}
	/* fdatasync(5</tmp/ckpt_test.X/out>) = 0 */
	for (p = log; (p = strstr(p, "fdatasync(")); p++) {
		const char *q = strchr(p, '<');

		if (q && !strncmp(q + 1, self->out, strlen(self->out)) &&
		    q[1 + strlen(self->out)] == '>')
			n++;
	}
	free(log);
	return n;
}

/*
 * --durability interval or always: the file: sink's output is
 * fdatasync()ed before each shift stores its length (power loss never
 * leaves a mark ahead of the output); none: never. A memory buffer or
 * an unknown mode is a usage error.
 */
TEST_F(ckpt, durable_ring_syncs_the_output_before_its_mark)
{
	const char *bad[][6] = {
		{ "-b", "mem:1M", "--durability", "always", NULL },
		{ "-b", self->ring, "--durability", "sometimes", NULL },
	};
	static const char *const why[] = {
		"a memory buffer is never durable",
		"expected none, interval or always, got 'sometimes'",
	};
	const char *args[10];
	unsigned int i, j;
	int n;

	if (access("/usr/bin/strace", X_OK))
		SKIP(return, "strace is not installed");
	for (i = 0; i < 2; i++) {
		for (j = 0; bad[i][j]; j++)
			args[j] = bad[i][j];
		args[j++] = "-i";
		args[j++] = self->src;
		args[j++] = "-o";
		args[j++] = self->sink;
		args[j] = NULL;
		EXPECT_EQ(2, wait_rc(spawn(NULL, self->err, args), 60000));
		EXPECT_TRUE(said(self, why[i]));
	}
	ASSERT_EQ(0, add_lines(self, 1000));
	n = out_syncs(self, "none");
	if (n < 0)
		SKIP(return, "strace cannot trace bringcat here");
	EXPECT_EQ(0, n);
	ASSERT_EQ(0, add_lines(self, 1000));
	EXPECT_LT(0, out_syncs(self, "always"));
	ASSERT_EQ(0, add_lines(self, 1000));
	EXPECT_LT(0, out_syncs(self, "interval"));
	expect_out(_metadata, self, 0, 3000);
}

TEST_HARNESS_MAIN
