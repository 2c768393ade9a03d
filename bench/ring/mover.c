// SPDX-License-Identifier: GPL-2.0
/*
 * mover.c - the seed's design (Benthos' Go buffer) translated to C.
 *
 * In Go a goroutine sits between two channels and runs
 *
 *	for {
 *		select {
 *		case m := <-in:    buf.append(m)     // when buf has room
 *		case out <- head:  buf.pop()         // when buf is not empty
 *		}
 *	}
 *
 * Here the channels are bounded FIFOs of heap-allocated messages (Go's
 * []byte), each guarded by one mutex shared with the mover, with condition
 * variables for the writers (in has room), the reader (out has a message)
 * and the mover's select (either side changed). A writer allocates and
 * copies its message in, the mover copies it into its RING_BYTES internal
 * byte buffer and frees it, then allocates and copies the oldest buffered
 * message out to the reader, who checks and frees it. One case per loop,
 * alternating when both are ready, like select's random choice.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "baselines.h"
#include "bench.h"

#define CHAN_CAP 256 /* messages per channel */

struct mmsg {
	size_t len;
	uint8_t data[];
};

struct chan {
	struct mmsg *slot[CHAN_CAP];
	unsigned int head;
	unsigned int count;
};

struct mover {
	pthread_mutex_t mu;
	pthread_cond_t in_space; /* writers wait for room in @in */
	pthread_cond_t out_ready; /* the reader waits for @out */
	pthread_cond_t kick; /* the mover's select() */
	struct chan in;
	struct chan out;
	bool stop;
	/* Owned by the mover thread. */
	bool prefer_out; /* select() picks among ready cases: alternate */
	struct bytering buf;
	uint64_t head;
	uint64_t tail;
	pthread_t thread;
};

static void chan_push(struct chan *c, struct mmsg *m)
{
	c->slot[(c->head + c->count++) % CHAN_CAP] = m;
}

static struct mmsg *chan_pop(struct chan *c)
{
	struct mmsg *m = c->slot[c->head];

	c->head = (c->head + 1) % CHAN_CAP;
	c->count--;
	return m;
}

/* select: can the mover take from @in? (under mu) */
static bool can_take(const struct mover *m)
{
	size_t need;

	if (!m->in.count)
		return false;
	need = FRAME_HDR + m->in.slot[m->in.head]->len;
	return m->buf.cap - (m->head - m->tail) >= need;
}

/* select: can the mover give to @out? (under mu) */
static bool can_give(const struct mover *m)
{
	return m->head != m->tail && m->out.count < CHAN_CAP;
}

static struct mmsg *buf_take(struct mover *m)
{
	size_t len = bytering_frame_len(&m->buf, m->tail);
	struct mmsg *msg = malloc(sizeof(*msg) + len);

	if (!msg)
		bench_fatal("mover: out of memory");
	msg->len = len;
	bytering_get(&m->buf, m->tail + FRAME_HDR, msg->data, len);
	m->tail += FRAME_HDR + len;
	return msg;
}

/* One select case, entered and left with mu held. */
static void mover_step(struct mover *m)
{
	struct mmsg *in = NULL, *out = NULL;
	bool take = can_take(m);

	if (take && can_give(m))
		take = !m->prefer_out;
	m->prefer_out = !m->prefer_out;
	if (take) {
		in = chan_pop(&m->in);
		pthread_cond_signal(&m->in_space);
	}
	pthread_mutex_unlock(&m->mu);
	if (in) {
		m->head += bytering_put_frame(&m->buf, m->head, in->data,
					      in->len);
		free(in);
	} else {
		out = buf_take(m); /* the other case was ready */
	}
	pthread_mutex_lock(&m->mu);
	if (out) {
		chan_push(&m->out, out);
		pthread_cond_signal(&m->out_ready);
	}
}

static void *mover_main(void *arg)
{
	struct mover *m = arg;

	pthread_mutex_lock(&m->mu);
	for (;;) {
		while (!m->stop && !can_take(m) && !can_give(m))
			pthread_cond_wait(&m->kick, &m->mu);
		if (m->stop)
			break;
		mover_step(m);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

static void *mover_setup(const struct bench_cfg *cfg)
{
	struct mover *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	if (bytering_init(&m->buf, RING_BYTES))
		goto err_free;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->in_space, NULL);
	pthread_cond_init(&m->out_ready, NULL);
	pthread_cond_init(&m->kick, NULL);
	if (pthread_create(&m->thread, NULL, mover_main, m))
		goto err_buf;
	return m;

err_buf:
	bytering_free(&m->buf);
err_free:
	free(m);
	return NULL;
}

static void mover_send(struct mover *m, const void *data, size_t len)
{
	struct mmsg *msg = malloc(sizeof(*msg) + len);

	if (!msg)
		bench_fatal("mover: out of memory");
	msg->len = len;
	memcpy(msg->data, data, len);
	pthread_mutex_lock(&m->mu);
	while (m->in.count == CHAN_CAP)
		pthread_cond_wait(&m->in_space, &m->mu);
	chan_push(&m->in, msg);
	pthread_cond_signal(&m->kick);
	pthread_mutex_unlock(&m->mu);
}

static struct mmsg *mover_recv(struct mover *m)
{
	struct mmsg *msg;

	pthread_mutex_lock(&m->mu);
	while (!m->out.count)
		pthread_cond_wait(&m->out_ready, &m->mu);
	msg = chan_pop(&m->out);
	pthread_cond_signal(&m->kick);
	pthread_mutex_unlock(&m->mu);
	return msg;
}

static int mover_write(void *ctx, struct writer_arg *w)
{
	size_t size = w->cfg->size;
	uint64_t i;

	for (i = 0; i < w->msgs; i++) {
		stamp_msg(w->src, size, make_tag(w->id, i));
		mover_send(ctx, w->src, size);
	}
	return 0;
}

static int mover_read(void *ctx, struct verifier *v)
{
	struct mmsg *msg;
	int err;

	while (v->count < v->cfg->msgs) {
		msg = mover_recv(ctx);
		err = verify_msg(v, msg->data, msg->len);
		free(msg);
		if (err)
			return err;
	}
	return 0;
}

static long long mover_finish(void *ctx)
{
	struct mover *m = ctx;

	pthread_mutex_lock(&m->mu);
	m->stop = true;
	pthread_cond_signal(&m->kick);
	pthread_mutex_unlock(&m->mu);
	pthread_join(m->thread, NULL);
	while (m->in.count)
		free(chan_pop(&m->in));
	while (m->out.count)
		free(chan_pop(&m->out));
	pthread_cond_destroy(&m->in_space);
	pthread_cond_destroy(&m->out_ready);
	pthread_cond_destroy(&m->kick);
	pthread_mutex_destroy(&m->mu);
	bytering_free(&m->buf);
	free(m);
	return -1;
}

const struct bench_impl impl_mover = {
	.name = "mover",
	.desc = "seed design: writers -> chan -> mover thread+buffer -> chan",
	.mpsc = true,
	.setup = mover_setup,
	.write = mover_write,
	.read = mover_read,
	.finish = mover_finish,
};
