// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * The io layer's handle: sources, sinks, and the choice of loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
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
	err = EINVAL;
	if (opts) {
		sz = opts->sz < sizeof(io->o) ? opts->sz : sizeof(io->o);
		memcpy(&io->o, opts, sz);
		io->o.sz = sizeof(io->o);
		/* A newer caller's options we do not know must be unset. */
		for (; sz < opts->sz; sz++)
			if (((const char *)opts)[sz])
				goto fail;
	}
	/* A newer caller's flag this library does not know: refused too. */
	if (io->o.flags & ~IO_KNOWN_FLAGS)
		goto fail;
	if (io->o.on_error < BRING_IO_ON_ERROR_STOP ||
	    io->o.on_error > BRING_IO_ON_ERROR_SKIP ||
	    io->o.framing < BRING_IO_LINES || io->o.framing > BRING_IO_SYSLOG ||
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
	if (!io->o.send_timeout_ms)
		io->o.send_timeout_ms = IO_SEND_TIMEOUT_MS;
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

/*
 * Say it now? true at the first time and then once every
 * IO_SAY_EVERY_S seconds; *@times is how many times it happened since it
 * was last said, this one included. Any thread (the readv/writev mode's
 * sources share an io): the one that moves next_ns says it.
 */
bool io_say_now(struct io_say *say, uint64_t *times)
{
	uint64_t now = io_now_ns(),
		 next = __atomic_load_n(&say->next_ns, __ATOMIC_RELAXED);

	if (now < next ||
	    !__atomic_compare_exchange_n(&say->next_ns, &next,
					 now + IO_SAY_EVERY_S * 1000000000ULL,
					 false, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED)) {
		__atomic_fetch_add(&say->quiet, 1, __ATOMIC_RELAXED);
		return false;
	}
	*times = __atomic_exchange_n(&say->quiet, 0, __ATOMIC_RELAXED) + 1;
	return true;
}

/*
 * A listening source accepted @fd: its conn, or NULL when @fd was closed
 * (over max_conns: refused, said every IO_SAY_EVERY_S seconds; or out
 * of memory).
 */
struct conn *source_accepted(struct source *src, int fd)
{
	struct bring_io *io = src->io;
	unsigned int max = io->o.max_conns;
	uint64_t times;
	struct conn *c;

	io_stat_add(io, accepted, 1);
	if (max && __atomic_load_n(&io->nr_conns, __ATOMIC_RELAXED) >= max) {
		close(fd);
		io_stat_add(io, refused, 1);
		if (io_say_now(&io->refuse_say, &times) &&
		    !(io->o.flags & BRING_IO_QUIET))
			io_log("%s: %u connections open: refused %llu "
			       "(max_conns)\n", src->ep.uri, max,
			       (unsigned long long)times);
		return NULL;
	}
	c = source_add_conn(src, fd);
	if (!c) {
		close(fd);
		return NULL;
	}
	c->accepted = true;
	__atomic_fetch_add(&io->nr_conns, 1, __ATOMIC_RELAXED);
	return c;
}

/* An accepted conn is being freed. */
void source_conn_gone(struct conn *c)
{
	if (c->accepted)
		__atomic_fetch_sub(&c->src->io->nr_conns, 1, __ATOMIC_RELAXED);
	c->accepted = false;
}

/*
 * accept(2) failed with @err: how many ms to wait before accepting again
 * (0: at once). Out of fds or memory, accepting again at once would spin
 * with the connection still queued: pause, and say so once every
 * IO_SAY_EVERY_S seconds (errors are said even when quiet).
 */
unsigned int source_accept_failed(struct source *src, int err)
{
	struct bring_io *io = src->io;
	uint64_t times;

	if (err == -EAGAIN || err == -EINTR || err == -ECANCELED ||
	    err == -ECONNABORTED)
		return 0;
	io_stat_add(io, accept_errors, 1);
	if (io_say_now(&io->accept_say, &times))
		io_log("%s: accept: %s (%llu times); pausing accepts for "
		       "%d ms at a time\n", src->ep.uri, strerror(-err),
		       (unsigned long long)times, IO_ACCEPT_BACKOFF_MS);
	return IO_ACCEPT_BACKOFF_MS;
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
		source_conn_gone(c);
		conn_free(c);
	}
	if (src->lfd >= 0)
		close(src->lfd);
	ep_unlink(src);
	tail_free(src);
	hop_source_free(src);
	ckpt_close(src);
	kafka_source_free(src);
	ep_free(&src->ep);
	free(src);
}

/* A sink and all it holds; also what a failed add leaves half made. */
static void sink_free(struct sink *s)
{
	hop_sink_free(s);
	kafka_sink_free(s);
	if (s->rd)
		bring_reader_close(s->rd);
	if (s->fd >= 0)
		close(s->fd);
	ep_free(&s->ep);
	free(s->mm);
	free(s->dg_iov);
	free(s);
}

/*
 * The read-ahead of @src, reading @fd (bring_io_opts.read_ahead): only
 * a regular file read to its end waits for the sinks. Sockets, pipes and
 * terminals fill the whole ring: what they send is gone once read, and
 * the ring is what rides out a slow sink; so does tail: (a file rotated
 * away while the sinks are down is read from the ring, not the disk).
 */
static void src_set_read_ahead(struct source *src, int fd)
{
	size_t ra = src->io->o.read_ahead;
	struct stat st;

	if (!ra || ra >= bring_capacity(src->io->r) || fstat(fd, &st) ||
	    !S_ISREG(st.st_mode))
		return;
	src->read_ahead = ra;
}

/*
 * What sink @s may hold unacknowledged, by design, on top of a file
 * source's read-ahead: a bring: sink's window (--hop-window), a kafka:
 * sink's KAFKA_WINDOW. Their cursors move on acknowledgements only, so
 * without it the bytes in flight to their receivers would stop at the
 * read-ahead, per round trip (1 MiB per 50 ms: 20 MB/s), under the
 * window meant to bound them.
 */
static size_t sink_window(const struct sink *s)
{
	if (s->hop)
		return hop_sink_window(s);
	return s->kafka ? KAFKA_WINDOW : 0;
}

/* Is a regular file's read position at its end (or unknown)? */
static bool conn_at_eof(const struct conn *c)
{
	off_t pos = lseek(c->fd, 0, SEEK_CUR);
	struct stat st;

	return pos < 0 || fstat(c->fd, &st) || pos >= st.st_size;
}

/*
 * How far @s is behind, less what it may hold unacknowledged; UINT64_MAX
 * for a sink whose reader io_fatal() closed (it reads no more). Under
 * io->rd_lock: in readv/writev mode the sink is another thread.
 */
static uint64_t sink_lag(const struct sink *s)
{
	uint64_t lag;
	size_t w;

	if (!s->rd)
		return UINT64_MAX;
	lag = bring_reader_lag(s->rd);
	w = sink_window(s);
	return lag > w ? lag - w : 0;
}

/*
 * How far the fastest sink of @io is behind (sink_lag()), or @used (the
 * ring's slowest reader) for an io without sinks (a file ring that other
 * processes read) or whose sinks all failed.
 */
static uint64_t fastest_sink_lag(struct bring_io *io, uint64_t used)
{
	uint64_t lag, min = UINT64_MAX;
	unsigned int i;

	pthread_mutex_lock(&io->rd_lock);
	for (i = 0; i < io_nr_sinks(io); i++) {
		lag = sink_lag(io_sink(io, i));
		if (lag < min)
			min = lag;
	}
	pthread_mutex_unlock(&io->rd_lock);
	return min == UINT64_MAX ? used : min;
}

/* Does the ring hold anything, and the fastest sink more than @to? */
static bool fastest_behind(struct bring_io *io, uint64_t used, size_t to)
{
	return used && fastest_sink_lag(io, used) > to;
}

/*
 * Must @c's source wait before it puts @len more bytes in? A source with
 * a read-ahead waits while its fastest sink is more than that behind
 * (framing, and the unused ends of reservations, included), unless the
 * ring holds nothing, or the file is at its end (the read that finds it
 * reads nothing). The fastest, not the slowest: a sink that stopped (a
 * full disk, its collector down) has the ring hold what it did not take,
 * up to the capacity, while the others go on (harden_test
 * full_disk_sink_retries_healthy_sink_flows); the file keeps only what
 * no sink needs yet. The wait (conn_space_wait_prepare()) ends when a
 * sink moves on: a drain wait, which only readers' progress ends. A
 * wait for room would end too early, or at once: room counts a lap
 * jump's skipped bytes as taken while a sink is before the jump, and a
 * claim may escape over such a sink (Documentation/ring.rst).
 */
bool conn_read_ahead_full(struct conn *c, size_t len)
{
	struct source *src = c->src;
	struct bring_stats st = { .sz = sizeof(st) };
	size_t fp = len + 24; /* header, padding */
	size_t ra = src->read_ahead;
	/* Reads larger than the read-ahead: one at a time. */
	size_t to = ra > fp ? ra - fp : 0;

	if (!ra || bring_get_stats(src->io->r, &st) ||
	    !fastest_behind(src->io, st.used, to) || conn_at_eof(c))
		return false;
	c->drain = true;
	c->drain_to = to;
	return true;
}

/*
 * Prepare @c's wait for the ring: a drain wait when its read-ahead is
 * full, else a wait for room for the c->need bytes that did not fit. As
 * bring_write_wait_prepare(): 0 to wait on @w, 1 not to; finish it with
 * bring_write_wait_finish().
 *
 * A drain wait ends when the ring holds at most drain_to, or at any
 * reader's move: the ring's slowest reader may be far behind (a stopped
 * sink) while the fastest decides. So the fastest is looked at again
 * once the wait is registered: had it moved between the look that
 * decided to wait and the registration, and then read all there was, no
 * move would come to end the wait.
 */
int conn_space_wait_prepare(struct conn *c, struct bring_wait *w)
{
	struct bring_io *io = c->src->io;
	struct bring_stats st = { .sz = sizeof(st) };
	bool drain = c->drain;
	int ret;

	c->drain = false;
	if (!drain)
		return bring_write_wait_prepare(io->r, c->need, w);
	ret = bring_drain_wait_prepare(io->r, c->drain_to, w);
	if (ret || bring_get_stats(io->r, &st) ||
	    fastest_behind(io, st.used, c->drain_to))
		return ret;
	bring_write_wait_finish(io->r, w);
	return 1;
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
	src->acc_wait_op = (struct op){ .type = OP_ACCEPT_WAIT, .obj = src };
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
	case EP_KAFKA:
		err = kafka_source_new(src);
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
		src_set_read_ahead(src, fd);
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

/*
 * lines: a file: sink's file that does not end in a newline ends in a
 * line torn by a run that ended while writing a batch (a sink's writes
 * always end in one). That batch was not shifted: the sink writes it
 * again, whole. Cut the torn line off first, so that it is not glued to
 * the next one and taken for whole; not when it is longer than a line
 * bringcat writes (max_msg: then it is no line of ours).
 */
static void sink_cut_torn_line(struct sink *s)
{
	struct bring_io *io = s->io;
	off_t size, at, keep = -1;
	char buf[4096];
	ssize_t n, i;
	int rfd;

	if (s->ep.kind != EP_FILE || !s->regular ||
	    io->o.framing != BRING_IO_LINES)
		return;
	rfd = open(s->ep.path, O_RDONLY | O_CLOEXEC); /* s->fd: write only */
	if (rfd < 0)
		return;
	size = lseek(s->fd, 0, SEEK_END);
	for (at = size; at > 0 && keep < 0 && size - at <= (off_t)io->max_msg;
	     at -= n) {
		n = at < (off_t)sizeof(buf) ? at : (off_t)sizeof(buf);
		if (pread(rfd, buf, n, at - n) != n)
			break;
		for (i = n - 1; i >= 0 && buf[i] != '\n'; i--)
			;
		if (i >= 0)
			keep = at - n + i + 1;
		else if (at == n)
			keep = 0; /* no newline at all */
	}
	close(rfd);
	if (keep < 0 || keep == size || size - keep > (off_t)io->max_msg)
		return;
	if (ftruncate(s->fd, keep)) {
		io_log("%s: cannot cut a torn last line off: %s\n", s->ep.uri,
		       strerror(errno));
		return;
	}
	io_log("%s: cut a torn last line of %lld bytes off (a run that "
	       "ended while writing)\n", s->ep.uri, (long long)(size - keep));
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
	s->batch_at = -1;
	s->mh.msg_iov = s->iov;
	s->idx = io_nr_sinks(io);
	if (reader)
		snprintf(s->reader_name, sizeof(s->reader_name), "%s", reader);
	else
		snprintf(s->reader_name, sizeof(s->reader_name), "sink%u",
			 s->idx);
	err = ep_parse(&s->ep, uri, false);
	if (err)
		goto fail;
	if (s->ep.kind == EP_HOP)
		return hop_add_sink(io, s);
	if (s->ep.kind == EP_KAFKA)
		goto reader; /* its producer once the reader is there */
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
	sink_sock_opts(s);
	sink_cut_torn_line(s);
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
reader:
	s->rd = bring_reader_open(io->r, s->reader_name);
	if (!s->rd) {
		err = -errno;
		goto fail;
	}
	err = ckpt_sink_start(s);
	if (err)
		goto fail;
	if (s->ep.kind == EP_KAFKA) {
		s->kf_op = (struct op){ .type = OP_KAFKA, .obj = s };
		err = kafka_sink_new(s);
		if (err)
			goto fail;
	}
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
 * A sink cannot go on (stdout failed, the ring failed, or a stop came
 * while its file failed): close its reader, which keeps its place (in a
 * file ring, for the next run: what it did not write is not lost to it),
 * and stop with the error (said even when BRING_IO_QUIET, like every
 * error bring_io_run() returns).
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
		}
		if (s->fd >= 0)
			close(s->fd);
		s->fd = -1;
	}
	bring_io_stop(io);
}

void bring_io_reopen(struct bring_io *io)
{
	if (io)
		__atomic_fetch_add(&io->reopen_gen, 1, __ATOMIC_RELAXED);
}

/*
 * Is it time a file: sink opened its path again? Asked to
 * (bring_io_reopen()), or, looked at every IO_PATH_CHECK_MS, the path
 * no longer names the file it writes (renamed, deleted, replaced).
 */
static const char *sink_reopen_why(struct sink *s)
{
	unsigned int gen = __atomic_load_n(&s->io->reopen_gen,
					   __ATOMIC_RELAXED);
	struct stat fst, pst;
	uint64_t now;

	if (gen != s->reopen_gen) {
		s->reopen_gen = gen;
		return "asked to";
	}
	now = io_now_ns();
	if (now < s->path_check_ns)
		return NULL;
	s->path_check_ns = now + IO_PATH_CHECK_MS * 1000000ULL;
	if (fstat(s->fd, &fst) || !S_ISREG(fst.st_mode))
		return NULL;
	if (stat(s->ep.path, &pst))
		return "deleted";
	if (pst.st_dev != fst.st_dev || pst.st_ino != fst.st_ino)
		return "renamed";
	return NULL;
}

/* Between batches: open a file: sink's path again when it is time. */
static void sink_check_path(struct sink *s)
{
	uint64_t times;
	const char *why;
	bool sock;
	int fd;

	if (s->ep.kind != EP_FILE || s->fd < 0)
		return;
	why = sink_reopen_why(s);
	if (!why)
		return;
	fd = ep_open_sink(&s->ep, &sock);
	if (fd < 0) {
		if (io_say_now(&s->reopen_say, &times))
			io_log("%s: cannot open it again (%s): %s; writing "
			       "on to the old file (%llu times)\n", s->ep.uri,
			       why, strerror(-fd), (unsigned long long)times);
		return;
	}
	close(s->fd);
	s->fd = fd;
	sink_stat_add(s, reopens, 1);
	if (!(s->io->o.flags & BRING_IO_QUIET))
		io_log("%s: opened again (%s)\n", s->ep.uri, why);
}

/*
 * A new batch was peeked: a file: sink opens its path again if it is
 * time, and notes where the batch starts in its file.
 */
void sink_batch_begin(struct sink *s)
{
	struct stat st;

	sink_check_path(s);
	s->batch_at = -1;
	if (s->ep.kind == EP_FILE && s->fd >= 0 && !fstat(s->fd, &st) &&
	    S_ISREG(st.st_mode))
		s->batch_at = st.st_size;
}

/*
 * A write to a file: sink failed with @err (ENOSPC, EDQUOT, EIO, EFBIG):
 * what the batch wrote is cut off the file, so that no partial line is
 * left as if it were whole, the batch is laid out again, the file closed,
 * and the failure counted and said (then every IO_SAY_EVERY_S seconds).
 * The sink keeps its place in the ring; the others go on while the ring
 * has room (then sources wait: back-pressure, said here). Returns the ms
 * to wait before sink_retry(), or 0 when @s is no regular file (a
 * device, a FIFO: io_fatal()).
 */
unsigned int sink_write_failed(struct sink *s, int err)
{
	uint64_t times;

	if (s->ep.kind != EP_FILE || !s->regular)
		return 0;
	if (s->fd >= 0) {
		if (s->batch_at >= 0 && ftruncate(s->fd, s->batch_at))
			io_log("%s: cannot cut a partial batch off: %s\n",
			       s->ep.uri, strerror(errno));
		close(s->fd);
		s->fd = -1;
	}
	sink_rewind(s);
	sink_stat_add(s, sink_retries, 1);
	s->backoff_ms = s->fail_err ? s->backoff_ms * 2 : IO_BACKOFF_MIN_MS;
	if (s->backoff_ms > IO_BACKOFF_MAX_MS)
		s->backoff_ms = IO_BACKOFF_MAX_MS;
	s->fail_err = err;
	if (io_say_now(&s->fail_say, &times))
		io_log("%s: %s (%llu times); keeping its place in the ring, "
		       "retrying\n", s->ep.uri, strerror(-err),
		       (unsigned long long)times);
	return s->backoff_ms;
}

/*
 * After sink_write_failed()'s wait: open the file again by its path.
 * 0, or -errno (then sink_write_failed() again); a stop gives up
 * (io_fatal()) with -ECANCELED.
 */
int sink_retry(struct sink *s)
{
	struct bring_io *io = s->io;
	bool sock;
	int fd;

	if (__atomic_load_n(&io->stop, __ATOMIC_RELAXED)) {
		sink_give_up(s, s->fail_err);
		return -ECANCELED;
	}
	fd = ep_open_sink(&s->ep, &sock);
	if (fd < 0)
		return fd;
	s->fd = fd;
	s->reopen_gen = __atomic_load_n(&io->reopen_gen, __ATOMIC_RELAXED);
	sink_batch_begin(s);
	return 0;
}

/*
 * A tcp: or unix: sink's new socket: sends that make no progress for
 * send_timeout_ms fail (SO_SNDTIMEO: the readv/writev mode; the io_uring
 * loop links a timeout to each send), and so does a tcp: connection
 * whose data stays unacknowledged that long (TCP_USER_TIMEOUT).
 */
void sink_sock_opts(struct sink *s)
{
	int ms = s->io->o.send_timeout_ms;
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };
	unsigned int uto = ms;

	if (s->fd < 0 || ms < 0 || (s->ep.kind != EP_TCP &&
				    s->ep.kind != EP_UNIX))
		return;
	setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (s->ep.kind == EP_TCP)
		setsockopt(s->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto,
			   sizeof(uto));
}

/*
 * Stopping, a sink that cannot send (down, failing, timed out) gives up
 * instead of trying again: the run ends. What it has not written stays
 * in the ring (a file ring keeps it for the next run: its reader keeps
 * its place); the run fails with @err.
 */
void sink_give_up(struct sink *s, int err)
{
	io_log("%s: stopping: giving up on it\n", s->ep.uri);
	io_fatal(s->io, s, err);
}

/*
 * The jump slack: a few chunks. A ring's sinks may be this far behind
 * when its claims jump, whatever the sources: a sink that stops right
 * after the jump costs the ring under two records of its capacity
 * (escape jumps, Documentation/ring.rst; file rings since layout 3).
 */
#define IO_JUMP_SLACK (4U << 20)

/*
 * Let the ring's claims make lap jumps with the sinks up to a slack
 * behind (bring_set_jump_slack()), which a ring that is never empty needs
 * to stay in its working set.
 */
static void io_set_jump_slack(struct bring_io *io)
{
	bring_set_jump_slack(io->r, IO_JUMP_SLACK);
}

int bring_io_run(struct bring_io *io)
{
	int err;

	if (!io || io->ran)
		return -EINVAL;
	io->ran = true;
	io_set_jump_slack(io);
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
	LD(refused); LD(accept_errors); LD(sink_retries); LD(reopens);
	LD(send_timeouts);
	LD(kafka_delivered); LD(kafka_inflight); LD(kafka_retried);
	LD(kafka_failed); LD(bad_frames);
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

/*
 * Sink @idx in add order: bring: sinks live in their own list (hop.c
 * runs them), both lists are in add order.
 */
static struct sink *sink_at(const struct bring_io *io, unsigned int idx)
{
	unsigned int i;

	for (i = 0; i < io_nr_sinks(io); i++)
		if (io_sink(io, i)->idx == idx)
			return io_sink(io, i);
	return NULL;
}

int bring_io_sink_stats(const struct bring_io *io, unsigned int idx,
			struct bring_io_endpoint_stats *st)
{
	struct bring_io_endpoint_stats tmp = { 0 };
	struct sink *s;

	if (!io || !st || st->sz < sizeof(size_t))
		return -EINVAL;
	s = sink_at(io, idx);
	if (!s)
		return -ENOENT;
	tmp.uri = s->ep.uri;
	tmp.reader = s->reader_name;
	tmp.msgs = __atomic_load_n(&s->msgs_out, __ATOMIC_RELAXED);
	tmp.bytes = __atomic_load_n(&s->bytes_out, __ATOMIC_RELAXED);
	tmp.reconnects = __atomic_load_n(&s->reconnects, __ATOMIC_RELAXED);
	tmp.retries = __atomic_load_n(&s->sink_retries, __ATOMIC_RELAXED);
	tmp.reopens = __atomic_load_n(&s->reopens, __ATOMIC_RELAXED);
	tmp.send_timeouts = __atomic_load_n(&s->send_timeouts,
					    __ATOMIC_RELAXED);
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
	for (i = 0; i < io_nr_sinks(io); i++)
		sink_free(io_sink(io, i));
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
