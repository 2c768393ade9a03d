// SPDX-License-Identifier: GPL-2.0
/*
 * ring_bench - bring against its peers, side by side in one run.
 *
 *   ring_bench [--quick] [--json FILE] [--time S] [--reps N]
 *              [--impl a,b,...] [--size 64,4096,...] [--no-wake]
 *              [--no-spread]
 *
 * Throughput: every transport moves messages of 16 B to 64 KiB from one
 * writer thread (SPSC) and from four (MPSC) to one reader thread; each
 * cell is calibrated to run about --time seconds and the best of --reps
 * runs is reported (the JSON also has the median). bring runs twice: with
 * the per-message API (bring_push, bring_next + bring_shift) and with the
 * batch API (bring_push_batch of up to 32 messages, bring_peek of up to 64
 * then one bring_shift; either at most 256 KiB of payload). Then the
 * distribution of 20 fixed-size per-message SPSC runs and bring against
 * the seed's design in Go (spread.c; --no-spread skips both), the wake
 * latency of a writer sleeping on a full ring against a bare futex, and
 * the target ratios.
 *
 * The exit status is 0 whatever the ratios; 1 when a transport corrupted,
 * lost or duplicated a message or failed, 3 when a run hung.
 * Environment: BENCH_QUICK=1 is --quick, BENCH_JSON=FILE is --json FILE
 * (bench/run.sh sets it).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bring.h"
#include "bench.h"
#include "report.h"
#include "wake.h"

#define MAX_ROWS 128

/* ---- bring ------------------------------------------------------------- */

/*
 * Fault the ring's pages in before the clock runs, as the baselines'
 * setups do: one lap of 64 KiB messages, each pushed and shifted at once.
 */
static int bring_prefault(struct bring *r)
{
	static uint8_t chunk[64 << 10];
	size_t done, cap = bring_capacity(r), len = sizeof(chunk);
	struct bring_msg m;
	int err = 0;

	if (len > bring_max_msg(r) / 2)
		len = bring_max_msg(r) / 2;
	for (done = 0; done < cap && !err; done += len) {
		err = bring_push(r, chunk, len);
		if (!err)
			err = bring_next(r, &m);
		if (!err)
			err = bring_shift(r);
	}
	return err;
}

static void *bring_setup(const struct bench_cfg *cfg)
{
	struct bring *r = bring_new(RING_BYTES, NULL);
	int err = r ? bring_prefault(r) : 0;

	if (err) {
		bring_free(r);
		errno = -err;
		return NULL;
	}
	return r;
}

static int bring_write_msg(void *ctx, struct writer_arg *w)
{
	size_t size = w->cfg->size;
	uint64_t i;
	int err;

	for (i = 0; i < w->msgs; i++) {
		stamp_msg(w->src, size, make_tag(w->id, i));
		err = bring_push(ctx, w->src, size);
		if (err)
			return bench_err("bring_push", err);
	}
	return 0;
}

/* Push all @n messages; bring_push_batch() may take a prefix. */
static int push_all(struct bring *r, const struct bring_msg *msgs,
		    unsigned int n)
{
	int ret;

	while (n) {
		ret = bring_push_batch(r, msgs, n, -1);
		if (ret <= 0)
			return bench_err("bring_push_batch", ret ? ret : -EIO);
		msgs += ret;
		n -= (unsigned int)ret;
	}
	return 0;
}

static int bring_write_batch(void *ctx, struct writer_arg *w)
{
	struct bring_msg msgs[WRITE_BATCH];
	size_t size = w->cfg->size;
	unsigned int nb = batch_msgs(size), n, k;
	uint64_t i;
	int err;

	for (k = 0; k < nb; k++)
		msgs[k] = (struct bring_msg){ .data = w->src + k * size,
					      .len = size };
	for (i = 0; i < w->msgs; i += n) {
		n = w->msgs - i < nb ? (unsigned int)(w->msgs - i) : nb;
		for (k = 0; k < n; k++)
			stamp_msg(w->src + k * size, size,
				  make_tag(w->id, i + k));
		err = push_all(ctx, msgs, n);
		if (err)
			return err;
	}
	return 0;
}

/* bring's own sequence numbers must grow strictly too. */
static int check_seq(struct verifier *v, uint64_t *min, uint64_t seq)
{
	if (seq < *min)
		return verify_fail(v, "bring_msg.seq", seq, *min);
	*min = seq + 1;
	return 0;
}

static int bring_read_msg(void *ctx, struct verifier *v)
{
	uint64_t min_seq = 0;
	struct bring_msg m;
	int err;

	while (v->count < v->cfg->msgs) {
		err = bring_next(ctx, &m);
		if (err)
			return bench_err("bring_next", err);
		err = check_seq(v, &min_seq, m.seq);
		if (!err)
			err = verify_msg(v, m.data, m.len);
		if (err)
			return err;
		err = bring_shift(ctx);
		if (err)
			return bench_err("bring_shift", err);
	}
	return 0;
}

/*
 * The workload of issue 12's distribution and Go rounds: the reader
 * copies each message out before it checks and shifts it, as the Go
 * baseline's Next does.
 */
static int bring_read_copy(void *ctx, struct verifier *v)
{
	size_t size = v->cfg->size;
	uint8_t *buf = malloc(size);
	uint64_t min_seq = 0;
	struct bring_msg m;
	int err = buf ? 0 : -ENOMEM;

	while (!err && v->count < v->cfg->msgs) {
		err = bring_next(ctx, &m);
		if (err) {
			err = bench_err("bring_next", err);
			break;
		}
		if (m.len != size) {
			err = verify_fail(v, "length", m.len, size);
			break;
		}
		memcpy(buf, m.data, m.len);
		err = check_seq(v, &min_seq, m.seq);
		if (!err)
			err = verify_msg(v, buf, m.len);
		if (!err && (err = bring_shift(ctx)))
			err = bench_err("bring_shift", err);
	}
	free(buf);
	return err;
}

static int bring_read_batch(void *ctx, struct verifier *v)
{
	struct bring_msg msgs[READ_BATCH];
	uint64_t min_seq = 0;
	int n, k, err;

	while (v->count < v->cfg->msgs) {
		n = bring_peek(ctx, msgs, READ_BATCH, READ_BATCH_BYTES, -1);
		if (n <= 0)
			return bench_err("bring_peek", n ? n : -EIO);
		for (k = 0; k < n; k++) {
			err = check_seq(v, &min_seq, msgs[k].seq);
			if (!err)
				err = verify_msg(v, msgs[k].data, msgs[k].len);
			if (err)
				return err;
		}
		err = bring_shift(ctx);
		if (err)
			return bench_err("bring_shift", err);
	}
	return 0;
}

static long long bring_finish(void *ctx)
{
	struct bring_stats st = { .sz = sizeof(st) };
	int err = bring_get_stats(ctx, &st);

	if (err)
		bench_fatal("bring_get_stats: %d", err);
	if (st.msgs_in != st.msgs_out || st.used)
		bench_fatal("bring stats: %llu in, %llu out, %llu bytes used",
			    (unsigned long long)st.msgs_in,
			    (unsigned long long)st.msgs_out,
			    (unsigned long long)st.used);
	bring_free(ctx);
	return (long long)(st.futex_waits + st.futex_wakes);
}

const struct bench_impl impl_bring_msg = {
	.name = "bring",
	.desc = "bring per-message API: bring_push; bring_next + bring_shift",
	.mpsc = true,
	.setup = bring_setup,
	.write = bring_write_msg,
	.read = bring_read_msg,
	.finish = bring_finish,
};

const struct bench_impl impl_bring_batch = {
	.name = "bring-batch",
	.desc = "bring batch API: bring_push_batch (<=32 msgs); bring_peek (<=64) + bring_shift; <=256 KiB each",
	.mpsc = true,
	.setup = bring_setup,
	.write = bring_write_batch,
	.read = bring_read_batch,
	.finish = bring_finish,
};

const struct bench_impl impl_bring_copy = {
	.name = "bring-copy",
	.desc = "bring per-message API, reader copies out: bring_push; bring_next + memcpy + bring_shift",
	.setup = bring_setup,
	.write = bring_write_msg,
	.read = bring_read_copy,
	.finish = bring_finish,
};

/* ---- the run ----------------------------------------------------------- */

static const struct bench_impl *const all_impls[] = {
	&impl_bring_msg, &impl_bring_batch, &impl_memcpy,     &impl_pipe,
	&impl_condvar,	 &impl_mover,	    &impl_sleep_poll, &impl_ck_ring,
};
#define NR_IMPLS (sizeof(all_impls) / sizeof(all_impls[0]))

static const size_t all_sizes[] = { 16, 64, 256, 1024, 4096, 65536 };
#define NR_SIZES (sizeof(all_sizes) / sizeof(all_sizes[0]))

struct args {
	const char *json;
	const char *impl_filter;
	const char *size_filter;
	bool no_wake;
	bool no_spread;
};

/* Is @word an element of the comma-separated @list (NULL: everything)? */
static bool in_list(const char *list, const char *word)
{
	size_t n = strlen(word);
	const char *p = list;

	if (!list)
		return true;
	while ((p = strstr(p, word))) {
		if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
		p += n;
	}
	return false;
}

static bool want_cell(const struct args *a, const struct bench_impl *im,
		      unsigned int writers, size_t size)
{
	char sz[24];

	if (im->single && writers > 1)
		return false;
	if (writers > 1 && !im->mpsc)
		return false;
	snprintf(sz, sizeof(sz), "%zu", size);
	return in_list(a->impl_filter, im->name) && in_list(a->size_filter, sz);
}

static const char *spread_size_filter;

static bool want_spread_size(size_t size)
{
	char sz[24];

	snprintf(sz, sizeof(sz), "%zu", size);
	return in_list(spread_size_filter, sz);
}

static void progress(const char *impl, unsigned int writers, size_t size)
{
	if (isatty(2))
		fprintf(stderr, "\r  measuring %-12s %-6s %6zu B ...   ", impl,
			writers > 1 ? "mpsc4" : "spsc", size);
}

/* All transports at one shape and size, their runs interleaved. */
static void run_size(const struct args *a, struct bench_report *rep,
		     unsigned int writers, size_t size)
{
	struct bench_cell cells[NR_IMPLS];
	unsigned int n = 0, i, rep_i;

	for (i = 0; i < NR_IMPLS; i++) {
		if (!want_cell(a, all_impls[i], writers, size))
			continue;
		progress(all_impls[i]->name, writers, size);
		bench_cell_init(&cells[n++], all_impls[i], writers, size);
	}
	for (rep_i = 0; rep_i < bench_opts.reps; rep_i++)
		for (i = 0; i < n; i++) {
			progress(cells[i].im->name, writers, size);
			bench_cell_run(&cells[i]);
		}
	for (i = 0; i < n; i++)
		bench_cell_result(&cells[i], &rep->rows[rep->nrows++]);
}

static void run_throughput(const struct args *a, struct bench_report *rep)
{
	static const unsigned int shapes[] = { 1, MPSC_WRITERS };
	unsigned int s, i;

	for (s = 0; s < 2; s++)
		for (i = 0; i < NR_SIZES; i++)
			run_size(a, rep, shapes[s], all_sizes[i]);
	if (isatty(2))
		fprintf(stderr, "\r%60s\r", "");
}

static void run_wake(struct bench_report *rep)
{
	int err;

	bench_set_cell("wake", "latency", 0);
	alarm(120);
	err = wake_bench_futex(bench_opts.wake_iters, &rep->wake[0]);
	if (!err)
		err = wake_bench_bring(bench_opts.wake_iters, &rep->wake[1]);
	alarm(0);
	if (err)
		bench_fatal("wake latency: %s", strerror(-err));
	rep->nwake = 2;
}

static struct ratio *add_ratio(struct bench_report *rep, const char *name,
			       const char *unit, double value, double target,
			       bool at_least)
{
	struct ratio *r = &rep->ratios[rep->nratios++];

	*r = (struct ratio){
		.name = name, .unit = unit, .value = value, .median = -1,
		.target = target, .at_least = at_least,
	};
	return r;
}

/* Throughput of @a over @b, SPSC at @size: best runs, then median runs. */
static void add_rate_ratio(struct bench_report *rep, const char *name,
			   const char *a, const char *b, size_t size,
			   double target)
{
	const struct bench_result *x = report_find(rep, a, "spsc", size);
	const struct bench_result *y = report_find(rep, b, "spsc", size);
	struct ratio *r = add_ratio(rep, name, "x", -1, target, true);

	if (!x || !y)
		return;
	r->value = x->msgs_per_s / y->msgs_per_s;
	r->median = x->median_msgs_per_s / y->median_msgs_per_s;
}

static void compute_spread_ratios(struct bench_report *rep)
{
	static char names[2 * SPREAD_SIZES][96];
	const struct spread_row *row;
	unsigned int i;

	for (i = 0; i < rep->spread.nrows; i++) {
		row = &rep->spread.rows[i];
		snprintf(names[i], sizeof(names[i]),
			 "per-message SPSC %zuB slowest/median of %u runs",
			 row->size, row->runs);
		add_ratio(rep, names[i], "x", row->slow_ratio, 0.5, true);
		add_ratio(rep, "  the same, each run over ck_ring+copy next to it",
			  "x", row->rel_slow_ratio, 0.5, true);
	}
	for (i = 0; i < rep->spread.nrows; i++) {
		row = &rep->spread.rows[i];
		if (row->size < 1024)
			continue;
		snprintf(names[SPREAD_SIZES + i], sizeof(names[0]),
			 "per-message SPSC %zuB C/Go, median of paired rounds",
			 row->size);
		add_ratio(rep, names[SPREAD_SIZES + i], "x",
			  row->rounds ? row->go_ratio : -1, 1.0, true);
	}
}

static void compute_ratios(struct bench_report *rep)
{
	const struct bench_result *r = report_find(rep, "bring", "spsc", 64);
	double wake = -1;

	add_rate_ratio(rep, "per-message 64B SPSC vs textbook condvar",
		       "bring", "condvar", 64, 3);
	add_rate_ratio(rep, "batch 64B SPSC vs ck_ring", "bring-batch",
		       "ck_ring", 64, 1);
	if (rep->nwake == 2 && rep->wake[0].samples && rep->wake[1].samples)
		wake = rep->wake[1].median_us / rep->wake[0].median_us;
	add_ratio(rep, "wake latency median vs futex", "x", wake, 1.5, false);
	add_ratio(rep, "futex calls per message, SPSC 64B per-message", "",
		  r ? r->futex_per_msg : -1, 0.01, false);
	compute_spread_ratios(rep);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ring_bench [--quick] [--json FILE] [--time S] [--reps N]\n"
		"                  [--impl a,b] [--size 64,4096] [--no-wake]\n"
		"                  [--no-spread]\n");
}

/* About 15 s in all instead of about 90. */
static void set_quick(void)
{
	bench_opts.quick = true;
	bench_opts.target_s = 0.08;
	bench_opts.reps = 1;
	bench_opts.wake_iters = 300;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", required_argument, NULL, 'j' },
		{ "time", required_argument, NULL, 't' },
		{ "reps", required_argument, NULL, 'r' },
		{ "impl", required_argument, NULL, 'i' },
		{ "size", required_argument, NULL, 's' },
		{ "no-wake", no_argument, NULL, 'W' },
		{ "no-spread", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *quick = getenv("BENCH_QUICK");
	int c;

	a->json = getenv("BENCH_JSON");
	if (a->json && !*a->json)
		a->json = NULL;
	if (quick && *quick && strcmp(quick, "0"))
		set_quick();
	while ((c = getopt_long(argc, argv, "qj:t:r:i:s:WSh", opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'q':
			set_quick();
			break;
		case 'j':
			a->json = optarg;
			break;
		case 't':
			bench_opts.target_s = atof(optarg);
			break;
		case 'r':
			bench_opts.reps = (unsigned int)atoi(optarg);
			break;
		case 'i':
			a->impl_filter = optarg;
			break;
		case 's':
			a->size_filter = optarg;
			break;
		case 'W':
			a->no_wake = true;
			break;
		case 'S':
			a->no_spread = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (bench_opts.target_s <= 0 || !bench_opts.reps ||
	    bench_opts.reps > BENCH_MAX_REPS)
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench_result rows[MAX_ROWS];
	struct bench_report rep = {
		.impls = all_impls, .nimpls = NR_IMPLS,
		.sizes = all_sizes, .nsizes = NR_SIZES, .rows = rows,
	};
	struct args a = { 0 };
	int err;

	if (parse_args(argc, argv, &a))
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	rep.loadavg = report_loadavg();
	printf("ring_bench: %ld CPUs, load average %.2f, %s run: %.2f s per run, best of %u; ring %u KiB\n",
	       sysconf(_SC_NPROCESSORS_ONLN), rep.loadavg,
	       bench_opts.quick ? "quick" : "full", bench_opts.target_s,
	       bench_opts.reps, RING_BYTES >> 10);
	if (rep.loadavg > 0.5)
		printf("note: other processes are running: expect noisier figures\n");
	report_legend(stdout, &rep);
	run_throughput(&a, &rep);
	if (!a.no_spread) {
		spread_size_filter = a.size_filter;
		spread_run(&rep.spread, want_spread_size);
	}
	if (!a.no_wake)
		run_wake(&rep);
	compute_ratios(&rep);
	report_tables(stdout, &rep);
	report_ratios(stdout, &rep);
	if (a.json) {
		err = report_json(a.json, &rep);
		if (err)
			fprintf(stderr, "ring_bench: %s: %s\n", a.json,
				strerror(-err));
		return err ? 1 : 0;
	}
	return 0;
}
