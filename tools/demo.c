// SPDX-License-Identifier: GPL-2.0
/*
 * demo - producers and a consumer on one ring, with the numbers.
 *
 * Four producer threads push log lines of varying length; one consumer
 * drains them in batches and checks every line (per-producer order and
 * content). A 1 MiB ring makes both sides block now and then. Prints
 * throughput and how long writers and readers spent blocked.
 *
 *   demo [messages-per-producer]
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bring.h"

#define PRODUCERS 4
#define BATCH 64

struct producer {
	struct bring *r;
	unsigned int id;
	uint64_t count;
	int err;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A syslog-like line; its length varies with the sequence number. */
static int format_line(char *buf, size_t size, unsigned int id, uint64_t seq)
{
	static const char filler[] = "GET /api/v1/items?page=42 200 "
				     "ua=\"curl/7.88\" rt=0.004 upstream=10.0.0.7";

	return snprintf(buf, size,
			"2026-11-27T05:00:00Z web%u nginx[%u]: seq=%" PRIu64
			" %.*s",
			id, 1000 + id, seq, (int)(seq % (sizeof(filler) - 1)),
			filler);
}

static void *produce(void *arg)
{
	struct producer *p = arg;
	char line[256];
	uint64_t seq;

	for (seq = 0; seq < p->count; seq++) {
		int len = format_line(line, sizeof(line), p->id, seq);

		p->err = bring_push(p->r, line, (size_t)len);
		if (p->err)
			break;
	}
	return NULL;
}

#define LINE_PREFIX "2026-11-27T05:00:00Z web"

/*
 * Check one line against what its producer must have sent next: its id,
 * its sequence number, and its length (which follows from the number).
 */
static int check_line(const struct bring_msg *m, uint64_t *next_seq)
{
	const char *p = m->data, *end = p + m->len;
	char want[256];
	unsigned int id;
	uint64_t seq = 0;

	if (m->len < sizeof(LINE_PREFIX) ||
	    memcmp(p, LINE_PREFIX, sizeof(LINE_PREFIX) - 1))
		return -EBADMSG;
	id = (unsigned int)(p[sizeof(LINE_PREFIX) - 1] - '0');
	if (id >= PRODUCERS)
		return -EBADMSG;
	p = memchr(p, '=', m->len);
	if (!p)
		return -EBADMSG;
	for (p++; p < end && *p >= '0' && *p <= '9'; p++)
		seq = seq * 10 + (uint64_t)(*p - '0');
	if (seq != next_seq[id] ||
	    (size_t)format_line(want, sizeof(want), id, seq) != m->len)
		return -EBADMSG;
	next_seq[id]++;
	return 0;
}

static int consume(struct bring *r, uint64_t *msgs, uint64_t *bytes)
{
	uint64_t next_seq[PRODUCERS] = { 0 };
	struct bring_msg batch[BATCH];
	int n, i, err;

	while ((n = bring_peek(r, batch, BATCH, 0, -1)) > 0) {
		for (i = 0; i < n; i++) {
			err = check_line(&batch[i], next_seq);
			if (err)
				return err;
			*bytes += batch[i].len;
		}
		*msgs += (uint64_t)n;
		bring_shift(r);
	}
	return n == -EPIPE ? 0 : n;
}

static void report(struct bring *r, uint64_t msgs, uint64_t bytes,
		   uint64_t ns)
{
	struct bring_stats st = { .sz = sizeof(st) };
	double s = (double)ns / 1e9;

	bring_get_stats(r, &st);
	printf("bring demo: %d producers -> 1 consumer, ring %zu KiB\n",
	       PRODUCERS, bring_capacity(r) >> 10);
	printf("  messages   %" PRIu64 " (%" PRIu64 " bytes), all checked\n",
	       msgs, bytes);
	printf("  throughput %.2f M msg/s, %.1f MB/s\n", msgs / s / 1e6,
	       bytes / s / 1e6);
	printf("  writers    blocked %" PRIu64 " times, %.3f ms in all\n",
	       st.write_waits, st.write_wait_ns / 1e6);
	printf("  readers    blocked %" PRIu64 " times, %.3f ms in all\n",
	       st.read_waits, st.read_wait_ns / 1e6);
	printf("  futex      %" PRIu64 " waits, %" PRIu64
	       " wakes (%.4f per message)\n",
	       st.futex_waits, st.futex_wakes,
	       (double)(st.futex_waits + st.futex_wakes) / (double)msgs);
}

struct closer {
	pthread_t tid[PRODUCERS];
	struct producer prod[PRODUCERS];
	struct bring *r;
};

/* Join the producers, then close: the consumer drains and sees -EPIPE. */
static void *close_when_done(void *arg)
{
	struct closer *c = arg;
	int i;

	for (i = 0; i < PRODUCERS; i++)
		pthread_join(c->tid[i], NULL);
	bring_close(c->r);
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t per = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;
	uint64_t msgs = 0, bytes = 0, t0;
	BRING_OPTS(opts, .name = "demo");
	static struct closer c;
	pthread_t closer;
	int i, err;

	c.r = bring_new(1 << 20, &opts);
	if (!c.r) {
		fprintf(stderr, "demo: bring_new: %s\n", strerror(errno));
		return 1;
	}
	t0 = now_ns();
	for (i = 0; i < PRODUCERS; i++) {
		c.prod[i] = (struct producer){ .r = c.r, .id = (unsigned int)i,
					       .count = per };
		pthread_create(&c.tid[i], NULL, produce, &c.prod[i]);
	}
	pthread_create(&closer, NULL, close_when_done, &c);
	err = consume(c.r, &msgs, &bytes);
	if (!err && msgs != per * PRODUCERS)
		err = -EPROTO;
	report(c.r, msgs, bytes, now_ns() - t0);
	pthread_join(closer, NULL);
	for (i = 0; i < PRODUCERS; i++)
		if (c.prod[i].err)
			err = c.prod[i].err;
	if (err)
		fprintf(stderr, "demo: FAILED: %s\n", strerror(-err));
	bring_free(c.r);
	return err ? 1 : 0;
}
