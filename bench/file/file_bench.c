// SPDX-License-Identifier: GPL-2.0
/*
 * file_bench - the file ring against the memory ring, and group commit.
 *
 *  1. Streaming, one writer and one reader thread, 64 B and 4 KiB:
 *     bring_open() with durability none vs bring_new(), in 7 paired
 *     rounds (median ratio, and the writers' CPU time per message),
 *     reported. Then the push cost, single-threaded, per size (64 B to
 *     64 KiB): pushes into a 16 MiB ring until it is full, memory ring
 *     and file ring in alternating rounds, and CRC32C of the same bytes.
 *     Target: file push <= (memory push + CRC32C) * 1.1 at every size.
 *  2. Durability "always" with 1, 4 and 16 writer threads (64 B
 *     messages), against the baseline of write(2) + fdatasync(2) per
 *     message from as many threads into one file, and the fdatasync
 *     ceiling of the same run: 16 writers in flight / the median
 *     latency of one fdatasync() (a 64-byte write, then fdatasync, timed
 *     alone). Target: group commit at 16 writers >= 70% of the ceiling.
 *     bring_push_batch() under durability always (16 writers, batches
 *     of 16) is reported beside it.
 *  3. Recovery: a full 1 GiB ring of 64 B records reopened by a process
 *     that has it to itself (target: under 2 s).
 *
 * Every run checks what it receives (count and per-writer order). The
 * files live in $BENCH_DIR (default: /var/tmp), a real disk, not tmpfs.
 * Prints a table and writes JSON to $BENCH_JSON. BENCH_QUICK=1 shortens;
 * BENCH_DURABLE_ONLY=1 runs part 2 alone (while working on group commit).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bring.h"
#include "crc32c.h"

#define RING_BYTES (4U << 20)
/*
 * The durable runs have no reader (writers measure flushes, not
 * handoff), so their ring must hold everything they push: 16 writers at
 * ~50,000 msg/s for 2 s of 80-byte records is 8 MB.
 */
#define DURABLE_RING_BYTES (64U << 20)

static int quick;
static const char *dir;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct stream {
	struct bring *r;
	size_t size;
	uint64_t msgs;
	double writer_cpu; /* seconds of CPU the writer thread used */
	int bad;
};

/* CPU seconds (user + system) this process used so far. */
static double process_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *stream_writer(void *p)
{
	struct stream *s = p;
	char buf[4096] = { 0 };
	uint64_t i;

	for (i = 0; i < s->msgs; i++) {
		memcpy(buf, &i, sizeof(i));
		if (bring_push(s->r, buf, s->size)) {
			s->bad = 1;
			break;
		}
	}
	bring_close(s->r);
	s->writer_cpu = thread_cpu();
	return NULL;
}

/*
 * One streaming run; returns messages per second, and in *@cpu_ns the
 * writer's CPU time per message.
 */
static double stream_run(struct bring *r, size_t size, uint64_t msgs,
			 double *cpu_ns)
{
	struct stream s = { .r = r, .size = size, .msgs = msgs };
	struct bring_msg m[64];
	uint64_t next = 0, v;
	pthread_t t;
	double t0;
	int n, i;

	t0 = now();
	pthread_create(&t, NULL, stream_writer, &s);
	while ((n = bring_peek(r, m, 64, 0, -1)) > 0) {
		for (i = 0; i < n; i++) {
			memcpy(&v, m[i].data, sizeof(v));
			if (v != next++ || m[i].len != size)
				s.bad = 1;
		}
		bring_shift(r);
	}
	t0 = now() - t0;
	pthread_join(t, NULL);
	if (s.bad || next != msgs) {
		fprintf(stderr, "file_bench: stream check failed\n");
		exit(1);
	}
	*cpu_ns = s.writer_cpu * 1e9 / (double)msgs;
	return (double)msgs / t0;
}

static struct bring *open_file_ring_cap(const char *name, int durability,
					size_t cap)
{
	char path[512];
	BRING_OPTS(opts, .durability = durability, .name = "bench");
	struct bring *r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	r = bring_open(path, cap, &opts);
	if (!r) {
		fprintf(stderr, "file_bench: bring_open %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
	return r;
}

static struct bring *open_file_ring(const char *name, int durability)
{
	return open_file_ring_cap(name, durability, RING_BYTES);
}

static void close_file_ring(struct bring *r, const char *name)
{
	char path[512];

	bring_free(r);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n & 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define STREAM_ROUNDS 7

struct stream_result {
	double mem, file; /* msg/s, medians */
	double ratio; /* median of the rounds' file/memory ratios */
	double cpu_ratio; /* median of memory/file writer CPU per message */
	double lo, hi; /* range of the rounds' ratios */
};

/*
 * STREAM_ROUNDS rounds of a memory run and a file run, in alternating
 * order; the machine's swings hit both sides of a round alike, so the
 * paired ratios are steadier than the two medians. The writer's CPU per
 * message is the steadiest figure of all: what the file ring's writer
 * pays (checksums, intents) shows there without the scheduling noise.
 */
static void paired_stream(size_t size, uint64_t msgs, struct stream_result *res)
{
	double m[STREAM_ROUNDS], f[STREAM_ROUNDS], q[STREAM_ROUNDS];
	double c[STREAM_ROUNDS], cm, cf;
	int i, k;

	for (i = 0; i < STREAM_ROUNDS; i++) {
		for (k = 0; k < 2; k++) {
			int file = (i + k) & 1;
			struct bring *r = file ? open_file_ring("stream.ring", 0) :
						 bring_new(RING_BYTES, NULL);
			double v = stream_run(r, size, msgs, file ? &cf : &cm);

			if (file) {
				f[i] = v;
				close_file_ring(r, "stream.ring");
			} else {
				m[i] = v;
				bring_free(r);
			}
		}
		q[i] = f[i] / m[i];
		c[i] = cm / cf;
	}
	res->ratio = median(q, STREAM_ROUNDS);
	res->lo = q[0];
	res->hi = q[STREAM_ROUNDS - 1];
	res->cpu_ratio = median(c, STREAM_ROUNDS);
	res->mem = median(m, STREAM_ROUNDS);
	res->file = median(f, STREAM_ROUNDS);
}

/* ------------------------------------------------------------------ */
/* Push cost, single-threaded: memory ring, file ring, CRC32C.          */

#define PUSH_RING_BYTES (16U << 20)
#define PUSH_ROUNDS 7
#define PUSH_SIZES 4

static const size_t push_sizes[PUSH_SIZES] = { 64, 1024, 4096, 65536 };

struct push_result {
	size_t size;
	double mem_ns, file_ns, crc_ns; /* per message, medians */
};

/* Drain everything (untimed). */
static void drain(struct bring *r)
{
	struct bring_msg m[64];

	while (bring_peek(r, m, 64, 0, 0) > 0)
		bring_shift(r);
}

/*
 * ns per push of @size bytes: pushes into @r until it is full, after one
 * untimed lap that faults the ring's pages in.
 */
static double push_until_full(struct bring *r, const char *buf, size_t size)
{
	uint64_t n = 0;
	double t0;

	while (!bring_push_timeout(r, buf, size, 0))
		;
	drain(r);
	t0 = now();
	while (!bring_push_timeout(r, buf, size, 0))
		n++;
	t0 = now() - t0;
	drain(r);
	return n ? t0 * 1e9 / (double)n : 0;
}

/* ns per CRC32C of @size bytes: as many as fit the ring, the same bytes. */
static double crc_cost(const char *buf, size_t size)
{
	uint64_t i, n = PUSH_RING_BYTES / (size + 16);
	volatile uint32_t sink = 0;
	double t0 = now();

	for (i = 0; i < n; i++)
		sink += bring_crc32c((uint32_t)i, buf, size);
	(void)sink;
	return (now() - t0) * 1e9 / (double)n;
}

static void push_cost(size_t size, struct push_result *res)
{
	double m[PUSH_ROUNDS], f[PUSH_ROUNDS], c[PUSH_ROUNDS];
	char *buf = malloc(size);
	int i, k;

	memset(buf, 'x', size);
	for (i = 0; i < PUSH_ROUNDS; i++) {
		for (k = 0; k < 2; k++) {
			int file = (i + k) & 1;
			struct bring *r;

			if (file) {
				r = open_file_ring_cap("push.ring", 0,
						       PUSH_RING_BYTES);
				f[i] = push_until_full(r, buf, size);
				close_file_ring(r, "push.ring");
			} else {
				r = bring_new(PUSH_RING_BYTES, NULL);
				m[i] = push_until_full(r, buf, size);
				bring_free(r);
			}
		}
		c[i] = crc_cost(buf, size);
	}
	free(buf);
	res->size = size;
	res->mem_ns = median(m, PUSH_ROUNDS);
	res->file_ns = median(f, PUSH_ROUNDS);
	res->crc_ns = median(c, PUSH_ROUNDS);
}

static bool push_pass(const struct push_result *p)
{
	return p->file_ns <= 1.1 * (p->mem_ns + p->crc_ns);
}

/* ------------------------------------------------------------------ */

struct crc_result {
	double plain, verify; /* msg/s, medians */
	double cpu_plain, cpu_verify; /* reader CPU ns per message, medians */
};

/* One streaming run on a file ring; the reader's CPU ns per message. */
static double crc_stream_run(size_t size, uint64_t msgs, unsigned int flags,
			     double *reader_ns)
{
	BRING_OPTS(opts, .name = "bench", .flags = flags);
	struct bring *r;
	char path[512];
	double cpu, wcpu, v;

	snprintf(path, sizeof(path), "%s/crc.ring", dir);
	unlink(path);
	r = bring_open(path, RING_BYTES, &opts);
	if (!r) {
		fprintf(stderr, "file_bench: bring_open %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
	cpu = thread_cpu();
	v = stream_run(r, size, msgs, &wcpu);
	*reader_ns = (thread_cpu() - cpu) * 1e9 / (double)msgs;
	bring_free(r);
	unlink(path);
	return v;
}

/* Paired rounds with and without BRING_VERIFY_CRC. */
static void paired_crc(size_t size, uint64_t msgs, struct crc_result *res)
{
	double p[STREAM_ROUNDS], v[STREAM_ROUNDS];
	double cp[STREAM_ROUNDS], cv[STREAM_ROUNDS];
	int i;

	for (i = 0; i < STREAM_ROUNDS; i++) {
		if (i & 1) {
			v[i] = crc_stream_run(size, msgs, BRING_VERIFY_CRC, &cv[i]);
			p[i] = crc_stream_run(size, msgs, 0, &cp[i]);
		} else {
			p[i] = crc_stream_run(size, msgs, 0, &cp[i]);
			v[i] = crc_stream_run(size, msgs, BRING_VERIFY_CRC, &cv[i]);
		}
	}
	res->plain = median(p, STREAM_ROUNDS);
	res->verify = median(v, STREAM_ROUNDS);
	res->cpu_plain = median(cp, STREAM_ROUNDS);
	res->cpu_verify = median(cv, STREAM_ROUNDS);
}

/* ------------------------------------------------------------------ */

struct durable {
	struct bring *r;
	int fd;
	unsigned int id;
	double until;
	uint64_t done;
	int err;
};

static void *always_writer(void *p)
{
	struct durable *d = p;
	char buf[64] = { 0 };

	while (now() < d->until) {
		memcpy(buf, &d->done, sizeof(d->done));
		/* A full ring would be a benchmark bug: fail, do not hang. */
		d->err = bring_push_timeout(d->r, buf, sizeof(buf), 5000);
		if (d->err)
			break;
		d->done++;
	}
	return NULL;
}

#define DURABLE_BATCH 16

/* The same with bring_push_batch(): one flush covers whole batches. */
static void *always_batch_writer(void *p)
{
	struct durable *d = p;
	struct bring_msg m[DURABLE_BATCH];
	char buf[DURABLE_BATCH][64];
	unsigned int i, k;
	int n;

	memset(buf, 0, sizeof(buf));
	while (now() < d->until) {
		for (i = 0; i < DURABLE_BATCH; i++) {
			uint64_t seq = d->done + i;

			memcpy(buf[i], &seq, sizeof(seq));
			m[i] = (struct bring_msg){ .data = buf[i], .len = 64 };
		}
		for (k = 0; k < DURABLE_BATCH; k += (unsigned int)n) {
			n = bring_push_batch(d->r, m + k, DURABLE_BATCH - k,
					     5000);
			if (n <= 0) {
				d->err = n ? n : -EIO;
				return NULL;
			}
		}
		d->done += DURABLE_BATCH;
	}
	return NULL;
}

static void *fsync_writer(void *p)
{
	struct durable *d = p;
	char buf[64] = { 0 };

	while (now() < d->until) {
		memcpy(buf, &d->done, sizeof(d->done));
		if (write(d->fd, buf, sizeof(buf)) != sizeof(buf) ||
		    fdatasync(d->fd) < 0) {
			d->err = -errno;
			break;
		}
		d->done++;
	}
	return NULL;
}

/*
 * The fdatasync ceiling's denominator: the median latency of one
 * fdatasync() after a 64-byte write, timed alone, in the same directory.
 * The write overwrites a preallocated file, as the ring's records do:
 * an append would also commit the size change to the journal, which on
 * ext4 made each sample 3-5x slower than the ring's own flushes.
 */
#define FSYNC1_BYTES (64U << 10)

static double fdatasync_latency(int samples)
{
	static const char zeros[FSYNC1_BYTES];
	double t[256], t0;
	char path[512], buf[64] = { 0 };
	int fd, i;

	snprintf(path, sizeof(path), "%s/fsync1.log", dir);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0 || pwrite(fd, zeros, sizeof(zeros), 0) != sizeof(zeros) ||
	    fsync(fd) < 0) {
		fprintf(stderr, "file_bench: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	if (samples > 256)
		samples = 256;
	for (i = 0; i < samples; i++) {
		if (pwrite(fd, buf, sizeof(buf),
			   (off_t)((uint64_t)i * sizeof(buf) % FSYNC1_BYTES)) !=
		    sizeof(buf))
			exit(1);
		t0 = now();
		if (fdatasync(fd) < 0)
			exit(1);
		t[i] = now() - t0;
	}
	close(fd);
	unlink(path);
	return median(t, samples);
}

enum durable_kind { DURABLE_FSYNC, DURABLE_RING, DURABLE_RING_BATCH };

/*
 * The durable runs' reader: shifts what the writers push, so that a fast
 * machine does not fill the 64 MiB ring within the run (a writer waiting
 * for space would time out and fail the run: 838,860 messages of 64
 * bytes fill it, ~3 s of batched pushes on a quiet machine). It reads
 * batches and never waits for the flush, which is the writers' cost.
 */
struct drain {
	struct bring_reader *rd;
	volatile bool stop;
};

static void *drain_run(void *p)
{
	struct drain *dr = p;
	struct bring_msg m[256];

	while (!dr->stop)
		if (bring_reader_peek(dr->rd, m, 256, 0, 100) > 0)
			bring_reader_shift(dr->rd);
	return NULL;
}

/* Durable messages per second with @threads writers for @secs. */
static double durable_run(int ring, unsigned int threads, double secs,
			  uint64_t *flushes)
{
	struct durable d[16];
	pthread_t t[16], drain_th;
	struct drain dr = { 0 };
	char path[512];
	struct bring *r = NULL;
	uint64_t total = 0;
	unsigned int i;
	double t0;
	int fd = -1;

	if (ring) {
		BRING_OPTS(opts, .durability = BRING_DURABLE_ALWAYS,
			   .flags = BRING_NO_DEFAULT_READER);
		snprintf(path, sizeof(path), "%s/always.ring", dir);
		unlink(path);
		r = bring_open(path, DURABLE_RING_BYTES, &opts);
		if (!r) {
			fprintf(stderr, "file_bench: %s\n", strerror(errno));
			exit(1);
		}
		/*
		 * bring_open() zero-fills a new file with write(2): the first
		 * flush writes all of it back (64 MiB, a third of a second
		 * here). One durable push pays for that before the clock.
		 */
		if (bring_push(r, "warm-up", 7)) {
			fprintf(stderr, "file_bench: warm-up push failed\n");
			exit(1);
		}
		dr.rd = bring_reader_open(r, "drain");
		if (!dr.rd) {
			fprintf(stderr, "file_bench: reader: %s\n",
				strerror(errno));
			exit(1);
		}
		pthread_create(&drain_th, NULL, drain_run, &dr);
	} else {
		snprintf(path, sizeof(path), "%s/fsync.log", dir);
		fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0600);
	}
	t0 = now();
	for (i = 0; i < threads; i++) {
		d[i] = (struct durable){ .r = r, .fd = fd, .id = i,
					 .until = t0 + secs };
		pthread_create(&t[i], NULL,
			       ring == DURABLE_RING_BATCH ? always_batch_writer :
			       ring == DURABLE_RING	  ? always_writer :
							    fsync_writer,
			       &d[i]);
	}
	for (i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		if (d[i].err) {
			fprintf(stderr, "file_bench: durable write: %d\n",
				d[i].err);
			exit(1);
		}
		total += d[i].done;
	}
	t0 = now() - t0;
	if (r) {
		struct bring_stats st = { .sz = sizeof(st) };

		dr.stop = true;
		pthread_join(drain_th, NULL);
		bring_reader_close(dr.rd);
		bring_get_stats(r, &st);
		*flushes = st.flushes - 1; /* the warm-up's */
		if (st.msgs_in != total + 1) {
			fprintf(stderr, "file_bench: lost messages\n");
			exit(1);
		}
		bring_free(r);
	} else {
		*flushes = total;
		close(fd);
	}
	unlink(path);
	return (double)total / t0;
}

/* Fill a 1 GiB file ring, close it, time the exclusive reopen. */
static double recovery_run(uint64_t *records)
{
	struct bring_msg m[64];
	static char buf[64];
	char path[512];
	struct bring *r;
	double t0;
	int i, n;

	snprintf(path, sizeof(path), "%s/recover.ring", dir);
	unlink(path);
	r = bring_open(path, 1U << 30, NULL);
	if (!r) {
		fprintf(stderr, "file_bench: %s\n", strerror(errno));
		exit(1);
	}
	for (i = 0; i < 64; i++)
		m[i] = (struct bring_msg){ .data = buf, .len = sizeof(buf) };
	*records = 0;
	while ((n = bring_push_batch(r, m, 64, 0)) > 0)
		*records += (uint64_t)n;
	bring_free(r);
	t0 = now();
	r = bring_open(path, 0, NULL);
	t0 = now() - t0;
	if (!r) {
		fprintf(stderr, "file_bench: reopen: %s\n", strerror(errno));
		exit(1);
	}
	bring_free(r);
	unlink(path);
	return t0;
}

int main(void)
{
	static const size_t sizes[] = { 64, 4096 };
	static const unsigned int threads[] = { 1, 4, 16 };
	const char *json = getenv("BENCH_JSON");
	double secs, always[3], base[3], batch16, ceiling;
	double fsync_s = 0, cpu16 = 0;
	struct stream_result sr[2];
	struct push_result pr[PUSH_SIZES];
	struct crc_result cr[2];
	uint64_t fl_always[3], fl_base[3], fl_batch;
	FILE *js = NULL;
	unsigned int i;
	bool durable_only = getenv("BENCH_DURABLE_ONLY") != NULL;

	quick = getenv("BENCH_QUICK") != NULL;
	dir = getenv("BENCH_DIR") ?: "/var/tmp";
	secs = quick ? 0.5 : 2.0;
	if (durable_only)
		goto durable;
	for (i = 0; i < 2; i++) {
		uint64_t msgs = (quick ? 200000 : 2000000) /
				(sizes[i] > 1024 ? 8 : 1);

		paired_stream(sizes[i], msgs, &sr[i]);
		paired_crc(sizes[i], msgs, &cr[i]);
	}
	for (i = 0; i < PUSH_SIZES; i++)
		push_cost(push_sizes[i], &pr[i]);
durable:
	for (i = 0; i < 3; i++) {
		/* The ceiling's fdatasync latency: just before and after. */
		if (i == 2) {
			fsync_s = fdatasync_latency(quick ? 50 : 200);
			cpu16 = process_cpu();
		}
		always[i] = durable_run(DURABLE_RING, threads[i], secs,
					&fl_always[i]);
		if (i == 2) {
			cpu16 = process_cpu() - cpu16;
			fsync_s = (fsync_s +
				   fdatasync_latency(quick ? 50 : 200)) / 2;
		}
		base[i] = durable_run(DURABLE_FSYNC, threads[i], secs,
				      &fl_base[i]);
	}
	batch16 = durable_run(DURABLE_RING_BATCH, 16, secs, &fl_batch);
	ceiling = 16 / fsync_s;
	if (durable_only)
		goto report_durable;

	printf("file ring vs memory ring, streaming, 1 writer + 1 reader (%s)\n",
	       dir);
	printf("  %d paired rounds; medians; writer CPU: memory/file CPU time per message\n",
	       STREAM_ROUNDS);
	printf("  %-6s %14s %14s %8s %15s %11s\n", "size", "memory msg/s",
	       "file msg/s", "ratio", "(range)", "writer CPU");
	for (i = 0; i < 2; i++)
		printf("  %-6zu %14.0f %14.0f %7.1f%% %6.0f-%3.0f%% %10.1f%%\n",
		       sizes[i], sr[i].mem, sr[i].file, 100 * sr[i].ratio,
		       100 * sr[i].lo, 100 * sr[i].hi, 100 * sr[i].cpu_ratio);
	printf("\npush cost, single-threaded, into a 16 MiB ring until full; %d alternating rounds, medians\n",
	       PUSH_ROUNDS);
	printf("  %-6s %12s %12s %12s %14s %10s\n", "size", "memory ns",
	       "file ns", "CRC32C ns", "file/(mem+crc)", "");
	for (i = 0; i < PUSH_SIZES; i++)
		printf("  %-6zu %12.1f %12.1f %12.1f %13.2fx %10s  (target <= 1.10x)\n",
		       pr[i].size, pr[i].mem_ns, pr[i].file_ns, pr[i].crc_ns,
		       pr[i].file_ns / (pr[i].mem_ns + pr[i].crc_ns),
		       push_pass(&pr[i]) ? "PASS" : "MISS");
	printf("\nCRC on delivery: file ring read with BRING_VERIFY_CRC vs without\n");
	printf("  %-6s %14s %14s %8s %16s %16s\n", "size", "plain msg/s",
	       "verify msg/s", "ratio", "reader ns/msg", "verify ns/msg");
	for (i = 0; i < 2; i++)
		printf("  %-6zu %14.0f %14.0f %7.1f%% %16.1f %16.1f\n", sizes[i],
		       cr[i].plain, cr[i].verify, 100 * cr[i].verify / cr[i].plain,
		       cr[i].cpu_plain, cr[i].cpu_verify);
report_durable:
	printf("\ndurability always (group commit) vs write+fdatasync per message, 64 B\n");
	printf("  %-8s %14s %10s %16s %10s %8s\n", "writers", "always msg/s",
	       "fsyncs", "baseline msg/s", "fsyncs", "ratio");
	for (i = 0; i < 3; i++)
		printf("  %-8u %14.0f %10" PRIu64 " %16.0f %10" PRIu64
		       " %7.1fx\n",
		       threads[i], always[i], fl_always[i], base[i], fl_base[i],
		       always[i] / base[i]);
	printf("  bring_push_batch() x %d, 16 writers: %.0f msg/s, %" PRIu64
	       " fsyncs (%.1f msgs per flush)\n",
	       DURABLE_BATCH, batch16, fl_batch,
	       fl_batch ? batch16 * secs / (double)fl_batch : 0);
	printf("  fdatasync ceiling: 16 writers / %.0f us (median fdatasync after a 64 B overwrite, before and after) = %.0f msg/s\n",
	       fsync_s * 1e6, ceiling);
	printf("  group commit, 16 writers: %.1f msgs per flush, one flush every %.0f us (%.0f us with 1 writer)\n",
	       fl_always[2] ? always[2] * secs / (double)fl_always[2] : 0,
	       fl_always[2] ? secs * 1e6 / (double)fl_always[2] : 0,
	       fl_always[0] ? secs * 1e6 / (double)fl_always[0] : 0);
	printf("  group commit, 16 writers: %.1f us of CPU per message (all threads)\n",
	       always[2] > 0 ? cpu16 * 1e6 / (always[2] * secs) : 0);
	printf("  group commit at 16 writers: %.1f%% of the ceiling (target >= 70%%): %s\n",
	       100 * always[2] / ceiling,
	       always[2] >= 0.7 * ceiling ? "PASS" : "MISS");
	if (durable_only)
		return 0;
	if (!quick) {
		uint64_t records;
		double secs_rec = recovery_run(&records);

		printf("\nrecovery of a full 1 GiB ring: %" PRIu64
		       " records of 64 B checked in %.3f s (target < 2 s): %s\n",
		       records, secs_rec, secs_rec < 2 ? "PASS" : "MISS");
	}

	if (json)
		js = fopen(json, "w");
	if (js) {
		fprintf(js, "{\"bench\": \"file_bench\", \"dir\": \"%s\", \"stream\": [", dir);
		for (i = 0; i < 2; i++)
			fprintf(js, "%s{\"size\": %zu, \"memory_msgs_per_s\": %.0f, \"file_msgs_per_s\": %.0f, \"ratio\": %.3f, \"writer_cpu_ratio\": %.3f}",
				i ? ", " : "", sizes[i], sr[i].mem, sr[i].file,
				sr[i].ratio, sr[i].cpu_ratio);
		fprintf(js, "], \"push_cost\": [");
		for (i = 0; i < PUSH_SIZES; i++)
			fprintf(js, "%s{\"size\": %zu, \"memory_ns\": %.1f, \"file_ns\": %.1f, \"crc32c_ns\": %.1f, \"ratio\": %.3f, \"pass\": %s}",
				i ? ", " : "", pr[i].size, pr[i].mem_ns,
				pr[i].file_ns, pr[i].crc_ns,
				pr[i].file_ns / (pr[i].mem_ns + pr[i].crc_ns),
				push_pass(&pr[i]) ? "true" : "false");
		fprintf(js, "], \"crc_on_delivery\": [");
		for (i = 0; i < 2; i++)
			fprintf(js, "%s{\"size\": %zu, \"plain_msgs_per_s\": %.0f, \"verify_msgs_per_s\": %.0f, \"reader_ns_plain\": %.1f, \"reader_ns_verify\": %.1f}",
				i ? ", " : "", sizes[i], cr[i].plain, cr[i].verify,
				cr[i].cpu_plain, cr[i].cpu_verify);
		fprintf(js, "], \"fdatasync_us\": %.1f, \"ceiling_msgs_per_s\": %.0f, \"always16_of_ceiling\": %.3f, \"batch16_msgs_per_s\": %.0f, \"durable\": [",
			fsync_s * 1e6, ceiling, always[2] / ceiling, batch16);
		for (i = 0; i < 3; i++)
			fprintf(js, "%s{\"writers\": %u, \"always_msgs_per_s\": %.0f, \"always_flushes\": %" PRIu64 ", \"fsync_msgs_per_s\": %.0f, \"ratio\": %.3f}",
				i ? ", " : "", threads[i], always[i], fl_always[i], base[i], always[i] / base[i]);
		fprintf(js, "]}\n");
		fclose(js);
	}
	return 0;
}
