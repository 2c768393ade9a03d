/* SPDX-License-Identifier: GPL-2.0 */
/*
 * syslog_model.h - the syslog framing's reference model and a source
 * connection fed by hand, shared by selftests/io/syslog_test.c and
 * fuzz/syslog_fuzz.c (static functions: include it once per program).
 *
 * The model applies the rules of Documentation/io.rst ("Syslog framing")
 * to a whole stream by byte positions, without staging; the feed runs
 * the real source path (conn_stage_slot(), conn_push()) on reads the
 * caller cuts, and reads the ring back. With the default stage_max the
 * two agree however the reads are cut.
 */
#ifndef SYSLOG_MODEL_H
#define SYSLOG_MODEL_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bring.h"
#include "bring_io.h"
#include "../../io/io.h"

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
		else if (len > 1 || p[0] != '\n') /* "1 \n" is no message */
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
	w->out = malloc(4 * n + 64); /* "1 \n" is "0 ": 3 bytes out of 3 */
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
	int pipe[2]; /* [0] is the conn's fd (conn_free() closes it) */
	char *got; /* messages read back, as "LEN SP MSG" */
	size_t len, cap;
	long long msgs;
	struct bring_io_stats base; /* at feed_conn() */
};

/*
 * A new connection on @f's ring (the old one closed): what it reads
 * back and counts starts from 0.
 */
static int feed_conn(struct feed *f)
{
	if (f->c) {
		conn_free(f->c);
		close(f->pipe[1]);
	}
	f->len = 0;
	f->msgs = 0;
	f->c = malloc(sizeof(*f->c));
	if (!f->c)
		return -1;
	f->src.io = f->io;
	f->src.ep.kind = EP_TCP_LISTEN;
	/* An empty pipe: FIONREAD says 0 waits, as on an idle socket. */
	if (pipe2(f->pipe, O_CLOEXEC) || conn_init(f->c, &f->src, f->pipe[0])) {
		free(f->c);
		f->c = NULL;
		return -1;
	}
	memset(&f->base, 0, sizeof(f->base));
	f->base.sz = sizeof(f->base);
	bring_io_get_stats(f->io, &f->base);
	return 0;
}

static int feed_open(struct feed *f, size_t max, int policy, size_t stage)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | BRING_IO_NO_URING,
		      .framing = BRING_IO_SYSLOG, .oversize = policy,
		      .max_msg = max, .stage_max = stage);
	size_t size = 64 << 10;

	/* Room for a few messages: a full ring is read and pushed again. */
	while (size < 16 * max)
		size *= 2;
	memset(f, 0, sizeof(*f));
	f->r = bring_new(size, &ro);
	if (!f->r)
		return -1;
	f->rd = bring_reader_open(f->r, "check");
	f->io = bring_io_new(f->r, &o);
	f->cap = 1 << 20;
	f->got = malloc(f->cap);
	if (!f->rd || !f->io || !f->got)
		return -1;
	return feed_conn(f);
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
		/* A full ring: what was pushed is read, then push again. */
		do {
			ret = conn_push(f->c, false, 0);
			feed_drain(f);
		} while (ret == -EAGAIN);
		if (ret)
			return ret;
	}
	return 0;
}

static int feed_end(struct feed *f)
{
	int ret;

	do {
		ret = conn_push(f->c, true, 0);
		feed_drain(f);
	} while (ret == -EAGAIN);
	return ret;
}

static __attribute__((unused)) void feed_close(struct feed *f)
{
	if (f->c) {
		conn_free(f->c);
		close(f->pipe[1]);
	}
	if (f->rd)
		bring_reader_close(f->rd);
	bring_io_free(f->io);
	bring_free(f->r);
	free(f->got);
}

/* The io's counters since feed_conn() (f->base then). */
static void feed_stats(struct feed *f, struct bring_io_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->sz = sizeof(*st);
	bring_io_get_stats(f->io, st);
	st->msgs_in -= f->base.msgs_in;
	st->split -= f->base.split;
	st->truncated -= f->base.truncated;
	st->dropped -= f->base.dropped;
	st->bad_frames -= f->base.bad_frames;
}

#endif
