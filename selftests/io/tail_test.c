// SPDX-License-Identifier: GPL-2.0
/*
 * bringcat -i tail:PATH, in both io modes (io_uring and --no-uring):
 * appends while running, rename-and-recreate rotation, copytruncate,
 * a file created after the start, a deleted file, other framings,
 * SIGTERM with a backlog, and bad paths; with a file ring, checkpoints:
 * SIGKILL anywhere, rotation and truncation while bringcat is down. Every test writes
 * sequence-numbered lines (or records), keeps the bytes the file: sink
 * must end up with, and waits for them with a deadline: nothing lost,
 * nothing twice, order kept.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bring.h"
#include "kselftest_harness.h"
#include "io_test_util.h"

#define LINE_LEN 35 /* "line 00000042 the quick brown fox.\n" */
#define WAIT_MS 15000

FIXTURE(tail)
{
	char dir[64];
	char log[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
	char uri[PATH_MAX + 8], sink[PATH_MAX + 8];
	const char *mode;
	unsigned int seq; /* next line number */
	char *want; /* what the sink must have written */
	size_t want_len, want_cap;
	unsigned int scale; /* 10 under sanitizers */
	pid_t pid;
	const char *extra, *extra2; /* start_ring(): more options, or NULL */
};

IO_MODE_VARIANTS(tail);

FIXTURE_SETUP(tail)
{
	find_bringcat();
	if (access(bringcat, X_OK))
		SKIP(return, "%s not built", bringcat);
	if (io_mode_missing(variant->mode))
		SKIP(return, "%s", io_mode_missing(variant->mode));
	/* Not --quiet: the tests read the diagnostics and the counters. */
	self->mode = io_mode_flag(variant->mode, "--stats");
	self->scale = getenv("BRING_SANITIZED") ? 10 : 1;
	strcpy(self->dir, "/tmp/tail_test.XXXXXX");
	ASSERT_NE_NULL(mkdtemp(self->dir));
	snprintf(self->log, sizeof(self->log), "%s/app.log", self->dir);
	snprintf(self->out, sizeof(self->out), "%s/out", self->dir);
	snprintf(self->err, sizeof(self->err), "%s/err", self->dir);
	snprintf(self->uri, sizeof(self->uri), "tail:%s", self->log);
	snprintf(self->sink, sizeof(self->sink), "file:%s", self->out);
	self->want_cap = 1 << 20;
	self->want = malloc(self->want_cap);
	ASSERT_NE_NULL(self->want);
}

FIXTURE_TEARDOWN(tail)
{
	char cmd[128];

	if (self->pid > 0) {
		kill(self->pid, SIGKILL);
		waitpid(self->pid, NULL, 0);
	}
	free(self->want);
	if (self->dir[0] && !strncmp(self->dir, "/tmp/tail_test.", 15)) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
		if (system(cmd) != 0)
			TH_LOG("could not remove %s", self->dir);
	}
}

static void want_add(FIXTURE_DATA(tail) *self, const char *s, size_t len)
{
	if (self->want_len + len > self->want_cap) {
		self->want_cap = 2 * (self->want_len + len);
		self->want = realloc(self->want, self->want_cap);
	}
	memcpy(self->want + self->want_len, s, len);
	self->want_len += len;
}

/* Append @len bytes to @path as one write(2). */
static int append(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/* The next @n sequence lines, as they are written and as they come out. */
static size_t make_lines(FIXTURE_DATA(tail) *self, char *buf, unsigned int n)
{
	size_t len = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		len += sprintf(buf + len, "line %08u the quick brown fox.\n",
			       self->seq++);
	want_add(self, buf, len);
	return len;
}

/* Append the next @n lines to @path in writes of @per lines each. */
static int put_lines(FIXTURE_DATA(tail) *self, const char *path,
		     unsigned int n, unsigned int per)
{
	char *buf = malloc((size_t)per * LINE_LEN + 1);
	unsigned int k;
	size_t len;
	int ret = 0;

	while (n && !ret) {
		k = n < per ? n : per;
		len = make_lines(self, buf, k);
		ret = append(path, buf, len);
		n -= k;
	}
	free(buf);
	return ret;
}

/* Start bringcat on the fixture's tail: URI and file: sink. */
static pid_t start(FIXTURE_DATA(tail) *self, const char *opt)
{
	const char *args[] = { self->mode, "--stats", "-i", self->uri, "-o",
			       self->sink, opt, NULL };

	self->pid = spawn(NULL, self->err, args);
	return self->pid;
}

/* It follows the file: it has it open at @size (its end when started). */
static bool following(FIXTURE_DATA(tail) *self, off_t size)
{
	return wait_read(self->pid, self->log, size, WAIT_MS);
}

/*
 * Start bringcat on a file that holds a line already (not shipped: it
 * starts at the end) and wait until its offset is past that line. With
 * an empty file an open fd at 0 would not say whether bringcat has
 * seeked to the end yet: lines written before that would be skipped.
 */
static bool start_at_end(FIXTURE_DATA(tail) *self)
{
	static const char history[] = "written before bringcat started\n";

	return !spew(self->log, history, sizeof(history) - 1) &&
	       start(self, NULL) > 0 &&
	       following(self, sizeof(history) - 1);
}

/* The sink wrote everything wanted so far (within WAIT_MS). */
static bool caught_up(FIXTURE_DATA(tail) *self)
{
	if (wait_size(self->out, self->want_len, WAIT_MS))
		return true;
	printf("# the sink wrote %lld of %zu bytes\n",
	       (long long)file_size(self->out), self->want_len);
	return false;
}

/* SIGTERM: exit code. */
static int stop(FIXTURE_DATA(tail) *self)
{
	int rc;

	kill(self->pid, SIGTERM);
	rc = wait_rc(self->pid, WAIT_MS);
	self->pid = 0;
	return rc;
}

/* The sink's file is exactly what was wanted. */
static void expect_out(struct __test_metadata *_metadata,
		       FIXTURE_DATA(tail) *self)
{
	size_t len, i;
	char *got = slurp(self->out, &len);

	ASSERT_NE_NULL(got);
	if (len != self->want_len || memcmp(got, self->want, len)) {
		for (i = 0; i < len && i < self->want_len &&
			    got[i] == self->want[i];
		     i++)
			;
		TH_LOG("%zu bytes, want %zu; first difference at %zu: \"%.40s\" want \"%.40s\"",
		       len, self->want_len, i, got + i,
		       i < self->want_len ? self->want + i : "");
	}
	EXPECT_EQ(self->want_len, len);
	EXPECT_EQ(0, memcmp(got, self->want,
			    len < self->want_len ? len : self->want_len));
	free(got);
}

/* How many times @what is in bringcat's stderr. */
static int count_text(FIXTURE_DATA(tail) *self, const char *what)
{
	size_t len;
	char *s = slurp(self->err, &len), *q;
	int n = 0;

	for (q = s; q && (q = strstr(q, what)); q++)
		n++;
	free(s);
	return n;
}

static bool running(FIXTURE_DATA(tail) *self)
{
	return waitpid(self->pid, NULL, WNOHANG) == 0;
}

/*
 * io-wq workers of bringcat's io_uring: its threads named "iou-wrk-*"
 * (its own threads are not counted: the signal thread, a sanitizer's).
 */
static int io_workers(FIXTURE_DATA(tail) *self)
{
	char path[320], comm[32];
	struct dirent *de;
	int n = 0;
	FILE *f;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)self->pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm",
			 (int)self->pid, de->d_name);
		f = fopen(path, "r");
		if (f && fgets(comm, sizeof(comm), f) &&
		    !strncmp(comm, "iou-wrk", 7))
			n++;
		if (f)
			fclose(f);
	}
	closedir(d);
	return n;
}

/*
 * Starts at the end: what was there is not shipped, nor the rest of a
 * line that was being written; what is appended is, in writes of every
 * size; a line split across two writes is one message; bringcat does
 * not exit at the end of the file.
 */
TEST_F(tail, appends_follow_from_the_end)
{
	const char *history = "old 1\nold 2\nold line being wri";
	unsigned int n = 20000 / self->scale;
	char buf[2 * LINE_LEN + 1];
	size_t len;

	ASSERT_EQ(0, spew(self->log, history, strlen(history)));
	ASSERT_GT(start(self, NULL), 0);
	ASSERT_TRUE(following(self, strlen(history)));
	ASSERT_EQ(0, append(self->log, "tten\n", 5));
	ASSERT_EQ(0, put_lines(self, self->log, 1, 1));
	ASSERT_EQ(0, put_lines(self, self->log, 7, 7));
	/* A line in two writes: the first half waits at the end. */
	len = make_lines(self, buf, 1);
	ASSERT_EQ(0, append(self->log, buf, 10));
	ASSERT_TRUE(following(self, file_size(self->log)));
	ASSERT_EQ(0, append(self->log, buf + 10, len - 10));
	ASSERT_EQ(0, put_lines(self, self->log, n, 1000));
	ASSERT_TRUE(caught_up(self));
	EXPECT_TRUE(running(self));
	/* io_uring: the inotify read is polled in the loop, no worker. */
	if (variant->mode != IO_MODE_FALLBACK)
		EXPECT_EQ(0, io_workers(self));
	/* A partial line at SIGTERM is dropped (counted), not shipped. */
	ASSERT_EQ(0, append(self->log, "no newline yet", 14));
	ASSERT_TRUE(following(self, file_size(self->log)));
	ASSERT_EQ(0, stop(self));
	expect_out(_metadata, self);
	EXPECT_EQ(1, final_stat(self->err, NULL, "dropped "));
	EXPECT_EQ(0, final_stat(self->err, NULL, "rotations "));
}

/* --tail-from start ships what is there first. */
TEST_F(tail, from_start_reads_what_is_there)
{
	ASSERT_EQ(0, put_lines(self, self->log, 100, 30));
	ASSERT_GT(start(self, "--tail-from=start"), 0);
	ASSERT_EQ(0, put_lines(self, self->log, 100, 7));
	ASSERT_TRUE(caught_up(self));
	ASSERT_EQ(0, stop(self));
	expect_out(_metadata, self);
}

/*
 * Rename and recreate, several times: lines written to the file before
 * the rename, to the renamed file after it (its writer has not reopened
 * yet), and to the new file all come out once, in order; a partial last
 * line of a rotated file is a message of its own.
 */
TEST_F(tail, rotation_loses_nothing)
{
	unsigned int n = 3000 / self->scale, round;
	char old[PATH_MAX + 16], partial[64];
	int len;

	ASSERT_TRUE(start_at_end(self));
	for (round = 0; round < 5; round++) {
		ASSERT_EQ(0, put_lines(self, self->log, n, 100));
		snprintf(old, sizeof(old), "%s.%u", self->log, round);
		ASSERT_EQ(0, rename(self->log, old));
		ASSERT_EQ(0, put_lines(self, old, n / 3, 3));
		if (round & 1) {
			len = snprintf(partial, sizeof(partial),
				       "round %u ends without a newline", round);
			ASSERT_EQ(0, append(old, partial, len));
			want_add(self, partial, len);
			want_add(self, "\n", 1);
		}
		ASSERT_EQ(0, put_lines(self, self->log, n, 100));
		/* Before the next rename: the new file is being followed. */
		ASSERT_TRUE(caught_up(self));
	}
	ASSERT_EQ(0, stop(self));
	expect_out(_metadata, self);
	EXPECT_EQ(5, final_stat(self->err, NULL, "rotations "));
	EXPECT_EQ(0, final_stat(self->err, NULL, "dropped "));
}

/*
 * copytruncate: the file is copied, then truncated in place and written
 * again from 0. Each truncation is seen (the new content is shorter than
 * what was read), logged once, counted, and the file read again from its
 * start; a partial line before the truncation is a message of its own.
 */
TEST_F(tail, copytruncate_reads_again_from_start)
{
	unsigned int n = 3000 / self->scale, round;
	char copy[PATH_MAX + 16], cmd[2 * PATH_MAX + 32];
	const char *partial = "cut here";

	ASSERT_TRUE(start_at_end(self));
	for (round = 0; round < 4; round++) {
		ASSERT_EQ(0, put_lines(self, self->log, n, 100));
		if (round == 2) {
			ASSERT_EQ(0, append(self->log, partial, strlen(partial)));
			want_add(self, partial, strlen(partial));
			want_add(self, "\n", 1);
		}
		/* All of it read before the cut, or it would be lost. */
		ASSERT_TRUE(following(self, file_size(self->log)));
		snprintf(copy, sizeof(copy), "%s.%u", self->log, round);
		snprintf(cmd, sizeof(cmd), "cp %s %s", self->log, copy);
		ASSERT_EQ(0, system(cmd));
		ASSERT_EQ(0, truncate(self->log, 0));
		ASSERT_EQ(0, put_lines(self, self->log, n / 10, 10));
		ASSERT_TRUE(caught_up(self));
	}
	ASSERT_EQ(0, stop(self));
	expect_out(_metadata, self);
	EXPECT_EQ(4, final_stat(self->err, NULL, "truncations "));
	EXPECT_EQ(0, final_stat(self->err, NULL, "rotations "));
	EXPECT_EQ(4, count_text(self, "truncated ("));
}

/*
 * A file that does not exist yet is waited for and read from its start,
 * even when it appears with content (renamed into place).
 */
TEST_F(tail, file_created_after_start)
{
	char tmp[PATH_MAX + 8];

	snprintf(tmp, sizeof(tmp), "%s.tmp", self->log);
	ASSERT_GT(start(self, NULL), 0);
	ASSERT_TRUE(wait_text(self->err, "waiting for the file to appear",
			      WAIT_MS));
	EXPECT_TRUE(running(self));
	ASSERT_EQ(0, put_lines(self, tmp, 50, 50));
	ASSERT_EQ(0, rename(tmp, self->log));
	ASSERT_EQ(0, put_lines(self, self->log, 500, 9));
	ASSERT_TRUE(caught_up(self));
	ASSERT_EQ(0, stop(self));
	expect_out(_metadata, self);
	EXPECT_EQ(0, final_stat(self->err, NULL, "rotations "));
}

/*
 * Deleted while its writer still writes to it, then created again: the
 * deleted file is followed until the new one appears and read to its end.
 */
TEST_F(tail, deleted_and_recreated)
{
	unsigned int n = 2000 / self->scale;
	char buf[100 * LINE_LEN + 1];
	size_t len;
	int fd;

	ASSERT_TRUE(start_at_end(self));
	ASSERT_EQ(0, put_lines(self, self->log, n, 100));
	fd = open(self->log, O_WRONLY | O_APPEND);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, unlink(self->log));
	len = make_lines(self, buf, 100);
	ASSERT_EQ((ssize_t)len, write(fd, buf, len));
	ASSERT_TRUE(wait_size(self->out, self->want_len, WAIT_MS));
	len = make_lines(self, buf, 10);
	ASSERT_EQ((ssize_t)len, write(fd, buf, len));
	close(fd);
	ASSERT_EQ(0, put_lines(self, self->log, n, 100));
	ASSERT_TRUE(caught_up(self));
	ASSERT_EQ(0, stop(self));
	expect_out(_metadata, self);
	EXPECT_EQ(1, final_stat(self->err, NULL, "rotations "));
}

/* Framings apply: u32be records split across writes come out whole. */
TEST_F(tail, u32be_records_whole)
{
	const char *args[] = { self->mode, "-f", "u32be", "--tail-from",
			       "start", "-i", self->uri, "-o", self->sink,
			       NULL };
	size_t cap = 1 << 20, n = 0, cut;
	char *in = malloc(cap), *got;
	unsigned int i;
	size_t len;

	for (i = 0; i < 2000; i++) {
		uint32_t rl = (i * 37) % 300, be = htonl(rl);

		memcpy(in + n, &be, 4);
		memset(in + n + 4, 'a' + i % 26, rl);
		n += 4 + rl;
	}
	cut = n / 2 + 1; /* inside some record */
	ASSERT_EQ(0, append(self->log, in, cut));
	self->pid = spawn(NULL, self->err, args);
	ASSERT_TRUE(following(self, cut));
	ASSERT_EQ(0, append(self->log, in + cut, n - cut));
	ASSERT_TRUE(wait_size(self->out, n, WAIT_MS));
	ASSERT_EQ(0, stop(self));
	got = slurp(self->out, &len);
	ASSERT_EQ(n, len);
	EXPECT_EQ(0, memcmp(got, in, n));
	free(got);
	free(in);
}

/* Read all of @fd until its end or @ms ms; the bytes read. */
static char *drain_fifo(int fd, size_t *len, int ms)
{
	uint64_t end = now_ms() + ms;
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t k;

	while (now_ms() < end) {
		if (poll(&p, 1, 100) <= 0)
			continue;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
		k = read(fd, buf + n, cap - n);
		if (k == 0 || (k < 0 && errno != EAGAIN))
			break;
		if (k > 0)
			n += k;
	}
	*len = n;
	return buf;
}

/*
 * SIGTERM while the ring holds a backlog (the sink's FIFO is not read):
 * bringcat stops reading, writes what the ring holds, exits 0; what comes
 * out is a prefix of whole lines, and more than the pipe held.
 */
TEST_F(tail, sigterm_drains_backlog)
{
	char fifo[PATH_MAX + 8];
	const char *args[] = { self->mode, "--stats", "--buffer", "mem:4M",
			       "-m", "4096", "--tail-from", "start", "-i",
			       self->uri, "-o", fifo, NULL };
	unsigned int n = 100000;
	long long out_bytes;
	size_t len;
	char *got;
	int rfd;

	snprintf(fifo, sizeof(fifo), "file:%s", self->out);
	ASSERT_EQ(0, mkfifo(self->out, 0644));
	rfd = open(self->out, O_RDONLY | O_NONBLOCK);
	ASSERT_GE(rfd, 0);
	ASSERT_EQ(0, put_lines(self, self->log, n, 1000));
	self->pid = spawn(NULL, self->err, args);
	/* The ring fills behind the FIFO (2.9 MB of these lines fit). */
	ASSERT_TRUE(following(self, 3 << 19));
	kill(self->pid, SIGTERM);
	got = drain_fifo(rfd, &len, WAIT_MS);
	close(rfd);
	ASSERT_EQ(0, wait_rc(self->pid, WAIT_MS));
	self->pid = 0;
	/* "out N msgs M bytes" */
	out_bytes = final_stat(self->err, " out ", "msgs ");
	TH_LOG("%zu of %zu bytes out after SIGTERM", len, self->want_len);
	EXPECT_EQ(out_bytes, (long long)len);
	EXPECT_GT(len, 65536);
	EXPECT_EQ(0, memcmp(got, self->want, len));
	if (len)
		EXPECT_EQ('\n', got[len - 1]);
	free(got);
}

/* Run bringcat @args: exit @rc, and @msg on the one line of stderr. */
static void expect_one_line(struct __test_metadata *_metadata,
			    FIXTURE_DATA(tail) *self, const char **args, int rc,
			    const char *msg)
{
	size_t len;
	char *err;

	expect_exit(_metadata, self->err, args, rc, msg);
	err = slurp(self->err, &len);
	ASSERT_NE_NULL(err);
	EXPECT_TRUE(len && strchr(err, '\n') == err + len - 1)
		TH_LOG("stderr: %s", err);
	free(err);
}

TEST_F(tail, bad_paths)
{
	char uri[PATH_MAX + 32], fifo[PATH_MAX + 8];
	const char *a[] = { self->mode, "-i", uri, "-o", self->sink, NULL };

	snprintf(uri, sizeof(uri), "tail:%s/no/such/app.log", self->dir);
	expect_one_line(_metadata, self, a, 1, "its directory does not exist");

	snprintf(uri, sizeof(uri), "tail:%s", self->dir);
	expect_one_line(_metadata, self, a, 1, "Is a directory");

	snprintf(uri, sizeof(uri), "tail:%s/", self->dir);
	expect_one_line(_metadata, self, a, 1, "Is a directory");

	snprintf(fifo, sizeof(fifo), "%s/fifo", self->dir);
	ASSERT_EQ(0, mkfifo(fifo, 0644));
	snprintf(uri, sizeof(uri), "tail:%s", fifo);
	expect_one_line(_metadata, self, a, 1, "not a regular file");

	ASSERT_EQ(0, spew(self->log, "", 0));
	snprintf(uri, sizeof(uri), "tail:%s/x", self->log);
	expect_one_line(_metadata, self, a, 1, "Not a directory");

	snprintf(uri, sizeof(uri), "tail:");
	expect_one_line(_metadata, self, a, 2, "-i tail:: missing PATH");
	{
		const char *b[] = { self->mode, "-i", self->uri, "-o",
				    self->uri, NULL };

		expect_one_line(_metadata, self, b, 2, "unknown sink type");
	}
	{
		const char *b[] = { self->mode, "--tail-from", "middle", "-i",
				    self->uri, "-o", self->sink, NULL };

		expect_one_line(_metadata, self, b, 2, "--tail-from");
	}
}

/* ------------------------------------------------------------------ */
/* Checkpoints: a file ring, restarts with the same command.          */

/* bringcat with a file ring, reading the tail from its start if new. */
static pid_t start_ring(FIXTURE_DATA(tail) *self, const char *tail_from)
{
	char ring[PATH_MAX + 16];
	const char *args[] = { self->mode, "--stats", "-b", ring, "-i",
			       self->uri, "--tail-from", tail_from, "-o",
			       self->sink, self->extra, self->extra2, NULL };

	snprintf(ring, sizeof(ring), "file:%s/ring:1M", self->dir);
	self->pid = spawn(NULL, self->err, args);
	return self->pid;
}

static void kill9(FIXTURE_DATA(tail) *self)
{
	kill(self->pid, SIGKILL);
	waitpid(self->pid, NULL, 0);
	self->pid = 0;
}

/* Restart, catch up, stop: the output must be exactly what was wanted. */
static void finish(struct __test_metadata *_metadata,
		   FIXTURE_DATA(tail) *self)
{
	ASSERT_GT(start_ring(self, "start"), 0);
	EXPECT_TRUE(caught_up(self));
	/* Running (signals handled) once it follows the path's file. */
	EXPECT_TRUE(following(self, file_size(self->log)));
	EXPECT_EQ(0, stop(self));
	expect_out(_metadata, self);
}

/* Rename and create, logrotate style: app.log -> app.log.1 -> app.log.2. */
static void rotate(FIXTURE_DATA(tail) *self, unsigned int keep)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 16];
	unsigned int i;

	for (i = keep; i > 0; i--) {
		snprintf(from, sizeof(from), "%s.%u", self->log, i);
		snprintf(to, sizeof(to), "%s.%u", self->log, i + 1);
		rename(from, to);
	}
	snprintf(to, sizeof(to), "%s.1", self->log);
	rename(self->log, to);
}

/*
 * tail: -> file ring -> file:, one bringcat, SIGKILLed at random moments
 * while lines are appended and the file is rotated under it: every line
 * comes out once, in order (the source resumes at its mark, the sink
 * cuts its output back to its own).
 */
TEST_F(tail, checkpoint_survives_sigkill_anywhere)
{
	unsigned int kills = 12 / (self->scale > 1 ? 3 : 1), k;
	unsigned int seed = (unsigned int)now_ms();

	TH_LOG("seed %u", seed);
	/* A checkpoint exists once the first record is committed. */
	ASSERT_EQ(0, put_lines(self, self->log, 2000, 500));
	ASSERT_GT(start_ring(self, "start"), 0);
	ASSERT_TRUE(caught_up(self));
	kill9(self);
	for (k = 0; k < kills; k++) {
		ASSERT_GT(start_ring(self, "start"), 0);
		ASSERT_EQ(0, put_lines(self, self->log, 3000 / self->scale,
				       1 + rand_r(&seed) % 300));
		if (k % 4 == 3) {
			/* Rotated while it runs. */
			rotate(self, 3);
			ASSERT_EQ(0, put_lines(self, self->log, 500, 50));
		}
		usleep(1000 * (rand_r(&seed) % 40));
		kill9(self);
	}
	finish(_metadata, self);
	EXPECT_EQ(0, final_stat(self->err, NULL, "dropped "));
}

/*
 * Rotated once, and twice, while bringcat was down: the rest of the
 * checkpointed file (found by identity as app.log.1 or app.log.2), then
 * the files rotated after it, then the new one.
 */
TEST_F(tail, checkpoint_rotated_while_down)
{
	unsigned int times;

	for (times = 1; times <= 2; times++) {
		ASSERT_EQ(0, put_lines(self, self->log, 1000, 100));
		ASSERT_GT(start_ring(self, "start"), 0);
		ASSERT_TRUE(caught_up(self));
		kill9(self);
		ASSERT_EQ(0, put_lines(self, self->log, 700, 70));
		rotate(self, 2);
		if (times == 2) {
			ASSERT_EQ(0, put_lines(self, self->log, 300, 30));
			rotate(self, 2);
		}
		ASSERT_EQ(0, put_lines(self, self->log, 500, 50));
		finish(_metadata, self);
		EXPECT_EQ(1, count_text(self, "rotated while stopped: reading the rest"));
	}
}

/*
 * Rotated twice while bringcat could not look (stopped, as a reader held
 * back by a full ring is): the rest of the followed file, now app.log.2,
 * then app.log.1, rotated after it, then the new app.log. The path alone
 * would skip app.log.1.
 */
/*
 * Stop bringcat and wait until it is stopped: kill() returns before the
 * stop reaches a thread running on another CPU, which then looks at the
 * files a little longer.
 */
static bool stopped(FIXTURE_DATA(tail) *self)
{
	int status;

	if (kill(self->pid, SIGSTOP) ||
	    waitpid(self->pid, &status, WUNTRACED) != self->pid)
		return false;
	return WIFSTOPPED(status);
}

/*
 * Rotations one after the other while bringcat reads, at full speed:
 * it looks for its file's new name while the names move. A directory
 * scan can miss a file renamed during it, and the files after it would
 * be skipped; every rotated file is read, each once.
 */
TEST_F(tail, rotated_while_looking_for_the_next_file_reads_every_file)
{
	unsigned int rounds = 60 / self->scale, round;

	ASSERT_TRUE(start_at_end(self));
	for (round = 0; round < rounds; round++) {
		ASSERT_EQ(0, put_lines(self, self->log, 20, 20));
		rotate(self, rounds);
	}
	ASSERT_EQ(0, put_lines(self, self->log, 20, 20));
	EXPECT_TRUE(caught_up(self));
	ASSERT_EQ(0, stop(self));
	expect_out(_metadata, self);
	EXPECT_EQ(rounds, final_stat(self->err, NULL, "rotations "));
}

TEST_F(tail, rotated_twice_between_looks_reads_every_file)
{
	unsigned int round;

	ASSERT_TRUE(start_at_end(self));
	ASSERT_EQ(0, put_lines(self, self->log, 300, 30));
	ASSERT_TRUE(caught_up(self));
	ASSERT_TRUE(stopped(self));
	for (round = 0; round < 2; round++) {
		ASSERT_EQ(0, put_lines(self, self->log, 200, 20));
		rotate(self, 2);
	}
	ASSERT_EQ(0, put_lines(self, self->log, 200, 20));
	ASSERT_EQ(0, kill(self->pid, SIGCONT));
	EXPECT_TRUE(caught_up(self));
	EXPECT_TRUE(following(self, file_size(self->log)));
	ASSERT_EQ(0, stop(self));
	expect_out(_metadata, self);
	EXPECT_EQ(2, final_stat(self->err, NULL, "rotations "));
}

/*
 * copytruncate while down: the file is shorter than the checkpoint. One
 * line says so; it is read from its start (what it holds now is new).
 * A file deleted and created again: the checkpointed one is gone.
 */
TEST_F(tail, checkpoint_truncated_or_gone_while_down)
{
	char fresh[PATH_MAX + 16];

	ASSERT_EQ(0, put_lines(self, self->log, 1000, 100));
	ASSERT_GT(start_ring(self, "start"), 0);
	ASSERT_TRUE(caught_up(self));
	kill9(self);
	ASSERT_EQ(0, truncate(self->log, 0));
	ASSERT_EQ(0, put_lines(self, self->log, 200, 20));
	finish(_metadata, self);
	EXPECT_EQ(1, count_text(self, "truncated or replaced since the checkpoint: reading"));

	/* A new file (a new inode: made before the old one goes). */
	snprintf(fresh, sizeof(fresh), "%s.new", self->log);
	ASSERT_EQ(0, put_lines(self, fresh, 300, 30));
	ASSERT_EQ(0, unlink(self->log));
	ASSERT_EQ(0, rename(fresh, self->log));
	finish(_metadata, self);
	EXPECT_EQ(1, count_text(self, "the checkpointed file is gone: reading"));
}

/*
 * Lines longer than --max-msg go in as several messages, each with the
 * mark of the offset after it: killed anywhere, each piece comes out
 * once.
 */
TEST_F(tail, checkpoint_split_lines_come_out_once)
{
	unsigned int seed = (unsigned int)now_ms(), k, i, n;
	char line[256], piece[128];
	int len, at, p;

	self->extra = "--max-msg=100";
	ASSERT_EQ(0, spew(self->log, "", 0));
	ASSERT_GT(start_ring(self, "start"), 0);
	ASSERT_TRUE(following(self, 0));
	for (k = 0; k < 6; k++) {
		for (i = 0; i < 400 / self->scale; i++) {
			n = self->seq++;
			len = snprintf(line, sizeof(line), "long %08u ", n);
			memset(line + len, 'a' + n % 26, 249 - len);
			line[249] = '\n';
			ASSERT_EQ(0, append(self->log, line, 250));
			/* Pieces of 100, 100 and 49 bytes, a newline each. */
			for (at = 0; at < 249; at += p) {
				p = 249 - at < 100 ? 249 - at : 100;
				memcpy(piece, line + at, p);
				piece[p] = '\n';
				want_add(self, piece, p + 1);
			}
		}
		usleep(1000 * (rand_r(&seed) % 30));
		kill9(self);
		if (k < 5)
			ASSERT_GT(start_ring(self, "start"), 0);
	}
	finish(_metadata, self);
}

/*
 * An oversize syslog frame (octet counting) goes in as pieces of
 * --max-msg; bringcat is killed with the first piece in the ring and the
 * frame's rest not yet written. The checkpoint holds where the parser
 * was, inside the frame: the restart goes on with the next piece. It
 * used to parse the frame's middle as a new frame: its bytes came out as
 * a line of their own, and the frames after it were taken into that
 * line.
 */
/* The file: sink frames what it writes as the source did: "LEN MSG". */
static void want_frame(FIXTURE_DATA(tail) *self, const char *msg, int len)
{
	char hdr[16];

	want_add(self, hdr, snprintf(hdr, sizeof(hdr), "%d ", len));
	want_add(self, msg, len);
}

TEST_F(tail, checkpoint_inside_an_oversize_frame_goes_on_with_its_pieces)
{
	static const char after[] = "11 frame 2 end";
	char frame[300];
	int len, hdr;

	self->extra = "--max-msg=100";
	self->extra2 = "--framing=syslog";
	ASSERT_EQ(0, spew(self->log, "", 0));
	ASSERT_GT(start_ring(self, "start"), 0);
	ASSERT_TRUE(following(self, 0));
	/* "249 " and a body of 249 bytes: pieces of 100, 100 and 49. */
	hdr = snprintf(frame, sizeof(frame), "249 ");
	memset(frame + hdr, 'x', 249);
	memcpy(frame + hdr, "frame 1", 7);
	len = hdr + 249;
	ASSERT_EQ(0, append(self->log, frame, hdr + 150));
	want_frame(self, frame + hdr, 100);
	ASSERT_TRUE(caught_up(self));
	kill9(self);
	/* Its rest, then a frame of its own. */
	ASSERT_EQ(0, append(self->log, frame + hdr + 150, len - hdr - 150));
	ASSERT_EQ(0, append(self->log, after, strlen(after)));
	want_frame(self, frame + hdr + 100, 100);
	want_frame(self, frame + hdr + 200, 49);
	want_frame(self, after + 3, (int)strlen(after) - 3);
	finish(_metadata, self);
}

/* bringcat's checkpoint writer for @uri (io/ckpt.c, writer_name()). */
static void ckpt_writer_name(const char *uri, char *buf, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *p;

	if (strlen(uri) + 4 < size) {
		snprintf(buf, size, "src:%s", uri);
		return;
	}
	for (p = uri; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	snprintf(buf, size, "src:%016llx", (unsigned long long)h);
}

/*
 * A checkpoint of bring 0.3: its mark is 40 bytes, without the parser's
 * state that 0.4 appends. It is understood, as a mark at a message's
 * end: the restart goes on from it, nothing is read twice.
 */
TEST_F(tail, checkpoint_of_bring_0_3_is_understood)
{
	struct {
		uint32_t magic, flags;
		uint64_t dev, ino, off;
		uint32_t head_len, head_hash;
	} old = { .magic = 0x31435242 /* "BRC1" */ };
	char ring[PATH_MAX + 16], name[BRING_NAME_MAX];
	struct bring_writer *w;
	struct bring *r;
	struct stat st;

	_Static_assert(sizeof(old) == 40, "bring 0.3's mark");
	ASSERT_EQ(0, put_lines(self, self->log, 100, 10));
	ASSERT_GT(start_ring(self, "start"), 0);
	ASSERT_TRUE(caught_up(self));
	kill9(self);

	/* What 0.3 would have pushed last: a message and its mark. */
	ASSERT_EQ(0, stat(self->log, &st));
	old.dev = st.st_dev;
	old.ino = st.st_ino;
	old.off = (uint64_t)st.st_size;
	snprintf(ring, sizeof(ring), "%s/ring", self->dir);
	r = bring_open(ring, 0, NULL);
	ASSERT_NE_NULL(r);
	ckpt_writer_name(self->uri, name, sizeof(name));
	w = bring_writer_open(r, name, NULL);
	ASSERT_NE_NULL(w);
	ASSERT_EQ(0, bring_writer_push(w, "pushed by 0.3", 13, &old,
				       sizeof(old), 0));
	want_add(self, "pushed by 0.3\n", 14);
	bring_writer_close(w);
	bring_free(r);

	ASSERT_EQ(0, put_lines(self, self->log, 50, 10));
	finish(_metadata, self);
	EXPECT_EQ(0, count_text(self, "checkpoint not understood"));
}

/*
 * --tail-from end applies only without a checkpoint: lines appended
 * while bringcat was down are shipped when it comes back.
 */
TEST_F(tail, checkpoint_wins_over_tail_from)
{
	ASSERT_TRUE(start_at_end(self)); /* a memory ring: no checkpoint */
	ASSERT_EQ(0, stop(self));
	self->want_len = 0;
	unlink(self->out);
	ASSERT_GT(start_ring(self, "end"), 0);
	ASSERT_TRUE(following(self, file_size(self->log)));
	ASSERT_EQ(0, put_lines(self, self->log, 100, 10));
	ASSERT_TRUE(caught_up(self));
	kill9(self);
	ASSERT_EQ(0, put_lines(self, self->log, 100, 10));
	ASSERT_GT(start_ring(self, "end"), 0);
	EXPECT_TRUE(caught_up(self));
	EXPECT_EQ(0, stop(self));
	expect_out(_metadata, self);
}

TEST_HARNESS_MAIN
