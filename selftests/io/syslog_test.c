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
#include "../../io/io.h"

static bool sanitized(void)
{
	return getenv("BRING_SANITIZED") != NULL;
}

/* ---- the reference model ---------------------------------------------- */

/*
 * What a syslog source makes of a whole stream @in, as a syslog sink
 * writes it ("LEN SP MSG" per message), and its counters. Written from
 * the rules in Documentation/io.rst, byte positions only, no staging.
 */
struct model {
	char *out;
	size_t len;
	long long msgs, split, truncated, dropped, bad;
};

static void model_msg(struct model *w, const char *p, size_t n)
{
	w->len += sprintf(w->out + w->len, "%zu ", n);
	memcpy(w->out + w->len, p, n);
	w->len += n;
	w->msgs++;
}

static size_t after_lf(const char *in, size_t n, size_t i)
{
	const char *nl = memchr(in + i, '\n', n - i);

	return nl ? (size_t)(nl - in) + 1 : n;
}

/* A non-transparent message of @n bytes: the oversize rules of lines. */
static void model_line(struct model *w, const char *p, size_t n, size_t max,
		       int policy)
{
	size_t k;

	if (n <= max) {
		model_msg(w, p, n);
	} else if (policy == BRING_IO_SPLIT) {
		for (k = 0; k < n; k += max)
			model_msg(w, p + k, n - k < max ? n - k : max);
		w->split += (n + max - 1) / max - 1;
	} else if (policy == BRING_IO_TRUNCATE) {
		model_msg(w, p, max);
		w->truncated++;
	} else {
		w->dropped++;
	}
}

/* LEN SP and @avail of its bytes (the stream may end first). */
static void model_counted(struct model *w, const char *p, uint64_t len,
			  size_t avail, size_t max, int policy)
{
	size_t k;

	if (len <= max) {
		if (avail < len)
			w->dropped++; /* torn */
		else
			model_msg(w, p, len - (p[len - 1] == '\n'));
		return;
	}
	if (policy == BRING_IO_SPLIT) {
		w->split++;
		for (k = 0; k < len; k += max) {
			size_t piece = len - k < max ? len - k : max;

			if (avail < k + piece) {
				w->dropped++;
				break;
			}
			model_msg(w, p + k, piece);
		}
	} else if (policy == BRING_IO_TRUNCATE) {
		w->truncated++;
		if (avail < max)
			w->dropped++;
		else
			model_msg(w, p, max);
	} else {
		w->dropped++;
	}
}

static void model_run(const char *in, size_t n, size_t max, int policy,
		      struct model *w)
{
	size_t i = 0, k, end, avail;
	uint64_t len;

	memset(w, 0, sizeof(*w));
	w->out = malloc(2 * n + 64);
	while (i < n) {
		if (in[i] == '\n') {
			i++;
			continue;
		}
		if (in[i] < '0' || in[i] > '9') {
			end = after_lf(in, n, i);
			model_line(w, in + i, end - i - (in[end - 1] == '\n'),
				   max, policy);
			i = end;
			continue;
		}
		for (k = i, len = 0; k < n && k - i <= 10 && in[k] >= '0' &&
				     in[k] <= '9'; k++)
			len = len * 10 + (in[k] - '0');
		if (k - i > 10 || (k < n && in[k] != ' ' && in[k] != '\n')) {
			w->bad++, w->dropped++;
			i = after_lf(in, n, k);
			continue;
		}
		if (k == n) {
			w->dropped++;
			break;
		}
		if (in[k] == '\n' || !len) {
			w->bad++, w->dropped++;
			i = k + 1;
			continue;
		}
		avail = n - k - 1;
		model_counted(w, in + k + 1, len, avail, max, policy);
		if (avail < len)
			break;
		i = k + 1 + len;
	}
}

/* ---- the source path, fed by hand ------------------------------------- */

struct feed {
	struct bring *r;
	struct bring_io *io;
	struct bring_reader *rd;
	struct source src;
	struct conn *c;
	char *got; /* messages read back, as "LEN SP MSG" */
	size_t len, cap;
	long long msgs;
};

static int feed_open(struct feed *f, size_t max, int policy, size_t stage)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | BRING_IO_NO_URING,
		      .framing = BRING_IO_SYSLOG, .oversize = policy,
		      .max_msg = max, .stage_max = stage);

	memset(f, 0, sizeof(*f));
	f->r = bring_new(1 << 20, &ro);
	if (!f->r)
		return -1;
	f->rd = bring_reader_open(f->r, "check");
	f->io = bring_io_new(f->r, &o);
	f->c = malloc(sizeof(*f->c));
	if (!f->rd || !f->io || !f->c)
		return -1;
	f->src.io = f->io;
	f->src.ep.kind = EP_TCP_LISTEN;
	if (conn_init(f->c, &f->src, -1))
		return -1;
	f->cap = 1 << 20;
	f->got = malloc(f->cap);
	return f->got ? 0 : -1;
}

/* Read back what the ring holds. */
static void feed_drain(struct feed *f)
{
	struct bring_msg m;

	while (bring_reader_next(f->rd, &m, 0) == 0) {
		while (f->len + m.len + 32 > f->cap) {
			f->cap *= 2;
			f->got = realloc(f->got, f->cap);
		}
		f->len += sprintf(f->got + f->len, "%zu ", m.len);
		memcpy(f->got + f->len, m.data, m.len);
		f->len += m.len;
		f->msgs++;
		bring_reader_shift(f->rd);
	}
}

/* @n bytes as one read: staged and pushed as the source does. */
static int feed_read(struct feed *f, const char *p, size_t n)
{
	size_t room, k;
	char *at;
	int ret;

	while (n) {
		ret = conn_stage_slot(f->c, &at, &room);
		if (ret)
			return ret;
		k = n < room ? n : room;
		memcpy(at, p, k);
		f->c->len += k;
		p += k;
		n -= k;
		ret = conn_push(f->c, false, 0);
		feed_drain(f);
		if (ret)
			return ret;
	}
	return 0;
}

static int feed_end(struct feed *f)
{
	int ret = conn_push(f->c, true, 0);

	feed_drain(f);
	return ret;
}

static void feed_close(struct feed *f)
{
	if (f->c)
		conn_free(f->c);
	if (f->rd)
		bring_reader_close(f->rd);
	bring_io_free(f->io);
	bring_free(f->r);
	free(f->got);
}

static void feed_stats(struct feed *f, struct bring_io_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->sz = sizeof(*st);
	bring_io_get_stats(f->io, st);
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
		"99999999999999999999999 far too long\n",
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
				       bad[rnd() % 7], i);
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

TEST_HARNESS_MAIN
