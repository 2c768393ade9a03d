// SPDX-License-Identifier: GPL-2.0
/*
 * io_bench - bench/io: bringcat against what else ships a file over TCP.
 *
 *  1. A page-cached file of 100-byte lines (512 MiB) is shipped over TCP
 *     loopback into a file by a sender/receiver pair of: bringcat
 *     (io_uring, --no-uring, and io_uring with an 8 MiB ring that stays
 *     in the caches), socat with its default options (what a
 *     user would pick) and with -b 262144, bench/io/relay's read/write
 *     loop with 64 KiB buffers (the two-copy bound) and its sendfile ->
 *     splice pair (the one-copy bound). Each pair runs BENCH_IO_ROUNDS
 *     times, interleaved; the median of each is reported.
 *     Page faults per MB (getrusage of both processes) come with each
 *     timed run; a fresh pair's first 64 MiB against its second 64 MiB
 *     (times at which the output passed 64 and 128 MiB) is the cost of
 *     first touching a new ring.
 *  2. System calls and cache misses per MB of each pair, both processes
 *     counted, in a separate untimed run: perf stat -e
 *     raw_syscalls:sys_enter,cache-misses around each process (inherited
 *     by its threads; io_uring operations are not system calls,
 *     io_uring_enter is; a VM without hardware counters says n/a).
 *     The acknowledged hop (bring: -> bring-listen:) is one more pair,
 *     against bringcat's tcp: pair (target >= 0.9x); its sender's ACK
 *     frames per MB are reported. So is a receiver serving --metrics
 *     while a thread scrapes it every 100 ms (target >= 0.95x: the
 *     metrics page must not slow the data path measurably).
 *  3. 16 TCP clients send 64-byte lines into one bringcat and into one
 *     socat TCP-LISTEN:...,fork (children appending to one file):
 *     messages/s.
 *  4. (after the tail: checkpoint figures) -f syslog against -f lines:
 *     a quarter of the input's lines, and the same messages as RFC 6587
 *     octet-counted frames, each through a bringcat pair in its framing;
 *     messages/s and their ratio (no target: the cost is reported).
 *
 * Every output is checked: byte for byte against the input in 1, and in
 * 3 every line whole and each client's lines in order for bringcat (socat
 * is only checked for the byte count; its torn lines are counted). A
 * wrong output, a failed or hung process is a failed bench (exit 1);
 * missed targets are reported, not fatal.
 *
 * Environment: BRING_OUT (build tree: io/bringcat, bench/io/relay),
 * BENCH_DIR (files; default /var/tmp), BENCH_IO_MIB (default 512, 160
 * with BENCH_QUICK=1: more than the 128 MiB the first-touch figure needs), BENCH_IO_ROUNDS (default 3), BENCH_IO_LINES
 * (lines per client, default 200000), BENCH_JSON.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_LEN 100
#define CLIENTS 16
#define CLIENT_LINE 64
#define MAX_ROUNDS 15
#define MAX_ARGS 24

static char bringcat[PATH_MAX], relay[PATH_MAX];
static char in_path[PATH_MAX - 64], out_path[PATH_MAX - 64], log_path[PATH_MAX];
static char ring_path[PATH_MAX - 64];
static size_t in_size;
static bool have_socat, have_perf;
static int failed;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(double ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
			       .tv_nsec = (long)(fmod(ms, 1000) * 1e6) };

	nanosleep(&ts, NULL);
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : st.st_size;
}

static bool have_cmd(const char *cmd)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "command -v %s >/dev/null 2>&1", cmd);
	return !system(buf);
}

/* ---- processes --------------------------------------------------------- */

struct proc {
	pid_t pid; /* what we started: the program, or perf around it */
	bool perf; /* wrapped in perf stat: signal its child */
	char stat_path[PATH_MAX];
	double cpu; /* user + system seconds, after reap() */
	double faults; /* minor + major page faults, after reap() */
	int rc;
};

/* Start @argv, wrapped in perf stat when @count; stderr goes to the log. */
static void start(struct proc *p, const char *const *argv, bool count,
		  const char *tag)
{
	const char *full[MAX_ARGS + 10];
	int n = 0, fd;

	memset(p, 0, sizeof(*p));
	p->perf = count;
	if (count) {
		snprintf(p->stat_path, sizeof(p->stat_path), "%s.%s.stat",
			 out_path, tag);
		full[n++] = "perf";
		full[n++] = "stat";
		full[n++] = "-x,";
		full[n++] = "-e";
		full[n++] = "raw_syscalls:sys_enter,cache-misses";
		full[n++] = "-o";
		full[n++] = p->stat_path;
		full[n++] = "--";
	}
	while (*argv)
		full[n++] = *argv++;
	full[n] = NULL;
	p->pid = fork();
	if (p->pid)
		return;
	fd = open("/dev/null", O_RDONLY);
	dup2(fd, 0);
	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	dup2(fd, 1);
	dup2(fd, 2);
	execvp(full[0], (char **)full);
	_exit(127);
}

/* Reap @p if it has exited (or wait up to @ms); true once reaped. */
static bool reap(struct proc *p, int ms)
{
	double end = now() + ms / 1000.0;
	struct rusage ru;
	int st;

	if (!p->pid)
		return true;
	do {
		if (wait4(p->pid, &st, WNOHANG, &ru) == p->pid) {
			p->rc = WIFEXITED(st) ? WEXITSTATUS(st) :
						128 + WTERMSIG(st);
			p->cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
				 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) /
					 1e6;
			p->faults = ru.ru_minflt + ru.ru_majflt;
			p->pid = 0;
			return true;
		}
		if (ms)
			sleep_ms(1);
	} while (now() < end);
	return false;
}

/* The program itself: perf's child when wrapped. */
static pid_t target(const struct proc *p)
{
	char path[64];
	FILE *f;
	int pid = 0;

	if (!p->perf)
		return p->pid;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)p->pid,
		 (int)p->pid);
	f = fopen(path, "r");
	if (f && fscanf(f, "%d", &pid) != 1)
		pid = 0;
	if (f)
		fclose(f);
	return pid;
}

/* SIGTERM, then SIGKILL after 10 s; false if it had to be killed. */
static bool stop(struct proc *p)
{
	pid_t t = target(p);

	if (!p->pid)
		return true;
	if (t > 0)
		kill(t, SIGTERM);
	if (reap(p, 10000))
		return true;
	kill(p->pid, SIGKILL);
	if (t > 0)
		kill(t, SIGKILL);
	reap(p, 10000);
	return false;
}

/* The count of perf event @event, or -1 (not counted, not supported). */
static double perf_count(const struct proc *p, const char *event)
{
	char line[512];
	double v = -1;
	FILE *f = fopen(p->stat_path, "r");

	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, event) && sscanf(line, "%lf,", &v) != 1)
			v = -1;
	if (f)
		fclose(f);
	return v;
}

/* Both processes' count of @event, or -1. */
static double perf_pair(const struct proc *rx, const struct proc *tx,
			const char *event)
{
	double a = perf_count(rx, event), b = perf_count(tx, event);

	return a >= 0 && b >= 0 ? a + b : -1;
}

/* ---- TCP helpers -------------------------------------------------------- */

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (struct sockaddr *)&sa, &len))
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Is something listening on 127.0.0.1:@port (/proc/net/tcp)? */
static bool listening(int port)
{
	char line[256], want[32];
	bool found = false;
	FILE *f = fopen("/proc/net/tcp", "r");

	snprintf(want, sizeof(want), "0100007F:%04X 00000000:0000 0A", port);
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, want) != NULL;
	if (f)
		fclose(f);
	return found;
}

static bool wait_listening(struct proc *rx, int port)
{
	double end = now() + 10;

	while (now() < end) {
		if (listening(port))
			return true;
		if (reap(rx, 0))
			return false;
		sleep_ms(2);
	}
	return false;
}

/* ---- the pairs ---------------------------------------------------------- */

enum pair_id {
	P_BRINGCAT,
	P_BRINGCAT_NOURING,
	P_BRINGCAT_8M,
	P_BRINGCAT_FILE,
	P_BRINGCAT_HOP,
	P_BRINGCAT_METRICS,
	P_SOCAT,
	P_SOCAT_B,
	P_RELAY,
	P_SENDFILE,
	NR_PAIRS,
};

static const struct pair_desc {
	const char *name, *key;
	bool socat;
} pairs[NR_PAIRS] = {
	[P_BRINGCAT] = { "bringcat (io_uring)", "bringcat", false },
	[P_BRINGCAT_NOURING] = { "bringcat (--no-uring)", "bringcat_no_uring",
				 false },
	[P_BRINGCAT_8M] = { "bringcat (-b mem:8M)", "bringcat_mem8m", false },
	[P_BRINGCAT_FILE] = { "bringcat (rx -b file:)", "bringcat_file_rx",
			      false },
	[P_BRINGCAT_HOP] = { "bringcat bring: (acked)", "bringcat_hop", false },
	[P_BRINGCAT_METRICS] = { "bringcat --metrics, 10/s", "bringcat_metrics",
				 false },
	[P_SOCAT] = { "socat (default)", "socat", true },
	[P_SOCAT_B] = { "socat -b 262144", "socat_b262144", true },
	[P_RELAY] = { "relay read/write 64 KiB", "relay", false },
	[P_SENDFILE] = { "sendfile -> splice", "sendfile", false },
};

struct argbuf {
	const char *argv[MAX_ARGS];
	char s[4][PATH_MAX + 64];
};

static bool is_bringcat(enum pair_id id)
{
	return id == P_BRINGCAT || id == P_BRINGCAT_NOURING ||
	       id == P_BRINGCAT_8M || id == P_BRINGCAT_FILE ||
	       id == P_BRINGCAT_HOP ||
	       id == P_BRINGCAT_METRICS;
}

/* The port of the metrics page the P_BRINGCAT_METRICS receiver serves. */
static int mport;

static void pair_argv(enum pair_id id, bool rx, int port, struct argbuf *a)
{
	const char **v = a->argv;
	int n = 0;

	snprintf(a->s[0], sizeof(a->s[0]), "127.0.0.1:%d", port);
	switch (id) {
	case P_BRINGCAT:
	case P_BRINGCAT_NOURING:
	case P_BRINGCAT_8M:
	case P_BRINGCAT_FILE:
	case P_BRINGCAT_HOP:
	case P_BRINGCAT_METRICS:
		v[n++] = bringcat;
		v[n++] = "-q";
		if (id == P_BRINGCAT_HOP && !rx) /* its hop counters */
			v[n++] = "--stats";
		if (id == P_BRINGCAT_NOURING)
			v[n++] = "--no-uring";
		if (id == P_BRINGCAT_8M) /* a ring that stays in the caches */
			v[n++] = "--buffer=mem:8M";
		if (id == P_BRINGCAT_FILE && rx) { /* crash-safe, 64 MiB */
			snprintf(a->s[3], sizeof(a->s[3]), "--buffer=file:%s",
				 ring_path);
			v[n++] = a->s[3];
		}
		if (id == P_BRINGCAT_METRICS && rx) {
			snprintf(a->s[3], sizeof(a->s[3]), "127.0.0.1:%d",
				 mport);
			v[n++] = "--metrics";
			v[n++] = a->s[3];
		}
		snprintf(a->s[1], sizeof(a->s[1]), "%s:127.0.0.1:%d",
			 id == P_BRINGCAT_HOP ? (rx ? "bring-listen" : "bring") :
			 rx ? "tcp-listen" : "tcp", port);
		snprintf(a->s[2], sizeof(a->s[2]), "file:%s",
			 rx ? out_path : in_path);
		v[n++] = "-i";
		v[n++] = rx ? a->s[1] : a->s[2];
		v[n++] = "-o";
		v[n++] = rx ? a->s[2] : a->s[1];
		break;
	case P_SOCAT:
	case P_SOCAT_B:
		v[n++] = "socat";
		if (id == P_SOCAT_B) {
			v[n++] = "-b";
			v[n++] = "262144";
		}
		v[n++] = "-u";
		if (rx) {
			snprintf(a->s[1], sizeof(a->s[1]),
				 "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr", port);
			snprintf(a->s[2], sizeof(a->s[2]), "OPEN:%s,creat,trunc",
				 out_path);
		} else {
			snprintf(a->s[1], sizeof(a->s[1]), "OPEN:%s", in_path);
			snprintf(a->s[2], sizeof(a->s[2]), "TCP:127.0.0.1:%d",
				 port);
		}
		v[n++] = a->s[1];
		v[n++] = a->s[2];
		break;
	default:
		v[n++] = relay;
		v[n++] = id == P_RELAY ? "relay" : "sendfile";
		v[n++] = rx ? "recv" : "send";
		v[n++] = rx ? a->s[0] : in_path;
		v[n++] = rx ? out_path : a->s[0];
		break;
	}
	v[n] = NULL;
}

struct result {
	double secs, cpu; /* wall seconds; CPU seconds of both processes */
	double faults; /* page faults of both processes */
	double first, second; /* seconds for the first and second 64 MiB */
	double calls, misses; /* perf counts of both processes, or -1 */
	double acks; /* bring: ACK frames the sender received, or -1 */
	double scrapes; /* GET /metrics answered with 200, or -1 */
};

/*
 * A Prometheus server's part for P_BRINGCAT_METRICS: GET /metrics from
 * the receiver every 100 ms (ten times a Prometheus default of 1 s)
 * while the pair runs, counting the pages that came back whole (200).
 */
struct scraper {
	pthread_t th;
	int port;
	volatile bool stop;
	unsigned int ok;
};

static bool scrape_once(int port)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char buf[65536];
	size_t len = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = false;

	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, req, sizeof(req) - 1) != sizeof(req) - 1)
		goto out;
	while (len < sizeof(buf) - 1 &&
	       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	ok = !strncmp(buf, "HTTP/1.", 7) && strstr(buf, " 200 ") &&
	     strstr(buf, "bring_ring_capacity_bytes");
out:
	close(fd);
	return ok;
}

static void *scraper_run(void *arg)
{
	struct scraper *sc = arg;

	while (!sc->stop) {
		if (scrape_once(sc->port))
			sc->ok++;
		sleep_ms(100);
	}
	return NULL;
}

static void scraper_start(struct scraper *sc, int port)
{
	sc->port = port;
	sc->stop = false;
	sc->ok = 0;
	pthread_create(&sc->th, NULL, scraper_run, sc);
}

static void scraper_stop(struct scraper *sc)
{
	sc->stop = true;
	pthread_join(sc->th, NULL);
}

#define TOUCH_MIB 64 /* the first and the second 64 MiB of a fresh pair */

/* The sender's "hop frames F acks A" from its --stats line in the log. */
static double hop_acks_logged(void)
{
	char line[2048];
	const char *p;
	double acks = -1;
	FILE *f = fopen(log_path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if ((p = strstr(line, "hop frames ")) && (p = strstr(p, " acks ")))
			acks = strtod(p + 6, NULL);
	fclose(f);
	return acks;
}

/* Does @path hold what @ref holds, @in_size bytes? */
static bool same_file(const char *path, const char *ref, size_t in_size)
{
	int a = open(ref, O_RDONLY), b = open(path, O_RDONLY);
	void *pa = MAP_FAILED, *pb = MAP_FAILED;
	bool same = false;

	if (a >= 0 && b >= 0 && file_size(path) == (off_t)in_size &&
	    file_size(ref) == (off_t)in_size) {
		pa = mmap(NULL, in_size, PROT_READ, MAP_SHARED, a, 0);
		pb = mmap(NULL, in_size, PROT_READ, MAP_SHARED, b, 0);
		same = pa != MAP_FAILED && pb != MAP_FAILED &&
		       !memcmp(pa, pb, in_size);
	}
	if (pa != MAP_FAILED)
		munmap(pa, in_size);
	if (pb != MAP_FAILED)
		munmap(pb, in_size);
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
	return same;
}

static bool same_as_input(const char *path)
{
	return same_file(path, in_path, in_size);
}

/*
 * One run of pair @id: the receiver listens, the clock starts, the sender
 * starts, the clock stops when the output holds every byte. With @count
 * both run under perf stat (untimed). Returns 0 or -1 (failed; said why).
 */
static int run_pair(enum pair_id id, bool count, struct result *res)
{
	struct proc rx, tx;
	struct argbuf ra, ta;
	struct scraper sc = { 0 };
	double t0, t1 = 0, end, t64 = 0, t128 = 0;
	off_t sz, m64 = (off_t)TOUCH_MIB << 20;
	int port = free_port();
	bool ok;

	unlink(out_path);
	unlink(ring_path); /* a new file ring each round (created untimed) */
	do
		mport = free_port();
	while (mport == port);
	pair_argv(id, true, port, &ra);
	pair_argv(id, false, port, &ta);
	start(&rx, ra.argv, count, "rx");
	if (!wait_listening(&rx, port)) {
		fprintf(stderr, "io_bench: %s: receiver did not listen on %d (log: %s)\n",
			pairs[id].name, port, log_path);
		stop(&rx);
		return -1;
	}
	if (id == P_BRINGCAT_METRICS)
		scraper_start(&sc, mport);
	t0 = now();
	start(&tx, ta.argv, count, "tx");
	end = t0 + 60 + in_size / 10e6; /* >= 10 MB/s or it hangs */
	while (now() < end) {
		sz = file_size(out_path);
		if (!t64 && sz >= m64)
			t64 = now();
		if (!t128 && sz >= 2 * m64)
			t128 = now();
		if (sz >= (off_t)in_size) {
			t1 = now();
			break;
		}
		if (reap(&tx, 0) && tx.rc)
			break;
		sleep_ms(1);
	}
	ok = t1 > 0 && reap(&tx, 30000) && !tx.rc;
	if (id == P_BRINGCAT_METRICS)
		scraper_stop(&sc);
	if (is_bringcat(id) || !ok)
		ok = stop(&rx) && ok;
	else
		ok = reap(&rx, 10000) && !rx.rc && ok;
	if (!ok || !reap(&rx, 0))
		stop(&rx);
	if (!ok) {
		fprintf(stderr, "io_bench: %s: %s (sender exit %d, receiver exit %d; log: %s)\n",
			pairs[id].name, t1 ? "a process failed" : "incomplete output",
			tx.rc, rx.rc, log_path);
		stop(&tx);
		return -1;
	}
	if (!same_as_input(out_path)) {
		fprintf(stderr, "io_bench: %s: OUTPUT DIFFERS from the input\n",
			pairs[id].name);
		return -1;
	}
	unlink(out_path);
	res->secs = t1 - t0;
	res->cpu = rx.cpu + tx.cpu;
	res->faults = rx.faults + tx.faults;
	/* The input must be larger than 128 MiB for both halves. */
	res->first = t64 && t128 && t128 < t1 ? t64 - t0 : -1;
	res->second = res->first > 0 ? t128 - t64 : -1;
	res->calls = res->misses = -1;
	res->acks = id == P_BRINGCAT_HOP ? hop_acks_logged() : -1;
	res->scrapes = id == P_BRINGCAT_METRICS ? (double)sc.ok : -1;
	if (id == P_BRINGCAT_METRICS && !sc.ok) {
		fprintf(stderr, "io_bench: %s: no scrape of /metrics succeeded\n",
			pairs[id].name);
		return -1;
	}
	if (count) {
		res->calls = perf_pair(&rx, &tx, "raw_syscalls:sys_enter");
		res->misses = perf_pair(&rx, &tx, "cache-misses");
		unlink(rx.stat_path);
		unlink(tx.stat_path);
	}
	return 0;
}

/* ---- 16 clients ---------------------------------------------------------- */

struct client {
	int port, id;
	char *buf;
	size_t len;
	int err;
};

static void *client_run(void *arg)
{
	struct client *c = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(c->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t off = 0, n;
	ssize_t w;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		c->err = errno;
		goto out;
	}
	/* 64 KiB writes of whole lines, as a log forwarder batches them. */
	while (off < c->len) {
		n = c->len - off < 65536 ? c->len - off : 65536;
		n -= n % CLIENT_LINE;
		w = write(fd, c->buf + off, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			c->err = errno ? errno : EIO;
			break;
		}
		off += w;
	}
out:
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* "cII SSSSSSSSSS yyyy...y\n": 64 bytes, client II's line SSSSSSSSSS. */
static char *client_lines(int id, unsigned int lines)
{
	char *buf = malloc((size_t)lines * CLIENT_LINE), *p;
	unsigned int i;

	for (i = 0, p = buf; buf && i < lines; i++, p += CLIENT_LINE) {
		snprintf(p, 16, "c%02d %010u ", id, i);
		memset(p + 15, 'y', CLIENT_LINE - 16);
		p[CLIENT_LINE - 1] = '\n';
	}
	return buf;
}

/* "cII SSSSSSSSSS " -> @id, @seq (no sscanf: the output has no NUL). */
static int parse_client_line(const char *p, int *id, unsigned int *seq)
{
	int i;

	if (p[0] != 'c' || p[3] != ' ' || p[14] != ' ')
		return -1;
	*id = (p[1] - '0') * 10 + (p[2] - '0');
	for (i = 4, *seq = 0; i < 14; i++)
		*seq = *seq * 10 + (unsigned int)(p[i] - '0');
	return *id >= 0 && *id < CLIENTS ? 0 : -1;
}

/*
 * Lines of @out that are not a whole client line in its client's order;
 * @strict stops at the first (bringcat keeps lines whole), otherwise the
 * torn ones are counted (socat's forked children interleave their reads).
 */
static long check_client_output(const char *out, size_t len,
				unsigned int lines, bool strict)
{
	unsigned int next[CLIENTS] = { 0 }, seq;
	const char *p = out, *e = out + len, *nl;
	long bad = 0;
	int id, i;

	while (p < e) {
		nl = memchr(p, '\n', e - p);
		if (!nl)
			nl = e;
		if (nl - p != CLIENT_LINE - 1 ||
		    parse_client_line(p, &id, &seq) ||
		    (strict && seq != next[id])) {
			if (strict)
				return 1;
			bad++;
		} else {
			next[id] = seq + 1;
		}
		p = nl + 1;
	}
	for (i = 0; strict && i < CLIENTS; i++)
		if (next[i] != lines)
			return 1;
	return bad;
}

/*
 * Clients into a bringcat (@socat false) or a forking socat listener.
 * Returns messages/s, or -1 when it failed.
 */
static double run_clients(bool socat, char **bufs, unsigned int lines,
			  long *torn)
{
	size_t want = (size_t)CLIENTS * lines * CLIENT_LINE, len = 0;
	struct client cl[CLIENTS];
	pthread_t th[CLIENTS];
	struct argbuf a;
	struct proc rx;
	double t0, t1 = 0, end;
	int port = free_port(), i, fd, err = 0;
	char *out = MAP_FAILED;
	long bad;

	unlink(out_path);
	if (socat) {
		snprintf(a.s[1], sizeof(a.s[1]),
			 "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,backlog=64",
			 port);
		snprintf(a.s[2], sizeof(a.s[2]), "OPEN:%s,creat,append",
			 out_path);
		a.argv[0] = "socat";
		a.argv[1] = "-u";
		a.argv[2] = a.s[1];
		a.argv[3] = a.s[2];
		a.argv[4] = NULL;
	} else {
		snprintf(a.s[1], sizeof(a.s[1]), "tcp-listen:127.0.0.1:%d", port);
		snprintf(a.s[2], sizeof(a.s[2]), "file:%s", out_path);
		a.argv[0] = bringcat;
		a.argv[1] = "-q";
		a.argv[2] = "-i";
		a.argv[3] = a.s[1];
		a.argv[4] = "-o";
		a.argv[5] = a.s[2];
		a.argv[6] = NULL;
	}
	start(&rx, a.argv, false, "rx");
	if (!wait_listening(&rx, port)) {
		stop(&rx);
		return -1;
	}
	t0 = now();
	for (i = 0; i < CLIENTS; i++) {
		cl[i] = (struct client){ .port = port, .id = i, .buf = bufs[i],
					 .len = (size_t)lines * CLIENT_LINE };
		pthread_create(&th[i], NULL, client_run, &cl[i]);
	}
	end = t0 + 60 + want / 5e6;
	while (now() < end) {
		if (file_size(out_path) >= (off_t)want) {
			t1 = now();
			break;
		}
		sleep_ms(1);
	}
	for (i = 0; i < CLIENTS; i++) {
		pthread_join(th[i], NULL);
		err = err ? err : cl[i].err;
	}
	sleep_ms(50); /* anything beyond the expected bytes shows up */
	stop(&rx);
	fd = open(out_path, O_RDONLY);
	len = file_size(out_path);
	if (fd >= 0 && len)
		out = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (fd >= 0)
		close(fd);
	if (!t1 || err || len != want || out == MAP_FAILED) {
		fprintf(stderr, "io_bench: %u clients into %s: %zu of %zu bytes%s%s\n",
			CLIENTS, socat ? "socat" : "bringcat", len, want,
			err ? ", client: " : "", err ? strerror(err) : "");
		if (out != MAP_FAILED)
			munmap(out, len);
		return -1;
	}
	bad = check_client_output(out, len, lines, !socat);
	munmap(out, len);
	unlink(out_path);
	if (!socat && bad) {
		fprintf(stderr, "io_bench: clients into bringcat: a line torn, lost or out of order\n");
		return -1;
	}
	*torn = bad;
	return (double)CLIENTS * lines / (t1 - t0);
}

/* ---- report ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median, min and max of @n values (sorted in place). */
static double median(double *v, int n, double *lo, double *hi)
{
	qsort(v, n, sizeof(*v), cmp_double);
	*lo = v[0];
	*hi = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct pair_stats {
	bool ran;
	double mbps, lo, hi; /* median, min, max (best) MB/s */
	double cpu_per_mb; /* median CPU ms per MB, both processes */
	double faults_per_mb; /* median page faults per MB, both processes */
	double touch; /* median first 64 MiB / second 64 MiB, or -1 */
	double calls_per_mb, misses_per_mb; /* -1: not counted */
};

static void fmt_count(char *buf, size_t len, double v)
{
	if (v < 0)
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, v < 10 ? "%.2f" : "%.0f", v);
}

static const char *verdict(double v, double target, bool at_most)
{
	if (isnan(v) || v < 0)
		return "n/a";
	return (at_most ? v <= target : v >= target) ? "PASS" : "MISS";
}

static void make_input(size_t mib)
{
	size_t lines = (mib << 20) / LINE_LEN, i, n = 0;
	char *buf = malloc(1 << 20), x[81];
	int fd = open(in_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	memset(x, 'x', 80);
	x[80] = '\0';
	for (i = 0; fd >= 0 && buf && i < lines; i++) {
		n += snprintf(buf + n, LINE_LEN + 1, "%018zu %s\n", i, x);
		if (n > (1 << 20) - LINE_LEN - 1 || i == lines - 1) {
			if (write(fd, buf, n) != (ssize_t)n)
				break;
			n = 0;
		}
	}
	/* Clean and cached: no writeback of it during the runs. */
	if (fd < 0 || i < lines || fdatasync(fd)) {
		fprintf(stderr, "io_bench: cannot write %s: %s\n", in_path,
			strerror(errno));
		exit(1);
	}
	close(fd);
	free(buf);
	in_size = lines * LINE_LEN;
}

/*
 * tail: -> file ring -> file:, one bringcat, checkpointed (the source
 * commits a read's lines as one record with its mark, the sink stores
 * its output's length with each shift) or not (--no-checkpoint): MB/s
 * from its start until the output is whole, or -1.
 */
static double run_tail(bool ckpt)
{
	char ring[PATH_MAX + 16], ring_path[PATH_MAX], src[PATH_MAX + 8],
		sink[PATH_MAX + 8];
	const char *argv[] = { bringcat, ckpt ? "-q" : "--no-checkpoint",
			       "-b", ring, "-i", src, "--tail-from", "start",
			       "-o", sink, NULL };
	struct proc p;
	double t0, t = -1;

	snprintf(ring_path, sizeof(ring_path), "%s.ring", out_path);
	snprintf(ring, sizeof(ring), "file:%s:64M", ring_path);
	snprintf(src, sizeof(src), "tail:%s", in_path);
	snprintf(sink, sizeof(sink), "file:%s", out_path);
	unlink(ring_path);
	unlink(out_path);
	t0 = now();
	start(&p, argv, false, "tail");
	while (file_size(out_path) < (off_t)in_size && now() - t0 < 300)
		sleep_ms(1);
	if (file_size(out_path) == (off_t)in_size)
		t = now() - t0;
	stop(&p);
	if (t > 0 && !same_as_input(out_path))
		t = -1;
	unlink(ring_path);
	unlink(out_path);
	return t > 0 ? in_size / 1e6 / t : -1;
}

/*
 * Two variants, @run(0, @arg) and @run(1, @arg), interleaved for @rounds
 * rounds (a failed run, < 0, fails the bench): the median (min-max) of
 * each printed as a row named @names[i], with @prec decimals. Returns
 * the ratio of the first median to the second, or NAN.
 */
static double two_way(unsigned int rounds, double (*run)(int i, void *arg),
		      void *arg, const char *const names[2], int prec)
{
	double v[2][MAX_ROUNDS], med[2] = { -1, -1 }, lo[2], hi[2];
	unsigned int r, k[2] = { 0, 0 };
	int i;

	for (r = 0; r < rounds; r++) {
		for (i = 0; i < 2; i++) {
			double x = run(i, arg);

			if (x < 0)
				failed = 1;
			else
				v[i][k[i]++] = x;
		}
	}
	for (i = 0; i < 2; i++) {
		if (!k[i])
			continue;
		med[i] = median(v[i], (int)k[i], &lo[i], &hi[i]);
		printf("  %-26s %9.*f   (%.0f-%.0f)\n", names[i], prec, med[i],
		       lo[i], hi[i]);
	}
	return med[0] > 0 && med[1] > 0 ? med[0] / med[1] : NAN;
}

static double tail_run(int i, void *arg)
{
	return run_tail(i == 0);
}

static void bench_tail_checkpoint(unsigned int rounds)
{
	static const char *const names[] = { "checkpointed",
					     "--no-checkpoint" };
	double ratio;

	printf("\n  tail: -> file ring -> file:, one bringcat, MB/s (median, min-max)\n");
	ratio = two_way(rounds, tail_run, NULL, names, 1);
	printf("  checkpoint vs none:         %.2fx (target >= 0.95) %s\n",
	       ratio, verdict(ratio, 0.95, false));
}

/*
 * -f syslog against -f lines: the input's first @mib MiB of lines (100
 * bytes with the LF), and the same messages octet-counted ("99 " and
 * the 99 bytes), each shipped file: -> tcp: -> tcp-listen: -> file: by
 * a bringcat pair in its framing; the output must be its input. Lines
 * go into the ring as chunk records, straight from the socket; syslog
 * frames through staging, a copy each. Messages/s of each, or -1.
 */
static double run_framing(bool syslog, const char *input, size_t size,
			  size_t msgs)
{
	char src[PATH_MAX + 8], sink[PATH_MAX + 8], tcp[64], listen[64];
	const char *f = syslog ? "syslog" : "lines";
	const char *rxv[] = { bringcat, "-q", "-f", f, "-i", listen, "-o",
			      sink, NULL };
	const char *txv[] = { bringcat, "-q", "-f", f, "-i", src, "-o", tcp,
			      NULL };
	int port = free_port();
	struct proc rx, tx;
	double t0, t = -1;

	snprintf(src, sizeof(src), "file:%s", input);
	snprintf(sink, sizeof(sink), "file:%s", out_path);
	snprintf(tcp, sizeof(tcp), "tcp:127.0.0.1:%d", port);
	snprintf(listen, sizeof(listen), "tcp-listen:127.0.0.1:%d", port);
	unlink(out_path);
	start(&rx, rxv, false, "rx");
	if (!wait_listening(&rx, port)) {
		stop(&rx);
		return -1;
	}
	t0 = now();
	start(&tx, txv, false, "tx");
	while (file_size(out_path) < (off_t)size && now() - t0 < 120) {
		if (reap(&tx, 0) && tx.rc)
			break;
		sleep_ms(1);
	}
	if (file_size(out_path) == (off_t)size)
		t = now() - t0;
	if (!reap(&tx, 10000))
		stop(&tx);
	stop(&rx);
	if (t > 0 && !same_file(out_path, input, size)) {
		fprintf(stderr, "io_bench: -f %s: OUTPUT DIFFERS from the input\n",
			f);
		t = -1;
	}
	unlink(out_path);
	return t > 0 ? msgs / t : -1;
}

/*
 * The input's first @msgs lines into @lines, and the same messages as
 * octet-counted frames into @frames; false when they cannot be written.
 */
static bool make_framing_inputs(const char *lines, const char *frames,
				size_t msgs)
{
	FILE *in = fopen(in_path, "r"), *lf = fopen(lines, "w"),
	     *sf = fopen(frames, "w");
	char line[LINE_LEN];
	size_t i;
	bool ok;

	for (i = 0; in && lf && sf && i < msgs; i++) {
		if (fread(line, LINE_LEN, 1, in) != 1)
			break;
		fwrite(line, LINE_LEN, 1, lf);
		fprintf(sf, "%d ", LINE_LEN - 1);
		fwrite(line, LINE_LEN - 1, 1, sf);
	}
	ok = i == msgs;
	if (in)
		fclose(in);
	if (!lf || fclose(lf))
		ok = false;
	if (!sf || fclose(sf))
		ok = false;
	if (!ok)
		fprintf(stderr, "io_bench: cannot write %s, %s\n", lines, frames);
	return ok;
}

/* bench_syslog()'s two inputs: [0] lines, [1] frames. */
struct framing_inputs {
	char path[2][PATH_MAX];
	size_t size[2], msgs;
};

static double framing_run(int i, void *arg)
{
	struct framing_inputs *in = arg;

	/* syslog first: two_way() gives syslog / lines. */
	return run_framing(!i, in->path[!i], in->size[!i], in->msgs);
}

static void bench_syslog(unsigned int rounds, unsigned int mib)
{
	static const char *const names[] = { "-f syslog (octet counted)",
					     "-f lines" };
	struct framing_inputs in = { .msgs = ((size_t)mib << 20) / LINE_LEN };
	double ratio;

	snprintf(in.path[0], sizeof(in.path[0]), "%s.lines", out_path);
	snprintf(in.path[1], sizeof(in.path[1]), "%s.syslog", out_path);
	in.size[0] = in.msgs * LINE_LEN;
	/* "99 " and the line but its LF */
	in.size[1] = in.msgs * (LINE_LEN + 2);
	if (!make_framing_inputs(in.path[0], in.path[1], in.msgs)) {
		failed = 1;
		goto out;
	}
	printf("\n  -f syslog vs -f lines: %zu messages of 99 bytes, file: -> tcp -> file:,\n  messages/s (median, min-max)\n",
	       in.msgs);
	ratio = two_way(rounds, framing_run, &in, names, 0);
	printf("  syslog vs lines:            %.2fx (staging and a copy per message; no target)\n",
	       ratio);
out:
	unlink(in.path[0]);
	unlink(in.path[1]);
}

static unsigned int env_uint(const char *name, unsigned int def)
{
	const char *s = getenv(name);

	return s && atoi(s) > 0 ? (unsigned int)atoi(s) : def;
}

int main(void)
{
	const char *out = getenv("BRING_OUT"), *dir = getenv("BENCH_DIR");
	const char *json = getenv("BENCH_JSON");
	bool quick = getenv("BENCH_QUICK") && *getenv("BENCH_QUICK");
	unsigned int mib = env_uint("BENCH_IO_MIB", quick ? 160 : 512);
	unsigned int rounds = env_uint("BENCH_IO_ROUNDS", 3);
	unsigned int lines = env_uint("BENCH_IO_LINES", quick ? 20000 : 200000);
	double secs[NR_PAIRS][MAX_ROUNDS], cpu[NR_PAIRS][MAX_ROUNDS];
	double flt[NR_PAIRS][MAX_ROUNDS], touch[NR_PAIRS][MAX_ROUNDS];
	struct pair_stats ps[NR_PAIRS] = { 0 };
	double cl_rate[2][MAX_ROUNDS], cl_med[2] = { -1, -1 }, lo, hi, mb;
	double hop_acks = -1, scrapes = -1;
	long torn[2] = { 0 };
	char *bufs[CLIENTS];
	struct result res;
	unsigned int r;
	int i, k;
	FILE *js;

	if (rounds > MAX_ROUNDS)
		rounds = MAX_ROUNDS;
	if (!out)
		out = ".";
	if (!dir)
		dir = "/var/tmp";
	signal(SIGPIPE, SIG_IGN);
	snprintf(bringcat, sizeof(bringcat), "%s/io/bringcat", out);
	snprintf(relay, sizeof(relay), "%s/bench/io/relay", out);
	snprintf(in_path, sizeof(in_path), "%s/io_bench.%d.in", dir, (int)getpid());
	snprintf(out_path, sizeof(out_path), "%s/io_bench.%d.out", dir,
		 (int)getpid());
	snprintf(log_path, sizeof(log_path), "%s/io_bench.%d.log", dir,
		 (int)getpid());
	snprintf(ring_path, sizeof(ring_path), "%s/io_bench.%d.ring", dir,
		 (int)getpid());
	if (access(bringcat, X_OK) || access(relay, X_OK)) {
		fprintf(stderr, "io_bench: %s or %s not built (BRING_OUT?)\n",
			bringcat, relay);
		return 1;
	}
	have_socat = have_cmd("socat");
	/* perf needs the tracepoint (tracefs) as well. */
	have_perf = !system("perf stat -x, -e raw_syscalls:sys_enter -o /dev/null -- true >/dev/null 2>&1");
	make_input(mib);
	mb = in_size / 1e6;

	printf("bench/io: %u MiB of %d-byte lines (%.1f MB, page-cached) over TCP loopback into a file in %s\n",
	       mib, LINE_LEN, mb, dir);
	printf("%u rounds, pairs interleaved; median (min-max) of the rounds\n",
	       rounds);
	if (!have_socat)
		printf("socat not installed: its pairs are left out\n");
	for (r = 0; r < rounds; r++) {
		for (i = 0; i < NR_PAIRS; i++) {
			if (pairs[i].socat && !have_socat)
				continue;
			if (run_pair(i, false, &res)) {
				failed = 1;
				secs[i][r] = NAN;
				continue;
			}
			secs[i][r] = res.secs;
			cpu[i][r] = res.cpu;
			flt[i][r] = res.faults;
			touch[i][r] = res.first > 0 ? res.first / res.second : -1;
			if (i == P_BRINGCAT_HOP)
				hop_acks = res.acks;
			if (i == P_BRINGCAT_METRICS)
				scrapes = res.scrapes;
		}
	}
	/* System calls: one untimed run of each pair under perf stat. */
	for (i = 0; i < NR_PAIRS; i++) {
		if (pairs[i].socat && !have_socat)
			continue;
		ps[i].ran = true;
		ps[i].calls_per_mb = ps[i].misses_per_mb = -1;
		if (have_perf && run_pair(i, true, &res)) {
			failed = 1;
		} else if (have_perf) {
			if (res.calls >= 0)
				ps[i].calls_per_mb = res.calls / mb;
			if (res.misses >= 0)
				ps[i].misses_per_mb = res.misses / mb;
		}
		for (r = 0, k = 0; r < rounds; r++)
			if (!isnan(secs[i][r])) {
				secs[i][k] = mb / secs[i][r];
				cpu[i][k] = cpu[i][r] * 1e3 / mb;
				flt[i][k] = flt[i][r] / mb;
				touch[i][k++] = touch[i][r];
			}
		if (!k) {
			ps[i].ran = false;
			continue;
		}
		ps[i].mbps = median(secs[i], k, &ps[i].lo, &ps[i].hi);
		ps[i].cpu_per_mb = median(cpu[i], k, &lo, &hi);
		ps[i].faults_per_mb = median(flt[i], k, &lo, &hi);
		ps[i].touch = touch[i][0] > 0 ? median(touch[i], k, &lo, &hi) :
						-1;
	}
	printf("\n  %-26s %8s %13s %9s %9s %9s %11s %9s\n", "pair", "MB/s",
	       "(min-best)", "CPU ms/MB", "faults/MB", "syscalls/MB",
	       "misses/MB", "1st/2nd");
	for (i = 0; i < NR_PAIRS; i++) {
		char range[32], calls[32], misses[32], tt[32];

		if (!ps[i].ran)
			continue;
		snprintf(range, sizeof(range), "(%.0f-%.0f)", ps[i].lo, ps[i].hi);
		fmt_count(calls, sizeof(calls), ps[i].calls_per_mb);
		fmt_count(misses, sizeof(misses), ps[i].misses_per_mb);
		fmt_count(tt, sizeof(tt), ps[i].touch);
		printf("  %-26s %8.1f %13s %9.2f %9.1f %11s %9s %9s\n",
		       pairs[i].name, ps[i].mbps, range, ps[i].cpu_per_mb,
		       ps[i].faults_per_mb, calls, misses, tt);
	}
	printf("  (1st/2nd: a fresh pair's first %d MiB over its second, median)\n",
	       TOUCH_MIB);
	if (!have_perf)
		printf("  (perf stat -e raw_syscalls:sys_enter failed: system calls not counted;\n"
		       "   install linux-perf, mount tracefs on /sys/kernel/tracing)\n");
	else if (ps[P_BRINGCAT].misses_per_mb < 0)
		printf("  (cache-misses: no hardware counters here, e.g. in a VM)\n");

	/* 16 clients. */
	for (i = 0; i < CLIENTS; i++) {
		bufs[i] = client_lines(i, lines);
		if (!bufs[i])
			return 1;
	}
	for (r = 0, k = 0; r < rounds; r++) {
		for (i = 0; i < 2; i++) {
			if (i && !have_socat)
				continue;
			cl_rate[i][r] = run_clients(i, bufs, lines, &torn[i]);
			if (cl_rate[i][r] < 0)
				failed = 1;
		}
	}
	for (i = 0; i < 2; i++) {
		for (r = 0, k = 0; r < rounds; r++)
			if (cl_rate[i][r] >= 0 && (!i || have_socat))
				cl_rate[i][k++] = cl_rate[i][r];
		if (k)
			cl_med[i] = median(cl_rate[i], k, &lo, &hi);
	}
	printf("\n  %d TCP clients x %u lines of %d bytes into one receiver, messages/s (median)\n",
	       CLIENTS, lines, CLIENT_LINE);
	printf("  %-26s %12.0f\n", "bringcat", cl_med[0]);
	if (have_socat)
		printf("  %-26s %12.0f   (%ld of %u lines torn by interleaved writes)\n",
		       "socat TCP-LISTEN,fork", cl_med[1], torn[1],
		       CLIENTS * lines);

	{
		const struct pair_stats *b = &ps[P_BRINGCAT],
					*n = &ps[P_BRINGCAT_NOURING],
					*s = &ps[P_SOCAT], *rl = &ps[P_RELAY],
					*sb = &ps[P_SOCAT_B];
		/* Issue #12: best of the rounds against best, same run. */
		double t1 = b->hi / rl->hi, t1n = n->hi / rl->hi;
		double t2 = have_socat ? b->hi / s->hi : NAN;
		double t2n = have_socat ? n->hi / s->hi : NAN;
		double t5 = have_socat ? b->hi / sb->hi : NAN;
		double t5n = have_socat ? n->hi / sb->hi : NAN;
		double t3 = b->calls_per_mb >= 0 && s->calls_per_mb > 0 ?
				    b->calls_per_mb / s->calls_per_mb : NAN;
		double t3n = n->calls_per_mb >= 0 && s->calls_per_mb > 0 ?
				     n->calls_per_mb / s->calls_per_mb : NAN;
		double t4 = have_socat ? cl_med[0] / cl_med[1] : NAN;
		const struct pair_stats *h = &ps[P_BRINGCAT_HOP];
		double thop = h->mbps / b->mbps;
		double tmet = ps[P_BRINGCAT_METRICS].mbps / b->mbps;

		printf("\n  targets (reported, not enforced; best of %u rounds each)\n",
		       rounds);
		printf("  bringcat vs plain relay:    %.2fx (target >= 1.0) %s   [--no-uring %.2fx %s]\n",
		       t1, verdict(t1, 1.0, false), t1n,
		       verdict(t1n, 1.0, false));
		printf("  bringcat vs socat -b 262144: %.2fx (target >= 1.1) %s   [--no-uring %.2fx %s]\n",
		       t5, verdict(t5, 1.1, false), t5n,
		       verdict(t5n, 1.1, false));
		printf("  bringcat vs socat default:  %.2fx (target >= 3.0) %s   [--no-uring %.2fx %s]\n",
		       t2, verdict(t2, 3.0, false), t2n,
		       verdict(t2n, 3.0, false));
		printf("  first 64 MiB vs second:     %.2fx (target <= 1.2) %s   [--no-uring %.2fx %s]\n",
		       b->touch, verdict(b->touch, 1.2, true), n->touch,
		       verdict(n->touch, 1.2, true));
		printf("  syscalls/MB vs socat:       %.3fx (target <= 0.25) %s   [--no-uring %.3fx %s]\n",
		       t3, verdict(t3, 0.25, true), t3n,
		       verdict(t3n, 0.25, true));
		printf("  16 clients, msgs/s vs socat: %.2fx\n", t4);
		printf("  acked bring: hop vs tcp: hop: %.2fx (target >= 0.9) %s   [%.2f ACK frames/MB]\n",
		       thop, verdict(thop, 0.9, false),
		       hop_acks >= 0 ? hop_acks / mb : NAN);
		printf("  --metrics scraped 10/s vs none: %.2fx (target >= 0.95) %s   [%.0f scrapes in the last round]\n",
		       tmet, verdict(tmet, 0.95, false), scrapes);
		printf("  (bringcat -b mem:8M vs plain relay: %.2fx: the default 64 MiB ring leaves the caches)\n",
		       ps[P_BRINGCAT_8M].mbps / rl->mbps);
		printf("  (receiver with a 64 MiB file ring vs memory ring: %.2fx)\n",
		       ps[P_BRINGCAT_FILE].mbps / b->mbps);

		js = json ? fopen(json, "w") : NULL;
		if (js) {
			fprintf(js, "{\n  \"bench\": \"io_bench\",\n  \"mib\": %u,\n  \"bytes\": %zu,\n  \"rounds\": %u,\n  \"pairs\": [\n",
				mib, in_size, rounds);
			for (i = 0, k = 0; i < NR_PAIRS; i++) {
				if (!ps[i].ran)
					continue;
				fprintf(js, "%s    { \"pair\": \"%s\", \"mb_per_s\": %.1f, \"min\": %.1f, \"max\": %.1f, \"cpu_ms_per_mb\": %.3f, \"faults_per_mb\": %.2f, \"syscalls_per_mb\": %.2f, \"cache_misses_per_mb\": %.1f, \"first_vs_second_64mib\": %.3f }",
					k++ ? ",\n" : "", pairs[i].key, ps[i].mbps,
					ps[i].lo, ps[i].hi, ps[i].cpu_per_mb,
					ps[i].faults_per_mb, ps[i].calls_per_mb,
					ps[i].misses_per_mb, ps[i].touch);
			}
			fprintf(js, "\n  ],\n  \"clients\": { \"clients\": %d, \"lines\": %u, \"bringcat_msgs_per_s\": %.0f, \"socat_msgs_per_s\": %.0f, \"socat_torn_lines\": %ld },\n",
				CLIENTS, lines, cl_med[0], cl_med[1], torn[1]);
			fprintf(js, "  \"targets\": { \"vs_relay\": %.3f, \"vs_socat\": %.3f, \"vs_socat_b262144\": %.3f, \"first_vs_second_64mib\": %.3f, \"syscalls_vs_socat\": %.4f, \"clients_vs_socat\": %.3f, \"hop_vs_tcp\": %.3f, \"hop_acks_per_mb\": %.3f, \"metrics_vs_none\": %.3f },\n  \"failed\": %d\n}\n",
				isnan(t1) ? -1 : t1, isnan(t2) ? -1 : t2,
				isnan(t5) ? -1 : t5, b->touch,
				isnan(t3) ? -1 : t3, isnan(t4) ? -1 : t4,
				isnan(thop) ? -1 : thop,
				hop_acks >= 0 ? hop_acks / mb : -1,
				isnan(tmet) ? -1 : tmet, failed);
			fclose(js);
		}
	}
	bench_tail_checkpoint(rounds);
	bench_syslog(rounds, mib / 4);
	for (i = 0; i < CLIENTS; i++)
		free(bufs[i]);
	unlink(in_path);
	unlink(ring_path);
	if (!failed)
		unlink(log_path);
	else
		fprintf(stderr, "io_bench: FAILED (process logs: %s)\n", log_path);
	return failed;
}
