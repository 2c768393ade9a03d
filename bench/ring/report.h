/* SPDX-License-Identifier: GPL-2.0 */
/*
 * report.h - the ring benchmark's tables, target ratios and JSON file.
 */
#ifndef BENCH_RING_REPORT_H
#define BENCH_RING_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "bench.h"
#include "spread.h"
#include "wake.h"

/* A target: value compared with a bound. Reported, never enforced. */
struct ratio {
	const char *name;
	const char *unit; /* "x" for ratios, "" for plain numbers */
	double value; /* < 0: could not be computed */
	double median; /* the same from median runs; < 0: none */
	double target;
	bool at_least; /* value >= target passes; else value <= target */
};

struct bench_report {
	const struct bench_impl *const *impls;
	unsigned int nimpls;
	const size_t *sizes;
	unsigned int nsizes;
	struct bench_result *rows;
	unsigned int nrows;
	struct wake_result wake[2];
	unsigned int nwake;
	struct ratio ratios[16];
	unsigned int nratios;
	double loadavg; /* 1-minute load average before the run */
	struct spread_report spread; /* distribution and Go rounds */
};

const struct bench_result *report_find(const struct bench_report *rep,
				       const char *impl, const char *shape,
				       size_t size);
void report_legend(FILE *f, const struct bench_report *rep);
void report_tables(FILE *f, const struct bench_report *rep);
void report_ratios(FILE *f, const struct bench_report *rep);
int report_json(const char *path, const struct bench_report *rep);
double report_loadavg(void);

#endif /* BENCH_RING_REPORT_H */
