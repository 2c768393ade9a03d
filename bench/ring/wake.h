/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wake.h - wake latency of a writer sleeping on a full bring ring, and of
 * a bare futex, measured the same way (see wake.c).
 */
#ifndef BENCH_RING_WAKE_H
#define BENCH_RING_WAKE_H

struct wake_result {
	const char *name;
	unsigned int samples;
	unsigned int discarded;
	double min_us;
	double median_us;
	double p99_us;
	double max_us;
};

int wake_bench_bring(unsigned int iters, struct wake_result *res);
int wake_bench_futex(unsigned int iters, struct wake_result *res);

#endif /* BENCH_RING_WAKE_H */
