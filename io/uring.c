// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * The io_uring event loop: one thread, one ring, every wait in one place.
 *
 * Sources read into staging (lines, u32be) or straight into a ring
 * reservation (raw) and push; when the ring is full they arm a
 * FUTEX_WAIT on bring_write_wait_prepare()'s word instead of their read.
 * Sinks peek a batch, send it with one writev/sendmsg (one in flight per
 * sink), resubmit short writes and shift only when all of it is out;
 * when the ring is empty they arm a FUTEX_WAIT on the reader's word.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hop.h"
#include "io.h"

#define OP_SOCKET 45 /* Linux 5.19 */
#define OP_FUTEX_WAIT 51 /* Linux 6.7 */
#define FUTEX2_SIZE_U32 0x02
#define FUTEX_MATCH_ANY 0xffffffffULL

struct loop {
	struct io_uring ring;
	struct bring_io *io;
	uint64_t wake_val;
	struct op wake_op;
	/* io->ringfd: one read of bring_notify_fd() for every ring wait */
	uint64_t ringfd_val;
	struct op ringfd_op;
	/* Stopping: space waits go on while the ring drains (on_stall()). */
	struct op stall_op;
	struct __kernel_timespec stall_ts;
	uint64_t stall_until; /* ns: no space freed by then, give up */
	bool gave_up; /* the ring stayed full: no more space waits */
	struct op idle_op; /* io->o.idle_ms: the sweep's timer */
	struct __kernel_timespec idle_ts;
	/* A sink waits in front of an unfinished record: bring_wait_timeout() */
	struct op repair_op;
	struct __kernel_timespec repair_ts;
	bool overflow_logged;
};

/*
 * 0 when io_uring works and has what the loop needs; *@futex_wait: it
 * has IORING_OP_FUTEX_WAIT (6.7). The loop needs multishot accept and
 * reads of non-blocking eventfds that wait rather than fail with EAGAIN:
 * Linux 5.19, which IORING_OP_SOCKET (45) stands for. Older kernels, and
 * those without the probe (before 5.6), use the readv/writev mode.
 */
int io_uring_probe_ok(bool *futex_wait)
{
	struct io_uring_probe *probe;
	struct io_uring ring;
	int err;

	err = io_uring_queue_init(4, &ring, 0);
	if (err)
		return err;
	probe = io_uring_get_probe_ring(&ring);
	err = probe && io_uring_opcode_supported(probe, OP_SOCKET) ?
		      0 : -EOPNOTSUPP;
	*futex_wait = !err && io_uring_opcode_supported(probe, OP_FUTEX_WAIT);
	io_uring_free_probe(probe);
	io_uring_queue_exit(&ring);
	return err;
}

static struct io_uring_sqe *get_sqe(struct loop *l, struct op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	if (!sqe) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	/* The SQ was just emptied: this cannot fail. */
	if (op)
		op->busy = true;
	io_uring_sqe_set_data(sqe, op);
	return sqe;
}

/*
 * Without FUTEX_WAIT: every wait a source or sink prepared is pending on
 * the ring's notify eventfd, which one read watches for all of them. The
 * wait is registered (prepare) before the read is armed, and the eventfd
 * keeps its count until read, so a wake in between is not lost.
 */
static void arm_ringfd(struct loop *l)
{
	struct io_uring_sqe *sqe;

	if (l->ringfd_op.busy)
		return;
	sqe = get_sqe(l, &l->ringfd_op);
	io_uring_prep_read(sqe, l->io->ringfd_fd, &l->ringfd_val,
			   sizeof(l->ringfd_val), 0);
}

static void prep_futex_wait(struct loop *l, struct op *op,
			    const struct bring_wait *w)
{
	struct io_uring_sqe *sqe;

	if (l->io->ringfd) {
		op->busy = true; /* completed by on_ringfd() */
		arm_ringfd(l);
		return;
	}
	sqe = get_sqe(l, NULL);

	io_uring_prep_rw(OP_FUTEX_WAIT, sqe, FUTEX2_SIZE_U32, w->uaddr, 0,
			 w->val);
	sqe->addr3 = FUTEX_MATCH_ANY;
	op->busy = true;
	io_uring_sqe_set_data(sqe, op);
}

static void cancel_op(struct loop *l, struct op *op)
{
	struct io_uring_sqe *sqe = get_sqe(l, NULL);

	io_uring_prep_cancel(sqe, op, 0);
}

/* For hop.c's endpoints, which run in this loop too. */
struct io_uring_sqe *uring_sqe(struct loop *l, struct op *op)
{
	return get_sqe(l, op);
}

void uring_cancel(struct loop *l, struct op *op)
{
	cancel_op(l, op);
}

static void arm_repair(struct loop *l, int ms);

/* A bring: sink's data wait, with the repair promise of every sink's. */
void uring_data_wait(struct loop *l, struct op *op, const struct bring_wait *w)
{
	prep_futex_wait(l, op, w);
	arm_repair(l, bring_wait_timeout(w));
}

/* Sink @s's data wait is over (woken, or cancelled): count it, finish it. */
static void data_wait_end(struct loop *l, struct sink *s)
{
	io_stat_add(l->io, empty_wait_ns, io_now_ns() - s->wait_t0);
	if (s->rd)
		bring_reader_wait_finish(s->rd, &s->rw);
}

/*
 * End sink @s's data wait early (hop.c: a frame to send, the connection
 * over). A FUTEX_WAIT is cancelled, and its completion runs on_data() as
 * a wake would; a wait on the ring's eventfd is a flag, and ends here:
 * the caller goes on at once (s->rw_op.busy tells which).
 */
void uring_data_wait_cancel(struct loop *l, struct sink *s)
{
	if (!s->rw_op.busy)
		return;
	if (l->io->ringfd) {
		s->rw_op.busy = false;
		data_wait_end(l, s);
		return;
	}
	cancel_op(l, &s->rw_op);
}

/* ---- sources ---------------------------------------------------------- */

static void source_check(struct bring_io *io, struct source *src)
{
	struct conn *c;

	/* bring-listen: says so itself (hop_rx_uring_stop()) */
	if (src->kafka || src->hop || src->finished || src->lfd >= 0 ||
	    (src->tail && src->tail->in_op.busy))
		return;
	for (c = src->conns; c; c = c->next)
		if (!c->finished)
			return;
	__atomic_store_n(&src->finished, true, __ATOMIC_RELAXED); /* stats */
}

static void conn_finish(struct loop *l, struct conn *c)
{
	struct source *src = c->src;
	struct conn **pp;

	if (c->resv_open) {
		bring_abort(l->io->r, &c->resv);
		c->resv_open = false;
	}
	conn_drop_staged(c);
	c->finished = true;
	if (!src->finite) { /* accepted: forget it */
		for (pp = &src->conns; *pp != c; pp = &(*pp)->next)
			;
		*pp = c->next;
		source_conn_gone(c);
		conn_free(c);
	} else if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	source_check(l->io, src);
}

/* Arm a wait for space; false when there is space already. */
static bool arm_space(struct loop *l, struct conn *c)
{
	int ret = conn_space_wait_prepare(c, &c->ww);

	if (ret)
		return false;
	io_stat_add(l->io, full_waits, 1);
	c->wait_t0 = io_now_ns();
	prep_futex_wait(l, &c->ww_op, &c->ww);
	return true;
}

/*
 * Read into a reservation (after a poll, for sockets and pipes): 0 when
 * armed (or finished), 1 when this read goes to staging, -EAGAIN when
 * the ring has space after all: try again.
 */
static int conn_read_resv(struct loop *l, struct conn *c)
{
	struct io_uring_sqe *sqe;
	size_t len;
	char *at;
	int ret;

	if (c->pollfirst && !c->readable) {
poll:
		c->rd_op.type = OP_POLL;
		sqe = get_sqe(l, &c->rd_op);
		io_uring_prep_poll_add(sqe, c->fd, POLLIN);
		return 0;
	}
	ret = conn_resv_begin(c, 0);
	if (ret == IO_RESV_POLL) {
		c->readable = false;
		goto poll;
	}
	if (ret == IO_RESV_EOF) {
		c->eof = true;
		return -EAGAIN; /* conn_step() finishes it */
	}
	if (ret == 1)
		return 1;
	if (ret == -EAGAIN)
		return arm_space(l, c) ? 0 : -EAGAIN;
	if (ret < 0) {
		io_ring_error(l->io, c, ret);
		conn_finish(l, c);
		return 0;
	}
	c->readable = c->polled = false;
	c->rd_op.type = OP_READ;
	sqe = get_sqe(l, &c->rd_op);
	at = (char *)c->resv.data + c->carry;
	len = c->resv.len - c->carry;
	if (c->sock) {
		io_uring_prep_recv(sqe, c->fd, at, len,
				   c->pollfirst ? MSG_DONTWAIT : 0);
	} else {
		io_uring_prep_read(sqe, c->fd, at, len, -1);
		if (c->pollfirst && !c->nowait_bad)
			sqe->rw_flags = RWF_NOWAIT;
	}
	return 0;
}

/*
 * udp-listen: one recv, one datagram, into the staging buffer; false
 * when there is no room (cannot happen: all that was staged was pushed).
 */
static bool conn_recv_dgram(struct loop *l, struct conn *c)
{
	struct io_uring_sqe *sqe;
	size_t room;
	void *slot = conn_dgram_slot(c, &room);

	if (!slot)
		return false;
	c->rd_op.type = OP_READ;
	sqe = get_sqe(l, &c->rd_op);
	io_uring_prep_recv(sqe, c->fd, slot, room, MSG_TRUNC);
	return true;
}

/* A tail source cannot go on: it ends like a file that failed to read. */
static void tail_failed(struct loop *l, struct conn *c, const char *what,
			int err)
{
	struct bring_io *io = l->io;
	struct tail *t = c->src->tail;

	io_log("%s: %s%s\n", c->src->ep.uri, what, strerror(-err));
	io_set_err(io, err);
	c->eof = true;
	if (t->in_op.busy)
		cancel_op(l, &t->in_op);
}

/*
 * What conn_step() does after a push: 0 to go on, 1 to step again (the
 * ring has space after all), -1 to return (waiting for space, or done).
 * Stopping, a source waits while the ring drains.
 */
static int conn_pushed(struct loop *l, struct conn *c, int ret)
{
	if (ret == -EAGAIN && !l->gave_up)
		return arm_space(l, c) ? -1 : 1;
	if (ret < 0) {
		io_ring_error(l->io, c, ret);
		conn_finish(l, c);
		return -1;
	}
	return 0;
}

static void conn_step(struct loop *l, struct conn *c)
{
	struct bring_io *io = l->io;
	struct io_uring_sqe *sqe;
	size_t room;
	bool final;
	char *at;
	int ret;

	for (;;) {
		if (c->finished || c->rd_op.busy || c->ww_op.busy)
			return;
		final = c->eof || io->stopping || c->idle;
		if (io->o.framing != BRING_IO_RAW || c->dgram) {
			/* Stopped before its end: a partial line is no line. */
			ret = conn_pushed(l, c,
					  conn_push(c, c->eof && !c->idle, 0));
			if (ret)
				goto next;
		}
		if (final) {
			conn_finish(l, c); /* drops a partial message */
			return;
		}
		if (c->dgram) {
			if (conn_recv_dgram(l, c))
				return;
			c->eof = true;
			continue;
		}
		if (c->tail_wait)
			return; /* for an inotify event */
		if (c->tail_eof) {
			ret = tail_check(c, 0);
			if (ret == -EAGAIN) {
				if (!arm_space(l, c))
					continue;
				return;
			}
			if (ret < 0) {
				tail_failed(l, c, "", ret);
				continue;
			}
			if (ret == TAIL_WAIT) {
				c->tail_wait = true;
				return;
			}
			c->tail_eof = false;
		}
		if (conn_resv_read(c)) {
			ret = conn_read_resv(l, c);
			if (ret == -EAGAIN)
				continue;
			if (!ret)
				return;
		}
		/* A message staging cannot hold is cut first: a push. */
		ret = conn_pushed(l, c, conn_stage_slot(c, &at, &room));
		if (ret)
			goto next;
		c->rd_op.type = OP_READ;
		sqe = get_sqe(l, &c->rd_op);
		if (c->sock)
			io_uring_prep_recv(sqe, c->fd, at, room, 0);
		else
			io_uring_prep_read(sqe, c->fd, at, room, -1);
		return;
next:
		if (ret < 0)
			return;
	}
}

static void on_read(struct loop *l, struct conn *c, int res)
{
	struct bring_io *io = l->io;

	if (res == -EOPNOTSUPP && c->resv_open && c->pollfirst && !c->sock &&
	    !c->nowait_bad) {
		/* Polled readable, one reader: a plain read will not wait. */
		c->nowait_bad = true;
		res = -EAGAIN;
	}
	if (c->dgram && res >= 0) { /* 0: an empty datagram */
		conn_dgram_add(c, res);
		io_stat_add(io, reads, 1);
		conn_stat_add(c, bytes_in, res);
		/* The ones that came meanwhile, in place: one push for all. */
		conn_recv_dgrams(c);
		conn_step(l, c);
		return;
	}
	if (c->resv_open) {
		/* More waited than was asked for: skip the poll. */
		if (res > 0 && (size_t)res == c->resv.len - c->carry)
			c->readable = c->more;
		conn_resv_done(c, res);
	} else if (res > 0) {
		c->len += res;
	}
	if (res > 0) {
		io_stat_add(io, reads, 1);
		conn_stat_add(c, bytes_in, res);
		if (io->o.idle_ms)
			c->last_ns = io_now_ns();
	} else if (res == 0) {
		if (c->src->tail)
			c->tail_eof = true; /* not the end: check, then wait */
		else
			c->eof = true;
	} else if (res == -ECANCELED) {
		/* bring_io_stop(): conn_step() finishes it */
	} else if (res != -EAGAIN && res != -EINTR && res != -ENOBUFS &&
		   res != -ENOMEM) {
		/* A peer resetting is the end of its stream; a file failing is not. */
		if (c->src->tail)
			tail_failed(l, c, "read: ", res);
		else if (c->src->finite || c->dgram)
			io_log("%s: read: %s\n", c->src->ep.uri, strerror(-res));
		if (c->src->finite)
			io_set_err(io, res);
		c->eof = true;
	}
	conn_step(l, c);
}

static void on_poll(struct loop *l, struct conn *c, int res)
{
	if (res < 0 && res != -EAGAIN && res != -EINTR)
		c->eof = true;
	else if (res > 0)
		c->readable = c->polled = true;
	conn_step(l, c);
}

/* io->o.idle_ms: look for idle connections twice per period. */
static void arm_idle(struct loop *l)
{
	unsigned int ms = l->io->o.idle_ms / 2 ? l->io->o.idle_ms / 2 : 1;
	struct io_uring_sqe *sqe = get_sqe(l, &l->idle_op);

	l->idle_ts.tv_sec = ms / 1000;
	l->idle_ts.tv_nsec = (ms % 1000) * 1000000LL;
	io_uring_prep_timeout(sqe, &l->idle_ts, 0, 0);
}

/*
 * Close the connections that sent nothing for idle_ms: the read or poll
 * each has armed is cancelled, and its completion finishes it. One that
 * waits for ring space is waiting for us, not idle.
 */
static void on_idle(struct loop *l)
{
	struct bring_io *io = l->io;
	uint64_t now = io_now_ns();
	struct conn *c;
	unsigned int i;

	if (io->stopping)
		return;
	for (i = 0; i < io->nr_srcs; i++) {
		for (c = io->srcs[i]->conns; c; c = c->next) {
			if (c->ww_op.busy) {
				c->last_ns = now;
				continue;
			}
			if (conn_idle(c, now) && c->rd_op.busy)
				cancel_op(l, &c->rd_op);
		}
	}
	arm_idle(l);
}

static void arm_accept(struct loop *l, struct source *src)
{
	struct io_uring_sqe *sqe = get_sqe(l, &src->acc_op);

	io_uring_prep_multishot_accept(sqe, src->lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* Accept again, or, stopping, close the listening socket. */
static void on_accept_wait(struct loop *l, struct source *src)
{
	if (!l->io->stopping) {
		arm_accept(l, src);
		return;
	}
	if (src->lfd >= 0)
		close(src->lfd);
	src->lfd = -1;
	source_check(l->io, src);
}

static void on_accept(struct loop *l, struct source *src,
		      struct io_uring_cqe *cqe)
{
	struct bring_io *io = l->io;
	unsigned int pause = 0;
	struct io_uring_sqe *sqe;
	struct conn *c;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		src->acc_op.busy = false;
	if (cqe->res >= 0) {
		c = source_accepted(src, cqe->res);
		if (c)
			conn_step(l, c);
	} else {
		pause = source_accept_failed(src, cqe->res);
	}
	if (src->acc_op.busy)
		return;
	if (!io->stopping && pause) {
		/* Out of fds: the multishot ended; accept again later. */
		src->acc_ts.tv_sec = 0;
		src->acc_ts.tv_nsec = pause * 1000000LL;
		sqe = get_sqe(l, &src->acc_wait_op);
		io_uring_prep_timeout(sqe, &src->acc_ts, 0, 0);
		return;
	}
	on_accept_wait(l, src);
}

/*
 * tail: one READ of the inotify fd is always armed while running. The fd
 * is O_NONBLOCK, which io_uring polls internally (a blocking one has no
 * read_iter and goes to an io-wq worker); where a kernel completes it
 * with -EAGAIN instead, a POLL_ADD comes first.
 */
static void arm_notify(struct loop *l, struct source *src, bool poll)
{
	struct tail *t = src->tail;
	struct io_uring_sqe *sqe = get_sqe(l, &t->in_op);

	t->in_poll = poll;
	if (poll)
		io_uring_prep_poll_add(sqe, t->ifd, POLLIN);
	else
		io_uring_prep_read(sqe, t->ifd, t->evbuf, sizeof(t->evbuf), 0);
}

static void on_notify(struct loop *l, struct source *src, int res)
{
	struct bring_io *io = l->io;
	struct conn *c = src->conns;

	if (src->tail->in_poll) {
		res = res > 0 ? -EINTR : res; /* readable: now read */
	} else if (res > 0 && tail_events(src, res) && c && c->tail_wait) {
		c->tail_wait = false;
		conn_step(l, c);
	} else if (res < 0 && res != -EAGAIN && res != -EINTR &&
		   res != -ECANCELED && c && !c->finished) {
		io_log("%s: inotify: %s\n", src->ep.uri, strerror(-res));
		io_set_err(io, res);
		bring_io_stop(io);
	}
	/* A conn that failed (tail_failed()) is gone or done: no re-arm. */
	if (!io->stopping && res != -ECANCELED && c && !c->finished)
		arm_notify(l, src, res == -EAGAIN && !src->tail->in_poll);
	else
		source_check(io, src);
}

/* ---- sinks ------------------------------------------------------------ */

static void sink_close_fd(struct sink *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static void sink_down(struct loop *l, struct sink *s, int err);
static void sink_failed(struct loop *l, struct sink *s, int err);

/* The sink's timer op, as @type, in @ms. */
static void sink_timer(struct loop *l, struct sink *s, enum op_type type,
		       unsigned int ms)
{
	struct io_uring_sqe *sqe;

	s->ts.tv_sec = ms / 1000;
	s->ts.tv_nsec = (ms % 1000) * 1000000L;
	s->tm_op.type = type;
	sqe = get_sqe(l, &s->tm_op);
	io_uring_prep_timeout(sqe, &s->ts, 0, 0);
}

/*
 * A stream sink's send, with a timeout linked to it (send_timeout_ms):
 * a peer that takes no byte for that long cancels it (-ECANCELED).
 */
static void sink_send(struct loop *l, struct sink *s)
{
	int ms = l->io->o.send_timeout_ms;
	struct io_uring_sqe *sqe;

	/* The send and its timeout in one submission. */
	if (io_uring_sq_space_left(&l->ring) < 2)
		io_uring_submit(&l->ring);
	sqe = get_sqe(l, &s->wr_op);
	s->mh.msg_iov = s->iov + s->iov_pos;
	s->mh.msg_iovlen = s->niov - s->iov_pos;
	io_uring_prep_sendmsg(sqe, s->fd, &s->mh, MSG_NOSIGNAL);
	if (ms < 0)
		return;
	sqe->flags |= IOSQE_IO_LINK;
	s->send_ts.tv_sec = ms / 1000;
	s->send_ts.tv_nsec = (ms % 1000) * 1000000LL;
	sqe = get_sqe(l, NULL);
	io_uring_prep_link_timeout(sqe, &s->send_ts, 0);
}

/*
 * A file ring's reader in front of an unfinished record must look again
 * within @ms (bring_wait_timeout(); -1: no limit) so that the library
 * can repair a dead writer's record while the ring is quiet: one timer
 * for the loop, which ends those waits (on_repair()).
 */
static void arm_repair(struct loop *l, int ms)
{
	struct io_uring_sqe *sqe;

	if (ms < 0 || l->repair_op.busy)
		return;
	l->repair_ts.tv_sec = ms / 1000;
	l->repair_ts.tv_nsec = (long long)(ms % 1000) * 1000000LL;
	sqe = get_sqe(l, &l->repair_op);
	io_uring_prep_timeout(sqe, &l->repair_ts, 0, 0);
}

/*
 * A kafka: sink (kafka.c): librdkafka's eventfd is always being read;
 * with nothing in flight, the ring's word is waited on too.
 */
static void kafka_step(struct loop *l, struct sink *s)
{
	struct io_uring_sqe *sqe;
	int n;

	for (;;) {
		if (s->done || s->rw_op.busy)
			return; /* reports wait until the ring's wait ends */
		n = kafka_sink_pump(s);
		if (n < 0 || n == KAFKA_DONE)
			return;
		if (!s->kf_op.busy) {
			sqe = get_sqe(l, &s->kf_op);
			io_uring_prep_read(sqe, kafka_sink_fd(s), &s->kf_val,
					   sizeof(s->kf_val), 0);
		}
		if (n != KAFKA_WANT_DATA)
			return;
		if (bring_reader_wait_prepare(s->rd, &s->rw) == 1)
			continue;
		io_stat_add(l->io, empty_waits, 1);
		s->wait_t0 = io_now_ns();
		prep_futex_wait(l, &s->rw_op, &s->rw);
		arm_repair(l, bring_wait_timeout(&s->rw));
		return;
	}
}

static void sink_step(struct loop *l, struct sink *s)
{
	struct bring_io *io = l->io;
	struct io_uring_sqe *sqe;
	int n;

	if (s->hop) {
		hop_tx_uring_step(s);
		return;
	}
	if (s->kafka) {
		kafka_step(l, s);
		return;
	}
	for (;;) {
		if (s->done || s->down || s->wr_op.busy || s->rw_op.busy ||
		    s->tm_op.busy)
			return;
		if (!s->nmsg) {
			n = sink_fill(s, 0);
			if (n == -EAGAIN) {
				n = bring_reader_wait_prepare(s->rd, &s->rw);
				if (n == 1)
					continue;
				io_stat_add(io, empty_waits, 1);
				s->wait_t0 = io_now_ns();
				prep_futex_wait(l, &s->rw_op, &s->rw);
				arm_repair(l, bring_wait_timeout(&s->rw));
				return;
			}
			if (n == -EPIPE) {
				s->done = true;
				sink_set_state(s, BRING_IO_DONE, 0);
				sink_close_fd(s);
				return;
			}
			if (n < 0) {
				io_fatal(io, s, n);
				return;
			}
			n = sink_peer_gone(s);
			if (n) {
				sink_down(l, s, n);
				return;
			}
		}
		if (!s->left) {
			n = sink_unacked(s);
			if (n < 0) {
				sink_down(l, s, n);
				return;
			}
			if (n) {
				sink_timer(l, s, OP_ACKWAIT, IO_ACKWAIT_MS);
				return;
			}
			sink_batch_done(s);
			continue;
		}
		if (s->dgram) {
			/* Never blocks; the socket's queue full: POLLOUT. */
			n = sink_send_dgrams(s, MSG_DONTWAIT);
			if (!n)
				continue;
			if (n != -EAGAIN) {
				sink_down(l, s, n);
				return;
			}
			sqe = get_sqe(l, &s->wr_op);
			io_uring_prep_poll_add(sqe, s->fd, POLLOUT);
			return;
		}
		if (s->regular) {
			/*
			 * Buffered writes to a regular file go to io-wq
			 * workers and are slower than writev(2) in place.
			 */
			ssize_t w = writev(s->fd, s->iov + s->iov_pos,
					   s->niov - s->iov_pos);

			if (w < 0 && errno != EINTR && errno != EAGAIN) {
				sink_failed(l, s, -errno);
				return;
			}
			if (w >= 0) {
				io_stat_add(io, writes, 1);
				sink_advance(s, w);
				if (s->left)
					io_stat_add(io, short_writes, 1);
				else
					sink_batch_done(s);
			}
			continue;
		}
		if (s->sock) {
			sink_send(l, s);
		} else {
			sqe = get_sqe(l, &s->wr_op);
			io_uring_prep_writev(sqe, s->fd, s->iov + s->iov_pos,
					     s->niov - s->iov_pos, -1);
		}
		return;
	}
}

static void sink_backoff(struct loop *l, struct sink *s)
{
	if (l->io->stopping) {
		sink_give_up(s, -ENOTCONN);
		return;
	}
	sink_timer(l, s, OP_TIMER, sink_next_backoff(s));
}

/* A write failed: a file: sink retries (sink_write_failed()). */
static void sink_failed(struct loop *l, struct sink *s, int err)
{
	unsigned int ms = sink_write_failed(s, err);

	if (ms)
		sink_timer(l, s, OP_RETRY, ms);
	else
		io_fatal(l->io, s, err);
}

static void on_retry(struct loop *l, struct sink *s)
{
	int err = sink_retry(s);

	if (err == -ECANCELED)
		return;
	if (err)
		sink_failed(l, s, err);
	else
		sink_step(l, s);
}

static void sink_down(struct loop *l, struct sink *s, int err)
{
	if (err == -ETIMEDOUT) /* ours, or TCP_USER_TIMEOUT */
		sink_stat_add(s, send_timeouts, 1);
	if (!s->down && !(l->io->o.flags & BRING_IO_QUIET))
		io_log("%s: %s; reconnecting\n", s->ep.uri,
		       strerror(-err));
	if (!s->down)
		s->said_ns = io_now_ns();
	sink_set_state(s, BRING_IO_RECONNECTING, err);
	s->down = true;
	sink_close_fd(s);
	sink_backoff(l, s);
}

static void on_write(struct loop *l, struct sink *s, int res)
{
	struct bring_io *io = l->io;

	if (res >= 0) {
		io_stat_add(io, writes, 1);
		sink_advance(s, res);
		if (s->left)
			io_stat_add(io, short_writes, 1);
		/* sink_step() shifts it, once acknowledged after a FIN */
	} else if (res == -EAGAIN || res == -EINTR || res == -ENOBUFS) {
		/* resubmitted below */
	} else if (s->sock && res == -ECANCELED) {
		/* Only its linked timeout cancels a send. */
		sink_down(l, s, -ETIMEDOUT);
		return;
	} else if (s->sock) {
		sink_down(l, s, res);
		return;
	} else {
		sink_failed(l, s, res);
		return;
	}
	sink_step(l, s);
}

static void on_timer(struct loop *l, struct sink *s)
{
	struct io_uring_sqe *sqe;
	int fd;

	fd = l->io->stopping ? -1 :
	     socket(s->ep.addr.ss_family, s->ep.socktype | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		sink_connect_failed(s, -errno);
		sink_backoff(l, s);
		return;
	}
	s->fd = fd;
	sink_sock_opts(s);
	s->tm_op.type = OP_CONNECT;
	sqe = get_sqe(l, &s->tm_op);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&s->ep.addr,
			      s->ep.addrlen);
}

static void on_connect(struct loop *l, struct sink *s, int res)
{
	if (!res && ep_refuse_self_connect(s->fd))
		res = -ECONNREFUSED;
	if (res < 0) {
		sink_connect_failed(s, res);
		sink_close_fd(s);
		sink_backoff(l, s);
		return;
	}
	sink_connected(s);
	sink_rewind(s); /* at least once: the whole unshifted batch again */
	sink_step(l, s);
}

/* ---- the loop --------------------------------------------------------- */

static void arm_wake(struct loop *l)
{
	struct io_uring_sqe *sqe = get_sqe(l, &l->wake_op);

	io_uring_prep_read(sqe, l->io->wake_fd, &l->wake_val,
			   sizeof(l->wake_val), 0);
}

/* Look again in @ms at whether the stopping sources may wait on. */
static void arm_stall(struct loop *l, uint64_t ms)
{
	struct io_uring_sqe *sqe;

	l->stall_ts.tv_sec = (long long)(ms / 1000);
	l->stall_ts.tv_nsec = (long long)(ms % 1000) * 1000000LL;
	l->stall_op.type = OP_STALL;
	sqe = get_sqe(l, &l->stall_op);
	io_uring_prep_timeout(sqe, &l->stall_ts, 0, 0);
}

/* A source's space wait ended (whatever its result): look again. */
static void on_space(struct loop *l, struct conn *c)
{
	uint64_t now = io_now_ns();

	io_stat_add(l->io, full_wait_ns, now - c->wait_t0);
	bring_write_wait_finish(l->io->r, &c->ww);
	/* Stopping: space was freed, so the ring is still being drained. */
	if (l->io->stopping)
		l->stall_until = now + IO_STOP_STALL_MS * 1000000ULL;
	conn_step(l, c);
}

/*
 * Give up a source's wait for ring space: its FUTEX_WAIT is cancelled; a
 * wait on the ring's eventfd has no SQE and ends here. Either way
 * on_space() looks again and, l->gave_up, does not wait more.
 */
static void cancel_space(struct loop *l, struct conn *c)
{
	if (l->io->ringfd) {
		c->ww_op.busy = false;
		on_space(l, c);
		return;
	}
	cancel_op(l, &c->ww_op);
}

static void begin_stop(struct loop *l)
{
	struct bring_io *io = l->io;
	struct conn *c, *next;
	unsigned int i;

	io->stopping = true;
	for (i = 0; i < io->nr_srcs; i++) {
		struct source *src = io->srcs[i];

		if (src->lfd >= 0) {
			if (src->acc_op.busy) {
				cancel_op(l, &src->acc_op);
			} else if (src->acc_wait_op.busy) {
				cancel_op(l, &src->acc_wait_op);
			} else {
				close(src->lfd);
				src->lfd = -1;
			}
		}
		if (src->tail && src->tail->in_op.busy)
			cancel_op(l, &src->tail->in_op);
		if (src->kafka)
			kafka_source_kick(src);
		if (src->hop)
			hop_rx_uring_stop(src);
		for (c = src->conns; c; c = next) {
			next = c->next;
			if (c->rd_op.busy)
				cancel_op(l, &c->rd_op);
			else if (!c->ww_op.busy) /* else: it waits on */
				conn_step(l, c);
		}
		source_check(io, src);
	}
	/*
	 * Sinks waiting to write again or to connect again give up
	 * (sink_retry(), sink_backoff()).
	 */
	for (i = 0; i < io->nr_sinks; i++) {
		struct op *op = &io->sinks[i]->tm_op;

		if (op->busy && op->type != OP_ACKWAIT)
			cancel_op(l, op);
	}
	l->stall_until = io_now_ns() + IO_STOP_STALL_MS * 1000000ULL;
	arm_stall(l, IO_STOP_STALL_MS);
}

/*
 * Stopping, sources that wait for ring space push what they have read as
 * long as readers free space (on_space() moves stall_until). Once the
 * ring has stayed full for IO_STOP_STALL_MS (a reader that reads no
 * more), they give up: their waits are cancelled and what they hold is
 * dropped, counted.
 */
static void on_stall(struct loop *l)
{
	struct bring_io *io = l->io;
	uint64_t now = io_now_ns();
	struct conn *c, *next;
	unsigned int i;

	if (now < l->stall_until) {
		arm_stall(l, (l->stall_until - now) / 1000000 + 1);
		return;
	}
	l->gave_up = true;
	for (i = 0; i < io->nr_srcs; i++) {
		for (c = io->srcs[i]->conns; c; c = next) {
			next = c->next;
			if (c->ww_op.busy)
				cancel_space(l, c);
		}
		source_check(io, io->srcs[i]);
	}
}

/* A sink's data wait ended (whatever its result): look again. */
static void on_data(struct loop *l, struct sink *s)
{
	data_wait_end(l, s);
	sink_step(l, s);
}

/*
 * The ring's notify eventfd was written (or its read failed): every
 * wait pending on it ends, as if its FUTEX_WAIT had completed; those
 * that must wait on prepare again and arm the read anew.
 */
static void on_ringfd(struct loop *l)
{
	struct bring_io *io = l->io;
	struct conn *c, *next;
	unsigned int i;

	for (i = 0; i < io->nr_srcs; i++) {
		if (io->srcs[i]->hop)
			hop_rx_uring_ringfd(io->srcs[i]);
		for (c = io->srcs[i]->conns; c; c = next) {
			next = c->next; /* on_space() may free c */
			if (!c->ww_op.busy)
				continue;
			c->ww_op.busy = false;
			on_space(l, c);
		}
	}
	for (i = 0; i < io_nr_sinks(io); i++) {
		struct sink *s = io_sink(io, i);

		if (!s->rw_op.busy)
			continue;
		s->rw_op.busy = false;
		on_data(l, s);
	}
}

/* The repair timer: end the data waits that have a time limit. */
static void on_repair(struct loop *l)
{
	struct bring_io *io = l->io;
	unsigned int i;

	if (io->ringfd) {
		on_ringfd(l); /* every wait ends; those that must, re-arm */
		return;
	}
	for (i = 0; i < io_nr_sinks(io); i++) {
		struct sink *s = io_sink(io, i); /* bring: sinks too */

		if (s->rw_op.busy && bring_wait_timeout(&s->rw) >= 0)
			cancel_op(l, &s->rw_op); /* on_data() follows */
	}
}

static void dispatch(struct loop *l, struct io_uring_cqe *cqe)
{
	struct op *op = io_uring_cqe_get_data(cqe);
	int res = cqe->res;

	if (!op)
		return;
	if (op->type != OP_ACCEPT && op->type != OP_HOP_LISTEN)
		op->busy = false; /* multishot: busy while IORING_CQE_F_MORE */
	switch (op->type) {
	case OP_READ:
		on_read(l, op->obj, res);
		break;
	case OP_POLL:
		on_poll(l, op->obj, res);
		break;
	case OP_SPACE:
		on_space(l, op->obj);
		break;
	case OP_ACCEPT:
		on_accept(l, op->obj, cqe);
		break;
	case OP_WRITE:
		on_write(l, op->obj, res);
		break;
	case OP_WPOLL: /* a send tells what the poll found */
	case OP_KAFKA:
		sink_step(l, op->obj);
		break;
	case OP_KSRC: /* a kafka: source's thread ended */
		break;
	case OP_DATA:
		on_data(l, op->obj);
		break;
	case OP_RINGFD:
		on_ringfd(l);
		break;
	case OP_STALL:
		on_stall(l);
		break;
	case OP_IDLE:
		on_idle(l);
		break;
	case OP_ACCEPT_WAIT:
		on_accept_wait(l, op->obj);
		break;
	case OP_REPAIR:
		on_repair(l);
		break;
	case OP_TIMER:
		on_timer(l, op->obj);
		break;
	case OP_ACKWAIT:
		sink_step(l, op->obj);
		break;
	case OP_RETRY:
		on_retry(l, op->obj);
		break;
	case OP_CONNECT:
		on_connect(l, op->obj, res);
		break;
	case OP_WAKE:
		if (!l->io->stopping)
			arm_wake(l);
		break;
	case OP_NOTIFY:
		on_notify(l, op->obj, res);
		break;
	case OP_HOP_TX:
		hop_tx_uring_event(op, res);
		break;
	case OP_HOP_LISTEN:
		hop_rx_uring_listen_event(op, res, cqe->flags);
		break;
	case OP_HOP_RX:
		hop_rx_uring_event(op, res, cqe->flags);
		break;
	default:
		break;
	}
}

static bool sources_done(struct bring_io *io)
{
	unsigned int i;

	if (!io->nr_srcs)
		return io->stopping;
	for (i = 0; i < io->nr_srcs; i++)
		/* acquire: a kafka: source's thread sets it */
		if (!__atomic_load_n(&io->srcs[i]->finished, __ATOMIC_ACQUIRE))
			return false;
	return true;
}

static bool sinks_done(struct bring_io *io)
{
	unsigned int i;

	for (i = 0; i < io->nr_sinks; i++)
		if (!io->sinks[i]->done)
			return false;
	for (i = 0; i < io->nr_hop_sinks; i++)
		if (!io->hop_sinks[i]->done)
			return false;
	return true;
}

/*
 * kafka: sources run in threads of their own (kafka.c), which block every
 * signal; the loop reads the eventfd each writes when it ends, to look at
 * sources_done() again. Returns how many started, or -errno.
 */
static int kafka_sources_start(struct loop *l)
{
	struct bring_io *io = l->io;
	struct io_uring_sqe *sqe;
	sigset_t all, old;
	unsigned int i;
	int err = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < io->nr_srcs && !err; i++) {
		struct source *src = io->srcs[i];

		if (!src->kafka)
			continue;
		err = pthread_create(&src->thread, NULL, kafka_source_thread,
				     src);
		if (err) {
			io_log("%s: cannot start a thread: %s\n", src->ep.uri,
			       strerror(err));
			err = -err;
			break;
		}
		src->ks_thread = true;
		src->ks_op = (struct op){ .type = OP_KSRC, .obj = src };
		sqe = get_sqe(l, &src->ks_op);
		io_uring_prep_read(sqe, kafka_source_fd(src), &src->ks_val,
				   sizeof(src->ks_val), 0);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* Those not started count as ended. */
	for (; i < io->nr_srcs; i++)
		if (io->srcs[i]->kafka)
			__atomic_store_n(&io->srcs[i]->finished, true,
					 __ATOMIC_RELEASE);
	return err;
}

static void kafka_sources_join(struct bring_io *io)
{
	unsigned int i;

	for (i = 0; i < io->nr_srcs; i++) {
		struct source *src = io->srcs[i];

		if (!src->ks_thread)
			continue;
		/* Still running: the loop itself failed. */
		if (!__atomic_load_n(&src->finished, __ATOMIC_ACQUIRE)) {
			bring_io_stop(io);
			kafka_source_kick(src);
		}
		pthread_join(src->thread, NULL);
	}
}

int io_run_uring(struct bring_io *io)
{
	struct io_uring_params p = { .flags = IORING_SETUP_CQSIZE,
				     .cq_entries = io->o.entries * 8 };
	struct io_uring_cqe *cqe;
	struct loop l = { .io = io };
	unsigned int i, head, seen;
	struct conn *c;
	int ret;

	l.wake_op = (struct op){ .type = OP_WAKE };
	l.ringfd_op = (struct op){ .type = OP_RINGFD };
	l.idle_op = (struct op){ .type = OP_IDLE };
	l.repair_op = (struct op){ .type = OP_REPAIR };
	ret = io_uring_queue_init_params(io->o.entries, &l.ring, &p);
	if (ret) {
		if (!(io->o.flags & BRING_IO_QUIET))
			io_log("io_uring_setup: %s: using readv/writev\n",
			       strerror(-ret));
		io->uring = false;
		io->st.uring = 0;
		ret = hop_start_threads(io);
		return ret ? ret : io_run_fallback(io);
	}
	arm_wake(&l);
	for (i = 0; i < io->nr_srcs; i++) {
		struct source *src = io->srcs[i];

		if (src->lfd >= 0)
			arm_accept(&l, src);
		if (src->lfd >= 0 && io->o.idle_ms && !l.idle_op.busy)
			arm_idle(&l);
		if (src->tail)
			arm_notify(&l, src, false);
		if (src->hop)
			hop_rx_uring_start(&l, src);
		for (c = src->conns; c; c = c->next)
			conn_step(&l, c);
	}
	for (i = 0; i < io->nr_sinks; i++) {
		if (io->sinks[i]->down) /* its peer was not up at start */
			sink_backoff(&l, io->sinks[i]);
		sink_step(&l, io->sinks[i]);
	}
	for (i = 0; i < io->nr_hop_sinks; i++)
		hop_tx_uring_start(&l, io->hop_sinks[i]);
	ret = kafka_sources_start(&l);
	if (ret) {
		io_set_err(io, ret);
		bring_io_stop(io);
	}

	for (;;) {
		if (__atomic_load_n(&io->stop, __ATOMIC_RELAXED) && !io->stopping)
			begin_stop(&l);
		if (!io->closed && sources_done(io)) {
			/* Sinks waiting for data wake up and see -EPIPE. */
			bring_close(io->r);
			io->closed = true;
		}
		if (io->closed && sinks_done(io))
			break;
		ret = io_uring_submit_and_wait(&l.ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN &&
		    ret != -EBUSY && ret != -ETIME) {
			io_log("io_uring_enter: %s\n", strerror(-ret));
			io_set_err(io, ret);
			break;
		}
		if (*l.ring.cq.koverflow && !l.overflow_logged) {
			l.overflow_logged = true;
			io_log("completion queue overflowed\n");
		}
		seen = 0;
		io_uring_for_each_cqe(&l.ring, head, cqe) {
			dispatch(&l, cqe);
			seen++;
		}
		io_uring_cq_advance(&l.ring, seen);
	}
	kafka_sources_join(io);
	io_uring_queue_exit(&l.ring);
	/* Reservations a cancelled read left behind were aborted in on_read. */
	return io->err;
}
