// SPDX-License-Identifier: GPL-2.0
/*
 * wake.c - wake latency: how long a sleeping writer takes to run again.
 *
 * bring: a writer keeps a small ring full and so sleeps in bring_push().
 * The reader waits until the kernel reports the writer's thread as
 * sleeping (state S in /proc/self/task/TID/stat), takes the oldest message
 * with bring_next(), bumps a generation number, reads CLOCK_MONOTONIC and
 * calls bring_shift(), which frees exactly the space one more message
 * needs (48-byte payloads take 64 bytes with framing, the ring holds 1024
 * of them). The writer reads the clock as soon as bring_push() returns
 * and files the time under the generation it sees. Latency = writer time
 * - reader time.
 *
 * futex: the same measurement with nothing around the system calls: the
 * waiter sleeps in FUTEX_WAIT on a word, the waker reads the clock, stores
 * the new generation in the word and calls FUTEX_WAKE. Like bring, it uses
 * shared (not FUTEX_PRIVATE_FLAG) futexes.
 *
 * The waker and the sleeper are pinned to different CPUs when there are
 * two. A sample whose wake takes longer than WAKE_GIVE_UP_MS is discarded
 * (and counted), as is one the waiter saw before the waker's clock read.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bring.h"
#include "bench.h"
#include "wake.h"

#define WAKE_RING_BYTES (64U << 10)
#define WAKE_MSG 48 /* + 16 bytes of framing = 64: 1024 fill the ring */
#define WAKE_GIVE_UP_MS 50
#define WAKER_CPU 0
#define SLEEPER_CPU 1

#define load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

struct wake_run {
	struct bring *ring; /* bring test */
	uint32_t word; /* futex test: the generation */
	uint32_t gen; /* bumped by the waker before each wake */
	uint32_t seen; /* last generation the sleeper filed */
	int tid; /* the sleeper's thread id */
	bool stop;
	unsigned int iters;
	uint64_t *t_wake; /* [gen]: sleeper's clock after waking */
	uint64_t *t_kick; /* [gen]: waker's clock before waking it */
	int err;
};

static void pin_if_smp(int cpu)
{
	if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
		pin_to_cpu(cpu);
}

/* Is thread @tid of this process asleep (state S)? */
static bool thread_sleeping(int tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'S';
}

/* Wait until the sleeper filed generation @gen and went to sleep again. */
static int wait_asleep(struct wake_run *w, uint32_t gen)
{
	uint64_t give_up = now_ns() + WAKE_GIVE_UP_MS * 1000000ULL;

	while (load_acquire(&w->seen) != gen ||
	       !thread_sleeping(load_acquire(&w->tid))) {
		if (now_ns() > give_up)
			return -ETIMEDOUT;
	}
	return 0;
}

static void file_wake(struct wake_run *w, uint64_t t)
{
	uint32_t gen = load_acquire(&w->gen);

	if (gen != w->seen) {
		w->t_wake[gen] = t;
		store_release(&w->seen, gen);
	}
}

static void *bring_sleeper(void *arg)
{
	struct wake_run *w = arg;
	uint8_t msg[WAKE_MSG] = { 0 };
	int err;

	pin_if_smp(SLEEPER_CPU);
	store_release(&w->tid, gettid());
	while (!load_acquire(&w->stop)) {
		err = bring_push(w->ring, msg, sizeof(msg));
		file_wake(w, now_ns());
		if (err) {
			w->err = bench_err("bring_push", err);
			break;
		}
	}
	return NULL;
}

/* One bring sample: shift one message while the writer sleeps. */
static int bring_kick(struct wake_run *w, uint32_t gen)
{
	struct bring_msg m;
	int err;

	err = bring_next(w->ring, &m);
	if (err)
		return bench_err("bring_next", err);
	store_release(&w->gen, gen);
	w->t_kick[gen] = now_ns();
	err = bring_shift(w->ring);
	return err ? bench_err("bring_shift", err) : 0;
}

static long futex_call(uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static void *futex_sleeper(void *arg)
{
	struct wake_run *w = arg;
	uint32_t cur = 0;

	pin_if_smp(SLEEPER_CPU);
	store_release(&w->tid, gettid());
	while (!load_acquire(&w->stop)) {
		while (load_acquire(&w->word) == cur)
			futex_call(&w->word, FUTEX_WAIT, cur);
		file_wake(w, now_ns());
		cur = load_acquire(&w->word);
	}
	return NULL;
}

static int futex_kick(struct wake_run *w, uint32_t gen)
{
	store_release(&w->gen, gen);
	w->t_kick[gen] = now_ns();
	store_release(&w->word, gen);
	futex_call(&w->word, FUTEX_WAKE, 1);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void summarize(struct wake_result *res, uint64_t *lat, unsigned int n)
{
	res->samples = n;
	if (!n)
		return;
	qsort(lat, n, sizeof(lat[0]), cmp_u64);
	res->min_us = (double)lat[0] / 1e3;
	res->median_us = (double)lat[n / 2] / 1e3;
	res->p99_us = (double)lat[(n * 99) / 100] / 1e3;
	res->max_us = (double)lat[n - 1] / 1e3;
}

/*
 * The waker's loop: for each generation wait for the sleeper to sleep,
 * kick it, wait for it to file the wake. Runs on the calling thread.
 */
static int wake_loop(struct wake_run *w, int (*kick)(struct wake_run *,
						     uint32_t),
		     struct wake_result *res)
{
	uint64_t *lat = calloc(w->iters + 1, sizeof(*lat));
	unsigned int n = 0;
	uint32_t gen;
	int err = 0;

	if (!lat)
		return -ENOMEM;
	for (gen = 1; gen <= w->iters && !err; gen++) {
		/* A timeout here means the previous wake was lost: skip it. */
		if (wait_asleep(w, gen - 1) && !thread_sleeping(w->tid)) {
			err = bench_err("sleeper never slept", -ETIMEDOUT);
			break;
		}
		err = kick(w, gen);
		if (!err && wait_asleep(w, gen) == 0 &&
		    w->t_wake[gen] >= w->t_kick[gen])
			lat[n++] = w->t_wake[gen] - w->t_kick[gen];
		else
			res->discarded++;
		if (!err && w->err)
			err = w->err;
	}
	summarize(res, lat, n);
	free(lat);
	return err;
}

static int wake_alloc(struct wake_run *w, unsigned int iters)
{
	memset(w, 0, sizeof(*w));
	w->iters = iters;
	w->t_wake = calloc(iters + 2, sizeof(uint64_t));
	w->t_kick = calloc(iters + 2, sizeof(uint64_t));
	return w->t_wake && w->t_kick ? 0 : -ENOMEM;
}

static void wake_release(struct wake_run *w)
{
	free(w->t_wake);
	free(w->t_kick);
}

/* Run @sleeper against the waker loop; @kick also stops the sleeper. */
static int wake_measure(struct wake_run *w, void *(*sleeper)(void *),
			int (*kick)(struct wake_run *, uint32_t),
			struct wake_result *res)
{
	pthread_t th;
	int err;

	pin_if_smp(WAKER_CPU);
	if (pthread_create(&th, NULL, sleeper, w))
		return -EAGAIN;
	while (!load_acquire(&w->tid))
		;
	err = wake_loop(w, kick, res);
	store_release(&w->stop, true);
	kick(w, w->iters + 1); /* the sleeper leaves its wait and sees stop */
	pthread_join(th, NULL);
	return err;
}

int wake_bench_bring(unsigned int iters, struct wake_result *res)
{
	struct wake_run w;
	int err;

	res->name = "bring";
	if (wake_alloc(&w, iters))
		goto nomem;
	w.ring = bring_new(WAKE_RING_BYTES, NULL);
	if (!w.ring)
		goto nomem;
	err = wake_measure(&w, bring_sleeper, bring_kick, res);
	bring_free(w.ring);
	wake_release(&w);
	return err;
nomem:
	wake_release(&w);
	return -ENOMEM;
}

int wake_bench_futex(unsigned int iters, struct wake_result *res)
{
	struct wake_run w;
	int err;

	res->name = "futex";
	if (wake_alloc(&w, iters)) {
		wake_release(&w);
		return -ENOMEM;
	}
	err = wake_measure(&w, futex_sleeper, futex_kick, res);
	wake_release(&w);
	return err;
}
