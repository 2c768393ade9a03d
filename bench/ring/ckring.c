// SPDX-License-Identifier: GPL-2.0
/*
 * ckring.c - Concurrency Kit's ck_ring as the lock-free peer.
 *
 * ck_ring carries pointers, not bytes, so messages live in a slab of
 * RING_BYTES / size slots of size bytes each, split evenly between the
 * writers. Writer w uses its slots in order: it copies message i into slot
 * i % per_writer of its share and enqueues the slot index on the data
 * ring; the reader dequeues it, checks the message in place (zero copy,
 * like bring) and then counts it in released[w]. Each writer's messages
 * leave the ring in the order it sent them, so slot i is free again once
 * released[w] > i - per_writer: a free-index scheme that costs the reader
 * one store per message. The data ring has room for every slot and never
 * fills; a writer whose share is all in flight, or a reader facing an
 * empty data ring, spins with ck_pr_stall(), which is how ck_ring is used.
 *
 *   1 writer:  ck_ring_enqueue_spsc / ck_ring_dequeue_spsc
 *   N writers: ck_ring_enqueue_mpsc / ck_ring_dequeue_mpsc
 *
 * ck_ring's MPSC enqueue also spins inside ck until every producer with an
 * earlier ticket has published. With four writers and a reader on two
 * CPUs a preempted producer stalls the others for whole time slices, and
 * throughput swings by 100x from run to run; so ck_ring runs are timed:
 * writers stop at bench_deadline_ns (checked every 16 messages) and the
 * run is rated on what arrived.
 */
#include <ck_pr.h>
#include <ck_ring.h>
#include <errno.h>
#include <stdlib.h>

#include "bench.h"

struct released {
	uint64_t n; /* written by the reader only */
} __attribute__((aligned(64)));

struct ckq {
	ck_ring_t data;
	ck_ring_buffer_t *dbuf;
	uint8_t *slab;
	size_t size;
	unsigned int per_writer; /* slots */
	bool mp;
	unsigned int writers_done;
	struct released released[MAX_WRITERS];
};

static void ckq_free(struct ckq *q)
{
	free(q->dbuf);
	free(q->slab);
	free(q);
}

static void *ck_setup(const struct bench_cfg *cfg)
{
	struct ckq *q = aligned_alloc(64, sizeof(*q));
	size_t slots = RING_BYTES / cfg->size;
	size_t entries = 2 * slots; /* > slots: never full */

	if (!q)
		return NULL;
	memset(q, 0, sizeof(*q));
	q->size = cfg->size;
	q->per_writer = (unsigned int)(slots / cfg->writers);
	q->mp = cfg->writers > 1;
	q->dbuf = aligned_alloc(64, entries * sizeof(ck_ring_buffer_t));
	q->slab = aligned_alloc(4096, slots * cfg->size);
	if (!q->per_writer || !q->dbuf || !q->slab) {
		ckq_free(q);
		return NULL;
	}
	memset(q->slab, 0, slots * cfg->size);
	ck_ring_init(&q->data, (unsigned int)entries);
	return q;
}

/* Wait until message @i of writer @w has a free slot; returns the slot. */
static uintptr_t ck_get_slot(struct ckq *q, unsigned int w, uint64_t i,
			     uint64_t *released)
{
	while (i - *released >= q->per_writer) {
		/* Pairs with the release store in ck_read(). */
		*released = __atomic_load_n(&q->released[w].n,
					    __ATOMIC_ACQUIRE);
		if (i - *released >= q->per_writer)
			ck_pr_stall();
	}
	return (uintptr_t)w * q->per_writer + i % q->per_writer;
}

static void ck_put_data(struct ckq *q, uintptr_t slot)
{
	if (q->mp) {
		while (!ck_ring_enqueue_mpsc(&q->data, q->dbuf, (void *)slot))
			ck_pr_stall();
	} else {
		while (!ck_ring_enqueue_spsc(&q->data, q->dbuf, (void *)slot))
			ck_pr_stall();
	}
}

static int ck_write(void *ctx, struct writer_arg *w)
{
	struct ckq *q = ctx;
	size_t size = w->cfg->size;
	uint64_t i, released = 0;
	uintptr_t slot;

	for (i = 0; i < w->msgs; i++) {
		if (!(i & 15) && now_ns() > bench_deadline_ns)
			break;
		slot = ck_get_slot(q, w->id, i, &released);
		stamp_msg(w->src, size, make_tag(w->id, i));
		memcpy(q->slab + slot * size, w->src, size);
		ck_put_data(q, slot);
	}
	w->sent = i;
	/* Pairs with the acquire load in ck_get_data(). */
	__atomic_fetch_add(&q->writers_done, 1, __ATOMIC_RELEASE);
	return 0;
}

static bool ck_dequeue(struct ckq *q, void **slot)
{
	if (q->mp)
		return ck_ring_dequeue_mpsc(&q->data, q->dbuf, slot);
	return ck_ring_dequeue_spsc(&q->data, q->dbuf, slot);
}

/* The next full slot; false once the writers are done and it is empty. */
static bool ck_get_data(struct ckq *q, unsigned int writers, void **slot)
{
	for (;;) {
		if (ck_dequeue(q, slot))
			return true;
		if (__atomic_load_n(&q->writers_done, __ATOMIC_ACQUIRE) ==
		    writers)
			return ck_dequeue(q, slot);
		ck_pr_stall();
	}
}

/* Read every message; with @buf, copy each one out before the check. */
static int ck_read_into(struct ckq *q, struct verifier *v, uint8_t *buf)
{
	unsigned int writers = v->cfg->writers, w;
	const uint8_t *msg;
	uintptr_t idx;
	void *slot;
	int err;

	while (v->count < v->cfg->msgs) {
		if (!ck_get_data(q, writers, &slot))
			break; /* stopped at the deadline */
		idx = (uintptr_t)slot;
		w = (unsigned int)(idx / q->per_writer);
		if (w >= writers)
			return verify_fail(v, "slot index", idx,
					   (uint64_t)writers * q->per_writer);
		msg = q->slab + idx * q->size;
		if (buf) {
			memcpy(buf, msg, q->size);
			msg = buf;
		}
		err = verify_msg(v, msg, q->size);
		if (err)
			return err;
		/* Release: the check above is done with the slot. */
		__atomic_store_n(&q->released[w].n, q->released[w].n + 1,
				 __ATOMIC_RELEASE);
	}
	return 0;
}

static int ck_read(void *ctx, struct verifier *v)
{
	return ck_read_into(ctx, v, NULL);
}

/* The workload of issue 12 section 2: each message copied out. */
static int ck_read_copy(void *ctx, struct verifier *v)
{
	struct ckq *q = ctx;
	uint8_t *buf = malloc(q->size);
	int err;

	if (!buf)
		return -ENOMEM;
	err = ck_read_into(q, v, buf);
	free(buf);
	return err;
}

static long long ck_finish(void *ctx)
{
	ckq_free(ctx);
	return -1;
}

const struct bench_impl impl_ck_ring = {
	.name = "ck_ring",
	.desc = "ck_ring spsc/mpsc of slab slot indices, ck_pr_stall() spins",
	.mpsc = true,
	.timed = true,
	.setup = ck_setup,
	.write = ck_write,
	.read = ck_read,
	.finish = ck_finish,
};

/*
 * The bound of any ring whose writer and reader run at once, for the
 * per-message workload that copies each message out: no sleeping, no
 * framing, one copy in and one out, the reader spinning right behind.
 */
const struct bench_impl impl_ck_ring_copy = {
	.name = "ck_ring-copy",
	.desc = "ck_ring spsc as above, the reader copying each message out",
	.timed = true,
	.setup = ck_setup,
	.write = ck_write,
	.read = ck_read_copy,
	.finish = ck_finish,
};
