// SPDX-License-Identifier: GPL-2.0
/*
 * report.c - print the ring benchmark's tables and write its JSON.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "report.h"

#define COL_W 12

static const char *const shapes[] = { "spsc", "mpsc4" };
static const char *const shape_title[] = {
	"SPSC: 1 writer thread -> 1 reader thread",
	"MPSC: 4 writer threads -> 1 reader thread",
};

const struct bench_result *report_find(const struct bench_report *rep,
				       const char *impl, const char *shape,
				       size_t size)
{
	unsigned int i;

	for (i = 0; i < rep->nrows; i++) {
		const struct bench_result *r = &rep->rows[i];

		if (r->size == size && !strcmp(r->impl, impl) &&
		    (!strcmp(r->shape, shape) || !strcmp(r->shape, "1thread")))
			return r;
	}
	return NULL;
}

/* Three significant digits, more or less, in COL_W columns. */
static void put_num(FILE *f, double v)
{
	if (v < 0)
		fprintf(f, "%*s", COL_W, "-");
	else if (v >= 100)
		fprintf(f, "%*.0f", COL_W, v);
	else if (v >= 10)
		fprintf(f, "%*.1f", COL_W, v);
	else if (v >= 1)
		fprintf(f, "%*.2f", COL_W, v);
	else
		fprintf(f, "%*.3f", COL_W, v);
}

void report_legend(FILE *f, const struct bench_report *rep)
{
	unsigned int i;

	for (i = 0; i < rep->nimpls; i++)
		fprintf(f, "  %-11s %s\n", rep->impls[i]->name,
			rep->impls[i]->desc);
}

enum metric { M_MSGS, M_MB, M_FUTEX };

static double metric(const struct bench_result *r, enum metric m)
{
	if (!r)
		return -1;
	switch (m) {
	case M_MSGS:
		return r->msgs_per_s / 1e6;
	case M_MB:
		return r->mb_per_s;
	default:
		return r->futex_per_msg;
	}
}

static void table(FILE *f, const struct bench_report *rep, const char *shape,
		  enum metric m)
{
	const struct bench_result *r;
	unsigned int i, j;

	fprintf(f, "%6s", "size");
	for (j = 0; j < rep->nimpls; j++)
		fprintf(f, "%*s", COL_W, rep->impls[j]->name);
	fputc('\n', f);
	for (i = 0; i < rep->nsizes; i++) {
		fprintf(f, "%6zu", rep->sizes[i]);
		for (j = 0; j < rep->nimpls; j++) {
			r = report_find(rep, rep->impls[j]->name, shape,
					rep->sizes[i]);
			put_num(f, metric(r, m));
		}
		fputc('\n', f);
	}
}

static bool shape_measured(const struct bench_report *rep, const char *shape)
{
	unsigned int i;

	for (i = 0; i < rep->nrows; i++)
		if (!strcmp(rep->rows[i].shape, shape))
			return true;
	return false;
}

static void futex_table(FILE *f, const struct bench_report *rep)
{
	const struct bench_result *r;
	unsigned int i, s;

	fprintf(f, "\nfutex calls (FUTEX_WAIT + FUTEX_WAKE) per message, bring_get_stats()\n");
	fprintf(f, "%6s%*s%*s%*s%*s\n", "size", COL_W, "spsc msg",
		COL_W, "spsc batch", COL_W, "mpsc4 msg", COL_W, "mpsc4 batch");
	for (i = 0; i < rep->nsizes; i++) {
		fprintf(f, "%6zu", rep->sizes[i]);
		for (s = 0; s < 2; s++) {
			r = report_find(rep, "bring", shapes[s], rep->sizes[i]);
			put_num(f, metric(r, M_FUTEX));
			r = report_find(rep, "bring-batch", shapes[s],
					rep->sizes[i]);
			put_num(f, metric(r, M_FUTEX));
		}
		fputc('\n', f);
	}
}

static void wake_table(FILE *f, const struct bench_report *rep)
{
	const struct wake_result *w;
	unsigned int i;

	if (!rep->nwake)
		return;
	fprintf(f, "\nwake latency: sleeper blocked, waker's clock before the wake -> sleeper's clock after (us)\n");
	fprintf(f, "%-8s%9s%10s%9s%9s%10s%10s\n", "impl", "samples",
		"discarded", "min", "median", "p99", "max");
	for (i = 0; i < rep->nwake; i++) {
		w = &rep->wake[i];
		fprintf(f, "%-8s%9u%10u%9.1f%9.1f%10.1f%10.1f\n", w->name,
			w->samples, w->discarded, w->min_us, w->median_us,
			w->p99_us, w->max_us);
	}
}

void report_tables(FILE *f, const struct bench_report *rep)
{
	unsigned int s;

	for (s = 0; s < 2; s++) {
		if (!shape_measured(rep, shapes[s]))
			continue;
		fprintf(f, "\n%s; memcpy is 1 thread\nmillion messages/s (best run)\n",
			shape_title[s]);
		table(f, rep, shapes[s], M_MSGS);
		fprintf(f, "payload MB/s (10^6 bytes, best run)\n");
		table(f, rep, shapes[s], M_MB);
	}
	futex_table(f, rep);
	spread_table(f, &rep->spread);
	wake_table(f, rep);
}

static bool ratio_known(const struct ratio *r)
{
	return r->value >= 0 && isfinite(r->value);
}

static bool ratio_pass(const struct ratio *r)
{
	if (!ratio_known(r))
		return false;
	return r->at_least ? r->value >= r->target : r->value <= r->target;
}

void report_ratios(FILE *f, const struct bench_report *rep)
{
	const struct ratio *r;
	unsigned int i;

	fprintf(f, "\ntargets (reported, not enforced)\n");
	for (i = 0; i < rep->nratios; i++) {
		r = &rep->ratios[i];
		if (!ratio_known(r)) {
			fprintf(f, "%s: not measured (target %s %g%s) SKIP\n",
				r->name, r->at_least ? ">=" : "<=", r->target,
				r->unit);
			continue;
		}
		fprintf(f, "%s: %.*f%s (target %s %g%s) %s", r->name,
			*r->unit ? 2 : 4, r->value, r->unit,
			r->at_least ? ">=" : "<=", r->target, r->unit,
			ratio_pass(r) ? "PASS" : "MISS");
		if (r->median >= 0)
			fprintf(f, "   [median runs: %.2f%s]", r->median,
				r->unit);
		fputc('\n', f);
	}
}

/* ---- JSON -------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (v < 0 || !isfinite(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256], *p;

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10))
			continue;
		p = strchr(line, ':');
		if (!p)
			break;
		p += strspn(p + 1, " \t") + 1;
		p[strcspn(p, "\n")] = 0;
		snprintf(buf, len, "%s", p);
		break;
	}
	fclose(f);
}

double report_loadavg(void)
{
	double load = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%lf", &load) != 1)
		load = -1;
	fclose(f);
	return load;
}

static void json_machine(FILE *f, const struct bench_report *rep)
{
	struct utsname u;
	char cpu[128];

	cpu_model(cpu, sizeof(cpu));
	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "unknown");
	fprintf(f, "  \"machine\": {\"nproc\": %ld, \"kernel\": ",
		sysconf(_SC_NPROCESSORS_ONLN));
	json_str(f, u.release);
	fputs(", \"cpu\": ", f);
	json_str(f, cpu);
	fputs(", \"loadavg_before\": ", f);
	json_num(f, rep->loadavg);
	fputs("},\n", f);
	fprintf(f, "  \"config\": {\"ring_bytes\": %u, \"mpsc_writers\": %d, \"write_batch\": %d, \"read_batch\": %d, \"batch_bytes\": %u, \"target_s\": %g, \"reps\": %u, \"quick\": %s},\n",
		RING_BYTES, MPSC_WRITERS, WRITE_BATCH, READ_BATCH,
		WRITE_BATCH_BYTES,
		bench_opts.target_s, bench_opts.reps,
		bench_opts.quick ? "true" : "false");
}

static void json_row(FILE *f, const struct bench_result *r, bool last)
{
	fputs("    {\"bench\": \"throughput\", \"impl\": ", f);
	json_str(f, r->impl);
	fputs(", \"shape\": ", f);
	json_str(f, r->shape);
	fprintf(f, ", \"writers\": %u, \"size\": %zu, \"msgs\": %llu, \"runs\": %u, \"seconds\": ",
		r->writers, r->size, (unsigned long long)r->msgs, r->runs);
	json_num(f, r->seconds);
	fputs(", \"msgs_per_s\": ", f);
	json_num(f, r->msgs_per_s);
	fputs(", \"median_msgs_per_s\": ", f);
	json_num(f, r->median_msgs_per_s);
	fputs(", \"mb_per_s\": ", f);
	json_num(f, r->mb_per_s);
	fputs(", \"futex_per_msg\": ", f);
	json_num(f, r->futex_per_msg);
	fprintf(f, ", \"timed\": %s}%s\n", r->timed ? "true" : "false",
		last ? "" : ",");
}

static void json_wake(FILE *f, const struct wake_result *w, bool last)
{
	fputs("    {\"bench\": \"wake_latency\", \"impl\": ", f);
	json_str(f, w->name);
	fprintf(f, ", \"samples\": %u, \"discarded\": %u, \"min_us\": ",
		w->samples, w->discarded);
	json_num(f, w->min_us);
	fputs(", \"median_us\": ", f);
	json_num(f, w->median_us);
	fputs(", \"p99_us\": ", f);
	json_num(f, w->p99_us);
	fputs(", \"max_us\": ", f);
	json_num(f, w->max_us);
	fprintf(f, "}%s\n", last ? "" : ",");
}

static void json_ratio(FILE *f, const struct ratio *r, bool last)
{
	fputs("    {\"name\": ", f);
	json_str(f, r->name);
	fputs(", \"value\": ", f);
	json_num(f, ratio_known(r) ? r->value : -1);
	fputs(", \"median_value\": ", f);
	json_num(f, r->median);
	fprintf(f, ", \"target\": \"%s %g\", \"pass\": %s}%s\n",
		r->at_least ? ">=" : "<=", r->target,
		ratio_pass(r) ? "true" : "false", last ? "" : ",");
}

static void json_body(FILE *f, const struct bench_report *rep)
{
	unsigned int i;

	fputs("{\n  \"bench\": \"ring_bench\",\n", f);
	json_machine(f, rep);
	fputs("  \"rows\": [\n", f);
	for (i = 0; i < rep->nrows; i++)
		json_row(f, &rep->rows[i], i + 1 == rep->nrows);
	fputs("  ],\n", f);
	spread_json(f, &rep->spread);
	fputs("  \"wake_latency\": [\n", f);
	for (i = 0; i < rep->nwake; i++)
		json_wake(f, &rep->wake[i], i + 1 == rep->nwake);
	fputs("  ],\n  \"ratios\": [\n", f);
	for (i = 0; i < rep->nratios; i++)
		json_ratio(f, &rep->ratios[i], i + 1 == rep->nratios);
	fputs("  ]\n}\n", f);
}

int report_json(const char *path, const struct bench_report *rep)
{
	FILE *f = fopen(path, "w");
	int err = 0;

	if (!f)
		return -errno;
	json_body(f, rep);
	if (ferror(f))
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	return err;
}
