// SPDX-License-Identifier: GPL-2.0
/*
 * kafka_bench - bench/kafka: bringcat's kafka: sink and source against a
 * plain librdkafka producer and kcat, on the same mock cluster, same run.
 *
 *  1. Sink: a page-cached file of 100-byte lines goes into a fresh
 *     16-partition topic of selftests/kafka/mock_kafka (1 broker) from:
 *     bringcat -b mem:8M -i file: -o kafka: (its defaults), bench/kafka/
 *     plain_producer with the same settings and the same bring.pos header
 *     (-H) and without it, and kcat -P at its defaults (no idempotence).
 *     Rounds interleave; the median of each is reported: messages/s,
 *     MB/s, CPU per message (user + system of the client process, from
 *     wait4(); the mock's own CPU is not counted).
 *  2. Source: a topic bringcat fills once (each message to a random
 *     partition, see below) is read into a file by bringcat -i
 *     kafka:...?group= (a consumer group: the mock forms it in ~3 s,
 *     reported apart), by the same with a file ring (-b file:, the
 *     exactly-once source: offsets stored as writer marks) and by kcat
 *     -C -o beginning -e (no group).
 *
 * Checked: bringcat's and plain_producer's delivered counts, the files
 * the sources wrote (byte count). A wrong count is a failed bench.
 *
 * The mock keeps at most 5 MiB of record batches per partition and drops
 * the oldest beyond that (rdkafka_mock.c, mpart->max_size). The sticky
 * partitioner sends a few ms of messages to one partition at a time (10
 * ms, librdkafka's default, gave one partition 48,863 of 300,000 lines,
 * ~6.3 MB, and its first 14,267 were gone; the sink's and
 * plain_producer's 2 ms spread them more), so the sink rounds' topics
 * end up uneven. The
 * sink rounds do not read back, so that does not matter to them; the
 * source's topic is filled with sticky.partitioning.linger.ms=0 (every
 * message to a random partition: each holds ~1/P of the bytes) into
 * enough partitions for 4 MiB each at most, and is read back whole with
 * kcat before the source rounds.
 *
 * Environment: BRING_OUT, BENCH_DIR (default /var/tmp), BENCH_KAFKA_MSGS
 * (default 300000; 100000 with BENCH_QUICK=1), BENCH_KAFKA_ROUNDS
 * (default 3), BENCH_JSON.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_LEN 100
#define MAX_ROUNDS 9
#define REC_OVERHEAD 40 /* a record's bytes in a batch beyond its value */
#define PART_MAX (4U << 20) /* bytes the source's topic puts in a partition */
#define SRC_TOPIC "src"

enum tool { BRINGCAT, PLAIN_H, PLAIN, KCAT, NR_TOOLS };
static const char *const tool_name[NR_TOOLS] = {
	"bringcat kafka: sink", "plain_producer -H (same settings)",
	"plain_producer (no header)", "kcat -P (defaults)",
};

static char bringcat[PATH_MAX], mock[PATH_MAX], plain[PATH_MAX];
static char dir[PATH_MAX - 64], in_path[PATH_MAX], out_path[PATH_MAX],
	log_path[PATH_MAX];
static char bootstrap[512];
static FILE *mock_cmd, *mock_ans;
static unsigned long msgs;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int mock_start(void)
{
	int in[2], out[2];
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -1;
	pid = fork();
	if (!pid) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl(mock, mock, "1", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	mock_cmd = fdopen(in[1], "w");
	mock_ans = fdopen(out[0], "r");
	setvbuf(mock_cmd, NULL, _IOLBF, 0);
	if (!fgets(bootstrap, sizeof(bootstrap), mock_ans))
		return -1;
	bootstrap[strcspn(bootstrap, "\n")] = '\0';
	return 0;
}

static int topic(const char *name, unsigned int partitions)
{
	char line[128];

	fprintf(mock_cmd, "topic %s %u 1\n", name, partitions);
	fflush(mock_cmd);
	return fgets(line, sizeof(line), mock_ans) && !strncmp(line, "ok", 2) ?
		       0 : -1;
}

/* Run @argv (stdout to @out or /dev/null), its wall time and CPU. */
static int run(const char *const *argv, const char *out, double *wall,
	       double *cpu)
{
	struct rusage ru;
	double t0 = now_s();
	pid_t pid = fork();
	int st, fd;

	if (!pid) {
		fd = open(out ? out : "/dev/null",
			  O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		execvp(argv[0], (char **)argv);
		_exit(127);
	}
	if (wait4(pid, &st, 0, &ru) != pid)
		return -1;
	*wall = now_s() - t0;
	*cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool log_has(const char *what)
{
	char buf[65536];
	FILE *f = fopen(log_path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return strstr(buf, what);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static off_t size_of(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : st.st_size;
}

/*
 * bringcat as a source until @want bytes are in the file; -1 on failure.
 * With @file_ring, its buffer is a fresh file ring: the exactly-once
 * source (offsets stored as writer marks with the messages).
 */
static int source_bringcat(const char *t, int round, bool file_ring,
			   double *first, double *all)
{
	char uri[1024], fout[PATH_MAX + 8], ring[PATH_MAX + 16];
	const char *argv[] = { bringcat, "-q", "-i", uri, "-o", fout,
			       file_ring ? "-b" : NULL, ring, NULL };
	off_t want = (off_t)msgs * LINE_LEN;
	double t0 = now_s(), deadline = t0 + 120;
	pid_t pid;
	int st;

	snprintf(uri, sizeof(uri), "kafka:%s/%s?group=bench%s%d", bootstrap, t,
		 file_ring ? "f" : "", round);
	snprintf(fout, sizeof(fout), "file:%s", out_path);
	snprintf(ring, sizeof(ring), "file:%s/src.ring", dir);
	unlink(ring + 5);
	unlink(out_path);
	pid = fork();
	if (!pid) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 2);
		execv(bringcat, (char **)argv);
		_exit(127);
	}
	*first = 0;
	while (now_s() < deadline && size_of(out_path) < want) {
		if (!*first && size_of(out_path) > 0)
			*first = now_s() - t0;
		usleep(2000);
	}
	*all = now_s() - t0;
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	unlink(ring + 5);
	if (size_of(out_path) != want)
		printf("kafka_bench: bringcat source%s round %d: %lld bytes after %.1f s, want %lld (at least once: more is duplicates, less is a failure)\n",
		       file_ring ? " (file ring)" : "", round,
		       (long long)size_of(out_path), *all,
		       (long long)want);
	return size_of(out_path) >= want ? 0 : -1;
}

/*
 * The source rounds' topic: every line, each to a random partition
 * (sticky.partitioning.linger.ms=0), in partitions of PART_MAX at most,
 * checked whole with kcat -C (what the mock dropped would otherwise look
 * like a source losing messages). 0, or -1 said.
 */
static int source_topic(void)
{
	unsigned long long bytes = (unsigned long long)msgs *
				   (LINE_LEN + REC_OVERHEAD);
	unsigned int parts = (unsigned int)((bytes + PART_MAX - 1) / PART_MAX);
	char uri[1024], fin[PATH_MAX + 8];
	const char *argv[] = { bringcat, "-q", "-b", "mem:8M", "-i", fin, "-o",
			       uri, "-X", "sticky.partitioning.linger.ms=0",
			       NULL };
	const char *cat[] = { "kcat", "-C", "-b", bootstrap, "-t", SRC_TOPIC,
			      "-o", "beginning", "-e", "-q", NULL };
	double w, c;

	if (parts < 16)
		parts = 16;
	snprintf(uri, sizeof(uri), "kafka:%s/%s", bootstrap, SRC_TOPIC);
	snprintf(fin, sizeof(fin), "file:%s", in_path);
	if (topic(SRC_TOPIC, parts) || run(argv, NULL, &w, &c)) {
		printf("kafka_bench: FAIL: could not fill the source's topic\n");
		return -1;
	}
	if (run(cat, out_path, &w, &c) ||
	    size_of(out_path) != (off_t)msgs * LINE_LEN) {
		printf("kafka_bench: FAIL: the source's topic holds %lld bytes, want %lld (the mock keeps 5 MiB per partition)\n",
		       (long long)size_of(out_path),
		       (long long)msgs * LINE_LEN);
		return -1;
	}
	printf("source: %lu lines in %u partitions (each message to a random one)\n",
	       msgs, parts);
	return 0;
}

int main(void)
{
	const char *o = getenv("BRING_OUT"), *d = getenv("BENCH_DIR"),
		   *e = getenv("BENCH_KAFKA_MSGS"),
		   *r = getenv("BENCH_KAFKA_ROUNDS"), *q = getenv("BENCH_QUICK"),
		   *json = getenv("BENCH_JSON");
	double wall[NR_TOOLS][MAX_ROUNDS], cpu[NR_TOOLS][MAX_ROUNDS];
	double sw[MAX_ROUNDS], sf[MAX_ROUNDS], kw[MAX_ROUNDS];
	double fw[MAX_ROUNDS], ff[MAX_ROUNDS], frs_all, frs_first;
	double med_w[NR_TOOLS], med_c[NR_TOOLS], src_all, src_first, kc;
	int rounds = r ? atoi(r) : 3, i, k, rc;
	char t[64], uri[1024];
	FILE *f, *js;
	unsigned long n;

	if (rounds < 1 || rounds > MAX_ROUNDS)
		rounds = 3;
	msgs = e ? strtoul(e, NULL, 10) : (q && *q == '1') ? 100000 : 300000;
	snprintf(bringcat, sizeof(bringcat), "%s/io/bringcat", o ? o : ".");
	snprintf(mock, sizeof(mock), "%s/selftests/kafka/mock_kafka",
		 o ? o : ".");
	snprintf(plain, sizeof(plain), "%s/bench/kafka/plain_producer",
		 o ? o : ".");
	if (access(mock, X_OK) || access(plain, X_OK) ||
	    system("command -v kcat >/dev/null 2>&1")) {
		printf("kafka_bench: SKIP: needs librdkafka-dev (mock_kafka, plain_producer) and kcat\n");
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/kafka_bench.XXXXXX", d ? d : "/var/tmp");
	if (!mkdtemp(dir))
		return 1;
	snprintf(in_path, sizeof(in_path), "%s/in", dir);
	snprintf(out_path, sizeof(out_path), "%s/out", dir);
	snprintf(log_path, sizeof(log_path), "%s/log", dir);
	f = fopen(in_path, "w");
	for (n = 0; n < msgs; n++)
		fprintf(f, "%010lu %088lu\n", n, n * 2654435761UL);
	fclose(f);
	if (mock_start())
		return 1;
	printf("kafka_bench: %lu lines of %d bytes into 16 partitions of a 1-broker mock_kafka, %d rounds (median)\n",
	       msgs, LINE_LEN, rounds);
	for (i = 0; i < rounds; i++) {
		for (k = 0; k < NR_TOOLS; k++) {
			snprintf(t, sizeof(t), "b%d_%d", k, i);
			if (topic(t, 16))
				return 1;
			snprintf(uri, sizeof(uri), "kafka:%s/%s", bootstrap, t);
			if (k == BRINGCAT) {
				char fin[PATH_MAX + 8];
				/*
				 * An 8 MiB ring is reused during the run:
				 * its pages are faulted in once, as in a
				 * long-running shipper (a 64 MiB ring would
				 * fault in a fresh page for every 4 KiB).
				 */
				const char *argv[] = { bringcat, "-s", "-b",
						       "mem:8M", "-i", fin,
						       "-o", uri, NULL };

				snprintf(fin, sizeof(fin), "file:%s", in_path);
				rc = run(argv, NULL, &wall[k][i], &cpu[k][i]);
				snprintf(uri, sizeof(uri), "delivered %lu,",
					 msgs);
				if (rc || !log_has(uri)) {
					printf("kafka_bench: FAIL: bringcat exit %d, not all delivered\n",
					       rc);
					return 1;
				}
			} else if (k == KCAT) {
				const char *argv[] = { "kcat", "-P", "-b",
						       bootstrap, "-t", t,
						       "-l", in_path, NULL };

				rc = run(argv, NULL, &wall[k][i], &cpu[k][i]);
			} else {
				const char *argv[] = { plain, bootstrap, t,
						       in_path,
						       k == PLAIN_H ? "-H" :
								      NULL,
						       NULL };

				rc = run(argv, NULL, &wall[k][i], &cpu[k][i]);
			}
			if (rc) {
				printf("kafka_bench: FAIL: %s exited %d\n",
				       tool_name[k], rc);
				return 1;
			}
		}
	}
	printf("\n%-34s %12s %9s %14s\n", "sink", "msgs/s", "MB/s",
	       "CPU us/msg");
	for (k = 0; k < NR_TOOLS; k++) {
		med_w[k] = median(wall[k], rounds);
		med_c[k] = median(cpu[k], rounds);
		printf("%-34s %12.0f %9.1f %14.2f\n", tool_name[k],
		       msgs / med_w[k], msgs * (double)LINE_LEN / med_w[k] / 1e6,
		       med_c[k] / msgs * 1e6);
	}
	printf("bringcat / plain_producer -H: %.2fx (target >= 0.9x); / plain_producer: %.2fx; / kcat -P: %.2fx\n",
	       med_w[PLAIN_H] / med_w[BRINGCAT], med_w[PLAIN] / med_w[BRINGCAT],
	       med_w[KCAT] / med_w[BRINGCAT]);

	if (source_topic())
		return 1;
	for (i = 0; i < rounds; i++) {
		if (source_bringcat(SRC_TOPIC, i, false, &sf[i], &sw[i]) ||
		    source_bringcat(SRC_TOPIC, i, true, &ff[i], &fw[i])) {
			printf("kafka_bench: FAIL: bringcat source did not write every line\n");
			return 1;
		}
		{
			const char *argv[] = { "kcat", "-C", "-b", bootstrap,
					       "-t", SRC_TOPIC, "-o",
					       "beginning", "-e", "-q", NULL };
			double c;

			if (run(argv, out_path, &kw[i], &c) ||
			    size_of(out_path) != (off_t)msgs * LINE_LEN) {
				printf("kafka_bench: FAIL: kcat -C did not write every line\n");
				return 1;
			}
		}
	}
	src_all = median(sw, rounds);
	src_first = median(sf, rounds);
	frs_all = median(fw, rounds);
	frs_first = median(ff, rounds);
	kc = median(kw, rounds);
	printf("\n%-34s %12s %9s\n", "source (to a file)", "msgs/s", "MB/s");
	printf("%-34s %12.0f %9.1f  (%.2fs, of which %.2fs before the group formed)\n",
	       "bringcat -i kafka:?group=", msgs / (src_all - src_first),
	       msgs * (double)LINE_LEN / (src_all - src_first) / 1e6, src_all,
	       src_first);
	printf("%-34s %12.0f %9.1f  (%.2fs, of which %.2fs before the group formed)\n",
	       "  the same, -b file: (exactly once)",
	       msgs / (frs_all - frs_first),
	       msgs * (double)LINE_LEN / (frs_all - frs_first) / 1e6, frs_all,
	       frs_first);
	printf("%-34s %12.0f %9.1f  (%.2fs)\n", "kcat -C -o beginning -e",
	       msgs / kc, msgs * (double)LINE_LEN / kc / 1e6, kc);
	if (json && (js = fopen(json, "w"))) {
		fprintf(js, "{\"bench\": \"kafka_bench\", \"msgs\": %lu, \"sink_msgs_per_s\": {",
			msgs);
		for (k = 0; k < NR_TOOLS; k++)
			fprintf(js, "%s\"%s\": %.0f", k ? ", " : "",
				tool_name[k], msgs / med_w[k]);
		fprintf(js, "}, \"source_msgs_per_s\": {\"bringcat\": %.0f, \"bringcat_file_ring\": %.0f, \"kcat\": %.0f}}\n",
			msgs / (src_all - src_first),
			msgs / (frs_all - frs_first), msgs / kc);
		fclose(js);
	}
	fprintf(mock_cmd, "quit\n");
	fclose(mock_cmd);
	unlink(in_path);
	unlink(out_path);
	unlink(log_path);
	rmdir(dir);
	return 0;
}
