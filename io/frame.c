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
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
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
	if (io->o.framing == BRING_IO_RAW)
		return 0;
	c->cap = io->max_msg + IO_READ_CHUNK;
	c->buf = malloc(c->cap);
	return c->buf ? 0 : -ENOMEM;
}

void conn_free(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
}

/* Parser state after a message, to resume from when a push is partial. */
struct pstate {
	size_t pos;
	bool discard;
	uint64_t skip;
	unsigned int split, trunc, drop;
};

/*
 * One step of the parser from @p: 1 and @m filled for a message, 0 when
 * bytes were consumed without a message, -1 when more data is needed.
 */
static int parse_line(const struct conn *c, struct pstate *p, bool final,
		      struct bring_msg *m)
{
	const struct bring_io *io = c->src->io;
	size_t max = io->max_msg, rem = c->len - p->pos;
	const char *s = c->buf + p->pos, *nl;

	if (!rem)
		return -1;
	nl = memchr(s, '\n', rem);
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
	if (!nl && rem <= max) {
		if (!final)
			return -1;
		m->data = s;
		m->len = rem;
		p->pos = c->len;
		return 1;
	}
	/* Longer than max, with or without its newline yet. */
	switch (io->o.oversize) {
	case BRING_IO_SPLIT:
		m->data = s;
		m->len = max;
		p->pos += max;
		p->split++;
		return 1;
	case BRING_IO_TRUNCATE:
		m->data = s;
		m->len = max;
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
		return -1;
	}
	m->data = c->buf + p->pos + 4;
	m->len = len;
	p->pos += 4 + len;
	return 1;
}

static void conn_apply(struct conn *c, const struct pstate *p)
{
	struct bring_io *io = c->src->io;

	c->off = p->pos;
	c->discard = p->discard;
	c->skip = p->skip;
	if (p->split)
		io_stat_add(io, split, p->split);
	if (p->trunc)
		io_stat_add(io, truncated, p->trunc);
	if (p->drop)
		io_stat_add(io, dropped, p->drop);
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
	int n, k, ret = 0;

	if (!c->buf)
		return 0;
	for (;;) {
		p = (struct pstate){ .pos = c->off, .discard = c->discard,
				     .skip = c->skip };
		for (n = 0; n < IO_PUSH_MSGS;) {
			k = io->o.framing == BRING_IO_LINES ?
				    parse_line(c, &p, final, &msgs[n]) :
				    parse_u32be(c, &p, final, &msgs[n]);
			if (k < 0)
				break;
			if (k > 0) {
				ps[n++] = p;
				p.split = p.trunc = p.drop = 0;
			}
		}
		if (!n) {
			conn_apply(c, &p);
			break;
		}
		k = bring_push_batch(io->r, msgs, n, timeout_ms);
		if (k < 0) {
			if (k == -EAGAIN || k == -ETIMEDOUT) {
				c->need = msgs[0].len;
				k = -EAGAIN;
			}
			ret = k;
			break;
		}
		io_stat_add(io, msgs_in, k);
		for (int i = 0; i < k; i++)
			conn_apply(c, &ps[i]);
		if (k == n && n < IO_PUSH_MSGS)
			conn_apply(c, &p); /* consumed past the last message */
	}
	if (c->off) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	return ret;
}

size_t conn_raw_chunk(const struct conn *c)
{
	size_t max = c->src->io->max_msg;

	return max < IO_READ_CHUNK ? max : IO_READ_CHUNK;
}

/* raw: reserve a chunk to read into. */
int conn_raw_reserve(struct conn *c, int timeout_ms)
{
	int ret = bring_reserve(c->src->io->r, conn_raw_chunk(c), &c->resv,
				timeout_ms);

	c->carry = 0;
	if (!ret)
		c->resv_open = true;
	else if (ret == -EAGAIN || ret == -ETIMEDOUT)
		c->need = conn_raw_chunk(c), ret = -EAGAIN;
	return ret;
}

/* Does @c read into ring reservations (raw, lines in chunk records)? */
bool conn_resv_read(const struct conn *c)
{
	const struct bring_io *io = c->src->io;

	return io->o.framing == BRING_IO_RAW || io->chunks;
}

/*
 * Open the reservation the next read goes into, at c->resv.data +
 * c->carry for c->resv.len - c->carry bytes. Returns 0, 1 when this read
 * goes to staging instead, -EAGAIN (ring full: c->need) or -EPIPE.
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
		bring_commit(io->r, &c->resv, n);
		io_stat_add(io, msgs_in, 1);
	} else {
		bring_abort(io->r, &c->resv);
	}
	c->resv_open = false;
}

static const char nl = '\n';

static void sink_build(struct sink *s)
{
	int framing = s->io->o.framing, i, v = 0;
	uint64_t lines;

	s->batch_bytes = 0;
	s->batch_msgs = s->nmsg;
	for (i = 0; i < s->nmsg; i++) {
		const struct bring_msg *m = &s->batch[i];

		if (framing == BRING_IO_U32BE) {
			s->hdr[i] = htonl((uint32_t)m->len);
			s->iov[v].iov_base = &s->hdr[i];
			s->iov[v++].iov_len = 4;
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
}

/* Peek the next batch and lay it out; returns the peek's result. */
int sink_fill(struct sink *s, int timeout_ms)
{
	int n = bring_reader_peek(s->rd, s->batch, IO_BATCH_MSGS,
				  IO_BATCH_BYTES, timeout_ms);

	if (n <= 0)
		return n;
	s->nmsg = n;
	sink_build(s);
	return n;
}

/* The batch must be sent again from its start (a new connection). */
void sink_rewind(struct sink *s)
{
	if (s->nmsg)
		sink_build(s);
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
	struct bring_io *io = s->io;
	int ret = bring_reader_shift(s->rd);

	io_stat_add(io, msgs_out, s->batch_msgs);
	io_stat_add(io, bytes_out, s->batch_bytes);
	s->nmsg = 0;
	return ret;
}
