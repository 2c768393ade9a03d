// SPDX-License-Identifier: GPL-2.0
/*
 * Correctness under concurrency: several writers using every writer call
 * at once, one or several readers checking that every message arrives
 * exactly once, in each writer's order, intact, and that no aborted
 * reservation is ever delivered. Small rings, so that records wrap
 * through the mirror mapping all the time, and messages of exactly
 * bring_max_msg(), which need the whole ring, at every offset of the
 * wrap point.
 *
 * Meant to run under -fsanitize=thread and -fsanitize=address,undefined
 * too. BRING_STRESS_SCALE (a factor, default 1) scales the work;
 * BRING_STRESS_SEED fixes the random seed, which every test prints.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bring.h"
#include "kselftest_harness.h"
#include "util.h"

#define SANITIZER_SLOWDOWN (SANITIZED_THREAD ? 4 : SANITIZED_ADDRESS ? 2 : 1)

/* A reader that gets nothing for this long reports a stall. */
#define STALL_MS 20000

#define NR_WRITERS 4
#define MAX_WRITERS 8
#define MAX_READERS 3
#define BATCH_MAX 6
#define MSG_MAGIC 0x2167736dU	/* "msg!" */
#define ABORT_MAGIC 0x21646164U	/* "dad!": must never be delivered */

/*
 * Every non-empty message starts with this header. Empty messages carry
 * nothing: the next message of the same writer counts them in @empties.
 */
struct shdr {
	uint32_t magic;
	uint16_t writer;
	uint16_t empties;
	uint32_t len;
	uint32_t sum;	/* checksum of the message, this field zero */
	uint64_t seq;	/* per writer, from 0 */
};

#define HDR ((size_t)sizeof(struct shdr))

static uint64_t hash_bytes(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t w;

	for (; len >= 8; len -= 8, b += 8) {
		memcpy(&w, b, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; len; len--, b++)
		h = (h ^ *b) * 0x100000001b3ULL;
	return h;
}

static uint32_t msg_sum(const void *msg, size_t len)
{
	struct shdr h;
	uint64_t s;

	memcpy(&h, msg, HDR);
	h.sum = 0;
	s = hash_bytes(0xcbf29ce484222325ULL, &h, HDR);
	s = hash_bytes(s, (const uint8_t *)msg + HDR, len - HDR);
	return (uint32_t)(s ^ (s >> 32));
}

/* Build message (@writer, @seq) of @len >= HDR bytes at @buf. */
static void msg_build(void *buf, size_t len, uint32_t magic,
		      unsigned int writer, uint64_t seq, unsigned int empties)
{
	struct shdr h = {
		.magic = magic,
		.writer = (uint16_t)writer,
		.empties = (uint16_t)empties,
		.len = (uint32_t)len,
		.seq = seq,
	};
	uint64_t s = (seq << 8 | writer) * 0x9e3779b97f4a7c15ULL | 1, x;
	uint8_t *p = buf;
	size_t i;

	for (i = HDR; i + 8 <= len; i += 8) {
		x = xorshift(&s);
		memcpy(p + i, &x, 8);
	}
	for (; i < len; i++)
		p[i] = (uint8_t)i;
	memcpy(buf, &h, HDR);
	h.sum = msg_sum(buf, len);
	memcpy(buf, &h, HDR);
}

static double stress_scale(void)
{
	const char *s = getenv("BRING_STRESS_SCALE");
	double f = s ? strtod(s, NULL) : 1.0;

	return f > 0 ? f : 1.0;
}

static unsigned int scaled(unsigned int base, unsigned int min)
{
	double n = base * stress_scale() / SANITIZER_SLOWDOWN;

	return n < min ? min : n > 100000000 ? 100000000 : (unsigned int)n;
}

static uint64_t stress_seed(void)
{
	const char *s = getenv("BRING_STRESS_SEED");
	struct timespec ts;

	if (s)
		return strtoull(s, NULL, 0) ?: 1;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_nsec << 20 ^ (uint64_t)getpid() ^
		(uint64_t)ts.tv_sec) | 1;
}

enum read_mode {
	READ_NEXT,	/* next + shift, one message at a time */
	READ_PEEK,	/* peek up to 16 + shift */
	READ_PEEK_BYTES, /* peek with a random byte limit + shift */
	READ_PEEK_FEW,	/* peek 1 to 3 + shift: the cursor moves often */
};

struct stress;

struct reader {
	struct stress *s;
	struct bring_reader *rd;	/* NULL: the default reader */
	enum read_mode mode;
	uint64_t rnd;
	pthread_t th;
	uint64_t next[MAX_WRITERS];
	uint64_t empties_seen, empties_announced, msgs, bytes;
	uint64_t last_pos;
	bool any;
	char err[512];
};

struct writer {
	struct stress *s;
	unsigned int id;
	uint64_t rnd;
	pthread_t th;
	uint64_t seq;		/* next message's */
	uint64_t empties, bytes;
	uint64_t pushes, batches, commits, short_commits, aborts, max_msgs;
	uint8_t *bufs[BATCH_MAX];
	char err[256];
};

struct stress {
	struct bring *r;
	size_t max_msg;
	size_t max_len;		/* of ordinary messages */
	unsigned int n;		/* non-empty messages per writer */
	unsigned int max_permille; /* messages of exactly max_msg */
	unsigned int nr_writers;
	struct writer w[MAX_WRITERS];
	unsigned int nr_readers;
	struct reader rd[MAX_READERS];
};

static __attribute__((format(printf, 2, 3))) int
reader_fail(struct reader *x, const char *fmt, ...)
{
	va_list ap;

	if (!x->err[0]) {
		va_start(ap, fmt);
		vsnprintf(x->err, sizeof(x->err), fmt, ap);
		va_end(ap);
	}
	/* Let writers blocked on a ring nobody drains any more out. */
	bring_close(x->s->r);
	return -1;
}

static int check_msg(struct reader *x, const struct bring_msg *m)
{
	struct shdr h;

	if (x->any && m->seq <= x->last_pos)
		return reader_fail(x, "ring position %llu after %llu",
				   (unsigned long long)m->seq,
				   (unsigned long long)x->last_pos);
	x->any = true;
	x->last_pos = m->seq;
	if (!m->len) {
		x->empties_seen++;
		return 0;
	}
	if (m->len < HDR)
		return reader_fail(x, "%zu-byte message at %llu", m->len,
				   (unsigned long long)m->seq);
	memcpy(&h, m->data, HDR);
	if (h.magic == ABORT_MAGIC)
		return reader_fail(x, "aborted reservation delivered: writer %u seq %llu at %llu",
				   h.writer, (unsigned long long)h.seq,
				   (unsigned long long)m->seq);
	if (h.magic != MSG_MAGIC || h.writer >= x->s->nr_writers ||
	    h.len != m->len)
		return reader_fail(x, "bad header at %llu: magic %#x writer %u len %u/%zu",
				   (unsigned long long)m->seq, h.magic,
				   h.writer, h.len, m->len);
	if (h.sum != msg_sum(m->data, m->len))
		return reader_fail(x, "writer %u seq %llu (%zu bytes at %llu): bad checksum",
				   h.writer, (unsigned long long)h.seq,
				   m->len, (unsigned long long)m->seq);
	if (h.seq != x->next[h.writer])
		return reader_fail(x, "writer %u: seq %llu where %llu was due",
				   h.writer, (unsigned long long)h.seq,
				   (unsigned long long)x->next[h.writer]);
	x->next[h.writer]++;
	x->empties_announced += h.empties;
	x->msgs++;
	x->bytes += m->len;
	return 0;
}

static bool reader_finished(const struct reader *x)
{
	unsigned int i;

	for (i = 0; i < x->s->nr_writers; i++)
		if (x->next[i] < x->s->n)
			return false;
	return true;
}

static int reader_get(struct reader *x, struct bring_msg *msgs,
		      unsigned int nr, size_t max_bytes)
{
	struct bring *r = x->s->r;
	int err;

	if (nr == 1) {
		err = x->rd ? bring_reader_next(x->rd, msgs, STALL_MS) :
			      bring_next_timeout(r, msgs, STALL_MS);
		return err ? err : 1;
	}
	return x->rd ? bring_reader_peek(x->rd, msgs, nr, max_bytes, STALL_MS) :
		       bring_peek(r, msgs, nr, max_bytes, STALL_MS);
}

static void *reader_fn(void *arg)
{
	struct reader *x = arg;
	struct bring_msg msgs[16];
	unsigned int nr = x->mode == READ_NEXT ? 1 : 16;
	size_t max_bytes, bytes;
	int n, i, err;

	while (!reader_finished(x)) {
		max_bytes = 0;
		if (x->mode == READ_PEEK_BYTES)
			max_bytes = 1 + xorshift(&x->rnd) % 8192;
		if (x->mode == READ_PEEK_FEW)
			nr = 1 + xorshift(&x->rnd) % 3;
		n = reader_get(x, msgs, nr, max_bytes);
		if (n <= 0) {
			reader_fail(x, "%s after %llu messages; first writers at seq %llu %llu %llu %llu",
				    n == -ETIMEDOUT ? "stalled" : strerror(-n),
				    (unsigned long long)x->msgs,
				    (unsigned long long)x->next[0],
				    (unsigned long long)x->next[1],
				    (unsigned long long)x->next[2],
				    (unsigned long long)x->next[3]);
			return NULL;
		}
		if (n > (int)nr)
			return reader_fail(x, "peek returned %d > %u", n, nr), NULL;
		for (i = 0, bytes = 0; i < n; i++) {
			if (check_msg(x, &msgs[i]))
				return NULL;
			bytes += msgs[i].len;
		}
		if (max_bytes && n > 1 && bytes > max_bytes)
			return reader_fail(x, "peek gave %zu bytes for a limit of %zu",
					   bytes, max_bytes), NULL;
		err = x->rd ? bring_reader_shift(x->rd) : bring_shift(x->s->r);
		if (err)
			return reader_fail(x, "shift: %d", err), NULL;
	}
	return NULL;
}

static __attribute__((format(printf, 2, 3))) int
writer_fail(struct writer *w, const char *fmt, ...)
{
	va_list ap;

	if (!w->err[0]) {
		va_start(ap, fmt);
		vsnprintf(w->err, sizeof(w->err), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static size_t pick_len(struct writer *w)
{
	struct stress *s = w->s;
	uint64_t x = xorshift(&w->rnd);

	/*
	 * Also right after an abort: a reader asleep at the head must give
	 * the aborted space back for a max_msg message to fit (block_test:
	 * abort_under_sleeping_reader_gives_space_back).
	 */
	if (x % 1000 < s->max_permille) {
		w->max_msgs++;
		return s->max_msg;
	}
	return HDR + (x >> 10) % (s->max_len - HDR + 1);
}

/* 0 to 2 empty messages before the next one, now and then. */
static unsigned int pick_empties(struct writer *w)
{
	uint64_t x = xorshift(&w->rnd);

	return x % 16 ? 0 : 1 + (x >> 8) % 2;
}

static int w_push(struct writer *w, const void *data, size_t len)
{
	int err = bring_push(w->s->r, data, len);

	return err ? writer_fail(w, "push %zu bytes: %d", len, err) : 0;
}

static int op_push(struct writer *w)
{
	unsigned int e, empties = pick_empties(w);
	size_t len = pick_len(w);

	for (e = 0; e < empties; e++)
		if (w_push(w, NULL, 0))
			return -1;
	msg_build(w->bufs[0], len, MSG_MAGIC, w->id, w->seq, empties);
	if (w_push(w, w->bufs[0], len))
		return -1;
	w->pushes++;
	w->empties += empties;
	w->bytes += len;
	w->seq++;
	return 0;
}

static int op_batch(struct writer *w)
{
	struct bring_msg msgs[BATCH_MAX * 3];
	unsigned int nr = 0, off = 0, i, k, e, empties;
	uint64_t x = xorshift(&w->rnd);
	size_t len;
	int n;

	k = 1 + x % BATCH_MAX;
	for (i = 0; i < k && w->seq < w->s->n; i++) {
		empties = pick_empties(w);
		for (e = 0; e < empties; e++)
			msgs[nr++] = (struct bring_msg){ .data = NULL, .len = 0 };
		len = pick_len(w);
		msg_build(w->bufs[i], len, MSG_MAGIC, w->id, w->seq, empties);
		msgs[nr++] = (struct bring_msg){ .data = w->bufs[i], .len = len };
		w->empties += empties;
		w->bytes += len;
		w->seq++;
	}
	while (off < nr) {
		n = bring_push_batch(w->s->r, msgs + off, nr - off, -1);
		if (n <= 0)
			return writer_fail(w, "batch of %u: %d", nr - off, n);
		off += (unsigned int)n;
	}
	w->batches++;
	return 0;
}

static int op_reserve(struct writer *w)
{
	unsigned int e, empties = pick_empties(w);
	struct bring *r = w->s->r;
	struct bring_resv resv;
	size_t len, extra;
	int err;

	/* Empty messages as zero-length commits of a reservation. */
	for (e = 0; e < empties; e++) {
		extra = xorshift(&w->rnd) % 40;
		err = bring_reserve(r, extra, &resv, -1);
		if (err)
			return writer_fail(w, "reserve %zu: %d", extra, err);
		memset(resv.data, 0xee, extra);
		err = bring_commit(r, &resv, 0);
		if (err)
			return writer_fail(w, "commit 0 of %zu: %d", extra, err);
	}
	len = pick_len(w);
	extra = xorshift(&w->rnd) % 4 ? 0 : xorshift(&w->rnd) % 100;
	if (len + extra > w->s->max_msg)
		extra = w->s->max_msg - len;
	err = bring_reserve(r, len + extra, &resv, -1);
	if (err)
		return writer_fail(w, "reserve %zu: %d", len + extra, err);
	if (resv.len != len + extra)
		return writer_fail(w, "reserved %zu, asked %zu", resv.len,
				   len + extra);
	/* Built in place: the zero-copy path. */
	msg_build(resv.data, len, MSG_MAGIC, w->id, w->seq, empties);
	memset((uint8_t *)resv.data + len, 0xdd, extra);
	err = bring_commit(r, &resv, len);
	if (err)
		return writer_fail(w, "commit %zu of %zu: %d", len,
				   len + extra, err);
	w->commits++;
	w->short_commits += extra > 0;
	w->empties += empties;
	w->bytes += len;
	w->seq++;
	return 0;
}

static int op_abort(struct writer *w)
{
	struct bring_resv resv;
	size_t len = HDR + xorshift(&w->rnd) % 2000;
	int err;

	err = bring_reserve(w->s->r, len, &resv, -1);
	if (err)
		return writer_fail(w, "reserve %zu: %d", len, err);
	/* A perfect message, but for its magic: must never be seen. */
	msg_build(resv.data, len, ABORT_MAGIC, w->id, w->seq, 0);
	err = bring_abort(w->s->r, &resv);
	if (err)
		return writer_fail(w, "abort: %d", err);
	w->aborts++;
	return 0;
}

static void *writer_fn(void *arg)
{
	struct writer *w = arg;
	uint64_t op;
	int err;

	while (w->seq < w->s->n) {
		op = xorshift(&w->rnd) % 16;
		if (op < 7) {
			err = op_push(w);
		} else if (op < 11) {
			err = op_batch(w);
		} else if (op < 15) {
			err = op_reserve(w);
		} else {
			err = op_abort(w);
		}
		if (err)
			break;
	}
	return NULL;
}

static const char *const reader_names[MAX_READERS] = { "r0", "r1", "r2" };

/* Run the writers and readers of @s to the end and check the outcome. */
static void stress_run(struct __test_metadata *_metadata, struct stress *s,
		       bool named)
{
	uint64_t seed = stress_seed(), msgs = 0, empties = 0, bytes = 0;
	struct bring_stats st = { .sz = sizeof(st) };
	struct bring_msg msg;
	unsigned int i, j;

	TH_LOG("seed %#llx, %u writers x %u messages, %u readers, ring %zu, max_msg %zu",
	       (unsigned long long)seed, s->nr_writers, s->n, s->nr_readers,
	       bring_capacity(s->r), s->max_msg);
	for (i = 0; i < s->nr_readers; i++) {
		struct reader *x = &s->rd[i];

		x->s = s;
		x->rnd = seed ^ (0x1000 + i) * 0x9e3779b97f4a7c15ULL;
		if (named) {
			x->rd = bring_reader_open(s->r, reader_names[i]);
			ASSERT_NE_NULL(x->rd);
		}
		ASSERT_EQ(0, pthread_create(&x->th, NULL, reader_fn, x));
	}
	for (i = 0; i < s->nr_writers; i++) {
		struct writer *w = &s->w[i];

		w->s = s;
		w->id = i;
		w->rnd = seed ^ (i + 1) * 0xd1b54a32d192ed03ULL;
		for (j = 0; j < BATCH_MAX; j++) {
			w->bufs[j] = malloc(s->max_msg);
			ASSERT_NE_NULL(w->bufs[j]);
		}
		ASSERT_EQ(0, pthread_create(&w->th, NULL, writer_fn, w));
	}
	for (i = 0; i < s->nr_writers; i++) {
		struct writer *w = &s->w[i];

		ASSERT_EQ(0, pthread_join(w->th, NULL));
		EXPECT_STREQ("", w->err) TH_LOG("writer %u", i);
		msgs += w->seq;
		empties += w->empties;
		bytes += w->bytes;
		if (!i)
			TH_LOG("writer 0: %llu pushes, %llu batches, %llu commits (%llu short), %llu aborts, %llu max_msg",
			       (unsigned long long)w->pushes,
			       (unsigned long long)w->batches,
			       (unsigned long long)w->commits,
			       (unsigned long long)w->short_commits,
			       (unsigned long long)w->aborts,
			       (unsigned long long)w->max_msgs);
		for (j = 0; j < BATCH_MAX; j++)
			free(w->bufs[j]);
	}
	for (i = 0; i < s->nr_readers; i++) {
		struct reader *x = &s->rd[i];

		ASSERT_EQ(0, pthread_join(x->th, NULL));
		EXPECT_STREQ("", x->err) TH_LOG("reader %u", i);
		for (j = 0; j < s->nr_writers; j++)
			EXPECT_EQ(s->n, x->next[j]);
		EXPECT_EQ(msgs, x->msgs);
		EXPECT_EQ(empties, x->empties_seen);
		EXPECT_EQ(empties, x->empties_announced);
		EXPECT_EQ(bytes, x->bytes);
		/* Nothing more: no aborted or duplicate record after the end. */
		if (x->rd)
			EXPECT_EQ(-EAGAIN, bring_reader_next(x->rd, &msg, 0));
		else
			EXPECT_EQ(-EAGAIN, bring_next_timeout(s->r, &msg, 0));
	}
	ASSERT_EQ(0, bring_get_stats(s->r, &st));
	EXPECT_EQ(msgs + empties, st.msgs_in);
	EXPECT_EQ(bytes, st.bytes_in);
	EXPECT_EQ(s->nr_readers * (msgs + empties), st.msgs_out);
	EXPECT_EQ(s->nr_readers * bytes, st.bytes_out);
	EXPECT_EQ(0, st.used);
	TH_LOG("%llu messages + %llu empty, %llu MiB; write waits %llu, read waits %llu, futex waits %llu, wakes %llu",
	       (unsigned long long)msgs, (unsigned long long)empties,
	       (unsigned long long)(bytes >> 20),
	       (unsigned long long)st.write_waits,
	       (unsigned long long)st.read_waits,
	       (unsigned long long)st.futex_waits,
	       (unsigned long long)st.futex_wakes);
	for (i = 0; i < s->nr_readers; i++)
		bring_reader_close(s->rd[i].rd);
}

FIXTURE(stress)
{
	struct stress s;
};

FIXTURE_VARIANT(stress)
{
	unsigned int nr_readers;	/* named readers; 0: the default one */
	enum read_mode mode;		/* of the default reader */
	int spin_ns;
};

FIXTURE_VARIANT_ADD(stress, next)
{
	.mode = READ_NEXT,
};

FIXTURE_VARIANT_ADD(stress, next_no_spin)
{
	.mode = READ_NEXT,
	.spin_ns = -1,
};

FIXTURE_VARIANT_ADD(stress, peek)
{
	.mode = READ_PEEK,
};

FIXTURE_VARIANT_ADD(stress, peek_bytes)
{
	.mode = READ_PEEK_BYTES,
};

/* Each named reader reads its own way. */
FIXTURE_VARIANT_ADD(stress, three_named_readers)
{
	.nr_readers = 3,
};

FIXTURE_SETUP(stress)
{
	BRING_OPTS(opts, .spin_ns = variant->spin_ns,
		   .flags = variant->nr_readers ? BRING_NO_DEFAULT_READER : 0);
	struct stress *s = &self->s;
	unsigned int i;

	s->r = bring_new(16384, &opts);
	ASSERT_NE_NULL(s->r);
	s->max_msg = bring_max_msg(s->r);
	s->max_len = 3000;
	s->max_permille = 8;
	s->nr_writers = NR_WRITERS;
	s->n = scaled(variant->nr_readers ? 18000 : 45000, 200);
	s->nr_readers = variant->nr_readers ?: 1;
	for (i = 0; i < s->nr_readers; i++)
		s->rd[i].mode = variant->nr_readers ? (enum read_mode)i :
						      variant->mode;
}

FIXTURE_TEARDOWN(stress)
{
	bring_free(self->s.r);
}

TEST_F_TIMEOUT(stress, four_writers_every_message_once_in_order_intact, 180)
{
	stress_run(_metadata, &self->s, variant->nr_readers > 0);
}

/*
 * Eight writers of small messages on a 4096-byte ring, a reader that
 * shifts one to three at a time: the cursor moves all the time and
 * writers keep re-reading it and racing to raise the cached tail.
 */
TEST_TIMEOUT(eight_writers_on_tiny_ring_every_message_once, 180)
{
	static struct stress s;

	s.r = bring_new(4096, NULL);
	ASSERT_NE_NULL(s.r);
	s.max_msg = bring_max_msg(s.r);
	s.max_len = 200;
	s.max_permille = 1;
	s.nr_writers = MAX_WRITERS;
	s.n = scaled(300000, 200);
	s.nr_readers = 1;
	s.rd[0].mode = READ_PEEK_FEW;
	stress_run(_metadata, &s, false);
	bring_free(s.r);
}

/*
 * A 4096-byte ring: max_msg is 4080, a record of 4096 bytes that needs
 * the whole ring. Between two of them a 24-byte message (40 bytes of
 * ring) moves the start by 40, so over 512 rounds the big records start
 * at every 8-byte offset: the wrap point falls at every place inside
 * them. With a second writer the offsets are random.
 */
FIXTURE(wrap)
{
	struct bring *r;
};

FIXTURE_VARIANT(wrap)
{
	unsigned int writers;
	enum read_mode mode;
};

FIXTURE_VARIANT_ADD(wrap, one_writer_next)
{
	.writers = 1,
	.mode = READ_NEXT,
};

FIXTURE_VARIANT_ADD(wrap, two_writers_peek)
{
	.writers = 2,
	.mode = READ_PEEK,
};

FIXTURE_SETUP(wrap)
{
	self->r = bring_new(4096, NULL);
	ASSERT_NE_NULL(self->r);
	ASSERT_EQ(4080, bring_max_msg(self->r));
}

FIXTURE_TEARDOWN(wrap)
{
	bring_free(self->r);
}

struct wrap_writer {
	struct bring *r;
	unsigned int id, rounds;
	uint64_t rnd;
	pthread_t th;
	int err;
	uint8_t big[4080];
};

static void *wrap_writer_fn(void *arg)
{
	struct wrap_writer *w = arg;
	struct bring_msg m;
	struct bring_resv resv;
	uint8_t tiny[HDR + 64];
	uint64_t seq = 0;
	unsigned int i;
	size_t len;

	for (i = 0; i < w->rounds && !w->err; i++) {
		/* The big one, three ways. */
		switch (i % 3) {
		case 0:
			msg_build(w->big, sizeof(w->big), MSG_MAGIC, w->id,
				  seq, 0);
			w->err = bring_push(w->r, w->big, sizeof(w->big));
			break;
		case 1:
			msg_build(w->big, sizeof(w->big), MSG_MAGIC, w->id,
				  seq, 0);
			m = (struct bring_msg){ .data = w->big,
						.len = sizeof(w->big) };
			w->err = bring_push_batch(w->r, &m, 1, -1);
			w->err = w->err == 1 ? 0 : w->err ?: -EIO;
			break;
		default:
			w->err = bring_reserve(w->r, sizeof(w->big), &resv, -1);
			if (w->err)
				break;
			msg_build(resv.data, sizeof(w->big), MSG_MAGIC, w->id,
				  seq, 0);
			w->err = bring_commit(w->r, &resv, sizeof(w->big));
			break;
		}
		seq++;
		/* The tiny one: 40 bytes of ring, or random with two. */
		len = HDR;
		if (w->id)
			len += xorshift(&w->rnd) % 64;
		msg_build(tiny, len, MSG_MAGIC, w->id, seq, 0);
		if (!w->err)
			w->err = bring_push(w->r, tiny, len);
		seq++;
	}
	return NULL;
}

TEST_F_TIMEOUT(wrap, max_msg_records_at_every_offset_get_through, 180)
{
	struct stress s = { .r = self->r, .max_msg = 4080 };
	struct reader x = { .s = &s, .mode = variant->mode };
	struct wrap_writer *w[2];
	uint8_t offsets[4096 / 8] = { 0 };
	struct bring_msg msgs[16];
	unsigned int i, nr = variant->mode == READ_NEXT ? 1 : 16;
	unsigned int covered = 0, rounds = scaled(8192, 512), off;
	int n;

	s.nr_writers = variant->writers;
	s.n = 2 * rounds;
	for (i = 0; i < variant->writers; i++) {
		w[i] = calloc(1, sizeof(*w[i]));
		ASSERT_NE_NULL(w[i]);
		*w[i] = (struct wrap_writer){ .r = self->r, .id = i,
					      .rounds = rounds,
					      .rnd = stress_seed() + i };
		ASSERT_EQ(0, pthread_create(&w[i]->th, NULL, wrap_writer_fn,
					    w[i]));
	}
	/* The reader is this thread: a failure ends the test here. */
	while (!reader_finished(&x)) {
		n = reader_get(&x, msgs, nr, 0);
		ASSERT_GT(n, 0) TH_LOG("%s after %llu messages",
				      n == -ETIMEDOUT ? "stalled" : "failed",
				      (unsigned long long)x.msgs);
		for (i = 0; i < (unsigned int)n; i++) {
			ASSERT_EQ(0, check_msg(&x, &msgs[i]))
				TH_LOG("%s", x.err);
			off = (msgs[i].seq & 4095) / 8;
			if (msgs[i].len == 4080 && !offsets[off]) {
				offsets[off] = 1;
				covered++;
			}
		}
		ASSERT_EQ(0, bring_shift(self->r));
	}
	for (i = 0; i < variant->writers; i++) {
		ASSERT_EQ(0, pthread_join(w[i]->th, NULL));
		EXPECT_EQ(0, w[i]->err);
		free(w[i]);
	}
	EXPECT_EQ(-EAGAIN, bring_next_timeout(self->r, msgs, 0));
	TH_LOG("%u rounds, max_msg records at %u of 512 offsets", rounds,
	       covered);
	if (variant->writers == 1)
		EXPECT_EQ(512, covered);
}

TEST_HARNESS_MAIN
