// SPDX-License-Identifier: GPL-2.0
/*
 * How much of the ring a source fills with payload when nothing drains
 * it (a sink that is down), in every io mode, in memory and file rings.
 *
 * A shipper's ring exists to ride out a collector outage: with 100-byte
 * messages arriving one per read, from one client or sixteen, over TCP
 * or as datagrams, the ring must hold at least 75% of its capacity in
 * payload (the rest is the 16-byte record header and alignment). Every
 * client sends one message per write and waits until the source has read
 * it before the next, so that each read finds one message: the worst
 * case for a source that reserves ring space before it reads.
 *
 * Large reads must stay zero copy: a burst of lines is read straight into
 * ring space, and what the sources copied (bring_io_stats.copied) is
 * only the partial lines carried from one read to the next.
 *
 * What a source holds outside the ring is bounded too: a slow client's
 * partial line is copied a bounded number of times per byte, staging is
 * capped for all connections together, and idle connections are closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bring.h"
#include "bring_io.h"
#include "kselftest_harness.h"
#include "io_test_util.h"

#define MSG_LEN 100 /* bytes per message, its '\n' included (lines) */
#define MAX_CLIENTS 16

static bool sanitized(void)
{
	return getenv("BRING_SANITIZED") != NULL;
}

/* The ring: big enough for a thousand messages, small enough to fill. */
static size_t ring_capacity(void)
{
	return 64 << 10;
}

struct fill {
	struct bring_io *io;
	int port;
	bool udp;
	int framing;
	bool per_conn; /* a connection per message, as logger(1) makes */
	unsigned int id;
	_Atomic uint64_t *sent; /* bytes written by every client */
	_Atomic bool *stop;
	int err;
};

static uint64_t bytes_in(struct bring_io *io)
{
	struct bring_io_stats st = { .sz = sizeof(st) };

	bring_io_get_stats(io, &st);
	return st.bytes_in;
}

static int connect_to(int port, bool udp)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC,
			0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * One client: a message per write, then wait until the sources read all
 * that was sent so far, so that the next write is the next read.
 */
static void *client_run(void *arg)
{
	struct fill *f = arg;
	char msg[MSG_LEN];
	uint64_t total;
	unsigned int i;
	int fd = connect_to(f->port, f->udp);

	if (fd < 0) {
		f->err = errno;
		return NULL;
	}
	for (i = 0; !*f->stop; i++) {
		if (f->per_conn && i) {
			close(fd);
			fd = connect_to(f->port, f->udp);
			if (fd < 0) {
				f->err = errno;
				return NULL;
			}
		}
		memset(msg, 'a' + f->id % 26, sizeof(msg));
		snprintf(msg, sizeof(msg), "%02u-%08u", f->id, i);
		msg[11] = ' ';
		if (f->framing == BRING_IO_LINES && !f->udp)
			msg[MSG_LEN - 1] = '\n';
		if (write(fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg)) {
			f->err = errno;
			break;
		}
		total = *f->sent += sizeof(msg);
		while (!*f->stop && bytes_in(f->io) < total)
			usleep(100);
	}
	close(fd);
	return NULL;
}

struct io_thread {
	struct bring_io *io;
	int ret;
};

static void *io_thread_run(void *arg)
{
	struct io_thread *t = arg;

	t->ret = bring_io_run(t->io);
	return NULL;
}

/*
 * Wait until the source waits for space and has read nothing more for
 * 100 ms: the ring is as full as it gets. false after 20 s.
 */
static bool wait_full(struct bring_io *io)
{
	struct bring_io_stats st = { .sz = sizeof(st) };
	uint64_t end = now_ms() + 20000, last = 0, since = now_ms();

	while (now_ms() < end) {
		bring_io_get_stats(io, &st);
		if (st.bytes_in != last) {
			last = st.bytes_in;
			since = now_ms();
		} else if (st.full_waits && now_ms() - since >= 100) {
			return true;
		}
		usleep(5000);
	}
	return false;
}

/*
 * Payload bytes the reader can read, with the records (*@recs) and the
 * messages in them (*@msgs; lines: a chunk record holds several).
 */
static uint64_t held_payload(struct bring_reader *rd, uint64_t *recs,
			     uint64_t *msgs, bool lines)
{
	struct bring_msg m;
	uint64_t bytes = 0;
	size_t i;

	*recs = *msgs = 0;
	while (bring_reader_next(rd, &m, 0) == 0) {
		bytes += m.len;
		(*recs)++;
		(*msgs)++;
		for (i = 0; lines && i < m.len; i++)
			*msgs += ((const char *)m.data)[i] == '\n';
		if (bring_reader_shift(rd))
			break;
	}
	return bytes;
}

FIXTURE(cap)
{
	char dir[64];
	char path[PATH_MAX];
};

IO_MODE_VARIANTS(cap);

FIXTURE_SETUP(cap)
{
	if (io_mode_missing(variant->mode))
		SKIP(return, "%s", io_mode_missing(variant->mode));
	strcpy(self->dir, "/tmp/capacity_test.XXXXXX");
	ASSERT_NE_NULL(mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/ring", self->dir);
}

FIXTURE_TEARDOWN(cap)
{
	if (!self->dir[0])
		return;
	unlink(self->path);
	rmdir(self->dir);
}

struct fill_case {
	unsigned int clients;
	bool udp;
	bool file; /* a file ring at self->path */
	int framing;
	bool per_conn;
};

/*
 * Fill a ring whose only reader reads nothing, through a tcp-listen: or
 * udp-listen: source, then stop and count what the ring holds.
 */
static void fill_case(struct __test_metadata *_metadata, const char *path,
		      enum io_mode mode, const struct fill_case *fc)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_mode_io_flags(mode),
		      .framing = fc->framing);
	struct bring_io_stats st = { .sz = sizeof(st) };
	struct fill f[MAX_CLIENTS];
	pthread_t th[MAX_CLIENTS], ioth;
	_Atomic uint64_t sent = 0;
	_Atomic bool stop = false;
	struct io_thread t = { 0 };
	size_t cap = ring_capacity();
	struct bring_reader *rd;
	struct bring *r;
	uint64_t bytes, recs, msgs;
	double ratio;
	unsigned int i;
	bool full;

	r = fc->file ? bring_open(path, cap, &ro) : bring_new(cap, &ro);
	ASSERT_NE_NULL(r);
	cap = bring_capacity(r);
	rd = bring_reader_open(r, "down"); /* the sink that is down */
	ASSERT_NE_NULL(rd);
	t.io = bring_io_new(r, &o);
	ASSERT_NE_NULL(t.io);
	ASSERT_EQ(0, bring_io_add_source(t.io, fc->udp ?
						       "udp-listen:127.0.0.1:0" :
						       "tcp-listen:127.0.0.1:0"));
	ASSERT_EQ(0, pthread_create(&ioth, NULL, io_thread_run, &t));
	for (i = 0; i < fc->clients; i++) {
		f[i] = (struct fill){ .io = t.io,
				      .port = bring_io_source_port(t.io, 0),
				      .udp = fc->udp,
				      .framing = fc->framing,
				      .per_conn = fc->per_conn,
				      .id = i,
				      .sent = &sent,
				      .stop = &stop };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, client_run, &f[i]));
	}
	full = wait_full(t.io);
	stop = true;
	for (i = 0; i < fc->clients; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, f[i].err);
	}
	/* Closed first: a stop alone waits 500 ms for space that never comes. */
	bring_close(r);
	bring_io_stop(t.io);
	pthread_join(ioth, NULL);
	EXPECT_EQ(0, t.ret);
	EXPECT_TRUE(full);
	bring_io_get_stats(t.io, &st);

	bytes = held_payload(rd, &recs, &msgs,
			     fc->framing == BRING_IO_LINES && !fc->udp);
	ratio = (double)bytes / cap;
	TH_LOG("%u client%s, %s, %s ring: %llu messages, %llu payload bytes "
	       "in %zu: %.3f; %llu reads, %llu copied",
	       fc->clients, fc->clients > 1 ? "s" : "",
	       fc->udp ? "udp" : "tcp", fc->file ? "file" : "memory",
	       (unsigned long long)msgs, (unsigned long long)bytes, cap, ratio,
	       (unsigned long long)st.reads, (unsigned long long)st.copied);
	EXPECT_GE(ratio, 0.75);
	/* Small reads happened: most of them found one message. */
	EXPECT_GE(st.reads * 2, st.msgs_in);
	EXPECT_EQ(msgs, st.msgs_in);
	bring_reader_close(rd);
	bring_io_free(t.io);
	bring_free(r);
}

TEST_F(cap, one_tcp_client_fills_a_memory_ring)
{
	struct fill_case fc = { .clients = 1 };

	fill_case(_metadata, self->path, variant->mode, &fc);
}

TEST_F(cap, sixteen_tcp_clients_fill_a_memory_ring)
{
	struct fill_case fc = { .clients = 16 };

	fill_case(_metadata, self->path, variant->mode, &fc);
}

TEST_F(cap, one_tcp_client_fills_a_file_ring)
{
	struct fill_case fc = { .clients = 1, .file = true };

	fill_case(_metadata, self->path, variant->mode, &fc);
}

TEST_F(cap, sixteen_tcp_clients_fill_a_file_ring)
{
	struct fill_case fc = { .clients = 16, .file = true };

	fill_case(_metadata, self->path, variant->mode, &fc);
}

/* The end of each connection costs no ring space either. */
TEST_F(cap, a_connection_per_message_fills_a_memory_ring)
{
	struct fill_case fc = { .clients = 4, .per_conn = true };

	fill_case(_metadata, self->path, variant->mode, &fc);
}

TEST_F(cap, raw_reads_fill_a_memory_ring)
{
	struct fill_case fc = { .clients = 1, .framing = BRING_IO_RAW };

	fill_case(_metadata, self->path, variant->mode, &fc);
}

TEST_F(cap, udp_datagrams_fill_a_memory_ring)
{
	struct fill_case fc = { .clients = 16, .udp = true };

	fill_case(_metadata, self->path, variant->mode, &fc);
}

TEST_F(cap, udp_datagrams_fill_a_file_ring)
{
	struct fill_case fc = { .clients = 1, .udp = true, .file = true };

	fill_case(_metadata, self->path, variant->mode, &fc);
}

/*
 * A burst of lines written in 64 KiB pieces goes straight into ring
 * space: the sources copy only the partial line at the end of each read
 * (out of the reservation and into the next one), a few per cent of the
 * bytes, and records hold many lines each.
 */
TEST_F(cap, large_reads_stay_zero_copy)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_mode_io_flags(variant->mode));
	struct bring_io_stats st = { .sz = sizeof(st) };
	size_t total = sanitized() ? 1 << 20 : 4 << 20, n = 0, k;
	struct bring *r = bring_new(8 << 20, &ro);
	struct io_thread t = { 0 };
	struct bring_reader *rd;
	char *buf = malloc(total);
	uint64_t recs, msgs, bytes;
	unsigned int i = 0;
	pthread_t ioth;
	int fd;

	ASSERT_NE_NULL(r);
	ASSERT_NE_NULL(buf);
	while (total - n > 256) /* lines of 20 to 180 bytes */
		n += snprintf(buf + n, total - n, "%08u %.*s\n", i,
			      (int)(10 + (i * 37) % 160),
			      "the quick brown fox jumps over the lazy dog "
			      "the quick brown fox jumps over the lazy dog "
			      "the quick brown fox jumps over the lazy dog "
			      "the quick brown fox jumps over the lazy dog "),
		i++;
	rd = bring_reader_open(r, "down");
	ASSERT_NE_NULL(rd);
	t.io = bring_io_new(r, &o);
	ASSERT_NE_NULL(t.io);
	ASSERT_EQ(0, bring_io_add_source(t.io, "tcp-listen:127.0.0.1:0"));
	ASSERT_EQ(0, pthread_create(&ioth, NULL, io_thread_run, &t));
	fd = connect_to(bring_io_source_port(t.io, 0), false);
	ASSERT_GE(fd, 0);
	for (k = 0; k < n;) {
		ssize_t w = write(fd, buf + k, n - k < 65536 ? n - k : 65536);

		ASSERT_GT(w, 0);
		k += w;
	}
	close(fd);
	while (bytes_in(t.io) < n)
		usleep(1000);
	bring_io_stop(t.io);
	pthread_join(ioth, NULL);
	bring_io_get_stats(t.io, &st);
	bytes = held_payload(rd, &recs, &msgs, true);
	TH_LOG("%zu bytes in %llu reads, %llu records held %llu lines, "
	       "%llu bytes copied",
	       n, (unsigned long long)st.reads, (unsigned long long)recs,
	       (unsigned long long)msgs, (unsigned long long)st.copied);
	EXPECT_EQ(i, msgs);
	/* A chunk record leaves its last line's '\n' out. */
	EXPECT_EQ(n, bytes + recs);
	EXPECT_GE(msgs, 4 * recs);
	EXPECT_LT(st.copied * 20, n);
	bring_reader_close(rd);
	bring_io_free(t.io);
	bring_free(r);
	free(buf);
}

/* Start a loop on a memory ring of @cap with an idle reader "down". */
struct loop_case {
	struct bring *r;
	struct bring_reader *rd;
	struct io_thread t;
	pthread_t th;
	int port;
};

/* The same with a second source @more (a URI), or none. */
static int loop_start2(struct loop_case *lc, size_t cap,
		       const struct bring_io_opts *o, const char *more)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);

	lc->r = bring_new(cap, &ro);
	if (!lc->r)
		return -1;
	lc->rd = bring_reader_open(lc->r, "down");
	lc->t.io = bring_io_new(lc->r, o);
	if (!lc->rd || !lc->t.io ||
	    bring_io_add_source(lc->t.io, "tcp-listen:127.0.0.1:0"))
		return -1;
	if (more && bring_io_add_source(lc->t.io, more))
		return -1;
	lc->port = bring_io_source_port(lc->t.io, 0);
	return pthread_create(&lc->th, NULL, io_thread_run, &lc->t) ? -1 : 0;
}

static int loop_start(struct loop_case *lc, size_t cap,
		      const struct bring_io_opts *o)
{
	return loop_start2(lc, cap, o, NULL);
}

/*
 * Stop the loop: what its sources read goes in first (bytes_in counts a
 * read before its lines are pushed), the ring has room.
 */
static int loop_stop(struct loop_case *lc, struct bring_io_stats *st)
{
	bring_io_stop(lc->t.io);
	pthread_join(lc->th, NULL);
	bring_io_get_stats(lc->t.io, st);
	return lc->t.ret;
}

static void loop_free(struct loop_case *lc)
{
	bring_reader_close(lc->rd);
	bring_io_free(lc->t.io);
	bring_free(lc->r);
}

/* Wait until the sources read @bytes in all; false after 10 s. */
static bool wait_in(struct bring_io *io, uint64_t bytes)
{
	uint64_t end = now_ms() + 10000;

	while (bytes_in(io) < bytes)
		if (now_ms() > end)
			return false;
		else
			usleep(200);
	return true;
}

static int send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

/*
 * A client holds a long partial line and adds one byte per read, the
 * way a slow client (or an attacker) does: each byte is copied a
 * bounded number of times, not the whole carried line once per read
 * (issue 13: 18.5% CPU per such client), and the line arrives whole.
 */
TEST_F(cap, slow_partial_line_is_copied_a_bounded_number_of_times)
{
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_mode_io_flags(variant->mode));
	size_t held = sanitized() ? 64 << 10 : 256 << 10, n = held;
	unsigned int i, drips = sanitized() ? 50 : 200;
	struct bring_io_stats st = { .sz = sizeof(st) };
	struct loop_case lc = { 0 };
	char *line = malloc(held);
	uint64_t recs, msgs, bytes;
	int fd;

	ASSERT_NE_NULL(line);
	memset(line, 'x', held);
	ASSERT_EQ(0, loop_start(&lc, 4 << 20, &o));
	fd = connect_to(lc.port, false);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, send_all(fd, line, held));
	ASSERT_TRUE(wait_in(lc.t.io, n));
	for (i = 0; i < drips; i++) {
		ASSERT_EQ(0, send_all(fd, "y", 1));
		ASSERT_TRUE(wait_in(lc.t.io, ++n));
	}
	ASSERT_EQ(0, send_all(fd, "\n", 1));
	ASSERT_TRUE(wait_in(lc.t.io, ++n));
	close(fd);
	EXPECT_EQ(0, loop_stop(&lc, &st));
	bytes = held_payload(lc.rd, &recs, &msgs, true);
	TH_LOG("a %zu-byte line, %u one-byte reads: %llu bytes read, "
	       "%llu copied, %llu reads",
	       held + drips, drips, (unsigned long long)st.bytes_in,
	       (unsigned long long)st.copied, (unsigned long long)st.reads);
	EXPECT_EQ(1, msgs);
	EXPECT_EQ(held + drips, bytes);
	EXPECT_LE(st.copied, 6 * st.bytes_in);
	loop_free(&lc);
	free(line);
}

struct holder {
	int port;
	char letter;
	size_t len;
	int fd;
};

/*
 * Sixteen clients each hold a 256 KiB partial line, more than the
 * 1 MiB staging cap of all connections together: staging stays under
 * the cap (plus 16 KiB each), the lines that do not fit are cut (split
 * by default: no byte is lost) and every byte arrives once the lines end.
 */
TEST_F(cap, staging_is_capped_across_connections)
{
	size_t total = 1 << 20, len = sanitized() ? 128 << 10 : 256 << 10;
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_mode_io_flags(variant->mode),
		      .stage_total = total);
	struct bring_io_stats st = { .sz = sizeof(st) };
	uint64_t max_staged = 0, per[MAX_CLIENTS] = { 0 }, sent = 0;
	struct holder h[MAX_CLIENTS];
	struct loop_case lc = { 0 };
	char *line = malloc(len);
	struct bring_msg m;
	unsigned int i;

	ASSERT_NE_NULL(line);
	ASSERT_EQ(0, loop_start(&lc, 16 << 20, &o));
	for (i = 0; i < MAX_CLIENTS; i++) {
		h[i].fd = connect_to(lc.port, false);
		ASSERT_GE(h[i].fd, 0);
		memset(line, 'a' + i, len);
		ASSERT_EQ(0, send_all(h[i].fd, line, len));
		sent += len;
		/* One after the other: each is read before the next. */
		ASSERT_TRUE(wait_in(lc.t.io, sent));
		bring_io_get_stats(lc.t.io, &st);
		if (st.staged > max_staged)
			max_staged = st.staged;
	}
	for (i = 0; i < MAX_CLIENTS; i++) {
		ASSERT_EQ(0, send_all(h[i].fd, "\n", 1));
		close(h[i].fd);
	}
	ASSERT_TRUE(wait_in(lc.t.io, sent + MAX_CLIENTS));
	EXPECT_EQ(0, loop_stop(&lc, &st));
	TH_LOG("%u partial lines of %zu bytes: staging at most %llu bytes "
	       "(cap %zu), %llu split",
	       MAX_CLIENTS, len, (unsigned long long)max_staged, total,
	       (unsigned long long)st.split);
	EXPECT_LE(max_staged, total + MAX_CLIENTS * (16 << 10));
	EXPECT_GT(st.split, 0);
	while (bring_reader_next(lc.rd, &m, 0) == 0) {
		for (size_t k = 0; k < m.len; k++) {
			unsigned char b = ((const unsigned char *)m.data)[k];

			if (b >= 'a' && b < 'a' + MAX_CLIENTS)
				per[b - 'a']++;
		}
		bring_reader_shift(lc.rd);
	}
	for (i = 0; i < MAX_CLIENTS; i++)
		EXPECT_EQ(len, per[i]);
	loop_free(&lc);
	free(line);
}

/*
 * idle_ms: a connection that sends nothing for that long is closed and
 * its partial line dropped; one that keeps sending is not, and neither is
 * a tail: source whose file stays quiet (it is not a connection).
 */
TEST_F(cap, idle_connection_is_closed)
{
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_mode_io_flags(variant->mode),
		      .idle_ms = 300);
	struct bring_io_stats st = { .sz = sizeof(st) };
	struct loop_case lc = { 0 };
	uint64_t recs, msgs, t0, closed_after = 0;
	char b, tail[PATH_MAX + 8];
	int idle, busy, i, fd;

	fd = open(self->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_GE(fd, 0);
	snprintf(tail, sizeof(tail), "tail:%s", self->path);
	ASSERT_EQ(0, loop_start2(&lc, 1 << 20, &o, tail));
	idle = connect_to(lc.port, false);
	busy = connect_to(lc.port, false);
	ASSERT_GE(idle, 0);
	ASSERT_GE(busy, 0);
	ASSERT_EQ(0, send_all(idle, "no end", 6));
	t0 = now_ms();
	for (i = 0; i < 20; i++) { /* 1 s: a line every 50 ms */
		ASSERT_EQ(0, send_all(busy, "still here\n", 11));
		usleep(50000);
		if (!closed_after && recv(idle, &b, 1, MSG_DONTWAIT) == 0)
			closed_after = now_ms() - t0;
	}
	for (i = 0; !closed_after && i < 100; i++) {
		if (recv(idle, &b, 1, MSG_DONTWAIT) == 0)
			closed_after = now_ms() - t0;
		usleep(20000);
	}
	TH_LOG("idle connection closed after %llu ms",
	       (unsigned long long)closed_after);
	EXPECT_GE(closed_after, 250);
	EXPECT_LE(closed_after, 2000);
	/* The busy one still works, and so does the quiet tail: source. */
	EXPECT_EQ(0, send_all(busy, "last\n", 5));
	EXPECT_EQ(0, send_all(fd, "tailed\n", 7));
	EXPECT_TRUE(wait_in(lc.t.io, 6 + 20 * 11 + 5 + 7));
	close(idle);
	close(busy);
	close(fd);
	EXPECT_EQ(0, loop_stop(&lc, &st));
	EXPECT_EQ(1, st.idle_closed);
	EXPECT_EQ(1, st.dropped);
	held_payload(lc.rd, &recs, &msgs, true);
	EXPECT_EQ(22, msgs);
	loop_free(&lc);
}

/*
 * A source reading a regular file keeps at most its read-ahead in the
 * ring (bring_io_opts.read_ahead): the file holds the rest, and a ring
 * whose sink is slow stays in its lap jumps' working set instead of
 * being written end to end. Then the sink drains and every byte comes
 * out, in order. Without one, and for tail: always, the source fills
 * the ring as before.
 */
struct read_ahead_case {
	size_t read_ahead; /* bring_io_opts.read_ahead */
	bool tail; /* tail: from the start, not file: */
	int framing;
	size_t at_most; /* bytes the ring may hold while the sink is down */
	size_t at_least;
};

/*
 * Numbered lines of 20 to 60 bytes, nearly @total bytes of them, into a
 * new file at @path; the lines (*@n bytes, malloc'd) or NULL.
 */
static char *lines_file(const char *path, size_t total, size_t *n)
{
	char *buf = malloc(total);
	unsigned int i = 0;

	*n = 0;
	if (!buf)
		return NULL;
	while (total - *n > 64)
		*n += snprintf(buf + *n, total - *n, "%08u %.*s\n", i,
			       (int)(10 + (i * 37) % 40),
			       "the quick brown fox jumps over the lazy dog"),
			i++;
	if (spew(path, buf, *n)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Wait until @io read @total bytes, or waits for space and reads no more. */
static void wait_read_or_full(struct bring_io *io, uint64_t total)
{
	struct bring_io_stats st = { .sz = sizeof(st) };
	uint64_t end = now_ms() + 20000, last = 0, since = now_ms();

	while (now_ms() < end) {
		bring_io_get_stats(io, &st);
		if (st.bytes_in == total)
			return;
		if (st.bytes_in != last) {
			last = st.bytes_in;
			since = now_ms();
		} else if (st.full_waits && now_ms() - since >= 100) {
			return;
		}
		usleep(5000);
	}
}

static void read_ahead_case(struct __test_metadata *_metadata,
			    const char *dir, enum io_mode mode,
			    const struct read_ahead_case *rc)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_mode_io_flags(mode) |
			      (rc->tail ? BRING_IO_TAIL_FROM_START : 0),
		      .framing = rc->framing, .read_ahead = rc->read_ahead);
	size_t total = 12 << 20, n, used;
	struct bring *r = bring_new(16 << 20, &ro);
	char path[PATH_MAX], uri[PATH_MAX + 8];
	struct bring_stats rs = { .sz = sizeof(rs) };
	struct io_thread t = { 0 };
	uint64_t got = 0, end = now_ms() + 30000;
	struct bring_reader *rd;
	char *buf, *out = malloc(total);
	pthread_t ioth;

	ASSERT_NE_NULL(r);
	ASSERT_NE_NULL(out);
	snprintf(path, sizeof(path), "%s/lines", dir);
	buf = lines_file(path, total, &n);
	ASSERT_NE_NULL(buf);
	rd = bring_reader_open(r, "slow");
	ASSERT_NE_NULL(rd);
	t.io = bring_io_new(r, &o);
	ASSERT_NE_NULL(t.io);
	snprintf(uri, sizeof(uri), "%s:%s", rc->tail ? "tail" : "file", path);
	ASSERT_EQ(0, bring_io_add_source(t.io, uri));
	ASSERT_EQ(0, pthread_create(&ioth, NULL, io_thread_run, &t));
	wait_read_or_full(t.io, n);
	ASSERT_EQ(0, bring_get_stats(r, &rs));
	used = rs.used;
	TH_LOG("%s, read-ahead %zu, %s: the ring held %zu bytes of a %zu-byte file",
	       rc->tail ? "tail:" : "file:", rc->read_ahead,
	       rc->framing == BRING_IO_LINES ? "lines" : "raw", used, n);
	EXPECT_LE(used, rc->at_most);
	EXPECT_GE(used, rc->at_least);
	/* The sink comes back: all of it, in order. */
	while (got < n && now_ms() < end) {
		struct bring_msg m;

		if (bring_reader_next(rd, &m, 100))
			continue;
		ASSERT_LE(got + m.len + 1, n + 1);
		memcpy(out + got, m.data, m.len);
		got += m.len;
		/* A lines chunk record leaves its last '\n' out. */
		if (rc->framing == BRING_IO_LINES)
			out[got++] = '\n';
		ASSERT_EQ(0, bring_reader_shift(rd));
	}
	EXPECT_EQ(n, got);
	EXPECT_EQ(0, memcmp(buf, out, n));
	bring_io_stop(t.io);
	pthread_join(ioth, NULL);
	EXPECT_EQ(0, t.ret);
	bring_reader_close(rd);
	bring_io_free(t.io);
	bring_free(r);
	unlink(path);
	free(buf);
	free(out);
}

TEST_F(cap, a_file_source_keeps_at_most_its_read_ahead)
{
	static const struct read_ahead_case cases[] = {
		/* 4 MiB (bringcat's default), the last read fitting under */
		{ 4 << 20, false, BRING_IO_LINES, 4 << 20, 3 << 20 },
		{ 4 << 20, false, BRING_IO_RAW, 4 << 20, 3 << 20 },
		{ 1 << 20, false, BRING_IO_LINES, 1 << 20, 512 << 10 },
		/* none: the whole 12 MiB file, framing included */
		{ 0, false, BRING_IO_LINES, 16 << 20, 12 << 20 },
		/* tail: always the whole file */
		{ 1 << 20, true, BRING_IO_LINES, 16 << 20, 12 << 20 },
	};
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		read_ahead_case(_metadata, self->dir, variant->mode, &cases[i]);
}

/*
 * A file source whose ring holds more than its read-ahead (here: the
 * unused end of its first reservation, which no reader passed) still
 * finishes at the file's end: the read that finds it reads nothing.
 */
TEST_F(cap, a_file_source_at_its_end_finishes_past_its_read_ahead)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_mode_io_flags(variant->mode),
		      .read_ahead = 64 << 10);
	struct bring_io_stats st = { .sz = sizeof(st) };
	struct bring_stats rs = { .sz = sizeof(rs) };
	struct bring *r = bring_new(1 << 20, &ro);
	char path[PATH_MAX], uri[PATH_MAX + 8];
	struct bring_reader *rd;
	struct bring_io *io;
	int fd;

	ASSERT_NE_NULL(r);
	rd = bring_reader_open(r, "later");
	ASSERT_NE_NULL(rd);
	snprintf(path, sizeof(path), "%s/one", self->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(6, write(fd, "a line", 6));
	close(fd);
	io = bring_io_new(r, &o);
	ASSERT_NE_NULL(io);
	snprintf(uri, sizeof(uri), "file:%s", path);
	ASSERT_EQ(0, bring_io_add_source(io, uri));
	ASSERT_EQ(0, bring_io_run(io)); /* returns: the source ended */
	bring_io_get_stats(io, &st);
	EXPECT_EQ(1, st.msgs_in);
	ASSERT_EQ(0, bring_get_stats(r, &rs));
	TH_LOG("the ring holds %llu bytes for a 6-byte line, read-ahead 64 KiB",
	       (unsigned long long)rs.used);
	bring_reader_close(rd);
	bring_io_free(io);
	bring_free(r);
	unlink(path);
}

/*
 * Sources that can wait (here: a file source with a read-ahead) let the
 * ring make lap jumps while its sinks are a little behind: sinks that
 * keep up read records only from the first working set W of each lap
 * (capacity / 8 here), never from the far end (Documentation/ring.rst).
 * A second reader always stays a record behind, as a pipelined sink
 * does, so the ring is never empty (which alone would let it jump).
 */
TEST_F(cap, a_file_source_lets_the_ring_jump_laps)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_mode_io_flags(variant->mode),
		      .read_ahead = 1 << 20);
	size_t cap = 16 << 20, total = 40 << 20, n, w = cap / 8;
	uint64_t got = 0, max_off = 0, laps = 0, end = now_ms() + 30000;
	struct bring *r = bring_new(cap, &ro);
	char path[PATH_MAX], uri[PATH_MAX + 8];
	struct io_thread t = { 0 };
	struct bring_reader *rd, *lag;
	pthread_t ioth;
	struct bring_msg m;
	char *buf;

	ASSERT_NE_NULL(r);
	snprintf(path, sizeof(path), "%s/lines", self->dir);
	buf = lines_file(path, total, &n);
	ASSERT_NE_NULL(buf);
	free(buf);
	rd = bring_reader_open(r, "sink");
	lag = bring_reader_open(r, "a record behind");
	ASSERT_NE_NULL(rd);
	ASSERT_NE_NULL(lag);
	t.io = bring_io_new(r, &o);
	ASSERT_NE_NULL(t.io);
	snprintf(uri, sizeof(uri), "file:%s", path);
	ASSERT_EQ(0, bring_io_add_source(t.io, uri));
	ASSERT_EQ(0, pthread_create(&ioth, NULL, io_thread_run, &t));
	while (got < n && now_ms() < end) {
		uint64_t off;

		if (bring_reader_next(rd, &m, 100))
			continue;
		if (got) { /* the record before this one */
			ASSERT_EQ(0, bring_reader_next(lag, &m, 0));
			ASSERT_EQ(0, bring_reader_shift(lag));
			ASSERT_EQ(0, bring_reader_next(rd, &m, 0));
		}
		off = (m.seq & (cap - 1)) + 16 + m.len;
		if (off > max_off)
			max_off = off;
		laps = m.seq / cap;
		got += m.len + 1; /* and the chunk's last '\n' */
		ASSERT_EQ(0, bring_reader_shift(rd));
	}
	EXPECT_EQ(n, got);
	TH_LOG("%zu bytes over %llu laps of %zu: records ended at most %llu bytes into a lap (W %zu)",
	       n, (unsigned long long)laps, cap, (unsigned long long)max_off, w);
	EXPECT_LE(max_off, w + (512 << 10));
	EXPECT_EQ(0, bring_reader_next(lag, &m, 0));
	EXPECT_EQ(0, bring_reader_shift(lag));
	bring_io_stop(t.io);
	pthread_join(ioth, NULL);
	EXPECT_EQ(0, t.ret);
	bring_reader_close(lag);
	bring_reader_close(rd);
	bring_io_free(t.io);
	bring_free(r);
	unlink(path);
}

/* Resident bytes of @pid's ring (its memfd's first mapping), or -1. */
static long long ring_rss(pid_t pid)
{
	char path[64], line[512];
	bool in_ring = false;
	long long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (kb < 0 && fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, ' ') &&
		    line[0] != ' ' && !strchr(line, ':'))
			in_ring = false; /* "ADDR-ADDR perms ..." without a path */
		if (strstr(line, "/memfd:bring:"))
			in_ring = true;
		else if (in_ring && sscanf(line, "Rss: %lld kB", &kb) == 1)
			kb *= 1024;
	}
	fclose(f);
	return kb;
}

/*
 * bringcat's default read-ahead keeps a file source within the slack of
 * its ring's lap jumps (W/2, 1 MiB for the default 64 MiB ring), so a
 * sink that keeps up reads only from the ring's first W = 2 MiB and its
 * far pages are never touched. At 4 MiB (the default before) the source
 * ran further ahead than the slack, the ring seldom jumped, and a
 * readv/writev sender walked 13 MiB of it: 13.3 page faults per MB
 * against 3.6 (Documentation/benchmarks.rst, session 10).
 */
TEST_F(cap, bringcat_file_source_stays_in_the_working_set_by_default)
{
	size_t total = 128 << 20, n, got = 0, held = 32 << 20;
	const size_t w = 2 << 20, limit = w + (2 << 20);
	char path[PATH_MAX], src[PATH_MAX + 8], dst[64], err[PATH_MAX];
	const char *args[] = { io_mode_flag(variant->mode, "--quiet"), "-i",
			       src, "-o", dst, NULL };
	long long rss;
	char *buf, *in;
	int lfd, fd, port;
	pid_t pid;
	ssize_t r;

	find_bringcat();
	if (access(bringcat, X_OK))
		SKIP(return, "%s not built", bringcat);
	snprintf(path, sizeof(path), "%s/lines", self->dir);
	snprintf(err, sizeof(err), "%s/err", self->dir);
	snprintf(src, sizeof(src), "file:%s", path);
	in = lines_file(path, total, &n);
	ASSERT_NE_NULL(in);
	buf = malloc(n);
	ASSERT_NE_NULL(buf);
	port = reserve_port(&lfd);
	ASSERT_LT(0, port);
	ASSERT_EQ(0, listen(lfd, 1));
	snprintf(dst, sizeof(dst), "tcp:127.0.0.1:%d", port);
	pid = spawn(NULL, err, args);
	ASSERT_LT(0, pid);
	fd = accept(lfd, NULL, NULL);
	ASSERT_LE(0, fd);
	/* All but the last 32 MiB: more than the sockets hold, so the
	 * sender is still there, its sink waiting, when its ring is looked
	 * at; then the rest. */
	while (got < n - held && (r = read(fd, buf + got, n - held - got)) > 0)
		got += (size_t)r;
	usleep(100000);
	rss = ring_rss(pid);
	while (got < n && (r = read(fd, buf + got, n - got)) > 0)
		got += (size_t)r;
	EXPECT_EQ(0, wait_rc(pid, 30000));
	ASSERT_EQ(n, got);
	EXPECT_EQ(0, memcmp(in, buf, n));
	TH_LOG("%zu bytes shipped: the sender's ring has %lld bytes resident (W %zu)",
	       n, rss, w);
	EXPECT_LT(0, rss);
	EXPECT_GE((long long)limit, rss);
	close(fd);
	close(lfd);
	free(buf);
	free(in);
	unlink(path);
	unlink(err);
}

/*
 * A client that sends numbered 100-byte lines in 64 KiB writes until
 * told to stop (or the source is gone).
 */
struct bulk {
	int port;
	_Atomic bool stop;
	uint64_t lines;
	int err;
};

static int write_full(int fd, const char *buf, size_t len)
{
	ssize_t n;

	for (; len; buf += n, len -= (size_t)n) {
		n = write(fd, buf, len);
		if (n < 0)
			return -1;
	}
	return 0;
}

static void *bulk_run(void *arg)
{
	struct bulk *b = arg;
	char buf[64 * MSG_LEN];
	int fd = connect_to(b->port, false);
	size_t i;

	if (fd < 0) {
		b->err = errno;
		return NULL;
	}
	while (!b->stop) {
		for (i = 0; i < sizeof(buf); i += MSG_LEN) {
			memset(buf + i, 'b', MSG_LEN - 1);
			snprintf(buf + i, 12, "%010llu", (unsigned long long)b->lines++);
			buf[i + 10] = ' ';
			buf[i + MSG_LEN - 1] = '\n';
		}
		if (write_full(fd, buf, sizeof(buf))) {
			b->err = errno;
			break;
		}
	}
	close(fd);
	return NULL;
}

/*
 * Check a record's lines against *@line, the next line's number; false
 * on a gap. A chunk record holds whole lines, the last one without its
 * '\n' (Documentation/io.rst).
 */
static bool lines_in_order(const struct bring_msg *m, uint64_t *line)
{
	const char *p = m->data;
	size_t i;

	if ((m->len + 1) % MSG_LEN)
		return false;
	for (i = 0; i < m->len; i += MSG_LEN, (*line)++)
		if (strtoull(p + i, NULL, 10) != *line)
			return false;
	return true;
}

/*
 * A tcp-listen: source into a ring: its sinks a little behind (a second
 * reader always a record behind, as a pipelined sink is), the ring still
 * makes lap jumps and stays in its working set W. Then both sinks stop
 * right after a jump, the slow one before it: the ring still fills to
 * its capacity (the claims escape, Documentation/ring.rst), not to the
 * room behind the stopped sink, about W; every line is there, in order.
 * Before escapes, socket sources let the ring jump only when it was
 * empty, which a pipelined pair never finds; before file rings escaped
 * (layout 3), bring_io gave a file ring with a socket source no slack,
 * and its receiver walked the whole file.
 */
static void tcp_source_jumps_case(struct __test_metadata *_metadata,
				  struct bring *r, size_t cap,
				  unsigned int io_flags)
{
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_flags);
	uint64_t max_off = 0, end = now_ms() + 30000, line = 0, prev = 0;
	uint64_t bytes = 0, recs = 0, w = cap / 8;
	struct bulk b = { 0 };
	struct io_thread t = { 0 };
	struct bring_reader *rd, *lag;
	pthread_t ioth, cl;
	struct bring_msg m;
	bool jumped = false;

	ASSERT_NE_NULL(r);
	rd = bring_reader_open(r, "sink");
	lag = bring_reader_open(r, "a record behind");
	ASSERT_NE_NULL(rd);
	ASSERT_NE_NULL(lag);
	t.io = bring_io_new(r, &o);
	ASSERT_NE_NULL(t.io);
	ASSERT_EQ(0, bring_io_add_source(t.io, "tcp-listen:127.0.0.1:0"));
	b.port = bring_io_source_port(t.io, 0);
	ASSERT_EQ(0, pthread_create(&ioth, NULL, io_thread_run, &t));
	ASSERT_EQ(0, pthread_create(&cl, NULL, bulk_run, &b));
	/* Read three laps' worth, "lag" a record behind "sink". */
	while (!jumped || m.seq < 3 * cap) {
		ASSERT_LT(now_ms(), end);
		if (bring_reader_next(rd, &m, 100))
			continue;
		if (prev) { /* the record before this one */
			ASSERT_EQ(0, bring_reader_next(lag, &m, 0));
			ASSERT_TRUE(lines_in_order(&m, &line));
			ASSERT_EQ(0, bring_reader_shift(lag));
			ASSERT_EQ(0, bring_reader_next(rd, &m, 0));
			if (m.seq != prev && m.seq >= cap)
				jumped = true;
		}
		if ((m.seq & (cap - 1)) + 16 + m.len > max_off)
			max_off = (m.seq & (cap - 1)) + 16 + m.len;
		prev = m.seq + 16 + ((m.len + 7) & ~7ULL);
		ASSERT_EQ(0, bring_reader_shift(rd));
	}
	TH_LOG("three laps of %zu: records ended at most %llu bytes into a lap (W %llu)",
	       cap, (unsigned long long)max_off, (unsigned long long)w);
	/*
	 * A claim past W jumps once the sinks are within W/2 of head (the
	 * slack) and looks again W/16 later when not: 2.2-3.7 MiB in
	 * unloaded runs. Without jumps, records run to the lap's end.
	 */
	EXPECT_LE(max_off, cap / 2);
	/* Until a record of "sink" follows a jump: "lag" is before it. */
	for (;;) {
		ASSERT_LT(now_ms(), end);
		if (bring_reader_next(rd, &m, 100))
			continue;
		ASSERT_EQ(0, bring_reader_next(lag, &m, 0));
		ASSERT_TRUE(lines_in_order(&m, &line));
		ASSERT_EQ(0, bring_reader_shift(lag));
		ASSERT_EQ(0, bring_reader_next(rd, &m, 0));
		ASSERT_EQ(0, bring_reader_shift(rd));
		if (m.seq != prev && !(m.seq & (cap - 1)))
			break;
		prev = m.seq + 16 + ((m.len + 7) & ~7ULL);
	}
	/* Both sinks are down now; the client fills the ring. */
	ASSERT_TRUE(wait_full(t.io));
	b.stop = true;
	bring_close(r);
	bring_io_stop(t.io);
	pthread_join(ioth, NULL);
	pthread_join(cl, NULL);
	EXPECT_EQ(0, t.ret);
	while (bring_reader_next(lag, &m, 0) == 0) {
		ASSERT_TRUE(lines_in_order(&m, &line));
		bytes += m.len + 1;
		recs++;
		ASSERT_EQ(0, bring_reader_shift(lag));
	}
	TH_LOG("sinks down after a jump: the ring holds %llu payload bytes in %llu records: %.3f of %zu",
	       (unsigned long long)bytes, (unsigned long long)recs,
	       (double)bytes / cap, cap);
	EXPECT_GE(bytes, cap * 3 / 4);
	bring_reader_close(lag);
	bring_reader_close(rd);
	bring_io_free(t.io);
}

TEST_F(cap, a_tcp_source_into_a_memory_ring_jumps_and_keeps_its_capacity)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	struct bring *r = bring_new(16 << 20, &ro);

	ASSERT_NE_NULL(r);
	tcp_source_jumps_case(_metadata, r, 16 << 20,
			      io_mode_io_flags(variant->mode));
	bring_free(r);
}

TEST_F(cap, a_tcp_source_into_a_file_ring_jumps_and_keeps_its_capacity)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	char path[PATH_MAX];
	struct bring *r;

	snprintf(path, sizeof(path), "%s/ring", self->dir);
	r = bring_open(path, 16 << 20, &ro);
	ASSERT_NE_NULL(r);
	tcp_source_jumps_case(_metadata, r, 16 << 20,
			      io_mode_io_flags(variant->mode));
	bring_free(r);
	unlink(path);
}

static uint64_t cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/*
 * A file source into a memory ring, its sink stopped right after a lap
 * jump with a second one before it: the source keeps its read-ahead and
 * waits for the sinks, asleep. A wait for room would end at once there,
 * since a claim could escape over the stopped sink's bytes; the source
 * spun on it at a whole CPU. Then the sinks read the whole file.
 */
TEST_F(cap, a_file_source_behind_a_sink_stopped_after_a_jump_sleeps)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_mode_io_flags(variant->mode),
		      .read_ahead = 1 << 20);
	size_t cap = 16 << 20, total = 96 << 20, n;
	uint64_t got = 0, prev = 0, end = now_ms() + 30000, t0, used;
	struct bring_stats st = { .sz = sizeof(st) };
	struct bring *r = bring_new(cap, &ro);
	char path[PATH_MAX], uri[PATH_MAX + 8];
	struct io_thread t = { 0 };
	struct bring_reader *rd, *lag;
	struct bring_msg m;
	pthread_t ioth;
	char *buf;

	ASSERT_NE_NULL(r);
	snprintf(path, sizeof(path), "%s/lines", self->dir);
	buf = lines_file(path, total, &n);
	ASSERT_NE_NULL(buf);
	free(buf);
	rd = bring_reader_open(r, "sink");
	lag = bring_reader_open(r, "a record behind");
	ASSERT_NE_NULL(rd);
	ASSERT_NE_NULL(lag);
	t.io = bring_io_new(r, &o);
	ASSERT_NE_NULL(t.io);
	snprintf(uri, sizeof(uri), "file:%s", path);
	ASSERT_EQ(0, bring_io_add_source(t.io, uri));
	ASSERT_EQ(0, pthread_create(&ioth, NULL, io_thread_run, &t));
	/* "sink" a record ahead of "lag" until it follows a jump. */
	for (;;) {
		ASSERT_LT(now_ms(), end);
		if (bring_reader_next(rd, &m, 100))
			continue;
		if (prev) {
			ASSERT_EQ(0, bring_reader_next(lag, &m, 0));
			got += m.len + 1;
			ASSERT_EQ(0, bring_reader_shift(lag));
			ASSERT_EQ(0, bring_reader_next(rd, &m, 0));
		}
		ASSERT_EQ(0, bring_reader_shift(rd));
		if (prev && m.seq != prev && !(m.seq & (cap - 1)))
			break;
		prev = m.seq + 16 + ((m.len + 7) & ~7ULL);
	}
	/* Both stopped: the source fills its read-ahead, then sleeps. */
	usleep(200 * 1000);
	t0 = cpu_us();
	usleep(500 * 1000);
	t0 = cpu_us() - t0;
	ASSERT_EQ(0, bring_get_stats(r, &st));
	used = st.used;
	TH_LOG("sinks stopped after a jump: %llu bytes held (read-ahead 1 MiB), %llu us of CPU in 500 ms",
	       (unsigned long long)used, (unsigned long long)t0);
	EXPECT_LT(t0, 100 * 1000);
	EXPECT_LE(used, (2 << 20) + (256 << 10));
	/* "lag" reads the rest; "sink" shifts along behind it. */
	while (got < n) {
		ASSERT_LT(now_ms(), end);
		if (bring_reader_next(lag, &m, 100))
			continue;
		got += m.len + 1;
		ASSERT_EQ(0, bring_reader_shift(lag));
		if (!bring_reader_next(rd, &m, 0))
			ASSERT_EQ(0, bring_reader_shift(rd));
	}
	EXPECT_EQ(n, got);
	bring_io_stop(t.io);
	pthread_join(ioth, NULL);
	EXPECT_EQ(0, t.ret);
	bring_reader_close(lag);
	bring_reader_close(rd);
	bring_io_free(t.io);
	bring_free(r);
	unlink(path);
}

/* bringcat's staging and idle options: bad values are clear errors. */
TEST(bringcat_staging_options_are_checked)
{
	static const struct {
		const char *opt, *val, *msg;
	} bad[] = {
		{ "--staging-max", "1K", "--staging-max: bad size '1K' (16K at least)" },
		{ "--staging-max", "lots", "--staging-max: bad size 'lots'" },
		{ "--staging-total", "0", "--staging-total: bad size '0'" },
		{ "--idle-timeout", "0", "--idle-timeout: bad seconds '0'" },
		{ "--idle-timeout", "1s", "--idle-timeout: bad seconds '1s'" },
		{ "--read-ahead", "1K", "--read-ahead: bad size '1K' (4K at least, or all)" },
		{ "--read-ahead", "most", "--read-ahead: bad size 'most'" },
	};
	char err[] = "/tmp/capacity_test.err.XXXXXX";
	unsigned int i;
	int fd = mkstemp(err);

	find_bringcat();
	if (access(bringcat, X_OK))
		SKIP(return, "%s not built", bringcat);
	ASSERT_GE(fd, 0);
	close(fd);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *args[] = { "-i", "stdin:", "-o", "stdout:",
				       bad[i].opt, bad[i].val, NULL };

		expect_exit(_metadata, err, args, 2, bad[i].msg);
	}
	unlink(err);
}

TEST_HARNESS_MAIN
