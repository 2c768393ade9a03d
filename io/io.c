// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * The io layer's handle: sources, sinks, and the choice of loop.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hop.h"
#include "io.h"

#define IO_DEFAULT_MAX_MSG (1U << 20)

/*
 * io_uring if it works; ring readiness through IORING_OP_FUTEX_WAIT, or
 * through the ring's notify eventfd where the kernel lacks it (unless
 * other handles share the ring: then readv/writev and real futex waits).
 */
static void io_choose_uring(struct bring_io *io)
{
	bool quiet = io->o.flags & BRING_IO_QUIET, futex_wait = false;
	int fd, err = io_uring_probe_ok(&futex_wait);

	if (!err && (futex_wait && !(io->o.flags & BRING_IO_NO_FUTEX_WAIT))) {
		io->uring = true;
		return;
	}
	if (!err && (io->o.flags & BRING_IO_SHARED))
		err = -EOPNOTSUPP; /* no FUTEX_WAIT: the eventfd would miss wakes */
	if (!err) {
		fd = bring_notify_fd(io->r); /* this loop's own */
		err = fd < 0 ? fd : 0;
		io->ringfd_fd = fd;
	}
	if (err) {
		if (!quiet)
			io_log("io_uring unavailable (%s): using readv/writev\n",
			       strerror(-err));
		return;
	}
	io->uring = io->ringfd = true;
	if (!quiet && !futex_wait)
		io_log("io_uring lacks FUTEX_WAIT: waiting for the ring on "
		       "its eventfd\n");
}

struct bring_io *bring_io_new(struct bring *r, const struct bring_io_opts *opts)
{
	struct bring_io *io;
	size_t sz;
	int err;

	if (!r || (opts && opts->sz < sizeof(size_t))) {
		errno = EINVAL;
		return NULL;
	}
	io = calloc(1, sizeof(*io));
	if (!io)
		return NULL;
	io->r = r;
	io->hop_fd = -1;
	pthread_mutex_init(&io->rd_lock, NULL);
	io->o.sz = sizeof(io->o);
	if (opts) {
		sz = opts->sz < sizeof(io->o) ? opts->sz : sizeof(io->o);
		memcpy(&io->o, opts, sz);
		io->o.sz = sizeof(io->o);
	}
	err = EINVAL;
	if (io->o.framing < BRING_IO_LINES || io->o.framing > BRING_IO_RAW ||
	    io->o.oversize < BRING_IO_SPLIT || io->o.oversize > BRING_IO_DROP)
		goto fail;
	io->max_msg = io->o.max_msg;
	if (!io->max_msg) {
		io->max_msg = bring_max_msg(r);
		if (io->max_msg > IO_DEFAULT_MAX_MSG)
			io->max_msg = IO_DEFAULT_MAX_MSG;
	}
	if (io->max_msg > bring_max_msg(r) || !io->max_msg)
		goto fail;
	if (!io->o.entries)
		io->o.entries = 256;
	io->stage_max = io->o.stage_max ? io->o.stage_max :
					  io->max_msg + IO_READ_CHUNK;
	io->stage_total = io->o.stage_total ? io->o.stage_total :
					      IO_STAGE_TOTAL;
	if (io->stage_max < IO_STAGE_MIN)
		goto fail;
	io->ring_max = bring_max_msg(r);
	io->chunks = io->o.framing == BRING_IO_LINES &&
		     !(io->o.flags & BRING_IO_LINE_RECORDS);
	/* A quarter of the ring at most: several reads can be in it at once. */
	io->chunk = bring_capacity(r) / 4;
	if (io->chunk > IO_READ_CHUNK)
		io->chunk = IO_READ_CHUNK;
	err = io->chunks ? -ledger_new(io) : 0;
	if (err)
		goto fail;
	io->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io->wake_fd < 0) {
		err = errno;
		goto fail;
	}
	if (!(io->o.flags & BRING_IO_NO_URING))
		io_choose_uring(io);
	io->st.uring = io->ringfd ? 2 : io->uring;
	return io;
fail:
	ledger_free(io);
	free(io);
	errno = err;
	return NULL;
}

int bring_io_uses_uring(const struct bring_io *io)
{
	return io && io->uring;
}

/*
 * Record the run's first fatal error: sources and sinks may fail at once
 * in the readv/writev mode's threads, and the first one wins.
 */
void io_set_err(struct bring_io *io, int err)
{
	int none = 0;

	__atomic_compare_exchange_n(&io->err, &none, err, false,
				    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/*
 * A source could not put data into the ring: -EPIPE is the ring closing
 * and -EAGAIN a stop that found it full for good (the normal end);
 * anything else (-EIO from a poisoned file ring, -EUSERS with too many
 * writer threads) is said once and fails the run.
 */
void io_ring_error(struct bring_io *io, struct conn *c, int err)
{
	if (err == -EPIPE || err == -EAGAIN)
		return;
	io_log("%s: ring: %s\n", c->src->ep.uri, strerror(-err));
	io_set_err(io, err);
}

struct conn *source_add_conn(struct source *src, int fd)
{
	struct conn *c = malloc(sizeof(*c));
	struct stat st;

	if (!c)
		return NULL;
	if (conn_init(c, src, fd)) {
		free(c);
		return NULL;
	}
	if (!fstat(fd, &st)) {
		c->sock = S_ISSOCK(st.st_mode);
		c->pollfirst = conn_resv_read(c) && !S_ISREG(st.st_mode) &&
			       !S_ISBLK(st.st_mode);
	}
	c->next = src->conns;
	src->conns = c;
	return c;
}

static int grow(void *pp, unsigned int nr)
{
	void **p = pp, *n = realloc(*p, (nr + 1) * sizeof(void *));

	if (!n)
		return -ENOMEM;
	*p = n;
	return 0;
}

/* A source and all it holds; also what a failed add leaves half made. */
static void source_free(struct bring_io *io, struct source *src)
{
	while (src->conns) {
		struct conn *c = src->conns;

		src->conns = c->next;
		if (c->resv_open)
			bring_abort(io->r, &c->resv);
		conn_free(c);
	}
	if (src->lfd >= 0)
		close(src->lfd);
	ep_unlink(src);
	tail_free(src);
	hop_source_free(src);
	ckpt_close(src);
	ep_free(&src->ep);
	free(src);
}

/* A sink and all it holds; also what a failed add leaves half made. */
static void sink_free(struct sink *s)
{
	hop_sink_free(s);
	if (s->rd)
		bring_reader_close(s->rd);
	if (s->fd >= 0)
		close(s->fd);
	ep_free(&s->ep);
	free(s->mm);
	free(s->dg_iov);
	free(s);
}

int bring_io_add_source(struct bring_io *io, const char *uri)
{
	struct source *src;
	int err, fd;

	if (!io || !uri || io->ran)
		return -EINVAL;
	src = calloc(1, sizeof(*src));
	if (!src)
		return -ENOMEM;
	src->io = io;
	src->lfd = -1;
	src->acc_op.type = OP_ACCEPT;
	src->acc_op.obj = src;
	err = ep_parse(&src->ep, uri, true);
	if (!err)
		err = ckpt_open(src);
	if (err)
		goto fail;
	switch (src->ep.kind) {
	case EP_TCP_LISTEN:
	case EP_UNIX_LISTEN:
		err = ep_listen(&src->ep, &src->port);
		if (err < 0)
			goto fail;
		src->lfd = err;
		if (src->ep.kind == EP_UNIX_LISTEN) {
			struct stat st;

			if (!lstat(src->ep.path, &st)) {
				src->dev = st.st_dev;
				src->ino = st.st_ino;
			}
		}
		break;
	case EP_UDP_LISTEN:
		/* The bound socket is the source's one, endless conn. */
		fd = ep_listen(&src->ep, &src->port);
		if (fd < 0) {
			err = fd;
			goto fail;
		}
		if (!source_add_conn(src, fd)) {
			close(fd);
			err = -ENOMEM;
			goto fail;
		}
		break;
	case EP_TAIL:
		err = tail_open(src);
		if (err)
			goto fail;
		break;
	case EP_HOP_LISTEN:
		err = hop_wake_fd(io);
		if (!err)
			err = hop_source_add(io, src);
		if (err)
			goto fail;
		break;
	default:
		fd = ep_open_file_source(&src->ep);
		if (fd < 0) {
			err = fd;
			goto fail;
		}
		src->finite = true;
		if (!source_add_conn(src, fd)) {
			close(fd);
			err = -ENOMEM;
			goto fail;
		}
		err = src->ck ? ckpt_resume_file(src->conns) : 0;
		if (err)
			goto fail;
	}
	err = grow(&io->srcs, io->nr_srcs);
	if (err)
		goto fail;
	io->srcs[io->nr_srcs++] = src;
	io->nr_hop_srcs += !!src->hop;
	return 0;
fail:
	source_free(io, src);
	return err;
}

/* bring:HOST:PORT: a sink of hop.c, which connects in its own thread. */
static int hop_add_sink(struct bring_io *io, struct sink *s)
{
	int err = hop_wake_fd(io);

	if (!err) {
		s->rd = bring_reader_open(io->r, s->reader_name);
		err = s->rd ? 0 : -errno;
	}
	if (!err)
		err = hop_sink_add(io, s);
	if (!err)
		err = grow(&io->hop_sinks, io->nr_hop_sinks);
	if (err) {
		sink_free(s);
		return err;
	}
	io->hop_sinks[io->nr_hop_sinks++] = s;
	return 0;
}

/*
 * A stream sink whose peer is not there yet (refused, no socket file,
 * unreachable) at start waits for it, as Fluent Bit, Vector and rsyslog
 * do. A name that does not resolve never gets here: ep_parse() failed.
 */
static bool sink_may_wait(const struct sink *s, int err)
{
	if (s->ep.kind != EP_TCP && s->ep.kind != EP_UNIX)
		return false;
	switch (-err) {
	case ECONNREFUSED:
	case ETIMEDOUT:
	case ENETUNREACH:
	case EHOSTUNREACH:
	case EHOSTDOWN:
		return true;
	case ENOENT: /* unix: the socket file is not made yet */
		return s->ep.kind == EP_UNIX;
	default:
		return false;
	}
}

/* The wait before the next connect: 50 ms, doubling up to 5 s. */
unsigned int sink_next_backoff(struct sink *s)
{
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : IO_BACKOFF_MIN_MS;
	if (s->backoff_ms > IO_BACKOFF_MAX_MS)
		s->backoff_ms = IO_BACKOFF_MAX_MS;
	return s->backoff_ms;
}

/*
 * A connect of a down sink failed: remember why, and say so once per
 * IO_DOWN_SAY_MS window (the first failure was said by whoever took
 * the sink down), not once per attempt.
 */
void sink_connect_failed(struct sink *s, int err)
{
	uint64_t now = io_now_ns();

	sink_set_state(s, BRING_IO_RECONNECTING, err);
	s->attempts++;
	if (now - s->said_ns < IO_DOWN_SAY_MS * 1000000ULL)
		return;
	s->said_ns = now;
	io_log("%s: still not connected after %u attempts: %s\n", s->ep.uri,
	       s->attempts, strerror(-err));
}

/*
 * What bring_io_sink_stats() says of @s, from any thread; @err 0 keeps
 * the last error (shown until the next one).
 */
void sink_set_state(struct sink *s, int state, int err)
{
	if (err)
		__atomic_store_n(&s->last_err, err, __ATOMIC_RELAXED);
	__atomic_store_n(&s->state, state, __ATOMIC_RELAXED);
}

/* A down sink is connected (again). */
void sink_connected(struct sink *s)
{
	if (!(s->io->o.flags & BRING_IO_QUIET))
		io_log("%s: %s\n", s->ep.uri,
		       s->was_up ? "reconnected" : "connected");
	if (s->was_up)
		sink_stat_add(s, reconnects, 1);
	s->was_up = true;
	s->down = false;
	sink_set_state(s, BRING_IO_UP, 0);
	s->backoff_ms = 0;
	s->attempts = 0;
}

int bring_io_add_sink(struct bring_io *io, const char *uri, const char *reader)
{
	struct sink *s;
	int err;

	if (!io || !uri || io->ran)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->io = io;
	s->fd = -1;
	s->wr_op = (struct op){ .type = OP_WRITE, .obj = s };
	s->rw_op = (struct op){ .type = OP_DATA, .obj = s };
	s->tm_op = (struct op){ .type = OP_TIMER, .obj = s };
	s->mh.msg_iov = s->iov;
	if (reader)
		snprintf(s->reader_name, sizeof(s->reader_name), "%s", reader);
	else
		snprintf(s->reader_name, sizeof(s->reader_name), "sink%u",
			 io->nr_sinks + io->nr_hop_sinks);
	err = ep_parse(&s->ep, uri, false);
	if (err)
		goto fail;
	if (s->ep.kind == EP_HOP)
		return hop_add_sink(io, s);
	s->fd = ep_open_sink(&s->ep, &s->sock);
	if (s->fd < 0 && sink_may_wait(s, s->fd)) {
		/* The collector is not up yet: the loop connects with backoff. */
		io_log("%s: %s; retrying until it is up\n", s->ep.uri,
		       strerror(-s->fd));
		sink_set_state(s, BRING_IO_RECONNECTING, s->fd);
		s->attempts = 1;
		s->said_ns = io_now_ns();
		s->down = true;
	} else if (s->fd < 0) {
		err = s->fd;
		goto fail;
	} else {
		s->was_up = true;
	}
	{
		struct stat st;

		s->regular = !fstat(s->fd, &st) && S_ISREG(st.st_mode);
	}
	if (s->ep.kind == EP_UDP) {
		s->dgram = true;
		s->wr_op.type = OP_WPOLL;
		s->dg_cap = IO_BATCH_MSGS;
		s->mm = calloc(s->dg_cap, sizeof(*s->mm));
		s->dg_iov = calloc(s->dg_cap, sizeof(*s->dg_iov));
		if (!s->mm || !s->dg_iov) {
			err = -ENOMEM;
			goto fail;
		}
	}
	s->rd = bring_reader_open(io->r, s->reader_name);
	if (!s->rd) {
		err = -errno;
		goto fail;
	}
	err = ckpt_sink_start(s);
	if (err)
		goto fail;
	err = grow(&io->sinks, io->nr_sinks);
	if (err)
		goto fail;
	io->sinks[io->nr_sinks++] = s;
	return 0;
fail:
	sink_free(s);
	return err;
}

int bring_io_source_port(const struct bring_io *io, unsigned int idx)
{
	if (!io || idx >= io->nr_srcs)
		return -EINVAL;
	return io->srcs[idx]->port ? io->srcs[idx]->port : -ENOENT;
}

void bring_io_stop(struct bring_io *io)
{
	uint64_t one = 1;
	ssize_t n;

	if (!io)
		return;
	__atomic_store_n(&io->stop, 1, __ATOMIC_RELAXED);
	n = write(io->wake_fd, &one, sizeof(one));
	if (io->hop_fd >= 0)
		n = write(io->hop_fd, &one, sizeof(one));
	(void)n;
	/* readv/writev mode: sources waiting for ring space wait on it too. */
	syscall(SYS_futex, &io->stop, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL,
		0);
}

/*
 * A sink cannot go on (its file failed): give its reader up, so that the
 * ring does not fill behind it, and stop with the error (said even when
 * BRING_IO_QUIET, like every error bring_io_run() returns).
 */
void io_fatal(struct bring_io *io, struct sink *s, int err)
{
	io_set_err(io, err);
	if (s) {
		io_log("%s: %s\n", s->ep.uri, strerror(-err));
		s->done = true;
		sink_set_state(s, BRING_IO_FAILED, err);
		if (s->rd) {
			/* bring_io_sink_stats() may be looking at its lag. */
			pthread_mutex_lock(&io->rd_lock);
			bring_reader_close(s->rd);
			s->rd = NULL;
			pthread_mutex_unlock(&io->rd_lock);
			bring_reader_remove(io->r, s->reader_name);
		}
	}
	bring_io_stop(io);
}

int bring_io_run(struct bring_io *io)
{
	int err;

	if (!io || io->ran)
		return -EINVAL;
	io->ran = true;
	err = hop_start(io);
	if (!err)
		err = io->uring ? io_run_uring(io) : io_run_fallback(io);
	hop_join(io);
	return err ? err : io->err;
}

int bring_io_get_stats(const struct bring_io *io, struct bring_io_stats *st)
{
	struct bring_io_stats tmp;
	size_t sz;

	if (!io || !st || st->sz < sizeof(size_t))
		return -EINVAL;
	sz = st->sz < sizeof(tmp) ? st->sz : sizeof(tmp);
	tmp.sz = sz;
#define LD(f) tmp.f = __atomic_load_n(&io->st.f, __ATOMIC_RELAXED)
	LD(msgs_in); LD(bytes_in); LD(msgs_out); LD(bytes_out); LD(reads);
	LD(writes); LD(short_writes); LD(split); LD(truncated); LD(dropped);
	LD(accepted); LD(reconnects); LD(full_waits); LD(empty_waits);
	LD(uring); LD(send_dropped); LD(send_errors);
	LD(rotations); LD(truncations); LD(full_wait_ns); LD(empty_wait_ns);
	LD(copied); LD(idle_closed);
	LD(hop_frames); LD(hop_acks); LD(hop_resent); LD(hop_rejected);
#undef LD
	tmp.staged = __atomic_load_n(&io->staged, __ATOMIC_RELAXED);
	memcpy(st, &tmp, sz);
	return 0;
}

/* Copy @tmp's first st->sz bytes out, as bring_io_get_stats() does. */
static int ep_stats_out(struct bring_io_endpoint_stats *st,
			struct bring_io_endpoint_stats *tmp)
{
	size_t sz = st->sz < sizeof(*tmp) ? st->sz : sizeof(*tmp);

	tmp->sz = sz;
	memcpy(st, tmp, sz);
	return 0;
}

int bring_io_source_stats(const struct bring_io *io, unsigned int idx,
			  struct bring_io_endpoint_stats *st)
{
	struct bring_io_endpoint_stats tmp = { 0 };
	const struct source *src;

	if (!io || !st || st->sz < sizeof(size_t))
		return -EINVAL;
	if (idx >= io->nr_srcs)
		return -ENOENT;
	src = io->srcs[idx];
	tmp.uri = src->ep.uri;
	tmp.msgs = __atomic_load_n(&src->msgs_in, __ATOMIC_RELAXED);
	tmp.bytes = __atomic_load_n(&src->bytes_in, __ATOMIC_RELAXED);
	tmp.state = __atomic_load_n(&src->finished, __ATOMIC_RELAXED) ?
			    BRING_IO_DONE : BRING_IO_UP;
	return ep_stats_out(st, &tmp);
}

int bring_io_sink_stats(const struct bring_io *io, unsigned int idx,
			struct bring_io_endpoint_stats *st)
{
	struct bring_io_endpoint_stats tmp = { 0 };
	struct sink *s;

	if (!io || !st || st->sz < sizeof(size_t))
		return -EINVAL;
	if (idx >= io->nr_sinks)
		return -ENOENT;
	s = io->sinks[idx];
	tmp.uri = s->ep.uri;
	tmp.reader = s->reader_name;
	tmp.msgs = __atomic_load_n(&s->msgs_out, __ATOMIC_RELAXED);
	tmp.bytes = __atomic_load_n(&s->bytes_out, __ATOMIC_RELAXED);
	tmp.reconnects = __atomic_load_n(&s->reconnects, __ATOMIC_RELAXED);
	/* A snapshot for people: state and error may be a moment apart. */
	tmp.last_err = __atomic_load_n(&s->last_err, __ATOMIC_RELAXED);
	tmp.state = __atomic_load_n(&s->state, __ATOMIC_RELAXED);
	pthread_mutex_lock((pthread_mutex_t *)&io->rd_lock);
	tmp.lag = bring_reader_lag(s->rd);
	pthread_mutex_unlock((pthread_mutex_t *)&io->rd_lock);
	return ep_stats_out(st, &tmp);
}

void bring_io_free(struct bring_io *io)
{
	unsigned int i;

	if (!io)
		return;
	for (i = 0; i < io->nr_srcs; i++)
		source_free(io, io->srcs[i]);
	for (i = 0; i < io->nr_sinks; i++)
		sink_free(io->sinks[i]);
	for (i = 0; i < io->nr_hop_sinks; i++)
		sink_free(io->hop_sinks[i]);
	free(io->srcs);
	free(io->sinks);
	free(io->hop_sinks);
	close(io->wake_fd);
	if (io->hop_fd >= 0)
		close(io->hop_fd);
	ledger_free(io);
	pthread_mutex_destroy(&io->rd_lock);
	free(io);
}
