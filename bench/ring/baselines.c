// SPDX-License-Identifier: GPL-2.0
/*
 * baselines.c - the simple peers bring is measured against:
 *
 *  memcpy      one thread copies each message into a RING_BYTES buffer
 *              (wrapping) and checks it the way every reader does: the
 *              single-copy bandwidth bound, since bring's reader is zero
 *              copy and its writer copies once.
 *  pipe        length-prefixed messages through pipe(2) (1 MiB pipe
 *              buffer): one writev() per message, a buffered reader.
 *              Several writers rely on PIPE_BUF atomicity, and take a
 *              mutex around frames larger than PIPE_BUF.
 *  condvar     the textbook ring: one mutex, two condition variables,
 *              pthread_cond_broadcast() after every push and every pop,
 *              waits in while loops, the reader copies each message out.
 *  sleep-poll  a lock-free SPSC byte ring whose full writer or empty reader
 *              sleeps usleep(50) and looks again; several writers take a
 *              mutex around their push. The reader copies messages out.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "baselines.h"
#include "bench.h"

#define PIPE_BYTES (1U << 20)
#define PIPE_RBUF (256U << 10)
#define POLL_SLEEP_US 50

#define load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define barrier() __asm__ __volatile__("" ::: "memory")

/* ---- the byte ring ---------------------------------------------------- */

int bytering_init(struct bytering *b, size_t cap)
{
	b->cap = cap;
	b->buf = aligned_alloc(4096, cap);
	if (!b->buf)
		return -ENOMEM;
	memset(b->buf, 0, cap); /* fault it in before the clock runs */
	return 0;
}

void bytering_free(struct bytering *b)
{
	free(b->buf);
	b->buf = NULL;
}

void bytering_put(const struct bytering *b, uint64_t pos, const void *src,
		  size_t len)
{
	size_t off = pos & (b->cap - 1);
	size_t first = len < b->cap - off ? len : b->cap - off;

	memcpy(b->buf + off, src, first);
	if (len > first)
		memcpy(b->buf, (const uint8_t *)src + first, len - first);
}

void bytering_get(const struct bytering *b, uint64_t pos, void *dst,
		  size_t len)
{
	size_t off = pos & (b->cap - 1);
	size_t first = len < b->cap - off ? len : b->cap - off;

	memcpy(dst, b->buf + off, first);
	if (len > first)
		memcpy((uint8_t *)dst + first, b->buf, len - first);
}

/* ---- memcpy: the single-thread bound ----------------------------------- */

struct memcpy_ctx {
	uint8_t *buf;
};

static void *memcpy_setup(const struct bench_cfg *cfg)
{
	struct memcpy_ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->buf = aligned_alloc(4096, RING_BYTES);
	if (!c->buf) {
		free(c);
		return NULL;
	}
	memset(c->buf, 0, RING_BYTES);
	return c;
}

static int memcpy_write(void *ctx, struct writer_arg *w)
{
	struct memcpy_ctx *c = ctx;
	size_t size = w->cfg->size, off = 0;
	uint64_t i;
	int err;

	for (i = 0; i < w->msgs; i++) {
		stamp_msg(w->src, size, make_tag(0, i));
		memcpy(c->buf + off, w->src, size);
		barrier();
		err = verify_msg(w->v, c->buf + off, size);
		if (err)
			return err;
		off += size;
		if (off + size > RING_BYTES)
			off = 0;
	}
	return 0;
}

static long long memcpy_finish(void *ctx)
{
	struct memcpy_ctx *c = ctx;

	free(c->buf);
	free(c);
	return -1;
}

const struct bench_impl impl_memcpy = {
	.name = "memcpy",
	.desc = "1 thread: copy each message into a 4 MiB buffer, check it",
	.single = true,
	.setup = memcpy_setup,
	.write = memcpy_write,
	.finish = memcpy_finish,
};

/* ---- pipe(2) ----------------------------------------------------------- */

struct pipe_ctx {
	int fd[2];
	bool locked;
	pthread_mutex_t lock;
	uint8_t *rbuf;
};

static void *pipe_setup(const struct bench_cfg *cfg)
{
	struct pipe_ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->rbuf = malloc(PIPE_RBUF);
	if (!c->rbuf)
		goto err_free;
	if (pipe2(c->fd, O_CLOEXEC) < 0)
		goto err_rbuf;
	/* Best effort: pipe-max-size may be lower. */
	fcntl(c->fd[1], F_SETPIPE_SZ, PIPE_BYTES);
	c->locked = cfg->writers > 1 && cfg->size + FRAME_HDR > PIPE_BUF;
	pthread_mutex_init(&c->lock, NULL);
	return c;

err_rbuf:
	free(c->rbuf);
err_free:
	free(c);
	return NULL;
}

static int writev_full(int fd, struct iovec *iov, int cnt)
{
	ssize_t n;

	while (cnt) {
		n = writev(fd, iov, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (cnt && (size_t)n >= iov->iov_len) {
			n -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= n;
		}
	}
	return 0;
}

static int pipe_send(struct pipe_ctx *c, const void *msg, size_t len)
{
	uint32_t len32 = (uint32_t)len;
	struct iovec iov[2] = {
		{ .iov_base = &len32, .iov_len = FRAME_HDR },
		{ .iov_base = (void *)msg, .iov_len = len },
	};
	int err;

	if (c->locked)
		pthread_mutex_lock(&c->lock);
	err = writev_full(c->fd[1], iov, 2);
	if (c->locked)
		pthread_mutex_unlock(&c->lock);
	return err;
}

static int pipe_write(void *ctx, struct writer_arg *w)
{
	size_t size = w->cfg->size;
	uint64_t i;
	int err;

	for (i = 0; i < w->msgs; i++) {
		stamp_msg(w->src, size, make_tag(w->id, i));
		err = pipe_send(ctx, w->src, size);
		if (err)
			return bench_err("writev", err);
	}
	return 0;
}

/* Check the whole frames in buf[0, have); returns the bytes consumed. */
static ssize_t pipe_parse(struct verifier *v, const uint8_t *buf, size_t have)
{
	size_t off = 0;
	uint32_t len;
	int err;

	while (have - off >= FRAME_HDR) {
		memcpy(&len, buf + off, FRAME_HDR);
		if (len > v->cfg->size)
			return verify_fail(v, "frame length", len,
					   v->cfg->size);
		if (have - off < FRAME_HDR + len)
			break;
		err = verify_msg(v, buf + off + FRAME_HDR, len);
		if (err)
			return err;
		off += FRAME_HDR + len;
	}
	return (ssize_t)off;
}

static int pipe_read(void *ctx, struct verifier *v)
{
	struct pipe_ctx *c = ctx;
	size_t have = 0;
	ssize_t n;

	while (v->count < v->cfg->msgs) {
		n = read(c->fd[0], c->rbuf + have, PIPE_RBUF - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return bench_err("read", n ? -errno : -EPIPE);
		have += n;
		n = pipe_parse(v, c->rbuf, have);
		if (n < 0)
			return (int)n;
		have -= n;
		memmove(c->rbuf, c->rbuf + n, have);
	}
	return 0;
}

static long long pipe_finish(void *ctx)
{
	struct pipe_ctx *c = ctx;

	close(c->fd[0]);
	close(c->fd[1]);
	pthread_mutex_destroy(&c->lock);
	free(c->rbuf);
	free(c);
	return -1;
}

const struct bench_impl impl_pipe = {
	.name = "pipe",
	.desc = "pipe(2), length-prefixed writev per message, buffered reads",
	.mpsc = true,
	.setup = pipe_setup,
	.write = pipe_write,
	.read = pipe_read,
	.finish = pipe_finish,
};

/* ---- the textbook mutex + condition variable ring ---------------------- */

struct cv_ring {
	pthread_mutex_t mu;
	pthread_cond_t not_full;
	pthread_cond_t not_empty;
	struct bytering b;
	uint64_t head;
	uint64_t tail;
	uint8_t *out;
};

static void *cv_setup(const struct bench_cfg *cfg)
{
	struct cv_ring *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->out = malloc(cfg->size);
	if (!c->out || bytering_init(&c->b, RING_BYTES)) {
		free(c->out);
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->not_full, NULL);
	pthread_cond_init(&c->not_empty, NULL);
	return c;
}

static void cv_push(struct cv_ring *c, const void *msg, size_t len)
{
	size_t need = FRAME_HDR + len;

	pthread_mutex_lock(&c->mu);
	while (c->b.cap - (c->head - c->tail) < need)
		pthread_cond_wait(&c->not_full, &c->mu);
	c->head += bytering_put_frame(&c->b, c->head, msg, len);
	pthread_cond_broadcast(&c->not_empty);
	pthread_mutex_unlock(&c->mu);
}

/* Copy the oldest message out into c->out; returns its length. */
static size_t cv_pop(struct cv_ring *c, size_t max)
{
	size_t len;

	pthread_mutex_lock(&c->mu);
	while (c->head == c->tail)
		pthread_cond_wait(&c->not_empty, &c->mu);
	len = bytering_frame_len(&c->b, c->tail);
	if (len <= max)
		bytering_get(&c->b, c->tail + FRAME_HDR, c->out, len);
	c->tail += FRAME_HDR + len;
	pthread_cond_broadcast(&c->not_full);
	pthread_mutex_unlock(&c->mu);
	return len;
}

static int cv_write(void *ctx, struct writer_arg *w)
{
	size_t size = w->cfg->size;
	uint64_t i;

	for (i = 0; i < w->msgs; i++) {
		stamp_msg(w->src, size, make_tag(w->id, i));
		cv_push(ctx, w->src, size);
	}
	return 0;
}

static int cv_read(void *ctx, struct verifier *v)
{
	struct cv_ring *c = ctx;
	size_t len;
	int err;

	while (v->count < v->cfg->msgs) {
		len = cv_pop(c, v->cfg->size);
		if (len > v->cfg->size)
			return verify_fail(v, "frame length", len,
					   v->cfg->size);
		err = verify_msg(v, c->out, len);
		if (err)
			return err;
	}
	return 0;
}

static long long cv_finish(void *ctx)
{
	struct cv_ring *c = ctx;

	pthread_cond_destroy(&c->not_full);
	pthread_cond_destroy(&c->not_empty);
	pthread_mutex_destroy(&c->mu);
	bytering_free(&c->b);
	free(c->out);
	free(c);
	return -1;
}

const struct bench_impl impl_condvar = {
	.name = "condvar",
	.desc = "textbook mutex+cond byte ring, broadcast on every push/pop",
	.mpsc = true,
	.setup = cv_setup,
	.write = cv_write,
	.read = cv_read,
	.finish = cv_finish,
};

/* ---- the sleep-polling ring -------------------------------------------- */

struct sp_ring {
	struct bytering b; /* constant: shared reads only */
	uint8_t *out;
	bool locked;
	pthread_mutex_t wlock __attribute__((aligned(128)));
	uint64_t head __attribute__((aligned(128)));
	uint64_t tail __attribute__((aligned(128)));
};

static void *sp_setup(const struct bench_cfg *cfg)
{
	struct sp_ring *c = aligned_alloc(64, sizeof(*c));

	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->out = malloc(cfg->size);
	if (!c->out || bytering_init(&c->b, RING_BYTES)) {
		free(c->out);
		free(c);
		return NULL;
	}
	c->locked = cfg->writers > 1;
	pthread_mutex_init(&c->wlock, NULL);
	return c;
}

static void sp_push(struct sp_ring *c, const void *msg, size_t len)
{
	size_t need = FRAME_HDR + len;
	uint64_t head;

	if (c->locked)
		pthread_mutex_lock(&c->wlock);
	head = c->head;
	while (c->b.cap - (head - load_acquire(&c->tail)) < need)
		usleep(POLL_SLEEP_US);
	head += bytering_put_frame(&c->b, head, msg, len);
	store_release(&c->head, head);
	if (c->locked)
		pthread_mutex_unlock(&c->wlock);
}

static int sp_write(void *ctx, struct writer_arg *w)
{
	size_t size = w->cfg->size;
	uint64_t i;

	for (i = 0; i < w->msgs; i++) {
		stamp_msg(w->src, size, make_tag(w->id, i));
		sp_push(ctx, w->src, size);
	}
	return 0;
}

static int sp_read(void *ctx, struct verifier *v)
{
	struct sp_ring *c = ctx;
	uint64_t tail = c->tail;
	size_t len;
	int err;

	while (v->count < v->cfg->msgs) {
		while (load_acquire(&c->head) == tail)
			usleep(POLL_SLEEP_US);
		len = bytering_frame_len(&c->b, tail);
		if (len > v->cfg->size)
			return verify_fail(v, "frame length", len,
					   v->cfg->size);
		bytering_get(&c->b, tail + FRAME_HDR, c->out, len);
		tail += FRAME_HDR + len;
		store_release(&c->tail, tail);
		err = verify_msg(v, c->out, len);
		if (err)
			return err;
	}
	return 0;
}

static long long sp_finish(void *ctx)
{
	struct sp_ring *c = ctx;

	pthread_mutex_destroy(&c->wlock);
	bytering_free(&c->b);
	free(c->out);
	free(c);
	return -1;
}

const struct bench_impl impl_sleep_poll = {
	.name = "sleep-poll",
	.desc = "SPSC byte ring, usleep(50) when full/empty, writers locked",
	.mpsc = true,
	.setup = sp_setup,
	.write = sp_write,
	.read = sp_read,
	.finish = sp_finish,
};
