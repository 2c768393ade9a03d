// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * The readv/writev mode, for where io_uring is missing or refused: one
 * thread per source (poll(2) over its fds and the stop eventfd, then
 * read(2)) and one per sink (blocking bring_reader_peek(), writev(2) or
 * sendmsg(2)). Sinks block in the ring's own futex waits; a source that
 * finds the ring full waits on the ring's word and the stop flag at once,
 * so that bring_io_stop() ends that wait too.
 */
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

#define IO_STOP_SLICE_MS 100 /* without futex_waitv(2): stop seen this late */

static bool stopped(struct bring_io *io)
{
	return __atomic_load_n(&io->stop, __ATOMIC_RELAXED);
}

/* FUTEX_WAIT on the ring's (shared) word for at most @ms: 0 or -errno. */
static int ring_word_wait(const struct bring_wait *w, unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };

	if (syscall(SYS_futex, w->uaddr, FUTEX_WAIT, w->val, &ts, NULL, 0) < 0)
		return -errno;
	return 0;
}

/*
 * Sleep until the ring's word @w moves (space or data, or the ring
 * closed) or bring_io_stop() wakes io->stop, or @ms pass (0: no limit):
 * one futex_waitv(2) on both (Linux 5.16). Where it is missing or
 * refused, FUTEX_WAIT on the ring's word in slices of IO_STOP_SLICE_MS,
 * looking at the stop flag in between. The ring's words are shared
 * futexes, io->stop a private one.
 */
void fallback_wait_ring(struct bring_io *io, const struct bring_wait *w,
			unsigned int ms)
{
	struct futex_waitv v[2] = {
		{ .val = w->val, .uaddr = (uintptr_t)w->uaddr,
		  .flags = FUTEX_32 },
		{ .val = 0, .uaddr = (uintptr_t)&io->stop,
		  .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG },
	};
	uint64_t end = ms ? io_now_ns() + ms * 1000000ULL : 0, now;
	/* futex_waitv(2) takes an absolute time on a clock it names. */
	struct timespec ts = { .tv_sec = (time_t)(end / 1000000000ULL),
			       .tv_nsec = (long)(end % 1000000000ULL) };
	unsigned int slice;

	if (!__atomic_load_n(&io->no_waitv, __ATOMIC_RELAXED)) {
		/* Woken, a word had moved already, a signal, or the time. */
		if (syscall(SYS_futex_waitv, v, 2, 0, ms ? &ts : NULL,
			    CLOCK_MONOTONIC) >= 0 ||
		    errno == EAGAIN || errno == EINTR || errno == ETIMEDOUT)
			return;
		/* ENOSYS, EPERM from seccomp, anything else: not here. */
		__atomic_store_n(&io->no_waitv, true, __ATOMIC_RELAXED);
	}
	while (!stopped(io)) {
		slice = IO_STOP_SLICE_MS;
		if (end) {
			now = io_now_ns();
			if (now >= end)
				return;
			if (end - now < slice * 1000000ULL)
				slice = (unsigned int)((end - now) / 1000000ULL) + 1;
		}
		if (ring_word_wait(w, slice) != -ETIMEDOUT)
			return;
	}
}

/*
 * The ring word relay. A bring: sender in readv/writev mode with acks
 * pending must wait for its socket (acks free its window) and for new
 * messages. Other processes' pushes into a shared (file) ring wake only
 * the ring's futex word, which poll(2) cannot watch, and futex_waitv(2)
 * cannot wait for a descriptor: the sender looked at the ring every 50
 * ms. The relay thread does the futex side:
 *
 *   sender                                relay
 *   bring_reader_wait_more_prepare(&w)
 *   val = w.val; req += 2 (release),
 *   FUTEX_WAKE(req)              ------>  req (acquire) new: futex_waitv on
 *   poll(socket, efd, ...)                  {word == val, req}
 *                                         word moved (a push): write efd
 *   efd readable: looks at the ring <---  (then waits for the next req)
 *   bring_reader_wait_finish(&w)
 *
 * The sender's registration as a sleeper (prepare) makes pushes wake the
 * word; a push between its prepare and the relay's wait changed the word
 * already, and the wait returns at once (EAGAIN): the relay writes efd
 * all the same. A new hand-off (req moved) ends a wait on an older value
 * without a write. Spurious writes cost the sender one look. Quit: bit 0
 * of req, which every wait includes.
 */
static long relay_waitv(struct ring_relay *rl, bool ring, uint32_t req)
{
	struct futex_waitv v[2] = {
		{ .val = req, .uaddr = (uintptr_t)&rl->req,
		  .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG },
		{ .val = __atomic_load_n(&rl->val, __ATOMIC_RELAXED),
		  .uaddr = (uintptr_t)rl->word, .flags = FUTEX_32 },
	};

	return syscall(SYS_futex_waitv, v, ring ? 2 : 1, 0, NULL, 0);
}

static void *relay_thread(void *arg)
{
	struct ring_relay *rl = arg;
	uint32_t seen = 0, req;
	uint64_t one = 1;
	long n;

	/*
	 * Not io->stop: a stopping sender still drains its acks, and hands
	 * its waits over until its end, when ring_relay_stop() quits us.
	 */
	for (;;) {
		/* Acquire: pairs with the hand-off's release; val is its. */
		req = __atomic_load_n(&rl->req, __ATOMIC_ACQUIRE);
		if (req & 1)
			break;
		n = relay_waitv(rl, req != seen, req);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			/*
			 * ENOSYS, EPERM from seccomp: the owner looks on a
			 * timer from now on; its wait in hand ends now.
			 */
			__atomic_store_n(&rl->broken, true, __ATOMIC_RELAXED);
			__atomic_store_n(&rl->io->no_waitv, true,
					 __ATOMIC_RELAXED);
			/* Non-blocking: a full counter is readable too. */
			(void)!write(rl->efd, &one, sizeof(one));
			break;
		}
		/* Acquire, as above: a newer hand-off's value is taken next. */
		if (req == seen ||
		    __atomic_load_n(&rl->req, __ATOMIC_ACQUIRE) != req)
			continue; /* idle, or a newer value to wait on */
		seen = req;
		if (write(rl->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			__atomic_store_n(&rl->broken, true, __ATOMIC_RELAXED);
	}
	return NULL;
}

/*
 * Hand the relay the sender's prepared wait @w (on a shared ring):
 * when the word moves, @efd becomes readable. Starts the relay on first
 * use. false where it cannot run (no futex_waitv(2), no thread): the
 * caller then looks at the ring on a timer.
 */
bool ring_relay_hand(struct ring_relay *rl, struct bring_io *io,
		     const struct bring_wait *w, int efd)
{
	if (__atomic_load_n(&rl->broken, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&io->no_waitv, __ATOMIC_RELAXED))
		return false;
	if (!rl->on) {
		rl->io = io;
		rl->word = w->uaddr;
		rl->efd = efd;
		if (pthread_create(&rl->th, NULL, relay_thread, rl)) {
			rl->broken = true;
			return false;
		}
		rl->on = true;
	}
	if (w->uaddr != rl->word)
		return false; /* one ring, one word: cannot happen */
	__atomic_store_n(&rl->val, w->val, __ATOMIC_RELAXED);
	/* Release: the value before the request that hands it over. */
	__atomic_fetch_add(&rl->req, 2, __ATOMIC_RELEASE);
	syscall(SYS_futex, &rl->req, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	return true;
}

void ring_relay_stop(struct ring_relay *rl)
{
	if (!rl->on)
		return;
	/* Release: nothing to order; the relay's wait includes req. */
	__atomic_fetch_or(&rl->req, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &rl->req, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	pthread_join(rl->th, NULL);
	rl->on = false;
}

/*
 * The ring has no room for the c->need bytes @c holds: wait for it,
 * counted as a full wait. false to give up, which only a stop does: a
 * source stopped while the ring is full still pushes what it has read
 * as long as readers free space, and gives up once the ring has stayed
 * full for IO_STOP_STALL_MS (a reader that reads no more).
 */
static bool wait_space(struct bring_io *io, struct conn *c)
{
	struct bring_wait w;
	bool more = true;
	uint64_t t0;
	int ret;

	ret = conn_space_wait_prepare(c, &w);
	if (ret)
		return ret > 0; /* fits now, or closed: the retry tells */
	io_stat_add(io, full_waits, 1);
	t0 = io_now_ns();
	/* After a stop: nobody freeing space for that long, give up. */
	if (stopped(io))
		more = ring_word_wait(&w, IO_STOP_STALL_MS) != -ETIMEDOUT;
	else
		fallback_wait_ring(io, &w, 0);
	bring_write_wait_finish(io->r, &w);
	io_stat_add(io, full_wait_ns, io_now_ns() - t0);
	return more;
}

/*
 * conn_push(), waiting for space while the io runs: 0, -EAGAIN (stopped
 * while the ring was full), -EPIPE (closed) or another -errno.
 */
static int push_waiting(struct bring_io *io, struct conn *c, bool final)
{
	int ret;

	while ((ret = conn_push(c, final, 0)) == -EAGAIN && wait_space(io, c))
		;
	return ret;
}

/* Push what is staged; false (said, unless the ring closed) on failure. */
static bool push_or_fail(struct bring_io *io, struct conn *c)
{
	int ret = push_waiting(io, c, false);

	if (ret)
		io_ring_error(io, c, ret);
	return !ret;
}

/* @c is done: what it staged and did not push is dropped, counted. */
static void conn_end(struct conn *c)
{
	conn_drop_staged(c);
	source_conn_gone(c);
	conn_free(c);
}

/* udp-listen: every datagram waiting, then one push; false at the end. */
static bool conn_read_dgrams(struct bring_io *io, struct conn *c)
{
	int err = conn_recv_dgrams(c);

	if (err && err != -ENOBUFS && err != -ENOMEM) {
		io_log("%s: read: %s\n", c->src->ep.uri, strerror(-err));
		push_waiting(io, c, true);
		return false;
	}
	return push_or_fail(io, c);
}

/*
 * Read once from @c into its staging buffer or a reservation: the bytes
 * read, 0 at its end, or -errno (-EPIPE: the reservation failed).
 */
static ssize_t conn_read_once(struct bring_io *io, struct conn *c)
{
	ssize_t n;
	int ret, err;

	ret = conn_resv_read(c) ? conn_resv_begin(c, 0) : 1;
	while (ret == -EAGAIN && wait_space(io, c))
		ret = conn_resv_begin(c, 0);
	if (ret < 0) {
		io_ring_error(io, c, ret);
		return -EPIPE;
	}
	if (ret == IO_RESV_POLL)
		return -EAGAIN; /* nothing waits after all */
	if (ret == IO_RESV_EOF)
		return 0;
	if (!ret) {
		char *at = (char *)c->resv.data + c->carry;
		size_t len = c->resv.len - c->carry;

		if (c->sock)
			n = recv(c->fd, at, len, MSG_DONTWAIT);
		else
			n = read(c->fd, at, len);
		err = errno;
		conn_resv_done(c, n);
	} else {
		char *at;
		size_t room;

		while ((ret = conn_stage_slot(c, &at, &room)) == -EAGAIN &&
		       wait_space(io, c))
			;
		if (ret) {
			io_ring_error(io, c, ret);
			return -EPIPE;
		}
		if (c->sock)
			n = recv(c->fd, at, room, MSG_DONTWAIT);
		else
			n = read(c->fd, at, room);
		err = errno;
		if (n > 0)
			c->len += n;
	}
	if (n < 0)
		return -err;
	if (n > 0) {
		io_stat_add(io, reads, 1);
		conn_stat_add(c, bytes_in, n);
		if (io->o.idle_ms)
			c->last_ns = io_now_ns();
	}
	return n;
}

/* Read once from @c; false when it is finished. */
static bool conn_read(struct bring_io *io, struct conn *c)
{
	ssize_t n;

	if (c->dgram)
		return conn_read_dgrams(io, c);
	c->polled = true; /* poll(2) said so: see conn_read_want() */
	n = conn_read_once(io, c);
	if (n == -EAGAIN || n == -EINTR)
		return true;
	if (n == -EPIPE && conn_resv_read(c))
		return false;
	if (n < 0 && c->src->finite) {
		io_log("%s: read: %s\n", c->src->ep.uri, strerror(-n));
		io_set_err(io, n);
	}
	if (n <= 0) {
		push_waiting(io, c, true);
		return false;
	}
	return push_or_fail(io, c);
}

/*
 * tail: read the followed file to its end, past truncations and
 * rotations; 0 when it waits for an inotify event (or stop), or -errno.
 */
static int tail_pump(struct bring_io *io, struct conn *c)
{
	ssize_t n;
	int ret;

	while (!stopped(io)) {
		if (c->tail_eof) {
			while ((ret = tail_check(c, 0)) == -EAGAIN &&
			       wait_space(io, c))
				;
			if (ret < 0 || ret == TAIL_WAIT)
				return ret < 0 ? ret : 0;
			c->tail_eof = false;
		}
		n = conn_read_once(io, c);
		if (n == -EAGAIN || n == -EINTR)
			continue;
		if (n < 0)
			return n;
		if (!n)
			c->tail_eof = true;
		else if ((ret = push_waiting(io, c, false)))
			return ret;
	}
	return 0;
}

/* A tail:PATH source: poll(2) the stop eventfd and the inotify fd. */
static void *tail_thread(void *arg)
{
	struct source *src = arg;
	struct bring_io *io = src->io;
	struct tail *t = src->tail;
	struct conn *c = src->conns;
	struct pollfd pfd[2] = {
		{ .fd = io->wake_fd, .events = POLLIN },
		{ .fd = t->ifd, .events = POLLIN },
	};
	bool look = true;
	ssize_t n;
	int ret;

	while (!stopped(io)) {
		ret = look ? tail_pump(io, c) : 0;
		if (ret == -EAGAIN || ret == -EPIPE)
			break; /* stopped with the ring full, or it closed */
		if (ret < 0) {
			io_log("%s: %s\n", src->ep.uri, strerror(-ret));
			io_set_err(io, ret);
			push_waiting(io, c, true);
			break;
		}
		if (stopped(io))
			break;
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		look = false;
		if (pfd[1].revents & POLLIN) {
			n = read(t->ifd, t->evbuf, sizeof(t->evbuf));
			look = n > 0 && tail_events(src, n);
		}
	}
	/* Stopped: complete messages go in while the ring drains. */
	push_waiting(io, c, false);
	conn_drop_staged(c);
	__atomic_store_n(&src->finished, true, __ATOMIC_RELAXED); /* stats */
	return NULL;
}

/* poll(2)'s timeout: twice per idle_ms when idle connections close. */
static int idle_poll_ms(const struct source *src)
{
	unsigned int ms = src->io->o.idle_ms;

	if (!ms || src->lfd < 0)
		return -1;
	return ms / 2 ? (int)(ms / 2) : 1;
}

static void *source_thread(void *arg)
{
	struct source *src = arg;
	struct bring_io *io = src->io;
	struct pollfd *pfd = NULL;
	uint64_t accept_at = 0, now; /* out of fds: not before then */
	struct conn *c, **pp;
	unsigned int nr, i;
	int fd, ms;

	for (;;) {
		nr = 2;
		for (c = src->conns; c; c = c->next)
			nr++;
		free(pfd);
		pfd = calloc(nr, sizeof(*pfd));
		if (!pfd)
			break;
		pfd[0] = (struct pollfd){ .fd = io->wake_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = src->lfd, .events = POLLIN };
		for (i = 2, c = src->conns; c; c = c->next, i++)
			pfd[i] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
		if (!src->conns && src->lfd < 0)
			break;
		now = io_now_ns();
		ms = now < accept_at ? (int)((accept_at - now) / 1000000) + 1 : -1;
		if (ms >= 0)
			pfd[1].fd = -1; /* pausing accepts */
		if (ms < 0 || (idle_poll_ms(src) >= 0 && idle_poll_ms(src) < ms))
			ms = idle_poll_ms(src);
		if (poll(pfd, nr, ms) < 0 && errno != EINTR)
			break;
		if (stopped(io) || (pfd[0].revents & POLLIN))
			break;
		if (pfd[1].revents & POLLIN) {
			fd = accept4(src->lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0) {
				source_accepted(src, fd);
				continue; /* pfd no longer matches */
			}
			ms = source_accept_failed(src, -errno);
			if (ms)
				accept_at = io_now_ns() + ms * 1000000ULL;
		}
		for (i = 2, pp = &src->conns; (c = *pp); i++) {
			if (stopped(io))
				break; /* nothing more is read */
			if ((pfd[i].revents && !conn_read(io, c)) ||
			    (!pfd[i].revents && conn_idle(c, io_now_ns()))) {
				*pp = c->next;
				conn_end(c);
				continue;
			}
			pp = &c->next;
		}
	}
	/* Stopped: complete messages go in while the ring drains. */
	while ((c = src->conns)) {
		src->conns = c->next;
		push_waiting(io, c, false);
		conn_end(c);
	}
	if (src->lfd >= 0)
		close(src->lfd);
	src->lfd = -1;
	free(pfd);
	__atomic_store_n(&src->finished, true, __ATOMIC_RELAXED); /* stats */
	return NULL;
}

/* A socket sink failed: close it; the send loop connects again. */
static void sink_fail(struct sink *s, int err)
{
	if (err == -ETIMEDOUT) /* SO_SNDTIMEO or TCP_USER_TIMEOUT */
		sink_stat_add(s, send_timeouts, 1);
	if (!(s->io->o.flags & BRING_IO_QUIET))
		io_log("%s: %s; reconnecting\n", s->ep.uri, strerror(-err));
	close(s->fd);
	s->fd = -1;
	s->down = true;
	sink_set_state(s, BRING_IO_RECONNECTING, err);
	s->said_ns = io_now_ns();
	s->backoff_ms = IO_BACKOFF_MIN_MS;
}

/*
 * A write failed with @err: a file: sink waits (a stop ends the wait)
 * and opens its file again, as often as it takes; false when it cannot
 * go on (io_fatal() said why).
 */
static bool sink_retry_wait(struct sink *s, int err)
{
	struct pollfd p = { .fd = s->io->wake_fd, .events = POLLIN };
	unsigned int ms;

	for (;;) {
		ms = sink_write_failed(s, err);
		if (!ms) {
			io_fatal(s->io, s, err);
			return false;
		}
		poll(&p, 1, ms); /* wake_fd stays readable once stopped */
		err = sink_retry(s);
		if (!err)
			return true;
		if (err == -ECANCELED)
			return false;
	}
}

/*
 * A socket sink that is down: wait its backoff (a stop ends the wait)
 * and connect again. false when it gave up (stopping).
 */
static bool sink_reconnect(struct sink *s)
{
	struct pollfd p = { .fd = s->io->wake_fd, .events = POLLIN };
	struct bring_io *io = s->io;

	if (!stopped(io))
		poll(&p, 1, s->backoff_ms); /* wake_fd: readable once stopped */
	if (stopped(io)) {
		sink_give_up(s, -ENOTCONN);
		return false;
	}
	s->fd = ep_connect(&s->ep);
	if (s->fd < 0) {
		sink_connect_failed(s, s->fd); /* state, one line per window */
		sink_next_backoff(s);
		return true;
	}
	sink_sock_opts(s);
	sink_connected(s); /* says so, counts a reconnect, state up */
	sink_rewind(s);
	return true;
}

static void *sink_thread(void *arg)
{
	struct sink *s = arg;
	struct bring_io *io = s->io;
	ssize_t n;
	int ret;

	for (;;) {
		ret = sink_fill(s, -1);
		if (ret == -EPIPE)
			break;
		if (ret < 0) {
			io_fatal(io, s, ret);
			return NULL;
		}
		ret = s->down ? 0 : sink_peer_gone(s);
		if (ret)
			sink_fail(s, ret);
again:
		while (s->left || s->down) {
			if (s->down && !sink_reconnect(s))
				return NULL;
			if (s->down)
				continue;
			if (s->dgram) {
				ret = sink_send_dgrams(s, 0);
				if (ret && ret != -EINTR && ret != -EAGAIN)
					sink_fail(s, ret);
				continue;
			}
			if (s->sock) {
				s->mh.msg_iov = s->iov + s->iov_pos;
				s->mh.msg_iovlen = s->niov - s->iov_pos;
				n = sendmsg(s->fd, &s->mh, MSG_NOSIGNAL);
			} else {
				n = writev(s->fd, s->iov + s->iov_pos,
					   s->niov - s->iov_pos);
			}
			if (n < 0 && errno == EAGAIN && s->sock) {
				/* SO_SNDTIMEO: no byte taken for that long */
				sink_fail(s, -ETIMEDOUT);
				continue;
			}
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n < 0 && s->sock) {
				sink_fail(s, -errno);
				continue;
			}
			if (n < 0 && !sink_retry_wait(s, -errno))
				return NULL;
			if (n < 0)
				continue;
			io_stat_add(io, writes, 1);
			sink_advance(s, n);
			if (s->left)
				io_stat_add(io, short_writes, 1);
		}
		/* After a FIN: shift once the peer acknowledged the batch. */
		while ((ret = sink_unacked(s)) > 0)
			usleep(IO_ACKWAIT_MS * 1000);
		if (ret < 0) {
			sink_fail(s, ret);
			goto again;
		}
		sink_batch_done(s);
	}
	s->done = true;
	sink_set_state(s, BRING_IO_DONE, 0);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	return NULL;
}

/*
 * Fault injection for the selftests: when n > 0, the n-th thread start
 * from now fails with EAGAIN and leaves garbage in its pthread_t, as a
 * failed pthread_create() may (POSIX leaves it unspecified).
 */
int bring_io__fault_thread;

static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	if (__atomic_load_n(&bring_io__fault_thread, __ATOMIC_RELAXED) > 0 &&
	    !__atomic_sub_fetch(&bring_io__fault_thread, 1, __ATOMIC_RELAXED)) {
		memset(t, 0x5a, sizeof(*t));
		return EAGAIN;
	}
	return pthread_create(t, NULL, fn, arg);
}

/*
 * One thread per sink, then one per source; *@nsink and *@nsrc count
 * those that run. Returns 0 or the -errno of the first that could not
 * start (said once, with its endpoint); none is started after it.
 */
static int start_threads(struct bring_io *io, unsigned int *nsink,
			 unsigned int *nsrc)
{
	const char *uri = NULL;
	struct source *src;
	int err = 0;

	for (; *nsink < io->nr_sinks; (*nsink)++) {
		err = start_thread(&io->sinks[*nsink]->thread,
				   io->sinks[*nsink]->kafka ? kafka_sink_thread :
							      sink_thread,
				   io->sinks[*nsink]);
		if (err) {
			uri = io->sinks[*nsink]->ep.uri;
			goto fail;
		}
	}
	for (; *nsrc < io->nr_srcs; (*nsrc)++) {
		src = io->srcs[*nsrc];
		if (src->hop)
			continue; /* hop.c runs bring-listen: */
		err = start_thread(&src->thread,
				   src->kafka ? kafka_source_thread :
				   src->tail  ? tail_thread :
						source_thread,
				   src);
		if (err) {
			uri = src->ep.uri;
			goto fail;
		}
	}
	return 0;
fail:
	io_log("%s: cannot start a thread: %s\n", uri, strerror(err));
	return -err;
}

int io_run_fallback(struct bring_io *io)
{
	unsigned int i, nsrc = 0, nsink = 0;
	sigset_t all, old;
	struct pollfd pfd;
	int err;

	/*
	 * The threads block every signal (they inherit the mask): a stop
	 * signal is handled by the caller's thread, waiting in pthread_join(),
	 * not by one blocked in a futex wait of the ring.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = start_threads(io, &nsink, &nsrc);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		/* The sources that run stop; the sinks drain the ring. */
		io_set_err(io, err);
		bring_io_stop(io);
	}
	/* Without sources that end (or with a bring-listen:): until a stop. */
	if (!io->nr_srcs || io->nr_hop_srcs) {
		pfd = (struct pollfd){ .fd = io->wake_fd, .events = POLLIN };
		while (!stopped(io))
			poll(&pfd, 1, -1);
	}
	/* Exactly the threads that were started. */
	for (i = 0; i < nsrc; i++)
		if (!io->srcs[i]->hop)
			pthread_join(io->srcs[i]->thread, NULL);
	bring_close(io->r);
	io->closed = true;
	for (i = 0; i < nsink; i++)
		pthread_join(io->sinks[i]->thread, NULL);
	return io->err;
}
