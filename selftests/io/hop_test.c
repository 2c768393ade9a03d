// SPDX-License-Identifier: GPL-2.0
/*
 * The acknowledged hop, bring:HOST:PORT -> bring-listen:HOST:PORT, in the
 * three io modes and mixed (A on io_uring, B on readv/writev and the
 * reverse):
 *
 *   producer (this test) --push--> a.ring --A: bring:--> B --> b.ring
 *
 * The pipeline kill loop is the issue's: a writer appends and rotates
 * app.log, A tails it into a.ring and ships it over bring:, B writes
 * b.ring out to a file; A or B is SIGKILLed at random moments.
 *
 * Elsewhere A and B are bringcat processes with file rings; this test pushes
 * numbered lines into a.ring and reads b.ring with a named reader of its
 * own ("check") that exists before B first runs, so it sees every record
 * B ever committed: each number must be there exactly once, in order.
 * SIGKILL of A or B at random moments (the kill loop), B down while A's
 * ring fills, 16 senders into one bring-listen:, durability interval,
 * and every kind of bad input (this test then plays the peer).
 *
 * BRING_HOP_KILLS=N sets the kill loop's kills (default 20; 6 under
 * BRING_SANITIZED); BRING_HOP_DOWN_MS how long B stays down (default
 * 500; the 10 s: BRING_HOP_DOWN_MS=10000).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bring.h"
#include "kselftest_harness.h"
#include "io_test_util.h"
#include "../../io/hop.h"

#define RING_A (1U << 20)
#define RING_B (32U << 20)
#define WAIT_MS 20000
#define SENDERS 16

FIXTURE(hop)
{
	char dir[64];
	char a_ring[PATH_MAX], b_ring[PATH_MAX], a_buf[PATH_MAX + 8],
		b_buf[PATH_MAX + 8], a_err[PATH_MAX], b_err[PATH_MAX],
		listen[64], sink[64], out[PATH_MAX], out_uri[PATH_MAX + 8];
	const char *a_mode, *b_mode;
	/* A: a.ring to bring:, B: bring-listen: into b.ring, /dev/null */
	const char *a_args[16], *b_args[16];
	int port, port_fd; /* held by reserve_port() for B, all along */
	pid_t a, b;
	unsigned int scale;
};

FIXTURE_VARIANT(hop)
{
	enum io_mode a, b;
	/*
	 * Run the sender's tests here even where A is not on io_uring
	 * (SENDER_VARIANT()): the one variant whose A runs on readv/writev
	 * that every machine has.
	 */
	bool all;
};

FIXTURE_VARIANT_ADD(hop, uring) { .a = IO_MODE_URING, .b = IO_MODE_URING };
FIXTURE_VARIANT_ADD(hop, fallback)
{
	.a = IO_MODE_FALLBACK, .b = IO_MODE_FALLBACK, .all = true
};
FIXTURE_VARIANT_ADD(hop, eventfd) { .a = IO_MODE_EVENTFD, .b = IO_MODE_EVENTFD };
/* A on io_uring, B on readv/writev, and the reverse */
FIXTURE_VARIANT_ADD(hop, uring_to_fallback)
{
	.a = IO_MODE_URING, .b = IO_MODE_FALLBACK
};
FIXTURE_VARIANT_ADD(hop, fallback_to_uring)
{
	.a = IO_MODE_FALLBACK, .b = IO_MODE_URING
};

/* A bringcat that dies with the test, even one the harness kills. */
static void die_with_test(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static pid_t launch(const char *err, const char **args)
{
	return spawn_hooked(NULL, err, args, die_with_test);
}

static struct bring *ring_open(const char *path, size_t size, int durability)
{
	BRING_OPTS(o, .name = "bringcat", .flags = BRING_NO_DEFAULT_READER,
		   .durability = durability, .flush_ms = 200);

	return bring_open(path, size, &o);
}

/* Make a ring file as bringcat would, with reader "check" in it. */
static int ring_make(const char *path, size_t size, int durability,
		     bool check)
{
	struct bring *r = ring_open(path, size, durability);
	struct bring_reader *rd;

	if (!r)
		return -1;
	if (check) {
		rd = bring_reader_open(r, "check");
		if (!rd) {
			bring_free(r);
			return -1;
		}
		bring_reader_close(rd);
	}
	bring_free(r);
	return 0;
}

FIXTURE_SETUP(hop)
{
	find_bringcat();
	if (access(bringcat, X_OK))
		SKIP(return, "%s not built", bringcat);
	if (io_mode_missing(variant->a))
		SKIP(return, "%s", io_mode_missing(variant->a));
	if (io_mode_missing(variant->b))
		SKIP(return, "%s", io_mode_missing(variant->b));
	self->a_mode = io_mode_flag(variant->a, "--stats");
	self->b_mode = io_mode_flag(variant->b, "--stats");
	self->scale = getenv("BRING_SANITIZED") ? 4 : 1;
	strcpy(self->dir, "/tmp/hop_test.XXXXXX");
	ASSERT_NE_NULL(mkdtemp(self->dir));
	snprintf(self->a_ring, sizeof(self->a_ring), "%s/a.ring", self->dir);
	snprintf(self->b_ring, sizeof(self->b_ring), "%s/b.ring", self->dir);
	snprintf(self->a_buf, sizeof(self->a_buf), "file:%s", self->a_ring);
	snprintf(self->b_buf, sizeof(self->b_buf), "file:%s", self->b_ring);
	snprintf(self->a_err, sizeof(self->a_err), "%s/a.err", self->dir);
	snprintf(self->b_err, sizeof(self->b_err), "%s/b.err", self->dir);
	snprintf(self->out, sizeof(self->out), "%s/out", self->dir);
	snprintf(self->out_uri, sizeof(self->out_uri), "file:%s", self->out);
	self->port = reserve_port(&self->port_fd);
	ASSERT_LT(0, self->port);
	snprintf(self->listen, sizeof(self->listen),
		 "bring-listen:127.0.0.1:%d", self->port);
	snprintf(self->sink, sizeof(self->sink), "bring:127.0.0.1:%d",
		 self->port);
	{
		const char *a[] = { "-b", self->a_buf, "-i",
				    "tcp-listen:127.0.0.1:0", "-o", self->sink,
				    "--hop-heartbeat", "200", "--stream-id",
				    "test", self->a_mode, NULL };
		const char *b[] = { "-b", self->b_buf, "-i", self->listen, "-o",
				    "file:/dev/null", "--hop-heartbeat", "200",
				    self->b_mode, NULL };

		memcpy(self->a_args, a, sizeof(a));
		memcpy(self->b_args, b, sizeof(b));
	}
	ASSERT_EQ(0, ring_make(self->a_ring, RING_A, BRING_DURABLE_NONE,
			       false));
	ASSERT_EQ(0, ring_make(self->b_ring, RING_B, BRING_DURABLE_NONE, true));
}

FIXTURE_TEARDOWN(hop)
{
	char cmd[128];

	if (self->a > 0)
		kill(self->a, SIGKILL);
	if (self->b > 0)
		kill(self->b, SIGKILL);
	if (self->a > 0)
		waitpid(self->a, NULL, 0);
	if (self->b > 0)
		waitpid(self->b, NULL, 0);
	if (self->port > 0)
		close(self->port_fd);
	if (self->dir[0] && !strncmp(self->dir, "/tmp/hop_test.", 14)) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
		if (system(cmd) != 0)
			TH_LOG("could not remove %s", self->dir);
	}
}

/*
 * A: ships a.ring to B. Its source is a listening socket nobody uses:
 * the lines come from this test, pushed into a.ring.
 */
static pid_t start_a(FIXTURE_DATA(hop) *self, const char *err)
{
	return launch(err, self->a_args);
}

/* B: bring-listen: into b.ring, which the check reader drains. */
static pid_t start_b(FIXTURE_DATA(hop) *self, const char *err)
{
	return launch(err, self->b_args);
}

/*
 * SIGKILL A or B, at random, @kills times at random moments; each is
 * started again at once with the same command (@a_args, @b_args).
 */
static void kill_at_random(struct __test_metadata *_metadata,
			   FIXTURE_DATA(hop) *self, unsigned int kills,
			   const char **a_args, const char **b_args)
{
	unsigned int i, ka = 0, kb = 0;
	pid_t *victim;

	srand((unsigned int)getpid());
	for (i = 0; i < kills; i++) {
		usleep((useconds_t)(10000 + rand() % 100000));
		victim = rand() % 2 ? &self->a : &self->b;
		kill(*victim, SIGKILL);
		waitpid(*victim, NULL, 0);
		if (victim == &self->a) {
			ka++;
			self->a = launch(self->a_err, a_args);
		} else {
			kb++;
			self->b = launch(self->b_err, b_args);
		}
	}
	TH_LOG("%u kills (A %u, B %u)", kills, ka, kb);
}

/* Wait until something listens on B's port. */
static bool wait_listen(int port, int ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint64_t end = now_ms() + ms;
	int fd;

	while (now_ms() < end) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			close(fd);
			return true;
		}
		close(fd);
		usleep(10000);
	}
	return false;
}

struct producer {
	const char *path;
	const char *tag;
	unsigned int n, per, gap_ms;
	int err;
	unsigned int pushed;
	bool stop; /* set: end early (n becomes what was pushed) */
};

/*
 * Push "TAG NNNNNNNN" lines, @per at a time, @gap_ms apart, until @n
 * were pushed or @stop is set.
 */
static void *produce(void *arg)
{
	struct producer *p = arg;
	struct bring *r = ring_open(p->path, RING_A, BRING_DURABLE_NONE);
	char line[64];
	int len, ret;

	if (!r) {
		p->err = -errno;
		return NULL;
	}
	while (p->pushed < p->n && !__atomic_load_n(&p->stop, __ATOMIC_RELAXED)) {
		len = snprintf(line, sizeof(line), "%s %08u", p->tag,
			       p->pushed);
		ret = bring_push_timeout(r, line, (size_t)len, 60000);
		if (ret) {
			p->err = ret;
			break;
		}
		/* The test reads it while this runs. */
		__atomic_store_n(&p->pushed, p->pushed + 1, __ATOMIC_RELAXED);
		if (p->gap_ms && !(p->pushed % p->per))
			usleep(p->gap_ms * 1000);
	}
	bring_free(r);
	__atomic_store_n(&p->n, p->pushed, __ATOMIC_RELAXED);
	return NULL;
}

/*
 * Read b.ring with the check reader until every stream has its @n lines
 * (or @ms passed): every line of stream "sK" must be "sK NNNNNNNN" with
 * numbers 0, 1, 2, ... exactly once, in order. Returns the lines read,
 * or -1 at the first wrong one (logged).
 */
static long check_b(struct __test_metadata *_metadata, const char *path,
		    unsigned int streams, unsigned int n, int ms)
{
	unsigned int next[SENDERS] = { 0 }, done = 0, k;
	struct bring *r = ring_open(path, RING_B, BRING_DURABLE_NONE);
	struct bring_reader *rd = r ? bring_reader_open(r, "check") : NULL;
	uint64_t end = now_ms() + ms;
	struct bring_msg m;
	long lines = 0;

	if (!rd) {
		TH_LOG("cannot open %s's check reader: %s", path,
		       strerror(errno));
		if (r)
			bring_free(r);
		return -1;
	}
	while (done < streams && now_ms() < end) {
		const char *p, *e, *nl;
		char one[32];

		if (bring_reader_next(rd, &m, 100))
			continue;
		for (p = m.data, e = p + m.len; p < e; p = nl + 1) {
			unsigned int num;

			nl = memchr(p, '\n', e - p);
			if (!nl)
				nl = e;
			/* A record's last line ends where it does, not at a NUL. */
			snprintf(one, sizeof(one), "%.*s",
				 (int)(nl - p < 31 ? nl - p : 31), p);
			if (sscanf(one, "s%u %u", &k, &num) != 2 ||
			    k >= streams || num != next[k]) {
				TH_LOG("b.ring: '%.*s' where stream %u expects %u",
				       (int)(nl - p), p, k < streams ? k : 0,
				       k < streams ? next[k] : 0);
				lines = -1;
				goto out;
			}
			if (++next[k] == n)
				done++;
			lines++;
		}
		bring_reader_shift(rd);
	}
	if (done < streams) {
		for (k = 0; k < streams; k++)
			if (next[k] != n)
				TH_LOG("stream s%u: %u of %u lines arrived",
				       k, next[k], n);
		lines = -1;
	}
	/* Nothing more may follow: a duplicate would. */
	if (lines > 0 && !bring_reader_next(rd, &m, 300)) {
		TH_LOG("b.ring: more after the last line: '%.*s'",
		       (int)(m.len < 40 ? m.len : 40), (const char *)m.data);
		lines = -1;
	}
out:
	bring_reader_close(rd);
	bring_free(r);
	return lines;
}

/*
 * Tests of the receiver alone (this test as the sender) run where B's
 * io mode is not a repeat: uring (bring-listen: in the io_uring loop),
 * fallback (its threads) and eventfd (the loop without FUTEX_WAIT); the
 * mixed variants' B runs as in one of those.
 */
#define RECEIVER_VARIANT()                                              \
	do {                                                            \
		if (variant->a != variant->b)                           \
			SKIP(return, "B runs as in the %s variant",     \
			     variant->b == IO_MODE_URING ? "uring" :    \
							   "fallback"); \
	} while (0)

/*
 * Tests of the sender (A against a fake receiver, or A and B) run again
 * where A runs on io_uring: there the bring: sink runs in the loop, not
 * in a thread of its own. (A's buffer is a file ring: without
 * FUTEX_WAIT, the eventfd variant's A runs on readv/writev.)
 */
#define SENDER_VARIANT()                                                \
	do {                                                            \
		if (!variant->all && variant->a != IO_MODE_URING)       \
			SKIP(return, "A runs on readv/writev as in the " \
				     "fallback variant");               \
	} while (0)

static void stop(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	if (wait_rc(*pid, 10000) < 0)
		kill(*pid, SIGKILL);
	*pid = 0;
}

/* OUT holds exactly @want (@len bytes); where it differs is logged. */
static void expect_out(struct __test_metadata *_metadata, const char *out,
		       const char *want, size_t len)
{
	size_t got_len, i;
	char *got = slurp(out, &got_len);

	ASSERT_NE_NULL(got);
	if (got_len != len || memcmp(got, want, len)) {
		for (i = 0; i < len && i < got_len && got[i] == want[i]; i++)
			;
		TH_LOG("OUT differs at byte %zu of %zu (%zu written): '%.28s'",
		       i, len, got_len, got + (i > 14 ? i - 14 : 0));
	}
	EXPECT_EQ(len, got_len);
	EXPECT_EQ(0, memcmp(got, want, len < got_len ? len : got_len));
	free(got);
}

/* "line 00000000\n" .. for 0 <= i < @n, malloc'ed; its length in *@len. */
static char *numbered_lines(unsigned int n, size_t *len)
{
	char *buf = malloc((size_t)n * 14 + 1);
	unsigned int i;

	*len = 0;
	for (i = 0; buf && i < n; i++)
		*len += (size_t)sprintf(buf + *len, "line %08u\n", i);
	return buf;
}

/* Wait for all of @want in OUT, stop A and B, and compare. */
static void finish(struct __test_metadata *_metadata, FIXTURE_DATA(hop) *self,
		   const char *want, size_t len)
{
	EXPECT_TRUE(wait_size(self->out, (off_t)len, WAIT_MS));
	stop(&self->a);
	stop(&self->b);
	expect_out(_metadata, self->out, want, len);
}

/*
 * Write @buf as the file A reads (@in_path), run B, run A to its end
 * (it ends once all of it is acknowledged), and expect it all in OUT.
 */
static void ship_file(struct __test_metadata *_metadata,
		      FIXTURE_DATA(hop) *self, const char *in_path,
		      const char **a_args, const char **b_args,
		      const char *buf, size_t len)
{
	ASSERT_EQ(0, spew(in_path, buf, len));
	self->b = launch(self->b_err, b_args);
	ASSERT_TRUE(wait_listen(self->port, 10000));
	ASSERT_EQ(0, wait_rc(launch(self->a_err, a_args), WAIT_MS));
	/* Acknowledged means committed in B's ring: the sink drains it. */
	ASSERT_TRUE(wait_size(self->out, (off_t)len, WAIT_MS));
	stop(&self->b);
	expect_out(_metadata, self->out, buf, len);
}

/* The basics: a file goes A -> B -> file, byte for byte, and A ends. */
TEST_F(hop, delivers_a_file_exactly)
{
	char in[PATH_MAX + 8];
	const char *a_args[] = { "-b", "mem:1M", "-i", in, "-o", self->sink,
				 "--stats", self->a_mode, NULL };
	const char *b_args[] = { "-b", "mem:4M", "-i", self->listen, "-o",
				 self->out_uri, self->b_mode, NULL };
	char path[PATH_MAX], *buf;
	unsigned int i, n = 100000 / self->scale;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/in", self->dir);
	snprintf(in, sizeof(in), "file:%s", path);
	buf = malloc((size_t)n * 16);
	ASSERT_NE_NULL(buf);
	for (i = 0; i < n; i++)
		len += (size_t)sprintf(buf + len, "line %09u\n", i);
	ship_file(_metadata, self, path, a_args, b_args, buf, len);
	EXPECT_LT(0, final_stat(self->a_err, NULL, "acks "));
	/* --stats has the bring: sink on its own line, drained. */
	snprintf(path, sizeof(path), "bringcat: sink %s (reader %s): out %u msgs ",
		 self->sink, sink_reader(self->sink), n);
	EXPECT_TRUE(wait_text(self->a_err, path, 1));
	EXPECT_TRUE(wait_text(self->a_err, ", reconnects 0, done\n", 1));
	free(buf);
}

/*
 * u32be messages (one frame each, sizes 0 to 5000 bytes, an empty one
 * among them) come out whole, byte for byte.
 */
TEST_F(hop, delivers_u32be_messages_whole)
{
	char in[PATH_MAX + 8], path[PATH_MAX];
	const char *a_args[] = { "-f", "u32be", "-b", "mem:1M", "-i", in, "-o",
				 self->sink, NULL };
	const char *b_args[] = { "-f", "u32be", "-b", "mem:4M", "-i",
				 self->listen, "-o", self->out_uri, NULL };
	unsigned int i, k, n = 3000 / self->scale, seed = 1;
	size_t len = 0;
	char *buf;

	SENDER_VARIANT();
	snprintf(path, sizeof(path), "%s/in", self->dir);
	snprintf(in, sizeof(in), "file:%s", path);
	buf = malloc((size_t)n * 5004);
	ASSERT_NE_NULL(buf);
	for (i = 0; i < n; i++) {
		uint32_t m = i == 7 ? 0 : (uint32_t)(rand_r(&seed) % 5000);
		uint32_t be = htonl(m);

		memcpy(buf + len, &be, 4);
		len += 4;
		for (k = 0; k < m; k++)
			buf[len++] = (char)(i + k);
	}
	ship_file(_metadata, self, path, a_args, b_args, buf, len);
	free(buf);
}

static unsigned int env_uint(const char *name, unsigned int def)
{
	const char *v = getenv(name);

	return v && *v ? (unsigned int)strtoul(v, NULL, 10) : def;
}

/*
 * The kill loop: lines go in at a steady rate while A or B (at random)
 * is SIGKILLed at a random moment and started again with the same
 * command. b.ring must hold every line exactly once, in order.
 */
TEST_F_TIMEOUT(hop, kill_loop_exactly_once, 3600)
{
	unsigned int kills = env_uint("BRING_HOP_KILLS",
				      self->scale > 1 ? 6 : 20);
	/*
	 * As fast as the hop takes them, so that a kill always finds lines
	 * sent and not yet acknowledged (a.ring stays full).
	 */
	struct producer p = { .path = self->a_ring, .tag = "s0", .n = 1000000,
			      .per = 5000, .gap_ms = 1 };
	pthread_t t;

	SENDER_VARIANT();
	self->b = start_b(self, self->b_err);
	ASSERT_TRUE(wait_listen(self->port, 10000));
	self->a = start_a(self, self->a_err);
	ASSERT_EQ(0, pthread_create(&t, NULL, produce, &p));
	kill_at_random(_metadata, self, kills, self->a_args, self->b_args);
	__atomic_store_n(&p.stop, true, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	ASSERT_EQ(0, p.err);
	TH_LOG("%u lines", p.n);
	EXPECT_EQ((long)p.n, check_b(_metadata, self->b_ring, 1, p.n, WAIT_MS));
}

struct writer {
	char log[PATH_MAX];
	unsigned int n; /* lines written */
	unsigned int rotations;
	bool stop;
	int err;
};

/* app.log -> app.log.1 -> app.log.2 -> app.log.3, logrotate style. */
static void rotate(const char *log)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 16];
	unsigned int i;

	for (i = 3; i > 0; i--) {
		snprintf(from, sizeof(from), "%s.%u", log, i);
		snprintf(to, sizeof(to), "%s.%u", log, i + 1);
		rename(from, to);
	}
	snprintf(to, sizeof(to), "%s.1", log);
	rename(log, to);
}

/* Append "line NNNNNNNN" lines until stopped, rotating now and then. */
static void *write_log(void *arg)
{
	struct writer *w = arg;
	char buf[200 * 14 + 1];
	unsigned int seed = (unsigned int)now_ms(), k, i, since = 0;
	size_t len;
	int fd;

	while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
		k = 1 + rand_r(&seed) % 200;
		for (i = 0, len = 0; i < k; i++)
			len += (size_t)sprintf(buf + len, "line %08u\n",
					       w->n + i);
		fd = open(w->log, O_WRONLY | O_APPEND | O_CREAT, 0644);
		if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
			w->err = -errno;
			break;
		}
		close(fd);
		w->n += k;
		since += k;
		if (since > 30000) {
			rotate(w->log);
			w->rotations++;
			since = 0;
		}
		usleep(500);
	}
	return NULL;
}

/*
 * The kill loop, the whole pipeline:
 *   writer -> app.log (rotated) -> A: tail: -> a.ring -> bring: ->
 *   B: bring-listen: -> b.ring -> file:OUT
 * A or B SIGKILLed at random moments, each started again with the same
 * command. OUT must hold every line exactly once, in order: tail:
 * checkpoints and the file: sink's cut (the marks engineer's), the hop
 * (this file) in between.
 */
TEST_F_TIMEOUT(hop, pipeline_kill_loop_exactly_once, 3600)
{
	unsigned int kills = env_uint("BRING_HOP_KILLS",
				      self->scale > 1 ? 6 : 20);
	struct writer w = { 0 };
	char tail[PATH_MAX + 8], *want;
	const char *a_args[] = { "-b", self->a_buf, "-i", tail, "--tail-from",
				 "start", "-o", self->sink, "--hop-heartbeat",
				 "200", "--stream-id", "pipe", self->a_mode,
				 NULL };
	const char *b_args[] = { "-b", self->b_buf, "-i", self->listen, "-o",
				 self->out_uri, "--hop-heartbeat", "200",
				 self->b_mode, NULL };
	size_t len = 0;
	pthread_t t;

	/* bringcat makes its rings itself (no check reader here). */
	unlink(self->a_ring);
	unlink(self->b_ring);
	snprintf(w.log, sizeof(w.log), "%s/app.log", self->dir);
	snprintf(tail, sizeof(tail), "tail:%s", w.log);
	/*
	 * A reads app.log from its start only while it has no checkpoint:
	 * the first rotation must find one (a file rotated away before
	 * bringcat ever ran is not its to find).
	 */
	w.n = 1000;
	want = numbered_lines(w.n, &len);
	ASSERT_NE_NULL(want);
	ASSERT_EQ(0, spew(w.log, want, len));
	free(want);
	self->b = launch(self->b_err, b_args);
	self->a = launch(self->a_err, a_args);
	ASSERT_TRUE(wait_size(self->out, (off_t)len, WAIT_MS));
	ASSERT_EQ(0, pthread_create(&t, NULL, write_log, &w));
	kill_at_random(_metadata, self, kills, a_args, b_args);
	__atomic_store_n(&w.stop, true, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	ASSERT_EQ(0, w.err);
	TH_LOG("%u lines, %u rotations", w.n, w.rotations);
	want = numbered_lines(w.n, &len);
	ASSERT_NE_NULL(want);
	finish(_metadata, self, want, len);
	free(want);
}

/*
 * B down: A's ring fills and its tail: source stops reading app.log
 * (back-pressure reaches the reader); nothing is lost, and once B is
 * back everything drains, in order, once.
 */
TEST_F(hop, receiver_down_back_pressure_reaches_tail)
{
	unsigned int down = env_uint("BRING_HOP_DOWN_MS", 500);
	/*
	 * 2.8 MB: more than A can hold, its 256 KiB ring and its staging
	 * (up to max_msg + 256 KiB: one chunk record waits there for room).
	 */
	unsigned int n = 200000;
	char log[PATH_MAX], tail[PATH_MAX + 8], a_buf[PATH_MAX + 16], *want;
	const char *a_args[] = { "-b", a_buf, "-i", tail, "--tail-from",
				 "start", "-o", self->sink, "--hop-heartbeat",
				 "200", "--stream-id", "bp", self->a_mode,
				 NULL };
	const char *b_args[] = { "-b", self->b_buf, "-i", self->listen, "-o",
				 self->out_uri, self->b_mode, NULL };
	struct bring_stats st = { .sz = sizeof(st) };
	size_t len = 0;
	struct bring *r;

	unlink(self->a_ring);
	unlink(self->b_ring);
	snprintf(log, sizeof(log), "%s/app.log", self->dir);
	snprintf(tail, sizeof(tail), "tail:%s", log);
	/* A small ring: it fills at once. */
	snprintf(a_buf, sizeof(a_buf), "file:%s:256K", self->a_ring);
	want = numbered_lines(n, &len);
	ASSERT_NE_NULL(want);
	ASSERT_EQ(0, spew(log, want, len));
	self->a = launch(self->a_err, a_args);
	usleep(down * 1000);
	/* A's ring is full and A has stopped reading the log. */
	EXPECT_FALSE(wait_read(self->a, log, (long long)len, 200));
	r = ring_open(self->a_ring, 256 << 10, BRING_DURABLE_NONE);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, bring_get_stats(r, &st));
	bring_free(r);
	EXPECT_LT(0, st.used); /* what B has not acknowledged */
	self->b = launch(self->b_err, b_args);
	finish(_metadata, self, want, len);
	free(want);
}

/* 16 senders, one bring-listen:, each stream with its own offset. */
TEST_F(hop, sixteen_senders_one_listener)
{
	struct producer p[SENDERS];
	char rings[SENDERS][PATH_MAX], bufs[SENDERS][PATH_MAX + 8],
		errs[SENDERS][PATH_MAX], tags[SENDERS][8], ids[SENDERS][16];
	pthread_t t[SENDERS];
	pid_t pids[SENDERS];
	unsigned int i, n = 3000 / self->scale;

	SENDER_VARIANT();
	self->b = start_b(self, self->b_err);
	ASSERT_TRUE(wait_listen(self->port, 10000));
	for (i = 0; i < SENDERS; i++) {
		const char *args[] = { "-b", bufs[i], "-i",
				       "tcp-listen:127.0.0.1:0", "-o",
				       self->sink, "--stream-id", ids[i],
				       self->a_mode, NULL };

		snprintf(rings[i], sizeof(rings[i]), "%s/a%u.ring", self->dir,
			 i);
		snprintf(bufs[i], sizeof(bufs[i]), "file:%s", rings[i]);
		snprintf(errs[i], sizeof(errs[i]), "%s/a%u.err", self->dir, i);
		snprintf(tags[i], sizeof(tags[i]), "s%u", i);
		snprintf(ids[i], sizeof(ids[i]), "sender%u", i);
		ASSERT_EQ(0, ring_make(rings[i], RING_A, BRING_DURABLE_NONE,
				       false));
		pids[i] = launch(errs[i], args);
		p[i] = (struct producer){ .path = rings[i], .tag = tags[i],
					  .n = n, .per = 100, .gap_ms = 1 };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, produce, &p[i]));
	}
	for (i = 0; i < SENDERS; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, p[i].err);
	}
	EXPECT_EQ((long)n * SENDERS,
		  check_b(_metadata, self->b_ring, SENDERS, n, WAIT_MS));
	for (i = 0; i < SENDERS; i++)
		stop(&pids[i]);
}

/*
 * Read "s0 NNNNNNNN" lines from @fd until @n arrived (or @ms passed):
 * numbers 0, 1, 2, ... exactly once, in order. The lines read, or -1 at
 * the first wrong one (logged).
 */
static long read_lines(struct __test_metadata *_metadata, int fd,
		       unsigned int n, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t end = now_ms() + ms;
	static char buf[1 << 16];
	unsigned int next = 0, num;
	size_t len = 0, off;
	ssize_t got;
	char *nl;

	while (next < n && now_ms() < end) {
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		got = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (got <= 0)
			break;
		len += (size_t)got;
		buf[len] = '\0';
		for (off = 0; (nl = memchr(buf + off, '\n', len - off));
		     off = (size_t)(nl - buf) + 1) {
			if (sscanf(buf + off, "s0 %u", &num) != 1 ||
			    num != next) {
				TH_LOG("'%.*s' where %u was due",
				       (int)(nl - buf - off), buf + off, next);
				return -1;
			}
			next++;
		}
		memmove(buf, buf + off, len - off);
		len -= off;
	}
	if (next < n)
		TH_LOG("%u of %u lines arrived", next, n);
	return next;
}

/*
 * B's ring full: its sink writes into a pipe this test does not read for
 * longer than 3 heartbeats, so B's receiver waits for ring space with a
 * DATA frame in hand (io_uring: the loop's FUTEX_WAIT; eventfd: the
 * ring's eventfd; readv/writev: its thread). It keeps sending PINGs
 * meanwhile: A keeps the connection (no "no answer" line). Once the
 * pipe is read, every line arrives exactly once, in order.
 */
TEST_F(hop, full_receiver_ring_waits_and_keeps_heartbeats)
{
	/*
	 * 300 KB of lines for B's 128 KiB ring and a one-page pipe; a.ring
	 * (1 MiB, a record of 32 bytes per line) holds them all, so pushing
	 * never waits.
	 */
	struct producer p = { .path = self->a_ring, .tag = "s0", .n = 25000 };
	char path[PATH_MAX], fifo[PATH_MAX + 8];
	const char *a_args[] = { "-b", self->a_buf, "-i",
				 "tcp-listen:127.0.0.1:0", "-o", self->sink,
				 "--hop-heartbeat", "300", "--stream-id", "full",
				 self->a_mode, NULL };
	const char *b_args[] = { "-b", "mem:128K", "-i", self->listen, "-o",
				 fifo, "--hop-heartbeat", "300", "--stats",
				 self->b_mode, NULL };
	int rfd;

	RECEIVER_VARIANT();
	snprintf(path, sizeof(path), "%s/fifo", self->dir);
	snprintf(fifo, sizeof(fifo), "file:%s", path);
	ASSERT_EQ(0, mkfifo(path, 0600));
	rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, rfd);
	fcntl(rfd, F_SETPIPE_SZ, 4096);
	self->b = launch(self->b_err, b_args);
	ASSERT_TRUE(wait_listen(self->port, 10000));
	self->a = launch(self->a_err, a_args);
	produce(&p);
	ASSERT_EQ(0, p.err);
	/* Full by now; 3 heartbeats are 900 ms. */
	usleep(1200 * 1000);
	EXPECT_FALSE(wait_text(self->a_err, "no answer from the receiver", 1));
	EXPECT_FALSE(wait_text(self->b_err, "connection closed", 1));
	EXPECT_EQ((long)p.n, read_lines(_metadata, rfd, p.n, WAIT_MS));
	stop(&self->b);
	close(rfd);
	EXPECT_LT(0, final_stat(self->b_err, NULL, "full waits "));
	EXPECT_FALSE(wait_text(self->a_err, "no answer from the receiver", 1));
}

/* ---- this test as the peer ---------------------------------------- */

/* What arrived on the peer's connection and was not read yet. */
static uint8_t rx_buf[8192];
static size_t rx_len;

static int dial(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	rx_len = 0; /* a new connection */
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read one frame within @ms: its type, -2 at the peer's close, -1. */
static int read_frame(int fd, struct hop_frame *f, int ms)
{
	uint8_t *buf = rx_buf;
	size_t len = rx_len;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char why[HOP_ERROR_MAX];
	ssize_t n;
	int ret;

	for (;;) {
		ret = hop_parse(buf, len, 1 << 20, f, why, sizeof(why));
		if (ret > 0 && f->type == HOP_DATA &&
		    len >= (size_t)ret + f->len - HOP_DATA_MIN)
			ret += (int)(f->len - HOP_DATA_MIN);
		else if (ret > 0 && f->type == HOP_DATA)
			ret = 0;
		if (ret > 0) {
			memmove(buf, buf + ret, len - (size_t)ret);
			rx_len = len - (size_t)ret;
			return f->type;
		}
		if (ret < 0 || poll(&pfd, 1, ms) <= 0)
			return -1;
		n = recv(fd, buf + len, sizeof(rx_buf) - len, 0);
		if (n <= 0)
			return -2;
		len += (size_t)n;
		rx_len = len;
	}
}

static int send_hello(int fd, uint16_t version, uint16_t flags,
		      uint64_t epoch, const char *id)
{
	uint8_t buf[HOP_HELLO_BUF];
	size_t len = hop_put_hello(buf, flags, epoch, 1 << 20, 1 << 20, id);

	buf[HOP_HDR + 4] = (uint8_t)(version >> 8);
	buf[HOP_HDR + 5] = (uint8_t)version;
	return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

static int send_data(int fd, uint64_t end, const char *payload)
{
	uint8_t hdr[HOP_HDR + 8];
	size_t len = strlen(payload);

	hop_put_offset(hdr, HOP_DATA, end, (uint32_t)len);
	if (send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL) != sizeof(hdr) ||
	    send(fd, payload, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -1;
	return 0;
}

/* HELLO, WELCOME: the stream's committed offset, or -1. */
static long long open_stream(int fd, uint64_t epoch, const char *id)
{
	struct hop_frame f;

	if (send_hello(fd, HOP_VERSION, HOP_F_LINES, epoch, id) ||
	    read_frame(fd, &f, 5000) != HOP_WELCOME)
		return -1;
	return (long long)f.offset;
}

static void start_b_mem(FIXTURE_DATA(hop) *self,
			struct __test_metadata *_metadata, const char *ring)
{
	const char *args[] = { "-b", ring, "-i", self->listen, "-o",
			       self->out_uri, "--hop-heartbeat", "100",
			       self->b_mode, NULL };

	self->b = launch(self->b_err, args);
	ASSERT_TRUE(wait_listen(self->port, 10000));
}

/* The connection was closed by B, after an ERROR saying @what. */
static void expect_refused(struct __test_metadata *_metadata, int fd,
			   const char *what)
{
	struct hop_frame f;
	int type;

	while ((type = read_frame(fd, &f, 5000)) == HOP_PING ||
	       type == HOP_WELCOME || type == HOP_ACK)
		;
	EXPECT_EQ(HOP_ERROR, type);
	if (type == HOP_ERROR && !strstr(f.text, what))
		TH_LOG("ERROR '%s', want '%s'", f.text, what);
	if (type == HOP_ERROR)
		EXPECT_NE_NULL(strstr(f.text, what));
	EXPECT_EQ(-2, read_frame(fd, &f, 5000));
	close(fd);
}

/*
 * A stream that B serves while the bad connection comes and goes: its
 * offset stays its own. Opens stream "good", sends line @n, checks the ack.
 */
/*
 * Connect, open stream @id of @epoch (its committed offset must be
 * @from), send @line ending at offset @end and see it acknowledged.
 * The connection, or -1.
 */
static int stream_line(int port, uint64_t epoch, const char *id,
		       uint64_t from, uint64_t end, const char *line)
{
	struct hop_frame f;
	int fd = dial(port);

	if (fd < 0)
		return -1;
	if (open_stream(fd, epoch, id) != (long long)from ||
	    send_data(fd, end, line) || read_frame(fd, &f, 5000) != HOP_ACK ||
	    f.offset != end) {
		close(fd);
		return -1;
	}
	return fd;
}

static void good_stream(struct __test_metadata *_metadata, int port,
			unsigned int n)
{
	char line[32];
	int fd;

	snprintf(line, sizeof(line), "good %u", n);
	fd = stream_line(port, 7, "good", n, n + 1, line);
	ASSERT_LE(0, fd);
	close(fd);
}

TEST_F(hop, another_protocol_is_refused)
{
	const char get[] = "GET / HTTP/1.1\r\nHost: b\r\n\r\n";
	int fd;

	RECEIVER_VARIANT();
	start_b_mem(self, _metadata, "mem:1M");
	good_stream(_metadata, self->port, 0);
	fd = dial(self->port);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)strlen(get), send(fd, get, strlen(get), 0));
	expect_refused(_metadata, fd, "not a bring: peer");
	good_stream(_metadata, self->port, 1);
	ASSERT_TRUE(wait_text(self->b_err, "it sent \"GET / HTTP/1.1", 5000));
}

TEST_F(hop, wrong_version_is_refused)
{
	int fd;

	RECEIVER_VARIANT();
	start_b_mem(self, _metadata, "mem:1M");
	fd = dial(self->port);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, send_hello(fd, HOP_VERSION + 1, 0, 1, "v2"));
	expect_refused(_metadata, fd, "protocol version 2 not supported");
	good_stream(_metadata, self->port, 0);
	ASSERT_TRUE(wait_text(self->b_err, "version 2 not supported", 5000));
}

TEST_F(hop, frame_longer_than_max_msg_is_refused)
{
	uint8_t hdr[HOP_HDR + 8];
	int fd;

	RECEIVER_VARIANT();
	start_b_mem(self, _metadata, "mem:64K");
	fd = dial(self->port);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, open_stream(fd, 1, "big"));
	hop_put_offset(hdr, HOP_DATA, 1, 100000);
	ASSERT_EQ((ssize_t)sizeof(hdr), send(fd, hdr, sizeof(hdr), 0));
	expect_refused(_metadata, fd, "longer than max_msg");
	good_stream(_metadata, self->port, 0);
}

/* An offset at or below the committed one would store a line twice. */
TEST_F(hop, offset_going_back_is_refused)
{
	char *out;
	size_t len;
	int fd;

	RECEIVER_VARIANT();
	start_b_mem(self, _metadata, "mem:1M");
	fd = stream_line(self->port, 1, "back", 0, 50, "first");
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, send_data(fd, 50, "again"));
	expect_refused(_metadata, fd, "not past the committed 50");
	/* The stream comes back where it was. */
	fd = dial(self->port);
	ASSERT_LE(0, fd);
	EXPECT_EQ(50, open_stream(fd, 1, "back"));
	close(fd);
	stop(&self->b);
	out = slurp(self->out, &len);
	ASSERT_NE_NULL(out);
	EXPECT_STREQ("first\n", out);
	free(out);
}

/*
 * Connect and say HELLO once B let go of the stream's previous
 * connection (closed by this test a moment ago): while that one still
 * lives, a HELLO of another epoch is refused as a second sender. The
 * answer is left to read; -1 after 5 s.
 */
static int hello_released(int port, uint16_t flags, uint64_t epoch,
			  const char *id)
{
	uint64_t end = now_ms() + 5000;
	struct hop_frame f;
	uint8_t keep[sizeof(rx_buf)];
	size_t keep_len;
	int fd, type;

	while (now_ms() < end) {
		fd = dial(port);
		if (fd < 0 || send_hello(fd, HOP_VERSION, flags, epoch, id))
			return -1;
		type = read_frame(fd, &f, 5000);
		if (type != HOP_ERROR || !strstr(f.text, "live connection")) {
			/* Put the answer back for the caller to read. */
			keep_len = rx_len;
			memcpy(keep, rx_buf, keep_len);
			rx_len = 0;
			if (type == HOP_WELCOME)
				rx_len = hop_put_welcome(rx_buf, f.flags,
							 f.max_frame, f.hb_ms,
							 f.offset);
			else if (type == HOP_ERROR)
				rx_len = hop_put_error(rx_buf, f.text);
			memcpy(rx_buf + rx_len, keep, keep_len);
			rx_len += keep_len;
			return fd;
		}
		close(fd);
		usleep(20000);
	}
	return -1;
}

/* A file ring's stream id seen again with another epoch. */
TEST_F(hop, new_epoch_of_a_stream_is_refused)
{
	struct hop_frame f;
	int fd;

	RECEIVER_VARIANT();
	start_b_mem(self, _metadata, "mem:1M");
	fd = stream_line(self->port, 0x1111, "ep", 0, 9, "one");
	ASSERT_LE(0, fd);
	close(fd);
	fd = hello_released(self->port, HOP_F_LINES, 0x2222, "ep");
	ASSERT_LE(0, fd);
	expect_refused(_metadata, fd, "comes back with epoch 0000000000002222");
	/* The stream itself is untouched. */
	fd = hello_released(self->port, HOP_F_LINES, 0x1111, "ep");
	ASSERT_LE(0, fd);
	ASSERT_EQ(HOP_WELCOME, read_frame(fd, &f, 5000));
	EXPECT_EQ(9, f.offset);
	close(fd);
	/* A memory ring's new epoch starts the stream again. */
	fd = hello_released(self->port, HOP_F_LINES | HOP_F_VOLATILE, 0x3333,
			    "ep");
	ASSERT_LE(0, fd);
	ASSERT_EQ(HOP_WELCOME, read_frame(fd, &f, 5000));
	EXPECT_EQ(0, f.offset);
	close(fd);
	good_stream(_metadata, self->port, 0);
}

/* A peer that says HELLO and then nothing: closed after 3 heartbeats. */
TEST_F(hop, silent_sender_is_closed)
{
	struct hop_frame f;
	uint64_t t0;
	int fd, type;

	RECEIVER_VARIANT();
	start_b_mem(self, _metadata, "mem:1M");
	fd = dial(self->port);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, open_stream(fd, 1, "quiet"));
	t0 = now_ms();
	while ((type = read_frame(fd, &f, 5000)) == HOP_PING)
		;
	EXPECT_EQ(-2, type);
	EXPECT_LT(now_ms() - t0, 3000);
	close(fd);
	ASSERT_TRUE(wait_text(self->b_err, "no frame for 300 ms", 5000));
	good_stream(_metadata, self->port, 0);
}

/* ---- this test as the receiver -------------------------------------- */

static int accept_within(int lfd, int ms)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };

	if (poll(&pfd, 1, ms) <= 0)
		return -1;
	rx_len = 0; /* a new connection */
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static void send_welcome(int fd, uint64_t offset)
{
	uint8_t buf[HOP_HDR + HOP_WELCOME_LEN];

	hop_put_welcome(buf, 0, 1 << 20, 100, offset);
	send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
}

/* Accept A's connection, take its HELLO, answer WELCOME @offset. */
static int accept_stream(int lfd, uint64_t offset)
{
	struct hop_frame f;
	int fd = accept_within(lfd, 10000);

	if (fd < 0)
		return -1;
	if (read_frame(fd, &f, 5000) != HOP_HELLO) {
		close(fd);
		return -1;
	}
	send_welcome(fd, offset);
	return fd;
}

static void push_lines(const char *ring, unsigned int n)
{
	struct producer p = { .path = ring, .tag = "s0", .n = n };

	produce(&p);
}

/*
 * A receiver that answers with offsets from the future is refused; the
 * ring keeps everything, which the real B then receives.
 */
TEST_F(hop, offset_from_the_future_is_refused)
{
	uint8_t ack[HOP_HDR + 8];
	struct hop_frame f;
	int lfd, fd;

	SENDER_VARIANT();
	push_lines(self->a_ring, 100);
	lfd = loopback_listener(self->port, 4);
	ASSERT_LE(0, lfd);
	self->a = start_a(self, self->a_err);
	/* In the WELCOME. */
	fd = accept_stream(lfd, 1ULL << 40);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-2, read_frame(fd, &f, 5000));
	close(fd);
	ASSERT_TRUE(wait_text(self->a_err, "an offset from the future", 5000));
	/* In an ACK. */
	fd = accept_stream(lfd, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(HOP_DATA, read_frame(fd, &f, 5000));
	hop_put_offset(ack, HOP_ACK, f.offset + 1000000, 0);
	send(fd, ack, sizeof(ack), MSG_NOSIGNAL);
	EXPECT_EQ(-2, read_frame(fd, &f, 5000));
	close(fd);
	close(lfd);
	ASSERT_TRUE(wait_text(self->a_err, "ACK of offset", 5000));
	/* Nothing was shifted: all of it reaches B. */
	self->b = start_b(self, self->b_err);
	EXPECT_EQ(100, check_b(_metadata, self->b_ring, 1, 100, WAIT_MS));
}

/* Thread @tid of @pid: its /proc file @what, up to @len - 1 bytes. */
static bool task_read(pid_t pid, const char *tid, const char *what,
		      char *buf, size_t len)
{
	char path[96];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%.16s/%s", pid, tid, what);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n > 0;
}

/*
 * How many of @pid's threads (not io_uring's iou-* workers) there are,
 * or (@in_poll) how many sleep in poll(2) now: their wchan is
 * do_sys_poll or do_poll.
 */
static int count_threads(pid_t pid, bool in_poll)
{
	char path[32], buf[32];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' ||
		    !task_read(pid, de->d_name, "comm", buf, sizeof(buf)) ||
		    !strncmp(buf, "iou-", 4))
			continue;
		if (!in_poll ||
		    (task_read(pid, de->d_name, "wchan", buf, sizeof(buf)) &&
		     strstr(buf, "poll")))
			n++;
	}
	closedir(d);
	return n;
}

/*
 * io_uring mode runs the bring: sink in the loop (send, recv, connect
 * and timers are its ops): none of A's threads ever sleeps in poll(2)
 * while it streams to a receiver that does not acknowledge. readv/writev
 * mode gives the sender a thread of its own that waits there.
 */
TEST_F(hop, sender_runs_in_its_io_mode)
{
	struct hop_frame f;
	int lfd, fd, i, most = 0, n;

	push_lines(self->a_ring, 100);
	lfd = loopback_listener(self->port, 4);
	ASSERT_LE(0, lfd);
	self->a = start_a(self, self->a_err);
	fd = accept_stream(lfd, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(HOP_DATA, read_frame(fd, &f, 5000));
	for (i = 0; i < 50; i++) {
		n = count_threads(self->a, true);
		ASSERT_LE(0, n);
		most = n > most ? n : most;
		usleep(10000);
	}
	if (variant->a != IO_MODE_URING ||
	    wait_text(self->a_err, "using readv/writev", 50))
		EXPECT_LE(1, most);
	else
		EXPECT_EQ(0, most);
	close(fd);
	close(lfd);
}

/*
 * io_uring mode runs bring-listen: in the loop (accept, recv, send, the
 * space wait and the tick are its ops): four more senders connecting
 * add no thread to B (io_uring's iou-* workers aside). readv/writev mode
 * adds one per connection. (Compared with B's own count before, so that a
 * sanitizer's threads do not count.)
 */
TEST_F(hop, receiver_runs_in_its_io_mode)
{
	char id[16];
	int fds[5], i, n0 = 0, n;

	RECEIVER_VARIANT();
	start_b_mem(self, _metadata, "mem:1M");
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "threads%d", i);
		fds[i] = stream_line(self->port, 1, id, 0, 1, "x");
		ASSERT_LE(0, fds[i]);
		/* After the first stream B is all set up. */
		if (!i)
			n0 = count_threads(self->b, false);
	}
	n = count_threads(self->b, false);
	ASSERT_LE(1, n0);
	if (variant->b == IO_MODE_FALLBACK ||
	    wait_text(self->b_err, "using readv/writev", 50))
		EXPECT_LE(n0 + 3, n); /* 4 more; wait_listen()'s may end */
	else
		EXPECT_EQ(n0, n);
	for (i = 0; i < 5; i++)
		close(fds[i]);
}

/* A receiver that stops answering is dropped after 3 heartbeats. */
TEST_F(hop, silent_receiver_is_dropped)
{
	struct hop_frame f;
	int lfd, fd, fd2;

	SENDER_VARIANT();
	push_lines(self->a_ring, 10);
	lfd = loopback_listener(self->port, 4);
	ASSERT_LE(0, lfd);
	self->a = start_a(self, self->a_err);
	fd = accept_stream(lfd, 0);
	ASSERT_LE(0, fd);
	/* No ACK, no PING: A gives up on it and connects again. */
	fd2 = accept_within(lfd, 5000);
	EXPECT_LE(0, fd2);
	ASSERT_TRUE(wait_text(self->a_err, "no answer from the receiver", 5000));
	/* It sends the unacknowledged lines again. */
	if (fd2 >= 0) {
		EXPECT_EQ(HOP_HELLO, read_frame(fd2, &f, 5000));
		send_welcome(fd2, 0);
		EXPECT_EQ(HOP_DATA, read_frame(fd2, &f, 5000));
		close(fd2);
	}
	close(fd);
	close(lfd);
}

#define WATCH_THREADS 64

/* Voluntary context switches of @pid's threads (io_uring's too). */
struct thread_watch {
	unsigned int n;
	long tid[WATCH_THREADS], before[WATCH_THREADS];
	bool naps[WATCH_THREADS]; /* seen in nanosleep(2) */
};

/* The index of thread @tid in @w, added if new; -1 when @w is full. */
static int watch_slot(struct thread_watch *w, long tid)
{
	unsigned int i;

	for (i = 0; i < w->n; i++)
		if (w->tid[i] == tid)
			return (int)i;
	if (w->n == WATCH_THREADS)
		return -1;
	w->tid[w->n] = tid;
	w->before[w->n] = -1;
	w->naps[w->n] = false;
	return (int)w->n++;
}

/*
 * One look at @pid's threads. @first: note each one's count. Always:
 * mark those sleeping in nanosleep(2) now: TSan's runtime thread, which
 * wakes every 100 ms (bringcat never sleeps that way). A thread woken
 * but not yet running has no wchan, so one look may miss it: the window
 * looks every 100 ms. Returns how many times the threads that never
 * napped were switched out since the first look (threads born since
 * count from 0), or -1.
 */
static long watch_look(struct thread_watch *w, pid_t pid, bool first)
{
	char path[32], buf[4096];
	struct dirent *de;
	long sum = 0, v;
	const char *p;
	DIR *d;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		i = watch_slot(w, strtol(de->d_name, NULL, 10));
		if (i < 0)
			continue;
		if (task_read(pid, de->d_name, "wchan", buf, sizeof(buf)) &&
		    strstr(buf, "nanosleep"))
			w->naps[i] = true;
		if (!task_read(pid, de->d_name, "status", buf, sizeof(buf)))
			continue;
		p = strstr(buf, "\nvoluntary_ctxt_switches:");
		if (!p || sscanf(p, " voluntary_ctxt_switches: %ld", &v) != 1)
			continue;
		if (w->before[i] < 0) /* at the first look, or born since */
			w->before[i] = first ? v : 0;
		if (!w->naps[i])
			sum += v - w->before[i];
	}
	closedir(d);
	return sum;
}

/* @pid wakes at most 8 times in the next 1.5 s (@what: while doing what). */
static void expect_asleep(struct __test_metadata *_metadata, pid_t pid,
			  const char *what)
{
	struct thread_watch w = { 0 };
	long woken = -1;
	int i;

	ASSERT_LE(0, watch_look(&w, pid, true));
	for (i = 0; i < 15; i++) {
		usleep(100 * 1000);
		woken = watch_look(&w, pid, false);
	}
	ASSERT_LE(0, woken);
	TH_LOG("%ld wake-ups in 1.5 s %s", woken, what);
	EXPECT_GE(8, woken);
}

/*
 * A sender that has sent everything and waits for acknowledgements
 * sleeps until a new message is pushed, then sends it at once: it does
 * not peek the ring on a timer (it did, every 1 to 50 ms). With a 2 s
 * heartbeat its tick comes once a second, so 1.5 s of waiting are a few
 * wake-ups, against about 30 with the timer. In every io mode: in
 * readv/writev mode, where poll(2) cannot wait on the file ring's futex
 * word that another process's push wakes, a relay thread waits on it
 * and wakes the sender's poll (fallback.c); before, it looked at the
 * ring every 50 ms.
 */
TEST_F(hop, sender_awaiting_acks_sleeps_until_a_new_message)
{
	struct hop_frame f;
	int lfd, fd, type;

	SENDER_VARIANT();
	push_lines(self->a_ring, 10);
	lfd = loopback_listener(self->port, 4);
	ASSERT_LE(0, lfd);
	self->a_args[7] = "2000"; /* --hop-heartbeat */
	self->a = start_a(self, self->a_err);
	fd = accept_stream(lfd, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(HOP_DATA, read_frame(fd, &f, 5000));
	/* Everything sent, nothing acknowledged: A waits. */
	do
		type = read_frame(fd, &f, 300);
	while (type == HOP_DATA);
	ASSERT_EQ(-1, type);
	expect_asleep(_metadata, self->a, "of waiting for acks");
	/*
	 * A new message ends the wait (no tick would peek for it), well
	 * before the 1 s poll that the 2 s heartbeat sets.
	 */
	push_lines(self->a_ring, 1);
	EXPECT_EQ(HOP_DATA, read_frame(fd, &f, 300));
	close(fd);
	close(lfd);
}

/* The check reader of b.ring: is its next record @want, within @ms? */
static bool b_next_is(const char *path, const char *want, int ms)
{
	struct bring *r = ring_open(path, RING_B, BRING_DURABLE_NONE);
	struct bring_reader *rd = r ? bring_reader_open(r, "check") : NULL;
	struct bring_msg m;
	bool ok = false;

	if (rd && !bring_reader_next(rd, &m, ms))
		ok = m.len == strlen(want) && !memcmp(m.data, want, m.len);
	bring_reader_close(rd);
	bring_free(r);
	return ok;
}

/*
 * A sender with everything acknowledged sleeps until a new message is
 * pushed, in every io mode: in readv/writev mode on a file ring, which
 * other processes push into, it waits on the ring's futex word (and the
 * stop flag) until its heartbeat is due; it looked at the ring every 50
 * ms. With 2 s heartbeats both ways, 1.5 s idle are a few wake-ups.
 */
TEST_F(hop, an_idle_sender_sleeps_until_a_new_message)
{
	struct producer p = { .path = self->a_ring, .tag = "s0", .n = 11,
			      .pushed = 10 };

	SENDER_VARIANT();
	self->a_args[7] = "2000"; /* --hop-heartbeat */
	self->b_args[7] = "2000";
	push_lines(self->a_ring, 10);
	self->b = start_b(self, self->b_err);
	ASSERT_TRUE(wait_listen(self->port, 10000));
	self->a = start_a(self, self->a_err);
	ASSERT_EQ(10, check_b(_metadata, self->b_ring, 1, 10, WAIT_MS));
	usleep(300 * 1000); /* the ACK back, A's reader shifted */
	expect_asleep(_metadata, self->a, "idle");
	/* A new message ends the wait. */
	produce(&p);
	ASSERT_EQ(0, p.err);
	EXPECT_TRUE(b_next_is(self->b_ring, "s0 00000010", 5000));
}

/*
 * A file source keeps at most its read-ahead in the ring, but a bring:
 * sink's unacknowledged bytes stay there too: the read-ahead makes room
 * for the sink's window. Against a receiver that never acknowledges, A
 * sends a whole window (4 MiB, with a read-ahead of 1 MiB), no more.
 * Before, it stopped at the read-ahead: the bytes in flight to a far
 * receiver were the read-ahead per round trip, not the window.
 */
/*
 * The DATA payload bytes A sends on @fd until it is quiet for @ms, read
 * past (frames larger than rx_buf too); other frames are dropped.
 */
static size_t data_bytes_until_quiet(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char why[HOP_ERROR_MAX];
	size_t total = 0, skip = 0;
	struct hop_frame f;
	ssize_t n;
	int ret;

	for (;;) {
		while (skip && rx_len) {
			n = (ssize_t)(skip < rx_len ? skip : rx_len);
			memmove(rx_buf, rx_buf + n, rx_len - (size_t)n);
			rx_len -= (size_t)n;
			skip -= (size_t)n;
		}
		ret = skip ? 0 : hop_parse(rx_buf, rx_len, 1 << 20, &f, why,
					   sizeof(why));
		if (ret < 0)
			return total;
		if (ret > 0) {
			memmove(rx_buf, rx_buf + ret, rx_len - (size_t)ret);
			rx_len -= (size_t)ret;
			if (f.type == HOP_DATA) {
				skip = f.len - HOP_DATA_MIN;
				total += skip;
			}
			continue;
		}
		if (poll(&pfd, 1, ms) <= 0)
			return total;
		n = recv(fd, rx_buf + rx_len, sizeof(rx_buf) - rx_len, 0);
		if (n <= 0)
			return total;
		rx_len += (size_t)n;
	}
}

TEST_F(hop, file_source_fills_the_window_not_only_the_read_ahead)
{
	char in_path[PATH_MAX], in_uri[PATH_MAX + 8];
	const char *a[] = { "-b", "mem:32M", "-i", in_uri, "-o", self->sink,
			    "--hop-window", "4M", "--read-ahead", "1M",
			    "--hop-heartbeat", "2000", "--stream-id", "test",
			    self->a_mode, NULL };
	size_t len, sent;
	int lfd, fd;
	char *buf;

	SENDER_VARIANT();
	snprintf(in_path, sizeof(in_path), "%s/in", self->dir);
	snprintf(in_uri, sizeof(in_uri), "file:%s", in_path);
	buf = numbered_lines(1000000, &len); /* 14 MB */
	ASSERT_NE_NULL(buf);
	ASSERT_EQ(0, spew(in_path, buf, len));
	free(buf);
	lfd = loopback_listener(self->port, 4);
	ASSERT_LE(0, lfd);
	self->a = launch(self->a_err, a);
	fd = accept_stream(lfd, 0);
	ASSERT_LE(0, fd);
	sent = data_bytes_until_quiet(fd, 500);
	TH_LOG("%zu bytes sent unacknowledged", sent);
	EXPECT_LE(3u << 20, sent);
	EXPECT_GE(4u << 20, sent);
	close(fd);
	close(lfd);
}

/*
 * With durability interval, an ACK covers only what is on disk: when it
 * arrives, b.ring's durable position is past the record.
 */
TEST_F(hop, interval_durability_acks_only_durable)
{
	struct bring_stats st = { .sz = sizeof(st) };
	struct hop_frame f;
	struct bring_msg m;
	struct bring_reader *rd;
	uint8_t ping[HOP_HDR];
	struct bring *r;
	int fd, i;

	RECEIVER_VARIANT();
	hop_put_hdr(ping, HOP_PING, 0);
	unlink(self->b_ring);
	ASSERT_EQ(0, ring_make(self->b_ring, RING_B, BRING_DURABLE_INTERVAL,
			       true));
	start_b_mem(self, _metadata, self->b_buf);
	r = ring_open(self->b_ring, RING_B, BRING_DURABLE_INTERVAL);
	ASSERT_NE_NULL(r);
	rd = bring_reader_open(r, "check");
	ASSERT_NE_NULL(rd);
	fd = dial(self->port);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, open_stream(fd, 1, "dur"));
	for (i = 0; i < 3; i++) {
		char line[16];

		snprintf(line, sizeof(line), "dur %d", i);
		ASSERT_EQ(0, send_data(fd, (uint64_t)i + 1, line));
		/*
		 * Heartbeats answered, as a sender does: the ACK waits for
		 * the flush (flush_ms 200), close to B's 300 ms of silence.
		 */
		while (read_frame(fd, &f, 5000) == HOP_PING)
			ASSERT_EQ((ssize_t)sizeof(ping),
				  send(fd, ping, sizeof(ping), MSG_NOSIGNAL));
		ASSERT_EQ(HOP_ACK, f.type);
		ASSERT_EQ(0, bring_get_stats(r, &st));
		ASSERT_EQ(0, bring_reader_next(rd, &m, 1000));
		/* The record's end: its header, its payload padded to 8. */
		EXPECT_LE(m.seq + 16 + ((m.len + 7) & ~7UL), st.durable);
		bring_reader_shift(rd);
	}
	close(fd);
	bring_reader_close(rd);
	bring_free(r);
}

TEST_HARNESS_MAIN
