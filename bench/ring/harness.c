// SPDX-License-Identifier: GPL-2.0
/*
 * harness.c - run one transport with N writers and one reader, check the
 * stream, time it, calibrate the message count and keep the best run.
 *
 * Each run builds a fresh transport (ring memory is faulted in by setup
 * where the transport allows) and fresh writer buffers. Timing: the reader
 * takes its start time right after the start barrier that the writers also
 * wait on, and its end time when it has checked the last message, so a run
 * covers the whole transfer, ring fill included. Calibration grows a pilot
 * run until it lasts PILOT_MIN_S, then scales the count to target_s.
 * Afterwards every message sent must have arrived, exactly once and in
 * order per writer, or the benchmark exits with status 1. A run that takes
 * WATCHDOG_S is a hang: exit status 3.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define PILOT_MIN_S 0.02 /* a pilot run must last this long to count */
#define RUN_MAX_MSGS 400000000ULL
#define WATCHDOG_S 60 /* a run this long means a hang: abort */

struct bench_opts bench_opts = {
	.target_s = 0.3,
	.reps = 3,
	.wake_iters = 2000,
};

uint64_t bench_deadline_ns = UINT64_MAX;

static char cell[96] = "setup";

/*
 * The reader writes its verifier and each writer its own slot on every
 * message: keep them on separate pairs of cache lines (the adjacent-line
 * prefetcher pairs them), or the harness itself would ping-pong lines
 * between the threads it measures.
 */
#define __isolated __attribute__((aligned(128)))

struct wslot {
	struct run *run;
	struct writer_arg arg;
	pthread_t th;
} __isolated;

struct run {
	const struct bench_impl *im;
	const struct bench_cfg *cfg;
	void *ctx;
	pthread_barrier_t start;
	uint64_t t0, t1;
	struct verifier v __isolated;
	struct wslot w[MAX_WRITERS];
};

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void bench_set_cell(const char *impl, const char *shape, size_t size)
{
	snprintf(cell, sizeof(cell), "%s %s %zuB", impl, shape, size);
}

void bench_fatal(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ring_bench: FATAL [%s]: ", cell);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

int bench_err(const char *what, int err)
{
	fprintf(stderr, "ring_bench: [%s] %s: %s\n", cell, what,
		strerror(err < 0 ? -err : err));
	return err < 0 ? err : -err;
}

int verify_fail(const struct verifier *v, const char *what, uint64_t got,
		uint64_t want)
{
	fprintf(stderr,
		"ring_bench: CORRUPT [%s]: bad %s after %llu good messages: got %llu, want %llu\n",
		cell, what, (unsigned long long)v->count,
		(unsigned long long)got, (unsigned long long)want);
	return -EBADMSG;
}

static void watchdog(int sig)
{
	static const char msg[] = "ring_bench: FATAL: a run hung: ";

	(void)!write(2, msg, sizeof(msg) - 1);
	(void)!write(2, cell, strlen(cell));
	(void)!write(2, "\n", 1);
	_exit(3);
}

unsigned int batch_msgs(size_t size)
{
	size_t n = WRITE_BATCH_BYTES / size;

	if (n > WRITE_BATCH)
		n = WRITE_BATCH;
	return n ? (unsigned int)n : 1;
}

int pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/*
 * cfg->one_cpu: run the calling thread on the first CPU the process may
 * use, as all the run's threads do (how Go runs two goroutines that
 * hand work to each other: one thread at a time).
 */
static void pin_if_one_cpu(const struct bench_cfg *cfg)
{
	cpu_set_t set;
	int cpu;

	if (!cfg->one_cpu || sched_getaffinity(0, sizeof(set), &set))
		return;
	for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &set); cpu++)
		;
	if (cpu < CPU_SETSIZE)
		pin_to_cpu(cpu);
}

static void *writer_main(void *arg)
{
	struct wslot *ws = arg;
	struct run *run = ws->run;
	int err;

	pin_if_one_cpu(run->cfg);
	ws->arg.sent = ws->arg.msgs;
	pthread_barrier_wait(&run->start);
	err = run->im->write(run->ctx, &ws->arg);
	if (err)
		bench_fatal("writer %u failed: %d", ws->arg.id, err);
	return NULL;
}

static void *reader_main(void *arg)
{
	struct run *run = arg;
	int err;

	pin_if_one_cpu(run->cfg);
	pthread_barrier_wait(&run->start);
	run->t0 = now_ns();
	err = run->im->read(run->ctx, &run->v);
	run->t1 = now_ns();
	if (err)
		bench_fatal("reader failed: %d", err);
	return NULL;
}

static uint8_t *alloc_src(size_t size, unsigned int id)
{
	size_t len = batch_msgs(size) * size, i;
	uint8_t *p = aligned_alloc(64, (len + 63) & ~(size_t)63);

	if (!p)
		bench_fatal("out of memory");
	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + id);
	return p;
}

static void setup_writers(struct run *run)
{
	const struct bench_cfg *cfg = run->cfg;
	unsigned int i;

	for (i = 0; i < cfg->writers; i++) {
		run->w[i].run = run;
		run->w[i].arg.cfg = cfg;
		run->w[i].arg.id = i;
		run->w[i].arg.msgs = cfg->msgs / cfg->writers;
		run->w[i].arg.src = alloc_src(cfg->size, i);
		run->w[i].arg.v = &run->v;
	}
}

static void run_threads(struct run *run)
{
	unsigned int i, n = run->cfg->writers;
	pthread_t reader;

	if (pthread_barrier_init(&run->start, NULL, n + 1))
		bench_fatal("pthread_barrier_init");
	for (i = 0; i < n; i++)
		if (pthread_create(&run->w[i].th, NULL, writer_main,
				   &run->w[i]))
			bench_fatal("pthread_create");
	if (pthread_create(&reader, NULL, reader_main, run))
		bench_fatal("pthread_create");
	for (i = 0; i < n; i++)
		pthread_join(run->w[i].th, NULL);
	pthread_join(reader, NULL);
	pthread_barrier_destroy(&run->start);
}

static void run_single(struct run *run)
{
	int err;

	run->w[0].arg.sent = run->w[0].arg.msgs;
	run->t0 = now_ns();
	err = run->im->write(run->ctx, &run->w[0].arg);
	run->t1 = now_ns();
	if (err)
		bench_fatal("run failed: %d", err);
}

/* Did every message sent arrive? */
static void check_counts(const struct run *run)
{
	const struct bench_cfg *cfg = run->cfg;
	uint64_t sent = 0;
	unsigned int i;

	for (i = 0; i < cfg->writers; i++) {
		if (run->v.next[i] != run->w[i].arg.sent)
			bench_fatal("writer %u sent %llu messages, %llu arrived",
				    i, (unsigned long long)run->w[i].arg.sent,
				    (unsigned long long)run->v.next[i]);
		sent += run->w[i].arg.sent;
	}
	if (run->v.count != sent)
		bench_fatal("reader got %llu messages, %llu were sent",
			    (unsigned long long)run->v.count,
			    (unsigned long long)sent);
}

/* One run of cfg->msgs messages, or of target_s for timed transports. */
static void run_once(const struct bench_impl *im, const struct bench_cfg *cfg,
		     struct run_stats *rs)
{
	struct run run = { .im = im, .cfg = cfg, .v = { .cfg = cfg } };
	unsigned int i;

	setup_writers(&run);
	run.ctx = im->setup(cfg);
	if (!run.ctx)
		bench_fatal("setup failed: %s", strerror(errno));
	bench_deadline_ns = UINT64_MAX;
	if (im->timed)
		bench_deadline_ns = now_ns() +
				    (uint64_t)(bench_opts.target_s * 1e9);
	alarm(WATCHDOG_S);
	if (im->single)
		run_single(&run);
	else
		run_threads(&run);
	alarm(0);
	rs->futex = im->finish(run.ctx);
	check_counts(&run);
	rs->msgs = run.v.count;
	rs->seconds = (double)(run.t1 - run.t0) / 1e9;
	for (i = 0; i < cfg->writers; i++)
		free(run.w[i].arg.src);
}

void bench_run_fixed(const struct bench_impl *im, const struct bench_cfg *cfg,
		     struct run_stats *rs)
{
	run_once(im, cfg, rs);
}

static uint64_t round_msgs(double n, unsigned int writers)
{
	uint64_t m;

	if (n > (double)RUN_MAX_MSGS)
		n = (double)RUN_MAX_MSGS;
	m = (uint64_t)n / writers * writers;
	return m < 64 * writers ? 64 * writers : m;
}

/* Find a message count that makes one run last about target_s. */
static uint64_t calibrate(const struct bench_impl *im, struct bench_cfg *cfg)
{
	double n = (double)(64 << 10) / (double)cfg->size;
	struct run_stats rs;

	if (n > 1024)
		n = 1024;
	if (n < 64)
		n = 64;
	for (;;) {
		cfg->msgs = round_msgs(n, cfg->writers);
		run_once(im, cfg, &rs);
		if (rs.seconds >= PILOT_MIN_S || cfg->msgs >= RUN_MAX_MSGS)
			break;
		n = (double)cfg->msgs *
		    (rs.seconds > 0 ? PILOT_MIN_S * 2 / rs.seconds : 32);
		if (n > (double)cfg->msgs * 32)
			n = (double)cfg->msgs * 32;
	}
	return round_msgs((double)rs.msgs * bench_opts.target_s / rs.seconds,
			  cfg->writers);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static const char *shape_name(const struct bench_impl *im,
			      unsigned int writers)
{
	return im->single ? "1thread" : writers > 1 ? "mpsc4" : "spsc";
}

void bench_cell_init(struct bench_cell *c, const struct bench_impl *im,
		     unsigned int writers, size_t size)
{
	memset(c, 0, sizeof(*c));
	c->im = im;
	c->cfg.size = size;
	c->cfg.writers = writers;
	bench_set_cell(im->name, shape_name(im, writers), size);
	if (im->timed)
		c->cfg.msgs = round_msgs((double)RUN_MAX_MSGS, writers);
	else
		c->cfg.msgs = calibrate(im, &c->cfg);
}

void bench_cell_run(struct bench_cell *c)
{
	struct run_stats rs;
	double rate;

	if (c->runs == BENCH_MAX_REPS)
		return;
	bench_set_cell(c->im->name, shape_name(c->im, c->cfg.writers),
		       c->cfg.size);
	run_once(c->im, &c->cfg, &rs);
	rate = (double)rs.msgs / rs.seconds;
	if (!c->runs || rate > c->rate_best) {
		c->best = rs;
		c->rate_best = rate;
	}
	c->rate[c->runs++] = rate;
}

void bench_cell_result(struct bench_cell *c, struct bench_result *res)
{
	const struct run_stats *best = &c->best;

	memset(res, 0, sizeof(*res));
	res->impl = c->im->name;
	res->shape = shape_name(c->im, c->cfg.writers);
	res->writers = c->cfg.writers;
	res->size = c->cfg.size;
	res->msgs = best->msgs;
	res->seconds = best->seconds;
	res->msgs_per_s = c->rate_best;
	res->mb_per_s = c->rate_best * (double)c->cfg.size / 1e6;
	res->futex_per_msg = best->futex < 0 ? -1 :
					       (double)best->futex /
						       (double)best->msgs;
	qsort(c->rate, c->runs, sizeof(c->rate[0]), cmp_double);
	res->median_msgs_per_s = c->rate[c->runs / 2];
	res->runs = c->runs;
	res->timed = c->im->timed;
}

static void __attribute__((constructor)) harness_init(void)
{
	signal(SIGALRM, watchdog);
}
