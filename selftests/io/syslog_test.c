// SPDX-License-Identifier: GPL-2.0
/*
 * syslog framing (-f syslog, BRING_IO_SYSLOG): RFC 6587 octet counting
 * ("LEN SP MSG") and non-transparent lines, decided per message.
 *
 * - The parser, through the source path itself (staging, conn_push())
 *   fed by the test: whole, byte by byte, at random cuts, every oversize
 *   policy, against a reference model written from the documented rules;
 *   each malformed frame on its own, with what follows it.
 * - bringcat in the three io modes: a stream of every frame kind cut at
 *   every byte position into tcp-listen: and unix-listen:, written back
 *   by a syslog sink; counters in --stats.
 * - Real peers: logger(1) --octet-count and plain; rsyslogd (omfwd
 *   TCP_Framing="octet-counted" into bringcat, bringcat's sink into
 *   imtcp, omfile with the bare message); syslog-ng's syslog()
 *   destination and source when an unpacked syslog-ng is found
 *   ($BRING_SYSLOG_NG, see scripts/unpack-syslog-ng.sh). SKIP when a
 *   peer is not installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bring.h"
#include "bring_io.h"
#include "kselftest_harness.h"
#include "io_test_util.h"
#include "syslog_model.h"

static bool sanitized(void)
{
	return getenv("BRING_SANITIZED") != NULL;
}

/*
 * Feed @in in reads of the sizes @cut() gives, check the messages and
 * counters against the model.
 */
static void parse_case(struct __test_metadata *_metadata, const char *in,
		       size_t n, size_t max, int policy,
		       size_t (*cut)(size_t i, size_t left), const char *what)
{
	struct bring_io_stats st;
	struct model w;
	struct feed f;
	size_t i, k, d;

	model_run(in, n, max, policy, &w);
	ASSERT_EQ(0, feed_open(&f, max, policy, 0));
	for (i = 0; i < n; i += k) {
		k = cut(i, n - i);
		ASSERT_EQ(0, feed_read(&f, in + i, k));
	}
	ASSERT_EQ(0, feed_end(&f));
	feed_stats(&f, &st);
	if (f.len != w.len || memcmp(f.got, w.out, f.len)) {
		for (d = 0; d < f.len && d < w.len && f.got[d] == w.out[d]; d++)
			;
		TH_LOG("%s, max %zu, policy %d: got %zu bytes, want %zu, first difference at %zu: \"%.40s\" want \"%.40s\"",
		       what, max, policy, f.len, w.len, d, f.got + d,
		       w.out + d);
	}
	EXPECT_EQ(w.len, f.len);
	EXPECT_EQ(0, memcmp(f.got, w.out, f.len < w.len ? f.len : w.len));
	EXPECT_EQ(w.msgs, f.msgs);
	EXPECT_EQ(w.msgs, st.msgs_in);
	EXPECT_EQ(w.split, st.split);
	EXPECT_EQ(w.truncated, st.truncated);
	EXPECT_EQ(w.dropped, st.dropped);
	EXPECT_EQ(w.bad, st.bad_frames);
	feed_close(&f);
	free(w.out);
}

static size_t cut_whole(size_t i, size_t left)
{
	return left;
}

static size_t cut_bytes(size_t i, size_t left)
{
	return 1;
}

static uint32_t rnd_state;

static uint32_t rnd(void)
{
	rnd_state = rnd_state * 1103515245 + 12345;
	return rnd_state >> 8;
}

static size_t cut_random(size_t i, size_t left)
{
	size_t k = rnd() % 4 ? 1 + rnd() % 13 : 1 + rnd() % 5000;

	return k < left ? k : left;
}

/* Every kind of frame; @max sets where the oversize ones are. */
static size_t mixed_stream(char *out, size_t max, unsigned int seed)
{
	static const char *const bad[] = {
		"12x not a count\n", "12\n", "0 ", "12\r\nCR after digits\n",
		"123456789012 eleven digits and more\n", "\n\n",
		"99999999999999999999999 far too long\n", "1 \n",
	};
	char msg[3 * 4096];
	size_t len = 0, k, j, i;

	rnd_state = seed;
	for (i = 0; i < 120; i++) {
		switch (rnd() % 8) {
		case 0: /* a line */
			len += sprintf(out + len, "<13>line %zu\n", i);
			break;
		case 1: /* a long line */
			k = max - 3 + rnd() % (2 * max + 8);
			len += sprintf(out + len, "<14>");
			/* Digits: a piece's rest must not pass for a count. */
			for (j = 0; j < k; j++)
				out[len++] = "0123456789 L"[rnd() % 12];
			out[len++] = '\n';
			break;
		case 2: /* a bad frame, then a line */
			len += sprintf(out + len, "%s<15>after bad %zu\n",
				       bad[rnd() % 8], i);
			break;
		default: /* octet counted: LFs, spaces, digits inside */
			k = rnd() % 5 ? rnd() % 200 : max - 2 + rnd() % (2 * max + 6);
			if (k > sizeof(msg))
				k = sizeof(msg);
			for (j = 0; j < k; j++)
				msg[j] = " \n0123456789abc<>"[rnd() % 17];
			if (k)
				msg[0] = '<';
			len += sprintf(out + len, "%zu ", k ? k : 1);
			if (!k)
				msg[0] = 'x', k = 1;
			memcpy(out + len, msg, k);
			len += k;
		}
	}
	return len;
}

/*
 * Whole, byte by byte and at random cuts, each policy, max below and
 * above the frames' sizes: the ring holds what the model says.
 */
TEST(parser_matches_model_at_any_cut)
{
	static const int policies[] = { BRING_IO_SPLIT, BRING_IO_TRUNCATE,
					BRING_IO_DROP };
	static const size_t maxes[] = { 64, 1000, 4096 };
	char *in = malloc(4 << 20);
	unsigned int p, m, seed, seeds = sanitized() ? 2 : 6;
	size_t n;

	for (m = 0; m < 3; m++)
		for (p = 0; p < 3; p++)
			for (seed = 1; seed <= seeds; seed++) {
				n = mixed_stream(in, maxes[m], seed * 7 + p);
				parse_case(_metadata, in, n, maxes[m],
					   policies[p], cut_whole, "whole");
				parse_case(_metadata, in, n, maxes[m],
					   policies[p], cut_random, "random");
				if (seed == 1)
					parse_case(_metadata, in, n, maxes[m],
						   policies[p], cut_bytes,
						   "bytes");
			}
	free(in);
}

/*
 * Each malformed frame alone, then a good one: what is dropped, what is
 * counted, and that the next frame arrives whole, in every cut of the
 * pair.
 */
TEST(malformed_frames_resynchronise)
{
	static const struct {
		const char *in, *want;
		int bad, dropped;
	} cases[] = {
		{ "12x junk\n5 after", "5 after", 1, 1 },
		{ "12\n5 after", "5 after", 1, 1 },
		{ "12\r\n5 after", "5 after", 1, 1 },
		{ "0 5 after", "5 after", 1, 1 },
		{ "00000000000 x\n5 after", "5 after", 1, 1 },
		{ "123456789012345678901234567890 x\n5 after", "5 after", 1, 1 },
		{ "99 short then the end", "", 0, 1 },
		{ "123", "", 0, 1 },
		{ "\n\n\n5 after", "5 after", 0, 0 },
		{ "1 \n5 after", "5 after", 0, 0 },
		{ "2 \n\n5 after", "1 \n5 after", 0, 0 },
		{ "8 a\nb\nc\nd\n5 after", "7 a\nb\nc\nd5 after", 0, 0 },
		{ "5 a\nb\n\n5 after", "4 a\nb\n5 after", 0, 0 },
		{ "<13>the end", "11 <13>the end", 0, 0 },
		{ "11 twelve byte5 after", "11 twelve byte5 after", 0, 0 },
		{ "17 over the maximum!5 after", "5 after", 0, 1 },
	};
	struct bring_io_stats st;
	struct feed f;
	size_t i, k, n, wn;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = strlen(cases[i].in);
		wn = strlen(cases[i].want);
		for (k = 0; k <= n; k++) {
			ASSERT_EQ(0, feed_open(&f, 16, BRING_IO_DROP, 0));
			ASSERT_EQ(0, feed_read(&f, cases[i].in, k));
			ASSERT_EQ(0, feed_read(&f, cases[i].in + k, n - k));
			ASSERT_EQ(0, feed_end(&f));
			feed_stats(&f, &st);
			if (f.len != wn || memcmp(f.got, cases[i].want, wn))
				TH_LOG("\"%s\" cut at %zu: got \"%.*s\"",
				       cases[i].in, k, (int)f.len, f.got);
			EXPECT_EQ(wn, f.len);
			EXPECT_EQ(0, memcmp(f.got, cases[i].want,
					    f.len < wn ? f.len : wn));
			EXPECT_EQ(cases[i].bad, st.bad_frames);
			EXPECT_EQ(cases[i].dropped, st.dropped);
			feed_close(&f);
		}
	}
}

/*
 * A syslog sink writes "LEN SP MSG" per message, and nothing for an
 * empty one (an application's bring_push(): RFC 6587 has no empty
 * frame, and "0 " is a bad frame to a syslog source).
 */
TEST(sink_writes_frames_and_no_empty_one)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | BRING_IO_NO_URING,
		      .framing = BRING_IO_SYSLOG);
	char dir[] = "/tmp/syslog_sink.XXXXXX", path[64], uri[72], *got;
	static const char *const msgs[] = { "<13>one", "", "two\nlines",
					    "", "x" };
	static const char want[] = "7 <13>one9 two\nlines1 x";
	struct bring *r = bring_new(1 << 20, &ro);
	struct bring_io *io;
	size_t len, i;

	ASSERT_NE_NULL(r);
	ASSERT_NE_NULL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/out", dir);
	snprintf(uri, sizeof(uri), "file:%s", path);
	io = bring_io_new(r, &o);
	ASSERT_NE_NULL(io);
	ASSERT_EQ(0, bring_io_add_sink(io, uri, "out"));
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, bring_push(r, msgs[i], strlen(msgs[i])));
	bring_io_stop(io); /* no source: the sink drains what is there */
	ASSERT_EQ(0, bring_io_run(io));
	got = slurp(path, &len);
	ASSERT_NE_NULL(got);
	EXPECT_EQ(sizeof(want) - 1, len);
	EXPECT_EQ(0, memcmp(got, want, sizeof(want) - 1));
	free(got);
	unlink(path);
	rmdir(dir);
	bring_io_free(io);
	bring_free(r);
}

/*
 * A message larger than what staging may hold (stage_max below LEN,
 * LEN within max_msg) is cut: the policy applies to what is held, and
 * the frame after it arrives whole.
 */
TEST(staging_cut_keeps_the_next_frame)
{
	static const int policies[] = { BRING_IO_SPLIT, BRING_IO_TRUNCATE,
					BRING_IO_DROP };
	size_t big = 100 << 10, n, i, p;
	char *in = malloc(big + 64), *body;
	struct bring_io_stats st;
	struct feed f;

	n = sprintf(in, "%zu ", big);
	body = in + n;
	for (i = 0; i < big; i++)
		body[i] = 'a' + i % 26;
	n += big;
	n += sprintf(in + n, "5 after");
	for (p = 0; p < 3; p++) {
		ASSERT_EQ(0, feed_open(&f, 256 << 10, policies[p], 16 << 10));
		for (i = 0; i < n; i += 4096)
			ASSERT_EQ(0, feed_read(&f, in + i,
					       n - i < 4096 ? n - i : 4096));
		ASSERT_EQ(0, feed_end(&f));
		feed_stats(&f, &st);
		ASSERT_GE(f.len, 7);
		EXPECT_EQ(0, memcmp(f.got + f.len - 7, "5 after", 7));
		if (policies[p] == BRING_IO_SPLIT) {
			/* The pieces give the message back. */
			size_t at = 0, got = 0, len;
			char *e;

			while (at < f.len - 7) {
				len = strtoul(f.got + at, &e, 10);
				EXPECT_EQ(0, memcmp(e + 1, body + got, len));
				got += len;
				at = e + 1 + len - f.got;
			}
			EXPECT_EQ(big, got);
			EXPECT_EQ(1, st.split);
		} else if (policies[p] == BRING_IO_TRUNCATE) {
			EXPECT_EQ(1, st.truncated);
			EXPECT_EQ(2, f.msgs);
			EXPECT_EQ(0, memcmp(strchr(f.got, ' ') + 1, body, 1000));
		} else {
			EXPECT_EQ(1, st.dropped);
			EXPECT_EQ(1, f.msgs);
		}
		feed_close(&f);
	}
	free(in);
}

/* ---- bringcat, three io modes ----------------------------------------- */

FIXTURE(sl)
{
	char dir[64];
	char out[PATH_MAX], err[PATH_MAX], sock[PATH_MAX];
	const char *mode;
};

IO_MODE_VARIANTS(sl);

FIXTURE_SETUP(sl)
{
	find_bringcat();
	if (access(bringcat, X_OK))
		SKIP(return, "%s not built", bringcat);
	if (io_mode_missing(variant->mode))
		SKIP(return, "%s", io_mode_missing(variant->mode));
	self->mode = io_mode_flag(variant->mode, "--stats");
	strcpy(self->dir, "/tmp/syslog_test.XXXXXX");
	ASSERT_NE_NULL(mkdtemp(self->dir));
	snprintf(self->out, PATH_MAX, "%s/out", self->dir);
	snprintf(self->err, PATH_MAX, "%s/err", self->dir);
	snprintf(self->sock, PATH_MAX, "%s/sock", self->dir);
}

FIXTURE_TEARDOWN(sl)
{
	char cmd[128];

	if (!strncmp(self->dir, "/tmp/syslog_test.", 17)) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
		if (system(cmd))
			TH_LOG("could not remove %s", self->dir);
	}
}

/* Until @path holds @size bytes (a tight poll: many short rounds). */
static bool wait_bytes(const char *path, off_t size, int ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		if (file_size(path) >= size)
			return true;
		usleep(200);
	}
	return false;
}

/* Every kind of frame, short: cut at each of its bytes. */
static size_t short_stream(char *out)
{
	size_t n = 0, i;

	n += sprintf(out + n, "<13>a line\n");
	n += sprintf(out + n, "27 <14>two\nlines\nin one frame");
	n += sprintf(out + n, "12x not a count\n\n");
	n += sprintf(out + n, "70 <15>");
	for (i = 0; i < 66; i++)
		out[n++] = '0' + i % 10;
	n += sprintf(out + n, "<16>a line longer than max: ");
	for (i = 0; i < 60; i++)
		out[n++] = i % 3 ? '0' + i % 10 : ' ';
	n += sprintf(out + n, "\n0 9 <17>ok LF\n<18>the end, no LF");
	return n;
}

/*
 * One connection per cut position: the stream's first part, a pause so
 * that it is read alone, the rest. bringcat writes each message back
 * with a syslog sink; the file holds the model's output once per cut,
 * and --stats counts what the model counts.
 */
static void cuts_case(struct __test_metadata *_metadata,
		      FIXTURE_DATA(sl) *self, bool unix_sock)
{
	char in[512], fout[PATH_MAX + 8], src[PATH_MAX + 16], *got;
	const char *args[] = { self->mode, "--stats", "-f", "syslog",
			       "--max-msg", "64", "-i", src, "-o", fout, NULL };
	unsigned int step = sanitized() ? 7 : unix_sock ? 3 : 1, cuts = 0;
	size_t n = short_stream(in), k, len;
	struct model w;
	int port = 0, fd, one = 1;
	pid_t pid;

	model_run(in, n, 64, BRING_IO_SPLIT, &w);
	snprintf(fout, sizeof(fout), "file:%s", self->out);
	if (unix_sock)
		snprintf(src, sizeof(src), "unix-listen:%s", self->sock);
	else
		strcpy(src, "tcp-listen:127.0.0.1:0");
	unlink(self->out);
	pid = spawn(NULL, self->err, args);
	if (!unix_sock) {
		port = wait_port(self->err);
		ASSERT_GT(port, 0);
	}
	for (k = 1; k < n; k += step, cuts++) {
		uint64_t end = now_ms() + 5000;

		do {
			fd = unix_sock ? unix_to(self->sock) :
					 loopback_to(SOCK_STREAM, port);
		} while (fd < 0 && now_ms() < end && !usleep(2000));
		ASSERT_GE(fd, 0);
		if (!unix_sock)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
		ASSERT_EQ(0, fd_write_all(fd, in, k));
		usleep(1000);
		ASSERT_EQ(0, fd_write_all(fd, in + k, n - k));
		close(fd);
		/* In order: the next connection once this one is written. */
		ASSERT_TRUE(wait_bytes(self->out, (cuts + 1) * w.len, 10000));
	}
	kill(pid, SIGTERM);
	ASSERT_EQ(0, wait_rc(pid, 10000));
	got = slurp(self->out, &len);
	ASSERT_NE_NULL(got);
	EXPECT_EQ(cuts * w.len, len);
	for (k = 0; k < cuts && (k + 1) * w.len <= len; k++)
		if (memcmp(got + k * w.len, w.out, w.len)) {
			TH_LOG("connection %zu: \"%.*s\"", k, (int)w.len,
			       got + k * w.len);
			EXPECT_TRUE(false);
			break;
		}
	EXPECT_EQ(cuts * w.msgs, final_stat(self->err, NULL, "in "));
	EXPECT_EQ(cuts * w.msgs, final_stat(self->err, NULL, "out "));
	EXPECT_EQ(cuts * w.split, final_stat(self->err, NULL, "split "));
	EXPECT_EQ(cuts * w.dropped, final_stat(self->err, NULL, "dropped "));
	EXPECT_EQ(cuts * w.bad, final_stat(self->err, NULL, "bad frames "));
	TH_LOG("%u connections, %lld messages, %lld bad frames each", cuts,
	       w.msgs, w.bad);
	free(got);
	free(w.out);
}

TEST_F(sl, tcp_frames_cut_at_every_byte)
{
	cuts_case(_metadata, self, false);
}

TEST_F(sl, unix_frames_cut_at_every_third_byte)
{
	cuts_case(_metadata, self, true);
}

/* ---- real peers -------------------------------------------------------- */

/* @argv[0] found on PATH (or given with a '/') and executable. */
static bool have_prog(const char *prog)
{
	char cmd[256];

	if (strchr(prog, '/'))
		return !access(prog, X_OK);
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return !system(cmd);
}

/* Start @argv with stdin from /dev/null, stdout and stderr to @log. */
static pid_t run_prog(const char *log, const char *const *argv)
{
	pid_t pid = fork();
	int fd;

	if (pid)
		return pid;
	fd = open("/dev/null", O_RDONLY);
	dup2(fd, 0);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	dup2(fd, 1);
	dup2(fd, 2);
	execvp(argv[0], (char *const *)argv);
	_exit(127);
}

/* Frames "LEN SP MSG" of @buf: the @i-th message (or NULL), its length. */
static const char *frame_at(const char *buf, size_t len, size_t *at,
			    size_t *mlen)
{
	char *e;

	if (*at >= len)
		return NULL;
	*mlen = strtoul(buf + *at, &e, 10);
	if (*e != ' ' || (size_t)(e + 1 - buf) + *mlen > len)
		return NULL;
	*at = e + 1 - buf + *mlen;
	return e + 1;
}

/* Until @path holds @want whole frames; false after @ms ms. */
static bool wait_frames(const char *path, size_t want, int ms)
{
	uint64_t end = now_ms() + ms;
	size_t len, at, mlen, i;
	char *got;

	do {
		got = slurp(path, &len);
		for (i = 0, at = 0; got && frame_at(got, len, &at, &mlen); i++)
			;
		free(got);
		if (i >= want)
			return true;
	} while (now_ms() < end && !usleep(2000));
	return false;
}

/*
 * logger(1) from util-linux, octet-counted (--octet-count) and plain
 * (non-transparent) on one listener: every line arrives as one message,
 * its syslog header on, no count, no LF.
 */
TEST_F(sl, logger_octet_counted_and_plain)
{
	static const char *const framings[] = { "--octet-count", NULL,
						"--octet-count" };
	char fout[PATH_MAX + 8], lines[PATH_MAX], port_s[16], log[PATH_MAX];
	const char *args[] = { self->mode, "--stats", "-f", "syslog", "-i",
			       "tcp-listen:127.0.0.1:0", "-o", fout, NULL };
	size_t n = 200, i, run, at = 0, mlen, len, want_len = 0;
	char text[64], *got;
	const char *m;
	FILE *f;
	pid_t pid;
	int port;

	if (!have_prog("logger"))
		SKIP(return, "logger (util-linux, bsdutils) not installed");
	snprintf(fout, sizeof(fout), "file:%s", self->out);
	snprintf(lines, sizeof(lines), "%s/lines", self->dir);
	snprintf(log, sizeof(log), "%s/logger.log", self->dir);
	f = fopen(lines, "w");
	ASSERT_NE_NULL(f);
	for (i = 0; i < n; i++)
		fprintf(f, "%zu %s line %zu\n", 100 + i,
			i % 2 ? "digits first, then" : "a", i);
	fclose(f);
	pid = spawn(NULL, self->err, args);
	port = wait_port(self->err);
	ASSERT_GT(port, 0);
	snprintf(port_s, sizeof(port_s), "%d", port);
	for (run = 0; run < 3; run++) {
		const char *largv[] = { "logger", "--tcp", "-n", "127.0.0.1",
					"-P", port_s, "-t", "syslogtest",
					"-f", lines, framings[run], NULL };

		ASSERT_EQ(0, wait_rc(run_prog(log, largv), 10000));
		/* Each run's messages in before the next run's. */
		EXPECT_TRUE(wait_frames(self->out, (run + 1) * n, 10000));
	}
	kill(pid, SIGTERM);
	ASSERT_EQ(0, wait_rc(pid, 10000));
	got = slurp(self->out, &len);
	ASSERT_NE_NULL(got);
	at = 0;
	for (i = 0; (m = frame_at(got, len, &at, &mlen)); i++) {
		snprintf(text, sizeof(text), " %zu %s line %zu", 100 + i % n,
			 i % n % 2 ? "digits first, then" : "a", i % n);
		want_len = strlen(text);
		if (mlen < want_len || m[0] != '<' ||
		    memcmp(m + mlen - want_len, text, want_len) ||
		    memchr(m, '\n', mlen)) {
			TH_LOG("message %zu: \"%.*s\", want \"<...>...%s\"", i,
			       (int)mlen, m, text);
			EXPECT_TRUE(false);
			break;
		}
	}
	EXPECT_EQ(3 * n, i);
	EXPECT_EQ(len, at); /* nothing after the last frame */
	EXPECT_EQ(0, final_stat(self->err, NULL, "bad frames "));
	free(got);
}

/* Messages for the peers: LFs inside, lengths from 1 to a few KiB. */
static char **peer_messages(size_t n, size_t *total)
{
	char **msg = calloc(n, sizeof(*msg));
	size_t i, j, k;

	rnd_state = 42;
	*total = 0;
	for (i = 0; i < n; i++) {
		k = i % 10 ? 20 + rnd() % 200 : 1000 + rnd() % 3000;
		msg[i] = malloc(k + 64);
		j = sprintf(msg[i], "<13>1 - bring app - - - msg %zu:", i);
		for (; j < k; j++)
			msg[i][j] = "abc xyz 0123\n<>[]"[rnd() % 17];
		msg[i][j - 1] = '.'; /* no trailing LF: peers drop one */
		msg[i][j] = '\0';
		*total += j;
	}
	return msg;
}

static void free_messages(char **msg, size_t n)
{
	while (n--)
		free(msg[n]);
	free(msg);
}

/* @path holds @msg[0..n) as "LEN SP MSG" frames, in order. */
static void expect_frames(struct __test_metadata *_metadata,
			  const char *path, char **msg, size_t n)
{
	size_t len, at = 0, mlen, i;
	char *got = slurp(path, &len);
	const char *m;

	ASSERT_NE_NULL(got);
	for (i = 0; i < n && (m = frame_at(got, len, &at, &mlen)); i++)
		if (mlen != strlen(msg[i]) || memcmp(m, msg[i], mlen)) {
			TH_LOG("%s: message %zu: \"%.*s\", want \"%s\"", path,
			       i, (int)mlen, m, msg[i]);
			break;
		}
	EXPECT_EQ(n, i);
	EXPECT_EQ(len, at);
	free(got);
}

/* @path holds @msg[0..n), each followed by LF. */
static void expect_lines(struct __test_metadata *_metadata, const char *path,
			 char **msg, size_t n)
{
	size_t len, at = 0, i, k;
	char *got = slurp(path, &len);

	ASSERT_NE_NULL(got);
	for (i = 0; i < n; i++) {
		k = strlen(msg[i]);
		if (at + k + 1 > len || memcmp(got + at, msg[i], k) ||
		    got[at + k] != '\n') {
			TH_LOG("%s: message %zu at %zu: \"%.*s\", want \"%s\"",
			       path, i, at, (int)(len - at < k ? len - at : k),
			       got + at, msg[i]);
			break;
		}
		at += k + 1;
	}
	EXPECT_EQ(n, i);
	EXPECT_EQ(len, at);
	free(got);
}

/* Until @path holds @size bytes or @pid ended; false after 20 s. */
static bool wait_file(const char *path, off_t size, pid_t pid)
{
	uint64_t end = now_ms() + 20000;

	while (now_ms() < end) {
		if (file_size(path) >= size)
			return true;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return false;
		usleep(5000);
	}
	return false;
}

/* Until a TCP connect to @port works; false after 10 s. */
static bool wait_listening(int port)
{
	uint64_t end = now_ms() + 10000;
	int fd;

	while (now_ms() < end) {
		fd = loopback_to(SOCK_STREAM, port);
		if (fd >= 0) {
			close(fd);
			return true;
		}
		usleep(5000);
	}
	return false;
}

static void stop_peer(pid_t pid)
{
	kill(pid, SIGTERM);
	if (wait_rc(pid, 5000) < 0)
		kill(pid, SIGKILL);
}

/*
 * rsyslog both ways: the test sends octet-counted frames (LFs inside)
 * into rsyslogd's imtcp; omfwd TCP_Framing="octet-counted" forwards the
 * bare message to a bringcat tcp-listen: source; bringcat writes them to
 * a file (LEN SP MSG) and with its syslog sink into a second imtcp,
 * which omfile writes with the template "%rawmsg%\n". Both hold every
 * message byte for byte.
 */
TEST_F(sl, rsyslog_both_ways)
{
	char conf[PATH_MAX], pidf[PATH_MAX], rout[PATH_MAX], log[PATH_MAX],
		fout[PATH_MAX + 8], back[64];
	const char *args[] = { self->mode, "--stats", "-f", "syslog", "-i",
			       "tcp-listen:127.0.0.1:0", "-o", fout, "-o",
			       back, NULL };
	size_t n = sanitized() ? 100 : 400, total, i;
	int in_fd, back_fd, in_port, back_port, port, fd;
	char **msg = peer_messages(n, &total), hdr[32];
	pid_t bc, rs;
	FILE *f;

	if (!have_prog("rsyslogd"))
		SKIP(return, "rsyslogd not installed (scripts/install-deps.sh)");
	snprintf(conf, sizeof(conf), "%s/rsyslog.conf", self->dir);
	snprintf(pidf, sizeof(pidf), "%s/rsyslog.pid", self->dir);
	snprintf(rout, sizeof(rout), "%s/rsyslog.out", self->dir);
	snprintf(log, sizeof(log), "%s/rsyslog.log", self->dir);
	snprintf(fout, sizeof(fout), "file:%s", self->out);
	in_port = reserve_port(&in_fd);
	back_port = reserve_port(&back_fd);
	ASSERT_GT(in_port, 0);
	ASSERT_GT(back_port, 0);
	snprintf(back, sizeof(back), "tcp:127.0.0.1:%d", back_port);
	bc = spawn(NULL, self->err, args);
	port = wait_port(self->err);
	ASSERT_GT(port, 0);
	f = fopen(conf, "w");
	ASSERT_NE_NULL(f);
	fprintf(f,
		"global(workDirectory=\"%s\" maxMessageSize=\"64k\"\n"
		"       parser.escapeControlCharactersOnReceive=\"off\")\n"
		"module(load=\"imtcp\")\n"
		"template(name=\"bare\" type=\"string\" string=\"%%rawmsg%%\")\n"
		"template(name=\"bareLF\" type=\"string\" string=\"%%rawmsg%%\\n\")\n"
		"input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"fwd\")\n"
		"input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"store\")\n"
		"ruleset(name=\"fwd\") {\n"
		"  action(type=\"omfwd\" target=\"127.0.0.1\" port=\"%d\"\n"
		"         protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"bare\")\n"
		"}\n"
		"ruleset(name=\"store\") {\n"
		"  action(type=\"omfile\" file=\"%s\" template=\"bareLF\")\n"
		"}\n",
		self->dir, in_port, back_port, port, rout);
	fclose(f);
	{
		const char *rargv[] = { "rsyslogd", "-n", "-f", conf, "-i",
					pidf, NULL };

		rs = run_prog(log, rargv);
	}
	ASSERT_TRUE(wait_listening(in_port));
	ASSERT_TRUE(wait_listening(back_port));
	close(in_fd);
	close(back_fd);
	fd = loopback_to(SOCK_STREAM, in_port);
	ASSERT_GE(fd, 0);
	for (i = 0; i < n; i++) {
		snprintf(hdr, sizeof(hdr), "%zu ", strlen(msg[i]));
		ASSERT_EQ(0, fd_write_all(fd, hdr, strlen(hdr)));
		ASSERT_EQ(0, fd_write_all(fd, msg[i], strlen(msg[i])));
	}
	close(fd);
	EXPECT_TRUE(wait_file(rout, total + n, rs));
	stop_peer(rs);
	kill(bc, SIGTERM);
	EXPECT_EQ(0, wait_rc(bc, 10000));
	expect_frames(_metadata, self->out, msg, n);
	expect_lines(_metadata, rout, msg, n);
	EXPECT_EQ(n, final_stat(self->err, NULL, "in "));
	EXPECT_EQ(0, final_stat(self->err, NULL, "bad frames "));
	free_messages(msg, n);
}

/* An unpacked syslog-ng (scripts/unpack-syslog-ng.sh): its root, or NULL. */
static const char *syslog_ng_root(void)
{
	const char *dir = getenv("BRING_SYSLOG_NG");
	static char path[PATH_MAX];

	if (!dir)
		dir = "build/syslog-ng";
	snprintf(path, sizeof(path), "%s/usr/sbin/syslog-ng", dir);
	return access(path, X_OK) ? NULL : dir;
}

/*
 * syslog-ng both ways: its syslog() destination (octet counting, each
 * MSG ending in an LF it counts in) into a bringcat tcp-listen: source,
 * lines read by its file source; and a bringcat syslog sink into its
 * syslog() source (flags(no-parse)), written by a file destination as
 * "${MSG}\n".
 */
TEST_F(sl, syslog_ng_both_ways)
{
	char conf[PATH_MAX], rout[PATH_MAX], log[PATH_MAX], lines[PATH_MAX],
		fout[PATH_MAX + 8], fin[PATH_MAX + 8], back[64], text[64],
		in[PATH_MAX], bin[PATH_MAX], mods[PATH_MAX], env[3 * PATH_MAX],
		persist[PATH_MAX], pidf[PATH_MAX], ctl[PATH_MAX], *got;
	const char *rx[] = { self->mode, "--stats", "-f", "syslog", "-i",
			     "tcp-listen:127.0.0.1:0", "-o", fout, NULL };
	const char *tx[] = { self->mode, "-f", "syslog", "-i", fin, "-o",
			     back, NULL };
	const char *root = syslog_ng_root(), *m;
	size_t n = sanitized() ? 50 : 200, total, i, len, at = 0, mlen, k;
	char **msg = peer_messages(n, &total), err2[PATH_MAX + 8];
	int back_fd, back_port, port;
	pid_t bc, bc2, ng;
	FILE *f;

	if (!root)
		SKIP(return, "no syslog-ng: scripts/unpack-syslog-ng.sh unpacks one into build/syslog-ng (or set BRING_SYSLOG_NG)");
	snprintf(conf, sizeof(conf), "%s/ng.conf", self->dir);
	snprintf(rout, sizeof(rout), "%s/ng.out", self->dir);
	snprintf(log, sizeof(log), "%s/ng.log", self->dir);
	snprintf(lines, sizeof(lines), "%s/lines", self->dir);
	snprintf(in, sizeof(in), "%s/in", self->dir);
	snprintf(persist, sizeof(persist), "%s/ng.persist", self->dir);
	snprintf(pidf, sizeof(pidf), "%s/ng.pid", self->dir);
	snprintf(ctl, sizeof(ctl), "%s/ng.ctl", self->dir);
	snprintf(err2, sizeof(err2), "%s/err2", self->dir);
	snprintf(fout, sizeof(fout), "file:%s", self->out);
	snprintf(fin, sizeof(fin), "file:%s", in);
	snprintf(bin, sizeof(bin), "%s/usr/sbin/syslog-ng", root);
	snprintf(mods, sizeof(mods), "--module-path=%s/usr/lib/syslog-ng/3.38",
		 root);
	snprintf(env, sizeof(env),
		 "LD_LIBRARY_PATH=%s/usr/lib:%s/usr/lib/syslog-ng:%s/usr/lib/x86_64-linux-gnu",
		 root, root, root);
	f = fopen(lines, "w");
	ASSERT_NE_NULL(f);
	for (i = 0; i < n; i++)
		fprintf(f, "%zu line %zu from a file\n", 7 * i, i);
	fclose(f);
	f = fopen(in, "w");
	ASSERT_NE_NULL(f);
	for (i = 0; i < n; i++)
		fprintf(f, "%zu %s", strlen(msg[i]), msg[i]);
	fclose(f);
	back_port = reserve_port(&back_fd);
	ASSERT_GT(back_port, 0);
	snprintf(back, sizeof(back), "tcp:127.0.0.1:%d", back_port);
	bc = spawn(NULL, self->err, rx);
	port = wait_port(self->err);
	ASSERT_GT(port, 0);
	f = fopen(conf, "w");
	ASSERT_NE_NULL(f);
	fprintf(f,
		"@version: 3.38\n"
		"source s_file { file(\"%s\" flags(no-parse) follow-freq(1)); };\n"
		"destination d_bc { syslog(\"127.0.0.1\" port(%d) transport(\"tcp\")); };\n"
		"log { source(s_file); destination(d_bc); };\n"
		"source s_back { syslog(ip(\"127.0.0.1\") port(%d) transport(\"tcp\") flags(no-parse)); };\n"
		"destination d_file { file(\"%s\" template(\"${MSG}\\n\")); };\n"
		"log { source(s_back); destination(d_file); };\n",
		lines, port, back_port, rout);
	fclose(f);
	{
		const char *nargv[] = { "env", env, bin, "-F", "--no-caps",
					"-f", conf, mods, "-R", persist, "-p",
					pidf, "-c", ctl, NULL };

		ng = run_prog(log, nargv);
	}
	ASSERT_TRUE(wait_listening(back_port));
	close(back_fd);
	bc2 = spawn(NULL, err2, tx);
	EXPECT_EQ(0, wait_rc(bc2, 20000));
	EXPECT_TRUE(wait_file(rout, total + n, ng));
	/* The file source's lines, through syslog(), all in. */
	EXPECT_TRUE(wait_frames(self->out, n, 20000));
	stop_peer(ng);
	kill(bc, SIGTERM);
	EXPECT_EQ(0, wait_rc(bc, 10000));
	expect_lines(_metadata, rout, msg, n);
	got = slurp(self->out, &len);
	ASSERT_NE_NULL(got);
	at = 0;
	for (i = 0; (m = frame_at(got, len, &at, &mlen)); i++) {
		snprintf(text, sizeof(text), "] %zu line %zu from a file",
			 7 * i, i);
		k = strlen(text);
		if (mlen < k || m[0] != '<' || memcmp(m + mlen - k, text, k) ||
		    memchr(m, '\n', mlen)) {
			TH_LOG("message %zu: \"%.*s\", want \"<...%s\"", i,
			       (int)mlen, m, text);
			EXPECT_TRUE(false);
			break;
		}
	}
	EXPECT_EQ(n, i);
	EXPECT_EQ(len, at);
	EXPECT_EQ(0, final_stat(self->err, NULL, "bad frames "));
	free(got);
	free_messages(msg, n);
}

TEST_HARNESS_MAIN
