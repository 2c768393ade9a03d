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
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

FIXTURE_VARIANT(cap)
{
	enum io_mode mode;
};

FIXTURE_VARIANT_ADD(cap, uring) { .mode = IO_MODE_URING, };
FIXTURE_VARIANT_ADD(cap, fallback) { .mode = IO_MODE_FALLBACK, };
FIXTURE_VARIANT_ADD(cap, eventfd) { .mode = IO_MODE_EVENTFD, };

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

static unsigned int mode_flags(enum io_mode mode)
{
	return mode == IO_MODE_FALLBACK ? BRING_IO_NO_URING :
	       mode == IO_MODE_EVENTFD	? BRING_IO_NO_FUTEX_WAIT :
					  0;
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
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | mode_flags(mode),
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
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | mode_flags(variant->mode));
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
	while (total - n > 64) /* lines of 20 to 180 bytes */
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

TEST_HARNESS_MAIN
