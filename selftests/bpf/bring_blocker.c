// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * bring_blocker - a workload whose waits have known counts and lengths,
 * for the bpf selftests (bringlat, bpftrace recipes).
 *
 *   bring_blocker [-W NAME] [-R NAME] [-w N] [-r N] [-t N] [-d N]
 *                 [--write-ms MS] [--read-ms MS] [--timeout-ms MS] [-g] [-H]
 *
 * Phase 1, ring -W (default "blk_write"): the writer fills the ring, then
 *   makes N (-w, default 6) pushes that each block for about --write-ms
 *   (20): a reader thread frees one record 20 ms after the writer went to
 *   sleep (seen in the ring's FUTEX_WAIT count).
 * Phase 2, ring -R (default "blk_read"): a reader thread makes N (-r,
 *   default 10) reads that each block for about --read-ms (5): the main
 *   thread pushes one record 5 ms after the reader went to sleep.
 * Phase 3 (-t N, default 0): N pushes on the full -W ring and N reads on
 *   the empty -R ring that time out after --timeout-ms (10), ending their
 *   waits with -ETIMEDOUT.
 * Phase 4 (-d N, default 0): N pushes to "blk_durable", a file ring with
 *   BRING_DURABLE_ALWAYS, each waiting for its flush; then a line
 *   "durable ring=blk_durable pushes=N flushes=F" (F: the library's
 *   fdatasync() count).
 *
 * -g: print "ready PID" and wait for a line on stdin before phase 1, so a
 *     tracer can attach first.
 * -H: after the last phase, print "done" and wait for a line (or EOF) on
 *     stdin before exiting, so a tracer can read while the process lives.
 *
 * Last, it prints how long each blocking call took, timed around the call
 * (on a loaded machine a 5 ms wait can take longer), and what the library
 * counted itself (bring_get_stats), one line per ring; the tests compare
 * both with what the tracers saw:
 *   wait ring=blk_write side=writer us=20113 min_us=20000
 *   stats ring=blk_write write_waits=6 read_waits=0
 *   stats ring=blk_read write_waits=0 read_waits=10
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bring.h>

#define PAYLOAD 48 /* 16 bytes of framing: 64-byte records tile the ring */

static const char *wname = "blk_write", *rname = "blk_read";
static int nr_writes = 6, nr_reads = 10, nr_timeouts, nr_durable;
static int write_ms = 20, read_ms = 5, timeout_ms = 10;

/*
 * Each blocking call, timed around the call: the tests compare these with
 * the buckets the tracers report (a loaded machine stretches waits).
 */
#define MAX_TIMED 1024
static struct timed {
	const char *ring, *side;
	unsigned long long us, min_us;
} timed[MAX_TIMED];
static int nr_timed;
static pthread_mutex_t timed_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * min_ms: the least the wait itself can have lasted, probe to probe: the
 * other side sleeps that long after this one went to sleep (or the
 * timeout, less a millisecond: its deadline is set just before the probe).
 */
static void record(const char *ring, const char *side, unsigned long long t0,
		   int min_ms)
{
	unsigned long long us = (now_ns() - t0) / 1000;

	pthread_mutex_lock(&timed_lock);
	if (nr_timed < MAX_TIMED)
		timed[nr_timed++] =
			(struct timed){ ring, side, us, min_ms * 1000ULL };
	pthread_mutex_unlock(&timed_lock);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bring_blocker: %s: %s\n", what, strerror(err));
	exit(1);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void wait_line(void)
{
	char buf[64];

	if (!fgets(buf, sizeof(buf), stdin))
		return;
}

static unsigned long long futex_waits(struct bring *r)
{
	struct bring_stats st = { .sz = sizeof(st) };

	if (bring_get_stats(r, &st) < 0)
		die("get_stats", EINVAL);
	return st.futex_waits;
}

/*
 * Wait until the other thread sleeps in the ring (its FUTEX_WAIT count
 * went past @prev), so that the time we sleep next is all its wait, not
 * less by however long the scheduler took to run it.
 */
static void until_blocked(struct bring *r, unsigned long long prev)
{
	int i;

	for (i = 0; i < 20000 && futex_waits(r) <= prev; i++)
		usleep(100);
}

/* Phase 1: the slow reader, freeing one record per write_ms. */
static unsigned long long phase1_prev;

static void *slow_reader(void *arg)
{
	struct bring *r = arg;
	unsigned long long prev = phase1_prev;
	struct bring_msg m;
	int i, err;

	for (i = 0; i < nr_writes; i++) {
		until_blocked(r, prev);
		sleep_ms(write_ms);
		prev = futex_waits(r);
		err = bring_next_timeout(r, &m, 0); /* the ring is full */
		if (err < 0)
			die("slow reader: next", -err);
		err = bring_shift(r);
		if (err < 0)
			die("slow reader: shift", -err);
	}
	return NULL;
}

/* Phase 2: the reader that waits for each record. */
static void *waiting_reader(void *arg)
{
	struct bring *r = arg;
	struct bring_msg m;
	int i, err;

	for (i = 0; i < nr_reads; i++) {
		unsigned long long t0 = now_ns();

		err = bring_next_timeout(r, &m, 5000);
		if (err < 0)
			die("waiting reader: next", -err);
		record(rname, "reader", t0, read_ms);
		err = bring_shift(r);
		if (err < 0)
			die("waiting reader: shift", -err);
	}
	return NULL;
}

/* Phase 4: pushes that each wait for their flush, in a file of their own. */
static void durable_pushes(void)
{
	BRING_OPTS(o, .name = "blk_durable",
		   .durability = BRING_DURABLE_ALWAYS);
	struct bring_stats st = { .sz = sizeof(st) };
	char dir[] = "/tmp/bring_blocker.XXXXXX", path[64];
	char payload[PAYLOAD] = "durable";
	struct bring *r;
	int i, err;

	if (!mkdtemp(dir))
		die("mkdtemp", errno);
	snprintf(path, sizeof(path), "%s/ring", dir);
	r = bring_open(path, 65536, &o);
	if (!r)
		die("bring_open", errno);
	for (i = 0; i < nr_durable; i++) {
		unsigned long long t0 = now_ns();

		err = bring_push(r, payload, sizeof(payload));
		if (err < 0)
			die("durable push", -err);
		record("blk_durable", "durable", t0, 0);
	}
	err = bring_get_stats(r, &st);
	if (err < 0)
		die("get_stats", -err);
	printf("durable ring=blk_durable pushes=%d flushes=%llu\n", nr_durable,
	       (unsigned long long)st.flushes);
	bring_free(r);
	unlink(path);
	rmdir(dir);
}

static void print_stats(struct bring *r)
{
	struct bring_stats st = { .sz = sizeof(st) };
	int err = bring_get_stats(r, &st);

	if (err < 0)
		die("get_stats", -err);
	printf("stats ring=%s write_waits=%llu read_waits=%llu\n",
	       bring_name(r), (unsigned long long)st.write_waits,
	       (unsigned long long)st.read_waits);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "write-ms", required_argument, NULL, 1 },
		{ "read-ms", required_argument, NULL, 2 },
		{ "timeout-ms", required_argument, NULL, 3 },
		{ NULL, 0, NULL, 0 },
	};
	char payload[PAYLOAD] = "bring_blocker";
	bool go = false, hold = false;
	struct bring *wr, *rd;
	struct bring_msg m;
	pthread_t th;
	int c, i, err, filled = 0;

	while ((c = getopt_long(argc, argv, "W:R:w:r:t:d:gH", opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'W':
			wname = optarg;
			break;
		case 'R':
			rname = optarg;
			break;
		case 'w':
			nr_writes = atoi(optarg);
			break;
		case 'r':
			nr_reads = atoi(optarg);
			break;
		case 't':
			nr_timeouts = atoi(optarg);
			break;
		case 'd':
			nr_durable = atoi(optarg);
			break;
		case 'g':
			go = true;
			break;
		case 'H':
			hold = true;
			break;
		case 1:
			write_ms = atoi(optarg);
			break;
		case 2:
			read_ms = atoi(optarg);
			break;
		case 3:
			timeout_ms = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: see the comment in bring_blocker.c\n");
			return 2;
		}
	}

	{
		BRING_OPTS(o, .name = wname);
		wr = bring_new(4096, &o);
		if (!wr)
			die("bring_new", errno);
	}
	{
		BRING_OPTS(o, .name = rname);
		rd = bring_new(4096, &o);
		if (!rd)
			die("bring_new", errno);
	}

	if (go) {
		printf("ready %d\n", (int)getpid());
		fflush(stdout);
		wait_line();
	}

	/* Phase 1: fill, then every push waits for the slow reader. */
	while ((err = bring_push_timeout(wr, payload, sizeof(payload), 0)) == 0)
		filled++;
	if (err != -EAGAIN)
		die("fill", -err);
	if (nr_writes > 0) {
		phase1_prev = futex_waits(wr);
		err = pthread_create(&th, NULL, slow_reader, wr);
		if (err)
			die("pthread_create", err);
		for (i = 0; i < nr_writes; i++) {
			unsigned long long t0 = now_ns();

			err = bring_push_timeout(wr, payload, sizeof(payload),
						 5000);
			if (err < 0)
				die("blocking push", -err);
			record(wname, "writer", t0, write_ms);
		}
		pthread_join(th, NULL);
	}

	/* Phase 2: every read waits for the next push. */
	if (nr_reads > 0) {
		unsigned long long prev = futex_waits(rd);

		err = pthread_create(&th, NULL, waiting_reader, rd);
		if (err)
			die("pthread_create", err);
		for (i = 0; i < nr_reads; i++) {
			until_blocked(rd, prev);
			sleep_ms(read_ms);
			prev = futex_waits(rd);
			err = bring_push(rd, payload, sizeof(payload));
			if (err < 0)
				die("push", -err);
		}
		pthread_join(th, NULL);
	}

	/* Phase 3: waits that end in -ETIMEDOUT (the W ring is still full). */
	for (i = 0; i < nr_timeouts; i++) {
		unsigned long long t0 = now_ns();

		err = bring_push_timeout(wr, payload, sizeof(payload),
					 timeout_ms);
		if (err != -ETIMEDOUT)
			die("push that should time out",
			    err < 0 ? -err : EPROTO);
		record(wname, "writer", t0, timeout_ms - 1);
		t0 = now_ns();
		err = bring_next_timeout(rd, &m, timeout_ms);
		if (err != -ETIMEDOUT)
			die("read that should time out",
			    err < 0 ? -err : EPROTO);
		record(rname, "reader", t0, timeout_ms - 1);
	}

	if (nr_durable > 0)
		durable_pushes();

	for (i = 0; i < nr_timed; i++)
		printf("wait ring=%s side=%s us=%llu min_us=%llu\n",
		       timed[i].ring, timed[i].side, timed[i].us,
		       timed[i].min_us);

	print_stats(wr);
	print_stats(rd);
	printf("filled %d\n", filled);
	if (hold) {
		printf("done\n");
		fflush(stdout);
		wait_line();
	}
	fflush(stdout);
	bring_free(wr);
	bring_free(rd);
	return 0;
}
