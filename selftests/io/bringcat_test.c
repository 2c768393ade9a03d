// SPDX-License-Identifier: GPL-2.0
/*
 * bringcat end to end, in both io modes (io_uring and --no-uring):
 * file -> bringcat -> TCP loopback -> bringcat -> file, byte for byte;
 * 16 clients into one tcp-listen; SIGTERM drains; socat as a peer;
 * clear errors for bad endpoints; lines in chunk records, through
 * bringcat (reads cut anywhere, each oversize mode) and through the
 * library (what the ring holds).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bring.h"
#include "bring_io.h"
#include "kselftest_harness.h"

#define MAX_ARGS 32

static char bringcat[PATH_MAX + 32];

static void find_bringcat(void)
{
	const char *out = getenv("BRING_OUT");
	char exe[PATH_MAX - 32];
	ssize_t n;

	if (bringcat[0])
		return;
	if (out) {
		snprintf(bringcat, sizeof(bringcat), "%s/io/bringcat", out);
		return;
	}
	/* selftests/io/bringcat_test -> io/bringcat */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(bringcat, sizeof(bringcat), "%s/../../io/bringcat", exe);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* Start bringcat with stdin from @in (or /dev/null) and stderr to @err. */
static pid_t spawn(const char *in, const char *err, const char **args)
{
	const char *argv[MAX_ARGS + 2] = { bringcat };
	pid_t pid;
	int i, fd;

	for (i = 0; args[i]; i++)
		argv[i + 1] = args[i];
	pid = fork();
	if (pid)
		return pid;
	fd = open(in ? in : "/dev/null", O_RDONLY);
	dup2(fd, 0);
	fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dup2(fd, 2);
	execv(bringcat, (char **)argv);
	_exit(127);
}

/* Exit code, or -1 after @ms milliseconds (then it is killed). */
static int wait_rc(pid_t pid, int ms)
{
	uint64_t end = now_ms() + ms;
	int st;

	while (now_ms() < end) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) :
					       128 + WTERMSIG(st);
		usleep(5000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static char *slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY);

	*len = 0;
	if (fd < 0 || fstat(fd, &st))
		return NULL;
	buf = malloc(st.st_size + 1);
	*len = read(fd, buf, st.st_size) == st.st_size ? st.st_size : 0;
	buf[*len] = '\0';
	close(fd);
	return buf;
}

static int spew(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n = write(fd, buf, len);

	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : st.st_size;
}

/* The port a "tcp-listen:...:0" bringcat printed, waiting up to 5 s. */
static int wait_port(const char *err)
{
	uint64_t end = now_ms() + 5000;
	size_t len;

	while (now_ms() < end) {
		char *s = slurp(err, &len), *p = s ? strstr(s, "port ") : NULL;
		int port = p ? atoi(p + 5) : 0;

		free(s);
		if (port)
			return port;
		usleep(5000);
	}
	return -1;
}

static bool wait_size(const char *path, off_t size, int ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		if (file_size(path) >= size)
			return true;
		usleep(5000);
	}
	return false;
}

/* Wait until process @pid's file offset in @file reaches @bytes. */
static bool wait_read(pid_t pid, const char *file, long long bytes, int ms)
{
	uint64_t end = now_ms() + ms;
	char path[PATH_MAX], link[PATH_MAX], line[128];
	long long pos;
	ssize_t n;
	FILE *f;
	int fd;

	while (now_ms() < end) {
		for (fd = 3; fd < 64; fd++) {
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, file))
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d",
				 (int)pid, fd);
			f = fopen(path, "r");
			pos = 0;
			while (f && fgets(line, sizeof(line), f))
				sscanf(line, "pos: %lld", &pos);
			if (f)
				fclose(f);
			if (pos >= bytes)
				return true;
		}
		usleep(5000);
	}
	return false;
}

/* A free loopback port (bind to 0, read back, close). */
static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static bool have_uring(void)
{
	struct io_uring_probe *probe;
	struct io_uring ring;
	bool ok;

	if (io_uring_queue_init(4, &ring, 0))
		return false;
	probe = io_uring_get_probe_ring(&ring);
	ok = probe && io_uring_opcode_supported(probe, 51);
	io_uring_free_probe(probe);
	io_uring_queue_exit(&ring);
	return ok;
}

FIXTURE(io)
{
	char dir[64];
	char path[8][PATH_MAX];
	const char *mode;
};

FIXTURE_VARIANT(io)
{
	bool no_uring;
};

FIXTURE_VARIANT_ADD(io, uring) { .no_uring = false, };
FIXTURE_VARIANT_ADD(io, fallback) { .no_uring = true, };

enum { IN, OUT, ERR1, ERR2, OUT2, IN2, SCRATCH, FIFO };

FIXTURE_SETUP(io)
{
	static const char *names[] = { "in", "out", "err1", "err2", "out2",
				       "in2", "scratch", "fifo" };
	int i;

	find_bringcat();
	if (access(bringcat, X_OK))
		SKIP(return, "%s not built", bringcat);
	if (!variant->no_uring && !have_uring())
		SKIP(return, "io_uring with FUTEX_WAIT unavailable");
	self->mode = variant->no_uring ? "--no-uring" : "--quiet";
	strcpy(self->dir, "/tmp/bringcat_test.XXXXXX");
	ASSERT_NE_NULL(mkdtemp(self->dir));
	for (i = 0; i < 8; i++)
		snprintf(self->path[i], PATH_MAX, "%s/%s", self->dir, names[i]);
}

FIXTURE_TEARDOWN(io)
{
	char cmd[128];

	if (self->dir[0] && strncmp(self->dir, "/tmp/bringcat_test.", 19) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
		if (system(cmd) != 0)
			TH_LOG("could not remove %s", self->dir);
	}
}

/*
 * Ship IN to a receiving bringcat over TCP, wait for @want bytes in OUT,
 * stop the receiver; returns the sender's exit code (0) or <0.
 */
static int pipeline(struct __test_metadata *_metadata, FIXTURE_DATA(io) *self,
		    const char *framing, const char *max, off_t want)
{
	char fin[PATH_MAX + 8], fout[PATH_MAX + 8], tcp[64];
	const char *rx[] = { self->mode, "-f", framing, "--max-msg", max,
			     "-i", "tcp-listen:127.0.0.1:0", "-o", fout, NULL };
	const char *tx[] = { self->mode, "-f", framing, "--max-msg", max,
			     "-i", fin, "-o", tcp, NULL };
	pid_t rxp, txp;
	int port, rc;

	snprintf(fin, sizeof(fin), "file:%s", self->path[IN]);
	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	rxp = spawn(NULL, self->path[ERR1], rx);
	port = wait_port(self->path[ERR1]);
	if (port < 0) {
		wait_rc(rxp, 0);
		return -100;
	}
	snprintf(tcp, sizeof(tcp), "tcp:127.0.0.1:%d", port);
	txp = spawn(NULL, self->path[ERR2], tx);
	rc = wait_rc(txp, 30000);
	if (rc) {
		TH_LOG("sender exited %d", rc);
		wait_rc(rxp, 0);
		return -101;
	}
	if (!wait_size(self->path[OUT], want, 10000))
		TH_LOG("receiver wrote %ld of %ld bytes",
		       (long)file_size(self->path[OUT]), (long)want);
	kill(rxp, SIGTERM);
	rc = wait_rc(rxp, 10000);
	return rc ? -102 : 0;
}

static void expect_file(struct __test_metadata *_metadata, const char *path,
			const char *want, size_t want_len)
{
	size_t len, i;
	char *got = slurp(path, &len);

	ASSERT_NE_NULL(got);
	if (len != want_len || memcmp(got, want, len)) {
		for (i = 0; i < len && i < want_len && got[i] == want[i]; i++)
			;
		TH_LOG("%s: %zu bytes, want %zu; first difference at %zu",
		       path, len, want_len, i);
	}
	EXPECT_EQ(want_len, len);
	EXPECT_EQ(0, memcmp(got, want, len < want_len ? len : want_len));
	free(got);
}

/* Lines of every kind, the final one without a newline. */
TEST_F(io, lines_roundtrip)
{
	const size_t max = 1000;
	size_t cap = 4 << 20, n = 0, w = 0, i, k;
	char *in = malloc(cap), *want = malloc(cap);

	/* empty lines, short lines, a line of exactly max, max + 1, 3.5 max */
	for (i = 0; i < 20000; i++)
		n += sprintf(in + n, "line %zu %.*s\n", i, (int)(i % 50),
			     "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
	n += sprintf(in + n, "\n\n");
	memset(in + n, 'M', max);
	n += max;
	in[n++] = '\n';
	memset(in + n, 'O', max + 1);
	n += max + 1;
	in[n++] = '\n';
	memset(in + n, 'H', 3 * max + max / 2);
	n += 3 * max + max / 2;
	in[n++] = '\n';
	n += sprintf(in + n, "no final newline");

	/* Expected: every line, oversize ones split into max-byte pieces. */
	for (i = 0; i < n;) {
		char *nl = memchr(in + i, '\n', n - i);
		size_t len = nl ? (size_t)(nl - in) - i : n - i;

		for (k = 0; k == 0 || k < len; k += max) {
			size_t piece = len - k < max ? len - k : max;

			memcpy(want + w, in + i + k, piece);
			w += piece;
			want[w++] = '\n';
		}
		i += len + 1;
	}
	ASSERT_EQ(0, spew(self->path[IN], in, n));
	ASSERT_EQ(0, pipeline(_metadata, self, "lines", "1000", w));
	expect_file(_metadata, self->path[OUT], want, w);
	free(in);
	free(want);
}

TEST_F(io, u32be_roundtrip)
{
	size_t cap = 8 << 20, n = 0, i;
	char *in = malloc(cap);

	for (i = 0; i < 30000; i++) {
		uint32_t len = i == 7 ? 0 : i == 8 ? 4096 : (i * 37) % 300;
		uint32_t be = htonl(len);

		memcpy(in + n, &be, 4);
		n += 4;
		memset(in + n, 'a' + i % 26, len);
		n += len;
	}
	ASSERT_EQ(0, spew(self->path[IN], in, n));
	ASSERT_EQ(0, pipeline(_metadata, self, "u32be", "4096", n));
	expect_file(_metadata, self->path[OUT], in, n);
	free(in);
}

TEST_F(io, raw_roundtrip)
{
	size_t n = 6 << 20, i;
	unsigned char *in = malloc(n);
	uint32_t x = 12345;

	for (i = 0; i < n; i++) {
		x = x * 1103515245 + 12345;
		in[i] = x >> 24;
	}
	ASSERT_EQ(0, spew(self->path[IN], in, n));
	ASSERT_EQ(0, pipeline(_metadata, self, "raw", "65536", n));
	expect_file(_metadata, self->path[OUT], (char *)in, n);
	free(in);
}

/* An empty input makes an empty output and a clean exit. */
TEST_F(io, empty_input)
{
	ASSERT_EQ(0, spew(self->path[IN], "", 0));
	ASSERT_EQ(0, pipeline(_metadata, self, "lines", "1000", 0));
	EXPECT_EQ(0, file_size(self->path[OUT]));
}

/* Two sources fan in, two sinks fan out. */
TEST_F(io, fan_in_fan_out)
{
	char a[PATH_MAX + 8], b[PATH_MAX + 8], o1[PATH_MAX + 8], o2[PATH_MAX + 8];
	const char *args[] = { self->mode, "-i", a, "-i", b, "-o", o1, "-o", o2,
			       NULL };
	size_t l1, l2;
	char *x, *y;

	snprintf(a, sizeof(a), "file:%s", self->path[IN]);
	snprintf(b, sizeof(b), "file:%s", self->path[IN2]);
	snprintf(o1, sizeof(o1), "file:%s", self->path[OUT]);
	snprintf(o2, sizeof(o2), "file:%s", self->path[OUT2]);
	ASSERT_EQ(0, spew(self->path[IN], "a1\na2\na3\n", 9));
	ASSERT_EQ(0, spew(self->path[IN2], "b1\nb2", 5));
	ASSERT_EQ(0, wait_rc(spawn(NULL, self->path[ERR1], args), 10000));
	x = slurp(self->path[OUT], &l1);
	y = slurp(self->path[OUT2], &l2);
	ASSERT_EQ(15, l1);
	ASSERT_EQ(l1, l2);
	EXPECT_EQ(0, memcmp(x, y, l1));
	/* Each source's order is kept. */
	EXPECT_NE_NULL(strstr(x, "a1"));
	EXPECT_TRUE(strstr(x, "a1") < strstr(x, "a2") &&
		    strstr(x, "a2") < strstr(x, "a3"));
	EXPECT_TRUE(strstr(x, "b1") < strstr(x, "b2"));
	free(x);
	free(y);
}

struct client {
	int port, id, lines;
	int err;
};

static void *client_run(void *arg)
{
	struct client *c = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(c->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char buf[65536];
	int fd = socket(AF_INET, SOCK_STREAM, 0), i;
	size_t n = 0;

	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		c->err = errno;
		return NULL;
	}
	for (i = 0; i < c->lines; i++) {
		n += sprintf(buf + n, "client %02d line %06d\n", c->id, i);
		if (n > sizeof(buf) - 64 || i == c->lines - 1) {
			if (write(fd, buf, n) != (ssize_t)n)
				c->err = errno;
			n = 0;
		}
	}
	close(fd);
	return NULL;
}

#define CLIENTS 16
#define CLIENT_LINES 20000
#define CLIENT_LINE_LEN 22

TEST_F(io, many_clients_into_one_listener)
{
	char fout[PATH_MAX + 8];
	const char *rx[] = { self->mode, "--buffer", "mem:1M", "-i",
			     "tcp-listen:127.0.0.1:0", "-o", fout, NULL };
	struct client cl[CLIENTS];
	pthread_t t[CLIENTS];
	int next[CLIENTS] = { 0 }, port, i, id, seq;
	off_t want = (off_t)CLIENTS * CLIENT_LINES * CLIENT_LINE_LEN;
	char *got, *p;
	size_t len;
	pid_t rxp;

	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	rxp = spawn(NULL, self->path[ERR1], rx);
	port = wait_port(self->path[ERR1]);
	ASSERT_GT(port, 0);
	for (i = 0; i < CLIENTS; i++) {
		cl[i] = (struct client){ .port = port, .id = i,
					 .lines = CLIENT_LINES };
		pthread_create(&t[i], NULL, client_run, &cl[i]);
	}
	for (i = 0; i < CLIENTS; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, cl[i].err);
	}
	EXPECT_TRUE(wait_size(self->path[OUT], want, 20000));
	kill(rxp, SIGTERM);
	ASSERT_EQ(0, wait_rc(rxp, 10000));
	got = slurp(self->path[OUT], &len);
	ASSERT_EQ(want, (off_t)len);
	/* Every line whole, each client's lines in order. */
	for (p = got; p < got + len; p += CLIENT_LINE_LEN) {
		/* "client DD line NNNNNN\n" (sscanf would strlen 7 MB) */
		ASSERT_EQ(0, memcmp(p, "client ", 7));
		ASSERT_EQ(0, memcmp(p + 9, " line ", 6));
		id = (p[7] - '0') * 10 + p[8] - '0';
		ASSERT_LT(id, CLIENTS);
		seq = (int)strtol(p + 15, NULL, 10);
		ASSERT_EQ('\n', p[CLIENT_LINE_LEN - 1]);
		ASSERT_EQ(next[id], seq);
		next[id]++;
	}
	for (i = 0; i < CLIENTS; i++)
		EXPECT_EQ(CLIENT_LINES, next[i]);
	free(got);
}

/*
 * SIGTERM while the ring holds a backlog (the receiver is stopped): the
 * sender stops reading, sends what it has, and exits 0; the receiver gets
 * a whole-line prefix of the input.
 */
TEST_F(io, sigterm_drains)
{
	char fin[PATH_MAX + 8], fout[PATH_MAX + 8], tcp[64];
	const char *rx[] = { self->mode, "-i", "tcp-listen:127.0.0.1:0", "-o",
			     fout, NULL };
	const char *tx[] = { self->mode, "--stats", "--buffer", "mem:4M", "-i",
			     fin, "-o", tcp, NULL };
	size_t n = 0, i, len, errlen;
	char *in = malloc(64 << 20), *got, *err, *p;
	long long out_bytes = -1;
	pid_t rxp, txp;
	int port;

	for (i = 0; n < (60 << 20); i++)
		n += sprintf(in + n, "%08zu the quick brown fox jumps over the lazy dog\n", i);
	ASSERT_EQ(0, spew(self->path[IN], in, n));
	snprintf(fin, sizeof(fin), "file:%s", self->path[IN]);
	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	rxp = spawn(NULL, self->path[ERR1], rx);
	port = wait_port(self->path[ERR1]);
	ASSERT_GT(port, 0);
	snprintf(tcp, sizeof(tcp), "tcp:127.0.0.1:%d", port);
	kill(rxp, SIGSTOP);
	txp = spawn(NULL, self->path[ERR2], tx);
	/* The sender fills the socket buffers and its ring, then waits. */
	ASSERT_TRUE(wait_read(txp, self->path[IN], 4 << 20, 10000));
	usleep(100 * 1000);
	kill(txp, SIGTERM);
	usleep(100 * 1000);
	kill(rxp, SIGCONT);
	ASSERT_EQ(0, wait_rc(txp, 20000));
	err = slurp(self->path[ERR2], &errlen);
	p = err ? strstr(err, "out ") : NULL;
	ASSERT_NE_NULL(p);
	p = strstr(p, "msgs ");
	ASSERT_NE_NULL(p);
	out_bytes = atoll(p + 5);
	TH_LOG("sender wrote %lld of %zu bytes before it stopped", out_bytes, n);
	EXPECT_GT(out_bytes, 0);
	EXPECT_LT(out_bytes, (long long)n);
	EXPECT_TRUE(wait_size(self->path[OUT], out_bytes, 10000));
	kill(rxp, SIGTERM);
	ASSERT_EQ(0, wait_rc(rxp, 10000));
	got = slurp(self->path[OUT], &len);
	EXPECT_EQ(out_bytes, (long long)len);
	EXPECT_EQ(0, memcmp(got, in, len));
	if (len)
		EXPECT_EQ('\n', got[len - 1]);
	free(in);
	free(got);
	free(err);
}

/* socat sends into bringcat, and receives from it. */
TEST_F(io, socat_peer)
{
	char fin[PATH_MAX + 8], fout[PATH_MAX + 8], tcp[64], sopen[PATH_MAX + 32],
		slisten[64], cmd[PATH_MAX * 2];
	const char *rx[] = { self->mode, "-i", "tcp-listen:127.0.0.1:0", "-o",
			     fout, NULL };
	const char *tx[] = { self->mode, "-i", fin, "-o", tcp, NULL };
	size_t n = 0, i, len;
	char *in = malloc(8 << 20);
	pid_t rxp, sp, txp;
	int port, rc, try;

	if (system("command -v socat >/dev/null 2>&1"))
		SKIP(return, "socat not installed");
	for (i = 0; n < (4 << 20); i++)
		n += sprintf(in + n, "socat line %zu\n", i);
	ASSERT_EQ(0, spew(self->path[IN], in, n));

	/* socat -> bringcat */
	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	rxp = spawn(NULL, self->path[ERR1], rx);
	port = wait_port(self->path[ERR1]);
	ASSERT_GT(port, 0);
	snprintf(cmd, sizeof(cmd), "socat -u OPEN:%s TCP:127.0.0.1:%d",
		 self->path[IN], port);
	ASSERT_EQ(0, system(cmd));
	EXPECT_TRUE(wait_size(self->path[OUT], n, 10000));
	kill(rxp, SIGTERM);
	ASSERT_EQ(0, wait_rc(rxp, 10000));
	expect_file(_metadata, self->path[OUT], in, n);

	/* bringcat -> socat */
	snprintf(fin, sizeof(fin), "file:%s", self->path[IN]);
	for (try = 0; try < 5; try++) {
		port = free_port();
		snprintf(slisten, sizeof(slisten),
			 "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr", port);
		snprintf(sopen, sizeof(sopen), "OPEN:%s,creat,trunc",
			 self->path[OUT2]);
		sp = fork();
		if (!sp) {
			execlp("socat", "socat", "-u", slisten, sopen, NULL);
			_exit(127);
		}
		usleep(200 * 1000);
		snprintf(tcp, sizeof(tcp), "tcp:127.0.0.1:%d", port);
		txp = spawn(NULL, self->path[ERR2], tx);
		rc = wait_rc(txp, 20000);
		if (!rc)
			break;
		kill(sp, SIGKILL);
		waitpid(sp, NULL, 0);
	}
	ASSERT_EQ(0, rc);
	ASSERT_EQ(0, wait_rc(sp, 10000)); /* socat ends at EOF */
	expect_file(_metadata, self->path[OUT2], in, n);
	free(in);
	(void)len;
}

/* Run bringcat with @args, expect exit code @rc and @msg on stderr. */
static void expect_error(struct __test_metadata *_metadata,
			 FIXTURE_DATA(io) *self, const char **args, int rc,
			 const char *msg)
{
	size_t len;
	char *err;

	EXPECT_EQ(rc, wait_rc(spawn(NULL, self->path[ERR1], args), 10000));
	err = slurp(self->path[ERR1], &len);
	ASSERT_NE_NULL(err);
	if (!strstr(err, msg))
		TH_LOG("stderr: %s (want \"%s\")", err, msg);
	EXPECT_NE_NULL(strstr(err, msg));
	/* One clear line first. */
	if (strncmp(err, "bringcat: ", 10))
		TH_LOG("stderr: %s", err);
	EXPECT_EQ(0, strncmp(err, "bringcat: ", 10));
	free(err);
}

TEST_F(io, errors)
{
	char listen_uri[64], out[PATH_MAX + 8], missing[PATH_MAX + 16],
		baddir[PATH_MAX + 16], tcp[64];
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t salen = sizeof(sa);
	int fd;

	snprintf(out, sizeof(out), "file:%s", self->path[OUT]);
	snprintf(missing, sizeof(missing), "file:%s/missing", self->dir);
	snprintf(baddir, sizeof(baddir), "file:%s/no/such/dir", self->dir);

	{
		const char *a[] = { self->mode, "-i", "bogus:1", "-o", out, NULL };

		expect_error(_metadata, self, a, 2, "unknown source type");
	}
	{
		const char *a[] = { self->mode, "-i", missing, "-o", "udpx:1", NULL };

		expect_error(_metadata, self, a, 1, "No such file or directory");
	}
	{
		const char *a[] = { self->mode, "-i", "-", "-o", "nothing", NULL };

		expect_error(_metadata, self, a, 2, "unknown sink type");
	}
	{
		const char *a[] = { self->mode, "-i", "tcp-listen:127.0.0.1", "-o",
				    out, NULL };

		expect_error(_metadata, self, a, 2, "bad address");
	}
	{
		const char *a[] = { self->mode, "-i", "tcp-listen:127.0.0.1:99999",
				    "-o", out, NULL };

		expect_error(_metadata, self, a, 2, "bad address");
	}
	{
		const char *a[] = { self->mode, "-i", "-", "-o",
				    "tcp:no-such-host.invalid:80", NULL };

		expect_error(_metadata, self, a, 1, "cannot resolve host");
	}
	{
		const char *a[] = { self->mode, "-i", "-", "-o", baddir, NULL };

		expect_error(_metadata, self, a, 1, "No such file or directory");
	}
	{
		const char *a[] = { self->mode, "--frobnicate", "-i", "-", "-o",
				    "-", NULL };

		expect_error(_metadata, self, a, 2, "unrecognized option");
	}
	{
		const char *a[] = { self->mode, "-f", "xml", "-i", "-", "-o", "-",
				    NULL };

		expect_error(_metadata, self, a, 2, "unknown framing");
	}
	{
		const char *a[] = { self->mode, "-i", "-", NULL };

		expect_error(_metadata, self, a, 2, "need at least one");
	}

	/* A port in use. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_EQ(0, listen(fd, 1));
	ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&sa, &salen));
	snprintf(listen_uri, sizeof(listen_uri), "tcp-listen:127.0.0.1:%d",
		 ntohs(sa.sin_port));
	{
		const char *a[] = { self->mode, "-i", listen_uri, "-o", out, NULL };

		expect_error(_metadata, self, a, 1, "Address already in use");
	}
	close(fd);

	/* Nobody listening. */
	snprintf(tcp, sizeof(tcp), "tcp:127.0.0.1:%d", free_port());
	{
		const char *a[] = { self->mode, "-i", "-", "-o", tcp, NULL };

		expect_error(_metadata, self, a, 1, "Connection refused");
	}
	/* A directory is not readable as a file source: fails at run time. */
	snprintf(missing, sizeof(missing), "file:%s", self->dir);
	{
		const char *a[] = { self->mode, "-i", missing, "-o", out, NULL };

		expect_error(_metadata, self, a, 1, "Is a directory");
	}
}


/* ---- chunk records ------------------------------------------------------ */

/* Heavy loads shrink 10x under sanitizers; the checks stay the same. */
static size_t scaled(size_t n)
{
	return getenv("BRING_SANITIZED") ? n / 10 : n;
}

static int write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

/*
 * Write @len bytes to @fd in odd-sized pieces with a pause every few, so
 * that reads end anywhere in a line (and a reader sometimes finds
 * nothing more for a while).
 */
static int feed(int fd, const char *buf, size_t len)
{
	static const size_t sizes[] = { 1, 7, 4093, 99, 65537, 13, 262147, 3,
					1000, 1001, 999, 300001 };
	size_t off = 0, i, n;

	for (i = 0; off < len; i++) {
		n = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
		if (n > len - off)
			n = len - off;
		if (write_all(fd, buf + off, n))
			return -1;
		off += n;
		if (i % 5 == 4)
			usleep(2000);
	}
	return 0;
}

struct feeder {
	int fd, port; /* a pipe's write end, or a port to connect to */
	const char *buf;
	size_t len;
	int err;
};

static void *feeder_run(void *arg)
{
	struct feeder *f = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(f->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	if (f->port) {
		f->fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(f->fd, (struct sockaddr *)&sa, sizeof(sa))) {
			f->err = errno;
			close(f->fd);
			return NULL;
		}
	}
	if (feed(f->fd, f->buf, f->len))
		f->err = errno ? errno : EIO;
	close(f->fd);
	return NULL;
}

/* What a lines source makes of a stream, as a lines sink writes it. */
struct framed {
	char *out;
	size_t len;
	long long lines, split, truncated, dropped;
};

static void emit_line(struct framed *f, const char *p, size_t n)
{
	memcpy(f->out + f->len, p, n);
	f->len += n;
	f->out[f->len++] = '\n';
	f->lines++;
}

/* The reference framing: every line, oversize ones as @mode says. */
static void frame_lines(const char *in, size_t n, size_t max,
			const char *mode, struct framed *f)
{
	size_t i, len, k;
	const char *nl;

	memset(f, 0, sizeof(*f));
	f->out = malloc(2 * n + 16);
	for (i = 0; i < n; i += len + 1) {
		nl = memchr(in + i, '\n', n - i);
		len = nl ? (size_t)(nl - in) - i : n - i;
		if (len <= max) {
			emit_line(f, in + i, len);
		} else if (!strcmp(mode, "split")) {
			for (k = 0; k < len; k += max)
				emit_line(f, in + i + k,
					  len - k < max ? len - k : max);
			f->split += (len + max - 1) / max - 1;
		} else if (!strcmp(mode, "truncate")) {
			emit_line(f, in + i, max);
			f->truncated++;
		} else {
			f->dropped++;
		}
	}
}

/* A counter of bringcat's --stats line: "... in N msgs ...", "split N". */
static long long stat_of(const char *err, const char *after, const char *key)
{
	const char *p = err ? strstr(err, after) : NULL;

	p = p ? strstr(p, key) : NULL;
	return p ? atoll(p + strlen(key)) : -1;
}

static long count_lines(const char *p, size_t n)
{
	long k = 0;

	while (n--)
		k += *p++ == '\n';
	return k;
}

/* Lines of every kind and length for the chunking tests. */
static char *chunk_input(size_t max, size_t *n)
{
	size_t cap = scaled(3 << 20) + 8 * max + (2 << 20), len = 0, i, k;
	size_t big = 0; /* bytes of the long lines, beyond the 3 MB of short */
	char *in = malloc(cap);
	uint32_t x = 1;

	for (i = 0; len - big < scaled(3 << 20); i++) {
		x = x * 1103515245 + 12345;
		k = (x >> 16) % 300;
		if (i % 97 == 0)
			k = 0; /* empty lines */
		len += sprintf(in + len, "%zu:", i);
		memset(in + len, 'a' + i % 26, k);
		len += k;
		in[len++] = '\n';
		if (i == 1 || i == 1501) { /* at and just over max */
			memset(in + len, 'M', max);
			len += max;
			in[len++] = '\n';
			memset(in + len, 'O', max + 1);
			len += max + 1;
			in[len++] = '\n';
			big += 2 * max + 3;
		}
		if (i == 1000) { /* far over, then an empty line */
			memset(in + len, 'H', 2 * max + max / 2);
			len += 2 * max + max / 2;
			in[len++] = '\n';
			in[len++] = '\n';
			big += 2 * max + max / 2 + 2;
		}
	}
	/* Longer than a chunk (256 KiB), shorter than max when it is 1 MiB. */
	memset(in + len, 'C', 600 << 10);
	len += 600 << 10;
	in[len++] = '\n';
	len += sprintf(in + len, "no final newline");
	*n = len;
	return in;
}

/*
 * Feed chunk_input() in odd pieces with pauses into bringcat (stdin pipe
 * or a TCP connection) with --max-msg @max and --oversize @mode, and
 * check the output and the per-line counters against frame_lines().
 */
static void chunk_case(struct __test_metadata *_metadata,
		       FIXTURE_DATA(io) *self, size_t max, const char *mode,
		       bool tcp)
{
	char fout[PATH_MAX + 8], maxs[32], *in, *err;
	const char *args[] = { self->mode, "--stats", "--max-msg", maxs,
			       "--oversize", mode, "-i",
			       tcp ? "tcp-listen:127.0.0.1:0" : "-", "-o", fout,
			       NULL };
	struct feeder f = { 0 };
	struct framed want;
	size_t n, errlen;
	pthread_t t;
	int p[2], rc;
	char in_fd[32];
	pid_t pid;

	signal(SIGPIPE, SIG_IGN); /* a dead bringcat fails the test only */
	in = chunk_input(max, &n);
	frame_lines(in, n, max, mode, &want);
	snprintf(maxs, sizeof(maxs), "%zu", max);
	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	unlink(self->path[OUT]);
	f.buf = in;
	f.len = n;
	if (tcp) {
		pid = spawn(NULL, self->path[ERR1], args);
		f.port = wait_port(self->path[ERR1]);
		ASSERT_GT(f.port, 0);
	} else {
		ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
		snprintf(in_fd, sizeof(in_fd), "/dev/fd/%d", p[0]);
		pid = spawn(in_fd, self->path[ERR1], args);
		close(p[0]);
		f.fd = p[1];
	}
	ASSERT_EQ(0, pthread_create(&t, NULL, feeder_run, &f));
	pthread_join(t, NULL);
	EXPECT_EQ(0, f.err);
	if (tcp) {
		EXPECT_TRUE(wait_size(self->path[OUT], want.len, 20000));
		kill(pid, SIGTERM);
	}
	rc = wait_rc(pid, 30000);
	err = slurp(self->path[ERR1], &errlen);
	if (rc)
		TH_LOG("bringcat exited %d: %s", rc, err);
	ASSERT_EQ(0, rc);
	TH_LOG("%s, max %zu, %s: %lld lines, split %lld truncated %lld dropped %lld",
	       tcp ? "tcp" : "pipe", max, mode, want.lines, want.split,
	       want.truncated, want.dropped);
	expect_file(_metadata, self->path[OUT], want.out, want.len);
	EXPECT_EQ(want.lines, stat_of(err, " in ", "in "));
	EXPECT_EQ(want.lines, stat_of(err, " out ", "out "));
	EXPECT_EQ(want.split, stat_of(err, "split ", "split "));
	EXPECT_EQ(want.truncated, stat_of(err, "truncated ", "truncated "));
	EXPECT_EQ(want.dropped, stat_of(err, "dropped ", "dropped "));
	free(err);
	free(want.out);
	free(in);
}

/*
 * Lines cut anywhere by the reads, max_msg below the chunk size (every
 * complete line is checked) and above it (only the carried partial line
 * can be oversize), each oversize mode, pipe and TCP.
 */
TEST_F(io, chunk_lines_split_across_reads)
{
	static const char *modes[] = { "split", "truncate", "drop" };
	int i;

	for (i = 0; i < 6; i++)
		chunk_case(_metadata, self, i < 3 ? 1000 : 1 << 20,
			   modes[i % 3], i % 2);
}

/* ---- the same through the library: what the ring holds ---------------- */

struct io_thread {
	struct bring_io *io;
	int ret;
};

static void *io_thread_run(void *arg)
{
	struct io_thread *t = arg;

	t->ret = bring_io_run(t->io);
	return NULL;
}

/* Wait until the sources of @io read @bytes. */
static bool wait_bytes_in(struct bring_io *io, uint64_t bytes, int ms)
{
	struct bring_io_stats st = { .sz = sizeof(st) };
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		bring_io_get_stats(io, &st);
		if (st.bytes_in >= bytes)
			return true;
		usleep(2000);
	}
	return false;
}

/* What @rd can still read, each record followed by '\n', in one buffer. */
static char *drain_records(struct bring_reader *rd, size_t cap, size_t *len,
			   long *recs, long *multi)
{
	char *buf = malloc(cap + 1);
	struct bring_msg m;

	*len = 0;
	*recs = *multi = 0;
	while (bring_reader_next(rd, &m, 0) == 0) {
		if (*len + m.len + 1 > cap)
			break;
		memcpy(buf + *len, m.data, m.len);
		*len += m.len;
		buf[(*len)++] = '\n';
		(*recs)++;
		*multi += memchr(m.data, '\n', m.len) != NULL;
		bring_reader_shift(rd);
	}
	return buf;
}

/*
 * Feed @in over TCP into a bring_io (@flags) that has no sink, so that
 * the ring keeps every record for a reader opened before; check that the
 * records, each followed by '\n', give the input back, and count them.
 */
static void records_case(struct __test_metadata *_metadata,
			 const FIXTURE_VARIANT(io) *variant, unsigned int flags,
			 const char *in, size_t n, long *recs, long *multi)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	struct bring_io_stats st = { .sz = sizeof(st) };
	struct bring *r = bring_new(16 << 20, &ro);
	struct io_thread t = { 0 };
	struct feeder f = { .buf = in, .len = n };
	struct bring_reader *rd;
	pthread_t th, fh;
	size_t len;
	char *got;
	BRING_IO_OPTS(o, .flags = flags | BRING_IO_QUIET |
			       (variant->no_uring ? BRING_IO_NO_URING : 0));

	ASSERT_NE_NULL(r);
	rd = bring_reader_open(r, "check");
	ASSERT_NE_NULL(rd);
	t.io = bring_io_new(r, &o);
	ASSERT_NE_NULL(t.io);
	ASSERT_EQ(0, bring_io_add_source(t.io, "tcp-listen:127.0.0.1:0"));
	f.port = bring_io_source_port(t.io, 0);
	ASSERT_GT(f.port, 0);
	ASSERT_EQ(0, pthread_create(&th, NULL, io_thread_run, &t));
	ASSERT_EQ(0, pthread_create(&fh, NULL, feeder_run, &f));
	pthread_join(fh, NULL);
	EXPECT_EQ(0, f.err);
	EXPECT_TRUE(wait_bytes_in(t.io, n, 20000));
	bring_io_stop(t.io);
	pthread_join(th, NULL);
	EXPECT_EQ(0, t.ret);
	bring_io_get_stats(t.io, &st);
	EXPECT_EQ(count_lines(in, n), st.msgs_in);
	got = drain_records(rd, 2 * n + 16, &len, recs, multi);
	if (len != n || memcmp(got, in, n))
		TH_LOG("records give %zu bytes back of %zu", len, n);
	EXPECT_EQ(n, len);
	EXPECT_EQ(0, memcmp(got, in, len < n ? len : n));
	free(got);
	bring_reader_close(rd);
	bring_io_free(t.io);
	bring_free(r);
}

/* Short lines with empty ones, every line ended by a newline. */
static char *short_lines(size_t *n)
{
	size_t target = scaled(2 << 20), len = 0, i;
	char *in = malloc(target + 512);

	for (i = 0; len < target; i++)
		len += sprintf(in + len, "%zu %.*s\n", i, (int)(i % 71),
			       i % 13 ? "the quick brown fox jumps over the lazy dog, again and again and" : "");
	*n = len;
	return in;
}

/*
 * A lines source commits chunk records: complete lines joined by '\n',
 * the last newline left out, however the reads cut the stream.
 */
TEST_F(io, chunk_records_are_joined_lines)
{
	long recs, multi;
	size_t n;
	char *in = short_lines(&n);

	records_case(_metadata, variant, 0, in, n, &recs, &multi);
	TH_LOG("%ld lines in %ld records", count_lines(in, n), recs);
	EXPECT_GT(multi, 0);
	EXPECT_LT(recs, count_lines(in, n) / 10);
	free(in);
}

/* BRING_IO_LINE_RECORDS: one line per record, as before chunk records. */
TEST_F(io, line_records_flag_one_line_each)
{
	long recs, multi;
	size_t n;
	char *in = short_lines(&n);

	records_case(_metadata, variant, BRING_IO_LINE_RECORDS, in, n, &recs,
		     &multi);
	EXPECT_EQ(count_lines(in, n), recs);
	EXPECT_EQ(0, multi);
	free(in);
}

/* A read of one empty line is a chunk record of length 0: one message. */
TEST_F(io, empty_line_is_empty_record)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	struct bring_io_stats st = { .sz = sizeof(st) };
	struct bring *r = bring_new(1 << 20, &ro);
	struct bring_reader *rd = bring_reader_open(r, "check");
	char src[PATH_MAX + 8], *got;
	struct bring_io *io;
	long recs, multi;
	size_t len;
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET |
			       (variant->no_uring ? BRING_IO_NO_URING : 0));

	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, spew(self->path[IN], "\n", 1));
	snprintf(src, sizeof(src), "file:%s", self->path[IN]);
	io = bring_io_new(r, &o);
	ASSERT_NE_NULL(io);
	ASSERT_EQ(0, bring_io_add_source(io, src));
	ASSERT_EQ(0, bring_io_run(io)); /* a file source ends at EOF */
	bring_io_get_stats(io, &st);
	EXPECT_EQ(1, st.msgs_in);
	got = drain_records(rd, 16, &len, &recs, &multi);
	EXPECT_EQ(1, recs);
	EXPECT_EQ(1, len);
	free(got);
	bring_reader_close(rd);
	bring_io_free(io);
	bring_free(r);
}

struct app_pusher {
	struct bring *r;
	long lines;
	int err;
};

static void *app_push_run(void *arg)
{
	struct app_pusher *a = arg;
	char line[64];
	long i;
	int n;

	for (i = 0; i < a->lines && !a->err; i++) {
		n = snprintf(line, sizeof(line), "app %08ld", i);
		a->err = bring_push(a->r, line, n);
	}
	return NULL;
}

/*
 * Records an application pushes one line at a time and chunk records a
 * source commits share one ring: the sink writes every line whole, each
 * writer's lines in order, and counts every line.
 */
TEST_F(io, app_lines_and_chunk_records_mix)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	struct bring_io_stats st = { .sz = sizeof(st) };
	struct bring *r = bring_new(1 << 20, &ro);
	struct app_pusher app = { .r = r, .lines = scaled(100000) };
	struct io_thread t = { 0 };
	long src_lines = scaled(100000), next_app = 0, next_src = 0, i;
	char sink[PATH_MAX + 8], *in = malloc(src_lines * 16 + 1), *got, *p, *e;
	struct feeder f = { 0 };
	pthread_t th, fh, ah;
	size_t n = 0, len;
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET |
			       (variant->no_uring ? BRING_IO_NO_URING : 0));

	for (i = 0; i < src_lines; i++)
		n += sprintf(in + n, "src %08ld\n", i);
	snprintf(sink, sizeof(sink), "file:%s", self->path[OUT]);
	t.io = bring_io_new(r, &o);
	ASSERT_NE_NULL(t.io);
	ASSERT_EQ(0, bring_io_add_source(t.io, "tcp-listen:127.0.0.1:0"));
	ASSERT_EQ(0, bring_io_add_sink(t.io, sink, NULL));
	f = (struct feeder){ .buf = in, .len = n,
			     .port = bring_io_source_port(t.io, 0) };
	ASSERT_EQ(0, pthread_create(&th, NULL, io_thread_run, &t));
	ASSERT_EQ(0, pthread_create(&fh, NULL, feeder_run, &f));
	ASSERT_EQ(0, pthread_create(&ah, NULL, app_push_run, &app));
	pthread_join(fh, NULL);
	pthread_join(ah, NULL);
	EXPECT_EQ(0, f.err);
	EXPECT_EQ(0, app.err);
	EXPECT_TRUE(wait_bytes_in(t.io, n, 20000));
	bring_io_stop(t.io);
	pthread_join(th, NULL);
	EXPECT_EQ(0, t.ret);
	bring_io_get_stats(t.io, &st);
	EXPECT_EQ(src_lines, st.msgs_in);
	EXPECT_EQ(src_lines + app.lines, st.msgs_out);
	got = slurp(self->path[OUT], &len);
	ASSERT_NE_NULL(got);
	EXPECT_EQ(n + (size_t)app.lines * 13, len);
	for (p = got, e = got + len; p < e; p = memchr(p, '\n', e - p) + 1) {
		long *next = !strncmp(p, "app ", 4) ? &next_app : &next_src;

		ASSERT_TRUE(!strncmp(p, "app ", 4) || !strncmp(p, "src ", 4));
		ASSERT_EQ('\n', p[12]);
		ASSERT_EQ(*next, strtol(p + 4, NULL, 10));
		(*next)++;
	}
	EXPECT_EQ(app.lines, next_app);
	EXPECT_EQ(src_lines, next_src);
	free(got);
	free(in);
	bring_io_free(t.io);
	bring_free(r);
}

TEST_HARNESS_MAIN
