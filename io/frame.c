// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * Framing: split what a source read into messages and push them; lay a
 * peeked batch out as iovecs for a sink. Shared by both io modes.
 *
 * raw reads straight into a reservation, and so do lines (see chunk.c:
 * the complete lines of one read become one chunk record). u32be, lines
 * with BRING_IO_LINE_RECORDS and what chunk.c hands over (a line longer
 * than max_msg) are read into a staging buffer per connection and copied
 * into the ring by bring_push_batch(), one record per message and one
 * claim per batch.
 *
 * syslog (RFC 6587 octet counting, RFC 5425) is staged too: see
 * parse_syslog().
 *
 * A udp-listen conn stages each datagram behind its length (IO_DGRAM_HDR
 * bytes, host order) whatever the framing: one datagram, one message,
 * and the oversize policy applies to datagrams longer than max_msg.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"

int conn_init(struct conn *c, struct source *src, int fd)
{
	struct bring_io *io = src->io;

	memset(c, 0, sizeof(*c));
	c->src = src;
	c->fd = fd;
	c->rd_op.type = OP_READ;
	c->rd_op.obj = c;
	c->ww_op.type = OP_SPACE;
	c->ww_op.obj = c;
	c->dgram = src->ep.kind == EP_UDP_LISTEN;
	c->last_ns = io_now_ns();
	if (!c->dgram)
		return 0; /* staging comes when needed: conn_stage_fit() */
	c->cap = io->max_msg + IO_READ_CHUNK;
	c->buf = malloc(c->cap);
	return c->buf ? 0 : -ENOMEM;
}

void conn_free(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (!c->dgram && c->cap)
		__atomic_fetch_sub(&c->src->io->staged, c->cap,
				   __ATOMIC_RELAXED);
	free(c->buf);
	free(c);
}

/*
 * Has @c, a connection a listening source accepted, sent nothing for
 * idle_ms? Then it is marked to be closed, its partial message dropped.
 */
bool conn_idle(struct conn *c, uint64_t now)
{
	struct bring_io *io = c->src->io;
	enum ep_kind kind = c->src->ep.kind;

	if (!io->o.idle_ms || (kind != EP_TCP_LISTEN && kind != EP_UNIX_LISTEN) ||
	    c->idle || c->finished ||
	    now - c->last_ns < io->o.idle_ms * 1000000ULL)
		return false;
	c->idle = true;
	io_stat_add(io, idle_closed, 1);
	return true;
}

/*
 * Staging, per connection: the partial message a stream holds between
 * reads (lines, u32be), and what is read for the staging parser. It
 * grows by doubling from IO_STAGE_MIN while a message grows, to
 * io->stage_max for one connection and io->stage_total for all of them
 * (each keeps IO_STAGE_MIN whatever the total). A message that needs
 * more is cut (conn_cut()): the oversize policy applies to what is held.
 * Datagram conns keep their fixed buffer (one per udp-listen source).
 */

/* Make @c's staging buffer @cap bytes, the held bytes moved to its start. */
static int stage_realloc(struct conn *c, size_t cap)
{
	struct bring_io *io = c->src->io;
	size_t held = c->len - c->off;
	char *buf;

	if (cap > c->cap) {
		size_t total = __atomic_add_fetch(&io->staged, cap - c->cap,
						  __ATOMIC_RELAXED);

		if (cap > IO_STAGE_MIN && total > io->stage_total) {
			__atomic_fetch_sub(&io->staged, cap - c->cap,
					   __ATOMIC_RELAXED);
			return -ENOBUFS;
		}
	}
	buf = malloc(cap);
	if (!buf) {
		if (cap > c->cap)
			__atomic_fetch_sub(&io->staged, cap - c->cap,
					   __ATOMIC_RELAXED);
		return -ENOMEM;
	}
	if (held)
		memcpy(buf, c->buf + c->off, held);
	io_stat_add(io, copied, held);
	if (cap < c->cap)
		__atomic_fetch_sub(&io->staged, c->cap - cap, __ATOMIC_RELAXED);
	free(c->buf);
	c->buf = buf;
	c->cap = cap;
	c->off = 0;
	c->len = held;
	return 0;
}

/*
 * Room in @c's staging for @need bytes from c->off (those held included):
 * moves the held bytes to the start when that makes room, else grows the
 * buffer. 0, -ENOBUFS when a cap says no (the buffer is as large as it
 * may be), or -ENOMEM.
 */
int conn_stage_fit(struct conn *c, size_t need)
{
	struct bring_io *io = c->src->io;
	size_t held = c->len - c->off, cap;
	int err;

	if (c->cap - c->off >= need)
		return 0;
	if (c->cap >= need) {
		/* Each byte moves once per growth of the buffer at most. */
		memmove(c->buf, c->buf + c->off, held);
		io_stat_add(io, copied, held);
		c->len = held;
		c->off = 0;
		return 0;
	}
	cap = c->cap ? c->cap : IO_STAGE_MIN;
	while (cap < need)
		cap *= 2;
	if (cap > io->stage_max)
		cap = io->stage_max;
	if (cap <= c->cap)
		return -ENOBUFS;
	err = stage_realloc(c, cap);
	if (err == -ENOBUFS && c->cap < IO_STAGE_MIN)
		err = stage_realloc(c, IO_STAGE_MIN);
	if (err)
		return err;
	return c->cap >= need ? 0 : -ENOBUFS;
}

/*
 * Staging no longer holds anything: give memory back when the
 * connections together hold more than half of the total cap.
 */
static void stage_trim(struct conn *c)
{
	struct bring_io *io = c->src->io;

	if (c->len != c->off || c->cap <= IO_STAGE_MIN || c->dgram)
		return;
	c->off = c->len = 0;
	c->clean = 0;
	if (__atomic_load_n(&io->staged, __ATOMIC_RELAXED) > io->stage_total / 2)
		stage_realloc(c, IO_STAGE_MIN);
}

/* Parser state after a message, to resume from when a push is partial. */
struct pstate {
	size_t pos;
	size_t clean; /* lines: bytes from pos known to hold no '\n' */
	bool discard;
	uint64_t skip;
	size_t rest; /* dgram, syslog: bytes of a message to push in pieces */
	bool in_line; /* syslog: pos is inside a line that was split */
	unsigned int split, trunc, drop, bad;
};

/*
 * One step of the parser from @p: 1 and @m filled for a message, 0 when
 * bytes were consumed without a message, -1 when more data is needed.
 */
static int parse_line(const struct conn *c, struct pstate *p, bool final,
		      struct bring_msg *m)
{
	const struct bring_io *io = c->src->io;
	size_t max = io->max_msg, rem = c->len - p->pos, from = 0, k;
	const char *s = c->buf + p->pos, *nl;

	if (!rem)
		return -1;
	/* Where the previous push stopped, no newline was found. */
	if (p->clean <= rem)
		from = p->clean;
	p->clean = 0;
	nl = memchr(s + from, '\n', rem - from);
	if (p->discard) {
		p->discard = !nl;
		p->pos = nl ? (size_t)(nl - c->buf) + 1 : c->len;
		return 0;
	}
	if (nl && (size_t)(nl - s) <= max) {
		m->data = s;
		m->len = nl - s;
		p->pos += m->len + 1;
		return 1;
	}
	if (!nl && rem <= max && (final || !c->cut)) {
		if (!final)
			return -1;
		m->data = s;
		m->len = rem;
		p->pos = c->len;
		return 1;
	}
	/* Longer than max, with or without its newline yet; or cut. */
	k = rem < max ? rem : max;
	switch (io->o.oversize) {
	case BRING_IO_SPLIT:
		m->data = s;
		m->len = k;
		p->pos += k;
		p->split++;
		return 1;
	case BRING_IO_TRUNCATE:
		m->data = s;
		m->len = k;
		p->trunc++;
		p->discard = !nl;
		p->pos = nl ? (size_t)(nl - c->buf) + 1 : c->len;
		return 1;
	default:
		p->drop++;
		p->discard = !nl;
		p->pos = nl ? (size_t)(nl - c->buf) + 1 : c->len;
		return 0;
	}
}

static int parse_u32be(const struct conn *c, struct pstate *p, bool final,
		       struct bring_msg *m)
{
	const struct bring_io *io = c->src->io;
	size_t rem = c->len - p->pos;
	uint32_t len;

	if (p->skip) {
		size_t k = p->skip < rem ? p->skip : rem;

		if (!k)
			return -1;
		p->skip -= k;
		p->pos += k;
		return 0;
	}
	if (rem < 4) {
		if (final && rem) { /* a torn header at the end */
			p->drop++;
			p->pos = c->len;
			return 0;
		}
		return -1;
	}
	memcpy(&len, c->buf + p->pos, 4);
	len = ntohl(len);
	if (len > io->max_msg) {
		p->drop++;
		p->skip = len;
		p->pos += 4;
		return 0;
	}
	if (rem - 4 < len) {
		if (final) { /* a torn message at the end */
			p->drop++;
			p->pos = c->len;
			return 0;
		}
		if (c->cut) { /* staging is full: skip the rest of it */
			p->drop++;
			p->skip = len - (rem - 4);
			p->pos = c->len;
			return 0;
		}
		return -1;
	}
	m->data = c->buf + p->pos + 4;
	m->len = len;
	p->pos += 4 + len;
	return 1;
}

/*
 * syslog over a stream (RFC 6587; RFC 5425 frames alike), decided per
 * message as rsyslog's imtcp does:
 *
 *   octet counting    "LEN SP MSG"    a frame that starts with a digit
 *   non-transparent   "MSG LF"        any other frame (parse_line())
 *
 * A message goes into the ring as itself: no count, no LF (an
 * octet-counted MSG that ends in one LF loses it, as rsyslog's
 * parser.dropTrailingLFOnReception does: syslog-ng counts it in). An
 * empty line between frames is skipped, and so is "1 \n" (no empty
 * message: a sink could not write it, RFC 6587 has no empty frame). Bad
 * frames, each counted in
 * dropped and in bad_frames, and what follows them:
 *
 *   "12x..", "12\r" digits not ended by SP: skipped through the next LF
 *   "12\n"          the frame is its digits and LF: skipped
 *   "0 "            skipped; the next frame follows the SP
 *   11+ digits      as "12x": a count that long is no count
 *
 * LEN > max_msg is an oversize message with a known end: the oversize
 * policy applies (split: pieces of max_msg; truncate: its first max_msg
 * bytes; drop: none) and the next frame starts right after it. A
 * message cut by a full staging buffer (stage_max < LEN) is oversize
 * too: the policy applies to what is held. At the stream's end a torn
 * frame is dropped (counted), an unterminated line is a message.
 */
#define SYSLOG_LEN_DIGITS 10 /* more digits than this is no count */

/* A bad frame whose end is not known: skip through the next LF. */
static int syslog_bad(struct pstate *p, size_t consumed, bool to_lf)
{
	p->bad++;
	p->drop++;
	p->pos += consumed;
	p->discard = to_lf;
	return 0;
}

/* LEN SP, LEN > max_msg or cut: the oversize policy, the body next. */
static int syslog_oversize(const struct conn *c, struct pstate *p,
			   uint64_t len)
{
	size_t max = c->src->io->max_msg;

	switch (c->src->io->o.oversize) {
	case BRING_IO_SPLIT:
		p->split++;
		p->rest = len;
		break;
	case BRING_IO_TRUNCATE:
		p->trunc++;
		p->rest = len < max ? len : max;
		p->skip = len - p->rest;
		break;
	default:
		p->drop++;
		p->skip = len;
	}
	return 0;
}

/* The next piece of a split or truncated message: p->rest bytes left. */
static int syslog_piece(const struct conn *c, struct pstate *p, bool final,
			struct bring_msg *m)
{
	size_t rem = c->len - p->pos, max = c->src->io->max_msg;
	size_t k = p->rest < max ? p->rest : max;

	if (rem < k) {
		if (final) { /* torn at the end */
			p->drop++;
			p->rest = p->skip = 0;
			p->pos = c->len;
			return 0;
		}
		if (!c->cut || !rem)
			return -1;
		k = rem; /* staging is full: what is held is a piece */
	}
	m->data = c->buf + p->pos;
	m->len = k;
	p->pos += k;
	p->rest -= k;
	if (c->src->io->o.oversize == BRING_IO_TRUNCATE) {
		p->skip += p->rest;
		p->rest = 0;
	}
	return 1;
}

static int parse_syslog(const struct conn *c, struct pstate *p, bool final,
			struct bring_msg *m)
{
	size_t rem = c->len - p->pos, clean = p->clean, i, hdr;
	const char *s = c->buf + p->pos;
	unsigned int split = p->split;
	uint64_t len = 0;
	int ret;

	/* Held bytes known to have no LF: a line's (parse_line()'s). */
	p->clean = 0;
	if (p->rest)
		return syslog_piece(c, p, final, m);
	if (p->skip)
		return parse_u32be(c, p, final, m);
	if (p->discard || p->in_line ||
	    (rem && (s[0] < '0' || s[0] > '9') && s[0] != '\n')) {
		p->clean = clean;
		ret = parse_line(c, p, final, m);
		/* A piece of a longer line: its rest is no new frame. */
		if (ret >= 0)
			p->in_line = p->split != split;
		return ret;
	}
	if (!rem)
		return -1;
	if (s[0] == '\n') { /* an empty line between frames */
		p->pos++;
		return 0;
	}
	for (i = 0; i < rem && i <= SYSLOG_LEN_DIGITS && s[i] >= '0' &&
		    s[i] <= '9'; i++)
		len = len * 10 + (s[i] - '0');
	if (i > SYSLOG_LEN_DIGITS)
		return syslog_bad(p, i, true);
	if (i == rem) {
		if (!final)
			return -1;
		p->drop++; /* a torn count at the end */
		p->pos = c->len;
		return 0;
	}
	if (s[i] != ' ')
		return s[i] == '\n' ? syslog_bad(p, i + 1, false) :
				      syslog_bad(p, i, true);
	if (!len)
		return syslog_bad(p, i + 1, false);
	hdr = i + 1;
	if (len > c->src->io->max_msg || (rem - hdr < len && c->cut)) {
		p->pos += hdr;
		return syslog_oversize(c, p, len);
	}
	if (rem - hdr < len) {
		if (!final)
			return -1;
		p->drop++; /* a torn message at the end */
		p->pos = c->len;
		return 0;
	}
	p->pos += hdr + len;
	/* "1 \n": nothing but the LF; no empty message (rsyslog neither). */
	if (len == 1 && s[hdr] == '\n')
		return 0;
	m->data = s + hdr;
	m->len = len - (s[hdr + len - 1] == '\n');
	return 1;
}

/* A staged datagram; the pieces of a split one follow one by one. */
static int parse_dgram(const struct conn *c, struct pstate *p,
		       struct bring_msg *m)
{
	const struct bring_io *io = c->src->io;
	size_t max = io->max_msg, k;
	uint32_t len;

	if (p->rest) {
		k = p->rest < max ? p->rest : max;
		m->data = c->buf + p->pos;
		m->len = k;
		p->pos += k;
		p->rest -= k;
		return 1;
	}
	if (c->len - p->pos < IO_DGRAM_HDR)
		return -1;
	memcpy(&len, c->buf + p->pos, IO_DGRAM_HDR);
	p->pos += IO_DGRAM_HDR;
	m->data = c->buf + p->pos;
	m->len = len;
	if (len <= max) {
		p->pos += len;
		return 1;
	}
	switch (io->o.oversize) {
	case BRING_IO_SPLIT:
		m->len = max;
		p->pos += max;
		p->rest = len - max;
		p->split++;
		return 1;
	case BRING_IO_TRUNCATE:
		m->len = max;
		p->pos += len;
		p->trunc++;
		return 1;
	default:
		p->pos += len;
		p->drop++;
		return 0;
	}
}

static int parse_one(const struct conn *c, struct pstate *p, bool final,
		     struct bring_msg *m)
{
	if (c->dgram)
		return parse_dgram(c, p, m);
	switch (c->src->io->o.framing) {
	case BRING_IO_LINES:
		return parse_line(c, p, final, m);
	case BRING_IO_SYSLOG:
		return parse_syslog(c, p, final, m);
	default:
		return parse_u32be(c, p, final, m);
	}
}

static void conn_apply(struct conn *c, const struct pstate *p)
{
	struct bring_io *io = c->src->io;

	c->off = p->pos;
	c->discard = p->discard;
	c->skip = p->skip;
	c->rest = p->rest;
	c->in_line = p->in_line;
	if (p->split)
		io_stat_add(io, split, p->split);
	if (p->trunc)
		io_stat_add(io, truncated, p->trunc);
	if (p->drop)
		io_stat_add(io, dropped, p->drop);
	if (p->bad)
		io_stat_add(io, bad_frames, p->bad);
}

static uint64_t msgs_bytes(const struct bring_msg *m, int n)
{
	uint64_t b = 0;

	while (n--)
		b += m[n].len;
	return b;
}

/* Checkpoints: each message with the mark of where it ends (ckpt.c). */
static int conn_ckpt_push(struct conn *c, const struct bring_msg *msgs,
			  const struct pstate *ps, int n, int timeout_ms)
{
	struct ckpt_at at[IO_PUSH_MSGS];
	int i;

	for (i = 0; i < n; i++)
		at[i] = (struct ckpt_at){ .end = ps[i].pos,
					  .skip = ps[i].skip,
					  .rest = ps[i].rest,
					  .discard = ps[i].discard,
					  .in_line = ps[i].in_line };
	return ckpt_push(c, msgs, at, n, timeout_ms);
}

/*
 * Push every complete message staged in @c (and with @final the last,
 * unterminated one). Returns 0 when all went in, -EAGAIN when the ring
 * is full (@c->need: the size of the message that waits), or -EPIPE.
 */
int conn_push(struct conn *c, bool final, int timeout_ms)
{
	struct bring_io *io = c->src->io;
	struct bring_msg msgs[IO_PUSH_MSGS];
	struct pstate ps[IO_PUSH_MSGS], p;
	size_t start;
	int n, k, ret = 0;

	if (!c->buf)
		return 0;
	start = c->off;
	/*
	 * Chunk conns: complete lines in staging make one chunk record (one
	 * mark with it when the source checkpoints).
	 */
	if (io->chunks && (c->src->ck || conn_resv_read(c))) {
		ret = conn_chunk_push(c, timeout_ms);
		if (ret < 0)
			goto out;
		ret = 0;
	}
	for (;;) {
		p = (struct pstate){ .pos = c->off, .discard = c->discard,
				     .skip = c->skip, .rest = c->rest,
				     .in_line = c->in_line,
				     .clean = c->off == start ? c->clean : 0 };
		for (n = 0; n < IO_PUSH_MSGS;) {
			k = parse_one(c, &p, final, &msgs[n]);
			if (k < 0)
				break;
			if (k > 0) {
				ps[n++] = p;
				p.split = p.trunc = p.drop = p.bad = 0;
			}
		}
		if (!n) {
			conn_apply(c, &p);
			break;
		}
		if (conn_read_ahead_full(c, msgs_bytes(msgs, n))) {
			ret = -EAGAIN;
			break;
		}
		k = c->src->ck ? conn_ckpt_push(c, msgs, ps, n, timeout_ms) :
				 bring_push_batch(io->r, msgs, n, timeout_ms);
		if (k < 0) {
			if (k == -EAGAIN || k == -ETIMEDOUT) {
				c->need = msgs[0].len;
				k = -EAGAIN;
			}
			ret = k;
			break;
		}
		conn_stat_add(c, msgs_in, k);
		io_stat_add(io, copied, msgs_bytes(msgs, k));
		for (int i = 0; i < k; i++)
			conn_apply(c, &ps[i]);
		if (k == n && n < IO_PUSH_MSGS)
			conn_apply(c, &p); /* consumed past the last message */
	}
out:
	if (c->off != start) {
		/* Held bytes from now on were read here, never moved. */
		c->moved = false;
		c->clean = 0;
	}
	if (c->off == c->len) {
		c->off = c->len = 0;
	} else if (c->dgram && c->off) {
		/* Room for the next datagram behind what the ring refused. */
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		io_stat_add(io, copied, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	/*
	 * Nothing held is a message yet (lines): the next push searches
	 * for a newline behind these bytes only. The held bytes stay where
	 * they are until the buffer needs the room (conn_stage_fit()).
	 */
	if (!ret && !c->dgram && (io->o.framing == BRING_IO_LINES ||
				  io->o.framing == BRING_IO_SYSLOG))
		c->clean = c->len - c->off;
	stage_trim(c);
	return ret;
}

/*
 * Staging cannot grow for @c: the partial message it holds is cut, and
 * the oversize policy applies to it as if it were longer than max_msg
 * (lines: split pushes it as a message, truncate pushes it and skips the
 * rest of the line, drop skips it all; u32be: dropped). 0, or
 * conn_push()'s -EAGAIN (the ring is full) or -EPIPE.
 */
static int conn_cut(struct conn *c)
{
	int ret;

	c->cut = true;
	ret = conn_push(c, false, 0);
	c->cut = false;
	return ret;
}

/*
 * Room a staging read asks for: what waits (FIONREAD; a regular file
 * says what is left of it), at least half of IO_STAGE_MIN, at most
 * IO_READ_CHUNK; or as much as is held, so that a long message doubles
 * the buffer as it grows.
 *
 * A chunk conn carrying a line (c->moved) reads only about as much as
 * it holds (IO_STAGE_MIN / 4 at least): the staging parser makes a
 * record per line, so the read that completes the carried line should
 * bring few lines after it; the next read goes to ring space again.
 */
static size_t stage_read_want(const struct conn *c, size_t held)
{
	size_t want = IO_READ_CHUNK, most;
	int avail;

	if (!ioctl(c->fd, FIONREAD, &avail))
		want = avail < (int)IO_STAGE_MIN / 2 ? IO_STAGE_MIN / 2 :
		       (size_t)avail > IO_READ_CHUNK ? IO_READ_CHUNK :
						       (size_t)avail;
	if (c->moved) {
		most = held > IO_STAGE_MIN / 4 ? held : IO_STAGE_MIN / 4;
		return want < most ? want : most;
	}
	return held > want ? held : want;
}

/*
 * Where a staging read goes and how many bytes it may read: 0, -EAGAIN
 * (a cut message waits for ring space: c->need), -EPIPE or -ENOMEM.
 */
int conn_stage_slot(struct conn *c, char **at, size_t *room)
{
	size_t held = c->len - c->off, want = stage_read_want(c, held);
	int ret = conn_stage_fit(c, held + want);

	/* No room to double: any room left will do, none is a cut. */
	if (ret == -ENOBUFS && c->cap - c->off > held)
		ret = conn_stage_fit(c, c->cap);
	if (ret == -ENOBUFS) {
		ret = conn_cut(c);
		if (!ret)
			ret = conn_stage_fit(c, c->len - c->off + 1);
	}
	if (ret)
		return ret == -ENOBUFS ? -ENOMEM : ret;
	*at = c->buf + c->len;
	*room = c->cap - c->len;
	return 0;
}

/*
 * @c ends with bytes staged that no push will take: a partial message
 * (stopped before its end), or complete ones the ring refused (closed,
 * failing, or full when a stop came). Each is counted as dropped.
 */
void conn_drop_staged(struct conn *c)
{
	struct pstate p = { .pos = c->off, .discard = c->discard,
			    .skip = c->skip, .rest = c->rest,
			    .in_line = c->in_line };
	struct bring_msg m;
	uint64_t n = 0;
	int k;

	if (!c->buf)
		return;
	while ((k = parse_one(c, &p, false, &m)) >= 0)
		n += k;
	if (p.pos < c->len)
		n++; /* the partial one */
	if (n)
		io_stat_add(c->src->io, dropped, n);
	c->off = c->len = 0;
	c->clean = 0;
	c->moved = false;
	c->discard = false;
	c->skip = 0;
	c->rest = 0;
	c->in_line = false;
}

/*
 * dgram: where the next datagram goes (behind room for its length) and
 * how many bytes fit there; NULL when the staging buffer must be pushed
 * first (less than IO_DGRAM_MAX left).
 */
void *conn_dgram_slot(struct conn *c, size_t *room)
{
	size_t left = c->cap - c->len;

	if (left < IO_DGRAM_HDR + IO_DGRAM_MAX)
		return NULL;
	*room = left - IO_DGRAM_HDR;
	return c->buf + c->len + IO_DGRAM_HDR;
}

/*
 * dgram: a datagram of @n bytes (its real length: received with
 * MSG_TRUNC) arrived in the slot. A datagram larger than the slot (only
 * possible for IPv6 jumbograms) keeps what fit and counts as truncated.
 */
void conn_dgram_add(struct conn *c, size_t n)
{
	size_t room = c->cap - c->len - IO_DGRAM_HDR;
	uint32_t len = n < room ? n : room;

	if (n > room)
		io_stat_add(c->src->io, truncated, 1);
	memcpy(c->buf + c->len, &len, IO_DGRAM_HDR);
	c->len += IO_DGRAM_HDR + len;
}

/*
 * dgram: receive every datagram waiting, without blocking, while the
 * staging buffer has room. Returns 0 once nothing more waits or there is
 * no room, or the -errno of a failed recv.
 */
int conn_recv_dgrams(struct conn *c)
{
	struct bring_io *io = c->src->io;
	size_t room;
	ssize_t n;
	void *slot;

	while ((slot = conn_dgram_slot(c, &room))) {
		n = recv(c->fd, slot, room, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		conn_dgram_add(c, n);
		io_stat_add(io, reads, 1);
		conn_stat_add(c, bytes_in, n);
	}
	return 0;
}

size_t conn_raw_chunk(const struct conn *c)
{
	size_t max = c->src->io->max_msg;

	return max < IO_READ_CHUNK ? max : IO_READ_CHUNK;
}

/*
 * How many bytes the next read into ring space asks for, at most @max.
 * A socket or a pipe says how many wait (FIONREAD), and the reservation
 * is that size: a read of one small message takes a record of its size,
 * where a reservation of @max would hold the rest as filler until every
 * reader passed it (255 messages of 100 bytes filled 64 MiB so). Large
 * reads stay as large, straight into ring space.
 *
 * IO_WANT_POLL: nothing waits and no poll said readable since the last
 * read. IO_WANT_EOF: a poll said readable, nothing waits, and a peek
 * finds the peer's end; no reservation is made for it (an end per
 * connection, when clients connect for a line or two, would cost a
 * record each). An error, or a pipe's end, is collected by a small read.
 */
ssize_t conn_read_want(struct conn *c, size_t max)
{
	int avail;
	char b;

	c->more = false;
	if (!c->pollfirst || ioctl(c->fd, FIONREAD, &avail) < 0)
		return max;
	if (avail <= 0) {
		if (!c->polled)
			return IO_WANT_POLL;
		if (c->sock && recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
			return IO_WANT_EOF;
		return max < IO_READ_PROBE ? max : IO_READ_PROBE;
	}
	if ((size_t)avail < max)
		return avail;
	c->more = true;
	return max;
}

/* raw: reserve what waits (a chunk at most) to read into. */
int conn_raw_reserve(struct conn *c, int timeout_ms)
{
	ssize_t want = conn_read_want(c, conn_raw_chunk(c));
	int ret;

	if (want <= 0)
		return want ? IO_RESV_EOF : IO_RESV_POLL;
	if (conn_read_ahead_full(c, want))
		return -EAGAIN;
	ret = bring_reserve(c->src->io->r, want, &c->resv, timeout_ms);
	c->carry = 0;
	if (!ret)
		c->resv_open = true;
	else if (ret == -EAGAIN || ret == -ETIMEDOUT)
		c->need = want, ret = -EAGAIN;
	return ret;
}

/* Does @c read into ring reservations (raw, lines in chunk records)? */
bool conn_resv_read(const struct conn *c)
{
	const struct bring_io *io = c->src->io;

	/*
	 * Datagrams keep their boundaries in staging (conn_recv_dgrams());
	 * tail: holds a partial line back at the end of its file, so its
	 * lines go through staging too.
	 */
	if (c->dgram)
		return false;
	return io->o.framing == BRING_IO_RAW ||
	       (io->chunks && c->src->ep.kind != EP_TAIL);
}

/*
 * Open the reservation the next read goes into, at c->resv.data +
 * c->carry for c->resv.len - c->carry bytes. Returns 0, 1 when this read
 * goes to staging instead, IO_RESV_POLL when nothing waits (poll first),
 * IO_RESV_EOF at the peer's end (nothing reserved), -EAGAIN (ring full:
 * c->need) or -EPIPE.
 */
int conn_resv_begin(struct conn *c, int timeout_ms)
{
	if (c->src->io->o.framing == BRING_IO_RAW)
		return conn_raw_reserve(c, timeout_ms);
	return conn_chunk_reserve(c, timeout_ms);
}

/* The read into the reservation returned @n: commit or give it back. */
void conn_resv_done(struct conn *c, ssize_t n)
{
	struct bring_io *io = c->src->io;

	if (n > 0 && io->chunks) {
		conn_chunk_done(c, n);
		return;
	}
	if (n > 0) {
		if (c->src->ck)
			ckpt_commit(c, &c->resv, n, 0);
		else
			bring_commit(io->r, &c->resv, n);
		conn_stat_add(c, msgs_in, 1);
	} else {
		bring_abort(io->r, &c->resv);
	}
	c->resv_open = false;
}

static const char nl = '\n';

/* dgram: room for @n datagrams in the batch; 0 or -ENOMEM. */
static int sink_dgram_room(struct sink *s, size_t n)
{
	struct mmsghdr *mm;
	struct iovec *iov;
	size_t cap = s->dg_cap;

	if (n <= cap)
		return 0;
	while (cap < n)
		cap *= 2;
	mm = realloc(s->mm, cap * sizeof(*mm));
	if (mm)
		s->mm = mm;
	iov = realloc(s->dg_iov, cap * sizeof(*iov));
	if (iov)
		s->dg_iov = iov;
	if (!mm || !iov)
		return -ENOMEM;
	s->dg_cap = cap;
	return 0;
}

static int sink_add_dgram(struct sink *s, const char *p, size_t len)
{
	int err = sink_dgram_room(s, (size_t)s->niov + 1);

	if (err)
		return err;
	s->dg_iov[s->niov].iov_base = (void *)p;
	s->dg_iov[s->niov++].iov_len = len;
	s->batch_bytes += len;
	return 0;
}

/*
 * dgram: one datagram per message, the payload only, whatever the
 * framing. With lines, a chunk record is several messages: one datagram
 * per line, without its newline.
 */
static int sink_build_dgrams(struct sink *s)
{
	bool lines = s->io->o.framing == BRING_IO_LINES;
	const char *p, *end, *nl;
	int i, err;

	s->batch_bytes = 0;
	s->niov = 0;
	for (i = 0; i < s->nmsg; i++) {
		p = s->batch[i].data;
		end = p + s->batch[i].len;
		while (lines && (nl = memchr(p, '\n', end - p))) {
			err = sink_add_dgram(s, p, nl - p);
			if (err)
				return err;
			p = nl + 1;
		}
		err = sink_add_dgram(s, p, end - p);
		if (err)
			return err;
	}
	/* The iovecs moved while growing: point the headers at them last. */
	for (i = 0; i < s->niov; i++)
		s->mm[i].msg_hdr = (struct msghdr){ .msg_iov = &s->dg_iov[i],
						    .msg_iovlen = 1 };
	s->iov_pos = 0;
	s->ndrop = 0;
	s->left = s->niov;
	return 0;
}

/* "LEN SP" of a syslog frame (RFC 6587 octet counting) into @out. */
static size_t syslog_put_len(char *out, size_t len)
{
	char tmp[IO_SYSLOG_HDR];
	size_t n = 0, i;

	do {
		tmp[n++] = '0' + len % 10;
		len /= 10;
	} while (len);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n++] = ' ';
	return n;
}

static int sink_build(struct sink *s)
{
	int framing = s->io->o.framing, i, v = 0;
	uint64_t lines;

	if (s->dgram)
		return sink_build_dgrams(s);
	s->batch_bytes = 0;
	s->batch_msgs = s->nmsg;
	for (i = 0; i < s->nmsg; i++) {
		const struct bring_msg *m = &s->batch[i];

		if (framing == BRING_IO_U32BE) {
			s->hdr[i] = htonl((uint32_t)m->len);
			s->iov[v].iov_base = &s->hdr[i];
			s->iov[v++].iov_len = 4;
		} else if (framing == BRING_IO_SYSLOG) {
			/* An empty message (an application's): no frame. */
			s->iov[v].iov_base = s->syslog_hdr[i];
			s->iov[v].iov_len = m->len ? syslog_put_len(
						 s->syslog_hdr[i], m->len) : 0;
			s->batch_bytes += s->iov[v++].iov_len;
		}
		s->iov[v].iov_base = (void *)m->data;
		s->iov[v++].iov_len = m->len;
		if (framing == BRING_IO_LINES) {
			/* A chunk record holds k lines and k - 1 newlines. */
			if (ledger_take(s->io, m->seq, &lines))
				s->batch_msgs += lines - 1;
			else
				s->batch_msgs += count_nl(m->data, m->len);
			s->iov[v].iov_base = (void *)&nl;
			s->iov[v++].iov_len = 1;
		}
		s->batch_bytes += m->len + (framing == BRING_IO_LINES ? 1 :
					    framing == BRING_IO_U32BE ? 4 : 0);
	}
	s->niov = v;
	s->iov_pos = 0;
	s->left = s->batch_bytes;
	return 0;
}

/* Peek the next batch and lay it out; returns the peek's result. */
int sink_fill(struct sink *s, int timeout_ms)
{
	int err, n = bring_reader_peek(s->rd, s->batch, IO_BATCH_MSGS,
				  IO_BATCH_BYTES, timeout_ms);

	if (n <= 0)
		return n;
	s->nmsg = n;
	err = sink_build(s);
	if (!err)
		sink_batch_begin(s);
	return err ? err : n;
}

/*
 * The batch must be sent again from its start (a new connection). Not
 * datagrams: each one went out whole or not at all, so a new socket
 * goes on with the first one not sent.
 */
void sink_rewind(struct sink *s)
{
	s->peer_fin = false;
	if (s->nmsg && !s->dgram)
		sink_build(s);
}

/* Log an error that repeats at 1, 2, 4, 8, ... occurrences. */
static void log_sometimes(struct sink *s, uint64_t nth, const char *what,
			  size_t len)
{
	if ((s->io->o.flags & BRING_IO_QUIET) || (nth & (nth - 1)))
		return;
	if (len)
		io_log("%s: message of %zu bytes: %s: dropped (%llu so far)\n",
		       s->ep.uri, len, what, (unsigned long long)nth);
	else
		io_log("%s: %s (%llu so far)\n", s->ep.uri, what,
		       (unsigned long long)nth);
}

/*
 * dgram: send what is left of the batch with sendmmsg(2), one datagram
 * per message. A message too large for a datagram (EMSGSIZE) is dropped
 * and counted; ECONNREFUSED (an ICMP port unreachable that an earlier
 * datagram caused; this one was not sent) is counted and the datagram
 * sent again. Returns 0 when all of it is out, -EAGAIN (@flags has
 * MSG_DONTWAIT) or another -errno: the socket is to be made again.
 */
int sink_send_dgrams(struct sink *s, int flags)
{
	struct bring_io *io = s->io;
	uint64_t nth;
	size_t len;
	int n;

	while (s->iov_pos < s->niov) {
		n = sendmmsg(s->fd, s->mm + s->iov_pos, s->niov - s->iov_pos,
			     flags | MSG_NOSIGNAL);
		if (n > 0) {
			io_stat_add(io, writes, 1);
			s->iov_pos += n;
			s->left -= n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EMSGSIZE) {
			len = s->dg_iov[s->iov_pos].iov_len;
			nth = io_stat_add(io, send_dropped, 1) + 1;
			log_sometimes(s, nth, strerror(EMSGSIZE), len);
			s->batch_bytes -= len;
			s->ndrop++;
			s->iov_pos++;
			s->left--;
			continue;
		}
		if (errno == ECONNREFUSED) {
			nth = io_stat_add(io, send_errors, 1) + 1;
			log_sometimes(s, nth, strerror(ECONNREFUSED), 0);
			continue;
		}
		return -errno;
	}
	return 0;
}

/*
 * tcp: and unix: sinks, before a new batch: has the peer closed or reset
 * the connection? A send would still succeed after a FIN (the peer's
 * kernel answers it with a reset) and the batch would be shifted and
 * lost. A FIN alone (POLLRDHUP) may also be a peer that half-closed its
 * side and reads on: a unix: peer that closed for good shows POLLHUP, a
 * tcp: one cannot be told apart before sending, so the sink goes on and
 * shifts the batch only once the peer acknowledged all of it
 * (sink_unacked()). Returns 0, or -EPIPE / the socket's error when the
 * peer is gone. (Not stdout: a socket there that the reader half-closed
 * still works, and it cannot be connected again.)
 */
int sink_peer_gone(struct sink *s)
{
	struct pollfd p = { .fd = s->fd, .events = POLLRDHUP };
	socklen_t len = sizeof(int);
	int err = 0;

	if ((s->ep.kind != EP_TCP && s->ep.kind != EP_UNIX) ||
	    poll(&p, 1, 0) <= 0 ||
	    !(p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
		return 0;
	if (!(p.revents & (POLLHUP | POLLERR))) {
		s->peer_fin = s->ep.kind == EP_TCP;
		return 0;
	}
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) || !err)
		err = EPIPE;
	return -err;
}

/*
 * A tcp: sink whose peer sent a FIN, the whole batch written: 0 when the
 * peer acknowledged every byte (it reads on: shift), 1 while some are
 * unacknowledged, -errno when it answered with a reset (it had closed
 * for good: send the batch again on a new connection), -ETIMEDOUT when
 * it acknowledged nothing for send_timeout_ms.
 */
int sink_unacked(struct sink *s)
{
	struct pollfd p = { .fd = s->fd };
	socklen_t len = sizeof(int);
	int err = 0, outq;
	uint64_t now;

	if (!s->peer_fin)
		return 0;
	if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR))) {
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) ||
		    !err)
			err = EPIPE;
		return -err;
	}
	if (ioctl(s->fd, SIOCOUTQ, &outq))
		return -errno;
	if (!outq) {
		s->unacked_since = 0;
		return 0;
	}
	now = io_now_ns();
	if (!s->unacked_since)
		s->unacked_since = now;
	if (s->io->o.send_timeout_ms >= 0 &&
	    now - s->unacked_since >= s->io->o.send_timeout_ms * 1000000ULL) {
		s->unacked_since = 0;
		return -ETIMEDOUT;
	}
	return 1;
}

/* @n bytes of the batch were written. */
void sink_advance(struct sink *s, size_t n)
{
	s->left -= n;
	while (n && s->iov_pos < s->niov) {
		struct iovec *v = &s->iov[s->iov_pos];

		if (n < v->iov_len) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
			return;
		}
		n -= v->iov_len;
		s->iov_pos++;
	}
	/* Zero-length iovecs at the end are written, too. */
	while (!s->left && s->iov_pos < s->niov && !s->iov[s->iov_pos].iov_len)
		s->iov_pos++;
}

/* The whole batch was written: let the ring reuse its space. */
int sink_batch_done(struct sink *s)
{
	int ret = s->exact ? ckpt_sink_shift(s) : bring_reader_shift(s->rd);

	if (s->fail_err && !(s->io->o.flags & BRING_IO_QUIET))
		io_log("%s: writing again\n", s->ep.uri);
	s->fail_err = 0;

	sink_stat_add(s, msgs_out,
		      s->dgram ? (uint64_t)(s->niov - s->ndrop) : s->batch_msgs);
	sink_stat_add(s, bytes_out, s->batch_bytes);
	s->nmsg = 0;
	s->ndrop = 0;
	return ret;
}
