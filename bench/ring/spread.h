/* SPDX-License-Identifier: GPL-2.0 */
/*
 * spread.h - the run-to-run distribution of bring's per-message SPSC
 * throughput, and bring against the seed's design in Go.
 */
#ifndef BENCH_RING_SPREAD_H
#define BENCH_RING_SPREAD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SPREAD_SIZES 4
#define SPREAD_RUNS_MAX 20
#define GO_ROUNDS_MAX 7

struct spread_row {
	size_t size;
	uint64_t msgs; /* per run */
	unsigned int runs;
	double rate[SPREAD_RUNS_MAX]; /* msgs/s, sorted */
	double futex[SPREAD_RUNS_MAX]; /* futex calls per message, sorted */
	double slow_ratio; /* slowest / median */
	/*
	 * Each run paired with a run of ck_ring+copy in the same seconds:
	 * bring / ck_ring+copy per run, sorted, and its slowest / median.
	 * The host's phases (this VM runs 1 KiB SPSC at 1.3 or at 8 M
	 * msgs/s for minutes at a time, any ring alike) divide out.
	 */
	double rel[SPREAD_RUNS_MAX];
	double rel_slow_ratio;
	/* C/Go paired rounds (rounds == 0: not run) */
	unsigned int rounds;
	double c_rate[GO_ROUNDS_MAX], go_rate[GO_ROUNDS_MAX];
	/* bring with both threads on one CPU, in the same rounds */
	double c1_rate[GO_ROUNDS_MAX];
	/* ck_ring copying out, unpinned: any concurrent ring's bound */
	double ck_rate[GO_ROUNDS_MAX];
	double go_ratio; /* median of the rounds' C/Go ratios; < 0: none */
	double go_ratio_min, go_ratio_max;
};

struct spread_report {
	struct spread_row rows[SPREAD_SIZES];
	unsigned int nrows;
	const char *go_skip; /* why the Go rounds did not run, or NULL */
};

/* @want_size: run this size? (ring_bench's --size filter) */
void spread_run(struct spread_report *sp, bool (*want_size)(size_t size));
void spread_table(FILE *f, const struct spread_report *sp);
void spread_json(FILE *f, const struct spread_report *sp);

#endif /* BENCH_RING_SPREAD_H */
