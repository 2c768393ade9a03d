/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bench.h - shared pieces of the ring benchmark.
 *
 * Every transport under test (bring itself and the baselines) fills in a
 * struct bench_impl: a setup that builds one fresh instance, a writer loop
 * run by each writer thread, a reader loop run by the single reader, and a
 * finish that reports futex calls (when known) and frees the instance.
 * harness.c starts the threads together behind a barrier, times the
 * reader, checks the stream and picks the best of several runs.
 *
 * Messages are stamped by the writer and checked by the reader:
 *   bytes [0, 8)   tag = writer id << 48 | per-writer sequence number
 *   byte  size-1   stamp_byte(tag)
 * and every reader checks the length, the writer id, that each writer's
 * sequence numbers arrive in order without gaps, and the last byte. Any
 * mismatch aborts the whole benchmark (exit status 1).
 */
#ifndef BENCH_RING_BENCH_H
#define BENCH_RING_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef RING_BYTES
#define RING_BYTES (4U << 20) /* capacity of every ring and slab */
#endif
#define MAX_WRITERS 8
#define MPSC_WRITERS 4
#define WRITE_BATCH 32 /* messages per bring_push_batch() */
/*
 * Batches stay small against the ring (1/16 of it), or a reader holding a
 * whole peeked batch and a writer claiming one would take turns instead
 * of overlapping: 64 KiB messages go 4 at a time.
 */
#define WRITE_BATCH_BYTES (RING_BYTES / 16) /* ... at most this payload */
#define READ_BATCH 64 /* messages per bring_peek() */
#define READ_BATCH_BYTES (RING_BYTES / 16) /* ... at most this payload */
#define MIN_MSG 16 /* smallest size: the tag and the stamp byte fit */

#define TAG_ID_SHIFT 48
#define TAG_SEQ_MASK ((1ULL << TAG_ID_SHIFT) - 1)

struct bench_cfg {
	size_t size; /* payload bytes per message */
	unsigned int writers; /* writer threads */
	uint64_t msgs; /* total messages, a multiple of @writers */
	int one_cpu; /* 1: every thread pinned to the first allowed CPU */
};

/* What the reader keeps to check the stream it receives. */
struct verifier {
	const struct bench_cfg *cfg;
	uint64_t next[MAX_WRITERS];
	uint64_t count;
	uint64_t sum; /* of the last bytes: the reader really reads them */
};

struct writer_arg {
	const struct bench_cfg *cfg;
	unsigned int id;
	uint64_t msgs; /* this writer's share */
	uint64_t sent; /* set by impls that stop at bench_deadline_ns */
	uint8_t *src; /* batch_msgs(cfg->size) * cfg->size bytes */
	struct verifier *v; /* single-threaded impls only */
};

struct bench_impl {
	const char *name;
	const char *desc;
	bool single; /* one thread does both sides (memcpy) */
	bool mpsc; /* works with several writers */
	bool timed; /* runs until bench_deadline_ns instead of a count */
	void *(*setup)(const struct bench_cfg *cfg);
	int (*write)(void *ctx, struct writer_arg *w);
	int (*read)(void *ctx, struct verifier *v);
	/* Frees @ctx; returns futex system calls made, or -1 if unknown. */
	long long (*finish)(void *ctx);
};

/* One measured cell: best of the runs. */
struct bench_result {
	const char *impl;
	const char *shape; /* "spsc", "mpsc4" or "1thread" */
	unsigned int writers;
	size_t size;
	uint64_t msgs; /* per run */
	double seconds; /* of the best run */
	double msgs_per_s; /* best run */
	double median_msgs_per_s;
	double mb_per_s; /* payload, 10^6 bytes, best run */
	double futex_per_msg; /* best run; < 0 when unknown */
	unsigned int runs;
	bool timed; /* runs lasted target_s, not a calibrated count */
};

struct run_stats {
	double seconds;
	uint64_t msgs; /* arrived */
	long long futex; /* futex calls, -1: unknown */
};

#define BENCH_MAX_REPS 16

struct bench_cell {
	const struct bench_impl *im;
	struct bench_cfg cfg;
	struct run_stats best;
	double rate_best;
	double rate[BENCH_MAX_REPS];
	unsigned int runs;
};

struct bench_opts {
	double target_s; /* length of one run */
	unsigned int reps; /* runs per cell */
	unsigned int wake_iters; /* wake-latency samples */
	bool quick;
};

extern struct bench_opts bench_opts;

/*
 * End of the current run of a timed transport (target_s after the start).
 * Transports whose progress depends on the scheduler (ck_ring's MPSC
 * enqueue spins until earlier producers publish, which crawls when 5
 * threads share 2 CPUs, so a count-based run can last 100x longer than
 * calibrated) stop writing there, set writer_arg.sent, and the harness
 * rates the messages that arrived. UINT64_MAX for the other transports.
 */
extern uint64_t bench_deadline_ns;

/* Transports: ring_bench.c (bring), baselines.c, mover.c, ckring.c. */
extern const struct bench_impl impl_bring_msg;
extern const struct bench_impl impl_bring_batch;
extern const struct bench_impl impl_bring_copy;
extern const struct bench_impl impl_memcpy;
extern const struct bench_impl impl_pipe;
extern const struct bench_impl impl_condvar;
extern const struct bench_impl impl_mover;
extern const struct bench_impl impl_sleep_poll;
extern const struct bench_impl impl_ck_ring;
extern const struct bench_impl impl_ck_ring_copy;

/* harness.c */
uint64_t now_ns(void);
void bench_set_cell(const char *impl, const char *shape, size_t size);
void __attribute__((noreturn, format(printf, 1, 2))) bench_fatal(
	const char *fmt, ...);
int bench_err(const char *what, int err);
int verify_fail(const struct verifier *v, const char *what, uint64_t got,
		uint64_t want);
unsigned int batch_msgs(size_t size);

/*
 * One cell (transport, shape, size): init calibrates the message count,
 * each run adds one timed run, result reports the best run and the median.
 * Runs of the cells of one shape and size are interleaved by the caller so
 * that slow drifts of a noisy machine hit every transport alike.
 */
void bench_cell_init(struct bench_cell *c, const struct bench_impl *im,
		     unsigned int writers, size_t size);
void bench_cell_run(struct bench_cell *c);
void bench_cell_result(struct bench_cell *c, struct bench_result *res);
int pin_to_cpu(int cpu);
/* One run of exactly cfg->msgs messages (the distribution runs). */
void bench_run_fixed(const struct bench_impl *im, const struct bench_cfg *cfg,
		     struct run_stats *rs);

static inline uint8_t stamp_byte(uint64_t tag)
{
	return (uint8_t)(tag * 0x9e3779b97f4a7c15ULL >> 56) | 1;
}

static inline uint64_t make_tag(unsigned int id, uint64_t seq)
{
	return (uint64_t)id << TAG_ID_SHIFT | seq;
}

/* Write the tag and the stamp byte into a message of @size bytes. */
static inline void stamp_msg(void *msg, size_t size, uint64_t tag)
{
	uint8_t *p = msg;

	memcpy(p, &tag, sizeof(tag));
	p[size - 1] = stamp_byte(tag);
}

/* Check one received message; 0 or -EBADMSG (after printing why). */
static inline int verify_msg(struct verifier *v, const void *data,
			     size_t len)
{
	const uint8_t *p = data;
	uint64_t tag, id, seq;

	if (len != v->cfg->size)
		return verify_fail(v, "length", len, v->cfg->size);
	memcpy(&tag, p, sizeof(tag));
	id = tag >> TAG_ID_SHIFT;
	seq = tag & TAG_SEQ_MASK;
	if (id >= v->cfg->writers)
		return verify_fail(v, "writer id", id, v->cfg->writers);
	if (seq != v->next[id])
		return verify_fail(v, "sequence", seq, v->next[id]);
	if (p[len - 1] != stamp_byte(tag))
		return verify_fail(v, "last byte", p[len - 1],
				   stamp_byte(tag));
	v->next[id]++;
	v->count++;
	v->sum += p[len - 1];
	return 0;
}

#endif /* BENCH_RING_BENCH_H */
