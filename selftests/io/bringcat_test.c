// SPDX-License-Identifier: GPL-2.0
/*
 * bringcat end to end, in both io modes (io_uring and --no-uring):
 * file -> bringcat -> TCP loopback -> bringcat -> file, byte for byte;
 * 16 clients into one tcp-listen; SIGTERM drains; socat as a peer;
 * clear errors for bad endpoints.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#include "kselftest_harness.h"
#include "io_test_util.h"

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
	expect_exit(_metadata, self->path[ERR1], args, rc, msg);
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

TEST_HARNESS_MAIN
