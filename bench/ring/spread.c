// SPDX-License-Identifier: GPL-2.0
/*
 * spread.c - how steady is bring's per-message SPSC path, and how does it
 * compare with the seed's design in Go?
 *
 * Distribution: SPREAD_RUNS runs of a fixed message count (1,000,000;
 * 200,000 at 64 KiB) of the workload of issue 12: one writer thread,
 * bring_push(); one reader thread, bring_next(), copy the message out,
 * bring_shift(); a fresh 4 MiB ring per run. The report gives the
 * slowest, the median and the fastest run, the slowest/median ratio
 * (target >= 0.5: no slow mode) and the futex calls per message of the
 * slowest and the median runs, which tell a wake-up storm from a machine
 * that was simply busy. Each run is paired with a run of ck_ring+copy in
 * the same seconds (which goes first alternates), and the slowest/median
 * of bring over that control is reported too: the reference VM has
 * phases, minutes long, in which any concurrent ring runs several times
 * slower, and they divide out.
 *
 * C vs Go: GO_ROUNDS paired rounds, each one run of bring (as above) and
 * one run of bench/ring/goring (sync.Mutex + two sync.Cond, the same
 * workload), in alternating order so that a drift of a shared machine
 * hits both alike; the ratio is the median of the rounds' C/Go ratios.
 * goring is built by "make bench" when go is installed; without it the
 * rounds are skipped with the reason.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "spread.h"

static const size_t spread_sizes[SPREAD_SIZES] = { 64, 1024, 4096, 65536 };

static uint64_t spread_msgs(size_t size)
{
	uint64_t n = size >= 65536 ? 200000 : 1000000;

	return bench_opts.quick ? n / 5 : n;
}

static unsigned int spread_runs(void)
{
	return bench_opts.quick ? 5 : SPREAD_RUNS_MAX;
}

static unsigned int go_rounds(void)
{
	return bench_opts.quick ? 3 : GO_ROUNDS_MAX;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double run_c(struct bench_cfg *cfg, double *futex_per_msg)
{
	struct run_stats rs;

	bench_run_fixed(&impl_bring_copy, cfg, &rs);
	if (futex_per_msg)
		*futex_per_msg = rs.futex < 0 ? -1 :
						(double)rs.futex / (double)rs.msgs;
	return (double)rs.msgs / rs.seconds;
}

/* ck_ring with the copy out, the same messages: msgs/s. */
static double run_ck_copy(const struct bench_cfg *cfg)
{
	struct run_stats rs;

	bench_set_cell("ck_ring-copy", "spsc", cfg->size);
	bench_run_fixed(&impl_ck_ring_copy, cfg, &rs);
	return (double)rs.msgs / rs.seconds;
}

/* The goring binary next to ours, or NULL with the reason in *why. */
static const char *find_goring(const char **why)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 8);
	char *slash;

	if (n <= 0) {
		*why = "cannot find our own binary";
		return NULL;
	}
	path[n] = 0;
	slash = strrchr(path, '/');
	strcpy(slash ? slash + 1 : path, "goring");
	if (access(path, X_OK)) {
		*why = "bench/ring/goring not built (go not installed: apt-get install golang-go)";
		return NULL;
	}
	return path;
}

/* One run of goring; msgs/s, or < 0 after printing why. */
static double run_go(const char *bin, const struct bench_cfg *cfg)
{
	char cmd[PATH_MAX + 64], line[256];
	unsigned long long msgs = 0;
	double secs = 0;
	size_t size = 0;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' %zu %llu", bin, cfg->size,
		 (unsigned long long)cfg->msgs);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (!fgets(line, sizeof(line), p) ||
	    sscanf(line, "goring %zu %llu %lf", &size, &msgs, &secs) != 3)
		secs = 0;
	st = pclose(p);
	if (st || secs <= 0 || msgs != cfg->msgs)
		bench_fatal("goring %zu B: failed (status %d)", cfg->size, st);
	return (double)msgs / secs;
}

static void run_rounds(struct spread_row *row, struct bench_cfg *cfg,
		       const char *gobin)
{
	double ratio[GO_ROUNDS_MAX];
	unsigned int i, n = go_rounds();

	for (i = 0; i < n; i++) {
		bench_set_cell("bring-vs-go", "spsc", cfg->size);
		if (i & 1) {
			row->go_rate[i] = run_go(gobin, cfg);
			row->c_rate[i] = run_c(cfg, NULL);
		} else {
			row->c_rate[i] = run_c(cfg, NULL);
			row->go_rate[i] = run_go(gobin, cfg);
		}
		ratio[i] = row->c_rate[i] / row->go_rate[i];
		cfg->one_cpu = 1;
		row->c1_rate[i] = run_c(cfg, NULL);
		cfg->one_cpu = 0;
		row->ck_rate[i] = run_ck_copy(cfg);
	}
	row->rounds = n;
	qsort(ratio, n, sizeof(ratio[0]), cmp_double);
	row->go_ratio = ratio[n / 2];
	row->go_ratio_min = ratio[0];
	row->go_ratio_max = ratio[n - 1];
}

static void run_row(struct spread_row *row, size_t size, const char *gobin)
{
	struct bench_cfg cfg = { .size = size, .writers = 1 };
	unsigned int i, n = spread_runs();

	cfg.msgs = spread_msgs(size);
	row->size = size;
	row->msgs = cfg.msgs;
	row->go_ratio = -1;
	for (i = 0; i < n; i++) {
		double ck = 0;

		if (isatty(2))
			fprintf(stderr, "\r  spread %6zu B run %2u/%u ...   ", size,
				i + 1, n);
		if (i & 1)
			ck = run_ck_copy(&cfg);
		bench_set_cell("bring-copy", "spsc", size);
		row->rate[i] = run_c(&cfg, &row->futex[i]);
		if (!(i & 1))
			ck = run_ck_copy(&cfg);
		row->rel[i] = ck > 0 ? row->rate[i] / ck : 0;
	}
	row->runs = n;
	qsort(row->rate, n, sizeof(row->rate[0]), cmp_double);
	qsort(row->futex, n, sizeof(row->futex[0]), cmp_double);
	qsort(row->rel, n, sizeof(row->rel[0]), cmp_double);
	row->slow_ratio = row->rate[0] / row->rate[n / 2];
	row->rel_slow_ratio = row->rel[0] / row->rel[n / 2];
	if (gobin && size >= 1024) {
		if (isatty(2))
			fprintf(stderr, "\r  bring vs go %6zu B ...          ", size);
		run_rounds(row, &cfg, gobin);
	}
}

void spread_run(struct spread_report *sp, bool (*want_size)(size_t size))
{
	const char *gobin = find_goring(&sp->go_skip);
	unsigned int i;

	if (gobin)
		sp->go_skip = NULL;
	for (i = 0; i < SPREAD_SIZES; i++)
		if (want_size(spread_sizes[i]))
			run_row(&sp->rows[sp->nrows++], spread_sizes[i], gobin);
	if (isatty(2))
		fprintf(stderr, "\r%60s\r", "");
}

void spread_table(FILE *f, const struct spread_report *sp)
{
	const struct spread_row *r;
	unsigned int i;

	if (!sp->nrows)
		return;
	fprintf(f, "\nper-message SPSC distribution: bring_push; bring_next, copy out, bring_shift; fresh 4 MiB ring per run\n");
	fprintf(f, "%6s%9s%5s%10s%10s%10s%10s%12s%12s\n", "size", "msgs",
		"runs", "slowest", "median", "fastest", "slow/med",
		"futex/msg", "(slowest)");
	fprintf(f, "%6s%9s%5s%30s%10s%12s%12s\n", "", "", "",
		"million msgs/s", "", "median run", "max");
	for (i = 0; i < sp->nrows; i++) {
		r = &sp->rows[i];
		fprintf(f, "%6zu%9llu%5u%10.3f%10.3f%10.3f%9.2fx%12.4f%12.4f\n",
			r->size, (unsigned long long)r->msgs, r->runs,
			r->rate[0] / 1e6, r->rate[r->runs / 2] / 1e6,
			r->rate[r->runs - 1] / 1e6, r->slow_ratio,
			r->futex[r->runs / 2], r->futex[r->runs - 1]);
	}
	fprintf(f, "  all runs, million msgs/s, slowest first:\n");
	for (i = 0; i < sp->nrows; i++) {
		unsigned int k;

		r = &sp->rows[i];
		fprintf(f, "  %6zu:", r->size);
		for (k = 0; k < r->runs; k++)
			fprintf(f, " %.2f", r->rate[k] / 1e6);
		fputc('\n', f);
	}
	fprintf(f, "  each run over a run of ck_ring+copy next to it (the host's phases divided out):\n");
	fprintf(f, "%6s%10s%10s%10s%10s\n", "size", "slowest", "median",
		"fastest", "slow/med");
	for (i = 0; i < sp->nrows; i++) {
		r = &sp->rows[i];
		fprintf(f, "%6zu%9.2fx%9.2fx%9.2fx%9.2fx\n", r->size, r->rel[0],
			r->rel[r->runs / 2], r->rel[r->runs - 1],
			r->rel_slow_ratio);
	}
	if (sp->go_skip) {
		fprintf(f, "\nbring vs Go (sync.Mutex + 2 sync.Cond): SKIP: %s\n",
			sp->go_skip);
		return;
	}
	fprintf(f, "\nbring vs Go (sync.Mutex + 2 sync.Cond, same workload), paired alternating rounds\n");
	fprintf(f, "%6s%7s%12s%12s%10s%16s%14s%14s%10s\n", "size", "rounds",
		"C median", "Go median", "C/Go", "(range)", "C, 1 CPU",
		"ck_ring+copy", "C/ck");
	for (i = 0; i < sp->nrows; i++) {
		double c[GO_ROUNDS_MAX], g[GO_ROUNDS_MAX], c1[GO_ROUNDS_MAX];
		double ck[GO_ROUNDS_MAX];

		r = &sp->rows[i];
		if (!r->rounds)
			continue;
		memcpy(c, r->c_rate, sizeof(c));
		memcpy(g, r->go_rate, sizeof(g));
		memcpy(c1, r->c1_rate, sizeof(c1));
		memcpy(ck, r->ck_rate, sizeof(ck));
		qsort(c, r->rounds, sizeof(c[0]), cmp_double);
		qsort(g, r->rounds, sizeof(g[0]), cmp_double);
		qsort(c1, r->rounds, sizeof(c1[0]), cmp_double);
		qsort(ck, r->rounds, sizeof(ck[0]), cmp_double);
		fprintf(f, "%6zu%7u%12.3f%12.3f%9.2fx%9.2f-%.2f%14.3f%14.3f%9.2fx\n",
			r->size, r->rounds, c[r->rounds / 2] / 1e6,
			g[r->rounds / 2] / 1e6, r->go_ratio, r->go_ratio_min,
			r->go_ratio_max, c1[r->rounds / 2] / 1e6,
			ck[r->rounds / 2] / 1e6,
			c[r->rounds / 2] / ck[r->rounds / 2]);
	}
	fprintf(f, "  (million msgs/s; \"C, 1 CPU\": bring with its writer and reader\n"
		   "   pinned to one CPU, as Go runs two goroutines that hand work to\n"
		   "   each other; the target compares the unpinned C. \"ck_ring+copy\":\n"
		   "   a lock-free SPSC of slots whose reader spins and copies each\n"
		   "   message out, unpinned: what any ring whose writer and reader\n"
		   "   run at once can reach here)\n");
}

static void json_list(FILE *f, const char *name, const double *v,
		      unsigned int n)
{
	unsigned int i;

	fprintf(f, ", \"%s\": [", name);
	for (i = 0; i < n; i++)
		fprintf(f, "%s%.6g", i ? ", " : "", v[i]);
	fputc(']', f);
}

void spread_json(FILE *f, const struct spread_report *sp)
{
	const struct spread_row *r;
	unsigned int i;

	fputs("  \"spread\": [\n", f);
	for (i = 0; i < sp->nrows; i++) {
		r = &sp->rows[i];
		fprintf(f, "    {\"size\": %zu, \"msgs\": %llu, \"slow_over_median\": %.4f",
			r->size, (unsigned long long)r->msgs, r->slow_ratio);
		json_list(f, "msgs_per_s", r->rate, r->runs);
		json_list(f, "futex_per_msg", r->futex, r->runs);
		fprintf(f, ", \"over_ck_slow_over_median\": %.4f",
			r->rel_slow_ratio);
		json_list(f, "over_ck_ring_copy", r->rel, r->runs);
		if (r->rounds) {
			fprintf(f, ", \"c_over_go\": %.4f", r->go_ratio);
			json_list(f, "c_msgs_per_s", r->c_rate, r->rounds);
			json_list(f, "go_msgs_per_s", r->go_rate, r->rounds);
			json_list(f, "c_one_cpu_msgs_per_s", r->c1_rate,
				  r->rounds);
			json_list(f, "ck_ring_copy_msgs_per_s", r->ck_rate,
				  r->rounds);
		}
		fprintf(f, "}%s\n", i + 1 == sp->nrows ? "" : ",");
	}
	fputs("  ],\n", f);
	if (sp->go_skip) {
		fputs("  \"go_skip\": ", f);
		fprintf(f, "\"%s\",\n", sp->go_skip);
	}
}
