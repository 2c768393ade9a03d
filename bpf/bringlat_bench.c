// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * bringlat_bench - what the USDT probes and bringlat cost a streaming ring.
 *
 * The same streaming program (one writer pushing batches of 32 messages,
 * one reader peeking batches of up to 64) runs as:
 *   compiled out  $(OUT)/bpf/noprobes/bringlat_bench, libbring built with
 *                 -DBRING_NO_PROBES (no probe sites, no semaphores);
 *   untraced      this binary, probes compiled in, no tracer attached;
 *   traced        this binary with "bringlat -l <this binary>" attached.
 * Rounds rotate the order; each variant's median is reported with its
 * ratio to "compiled out", and the waits per second the library counted
 * (the probes fire only on those). No assertions: the figures go into
 * Documentation/tracing.rst. With BENCH_JSON set (bench/run.sh), the
 * results also go there as JSON; BENCH_QUICK=1 makes 3 rounds of 0.5 s.
 *
 * Two scenarios: "streaming" (4 MiB ring, waits rare: the overhead
 * targets apply) and "wait-heavy" (4 KiB ring, thousands of waits a
 * second: the worst case for a tracer).
 *
 *   bringlat_bench [-r ROUNDS] [-s SECONDS] [-m MSG_BYTES]
 *   bringlat_bench --stream [-s SECONDS] [-m MSG_BYTES] [-b RING_BYTES]
 *
 * Environment: BRINGLAT_BENCH_ROUNDS, BRINGLAT_BENCH_SECONDS.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bring.h>

#define BATCH 32
#define READ_BATCH 64
#define MAX_ROUNDS 50

static double secs = 1.0;
static size_t msg_size = 64;
static size_t ring_bytes = 4U << 20;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the streaming program (--stream) -------------------------------- */

struct stream {
	struct bring *r;
	unsigned long long msgs_read;
	unsigned long long bytes_read;
};

/* Writer on CPU 0, reader on CPU 1: less noise from thread placement. */
static void pin_cpu(int cpu)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *stream_reader(void *arg)
{
	struct stream *s = arg;
	struct bring_msg m[READ_BATCH];
	int n, i;

	pin_cpu(1);
	for (;;) {
		n = bring_peek(s->r, m, READ_BATCH, 0, -1);
		if (n == -EPIPE)
			break;
		if (n < 0) {
			fprintf(stderr, "bringlat_bench: peek: %s\n",
				strerror(-n));
			exit(1);
		}
		for (i = 0; i < n; i++)
			s->bytes_read += m[i].len;
		s->msgs_read += n;
		bring_shift(s->r);
	}
	return NULL;
}

static int run_stream(void)
{
	BRING_OPTS(o, .name = "bench_stream");
	struct bring_msg batch[BATCH];
	struct bring_stats st = { .sz = sizeof(st) };
	struct stream s = { 0 };
	unsigned long long pushed = 0;
	double t0, t1, deadline;
	struct rusage ru;
	char *buf;
	pthread_t th;
	int i, n;

	buf = calloc(BATCH, msg_size);
	s.r = bring_new(ring_bytes, &o);
	if (!buf || !s.r) {
		perror("bringlat_bench: bring_new");
		return 1;
	}
	for (i = 0; i < BATCH; i++) {
		batch[i].data = buf + i * msg_size;
		batch[i].len = msg_size;
	}
	pin_cpu(0);
	if (pthread_create(&th, NULL, stream_reader, &s))
		return 1;
	t0 = now_s();
	deadline = t0 + secs;
	do {
		for (i = 0; i < 64; i++) {
			int off = 0;

			while (off < BATCH) {
				n = bring_push_batch(s.r, batch + off,
						     BATCH - off, -1);
				if (n < 0) {
					fprintf(stderr,
						"bringlat_bench: push: %s\n",
						strerror(-n));
					return 1;
				}
				off += n;
			}
			pushed += BATCH;
		}
	} while (now_s() < deadline);
	bring_close(s.r);
	pthread_join(th, NULL);
	t1 = now_s();
	bring_get_stats(s.r, &st);
	if (s.msgs_read != pushed) {
		fprintf(stderr, "bringlat_bench: read %llu of %llu messages\n",
			s.msgs_read, pushed);
		return 1;
	}
	/* CPU time too: other load on the machine stretches wall time */
	getrusage(RUSAGE_SELF, &ru);
	printf("msgs_per_s=%.0f waits=%llu seconds=%.3f cpu_s=%.3f\n",
	       s.msgs_read / (t1 - t0),
	       (unsigned long long)(st.write_waits + st.read_waits), t1 - t0,
	       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	bring_free(s.r);
	free(buf);
	return 0;
}

/* ---- the driver ------------------------------------------------------- */

static char self_dir[PATH_MAX], self_exe[PATH_MAX];

/*
 * Run one streaming program: msgs/s (0 on failure); its waits/s and
 * messages per CPU-second through the pointers.
 */
static double run_child(const char *exe, double *waits_per_s, double *per_cpu_s)
{
	char cmd[PATH_MAX * 2], line[256];
	double rate = 0, t = 0, cpu = 0;
	unsigned long long waits = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "'%s' --stream -s %g -m %zu -b %zu", exe,
		 secs, msg_size, ring_bytes);
	p = popen(cmd, "r");
	if (!p)
		return 0;
	while (fgets(line, sizeof(line), p))
		sscanf(line, "msgs_per_s=%lf waits=%llu seconds=%lf cpu_s=%lf",
		       &rate, &waits, &t, &cpu);
	if (pclose(p) != 0)
		return 0;
	if (t > 0)
		*waits_per_s = waits / t;
	*per_cpu_s = cpu > 0 ? rate * t / cpu : 0;
	return rate;
}

/*
 * Start "bringlat -l exe" and wait for its banner, which it prints once
 * every probe is attached. Returns its pid, or -1 with *why set.
 */
static pid_t start_bringlat(const char *bringlat, const char *exe, FILE **out,
			    const char **why)
{
	char line[1024];
	int pfd[2];
	pid_t pid;

	*why = "cannot start it";
	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execl(bringlat, bringlat, "-l", exe, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	*out = fdopen(pfd[0], "r");
	while (fgets(line, sizeof(line), *out))
		if (!strncmp(line, "Tracing", 7))
			return pid;
	fclose(*out);
	waitpid(pid, NULL, 0);
	*why = "it exited before attaching (see its message above)";
	return -1;
}

/* SIGINT bringlat, sum the "waits = N" of its histograms. */
static unsigned long long stop_bringlat(pid_t pid, FILE *out)
{
	unsigned long long total = 0, n;
	char line[1024];

	kill(pid, SIGINT);
	while (fgets(line, sizeof(line), out))
		if (sscanf(line, "waits = %llu", &n) == 1)
			total += n;
	fclose(out);
	waitpid(pid, NULL, 0);
	return total;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of n values; v is left as it was. */
static double median(const double *v, int n)
{
	double c[MAX_ROUNDS];

	memcpy(c, v, n * sizeof(*v));
	qsort(c, n, sizeof(*c), cmp_double);
	return n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
}

enum { NOPROBES, UNTRACED, TRACED, NR_VARIANTS };
static const char *const variant_name[NR_VARIANTS] = {
	"compiled out",
	"untraced",
	"traced",
};

/*
 * Median (and quartiles) of a[r] / b[r] over the rounds both ran; 0 when
 * they did not. a and b are in round order (median() sorts copies).
 */
static double paired(const double *a, int na, const double *b, int nb,
		     double *q1, double *q3)
{
	double r[MAX_ROUNDS];
	int i, n = na < nb ? na : nb;

	if (n == 0 || na != nb)
		return 0;
	for (i = 0; i < n; i++)
		r[i] = b[i] > 0 ? a[i] / b[i] : 0;
	qsort(r, n, sizeof(r[0]), cmp_double);
	*q1 = r[n / 4];
	*q3 = r[(3 * n) / 4 < n ? (3 * n) / 4 : n - 1];
	return median(r, n);
}

/* BENCH_JSON: what run.sh keeps, one object per scenario. */
static FILE *json;
static int json_scenarios;

static void json_num(const char *key, double v, bool comma)
{
	if (v > 0)
		fprintf(json, "\"%s\": %.6g%s", key, v, comma ? ", " : "");
	else
		fprintf(json, "\"%s\": null%s", key, comma ? ", " : "");
}

static int drive(const char *scenario, int rounds)
{
	double rate[NR_VARIANTS][MAX_ROUNDS], waits[NR_VARIANTS][MAX_ROUNDS];
	double cpu[NR_VARIANTS][MAX_ROUNDS], cmed[NR_VARIANTS] = { 0 };
	int got[NR_VARIANTS] = { 0 };
	char noprobes[PATH_MAX + 32], bringlat[PATH_MAX + 32];
	const char *skip[NR_VARIANTS] = { NULL };
	unsigned long long traced_waits = 0;
	double med[NR_VARIANTS] = { 0 }, best[NR_VARIANTS] = { 0 };
	double wmed[NR_VARIANTS] = { 0 };
	double pu, pu_lo = 0, pu_hi = 0, pt, pt_lo = 0, pt_hi = 0;
	ssize_t n;
	int r, k;

	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n <= 0) {
		perror("bringlat_bench: /proc/self/exe");
		return 1;
	}
	self_exe[n] = '\0';
	snprintf(self_dir, sizeof(self_dir), "%s", self_exe);
	*strrchr(self_dir, '/') = '\0';
	snprintf(noprobes, sizeof(noprobes), "%s/noprobes/bringlat_bench",
		 self_dir);
	snprintf(bringlat, sizeof(bringlat), "%s/bringlat", self_dir);
	if (access(noprobes, X_OK))
		skip[NOPROBES] = "not built (make bench builds bpf/noprobes/)";
	if (access(bringlat, X_OK))
		skip[TRACED] = "bringlat not built (BPF toolchain missing)";
	else if (geteuid() != 0)
		skip[TRACED] = "needs root to attach bringlat";

	printf("\n%s: %zu-byte messages, 1 writer + 1 reader, %zu KiB ring, %d "
	       "rounds of %gs\n",
	       scenario, msg_size, ring_bytes >> 10, rounds, secs);
	fflush(stdout);
	for (r = 0; r < rounds; r++) {
		for (k = 0; k < NR_VARIANTS; k++) {
			int var = (r + k) % NR_VARIANTS;
			double w = 0, c = 0, x;

			if (skip[var])
				continue;
			if (var == TRACED) {
				const char *why;
				FILE *out;
				pid_t pid = start_bringlat(bringlat, self_exe,
							   &out, &why);

				if (pid < 0) {
					skip[TRACED] = why;
					continue;
				}
				x = run_child(self_exe, &w, &c);
				traced_waits += stop_bringlat(pid, out);
			} else {
				x = run_child(var == NOPROBES ? noprobes :
								self_exe,
					      &w, &c);
			}
			if (x <= 0) {
				fprintf(stderr,
					"bringlat_bench: %s run failed\n",
					variant_name[var]);
				return 1;
			}
			rate[var][got[var]] = x;
			cpu[var][got[var]] = c;
			waits[var][got[var]++] = w;
		}
	}
	/*
	 * Best of the rounds (what the machine can do, least disturbed by
	 * other load) and median, each with its ratio to "compiled out".
	 */
	printf("%-14s %13s %7s %13s %7s %13s %7s %8s\n", "variant",
	       "best msgs/s", "ratio", "median msgs/s", "ratio", "msgs/CPU-s",
	       "ratio", "waits/s");
	for (k = 0; k < NR_VARIANTS; k++) {
		double wm;

		if (!got[k]) {
			printf("%-14s %s\n", variant_name[k],
			       skip[k] ? skip[k] : "no run");
			continue;
		}
		best[k] = 0;
		for (r = 0; r < got[k]; r++)
			if (rate[k][r] > best[k])
				best[k] = rate[k][r];
		med[k] = median(rate[k], got[k]);
		wm = wmed[k] = median(waits[k], got[k]);
		cmed[k] = median(cpu[k], got[k]);
		printf("%-14s %13.0f %7.4f %13.0f %7.4f %13.0f %7.4f %8.0f\n",
		       variant_name[k], best[k],
		       best[NOPROBES] > 0 ? best[k] / best[NOPROBES] : 0,
		       med[k], med[NOPROBES] > 0 ? med[k] / med[NOPROBES] : 0,
		       cmed[k],
		       cmed[NOPROBES] > 0 ? cmed[k] / cmed[NOPROBES] : 0, wm);
	}
	/*
	 * Paired ratios: each round runs every variant back to back, so the
	 * ratio within a round cancels load that drifts over seconds; their
	 * median is the figure to compare with the targets.
	 */
	pu = paired(rate[UNTRACED], got[UNTRACED], rate[NOPROBES],
		    got[NOPROBES], &pu_lo, &pu_hi);
	pt = paired(rate[TRACED], got[TRACED], rate[UNTRACED], got[UNTRACED],
		    &pt_lo, &pt_hi);
	if (pu > 0)
		printf("untraced/compiled-out: paired median %.4f (quartiles "
		       "%.4f-%.4f), best %.4f, per CPU-s %.4f (target >= "
		       "0.99)\n",
		       pu, pu_lo, pu_hi, best[UNTRACED] / best[NOPROBES],
		       cmed[NOPROBES] > 0 ? cmed[UNTRACED] / cmed[NOPROBES] :
					    0);
	if (pt > 0)
		printf("traced/untraced: paired median %.4f (quartiles "
		       "%.4f-%.4f), best %.4f, per CPU-s %.4f (target >= 0.95 "
		       "when waits are rare); bringlat counted %llu waits in "
		       "%d traced runs\n",
		       pt, pt_lo, pt_hi, best[TRACED] / best[UNTRACED],
		       cmed[UNTRACED] > 0 ? cmed[TRACED] / cmed[UNTRACED] : 0,
		       traced_waits, got[TRACED]);
	fflush(stdout);
	if (json) {
		fprintf(json,
			"%s\n    {\"scenario\": \"%s\", \"msg_size\": %zu, "
			"\"ring_bytes\": %zu, \"rounds\": %d, \"seconds\": "
			"%g,\n     \"variants\": [",
			json_scenarios++ ? "," : "", scenario, msg_size,
			ring_bytes, rounds, secs);
		for (k = 0; k < NR_VARIANTS; k++) {
			fprintf(json, "%s\n       {\"name\": \"%s\", ",
				k ? "," : "", variant_name[k]);
			json_num("best_msgs_per_s", best[k], true);
			json_num("median_msgs_per_s", med[k], true);
			json_num("median_waits_per_s", wmed[k], true);
			json_num("median_msgs_per_cpu_s", cmed[k], true);
			if (skip[k])
				fprintf(json, "\"skipped\": \"%s\"}", skip[k]);
			else
				fprintf(json, "\"skipped\": null}");
		}
		fprintf(json, "],\n     ");
		json_num("untraced_vs_compiled_out_paired_median", pu, true);
		json_num("traced_vs_untraced_paired_median", pt, true);
		json_num("untraced_vs_compiled_out_best",
			 best[NOPROBES] > 0 ? best[UNTRACED] / best[NOPROBES] :
					      0,
			 true);
		json_num("untraced_vs_compiled_out_median",
			 med[NOPROBES] > 0 ? med[UNTRACED] / med[NOPROBES] : 0,
			 true);
		json_num("traced_vs_untraced_best",
			 best[UNTRACED] > 0 ? best[TRACED] / best[UNTRACED] : 0,
			 true);
		json_num("traced_vs_untraced_median",
			 med[UNTRACED] > 0 ? med[TRACED] / med[UNTRACED] : 0,
			 true);
		json_num("untraced_vs_compiled_out_per_cpu_s",
			 cmed[NOPROBES] > 0 ? cmed[UNTRACED] / cmed[NOPROBES] :
					      0,
			 true);
		json_num("traced_vs_untraced_per_cpu_s",
			 cmed[UNTRACED] > 0 ? cmed[TRACED] / cmed[UNTRACED] : 0,
			 false);
		fprintf(json, "}");
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "stream", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	int rounds = 9, c;
	bool stream = false;
	const char *e;

	if ((e = getenv("BENCH_QUICK")) && *e && strcmp(e, "0")) {
		rounds = 3;
		secs = 0.5;
	}
	if ((e = getenv("BRINGLAT_BENCH_ROUNDS")))
		rounds = atoi(e);
	if ((e = getenv("BRINGLAT_BENCH_SECONDS")))
		secs = atof(e);
	while ((c = getopt_long(argc, argv, "r:s:m:b:", opts, NULL)) != -1) {
		switch (c) {
		case 'S':
			stream = true;
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 's':
			secs = atof(optarg);
			break;
		case 'm':
			msg_size = strtoul(optarg, NULL, 10);
			break;
		case 'b':
			ring_bytes = strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: bringlat_bench [-r ROUNDS] [-s "
					"SECONDS] [-m BYTES] [--stream]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || !(secs > 0) || msg_size < 1)
		return 2;
	if (stream)
		return run_stream();
	if ((e = getenv("BENCH_JSON")) && *e) {
		json = fopen(e, "w");
		if (json)
			fprintf(json, "{\n  \"bench\": \"bringlat_bench\",\n  "
				      "\"scenarios\": [");
	}
	/* waits rare: the reader keeps up with a 4 MiB ring */
	c = drive("streaming", rounds);
	/* waits on nearly every batch: the worst case for tracing */
	ring_bytes = 4096;
	if (!c)
		c = drive("wait-heavy", rounds);
	if (json) {
		fprintf(json, "\n  ]\n}\n");
		fclose(json);
	}
	return c;
}
