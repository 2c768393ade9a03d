// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * The acknowledged hop: bring:HOST:PORT sinks and bring-listen:HOST:PORT
 * sources (Documentation/protocol.rst specifies the bytes).
 *
 * Sender (in io_uring mode a state machine in the io_uring loop, see
 * "sender in the io_uring loop" below; in readv/writev mode one thread
 * per bring: sink, a non-blocking socket and poll(2); the same steps):
 *
 *   ring:  [acked, shifted | sent, not acked | peeked, not sent | ...]
 *                          ^ reader's cursor ^ msgs[nsent]      ^ msgs[n]
 *
 * It peeks from its reader's cursor (msgs[0] is the oldest message not
 * acknowledged), sends DATA frames straight from ring memory while the
 * bytes sent and not acknowledged stay within the window, and shifts a
 * prefix only when an ACK covers it: peek(k) hands out exactly the first
 * k messages again, and shift removes them. On every (re)connect the
 * receiver's WELCOME says where the stream is committed; everything
 * below is shifted, everything from there sent again.
 *
 * Receiver (in io_uring mode a state machine per connection in the
 * io_uring loop, see "receiver in the io_uring loop"; in readv/writev
 * mode a thread per bring-listen: source accepting and one per
 * connection; the same steps): each stream is a named writer of the
 * ring, whose mark is (epoch, offset). A DATA frame's payload is received into a ring
 * reservation and committed with bring_writer_commit() together with the
 * frame's end offset, so record and offset are in the ring together or
 * not at all; the ACK that follows (once durable, for durability
 * interval/always) is what lets the sender shift. Exactly once per hop,
 * whichever side is killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "hop.h"
#include "io.h"

#define HOP_WINDOW_DEFAULT (8U << 20)
#define HOP_HB_DEFAULT 1000
#define HOP_DEAD_FACTOR 3 /* heartbeats missed before a peer is dead */
#define HOP_TX_MSGS 65536 /* messages a sender holds peeked at most */
#define HOP_TX_FRAMES 256 /* frames per sendmsg(), lines: records per frame */
#define HOP_FRAME_BYTES (1U << 20) /* lines: payload packed per frame */
#define HOP_STOP_GIVEUP_MS 2000 /* stopping: no ack progress this long */
#define HOP_RX_BUF (64U << 10)
#define HOP_OBUF 4096
#define HOP_PEND 256 /* receiver: committed frames waiting to be durable */
#define HOP_BIND_RETRY_MS 3000 /* receiver: its port in use, try this long */

static const char newline = '\n';

/* ---- shared ---------------------------------------------------------- */

static bool hop_stopped(struct bring_io *io)
{
	return __atomic_load_n(&io->stop, __ATOMIC_RELAXED);
}

static unsigned int hop_hb_ms(const struct bring_io *io)
{
	return io->o.hop_heartbeat_ms ? io->o.hop_heartbeat_ms : HOP_HB_DEFAULT;
}

static void drain_fd(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) > 0)
		;
}

static void peer_name(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (!getpeername(fd, (struct sockaddr *)&ss, &len)) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
			port = ntohs(a->sin6_port);
		} else if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
			port = ntohs(a->sin_port);
		}
	}
	snprintf(buf, size, "%s:%d", host, port);
}

/* ---- sender ----------------------------------------------------------- */

struct hop_tx {
	struct sink *s;
	char id[HOP_ID_MAX + 1];
	uint64_t epoch;
	uint16_t flags;
	int fd; /* -1 while down */
	int nfd; /* bring_notify_fd(): new messages */
	/* readv/writev mode, shared ring: other processes' pushes, to nfd */
	struct ring_relay relay;
	size_t window;
	unsigned int hb_ms, dead_ms;
	uint32_t max_frame;
	/* msgs[0..n) peeked from the cursor; [0..nsent) queued or sent */
	struct bring_msg *msgs;
	unsigned int n, nsent;
	size_t sent_bytes; /* payload bytes of msgs[0..nsent) */
	uint64_t sent_end; /* end offset of the last frame queued */
	uint64_t acked_hi; /* the highest offset ever acknowledged */
	uint64_t resend_below; /* messages below were sent before: resends */
	/* the batch being sent: frames' headers and payloads */
	struct iovec iov[2 * HOP_TX_FRAMES + 1];
	uint8_t hdr[HOP_TX_FRAMES][HOP_HDR + 8];
	int niov, iov_pos;
	size_t left;
	/* acknowledgements and heartbeats coming back */
	uint8_t rbuf[HOP_ERROR_BUF + 64];
	size_t rlen;
	uint64_t last_rx, last_tx, last_progress;
	unsigned int backoff_ms;
	/*
	 * bring_reader_wait_more_prepare() said "no need to wait" and the
	 * next peek found nothing new to send: the ring is closed (or the
	 * record past the held ones is damaged, or the peek is full). Wait
	 * for acks only until a peek finds new messages.
	 */
	bool more_was_ready;
	bool said_down, connected_once, started;
	char said[160]; /* the last reason logged, said once per change */
	/*
	 * io_uring mode (txu_*): the loop's thread runs this sender. One op
	 * of each kind in flight: snd (SENDMSG of a control frame from xbuf
	 * or of the batch from ring memory), rcv (RECV into rbuf), cn
	 * (CONNECT), tm (TIMEOUT: backoff, heartbeats, deadlines); the data
	 * wait is the sink's rw_op.
	 */
	struct loop *l;
	struct op snd_op, rcv_op, cn_op, tm_op;
	enum { TXU_DOWN, TXU_CONNECTING, TXU_HELLO, TXU_UP, TXU_CLOSING,
	       TXU_DONE } st;
	struct msghdr mh;
	struct iovec xiov;
	uint8_t xbuf[HOP_HELLO_BUF]; /* HELLO or PING, xbuf[xoff..xlen) */
	size_t xlen, xoff;
	bool xsend; /* the send in flight is from xbuf */
	struct __kernel_timespec ts;
	uint64_t reconnect_at, conn_t0, stop_t0;
};

static void tx_log(struct hop_tx *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void tx_log(struct hop_tx *t, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	io_log("%s: %s\n", t->s->ep.uri, line);
}

static void tx_down(struct hop_tx *t, const char *why)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->rlen = 0;
	t->left = 0;
	t->niov = t->iov_pos = 0;
	t->nsent = 0;
	t->sent_bytes = 0;
	if (why && strcmp(why, t->said) &&
	    !(t->s->io->o.flags & BRING_IO_QUIET))
		tx_log(t, "%s; reconnecting", why);
	if (why)
		snprintf(t->said, sizeof(t->said), "%s", why);
	t->said_down = true;
	/* No errno here (why is a sentence): last_err keeps the last one. */
	sink_set_state(t->s, BRING_IO_RECONNECTING, 0);
	if (!t->backoff_ms)
		t->backoff_ms = IO_BACKOFF_MIN_MS;
}

/* A bad answer: said (always), counted, the connection closed. */
static void tx_reject(struct hop_tx *t, const char *why)
{
	io_stat_add(t->s->io, hop_rejected, 1);
	if (strcmp(why, t->said))
		tx_log(t, "%s; connection closed", why);
	snprintf(t->said, sizeof(t->said), "%s", why);
	tx_down(t, NULL);
}

/* Write all of a small frame on a blocking-with-timeout socket. */
static int send_all(int fd, const void *buf, size_t len, int ms)
{
	const char *p = buf;
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (poll(&pfd, 1, ms) == 0)
			return -ETIMEDOUT;
	}
	return 0;
}

/* Read one whole non-DATA frame within @ms: 0, or -errno / -EPROTO. */
static int tx_read_frame(struct hop_tx *t, struct hop_frame *f, int ms,
			 char *why, size_t why_len)
{
	struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
	uint64_t until = io_now_ns() + (uint64_t)ms * 1000000ULL, now;
	ssize_t n;
	int ret;

	for (;;) {
		ret = hop_parse(t->rbuf, t->rlen, 0, f, why, why_len);
		if (ret > 0) {
			memmove(t->rbuf, t->rbuf + ret, t->rlen - (size_t)ret);
			t->rlen -= (size_t)ret;
			return 0;
		}
		if (ret < 0)
			return ret;
		now = io_now_ns();
		if (now >= until)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)((until - now) / 1000000ULL) + 1) < 0 &&
		    errno != EINTR)
			return -errno;
		n = recv(t->fd, t->rbuf + t->rlen, sizeof(t->rbuf) - t->rlen,
			 MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (n > 0)
			t->rlen += (size_t)n;
	}
}

/* Messages in msgs[0..k): lines count one each (chunk records hold many). */
static uint64_t tx_count(struct hop_tx *t, unsigned int k)
{
	uint64_t n = 0, lines;
	unsigned int i;

	if (!(t->flags & HOP_F_LINES))
		return k;
	for (i = 0; i < k; i++) {
		if (ledger_take(t->s->io, t->msgs[i].seq, &lines))
			n += lines;
		else
			n += count_nl(t->msgs[i].data, t->msgs[i].len) + 1;
	}
	return n;
}

/*
 * Shift the messages the receiver has below @off: the first k of
 * msgs[0..n) are peeked again (exactly those) and shifted. Returns the
 * number shifted.
 */
static unsigned int tx_shift_below(struct hop_tx *t, uint64_t off)
{
	unsigned int k = 0, i;
	uint64_t lines;
	int ret;

	while (k < t->n && t->msgs[k].seq < off)
		k++;
	if (!k)
		return 0;
	/* Counted while they are ours: after the shift writers reuse them. */
	lines = tx_count(t, k);
	ret = bring_reader_peek(t->s->rd, t->msgs, k, 0, 0);
	if (ret != (int)k || bring_reader_shift(t->s->rd)) {
		/* Cannot happen: nothing else moves this reader. */
		io_fatal(t->s->io, t->s, ret < 0 ? ret : -EIO);
		return 0;
	}
	for (i = 0; i < k && i < t->nsent; i++)
		t->sent_bytes -= t->msgs[i].len;
	sink_stat_add(t->s, msgs_out, lines);
	memmove(t->msgs, t->msgs + k, (t->n - k) * sizeof(*t->msgs));
	t->n -= k;
	t->nsent = t->nsent > k ? t->nsent - k : 0;
	return k;
}

/*
 * Every held message sent: may the sender wait for messages past them
 * (bring_reader_wait_more_prepare()) as well as for acks? Not when the
 * window is full, nor when the last peek could hold no more messages:
 * more are there, and only acks make room for them. Before, a sender
 * with acks pending peeked again on a tick (1 to 50 ms): new messages
 * waited for it.
 */
static bool tx_may_wait_more(const struct hop_tx *t)
{
	return t->sent_bytes < t->window && t->n < HOP_TX_MSGS &&
	       !t->more_was_ready;
}

/*
 * Peek again from the cursor: msgs[0..nsent) come back as they were,
 * plus what arrived since, up to about the window. 0, -EAGAIN (nothing
 * at all), -EPIPE (closed and all shifted) or -errno.
 */
static int tx_refill(struct hop_tx *t)
{
	int ret = bring_reader_peek(t->s->rd, t->msgs, HOP_TX_MSGS,
				    t->window + t->max_frame, 0);

	if (ret < 0) {
		t->n = 0;
		t->more_was_ready = false; /* nothing held */
		return ret;
	}
	t->n = (unsigned int)ret;
	if (t->n > t->nsent)
		t->more_was_ready = false; /* new messages: wait for more again */
	return 0;
}

/*
 * Shift everything the receiver has (below @c), walking the ring from
 * the cursor in slices: after a restart nothing is peeked yet. Offsets
 * of this epoch are positions in this ring, so a @c past its last
 * message was never sent from here: -EPROTO, and nothing is shifted
 * (checked wherever the ring's end is in sight, i.e. unless more than
 * HOP_TX_MSGS messages are held).
 */
static int tx_catch_up(struct hop_tx *t, uint64_t c)
{
	int ret;

	for (;;) {
		ret = bring_reader_peek(t->s->rd, t->msgs, HOP_TX_MSGS, 0, 0);
		t->n = ret > 0 ? (unsigned int)ret : 0;
		if (!t->n)
			return 0;
		if (t->n < HOP_TX_MSGS && c > t->msgs[t->n - 1].seq + 1)
			return -EPROTO;
		if (!tx_shift_below(t, c) || t->n)
			return 0; /* a message at or past c is there */
	}
}

static int tx_connect_fd(struct hop_tx *t)
{
	int fd, one = 1, err;
	struct pollfd pfd;

	fd = socket(t->s->ep.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
						     SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&t->s->ep.addr, t->s->ep.addrlen) &&
	    errno != EINPROGRESS) {
		err = -errno;
		goto fail;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&pfd, 1, (int)t->dead_ms) <= 0) {
		err = -ETIMEDOUT;
		goto fail;
	}
	{
		socklen_t len = sizeof(err);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			err = err ? -err : -errno;
			goto fail;
		}
	}
	/* Connected to itself: refused (see ep_refuse_self_connect()). */
	if (ep_refuse_self_connect(fd)) {
		err = -ECONNREFUSED;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return err;
}

/*
 * The receiver's first answer @f: a WELCOME says where the stream goes
 * on from. 0 when it does (the stream is up), or -EPROTO (said, down).
 */
static int tx_welcome(struct hop_tx *t, const struct hop_frame *f)
{
	struct bring_io *io = t->s->io;
	char line[HOP_ERROR_MAX + 64];

	if (f->type == HOP_ERROR) {
		snprintf(line, sizeof(line), "refused: %s", f->text);
		tx_reject(t, line);
		return -EPROTO;
	}
	if (f->type != HOP_WELCOME) {
		snprintf(line, sizeof(line),
			 "not a bring-listen: peer (frame type %u before WELCOME)",
			 f->type);
		tx_reject(t, line);
		return -EPROTO;
	}
	if (f->offset < t->acked_hi) {
		tx_log(t, "the receiver is at offset %llu, but acknowledged %llu before: it lost what it had acknowledged (its ring was made again, or lost to a power failure without durability)",
		       (unsigned long long)f->offset,
		       (unsigned long long)t->acked_hi);
	}
	if (tx_catch_up(t, f->offset)) {
		snprintf(line, sizeof(line),
			 "the receiver says offset %llu, past the end of this ring: an offset from the future",
			 (unsigned long long)f->offset);
		tx_reject(t, line);
		return -EPROTO;
	}
	if (f->offset > t->acked_hi)
		t->acked_hi = f->offset;
	t->max_frame = f->max_frame;
	t->sent_end = f->offset;
	t->nsent = 0;
	t->sent_bytes = 0;
	t->last_rx = t->last_tx = t->last_progress = io_now_ns();
	if ((t->said_down || !t->connected_once) &&
	    !(io->o.flags & BRING_IO_QUIET))
		tx_log(t, "connected, stream '%s' goes on from offset %llu",
		       t->id, (unsigned long long)f->offset);
	if (t->connected_once)
		sink_stat_add(t->s, reconnects, 1);
	sink_set_state(t->s, BRING_IO_UP, 0);
	t->connected_once = true;
	t->said_down = false;
	t->said[0] = '\0';
	t->backoff_ms = 0;
	return 0;
}

static size_t tx_hello(struct hop_tx *t, void *buf)
{
	return hop_put_hello(buf, t->flags, t->epoch, (uint32_t)t->window,
			     (uint32_t)t->s->io->max_msg, t->id);
}

/* Connect, HELLO, WELCOME; 0 when the stream goes on from there. */
static int tx_connect(struct hop_tx *t)
{
	uint8_t hello[HOP_HELLO_BUF];
	struct hop_frame f;
	char why[HOP_ERROR_MAX], line[HOP_ERROR_MAX + 64];
	size_t len;
	int ret;

	ret = tx_connect_fd(t);
	if (ret < 0) {
		snprintf(line, sizeof(line), "connect: %s", strerror(-ret));
		tx_down(t, line);
		return ret;
	}
	t->fd = ret;
	len = tx_hello(t, hello);
	ret = send_all(t->fd, hello, len, (int)t->dead_ms);
	if (!ret)
		ret = tx_read_frame(t, &f, (int)t->dead_ms, why, sizeof(why));
	if (ret == -EPROTO) {
		tx_reject(t, why);
		return ret;
	}
	if (ret) {
		snprintf(line, sizeof(line), "handshake: %s",
			 ret == -ECONNRESET ? "connection closed by the peer" :
					      strerror(-ret));
		tx_down(t, line);
		return ret;
	}
	return tx_welcome(t, &f);
}

/*
 * Lay out the next frames from msgs[nsent..) while the window has room.
 * lines: records joined by '\n' into frames of up to HOP_FRAME_BYTES;
 * other framings: one record, one frame. A record larger than the
 * receiver takes stays where it is: said, and the stream waits.
 */
static void tx_build(struct hop_tx *t)
{
	bool lines = t->flags & HOP_F_LINES;
	size_t limit = t->max_frame < HOP_FRAME_BYTES ? t->max_frame :
							HOP_FRAME_BYTES;
	unsigned int f = 0, i, first;
	int v = 0, hv;

	t->niov = t->iov_pos = 0;
	t->left = 0;
	while (f < HOP_TX_FRAMES && t->nsent < t->n) {
		size_t payload = 0;

		first = t->nsent;
		if (t->nsent && t->sent_bytes + t->msgs[first].len > t->window)
			break;
		if (t->msgs[first].len > t->max_frame) {
			if (!f && strcmp(t->said, "too large")) {
				tx_log(t, "a message of %zu bytes is larger than the receiver's max_msg %u: the stream waits for it",
				       t->msgs[first].len, t->max_frame);
				snprintf(t->said, sizeof(t->said), "too large");
			}
			break;
		}
		hv = v++; /* the frame's header */
		for (i = first; i < t->n; i++) {
			size_t add = t->msgs[i].len + (i > first);

			if (i > first &&
			    (!lines || payload + add > limit ||
			     i - first >= HOP_TX_FRAMES - 1 ||
			     v + 2 > (int)(sizeof(t->iov) / sizeof(t->iov[0])) ||
			     t->sent_bytes + payload + add > t->window))
				break;
			if (i > first) {
				t->iov[v].iov_base = (void *)&newline;
				t->iov[v++].iov_len = 1;
			}
			t->iov[v].iov_base = (void *)t->msgs[i].data;
			t->iov[v++].iov_len = t->msgs[i].len;
			payload += add;
			t->sent_bytes += t->msgs[i].len;
		}
		t->nsent = i;
		t->sent_end = t->msgs[i - 1].seq + 1;
		if (t->msgs[first].seq < t->resend_below)
			io_stat_add(t->s->io, hop_resent, i - first);
		hop_put_offset(t->hdr[f], HOP_DATA, t->sent_end,
			       (uint32_t)payload);
		t->iov[hv].iov_base = t->hdr[f];
		t->iov[hv].iov_len = HOP_HDR + 8;
		t->left += HOP_HDR + 8 + payload;
		f++;
		if (v + 3 > (int)(sizeof(t->iov) / sizeof(t->iov[0])))
			break;
	}
	t->niov = v;
	if (f)
		io_stat_add(t->s->io, hop_frames, f);
	if (t->sent_end > t->resend_below)
		t->resend_below = t->sent_end;
}

static void tx_advance(struct hop_tx *t, size_t n)
{
	t->left -= n;
	while (n && t->iov_pos < t->niov) {
		struct iovec *v = &t->iov[t->iov_pos];

		if (n < v->iov_len) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
			return;
		}
		n -= v->iov_len;
		t->iov_pos++;
	}
	while (!t->left && t->iov_pos < t->niov && !t->iov[t->iov_pos].iov_len)
		t->iov_pos++;
}

/* Send what the batch has left without blocking: 0 or -errno. */
static int tx_send(struct hop_tx *t)
{
	struct msghdr mh = { 0 };
	ssize_t n;

	while (t->left) {
		mh.msg_iov = t->iov + t->iov_pos;
		mh.msg_iovlen = (size_t)(t->niov - t->iov_pos);
		n = sendmsg(t->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		io_stat_add(t->s->io, writes, 1);
		sink_stat_add(t->s, bytes_out, n);
		t->last_tx = io_now_ns();
		tx_advance(t, (size_t)n);
	}
	return 0;
}

/*
 * Take the acknowledgements and heartbeats buffered in rbuf; 0, or -1
 * when the connection ended (said, down).
 */
static int tx_take(struct hop_tx *t)
{
	struct hop_frame f;
	char why[HOP_ERROR_MAX], line[HOP_ERROR_MAX + 64];
	int ret;

	while ((ret = hop_parse(t->rbuf, t->rlen, 0, &f, why, sizeof(why))) >
	       0) {
		memmove(t->rbuf, t->rbuf + ret, t->rlen - (size_t)ret);
		t->rlen -= (size_t)ret;
		if (f.type == HOP_PING)
			continue;
		if (f.type == HOP_ERROR) {
			snprintf(line, sizeof(line), "receiver: %s", f.text);
			tx_reject(t, line);
			return -1;
		}
		if (f.type != HOP_ACK) {
			snprintf(line, sizeof(line),
				 "unexpected frame type %u from the receiver",
				 f.type);
			tx_reject(t, line);
			return -1;
		}
		if (f.offset > t->sent_end) {
			snprintf(line, sizeof(line),
				 "ACK of offset %llu, past %llu sent: an offset from the future",
				 (unsigned long long)f.offset,
				 (unsigned long long)t->sent_end);
			tx_reject(t, line);
			return -1;
		}
		io_stat_add(t->s->io, hop_acks, 1);
		if (f.offset > t->acked_hi)
			t->acked_hi = f.offset;
		if (tx_shift_below(t, f.offset))
			t->last_progress = t->last_rx;
	}
	if (ret < 0) {
		tx_reject(t, why);
		return -1;
	}
	return 0;
}

/* Acknowledgements and heartbeats; 0, or -1 when the connection ended. */
static int tx_recv(struct hop_tx *t)
{
	ssize_t n;

	for (;;) {
		n = recv(t->fd, t->rbuf + t->rlen, sizeof(t->rbuf) - t->rlen,
			 MSG_DONTWAIT);
		if (n == 0) {
			tx_down(t, "connection closed by the receiver");
			return -1;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			tx_down(t, strerror(errno));
			return -1;
		}
		t->rlen += (size_t)n;
		t->last_rx = io_now_ns();
		if (tx_take(t))
			return -1;
	}
	return 0;
}

/* Sleep for @ms, or until a stop. */
static void tx_sleep(struct hop_tx *t, unsigned int ms)
{
	struct pollfd pfd = { .fd = t->s->io->hop_fd, .events = POLLIN };

	/* Stopped, the eventfd stays readable: sleep a little instead. */
	if (hop_stopped(t->s->io))
		usleep((ms < 100 ? ms : 100) * 1000);
	else
		poll(&pfd, 1, (int)ms);
}

/*
 * Nothing held, so nothing to hear but heartbeats, on a ring others push
 * into (BRING_IO_SHARED): their pushes wake the ring's futex word, never
 * the notify eventfd poll(2) could watch. Wait on the word itself and on
 * the stop flag, until the heartbeat is due (@ms); the socket is read on
 * waking. true when it waited (@w finished), false to poll instead: with
 * acknowledgements pending (they free the window; the relay thread,
 * ring_relay_hand(), then watches the word for the poll), or stopping.
 */
static bool tx_idle_wait(struct hop_tx *t, struct bring_wait *w,
			 unsigned int ms)
{
	struct bring_io *io = t->s->io;

	if (t->n || !(io->o.flags & BRING_IO_SHARED) || hop_stopped(io))
		return false;
	fallback_wait_ring(io, w, ms);
	bring_reader_wait_finish(t->s->rd, w);
	drain_fd(t->nfd);
	return true;
}

/*
 * The poll of a sender waiting for acks and for messages on a ring that
 * other processes push into, which wake only its futex word (@w, as
 * prepared). Acks and this process's pushes (the notify eventfd) mostly
 * come within a few ms while data flows: first a poll of that long. A
 * longer wait goes to the relay thread (ring_relay_hand()), which writes
 * the eventfd when the word moves; handing every wait over cost a relay
 * wake-up per push, and the pair ran 20% slower. Where the relay cannot
 * run, the ring is looked at every 50 ms.
 */
#define HOP_RELAY_AFTER_MS 2

static void tx_poll_relayed(struct hop_tx *t, const struct bring_wait *w,
			    struct pollfd *pfd, int nfds, int timeout)
{
	if (timeout > HOP_RELAY_AFTER_MS &&
	    poll(pfd, (nfds_t)nfds, HOP_RELAY_AFTER_MS) != 0)
		return;
	if (!ring_relay_hand(&t->relay, t->s->io, w, t->nfd) && timeout > 50)
		timeout = 50;
	poll(pfd, (nfds_t)nfds, timeout);
}

/*
 * One turn while connected: take acks, send, then wait for the socket,
 * new messages or a stop. false when the sink is finished.
 */
static bool tx_turn(struct hop_tx *t)
{
	struct bring_io *io = t->s->io;
	struct pollfd pfd[3];
	struct bring_wait w;
	bool waiting = false, relay = false;
	uint64_t now;
	int ret, timeout, limit, nfds = 2;

	if (tx_recv(t))
		return true;
	if (!t->left && t->nsent == t->n) {
		ret = tx_refill(t);
		if (ret == -EPIPE)
			return false; /* closed, and every message acked */
		if (ret < 0 && ret != -EAGAIN) {
			io_fatal(io, t->s, ret);
			return false;
		}
	}
	if (!t->left)
		tx_build(t);
	ret = tx_send(t);
	if (ret) {
		tx_down(t, strerror(-ret));
		return true;
	}
	now = io_now_ns();
	if (now - t->last_rx > (uint64_t)t->dead_ms * 1000000ULL) {
		tx_down(t, "no answer from the receiver for 3 heartbeats");
		return true;
	}
	if (hop_stopped(io) &&
	    now - t->last_progress > HOP_STOP_GIVEUP_MS * 1000000ULL &&
	    t->n) {
		tx_log(t, "stopping with %u messages not acknowledged: they stay in the ring",
		       t->n);
		return false;
	}
	if (!t->left && now - t->last_tx >= (uint64_t)t->hb_ms * 1000000ULL) {
		uint8_t ping[HOP_HDR];

		hop_put_hdr(ping, HOP_PING, 0);
		if (send(t->fd, ping, sizeof(ping), MSG_NOSIGNAL | MSG_DONTWAIT) ==
		    sizeof(ping))
			t->last_tx = now;
	}
	/* Nothing more to send now: wait for what changes that. */
	timeout = (int)t->hb_ms / 2;
	pfd[0] = (struct pollfd){ .fd = t->fd,
				  .events = POLLIN | (t->left ? POLLOUT : 0) };
	/* Stopped, the eventfd stays readable: not waited on. */
	pfd[1] = (struct pollfd){ .fd = hop_stopped(io) ? -1 : io->hop_fd,
				  .events = POLLIN };
	if (!t->left && t->nsent == t->n && tx_may_wait_more(t)) {
		/* The ring's own wait for messages past those held. */
		ret = bring_reader_wait_more_prepare(t->s->rd, &w);
		if (ret == 1) {
			t->more_was_ready = t->n > 0;
			return true;
		}
		/*
		 * In front of an unfinished record (a file ring): look again
		 * within the library's limit, for its repair.
		 */
		limit = ret ? -1 : bring_wait_timeout(&w);
		if (limit >= 0 && limit < timeout)
			timeout = limit ?: 1;
		if (!ret && tx_idle_wait(t, &w, (unsigned int)timeout))
			return true;
		waiting = !ret;
		pfd[nfds++] = (struct pollfd){ .fd = t->nfd, .events = POLLIN };
		relay = waiting && (io->o.flags & BRING_IO_SHARED);
		if (!waiting && (io->o.flags & BRING_IO_SHARED))
			timeout = 50; /* other handles' pushes: looked for */
	}
	if (hop_stopped(io) && timeout > 100)
		timeout = 100;
	if (relay)
		tx_poll_relayed(t, &w, pfd, nfds, timeout);
	else
		poll(pfd, (nfds_t)nfds, timeout);
	if (waiting) {
		bring_reader_wait_finish(t->s->rd, &w);
		drain_fd(t->nfd);
	}
	return true;
}

static void *tx_thread(void *arg)
{
	struct hop_tx *t = arg;
	struct bring_io *io = t->s->io;
	uint64_t stop_t0 = 0;
	int ret;

	for (;;) {
		if (t->fd < 0) {
			if (hop_stopped(io)) {
				/* Down and stopping: give up soon. */
				if (!stop_t0)
					stop_t0 = io_now_ns();
				if (io_now_ns() - stop_t0 >
				    HOP_STOP_GIVEUP_MS * 1000000ULL)
					break;
			}
			ret = bring_reader_peek(t->s->rd, t->msgs, 1, 0, 0);
			if (ret == -EPIPE)
				break; /* closed, and nothing left to send */
			if (tx_connect(t)) {
				tx_sleep(t, t->backoff_ms);
				t->backoff_ms *= 2;
				if (t->backoff_ms > IO_BACKOFF_MAX_MS)
					t->backoff_ms = IO_BACKOFF_MAX_MS;
				continue;
			}
		}
		if (!tx_turn(t))
			break;
		if (t->s->done)
			break;
	}
	ring_relay_stop(&t->relay);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->s->done = true;
	if (__atomic_load_n(&t->s->state, __ATOMIC_RELAXED) != BRING_IO_FAILED)
		sink_set_state(t->s, BRING_IO_DONE, 0);
	return NULL;
}

/* ---- sender in the io_uring loop --------------------------------------- */

/*
 * In io_uring mode the loop's thread runs each bring: sink with the same
 * protocol steps as tx_thread() (tx_welcome(), tx_take(), tx_build(),
 * tx_advance(), tx_shift_below()), one op of each kind in flight:
 *
 *   DOWN --tick, backoff over--> CONNECTING --CONNECT ok--> HELLO
 *   HELLO --WELCOME received--> UP --error, silence, bad frame--> CLOSING
 *   CLOSING --every op of the connection completed--> DOWN
 *   any --ring closed and all acknowledged, or stop given up--> DONE
 *
 * tx_down() closes the socket at once: the ops in flight hold the file,
 * they are cancelled, and no new connection starts before all of them
 * completed (their buffers, rbuf and the batch, are the connection's).
 */
static bool txu_idle(const struct hop_tx *t)
{
	return !t->snd_op.busy && !t->rcv_op.busy && !t->cn_op.busy;
}

/* A control frame (HELLO, PING) is waiting to go out. */
static bool txu_frame_pending(const struct hop_tx *t)
{
	return (t->st == TXU_HELLO || t->st == TXU_UP) && t->xoff < t->xlen;
}

static void txu_cancel(struct hop_tx *t, struct op *op)
{
	if (op->busy)
		uring_cancel(t->l, op);
}

/*
 * The connection is over (tx_down() said why): end its ops, and the wait
 * for messages, which would hold the next connection's HELLO.
 */
static void txu_close(struct hop_tx *t)
{
	if (t->st == TXU_DONE)
		return;
	t->st = TXU_CLOSING;
	t->xlen = t->xoff = 0;
	txu_cancel(t, &t->snd_op);
	txu_cancel(t, &t->rcv_op);
	txu_cancel(t, &t->cn_op);
	uring_data_wait_cancel(t->l, t->s);
}

/* No more connections: the sink is done once its ops completed. */
static void txu_finish(struct hop_tx *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->st = TXU_DONE;
	txu_cancel(t, &t->snd_op);
	txu_cancel(t, &t->rcv_op);
	txu_cancel(t, &t->cn_op);
	txu_cancel(t, &t->tm_op);
	uring_data_wait_cancel(t->l, t->s);
}

/* After every event: a closed connection's ops are all back. */
static void txu_settle(struct hop_tx *t)
{
	if (t->st == TXU_CLOSING && txu_idle(t)) {
		t->st = TXU_DOWN;
		t->rlen = 0;
		t->reconnect_at = io_now_ns() + t->backoff_ms * 1000000ULL;
		t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 :
						IO_BACKOFF_MIN_MS;
		if (t->backoff_ms > IO_BACKOFF_MAX_MS)
			t->backoff_ms = IO_BACKOFF_MAX_MS;
		/* The tick comes back at once and sleeps the backoff. */
		txu_cancel(t, &t->tm_op);
	}
	if (t->st == TXU_DONE && txu_idle(t) && !t->tm_op.busy &&
	    !t->s->rw_op.busy) {
		t->s->done = true;
		if (__atomic_load_n(&t->s->state, __ATOMIC_RELAXED) !=
		    BRING_IO_FAILED)
			sink_set_state(t->s, BRING_IO_DONE, 0);
	}
}

static void txu_arm_tick(struct hop_tx *t, uint64_t ms)
{
	struct io_uring_sqe *sqe;

	if (t->tm_op.busy || t->st == TXU_DONE)
		return;
	if (!ms)
		ms = 1;
	t->ts.tv_sec = (long long)(ms / 1000);
	t->ts.tv_nsec = (long long)(ms % 1000) * 1000000LL;
	sqe = uring_sqe(t->l, &t->tm_op);
	io_uring_prep_timeout(sqe, &t->ts, 0, 0);
}

static void txu_arm_recv(struct hop_tx *t)
{
	struct io_uring_sqe *sqe;

	if (t->rcv_op.busy || t->fd < 0)
		return;
	sqe = uring_sqe(t->l, &t->rcv_op);
	io_uring_prep_recv(sqe, t->fd, t->rbuf + t->rlen,
			   sizeof(t->rbuf) - t->rlen, 0);
}

static void txu_sendmsg(struct hop_tx *t, struct iovec *iov, size_t n)
{
	struct io_uring_sqe *sqe = uring_sqe(t->l, &t->snd_op);

	t->mh = (struct msghdr){ .msg_iov = iov, .msg_iovlen = n };
	io_uring_prep_sendmsg(sqe, t->fd, &t->mh, MSG_NOSIGNAL);
}

/* Send what there is: a control frame, the batch, or wait for data. */
void hop_tx_uring_kick(struct sink *s)
{
	struct hop_tx *t = s->hop;
	int ret;

	for (;;) {
		if (t->snd_op.busy || t->fd < 0)
			return;
		if (s->rw_op.busy) {
			/* Waiting for messages: a frame to send ends it. */
			if (!txu_frame_pending(t))
				return;
			uring_data_wait_cancel(t->l, s);
			if (s->rw_op.busy)
				return; /* on_data() kicks again */
		}
		if (txu_frame_pending(t)) {
			t->xiov.iov_base = t->xbuf + t->xoff;
			t->xiov.iov_len = t->xlen - t->xoff;
			t->xsend = true;
			txu_sendmsg(t, &t->xiov, 1);
			return;
		}
		if (t->st != TXU_UP)
			return;
		if (!t->left && t->nsent == t->n) {
			ret = tx_refill(t);
			if (ret == -EPIPE) {
				txu_finish(t); /* closed, and every message acked */
				return;
			}
			if (ret < 0 && ret != -EAGAIN) {
				io_fatal(s->io, s, ret);
				txu_finish(t);
				return;
			}
		}
		if (!t->left)
			tx_build(t);
		if (t->left) {
			t->xsend = false;
			txu_sendmsg(t, t->iov + t->iov_pos,
				    (size_t)(t->niov - t->iov_pos));
			return;
		}
		if (!tx_may_wait_more(t))
			return; /* acks come first (the window, or closed) */
		/* The ring's own wait for messages past those held. */
		ret = bring_reader_wait_more_prepare(s->rd, &s->rw);
		if (ret == 1) {
			t->more_was_ready = t->n > 0;
			continue;
		}
		if (ret)
			return;
		io_stat_add(s->io, empty_waits, 1);
		s->wait_t0 = io_now_ns();
		uring_data_wait(t->l, &s->rw_op, &s->rw);
		return;
	}
}

static void txu_connect(struct hop_tx *t)
{
	struct io_uring_sqe *sqe;
	char line[128];
	int fd, one = 1;

	fd = socket(t->s->ep.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(line, sizeof(line), "connect: %s", strerror(errno));
		tx_down(t, line);
		t->st = TXU_CLOSING;
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t->fd = fd;
	t->st = TXU_CONNECTING;
	t->conn_t0 = io_now_ns();
	sqe = uring_sqe(t->l, &t->cn_op);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&t->s->ep.addr,
			      t->s->ep.addrlen);
}

static void txu_on_connect(struct hop_tx *t, int res)
{
	char line[128];

	if (t->st != TXU_CONNECTING)
		return;
	if (!res && ep_refuse_self_connect(t->fd))
		res = -ECONNREFUSED; /* see tx_connect_fd() */
	if (res < 0) {
		snprintf(line, sizeof(line), "connect: %s", strerror(-res));
		tx_down(t, line);
		txu_close(t);
		return;
	}
	t->st = TXU_HELLO;
	t->rlen = 0;
	t->xlen = tx_hello(t, t->xbuf);
	t->xoff = 0;
	txu_arm_recv(t);
	hop_tx_uring_kick(t->s);
}

static void txu_on_send(struct hop_tx *t, int res)
{
	struct bring_io *io = t->s->io;

	if (t->st != TXU_HELLO && t->st != TXU_UP)
		return;
	if (res < 0) {
		if (res == -EAGAIN || res == -EINTR || res == -ENOBUFS) {
			hop_tx_uring_kick(t->s);
			return;
		}
		tx_down(t, strerror(-res));
		txu_close(t);
		return;
	}
	io_stat_add(io, writes, 1);
	sink_stat_add(t->s, bytes_out, res);
	t->last_tx = io_now_ns();
	if (t->xsend) {
		t->xoff += (size_t)res;
		if (t->xoff == t->xlen)
			t->xoff = t->xlen = 0;
	} else {
		tx_advance(t, (size_t)res);
	}
	hop_tx_uring_kick(t->s);
}

static void txu_on_recv(struct hop_tx *t, int res)
{
	char why[HOP_ERROR_MAX];
	struct hop_frame f;
	int ret;

	if (t->st != TXU_HELLO && t->st != TXU_UP)
		return;
	if (res == -EAGAIN || res == -EINTR || res == -ENOBUFS) {
		txu_arm_recv(t);
		return;
	}
	if (res <= 0) {
		tx_down(t, !res ? (t->st == TXU_HELLO ?
				   "handshake: connection closed by the peer" :
				   "connection closed by the receiver") :
				  strerror(-res));
		txu_close(t);
		return;
	}
	t->rlen += (size_t)res;
	t->last_rx = io_now_ns();
	if (t->st == TXU_HELLO) {
		ret = hop_parse(t->rbuf, t->rlen, 0, &f, why, sizeof(why));
		if (ret < 0)
			tx_reject(t, why);
		if (ret > 0) {
			memmove(t->rbuf, t->rbuf + ret, t->rlen - (size_t)ret);
			t->rlen -= (size_t)ret;
			if (!tx_welcome(t, &f))
				t->st = TXU_UP;
		}
	}
	if (t->st == TXU_UP)
		tx_take(t);
	if (t->fd < 0) { /* tx_welcome(), tx_take() said why */
		txu_close(t);
		return;
	}
	txu_arm_recv(t);
	hop_tx_uring_kick(t->s);
}

/* The tick: backoff, deadlines, heartbeats, new messages; re-armed. */
static void txu_on_tick(struct hop_tx *t)
{
	struct bring_io *io = t->s->io;
	uint64_t now = io_now_ns(), ms = t->hb_ms / 2;
	bool stopped = hop_stopped(io);
	uint8_t ping[HOP_HDR];

	if (t->st == TXU_DOWN) {
		if (stopped && !t->stop_t0)
			t->stop_t0 = now;
		if (stopped && now - t->stop_t0 > HOP_STOP_GIVEUP_MS * 1000000ULL) {
			txu_finish(t);
			return;
		}
		if (now >= t->reconnect_at) {
			if (bring_reader_peek(t->s->rd, t->msgs, 1, 0, 0) ==
			    -EPIPE) {
				txu_finish(t); /* closed, nothing left to send */
				return;
			}
			txu_connect(t);
		} else {
			ms = (t->reconnect_at - now) / 1000000ULL + 1;
		}
	} else if ((t->st == TXU_CONNECTING || t->st == TXU_HELLO) &&
		   now - t->conn_t0 > (uint64_t)t->dead_ms * 1000000ULL) {
		tx_down(t, t->st == TXU_CONNECTING ?
				   "connect: Connection timed out" :
				   "handshake: Connection timed out");
		txu_close(t);
	} else if (t->st == TXU_UP) {
		if (now - t->last_rx > (uint64_t)t->dead_ms * 1000000ULL) {
			tx_down(t, "no answer from the receiver for 3 heartbeats");
			txu_close(t);
		} else if (stopped && t->n &&
			   now - t->last_progress >
				   HOP_STOP_GIVEUP_MS * 1000000ULL) {
			tx_log(t, "stopping with %u messages not acknowledged: they stay in the ring",
			       t->n);
			txu_finish(t);
			return;
		} else {
			if (!t->left && !t->xlen && !t->snd_op.busy &&
			    now - t->last_tx >= (uint64_t)t->hb_ms * 1000000ULL) {
				hop_put_hdr(ping, HOP_PING, 0);
				memcpy(t->xbuf, ping, sizeof(ping));
				t->xlen = sizeof(ping);
				t->xoff = 0;
			}
			hop_tx_uring_kick(t->s);
		}
	}
	if (stopped && ms > 100)
		ms = 100;
	txu_arm_tick(t, ms);
}

/* Start the sender in the loop @l: it connects at once. */
void hop_tx_uring_start(struct loop *l, struct sink *s)
{
	struct hop_tx *t = s->hop;

	t->l = l;
	t->snd_op = (struct op){ .type = OP_HOP_TX, .obj = t };
	t->rcv_op = t->snd_op;
	t->cn_op = t->snd_op;
	t->tm_op = t->snd_op;
	t->st = TXU_DOWN;
	t->reconnect_at = 0;
	txu_on_tick(t);
}

/* A completion of one of the sender's ops (not its data wait). */
void hop_tx_uring_event(struct op *op, int res)
{
	struct hop_tx *t = op->obj;

	if (op == &t->snd_op)
		txu_on_send(t, res);
	else if (op == &t->rcv_op)
		txu_on_recv(t, res);
	else if (op == &t->cn_op)
		txu_on_connect(t, res);
	else if (t->st != TXU_DONE)
		txu_on_tick(t);
	txu_settle(t);
}

/* After the sink's data wait (on_data()): the kick, then settle. */
void hop_tx_uring_step(struct sink *s)
{
	hop_tx_uring_kick(s);
	txu_settle(s->hop);
}

/* The window of bring: sink @s (bytes unacknowledged at most); 0. */
size_t hop_sink_window(const struct sink *s)
{
	return s->hop ? s->hop->window : 0;
}

/* The stream's id: opts.hop_id or HOSTNAME/RINGNAME, then "/READER". */
static void tx_stream_id(struct hop_tx *t)
{
	struct bring_io *io = t->s->io;
	char host[128] = "localhost";

	if (io->o.hop_id) {
		snprintf(t->id, sizeof(t->id), "%s/%s", io->o.hop_id,
			 t->s->reader_name);
		return;
	}
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(t->id, sizeof(t->id), "%s/%s/%s", host, bring_name(io->r),
		 t->s->reader_name);
}

int hop_sink_add(struct bring_io *io, struct sink *s)
{
	struct bring_stats st = { .sz = sizeof(st) };
	struct hop_tx *t;

	if (io->o.hop_id && (!io->o.hop_id[0] ||
			     strlen(io->o.hop_id) + 1 + strlen(s->reader_name) >
				     HOP_ID_MAX))
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->msgs = calloc(HOP_TX_MSGS, sizeof(*t->msgs));
	if (!t->msgs) {
		free(t);
		return -ENOMEM;
	}
	s->hop = t;
	t->s = s;
	t->fd = -1;
	t->nfd = -1;
	bring_get_stats(io->r, &st);
	t->epoch = st.id;
	t->flags = (st.file ? 0 : HOP_F_VOLATILE) |
		   (io->o.framing == BRING_IO_LINES ? HOP_F_LINES : 0);
	t->window = io->o.hop_window ? io->o.hop_window : HOP_WINDOW_DEFAULT;
	if (t->window > UINT32_MAX)
		t->window = UINT32_MAX;
	t->hb_ms = hop_hb_ms(io);
	t->dead_ms = t->hb_ms * HOP_DEAD_FACTOR;
	t->max_frame = (uint32_t)io->max_msg;
	t->said_down = false;
	tx_stream_id(t);
	t->nfd = bring_notify_fd(io->r);
	return t->nfd < 0 ? t->nfd : 0;
}

void hop_sink_free(struct sink *s)
{
	struct hop_tx *t = s->hop;

	if (!t)
		return;
	if (t->fd >= 0)
		close(t->fd);
	free(t->msgs);
	free(t);
	s->hop = NULL;
}

/* ---- receiver --------------------------------------------------------- */

/*
 * The receiver's protocol steps are shared by both io modes: rx_frames()
 * takes the frames buffered in rbuf up to the next DATA payload, the
 * caller receives that payload into a ring reservation (rx_payload_*)
 * and rx_commit() commits it with its mark. What differs is how they
 * wait: readv/writev mode runs a thread per connection (rx_run(), with
 * blocking reservations and poll(2)); io_uring mode runs every
 * connection as a state machine in the loop ("receiver in the io_uring
 * loop" below).
 */

struct hop_conn;

struct hop_listen {
	struct source *src;
	int lfd;
	/*
	 * readv/writev mode: conns, and each conn's holds and done, are
	 * shared by the listener's and the connections' threads.
	 */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a conn let its stream go */
	struct hop_conn *conns;
	pthread_t thread;
	bool started;
	/* io_uring mode: the loop's thread alone touches these and conns */
	struct loop *l;
	struct op acc_op, tm_op; /* multishot ACCEPT; the tick (TIMEOUT) */
	struct __kernel_timespec ts;
	uint64_t accept_at; /* out of fds: accept again from then */
	bool stopping;
};

struct hop_pend {
	uint64_t rend; /* where the record ends in this ring */
	uint64_t end; /* the stream offset it commits */
};

/* io_uring mode: where a connection is (rxu_*) */
enum rxu_state {
	RXU_HEAD, /* a recv into rbuf: frames, or a payload's first bytes */
	RXU_SPACE, /* a DATA frame waits for ring space (a futex wait) */
	RXU_BODY, /* a recv into the reservation: the payload's rest */
	RXU_PARKED, /* a HELLO waits for the stream's earlier connection */
	RXU_DRAIN, /* rejected: the ERROR goes out, then it ends */
	RXU_END, /* its ops are cancelled; freed once all completed */
};

struct hop_conn {
	struct hop_listen *hl;
	struct hop_conn *next;
	int fd;
	pthread_t thread;
	bool done; /* the thread ended: join and free */
	/*
	 * The stream reconnected: this one ends. Set by the new connection's
	 * thread (under hl->lock, then shutdown(2) of our socket), read
	 * without the lock here: relaxed atomics, the shutdown is what
	 * wakes us.
	 */
	bool superseded;
	bool holds; /* has the stream's name (under hl->lock) */
	char peer[80];
	char name[BRING_NAME_MAX];
	char id[HOP_ID_MAX + 1];
	uint64_t epoch;
	uint32_t window;
	uint16_t flags; /* the HELLO's */
	bool lines; /* HOP_F_LINES */
	struct bring_writer *w;
	struct hop_rx rx;
	uint8_t *rbuf;
	size_t rlen;
	uint8_t obuf[HOP_OBUF];
	size_t olen;
	uint64_t committed, acked, acked_bytes_at, committed_bytes;
	uint64_t last_rx, last_tx, last_out;
	struct hop_pend pend[HOP_PEND];
	unsigned int npend;
	int durability; /* of the ring */
	/* the DATA frame being received: payload bytes, its end offset */
	size_t dlen, dhave;
	uint64_t dend;
	/*
	 * io_uring mode: one op of each kind in flight. rd_op: RECV into
	 * rbuf or the reservation (or a NOP that resumes a parked HELLO or
	 * ends a connection with nothing in flight); wr_op: SEND of
	 * obuf[0..oinfl); sp_op: the wait for ring space.
	 */
	enum rxu_state st;
	struct op rd_op, wr_op, sp_op;
	size_t oinfl;
	struct bring_resv resv;
	bool resv_open;
	struct bring_wait ww;
	uint64_t since; /* PARKED, DRAIN, SPACE: since when */
};

static bool superseded(struct hop_conn *c)
{
	return __atomic_load_n(&c->superseded, __ATOMIC_RELAXED);
}

static void rx_log(struct hop_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void rx_log(struct hop_conn *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	io_log("%s: %s: %s\n", c->hl->src->ep.uri, c->peer, line);
}

/* Send what is queued without blocking; false when the peer is gone. */
static bool rx_flush(struct hop_conn *c)
{
	ssize_t n;

	while (c->olen) {
		n = send(c->fd, c->obuf, c->olen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		memmove(c->obuf, c->obuf + n, c->olen - (size_t)n);
		c->olen -= (size_t)n;
		c->last_out = io_now_ns();
	}
	return true;
}

/*
 * Queue a frame; false when it does not fit (the peer reads nothing).
 * last_out: since when queued bytes wait for the peer to take them.
 */
static bool rx_queue(struct hop_conn *c, const void *frame, size_t len)
{
	if (c->olen + len > sizeof(c->obuf))
		return false;
	memcpy(c->obuf + c->olen, frame, len);
	if (!c->olen)
		c->last_out = io_now_ns();
	c->olen += len;
	c->last_tx = io_now_ns();
	return true;
}

/* Bad input: one line, the reason queued for the peer; the caller ends it. */
static void rx_reject(struct hop_conn *c, const char *why)
{
	uint8_t err[HOP_ERROR_BUF];
	size_t len = hop_put_error(err, why);

	io_stat_add(c->hl->src->io, hop_rejected, 1);
	rx_log(c, "%s; connection closed", why);
	/* A full queue: the peer reads nothing, it goes without the reason. */
	rx_queue(c, err, len);
}

/* The offset that may be acknowledged: committed, and durable if asked. */
static uint64_t rx_ackable(struct hop_conn *c)
{
	struct bring_stats st = { .sz = sizeof(st) };
	unsigned int i, k = 0;
	uint64_t ack = c->acked;

	if (c->durability != BRING_DURABLE_INTERVAL)
		return c->committed;
	if (!c->npend)
		return ack;
	bring_get_stats(c->hl->src->io->r, &st);
	while (k < c->npend && c->pend[k].rend <= st.durable)
		ack = c->pend[k++].end;
	for (i = k; i < c->npend; i++)
		c->pend[i - k] = c->pend[i];
	c->npend -= k;
	return ack;
}

static void rx_ack(struct hop_conn *c)
{
	uint8_t ack[HOP_HDR + 8];
	uint64_t off = rx_ackable(c);

	if (off <= c->acked)
		return;
	hop_put_offset(ack, HOP_ACK, off, 0);
	if (!rx_queue(c, ack, sizeof(ack)))
		return; /* the next one says it again */
	c->acked = off;
	c->acked_bytes_at = c->committed_bytes;
	io_stat_add(c->hl->src->io, hop_acks, 1);
}

static void rxu_resume(struct hop_conn *c);

/*
 * Release the stream's name, and let a connection waiting for it go on
 * (readv/writev: its thread waits on hl->cond; io_uring: it is parked).
 */
static void rx_release(struct hop_conn *c)
{
	struct hop_listen *hl = c->hl;
	struct hop_conn *p;

	if (c->w)
		bring_writer_close(c->w);
	c->w = NULL;
	if (hl->l) {
		if (!c->holds)
			return;
		c->holds = false;
		for (p = hl->conns; p; p = p->next)
			if (p->st == RXU_PARKED && !strcmp(p->name, c->name))
				rxu_resume(p);
		return;
	}
	pthread_mutex_lock(&hl->lock);
	c->holds = false;
	pthread_cond_broadcast(&hl->cond);
	pthread_mutex_unlock(&hl->lock);
}

static void rxu_end(struct hop_conn *c);

/*
 * Take the stream's name for this connection if nobody holds it: 0. A
 * live connection of the same stream and epoch is an old one the sender
 * gave up on: it is told to end, and 1 says to wait until it did. One of
 * another epoch is another sender with the same id: -EBUSY (said in
 * @why). readv/writev mode: under hl->lock.
 */
static int rx_claim_try(struct hop_conn *c, char *why, size_t why_len)
{
	struct hop_conn *o;

	for (o = c->hl->conns; o; o = o->next)
		if (o != c && o->holds && !strcmp(o->name, c->name))
			break;
	if (!o) {
		c->holds = true;
		return 0;
	}
	if (o->epoch != c->epoch) {
		snprintf(why, why_len,
			 "stream '%s' is in use by a live connection of epoch %016llx (this one: %016llx): two senders with one stream id",
			 c->id, (unsigned long long)o->epoch,
			 (unsigned long long)c->epoch);
		return -EBUSY;
	}
	if (c->hl->l) {
		rxu_end(o); /* its end releases the name: rxu_resume(c) */
	} else if (!superseded(o)) {
		__atomic_store_n(&o->superseded, true, __ATOMIC_RELAXED);
		shutdown(o->fd, SHUT_RDWR);
	}
	return 1;
}

/* readv/writev mode: wait (3 s at most) until the name is ours. */
static int rx_claim(struct hop_conn *c, char *why, size_t why_len)
{
	struct hop_listen *hl = c->hl;
	struct timespec ts;
	int ret;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 3;
	pthread_mutex_lock(&hl->lock);
	while ((ret = rx_claim_try(c, why, why_len)) > 0) {
		if (pthread_cond_timedwait(&hl->cond, &hl->lock, &ts) ==
		    ETIMEDOUT) {
			snprintf(why, why_len,
				 "stream '%s' is still held by an earlier connection",
				 c->id);
			ret = -EBUSY;
			break;
		}
	}
	pthread_mutex_unlock(&hl->lock);
	return ret;
}

/* A HELLO: who the stream is. Its name is claimed next. */
static void rx_hello_take(struct hop_conn *c, const struct hop_frame *f)
{
	memcpy(c->id, f->id, f->id_len + 1);
	c->epoch = f->epoch;
	c->window = f->window;
	c->lines = f->flags & HOP_F_LINES;
	c->flags = f->flags;
	hop_writer_name(f->id, f->id_len, c->name, sizeof(c->name));
}

/* The name is ours: open the stream's writer, compare epochs, WELCOME. */
static int rx_hello_open(struct hop_conn *c, char *why, size_t why_len)
{
	struct bring_io *io = c->hl->src->io;
	uint8_t mark[BRING_MARK_MAX], wel[HOP_HDR + HOP_WELCOME_LEN];
	uint64_t epoch = 0, off = 0;
	int len;

	c->w = bring_writer_open(io->r, c->name, NULL);
	if (!c->w) {
		snprintf(why, why_len, "stream '%s': cannot open writer %s: %s",
			 c->id, c->name, strerror(errno));
		return -EPROTO;
	}
	len = bring_writer_mark(c->w, mark, sizeof(mark));
	if (len < 0 || (len && !hop_mark_get(mark, (size_t)len, &epoch, &off))) {
		snprintf(why, why_len,
			 "stream '%s': writer %s holds a mark that is not a stream offset",
			 c->id, c->name);
		return -EPROTO;
	}
	if (len && epoch != c->epoch) {
		if (!(c->flags & HOP_F_VOLATILE)) {
			snprintf(why, why_len,
				 "stream '%s' was stored with epoch %016llx and comes back with epoch %016llx: another sender with the same id, or its ring was made again (give it another stream id)",
				 c->id, (unsigned long long)epoch,
				 (unsigned long long)c->epoch);
			return -EPROTO;
		}
		if (!(io->o.flags & BRING_IO_QUIET))
			rx_log(c, "stream '%s' starts epoch %016llx (its buffer is in memory): offsets start again from 0",
			       c->id, (unsigned long long)c->epoch);
		off = 0;
	}
	c->committed = c->acked = off;
	c->rx.next = off;
	hop_put_welcome(wel, 0, (uint32_t)io->ring_max, hop_hb_ms(io), off);
	rx_queue(c, wel, sizeof(wel));
	return 0;
}

/* What rx_frames() stopped at. */
enum { RX_END = -1, RX_MORE, RX_DATA, RX_PARK };

/*
 * Take the frames buffered in rbuf up to the next DATA payload:
 * RX_MORE (all taken: receive more), RX_DATA (c->dlen payload bytes of
 * a frame ending at offset c->dend follow: the caller receives them and
 * rx_commit()s), RX_PARK (io_uring: the HELLO waits for the stream's
 * earlier connection to end, rxu_resume()), RX_END (the connection
 * ends; said, an ERROR queued where the peer should know why).
 */
static int rx_frames(struct hop_conn *c)
{
	struct bring_io *io = c->hl->src->io;
	struct hop_frame f;
	char why[HOP_ERROR_MAX];
	int ret;

	while ((ret = hop_parse(c->rbuf, c->rlen, io->ring_max, &f, why,
				sizeof(why))) > 0) {
		memmove(c->rbuf, c->rbuf + ret, c->rlen - (size_t)ret);
		c->rlen -= (size_t)ret;
		if (hop_rx_check(&c->rx, &f, why, sizeof(why)))
			goto reject;
		switch (f.type) {
		case HOP_HELLO:
			rx_hello_take(c, &f);
			ret = c->hl->l ? rx_claim_try(c, why, sizeof(why)) :
					 rx_claim(c, why, sizeof(why));
			if (ret > 0)
				return RX_PARK;
			if (ret < 0 || rx_hello_open(c, why, sizeof(why)))
				goto reject;
			break;
		case HOP_DATA:
			c->dlen = f.len - HOP_DATA_MIN;
			c->dend = f.offset;
			c->dhave = 0;
			return RX_DATA;
		case HOP_ERROR:
			rx_log(c, "stream '%s': sender: %s", c->id, f.text);
			return RX_END;
		default:
			break;
		}
	}
	if (ret == 0)
		return RX_MORE;
reject:
	rx_reject(c, why);
	return RX_END;
}

/* A payload's first bytes, already in rbuf, go to the reservation. */
static void rx_payload_buffered(struct hop_conn *c, void *data)
{
	size_t k = c->rlen < c->dlen ? c->rlen : c->dlen;

	memcpy(data, c->rbuf, k);
	memmove(c->rbuf, c->rbuf + k, c->rlen - k);
	c->rlen -= k;
	c->dhave = k;
}

/* @n bytes received from the peer (into rbuf or a reservation). */
static void rx_received(struct hop_conn *c, size_t n)
{
	struct bring_io *io = c->hl->src->io;

	c->last_rx = io_now_ns();
	io_stat_add(io, reads, 1);
	io_stat_add(io, bytes_in, n);
}

/*
 * The payload of the frame being received is all in @resv: committed
 * with the frame's end offset as the writer's mark. 0, or -1 when the
 * ring failed or closed (the connection ends).
 */
static int rx_commit(struct hop_conn *c, struct bring_resv *resv)
{
	struct bring_io *io = c->hl->src->io;
	uint8_t mark[HOP_MARK_LEN];
	size_t len = c->dlen;
	uint64_t rend = resv->seq + 16 + ((len + 7) & ~7UL);
	uint64_t msgs = c->lines ? count_nl(resv->data, len) + 1 : 1;
	int ret;

	hop_mark_put(mark, c->epoch, c->dend);
	ret = bring_writer_commit(c->w, resv, len, mark, sizeof(mark));
	if (ret) {
		if (ret != -EPIPE) {
			rx_log(c, "stream '%s': ring: %s", c->id,
			       strerror(-ret));
			io_set_err(io, ret);
			bring_io_stop(io);
		}
		return -1;
	}
	c->committed = c->dend;
	c->committed_bytes += len;
	io_stat_add(io, hop_frames, 1);
	/* lines: a frame is a chunk record, each of its lines a message */
	io_stat_add(io, msgs_in, msgs);
	if (c->durability == BRING_DURABLE_INTERVAL) {
		struct hop_pend p = { .rend = rend, .end = c->dend };

		if (c->npend == HOP_PEND)
			c->pend[HOP_PEND - 1] = p; /* acked a little later */
		else
			c->pend[c->npend++] = p;
	}
	/* Progress acks: a quarter window at least. */
	if (c->committed_bytes - c->acked_bytes_at >= c->window / 4)
		rx_ack(c);
	return 0;
}

static void rx_ping_if_due(struct hop_conn *c)
{
	uint8_t ping[HOP_HDR];

	if (io_now_ns() - c->last_tx < (uint64_t)hop_hb_ms(c->hl->src->io) *
						   1000000ULL)
		return;
	hop_put_hdr(ping, HOP_PING, 0);
	rx_queue(c, ping, sizeof(ping));
}

/* The peer is silent (@now): the line said, true when it is dead. */
static bool rx_silent(struct hop_conn *c, uint64_t now, bool mid_frame)
{
	unsigned int dead = hop_hb_ms(c->hl->src->io) * HOP_DEAD_FACTOR;

	if (now < c->last_rx || now - c->last_rx <= (uint64_t)dead * 1000000ULL)
		return false;
	if (mid_frame) {
		rx_log(c, "stream '%s': no data for %u ms in the middle of a frame; connection closed",
		       c->id, dead);
		return true;
	}
	rx_log(c, "%s%s%sno frame for %u ms; connection closed",
	       c->id[0] ? "stream '" : "", c->id, c->id[0] ? "': " : "", dead);
	io_stat_add(c->hl->src->io, hop_rejected, 1);
	return true;
}

/* Queued frames wait for a peer that takes nothing: true (said). */
static bool rx_unread(struct hop_conn *c, uint64_t now)
{
	unsigned int dead = hop_hb_ms(c->hl->src->io) * HOP_DEAD_FACTOR;

	/* last_out may be later than @now: a frame queued since */
	if (!c->olen || now < c->last_out ||
	    now - c->last_out <= (uint64_t)dead * 1000000ULL)
		return false;
	rx_reject(c, "the sender stopped reading");
	return true;
}

/* ---- receiver threads (readv/writev mode) ------------------------------- */

/* Wait until @c's socket has data or @ms passed; false on a stop. */
static bool rx_wait_in(struct hop_conn *c, int ms)
{
	struct bring_io *io = c->hl->src->io;
	struct pollfd pfd[2] = {
		{ .fd = c->fd, .events = POLLIN | (c->olen ? POLLOUT : 0) },
		{ .fd = io->hop_fd, .events = POLLIN },
	};

	if (hop_stopped(io) || superseded(c))
		return false;
	poll(pfd, 2, ms);
	return !hop_stopped(io) && !superseded(c);
}

/*
 * A DATA frame's payload: reserved (waiting while the ring is full),
 * filled from what is buffered and then received in place, committed
 * with its end offset. 0, or -1 when the connection ends (said).
 */
static int rx_data(struct hop_conn *c)
{
	struct bring_io *io = c->hl->src->io;
	unsigned int hb = hop_hb_ms(io);
	struct bring_resv resv;
	ssize_t n;
	int ret;

	/* Ring full: keep the sender's heartbeats answered meanwhile. */
	while ((ret = bring_reserve(io->r, c->dlen, &resv, (int)hb)) ==
	       -ETIMEDOUT) {
		rx_ping_if_due(c);
		rx_flush(c);
		if (hop_stopped(io) || superseded(c))
			return -1;
		io_stat_add(io, full_waits, 1);
	}
	if (ret)
		return -1; /* closed (-EPIPE) */
	rx_payload_buffered(c, resv.data);
	while (c->dhave < c->dlen) {
		n = recv(c->fd, (char *)resv.data + c->dhave,
			 c->dlen - c->dhave, MSG_DONTWAIT);
		if (n > 0) {
			c->dhave += (size_t)n;
			rx_received(c, (size_t)n);
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			goto gone;
		rx_ping_if_due(c);
		if (!rx_flush(c) || !rx_wait_in(c, (int)hb) ||
		    rx_silent(c, io_now_ns(), true))
			goto gone;
	}
	return rx_commit(c, &resv);
gone:
	bring_abort(io->r, &resv);
	return -1;
}

static void rx_run(struct hop_conn *c)
{
	struct bring_io *io = c->hl->src->io;
	unsigned int hb = hop_hb_ms(io);
	uint64_t now;
	ssize_t n;
	int ret;

	c->last_rx = c->last_tx = c->last_out = io_now_ns();
	for (;;) {
		n = recv(c->fd, c->rbuf + c->rlen, HOP_RX_BUF - c->rlen,
			 MSG_DONTWAIT);
		if (n == 0)
			return; /* the sender closed: its next connection goes on */
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return;
		if (n > 0) {
			c->rlen += (size_t)n;
			rx_received(c, (size_t)n);
			while ((ret = rx_frames(c)) == RX_DATA)
				if (rx_data(c))
					return;
			if (ret == RX_END) {
				rx_flush(c);
				return;
			}
			/* Progress ACKs go out while frames keep coming. */
			if (c->olen && !rx_flush(c))
				return;
			continue; /* read on while there is more */
		}
		/* Everything that came is committed: say so. */
		if (c->rx.phase == HOP_RX_STREAM)
			rx_ack(c);
		rx_ping_if_due(c);
		if (!rx_flush(c))
			return;
		now = io_now_ns();
		if (rx_silent(c, now, false))
			return;
		if (rx_unread(c, now)) {
			rx_flush(c);
			return;
		}
		if (!rx_wait_in(c, c->npend ? 20 : (int)hb / 2))
			return;
	}
}

static void *rx_thread(void *arg)
{
	struct hop_conn *c = arg;

	rx_run(c);
	rx_release(c);
	shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_lock(&c->hl->lock);
	c->done = true;
	pthread_mutex_unlock(&c->hl->lock);
	return NULL;
}

static void conn_free_(struct hop_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c);
}

static void conn_reap(struct hop_listen *hl, bool all)
{
	struct hop_conn **pp = &hl->conns, *c;

	pthread_mutex_lock(&hl->lock);
	while ((c = *pp)) {
		if (!c->done && !all) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		pthread_mutex_unlock(&hl->lock);
		pthread_join(c->thread, NULL);
		conn_free_(c);
		pthread_mutex_lock(&hl->lock);
	}
	pthread_mutex_unlock(&hl->lock);
}

/* A connection accepted (@fd): its state, or NULL (@fd closed). */
static struct hop_conn *conn_new(struct hop_listen *hl, int fd)
{
	struct bring_io *io = hl->src->io;
	struct bring_stats st = { .sz = sizeof(st) };
	struct hop_conn *c;

	io_stat_add(io, accepted, 1);
	c = calloc(1, sizeof(*c));
	if (c)
		c->rbuf = malloc(HOP_RX_BUF);
	if (!c || !c->rbuf) {
		free(c);
		close(fd);
		return NULL;
	}
	c->hl = hl;
	c->fd = fd;
	peer_name(fd, c->peer, sizeof(c->peer));
	bring_get_stats(io->r, &st);
	c->durability = (int)st.durability;
	c->last_rx = c->last_tx = c->last_out = io_now_ns();
	return c;
}

static void hl_accept(struct hop_listen *hl)
{
	struct hop_conn *c;
	sigset_t all, old;
	int fd;

	fd = accept4(hl->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	c = conn_new(hl, fd);
	if (!c)
		return;
	pthread_mutex_lock(&hl->lock);
	c->next = hl->conns;
	hl->conns = c;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&c->thread, NULL, rx_thread, c)) {
		hl->conns = c->next;
		pthread_mutex_unlock(&hl->lock);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		io_log("%s: cannot start a thread for a connection\n",
		       hl->src->ep.uri);
		conn_free_(c);
		return;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_unlock(&hl->lock);
}

static void *hl_thread(void *arg)
{
	struct hop_listen *hl = arg;
	struct bring_io *io = hl->src->io;
	struct pollfd pfd[2] = {
		{ .fd = hl->lfd, .events = POLLIN },
		{ .fd = io->hop_fd, .events = POLLIN },
	};
	struct hop_conn *c;

	while (!hop_stopped(io)) {
		if (poll(pfd, 2, 1000) > 0 && (pfd[0].revents & POLLIN))
			hl_accept(hl);
		conn_reap(hl, false);
	}
	/* Stopped: connections end without acking what they hold. */
	pthread_mutex_lock(&hl->lock);
	for (c = hl->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&hl->lock);
	conn_reap(hl, true);
	close(hl->lfd);
	hl->lfd = -1;
	return NULL;
}

/* ---- receiver in the io_uring loop -------------------------------------- */

/*
 * In io_uring mode the loop's thread runs every bring-listen: source: a
 * multishot ACCEPT, a tick (heartbeats, dead peers, acks of what became
 * durable), and per connection the same steps as rx_run():
 *
 *   HEAD --DATA header taken, reserved--> BODY --payload in--> HEAD
 *   HEAD --DATA header taken, ring full--> SPACE --space--> HEAD (reserve)
 *   HEAD --HELLO, stream held by an earlier connection--> PARKED
 *   PARKED --that one released it (a NOP completes)--> HEAD
 *   any --bad frame, 3 s parked--> DRAIN --ERROR sent--> END
 *   any --peer closed, silent, stop, superseded--> END --ops back--> freed
 *
 * The payload is received straight into the reservation, which is
 * committed (bring_writer_commit(), the mark with it) only when all of
 * it is there and aborted only once no recv into it is in flight.
 * ACKs: progress ones from rx_commit(), and one whenever a recv leaves
 * the socket empty (no IORING_CQE_F_SOCK_NONEMPTY): all that came is
 * committed. One SEND in flight per socket (obuf[0..oinfl)); frames
 * queued meanwhile are appended behind it.
 */

static bool rxu_idle(const struct hop_conn *c)
{
	return !c->rd_op.busy && !c->wr_op.busy && !c->sp_op.busy;
}

static void rxu_nop(struct hop_conn *c)
{
	io_uring_prep_nop(uring_sqe(c->hl->l, &c->rd_op));
}

/* A parked HELLO looks at the stream's name again (a NOP's completion). */
static void rxu_resume(struct hop_conn *c)
{
	if (!c->rd_op.busy)
		rxu_nop(c);
}

static void rxu_send(struct hop_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->wr_op.busy || !c->olen || c->st == RXU_END)
		return;
	c->oinfl = c->olen;
	sqe = uring_sqe(c->hl->l, &c->wr_op);
	io_uring_prep_send(sqe, c->fd, c->obuf, c->oinfl, MSG_NOSIGNAL);
}

/* The wait for space ended (completed, or cancelled here): finish it. */
static void rxu_space_done(struct hop_conn *c)
{
	struct bring_io *io = c->hl->src->io;

	io_stat_add(io, full_wait_ns, io_now_ns() - c->since);
	bring_write_wait_finish(io->r, &c->ww);
}

/* The connection ends: its ops are cancelled; rxu_settle() frees it. */
static void rxu_end(struct hop_conn *c)
{
	struct hop_listen *hl = c->hl;

	if (c->st == RXU_END)
		return;
	c->st = RXU_END;
	if (c->sp_op.busy && hl->src->io->ringfd) {
		c->sp_op.busy = false; /* on the ring's eventfd: no SQE */
		rxu_space_done(c);
	}
	if (c->sp_op.busy)
		uring_cancel(hl->l, &c->sp_op);
	if (c->rd_op.busy)
		uring_cancel(hl->l, &c->rd_op);
	if (c->wr_op.busy)
		uring_cancel(hl->l, &c->wr_op);
	if (rxu_idle(c))
		rxu_nop(c); /* settled when it completes */
}

/* Rejected (said, ERROR queued): send it, then end. */
static void rxu_drain(struct hop_conn *c)
{
	if (c->st == RXU_END)
		return;
	c->st = RXU_DRAIN;
	c->since = io_now_ns();
	if (c->rd_op.busy)
		uring_cancel(c->hl->l, &c->rd_op);
	if (!c->olen && !c->wr_op.busy) {
		rxu_end(c);
		return;
	}
	rxu_send(c);
}

static void rxu_recv(struct hop_conn *c, void *at, size_t len)
{
	io_uring_prep_recv(uring_sqe(c->hl->l, &c->rd_op), c->fd, at, len, 0);
}

/*
 * Reserve for the payload of the frame taken: true when reserved (what
 * rbuf held of it copied), false when waiting for space or ended.
 */
static bool rxu_reserve(struct hop_conn *c)
{
	struct bring_io *io = c->hl->src->io;
	int ret;

	for (;;) {
		ret = bring_reserve(io->r, c->dlen, &c->resv, 0);
		if (!ret)
			break;
		if (ret != -EAGAIN && ret != -ETIMEDOUT) {
			rxu_end(c); /* closed (-EPIPE) */
			return false;
		}
		ret = bring_write_wait_prepare(io->r, c->dlen, &c->ww);
		if (ret == 1)
			continue;
		if (ret < 0) {
			rxu_end(c);
			return false;
		}
		io_stat_add(io, full_waits, 1);
		c->st = RXU_SPACE;
		c->since = io_now_ns();
		uring_data_wait(c->hl->l, &c->sp_op, &c->ww);
		return false;
	}
	c->resv_open = true;
	rx_payload_buffered(c, c->resv.data);
	return true;
}

/* The payload is in: commit it; false when the connection ended. */
static bool rxu_commit(struct hop_conn *c)
{
	c->resv_open = false;
	if (rx_commit(c, &c->resv)) {
		rxu_end(c);
		return false;
	}
	c->st = RXU_HEAD;
	return true;
}

/*
 * How much a recv into rbuf asks for: after a large payload only the
 * next frame's header (a DATA header is 16 bytes), so that the next
 * payload goes straight into its reservation, none of it through rbuf;
 * else as much as rbuf holds, many small frames per recv.
 */
static size_t rxu_head_want(const struct hop_conn *c)
{
	if (!c->rlen && c->dlen >= HOP_RX_BUF / 2)
		return HOP_HDR + HOP_DATA_MIN;
	return HOP_RX_BUF - c->rlen;
}

/* Take what is buffered, then arm the recv (or the wait) that follows. */
static void rxu_step(struct hop_conn *c)
{
	int ret;

	for (;;) {
		if (c->st != RXU_HEAD || c->rd_op.busy)
			break;
		if (c->hl->stopping) {
			rxu_end(c);
			return;
		}
		ret = rx_frames(c);
		if (ret == RX_MORE) {
			rxu_recv(c, c->rbuf + c->rlen, rxu_head_want(c));
			break;
		}
		if (ret == RX_PARK) {
			c->st = RXU_PARKED;
			c->since = io_now_ns();
			break;
		}
		if (ret == RX_END) {
			rxu_drain(c);
			return;
		}
		if (!rxu_reserve(c))
			break;
		if (c->dhave < c->dlen) {
			c->st = RXU_BODY;
			rxu_recv(c, (char *)c->resv.data + c->dhave,
				 c->dlen - c->dhave);
			break;
		}
		if (!rxu_commit(c))
			return;
	}
	rxu_send(c);
}

static void rxu_on_recv(struct hop_conn *c, int res, unsigned int flags)
{
	char why[HOP_ERROR_MAX];
	int ret;

	if (c->st == RXU_END || c->st == RXU_DRAIN)
		return;
	if (c->st == RXU_PARKED) { /* rxu_resume()'s NOP */
		ret = rx_claim_try(c, why, sizeof(why));
		if (ret > 0)
			return;
		if (ret < 0 || rx_hello_open(c, why, sizeof(why))) {
			rx_reject(c, why);
			rxu_drain(c);
			return;
		}
		c->st = RXU_HEAD;
		c->last_rx = io_now_ns();
		rxu_step(c);
		return;
	}
	if (res == -EAGAIN || res == -EINTR || res == -ENOBUFS) {
		res = 0; /* nothing came: the same recv again */
	} else if (res <= 0) {
		rxu_end(c); /* the sender closed (or reset) */
		return;
	}
	if (res)
		rx_received(c, (size_t)res);
	if (c->st == RXU_BODY) {
		c->dhave += (size_t)res;
		if (c->dhave < c->dlen) {
			rxu_recv(c, (char *)c->resv.data + c->dhave,
				 c->dlen - c->dhave);
			return;
		}
		if (!rxu_commit(c))
			return;
	} else {
		c->rlen += (size_t)res;
	}
	rxu_step(c);
	/* The socket is empty: everything that came is committed. */
	if (!(flags & IORING_CQE_F_SOCK_NONEMPTY) &&
	    c->rx.phase == HOP_RX_STREAM && c->st != RXU_END &&
	    c->st != RXU_DRAIN) {
		rx_ack(c);
		rxu_send(c);
	}
}

static void rxu_on_send(struct hop_conn *c, int res)
{
	if (c->st == RXU_END)
		return;
	if (res < 0 && res != -EAGAIN && res != -EINTR && res != -ENOBUFS) {
		rxu_end(c);
		return;
	}
	if (res > 0) {
		memmove(c->obuf, c->obuf + res, c->olen - (size_t)res);
		c->olen -= (size_t)res;
		c->last_out = io_now_ns();
	}
	if (c->st == RXU_DRAIN && !c->olen) {
		rxu_end(c);
		return;
	}
	rxu_send(c);
}

static void rxu_on_space(struct hop_conn *c)
{
	rxu_space_done(c);
	if (c->st != RXU_SPACE)
		return;
	c->st = RXU_HEAD;
	c->last_rx = io_now_ns(); /* the peer waited for us, not we for it */
	if (!rxu_reserve(c))
		return;
	if (c->dhave < c->dlen) {
		c->st = RXU_BODY;
		rxu_recv(c, (char *)c->resv.data + c->dhave, c->dlen - c->dhave);
		rxu_send(c);
		return;
	}
	if (rxu_commit(c))
		rxu_step(c);
}

static void rxu_listen_settle(struct hop_listen *hl);

/* After every event of @c: an ended connection with its ops back is freed. */
static void rxu_settle(struct hop_conn *c)
{
	struct hop_listen *hl = c->hl;
	struct hop_conn **pp;

	if (c->st != RXU_END || !rxu_idle(c))
		return;
	/* No recv writes into it any more. */
	if (c->resv_open)
		bring_abort(hl->src->io->r, &c->resv);
	c->resv_open = false;
	for (pp = &hl->conns; *pp != c; pp = &(*pp)->next)
		;
	*pp = c->next;
	rx_release(c);
	conn_free_(c);
	rxu_listen_settle(hl);
}

static void rxu_arm_tick(struct hop_listen *hl)
{
	unsigned int ms = hop_hb_ms(hl->src->io) / 2;
	struct hop_conn *c;

	for (c = hl->conns; c; c = c->next)
		if (c->npend)
			ms = 20; /* durability interval: acks follow the flush */
	if (hl->tm_op.busy || hl->stopping)
		return;
	hl->ts.tv_sec = ms / 1000;
	hl->ts.tv_nsec = (long long)(ms % 1000) * 1000000LL;
	io_uring_prep_timeout(uring_sqe(hl->l, &hl->tm_op), &hl->ts, 0, 0);
}

static void rxu_arm_accept(struct hop_listen *hl)
{
	if (hl->acc_op.busy || hl->stopping)
		return;
	io_uring_prep_multishot_accept(uring_sqe(hl->l, &hl->acc_op), hl->lfd,
				       NULL, NULL, SOCK_CLOEXEC);
}

/* The tick: silent peers, heartbeats, acks, parked HELLOs, accepts. */
static void rxu_on_tick(struct hop_listen *hl)
{
	uint64_t now = io_now_ns(), dead;
	struct hop_conn *c;

	dead = (uint64_t)hop_hb_ms(hl->src->io) * HOP_DEAD_FACTOR * 1000000ULL;
	for (c = hl->conns; c; c = c->next) {
		switch (c->st) {
		case RXU_HEAD:
		case RXU_BODY:
			if (rx_silent(c, now, c->st == RXU_BODY)) {
				rxu_end(c);
				continue;
			}
			if (c->st == RXU_HEAD && c->rx.phase == HOP_RX_STREAM)
				rx_ack(c); /* what became durable */
			/* fall through */
		case RXU_SPACE:
			if (rx_unread(c, now)) {
				rxu_end(c); /* it takes no ERROR either */
				continue;
			}
			rx_ping_if_due(c);
			rxu_send(c);
			break;
		case RXU_PARKED:
			if (now - c->since > 3000000000ULL) {
				char why[HOP_ERROR_MAX];

				snprintf(why, sizeof(why),
					 "stream '%s' is still held by an earlier connection",
					 c->id);
				rx_reject(c, why);
				rxu_drain(c);
			}
			break;
		case RXU_DRAIN:
			if (now - c->since > dead)
				rxu_end(c);
			break;
		case RXU_END:
			break;
		}
	}
	if (hl->accept_at && now >= hl->accept_at) {
		hl->accept_at = 0;
		rxu_arm_accept(hl);
	}
	rxu_arm_tick(hl);
}

static void rxu_on_accept(struct hop_listen *hl, int res, unsigned int flags)
{
	struct hop_conn *c;
	unsigned int pause;

	hl->acc_op.busy = flags & IORING_CQE_F_MORE;
	if (res >= 0) {
		if (hl->stopping) {
			close(res);
		} else if ((c = conn_new(hl, res))) {
			c->rd_op = (struct op){ .type = OP_HOP_RX, .obj = c };
			c->wr_op = c->rd_op;
			c->sp_op = c->rd_op;
			c->next = hl->conns;
			hl->conns = c;
			rxu_step(c);
		}
	}
	if (hl->acc_op.busy)
		return;
	pause = res < 0 ? source_accept_failed(hl->src, res) : 0;
	if (pause) /* out of fds: the tick accepts again */
		hl->accept_at = io_now_ns() + pause * 1000000ULL;
	else
		rxu_arm_accept(hl);
}

/* Stopping, and nothing of it in flight any more: the source is done. */
static void rxu_listen_settle(struct hop_listen *hl)
{
	if (!hl->stopping || hl->conns || hl->acc_op.busy || hl->tm_op.busy)
		return;
	if (hl->lfd >= 0)
		close(hl->lfd);
	hl->lfd = -1;
	/* relaxed: read by the loop's thread, and by stats (state only) */
	__atomic_store_n(&hl->src->finished, true, __ATOMIC_RELAXED);
}

/* Start the source @src in the loop @l: it accepts at once. */
void hop_rx_uring_start(struct loop *l, struct source *src)
{
	struct hop_listen *hl = src->hop;

	hl->l = l;
	hl->acc_op = (struct op){ .type = OP_HOP_LISTEN, .obj = hl };
	hl->tm_op = hl->acc_op;
	rxu_arm_accept(hl);
	rxu_arm_tick(hl);
}

/*
 * bring_io_stop(): connections end without acking what they hold (as
 * the threads do), the listening socket closes once its accept is back.
 */
void hop_rx_uring_stop(struct source *src)
{
	struct hop_listen *hl = src->hop;
	struct hop_conn *c;

	if (!hl->l || hl->stopping)
		return;
	hl->stopping = true;
	if (hl->acc_op.busy)
		uring_cancel(hl->l, &hl->acc_op);
	if (hl->tm_op.busy)
		uring_cancel(hl->l, &hl->tm_op);
	for (c = hl->conns; c; c = c->next)
		rxu_end(c);
	rxu_listen_settle(hl);
}

/* A completion of the listener's ACCEPT or tick. */
void hop_rx_uring_listen_event(struct op *op, int res, unsigned int flags)
{
	struct hop_listen *hl = op->obj;

	if (op == &hl->acc_op) {
		rxu_on_accept(hl, res, flags);
	} else {
		hl->tm_op.busy = false;
		if (!hl->stopping)
			rxu_on_tick(hl);
	}
	rxu_listen_settle(hl);
}

/* A completion of one of a connection's ops. */
void hop_rx_uring_event(struct op *op, int res, unsigned int flags)
{
	struct hop_conn *c = op->obj;

	if (op == &c->rd_op)
		rxu_on_recv(c, res, flags);
	else if (op == &c->wr_op)
		rxu_on_send(c, res);
	else
		rxu_on_space(c);
	rxu_settle(c);
}

/*
 * The ring's notify eventfd was written (io_uring without FUTEX_WAIT):
 * every space wait pending on it ends, as its FUTEX_WAIT would have.
 */
void hop_rx_uring_ringfd(struct source *src)
{
	struct hop_conn *c, *next;

	for (c = src->hop->conns; c; c = next) {
		next = c->next; /* rxu_settle() may free c */
		if (!c->sp_op.busy)
			continue;
		c->sp_op.busy = false;
		rxu_on_space(c);
		rxu_settle(c);
	}
}

int hop_source_add(struct bring_io *io, struct source *src)
{
	struct hop_listen *hl = calloc(1, sizeof(*hl));
	struct endpoint tcp;
	unsigned int waited;
	int fd;

	if (!hl)
		return -ENOMEM;
	hl->src = src;
	pthread_mutex_init(&hl->lock, NULL);
	pthread_cond_init(&hl->cond, NULL);
	/*
	 * Listen as tcp-listen: does. Started again at once after a SIGKILL
	 * of its predecessor on io_uring, a receiver was seen to find its
	 * port still taken (about once in 30 kill loops; likely the
	 * listening socket held by that io_uring's pending ACCEPT until its
	 * teardown, which runs after the process is gone): it tries again
	 * for a while.
	 */
	tcp = src->ep;
	tcp.kind = EP_TCP_LISTEN;
	for (waited = 0;; waited += 20) {
		fd = ep_listen(&tcp, &src->port);
		if (fd != -EADDRINUSE || waited >= HOP_BIND_RETRY_MS)
			break;
		usleep(20000);
	}
	if (fd < 0) {
		free(hl);
		return fd;
	}
	hl->lfd = fd;
	src->hop = hl;
	return 0;
}

void hop_source_free(struct source *src)
{
	struct hop_listen *hl = src->hop;
	struct hop_conn *c;

	if (!hl)
		return;
	/* io_uring mode, a loop that failed: what it left (no op runs). */
	while ((c = hl->conns)) {
		hl->conns = c->next;
		if (c->resv_open)
			bring_abort(src->io->r, &c->resv);
		if (c->w)
			bring_writer_close(c->w);
		conn_free_(c);
	}
	if (hl->lfd >= 0)
		close(hl->lfd);
	pthread_mutex_destroy(&hl->lock);
	pthread_cond_destroy(&hl->cond);
	free(hl);
	src->hop = NULL;
}

/* ---- life cycle --------------------------------------------------------- */

/* The eventfd bring_io_stop() writes for the hop's threads. */
int hop_wake_fd(struct bring_io *io)
{
	if (io->hop_fd < 0)
		io->hop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return io->hop_fd < 0 ? -errno : 0;
}

static int start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -err;
}

/*
 * Before the io's loop runs: readv/writev mode starts the hop's threads;
 * io_uring mode runs both endpoints in its loop (hop_tx_uring_start(),
 * hop_rx_uring_start()), or these threads when its ring cannot be made.
 */
int hop_start(struct bring_io *io)
{
	return io->uring ? 0 : hop_start_threads(io);
}

/*
 * A thread per bring-listen: source (and one per connection it accepts)
 * and one per bring: sink. Receivers first: a failure stops the io, and
 * what started is joined by hop_join().
 */
int hop_start_threads(struct bring_io *io)
{
	unsigned int i;
	int err;

	for (i = 0; i < io->nr_srcs; i++) {
		struct hop_listen *hl = io->srcs[i]->hop;

		if (!hl)
			continue;
		err = start(&hl->thread, hl_thread, hl);
		if (err)
			goto fail;
		hl->started = true;
	}
	for (i = 0; i < io->nr_hop_sinks; i++) {
		struct sink *s = io->hop_sinks[i];

		err = start(&s->thread, tx_thread, s->hop);
		if (err)
			goto fail;
		s->hop->started = true;
	}
	return 0;
fail:
	io_log("cannot start a thread for the bring: hop: %s\n",
	       strerror(-err));
	io_set_err(io, err);
	bring_io_stop(io);
	return err;
}

/* After the loop: the senders drain (the ring is closed), all end. */
void hop_join(struct bring_io *io)
{
	unsigned int i;

	for (i = 0; i < io->nr_hop_sinks; i++) {
		struct sink *s = io->hop_sinks[i];

		if (s->hop->started)
			pthread_join(s->thread, NULL);
		s->hop->started = false;
	}
	for (i = 0; i < io->nr_srcs; i++) {
		struct hop_listen *hl = io->srcs[i]->hop;

		if (hl && hl->started)
			pthread_join(hl->thread, NULL);
		if (hl)
			hl->started = false;
	}
}
