// SPDX-License-Identifier: GPL-2.0
/*
 * bringcat end to end, in both io modes (io_uring and --no-uring):
 * file -> bringcat -> TCP loopback -> bringcat -> file, byte for byte;
 * 16 clients into one tcp-listen; SIGTERM drains; socat as a peer;
 * clear errors for bad endpoints; lines in chunk records, through
 * bringcat (reads cut anywhere, each oversize mode) and through the
 * library (what the ring holds). UDP and unix endpoints: datagram
 * boundaries and the oversize policy, logger(1) as a client, sinks that
 * reconnect, and a sink peer killed and restarted 20 times.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bring.h"
#include "bring_io.h"
#include "kselftest_harness.h"
#include "io_test_util.h"

static bool sanitized(void)
{
	return getenv("BRING_SANITIZED") != NULL;
}

/* A UDP socket bound to 127.0.0.1:0, *port its port. */
static int udp_bound(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), big = 4 << 20;

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	*port = ntohs(sa.sin_port);
	return fd;
}

/* A UDP socket connected to 127.0.0.1:@port. */
static int udp_to(int port)
{
	return loopback_to(SOCK_DGRAM, port);
}

/* One datagram from @fd within @ms, its length, or -1. */
static ssize_t recv_within(int fd, void *buf, size_t len, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return recv(fd, buf, len, MSG_DONTWAIT);
}

static socklen_t unix_addr(struct sockaddr_un *sun, const char *path)
{
	size_t n = strlen(path);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (n >= sizeof(sun->sun_path))
		n = sizeof(sun->sun_path) - 1;
	memcpy(sun->sun_path, path, n);
	return sizeof(*sun);
}

/* Wait up to 5 s for somebody to accept on @path (the probe sends nothing). */
static bool wait_unix(const char *path)
{
	uint64_t end = now_ms() + 5000;
	int fd;

	while (now_ms() < end) {
		fd = unix_to(path);
		if (fd >= 0) {
			close(fd);
			return true;
		}
		usleep(5000);
	}
	return false;
}

/* A unix socket file nobody listens on, as a killed listener leaves it. */
static int make_stale_socket(const char *path)
{
	struct sockaddr_un sun;
	socklen_t len = unix_addr(&sun, path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), err;

	err = bind(fd, (struct sockaddr *)&sun, len);
	close(fd);
	return err;
}

static bool is_socket(const char *path)
{
	struct stat st;

	return !lstat(path, &st) && S_ISSOCK(st.st_mode);
}

/* Lines in @path (its '\n's). */
static long count_file_lines(const char *path)
{
	size_t len, i;
	char *s = slurp(path, &len);
	long n = 0;

	for (i = 0; s && i < len; i++)
		n += s[i] == '\n';
	free(s);
	return n;
}

static bool wait_lines(const char *path, long lines, int ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		if (count_file_lines(path) >= lines)
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * A TCP socket from local port @lport (any when 0) to remote port @rport
 * on IPv4 loopback, from /proc/net/tcp: its state (TCP_*) and send queue
 * (bytes not acknowledged by the peer), or -1 when there is none. When
 * @state is not -1, one in that state is looked for (others, in
 * TIME_WAIT from earlier connections, may have the same ports).
 */
static int tcp_sock(int lport, int rport, int state, unsigned int *txq)
{
	unsigned int lp, rp, st, tx, rx;
	char line[512];
	int ret = -1;
	FILE *f = fopen("/proc/net/tcp", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %*u: %*x:%x %*x:%x %x %x:%x", &lp, &rp, &st,
			   &tx, &rx) != 5)
			continue;
		if ((lport && (int)lp != lport) || (int)rp != rport ||
		    (state != -1 && (int)st != state))
			continue;
		ret = st;
		if (txq)
			*txq = tx;
		break;
	}
	if (f)
		fclose(f);
	return ret;
}

#define TCP_ESTABLISHED_ 1
#define TCP_CLOSE_WAIT_ 8

/* Wait for a socket in @state, or (@state -1) for none at all. */
static bool wait_tcp_state(int lport, int rport, int state, int ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		if (tcp_sock(lport, rport, state, NULL) == state)
			return true;
		usleep(2000);
	}
	return false;
}

/* The Udp NoPorts counter: datagrams that found nobody listening. */
static long long udp_noports(void)
{
	char line[512];
	long long v = -1;
	int seen = 0;
	FILE *f = fopen("/proc/net/snmp", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Udp: ", 5) && seen++)
			sscanf(line, "Udp: %*s %lld", &v);
	if (f)
		fclose(f);
	return v;
}


FIXTURE(io)
{
	char dir[64];
	char path[8][PATH_MAX];
	const char *mode;
};

IO_MODE_VARIANTS(io);

enum { IN, OUT, ERR1, ERR2, OUT2, IN2, SCRATCH, FIFO };

FIXTURE_SETUP(io)
{
	static const char *names[] = { "in", "out", "err1", "err2", "out2",
				       "in2", "scratch", "fifo" };
	int i;

	find_bringcat();
	if (access(bringcat, X_OK))
		SKIP(return, "%s not built", bringcat);
	if (io_mode_missing(variant->mode))
		SKIP(return, "%s", io_mode_missing(variant->mode));
	self->mode = io_mode_flag(variant->mode, "--quiet");
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
 * Ship IN to a receiving bringcat over TCP (or the unix socket @sock),
 * wait for @want bytes in OUT, stop the receiver; returns the sender's
 * exit code (0) or <0.
 */
static int pipeline_via(struct __test_metadata *_metadata,
			FIXTURE_DATA(io) *self, const char *framing,
			const char *max, off_t want, const char *sock)
{
	char fin[PATH_MAX + 8], fout[PATH_MAX + 8], tcp[PATH_MAX + 16],
		listen[PATH_MAX + 16] = "tcp-listen:127.0.0.1:0";
	const char *rx[] = { self->mode, "-f", framing, "--max-msg", max,
			     "-i", listen, "-o", fout, NULL };
	const char *tx[] = { self->mode, "-f", framing, "--max-msg", max,
			     "-i", fin, "-o", tcp, NULL };
	pid_t rxp, txp;
	int port, rc;

	snprintf(fin, sizeof(fin), "file:%s", self->path[IN]);
	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	if (sock)
		snprintf(listen, sizeof(listen), "unix-listen:%s", sock);
	rxp = spawn(NULL, self->path[ERR1], rx);
	port = sock ? (wait_unix(sock) ? 0 : -1) : wait_port(self->path[ERR1]);
	if (port < 0) {
		wait_rc(rxp, 0);
		return -100;
	}
	if (sock)
		snprintf(tcp, sizeof(tcp), "unix:%s", sock);
	else
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

static int pipeline(struct __test_metadata *_metadata, FIXTURE_DATA(io) *self,
		    const char *framing, const char *max, off_t want)
{
	return pipeline_via(_metadata, self, framing, max, want, NULL);
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

/*
 * The --stats parser every test uses reads the final report, not a
 * periodic one (--stats=SECONDS) or another line before it, and finds
 * the counter asked for, not one whose name ends the same way.
 */
TEST(final_stat_reads_the_final_report)
{
	static const char report[] =
		"bringcat: io_uring unavailable (Operation not permitted): "
		"using readv/writev\n"
		"bringcat: stats 1.000s in 7 msgs 70 bytes, out 6 msgs 60 "
		"bytes (0.0 MB/s), ring 10/65536, full waits 1 (0.500s), "
		"empty waits 2 (0.100s), writes 3 (short 0), split 0 "
		"truncated 0 dropped 0, accepted 0, reconnects 0, send "
		"dropped 0 errors 0, readv/writev\n"
		"bringcat: stats tail rotations 0, truncations 0\n"
		"bringcat: done 2.000s in 9 msgs 90 bytes, out 8 msgs 80 "
		"bytes (0.0 MB/s), ring 0/65536, full waits 4 (1.250s), "
		"empty waits 5 (0.125s), writes 6 (short 1), split 2 "
		"truncated 3 dropped 1, accepted 0, reconnects 0, send "
		"dropped 7 errors 11, readv/writev\n"
		"bringcat: done tail rotations 12, truncations 13\n";
	const size_t periodic = strstr(report, "bringcat: done") - report;
	char path[] = "/tmp/final_stat.XXXXXX";
	int fd = mkstemp(path);

	ASSERT_GE(fd, 0);
	close(fd);
	ASSERT_EQ(0, spew(path, report, sizeof(report) - 1));
	EXPECT_EQ(9, final_stat(path, NULL, "in "));
	EXPECT_EQ(8, final_stat(path, NULL, "out "));
	EXPECT_EQ(80, final_stat(path, " out ", "msgs "));
	EXPECT_EQ(1, final_stat(path, NULL, "dropped "));
	EXPECT_EQ(7, final_stat(path, NULL, "send dropped "));
	EXPECT_EQ(11, final_stat(path, NULL, "errors "));
	EXPECT_EQ(1, final_stat(path, NULL, "short "));
	EXPECT_EQ(12, final_stat(path, NULL, "rotations "));
	EXPECT_EQ(13, final_stat(path, NULL, "truncations "));
	EXPECT_EQ(-1, final_stat(path, NULL, "no such counter "));
	EXPECT_EQ(1.25, final_stat_secs(path, "full waits "));
	EXPECT_EQ(0.125, final_stat_secs(path, "empty waits "));
	EXPECT_EQ(-1, final_stat_secs(path, "split "));
	/* Not there yet: only the periodic report. */
	ASSERT_EQ(0, spew(path, report, periodic));
	EXPECT_EQ(-1, final_stat(path, NULL, "in "));
	EXPECT_EQ(-1, final_stat_secs(path, "full waits "));
	unlink(path);
	EXPECT_EQ(-1, final_stat(path, NULL, "in "));
}

/*
 * Each variant runs the mode it names: --stats says which, and the
 * eventfd variant (ring waits on bring_notify_fd()) does not fall back.
 */
TEST_F(io, runs_in_the_mode_asked_for)
{
	char fin[PATH_MAX + 8], fout[PATH_MAX + 8], *err;
	const char *args[] = { self->mode, "--stats", "-i", fin, "-o", fout,
			       NULL };
	const char *want = variant->mode == IO_MODE_FALLBACK ?
				   ", readv/writev\n" :
			   variant->mode == IO_MODE_EVENTFD ?
				   ", io_uring+eventfd\n" :
					       ", io_uring\n";
	size_t len;

	ASSERT_EQ(0, spew(self->path[IN], "a\nb\n", 4));
	snprintf(fin, sizeof(fin), "file:%s", self->path[IN]);
	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	ASSERT_EQ(0, wait_rc(spawn(NULL, self->path[ERR1], args), 10000));
	err = slurp(self->path[ERR1], &len);
	ASSERT_NE_NULL(err);
	EXPECT_NE_NULL(strstr(err, want)) TH_LOG("%s", err);
	free(err);
}

/*
 * The child: system call @nr fails with @err, as io_uring_setup(2) does
 * (EPERM) under Docker's default seccomp profile; every other system
 * call is allowed.
 */
static void deny_syscall(int nr, int err)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned int)err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
				   .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		_exit(126);
}

static void deny_io_uring(void)
{
	deny_syscall(__NR_io_uring_setup, EPERM);
}

/* As on kernels before 5.16: futex_waitv(2) does not exist. */
static void deny_futex_waitv(void)
{
	deny_syscall(__NR_futex_waitv, ENOSYS);
}

/*
 * io_uring refused (EPERM from a seccomp filter, as in a container):
 * bringcat says so once and ships everything in readv/writev mode.
 */
TEST_F(io, io_uring_refused_falls_back_once)
{
	char fin[PATH_MAX + 8], fout[PATH_MAX + 8], *err, *p;
	/* Not --quiet: the line about io_uring is what is checked. */
	const char *args[] = { io_mode_flag(variant->mode, "-s"),
			       "--stats", "-i", fin, "-o", fout, NULL };
	const char *text = "one\ntwo\nthree\n";
	int seen = 0;
	size_t len;

#if !defined(__x86_64__)
	SKIP(return, "the seccomp filter is written for x86-64");
#endif
	if (variant->mode == IO_MODE_FALLBACK)
		SKIP(return, "--no-uring never tries io_uring");
	ASSERT_EQ(0, spew(self->path[IN], text, strlen(text)));
	snprintf(fin, sizeof(fin), "file:%s", self->path[IN]);
	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	ASSERT_EQ(0, wait_rc(spawn_hooked(NULL, self->path[ERR1], args,
					  deny_io_uring),
			     10000));
	expect_file(_metadata, self->path[OUT], text, strlen(text));
	err = slurp(self->path[ERR1], &len);
	ASSERT_NE_NULL(err);
	for (p = err; (p = strstr(p, "io_uring unavailable")); p++)
		seen++;
	EXPECT_EQ(1, seen) TH_LOG("%s", err);
	EXPECT_NE_NULL(strstr(err, "Operation not permitted")) TH_LOG("%s", err);
	EXPECT_NE_NULL(strstr(err, ", readv/writev\n")) TH_LOG("%s", err);
	free(err);
}

/*
 * --stats reports how long writers and readers were blocked: a sink
 * that waits 300 ms for its first line, then a source that waits while
 * its sink (a FIFO nobody reads for 300 ms) holds the ring full.
 */
TEST_F(io, stats_report_blocked_time)
{
	char fin[PATH_MAX + 8], fout[PATH_MAX + 8], buf[65500]; /* 655 lines */
	const char *args[] = { self->mode, "--stats", "--buffer", "mem:64k",
			       "-i", fin, "-o", fout, NULL };
	size_t n = 0;
	pid_t pid;
	int fd;

	/* Empty: the source is a FIFO written 300 ms after it opens. */
	ASSERT_EQ(0, mkfifo(self->path[FIFO], 0600));
	snprintf(fin, sizeof(fin), "file:%s", self->path[FIFO]);
	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	pid = spawn(NULL, self->path[ERR1], args);
	fd = open(self->path[FIFO], O_WRONLY | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	usleep(300000);
	ASSERT_EQ(6, write(fd, "later\n", 6));
	close(fd);
	ASSERT_EQ(0, wait_rc(pid, 10000));
	EXPECT_GE(final_stat_secs(self->path[ERR1], "empty waits "), 0.2);

	/* Full: 4 MB through a 64 KiB ring into a FIFO read 300 ms late. */
	memset(buf, 'x', sizeof(buf));
	for (n = 99; n < sizeof(buf); n += 100)
		buf[n] = '\n';
	fd = open(self->path[IN], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	for (n = 0; n < 64; n++)
		ASSERT_EQ((ssize_t)sizeof(buf), write(fd, buf, sizeof(buf)));
	close(fd);
	snprintf(fin, sizeof(fin), "file:%s", self->path[IN]);
	snprintf(fout, sizeof(fout), "file:%s", self->path[FIFO]);
	pid = spawn(NULL, self->path[ERR2], args);
	fd = open(self->path[FIFO], O_RDONLY | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	usleep(300000);
	n = 0;
	for (ssize_t r; (r = read(fd, buf, sizeof(buf))) > 0;)
		n += r;
	close(fd);
	EXPECT_EQ((size_t)64 * sizeof(buf), n);
	ASSERT_EQ(0, wait_rc(pid, 10000));
	EXPECT_GE(final_stat_secs(self->path[ERR2], "full waits "), 0.2);
}

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
#define CLIENT_LINE_LEN 22 /* "client DD line NNNNNN\n" */

/* 16 clients x 100,000 lines, as the issue asks; 10x fewer sanitized. */
static int client_lines(void)
{
	return sanitized() ? 10000 : 100000;
}

TEST_F(io, many_clients_into_one_listener)
{
	char fout[PATH_MAX + 8];
	const char *rx[] = { self->mode, "--buffer", "mem:1M", "-i",
			     "tcp-listen:127.0.0.1:0", "-o", fout, NULL };
	struct client cl[CLIENTS];
	pthread_t t[CLIENTS];
	int next[CLIENTS] = { 0 }, port, i, id, seq;
	off_t want = (off_t)CLIENTS * client_lines() * CLIENT_LINE_LEN;
	char *got, *p;
	size_t len;
	pid_t rxp;

	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	rxp = spawn(NULL, self->path[ERR1], rx);
	port = wait_port(self->path[ERR1]);
	ASSERT_GT(port, 0);
	for (i = 0; i < CLIENTS; i++) {
		cl[i] = (struct client){ .port = port, .id = i,
					 .lines = client_lines() };
		pthread_create(&t[i], NULL, client_run, &cl[i]);
	}
	for (i = 0; i < CLIENTS; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, cl[i].err);
	}
	EXPECT_TRUE(wait_size(self->path[OUT], want, 60000));
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
		EXPECT_EQ(client_lines(), next[i]);
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
	size_t n = 0, i, len;
	char *in = malloc(64 << 20), *got;
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
	/* "out N msgs M bytes" */
	out_bytes = final_stat(self->path[ERR2], " out ", "msgs ");
	ASSERT_NE(-1, out_bytes);
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
	int port, rc, held;

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
	port = reserve_port(&held);
	ASSERT_GT(port, 0);
	snprintf(slisten, sizeof(slisten),
		 "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr", port);
	snprintf(sopen, sizeof(sopen), "OPEN:%s,creat,trunc", self->path[OUT2]);
	sp = fork();
	if (!sp) {
		execlp("socat", "socat", "-u", slisten, sopen, NULL);
		_exit(127);
	}
	/* bringcat's tcp: sink retries until socat listens */
	snprintf(tcp, sizeof(tcp), "tcp:127.0.0.1:%d", port);
	txp = spawn(NULL, self->path[ERR2], tx);
	rc = wait_rc(txp, 20000);
	close(held);
	if (rc)
		kill(sp, SIGKILL);
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

/* What expect_error() ran said one line, and it holds @msg. */
static void expect_one_line(struct __test_metadata *_metadata,
			    FIXTURE_DATA(io) *self, const char *msg)
{
	size_t len;
	char *err = slurp(self->path[ERR1], &len);

	ASSERT_NE_NULL(err);
	EXPECT_TRUE(len && strchr(err, '\n') == err + len - 1 &&
		    strstr(err, msg))
		TH_LOG("stderr: \"%s\", want one line with \"%s\"", err, msg);
	free(err);
}

TEST_F(io, errors)
{
	char listen_uri[64], out[PATH_MAX + 8], missing[PATH_MAX + 16],
		baddir[PATH_MAX + 16];
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
	/* A typo in a sink's host: one line, exit 2, at once (man page). */
	{
		const char *a[] = { self->mode, "-i", "-", "-o",
				    "tcp:no-such-host.invalid:80", NULL };

		expect_error(_metadata, self, a, 2, "cannot resolve host");
		expect_one_line(_metadata, self,
				"-o tcp:no-such-host.invalid:80: cannot resolve host");
	}
	/* A known type without its PATH is not an unknown type. */
	{
		const char *a[] = { self->mode, "-i", "file:", "-o", out, NULL };

		expect_error(_metadata, self, a, 2, "-i file:: missing PATH");
		expect_one_line(_metadata, self, "missing PATH");
	}
	{
		const char *a[] = { self->mode, "-i", "tail:", "-o", out, NULL };

		expect_error(_metadata, self, a, 2, "-i tail:: missing PATH");
	}
	{
		const char *a[] = { self->mode, "-i", "-", "-o", "file:", NULL };

		expect_error(_metadata, self, a, 2, "-o file:: missing PATH");
	}
	/* A buffer below the minimum says the minimum. */
	{
		const char *a[] = { self->mode, "-b", "mem:1K", "-i", "-", "-o",
				    out, NULL };

		expect_error(_metadata, self, a, 2,
			     "--buffer: mem:1K is smaller than the minimum, mem:4K");
		expect_one_line(_metadata, self, "minimum");
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

	/* A directory is not readable as a file source: fails at run time. */
	snprintf(missing, sizeof(missing), "file:%s", self->dir);
	{
		const char *a[] = { self->mode, "-i", missing, "-o", out, NULL };

		expect_error(_metadata, self, a, 1, "Is a directory");
	}
	/* A sink that fails at run time: said once, with its endpoint. */
	ASSERT_EQ(0, spew(self->path[IN], "one\n", 4));
	snprintf(missing, sizeof(missing), "file:%s", self->path[IN]);
	{
		const char *a[] = { self->mode, "-i", missing, "-o",
				    "file:/dev/full", NULL };

		expect_error(_metadata, self, a, 1,
			     "file:/dev/full: No space left on device");
		expect_one_line(_metadata, self,
				"file:/dev/full: No space left on device");
	}
}


/* ---- chunk records ------------------------------------------------------ */

/* Heavy loads shrink 10x under sanitizers; the checks stay the same. */
static size_t scaled(size_t n)
{
	return getenv("BRING_SANITIZED") ? n / 10 : n;
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
		if (fd_write_all(fd, buf + off, n))
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

static long count_lines(const char *p, size_t n)
{
	long k = 0;

	while (n--)
		k += *p++ == '\n';
	return k;
}

/*
 * Short lines for the chunking tests: 1 MiB (300 KiB under sanitizers),
 * a few times the feeder's cycle of write sizes and four 256 KiB reads,
 * with lines 1000 and 1501 (the long ones) well inside it.
 */
#define CHUNK_SHORT_BYTES \
	(scaled(3 << 20) < (1 << 20) ? scaled(3 << 20) : (size_t)1 << 20)

/* Lines of every kind and length for the chunking tests. */
static char *chunk_input(size_t max, size_t *n)
{
	size_t cap = CHUNK_SHORT_BYTES + 8 * max + (2 << 20), len = 0, i, k;
	size_t big = 0; /* bytes of the long lines, beyond the short ones */
	char *in = malloc(cap);
	uint32_t x = 1;

	for (i = 0; len - big < CHUNK_SHORT_BYTES; i++) {
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
	EXPECT_EQ(want.lines, final_stat(self->path[ERR1], NULL, "in "));
	EXPECT_EQ(want.lines, final_stat(self->path[ERR1], NULL, "out "));
	EXPECT_EQ(want.split, final_stat(self->path[ERR1], NULL, "split "));
	EXPECT_EQ(want.truncated,
		  final_stat(self->path[ERR1], NULL, "truncated "));
	EXPECT_EQ(want.dropped, final_stat(self->path[ERR1], NULL, "dropped "));
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
			       io_mode_io_flags(variant->mode));

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
			       io_mode_io_flags(variant->mode));

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

/*
 * Two event loops on one ring handle, a source in one and a sink in the
 * other, through a 4 KiB ring that fills all the time: every wake must
 * reach the loop that waits (in the eventfd mode each has an eventfd of
 * its own; one shared eventfd lost wakes and hung here).
 */
TEST_F(io, two_loops_share_one_ring)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_mode_io_flags(variant->mode));
	struct bring *r = bring_new(4096, &ro);
	char src[PATH_MAX + 8], dst[PATH_MAX + 8], *text, *p;
	struct io_thread in = { 0 }, out = { 0 };
	int i, lines = sanitized() ? 2000 : 20000;
	pthread_t ti, to;

	ASSERT_NE_NULL(r);
	text = malloc((size_t)lines * 16);
	ASSERT_NE_NULL(text);
	for (i = 0, p = text; i < lines; i++)
		p += sprintf(p, "line %08d\n", i);
	ASSERT_EQ(0, spew(self->path[IN], text, p - text));
	snprintf(src, sizeof(src), "file:%s", self->path[IN]);
	snprintf(dst, sizeof(dst), "file:%s", self->path[OUT]);
	in.io = bring_io_new(r, &o);
	out.io = bring_io_new(r, &o);
	ASSERT_NE_NULL(in.io);
	ASSERT_NE_NULL(out.io);
	ASSERT_EQ(0, bring_io_add_sink(out.io, dst, "out"));
	ASSERT_EQ(0, bring_io_add_source(in.io, src));
	ASSERT_EQ(0, pthread_create(&to, NULL, io_thread_run, &out));
	ASSERT_EQ(0, pthread_create(&ti, NULL, io_thread_run, &in));
	pthread_join(ti, NULL);
	EXPECT_EQ(0, in.ret);
	EXPECT_TRUE(wait_size(self->path[OUT], p - text, 20000));
	bring_io_stop(out.io); /* it has no source of its own to end */
	pthread_join(to, NULL);
	EXPECT_EQ(0, out.ret);
	expect_file(_metadata, self->path[OUT], text, p - text);
	bring_io_free(in.io);
	bring_io_free(out.io);
	bring_free(r);
	free(text);
}

/*
 * --stats: a line per source and per sink before the totals: which sink
 * lags and why (a tcp: sink whose collector is away), which one is done.
 */
TEST_F(io, stats_per_endpoint)
{
	char in[PATH_MAX + 8], out[PATH_MAX + 8], tcp[64], want[PATH_MAX + 128];
	const char *a[] = { io_mode_flag(variant->mode, "--stats=1"),
			    "--stats=1", "-i", in, "-o", out, "-o", tcp, NULL };
	char *err, *line, *p;
	unsigned long long used = 0, cap = 0, lag = 0, msgs = 1;
	size_t len;
	pid_t pid;
	int held;

	ASSERT_EQ(0, spew(self->path[IN], "one\ntwo\nthree\n", 14));
	snprintf(in, sizeof(in), "file:%s", self->path[IN]);
	snprintf(out, sizeof(out), "file:%s", self->path[OUT]);
	snprintf(tcp, sizeof(tcp), "tcp:127.0.0.1:%d", reserve_port(&held));
	pid = spawn(NULL, self->path[ERR1], a);
	ASSERT_TRUE(wait_text(self->path[ERR1], "bringcat: stats ", 10000));
	kill(pid, SIGKILL); /* its tcp: sink would wait for ever */
	waitpid(pid, NULL, 0);
	close(held);
	err = slurp(self->path[ERR1], &len);
	ASSERT_NE_NULL(err);
	snprintf(want, sizeof(want), "bringcat: source %s: in 3 msgs 14 bytes, done\n", in);
	EXPECT_NE_NULL(strstr(err, want)) TH_LOG("stderr: %s", err);
	snprintf(want, sizeof(want), "bringcat: sink %s (reader %s): out 3 msgs 14 bytes, lag 0 bytes, reconnects 0, done\n", out, sink_reader(out));
	EXPECT_NE_NULL(strstr(err, want)) TH_LOG("stderr: %s", err);
	snprintf(want, sizeof(want), "bringcat: sink %s (reader %s): out ", tcp, sink_reader(tcp));
	line = strstr(err, want);
	ASSERT_NE_NULL(line) TH_LOG("stderr: %s", err);
	EXPECT_EQ(2, sscanf(line + strlen(want), "%llu msgs %*u bytes, lag %llu",
			    &msgs, &lag));
	EXPECT_EQ(0, msgs);
	/* The lag is what the ring holds for it: ring used in the totals. */
	p = strstr(line, "bringcat: stats ");
	ASSERT_NE_NULL(p);
	p = strstr(p, ", ring ");
	ASSERT_NE_NULL(p);
	EXPECT_EQ(2, sscanf(p, ", ring %llu/%llu", &used, &cap));
	EXPECT_EQ(used, lag);
	EXPECT_GT(lag, 14);
	EXPECT_NE_NULL(strstr(line, ", reconnecting (last error: Connection refused)\n"))
		TH_LOG("stderr: %s", err);
	/* Each endpoint, then the totals. */
	EXPECT_LT(strstr(err, "bringcat: source "), strstr(err, "bringcat: stats "));
	free(err);
}

/*
 * bring_io_new() refuses what a newer caller might ask of it and it does
 * not know, with EINVAL: a flag bit past the known ones, a nonzero byte
 * past the options it knows; zero bytes there are fine.
 */
TEST(io_opts_unknown_flags_and_bytes_are_refused)
{
	struct {
		struct bring_io_opts o;
		uint64_t newer;
	} big;
	struct bring *r = bring_new(1 << 20, NULL);
	struct bring_io *io;
	unsigned int bit;
	int err = 0;

	ASSERT_NE_NULL(r);
	for (bit = 0; bit < 32 && !err; bit++) {
		BRING_IO_OPTS(o, .flags = 1U << bit);

		errno = 0;
		io = bring_io_new(r, &o);
		err = io ? 0 : errno;
		bring_io_free(io);
	}
	/* The known flags are the low ones, and the first unknown fails. */
	EXPECT_EQ(EINVAL, err);
	EXPECT_EQ(8 + 1, bit);
	/* Known and unknown together: refused all the same. */
	big.o = (struct bring_io_opts){ .sz = sizeof(big.o),
					.flags = BRING_IO_QUIET | (1U << 31) };
	errno = 0;
	EXPECT_NULL(bring_io_new(r, &big.o));
	EXPECT_EQ(EINVAL, errno);
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.newer = 1;
	errno = 0;
	EXPECT_NULL(bring_io_new(r, &big.o));
	EXPECT_EQ(EINVAL, errno);
	big.newer = 0;
	io = bring_io_new(r, &big.o);
	EXPECT_NE_NULL(io);
	bring_io_free(io);
	bring_free(r);
}

/* ---- --metrics ------------------------------------------------------------ */

/*
 * Scrape @url and parse it with an independent parser (prometheus_client,
 * Debian's python3-prometheus-client, under /usr/bin/python3): its
 * samples as "name label=v,label=v value" lines ("HTTP 404" for an HTTP
 * error status), or NULL when it failed.
 */
static char *scrape(const char *url)
{
	static const char script[] =
		"import sys,urllib.request,urllib.error\n"
		"from prometheus_client.parser import text_string_to_metric_families as p\n"
		"try:\n"
		"  r=urllib.request.urlopen(sys.argv[1],timeout=10)\n"
		"except urllib.error.HTTPError as e:\n"
		"  print('HTTP', e.code)\n"
		"  sys.exit(0)\n"
		"assert r.headers['Content-Type'].startswith('text/plain; version=0.0.4')\n"
		"for f in p(r.read().decode()):\n"
		"  for s in f.samples:\n"
		"    print(s.name, ','.join('%s=%s'%kv for kv in sorted(s.labels.items())) or '-', repr(s.value))\n";
	char cmd[sizeof(script) + 512], *out = malloc(1 << 16);
	size_t len = 0, n;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c \"$PROM_SCRIPT\" '%s'", url);
	setenv("PROM_SCRIPT", script, 1);
	f = popen(cmd, "r");
	if (!f || !out) {
		free(out);
		return NULL;
	}
	out[len++] = '\n'; /* every sample's line starts after a newline */
	while ((n = fread(out + len, 1, (1 << 16) - 1 - len, f)) > 0)
		len += n;
	out[len] = '\0';
	if (pclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

/* The value of sample "@name @labels" in @s (from scrape()), or -1. */
static double sample(const char *s, const char *name, const char *labels)
{
	char key[512];
	const char *p;

	snprintf(key, sizeof(key), "\n%s %s ", name, labels);
	p = strstr(s, key);
	return p ? strtod(p + strlen(key), NULL) : -1;
}

/*
 * --metrics: GET /metrics parses as the Prometheus text format, during a
 * load and after it, and says what happened: every line in, out through
 * both sinks, nothing lagging, both up; other paths are 404.
 */
TEST(metrics_endpoint_under_load)
{
	/* One mode: the page is served by its own thread in all of them. */
	char dir[] = "/tmp/bringcat_test.XXXXXX", path[3][PATH_MAX];
	char out[PATH_MAX + 8], out2[PATH_MAX + 8], url[128], labels[PATH_MAX + 64];
	const char *a[] = { "--quiet", "--metrics", "127.0.0.1:0", "-i",
			    "tcp-listen:127.0.0.1:0", "-o", out, "-o", out2, NULL };
	/* Lines for a while: the scrapes come while they flow. */
	struct client c = { .id = 1, .lines = 3 * client_lines() };
	double last = 0, v;
	pthread_t t;
	char *s, *err;
	size_t len;
	int i, mport;
	pid_t pid;

	find_bringcat();
	if (access(bringcat, X_OK))
		SKIP(return, "%s not built", bringcat);
	if (system("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null"))
		SKIP(return, "/usr/bin/python3 lacks prometheus_client (python3-prometheus-client)");
	ASSERT_NE_NULL(mkdtemp(dir));
	for (i = 0; i < 3; i++)
		snprintf(path[i], PATH_MAX, "%s/%s", dir, i == 0 ? "out" :
					     i == 1 ? "out2" : "err");
	snprintf(out, sizeof(out), "file:%s", path[0]);
	snprintf(out2, sizeof(out2), "file:%s", path[1]);
	pid = spawn(NULL, path[2], a);
	ASSERT_TRUE(wait_text(path[2], "serving /metrics on port ", 5000));
	ASSERT_TRUE(wait_text(path[2], "listening on port ", 5000));
	err = slurp(path[2], &len);
	ASSERT_NE_NULL(err);
	mport = atoi(strstr(err, "serving /metrics on port ") + 25);
	c.port = atoi(strstr(err, "listening on port ") + 18);
	free(err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", mport);

	ASSERT_EQ(0, pthread_create(&t, NULL, client_run, &c));
	for (i = 0; i < 2; i++) { /* while the lines flow */
		s = scrape(url);
		ASSERT_NE_NULL(s) TH_LOG("scrape %d did not parse", i);
		v = sample(s, "bring_source_messages_total",
			   "uri=tcp-listen:127.0.0.1:0");
		EXPECT_GE(v, last) TH_LOG("%s", s);
		last = v;
		free(s);
	}
	pthread_join(t, NULL);
	ASSERT_EQ(0, c.err);
	ASSERT_TRUE(wait_size(path[0], (off_t)c.lines * CLIENT_LINE_LEN, 20000));
	ASSERT_TRUE(wait_size(path[1], (off_t)c.lines * CLIENT_LINE_LEN, 20000));
	usleep(100 * 1000); /* written, then shifted and counted */
	s = scrape(url);
	ASSERT_NE_NULL(s);
	EXPECT_EQ(c.lines, sample(s, "bring_source_messages_total",
				  "uri=tcp-listen:127.0.0.1:0")) TH_LOG("%s", s);
	EXPECT_EQ(1, sample(s, "bring_io_accepted_total", "-"));
	EXPECT_EQ(1 << 26, sample(s, "bring_ring_capacity_bytes", "-"));
	for (i = 0; i < 2; i++) {
		snprintf(labels, sizeof(labels), "reader=%s,uri=%s",
			 sink_reader(i ? out2 : out), i ? out2 : out);
		EXPECT_EQ(c.lines, sample(s, "bring_sink_messages_total", labels))
			TH_LOG("%s", s);
		EXPECT_EQ((double)c.lines * CLIENT_LINE_LEN,
			  sample(s, "bring_sink_bytes_total", labels));
		EXPECT_EQ(0, sample(s, "bring_sink_lag_bytes", labels));
		EXPECT_EQ(1, sample(s, "bring_sink_up", labels));
	}
	EXPECT_EQ(0, sample(s, "bring_ring_used_bytes", "-"));
	EXPECT_GE(sample(s, "bring_ring_waits_total", "side=reader"), 1);
	free(s);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/other", mport);
	s = scrape(url);
	EXPECT_STREQ("\nHTTP 404\n", s);
	free(s);
	kill(pid, SIGTERM);
	EXPECT_EQ(0, wait_rc(pid, 10000));
	for (i = 0; i < 3; i++)
		unlink(path[i]);
	rmdir(dir);
}

static char io_said[4096];

static int capture_print(const char *fmt, va_list ap)
{
	size_t len = strlen(io_said);

	return vsnprintf(io_said + len, sizeof(io_said) - len, fmt, ap);
}

static long long accept_to_file(int lfd, const char *path);

/*
 * bring_io_source_stats()/bring_io_sink_stats(): each endpoint's share,
 * adding up to bring_io_get_stats(); -ENOENT past the last, -EINVAL for
 * bad arguments; a sink whose peer is away is reconnecting, with the
 * error and what it has not sent as lag.
 */
TEST_F(io, endpoint_stats_api)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_mode_io_flags(variant->mode));
	struct bring_io_endpoint_stats es = { .sz = sizeof(es) };
	struct bring_io_stats st = { .sz = sizeof(st) };
	struct bring *r = bring_new(1 << 20, &ro);
	char src[PATH_MAX + 8], dst[PATH_MAX + 8], dst2[PATH_MAX + 8];
	char tcp[64], *text, *p;
	struct io_thread t = { 0 };
	int i, lines = 2000, lfd;
	bring_print_fn_t old_print;
	uint64_t src_end;
	struct bring_io *io;
	pthread_t th;

	ASSERT_NE_NULL(r);
	text = malloc((size_t)lines * 16);
	ASSERT_NE_NULL(text);
	for (i = 0, p = text; i < lines; i++)
		p += sprintf(p, "line %08d\n", i);
	ASSERT_EQ(0, spew(self->path[IN], text, p - text));
	snprintf(src, sizeof(src), "file:%s", self->path[IN]);
	snprintf(dst, sizeof(dst), "file:%s", self->path[OUT]);
	snprintf(dst2, sizeof(dst2), "file:%s", self->path[OUT2]);
	snprintf(tcp, sizeof(tcp), "tcp:127.0.0.1:%d", reserve_port(&lfd));
	io = bring_io_new(r, &o);
	ASSERT_NE_NULL(io);
	ASSERT_EQ(0, bring_io_add_source(io, src));
	ASSERT_EQ(0, bring_io_add_sink(io, dst, "first"));
	ASSERT_EQ(0, bring_io_add_sink(io, dst2, NULL));
	io_said[0] = '\0';
	old_print = bring_io_set_print(capture_print);
	ASSERT_EQ(0, bring_io_add_sink(io, tcp, "away"));
	bring_io_set_print(old_print);
	/* Said even with BRING_IO_QUIET: a collector that is not there. */
	EXPECT_NE_NULL(strstr(io_said, ": Connection refused; retrying until it is up\n"))
		TH_LOG("said: %s", io_said);
	EXPECT_EQ(-ENOENT, bring_io_source_stats(io, 1, &es));
	EXPECT_EQ(-ENOENT, bring_io_sink_stats(io, 3, &es));
	EXPECT_EQ(-EINVAL, bring_io_sink_stats(NULL, 0, &es));
	EXPECT_EQ(-EINVAL, bring_io_sink_stats(io, 0, NULL));
	es.sz = 1;
	EXPECT_EQ(-EINVAL, bring_io_source_stats(io, 0, &es));
	es.sz = sizeof(es);
	t.io = io;
	ASSERT_EQ(0, pthread_create(&th, NULL, io_thread_run, &t));
	EXPECT_TRUE(wait_size(self->path[OUT], p - text, 20000));
	EXPECT_TRUE(wait_size(self->path[OUT2], p - text, 20000));

	/* its thread (readv/writev) may still be finishing */
	src_end = now_ms() + 5000;
	while (!bring_io_source_stats(io, 0, &es) && es.state != BRING_IO_DONE &&
	       now_ms() < src_end)
		usleep(1000);
	EXPECT_STREQ(src, es.uri);
	EXPECT_NULL(es.reader);
	EXPECT_EQ(lines, es.msgs);
	EXPECT_EQ(p - text, es.bytes);
	EXPECT_EQ(BRING_IO_DONE, es.state);
	for (i = 0; i < 2; i++) {
		uint64_t end = now_ms() + 5000;

		/*
		 * Written, then shifted and counted; the source's last
		 * reservation (its read at EOF) is aborted after that, and
		 * the sink passes it when woken: then nothing lags.
		 */
		while (!bring_io_sink_stats(io, i, &es) &&
		       (es.msgs < (uint64_t)lines || es.lag) && now_ms() < end)
			usleep(1000);
		EXPECT_STREQ(i ? dst2 : dst, es.uri);
		EXPECT_STREQ(i ? "sink1" : "first", es.reader);
		EXPECT_EQ(lines, es.msgs);
		EXPECT_EQ(p - text, es.bytes);
		EXPECT_EQ(0, es.lag);
		EXPECT_EQ(0, es.last_err);
	}
	ASSERT_EQ(0, bring_io_sink_stats(io, 2, &es));
	EXPECT_STREQ("away", es.reader);
	EXPECT_EQ(0, es.msgs);
	EXPECT_EQ(BRING_IO_RECONNECTING, es.state);
	EXPECT_EQ(-ECONNREFUSED, es.last_err);
	EXPECT_GE(es.lag, (uint64_t)(p - text)); /* framing on top */
	bring_io_get_stats(io, &st);
	EXPECT_EQ(2 * lines, st.msgs_out);
	EXPECT_EQ(lines, st.msgs_in);

	/* The collector comes: "away" connects (not a reconnect) and drains. */
	ASSERT_EQ(0, listen(lfd, 4));
	EXPECT_EQ(p - text, accept_to_file(lfd, self->path[SCRATCH]));
	close(lfd);
	pthread_join(th, NULL);
	EXPECT_EQ(0, t.ret);
	ASSERT_EQ(0, bring_io_sink_stats(io, 2, &es));
	EXPECT_EQ(lines, es.msgs);
	EXPECT_EQ(BRING_IO_DONE, es.state);
	EXPECT_EQ(0, es.reconnects);
	EXPECT_EQ(-ECONNREFUSED, es.last_err); /* the last one, kept */
	bring_io_free(io);
	bring_free(r);
	free(text);
}

extern int bring__fault_flush; /* lib/file.c: make flushes fail */

/*
 * A ring that refuses data (a file ring poisoned by a failed flush:
 * -EIO) ends the run with that error, said once; it is not mistaken for
 * the ring closing.
 */
/* What the library and bring_io print, when a test asks to see it. */
TEST_F(io, ring_error_fails_the_run)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER,
		   .durability = BRING_DURABLE_ALWAYS);
	char src[PATH_MAX + 8], ring[PATH_MAX + 8];
	bring_print_fn_t old_print, old_io_print;
	struct bring_io *io;
	struct bring *r;
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_mode_io_flags(variant->mode));

	snprintf(ring, sizeof(ring), "%s.ring", self->path[SCRATCH]);
	r = bring_open(ring, 1 << 20, &ro);
	ASSERT_NE_NULL(r);
	ASSERT_EQ(0, spew(self->path[IN], "one\ntwo\n", 8));
	snprintf(src, sizeof(src), "file:%s", self->path[IN]);
	io = bring_io_new(r, &o);
	ASSERT_NE_NULL(io);
	ASSERT_EQ(0, bring_io_add_source(io, src));
	io_said[0] = '\0';
	old_print = bring_set_print(capture_print);
	old_io_print = bring_io_set_print(capture_print);
	__atomic_store_n(&bring__fault_flush, 1, __ATOMIC_RELAXED);
	EXPECT_EQ(-EIO, bring_io_run(io));
	__atomic_store_n(&bring__fault_flush, 0, __ATOMIC_RELAXED);
	bring_set_print(old_print);
	bring_io_set_print(old_io_print);
	/* Said once by the ring, once by the source that met it. */
	EXPECT_NE_NULL(strstr(io_said, "ring poisoned")) TH_LOG("%s", io_said);
	EXPECT_NE_NULL(strstr(io_said, ": ring: Input/output error"))
		TH_LOG("%s", io_said);
	EXPECT_NE_NULL(strstr(io_said, src)) TH_LOG("%s", io_said);
	bring_io_free(io);
	bring_free(r);
	unlink(ring);
}

/* ---- a stop while the ring is full ------------------------------------ */

/* Numbered lines of 30 bytes from line @i on, up to @room bytes. */
static size_t more_lines(char *buf, size_t room, unsigned int *i)
{
	size_t len = 0;

	while (room - len > 30)
		len += sprintf(buf + len, "%08u the quick brown fox\n", (*i)++);
	return len;
}

/*
 * Write numbered lines to @fd (non-blocking) until the source reading it
 * waits for ring space; @in holds what was written (returned: its size,
 * 0 after 10 s). Nothing reads the ring, so that wait never ends alone.
 */
static size_t feed_until_full(struct bring_io *io, struct bring *r, int fd,
			      char *in, size_t cap)
{
	struct bring_io_stats st = { .sz = sizeof(st) };
	struct bring_stats rs = { .sz = sizeof(rs) };
	uint64_t end = now_ms() + 10000;
	size_t n = 0, w = 0;
	unsigned int i = 0;
	ssize_t k;

	while (now_ms() < end) {
		/* The loops count their waits; the ring its futex sleeps. */
		bring_io_get_stats(io, &st);
		bring_get_stats(r, &rs);
		if (st.full_waits || rs.futex_waits)
			return w;
		if (w == n)
			n += more_lines(in + n, cap - n < 4096 ? cap - n : 4096,
					&i);
		k = write(fd, in + w, n - w);
		if (k > 0)
			w += k;
		else
			usleep(1000);
	}
	return 0;
}

/*
 * The source reads a pipe into a 64 KiB ring whose only reader does not
 * read, waits for space, and is stopped: bring_io_run() returns 0 within
 * 5 s, and the ring holds whole lines from the start of the input, as
 * many as counted in.
 */
static void stop_while_full(struct __test_metadata *_metadata,
			    const FIXTURE_VARIANT(io) *variant,
			    unsigned int flags)
{
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	struct bring_io_stats st = { .sz = sizeof(st) };
	struct bring *r = bring_new(64 << 10, &ro);
	size_t cap = 4 << 20, n, len;
	char *in = malloc(cap), *got, src[32];
	struct io_thread t = { 0 };
	struct bring_reader *rd;
	struct timespec ts;
	long recs, multi;
	pthread_t th;
	uint64_t t0;
	int p[2], err;
	BRING_IO_OPTS(o, .flags = flags | BRING_IO_QUIET |
			       io_mode_io_flags(variant->mode));

	ASSERT_NE_NULL(r);
	rd = bring_reader_open(r, "idle"); /* read only at the end */
	ASSERT_NE_NULL(rd);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	ASSERT_EQ(0, fcntl(p[1], F_SETFL, O_NONBLOCK));
	snprintf(src, sizeof(src), "file:/dev/fd/%d", p[0]);
	t.io = bring_io_new(r, &o);
	ASSERT_NE_NULL(t.io);
	ASSERT_EQ(0, bring_io_add_source(t.io, src));
	close(p[0]);
	ASSERT_EQ(0, pthread_create(&th, NULL, io_thread_run, &t));
	n = feed_until_full(t.io, r, p[1], in, cap);
	ASSERT_GT(n, 0);
	t0 = now_ms();
	bring_io_stop(t.io);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	err = pthread_timedjoin_np(th, NULL, &ts);
	if (err) {
		TH_LOG("%s: bring_io_run() still waits 5 s after the stop",
		       flags ? "line records" : "chunk records");
		bring_close(r); /* let it go */
		pthread_join(th, NULL);
	}
	else
		TH_LOG("%s: stopped after %llu ms",
		       flags ? "line records" : "chunk records",
		       (unsigned long long)(now_ms() - t0));
	EXPECT_EQ(0, err);
	EXPECT_EQ(0, t.ret);
	bring_io_get_stats(t.io, &st);
	got = drain_records(rd, n, &len, &recs, &multi);
	EXPECT_GT(len, 0);
	EXPECT_EQ(0, memcmp(got, in, len));
	if (len)
		EXPECT_EQ('\n', got[len - 1]);
	EXPECT_EQ(count_lines(got, len), (long)st.msgs_in);
	free(got);
	free(in);
	close(p[1]);
	bring_reader_close(rd);
	bring_io_free(t.io);
	bring_free(r);
}

/*
 * A stop ends a source's wait for ring space, in every mode: with chunk
 * records it waits to reserve, with one record per line to push.
 */
TEST_F(io, stop_ends_a_wait_for_space)
{
	stop_while_full(_metadata, variant, 0);
	stop_while_full(_metadata, variant, BRING_IO_LINE_RECORDS);
}

/*
 * bringcat with a 64 KiB ring, a tcp-listen source and a FIFO sink that
 * nobody reads yet, fed until nothing moves for 200 ms: FIFO, ring and
 * socket are full and the source waits for space. Then SIGTERM.
 */
struct full_stop {
	pid_t pid;
	int rfd; /* the FIFO's read end */
	int cfd; /* the client's socket */
	char *in; /* what was sent */
	size_t sent;
	uint64_t t_term; /* ms, when SIGTERM went */
};

static void sigterm_when_full(struct __test_metadata *_metadata,
			      FIXTURE_DATA(io) *self, const char *records,
			      void (*hook)(void), struct full_stop *f)
{
	char fout[PATH_MAX + 8];
	const char *args[] = { self->mode, "--stats", "--buffer", "mem:64k",
			       records, "-i", "tcp-listen:127.0.0.1:0",
			       "-o", fout, NULL };
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	size_t cap = 64 << 20, n = 0;
	uint64_t end = now_ms() + 20000;
	unsigned int i = 0;
	struct pollfd pc;
	int port;
	ssize_t k;

	signal(SIGPIPE, SIG_IGN);
	ASSERT_EQ(0, mkfifo(self->path[FIFO], 0600));
	f->rfd = open(self->path[FIFO], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_GE(f->rfd, 0);
	snprintf(fout, sizeof(fout), "file:%s", self->path[FIFO]);
	f->pid = hook ? spawn_hooked(NULL, self->path[ERR1], args, hook) :
			spawn(NULL, self->path[ERR1], args);
	port = wait_port(self->path[ERR1]);
	ASSERT_GT(port, 0);
	sa.sin_port = htons(port);
	f->cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(0, connect(f->cfd, (struct sockaddr *)&sa, sizeof(sa)));
	f->in = malloc(cap);
	ASSERT_NE_NULL(f->in);
	f->sent = 0;
	for (;;) {
		ASSERT_LT(now_ms(), end);
		if (f->sent == n) {
			ASSERT_GT(cap - n, 4096);
			n += more_lines(f->in + n, 4096, &i);
		}
		k = send(f->cfd, f->in + f->sent, n - f->sent,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k > 0) {
			f->sent += k;
			continue;
		}
		pc = (struct pollfd){ .fd = f->cfd, .events = POLLOUT };
		if (poll(&pc, 1, 200) == 0)
			break;
	}
	f->t_term = now_ms();
	kill(f->pid, SIGTERM);
}

/*
 * Read the FIFO to its end (bringcat closed it), @pause_us between reads
 * of at most 4 KiB; then bringcat must exit 0, and what came out be whole
 * lines from the start of the input, as many as counted out.
 */
static void drain_and_check(struct __test_metadata *_metadata,
			    FIXTURE_DATA(io) *self, struct full_stop *f,
			    unsigned int pause_us)
{
	size_t len = 0, room;
	uint64_t end = now_ms() + 20000;
	struct pollfd pc;
	char *got = malloc(f->sent + 1);
	ssize_t k;

	ASSERT_NE_NULL(got);
	for (;;) {
		pc = (struct pollfd){ .fd = f->rfd, .events = POLLIN };
		if (poll(&pc, 1, 100) < 0 || now_ms() > end)
			break;
		room = f->sent + 1 - len;
		k = read(f->rfd, got + len, room < 4096 ? room : 4096);
		if (k == 0 && (pc.revents & POLLHUP))
			break;
		if (k > 0)
			len += k;
		if (pause_us)
			usleep(pause_us);
	}
	close(f->rfd);
	close(f->cfd);
	ASSERT_EQ(0, wait_rc(f->pid, 10000));
	EXPECT_GT(len, 0);
	EXPECT_LE(len, f->sent);
	EXPECT_EQ(0, memcmp(got, f->in, len));
	if (len)
		EXPECT_EQ('\n', got[len - 1]);
	EXPECT_EQ(count_lines(got, len), final_stat(self->path[ERR1], NULL,
						    "out "));
	free(got);
	free(f->in);
}

/*
 * The sink's FIFO is not read at all: the ring stays full, so after
 * SIGTERM the source gives up what it holds once nothing drained for
 * IO_STOP_STALL_MS (500 ms) and lets go of its connection, well before
 * the sink writes anything. Once the FIFO is read, bringcat writes what
 * the ring holds and exits 0.
 */
TEST_F(io, sigterm_ends_a_wait_for_space)
{
	struct full_stop f;
	struct pollfd pc;
	int ret;

	sigterm_when_full(_metadata, self, "--line-records", NULL, &f);
	pc = (struct pollfd){ .fd = f.cfd, .events = POLLRDHUP };
	ret = poll(&pc, 1, 5000);
	EXPECT_EQ(1, ret)
		TH_LOG("the source still holds its connection 5 s after SIGTERM");
	if (ret == 1)
		TH_LOG("%zu bytes sent; connection closed %llu ms after SIGTERM",
		       f.sent, (unsigned long long)(now_ms() - f.t_term));
	drain_and_check(_metadata, self, &f, 0);
}

/*
 * The sink's FIFO is read slowly from the moment of SIGTERM: the ring
 * keeps draining, so the source pushes every line it had read before
 * the stop (one record per line: read into staging, then pushed) and
 * drops nothing but a partial last line. Giving up at once dropped
 * 600-1,300 complete lines here.
 */
TEST_F(io, sigterm_with_a_draining_sink_drops_no_line)
{
	struct full_stop f;

	sigterm_when_full(_metadata, self, "--line-records", NULL, &f);
	drain_and_check(_metadata, self, &f, 2000);
	EXPECT_LE(final_stat(self->path[ERR1], NULL, "dropped "), 1)
		TH_LOG("complete lines read before the stop were dropped");
}

/*
 * Without futex_waitv(2) (before Linux 5.16, or refused) the readv/writev
 * mode waits for ring space in 100 ms FUTEX_WAIT slices and looks at the
 * stop flag between them: SIGTERM still ends a wait on a ring nobody
 * drains, and the sink still drains and exits 0 afterwards.
 */
TEST_F(io, sigterm_ends_a_wait_for_space_without_futex_waitv)
{
	struct full_stop f;
	struct pollfd pc;
	int ret;

#if !defined(__x86_64__)
	SKIP(return, "the seccomp filter is written for x86-64");
#endif
	if (variant->mode != IO_MODE_FALLBACK)
		SKIP(return, "only the readv/writev mode waits with futex_waitv");
	sigterm_when_full(_metadata, self, "--line-records", deny_futex_waitv,
			  &f);
	pc = (struct pollfd){ .fd = f.cfd, .events = POLLRDHUP };
	ret = poll(&pc, 1, 5000);
	EXPECT_EQ(1, ret)
		TH_LOG("the source still holds its connection 5 s after SIGTERM");
	drain_and_check(_metadata, self, &f, 0);
}

/* ---- a thread that cannot start ---------------------------------------- */

extern int bring_io__fault_thread; /* io/fallback.c: fail a thread start */

static void *idle_thread(void *arg)
{
	return arg;
}

/* Threads of this process. */
static int own_threads(void)
{
	struct stat st;

	return stat("/proc/self/task", &st) ? -1 : (int)st.st_nlink - 2;
}

/*
 * Threads of this process once they are down to @want, or after 2 s: a
 * joined thread leaves /proc/self/task a moment after pthread_join()
 * returns (the kernel clears its tid before it is reaped).
 */
static int own_threads_settled(int want)
{
	uint64_t end = now_ms() + 2000;
	int n;

	while ((n = own_threads()) != want && now_ms() < end)
		usleep(1000);
	return n;
}

/* The fewest threads of this process seen in @ms ms. */
static int own_threads_fewest(int ms)
{
	uint64_t end = now_ms() + ms;
	int n, fewest = own_threads();

	while (now_ms() < end) {
		usleep(1000);
		n = own_threads();
		if (n < fewest)
			fewest = n;
	}
	return fewest;
}

/*
 * The readv/writev mode starts a thread per sink, then per source. When
 * the n-th cannot start (the fault hook: EAGAIN, garbage in its
 * pthread_t), bring_io_run() stops and joins exactly the threads that
 * run, including a tcp-listen source that would never end by itself,
 * never joins the one that did not start, says which endpoint it was,
 * and returns -EAGAIN.
 */
TEST_F(io, thread_start_failure_stops_the_others)
{
	char in[PATH_MAX + 8], out[PATH_MAX + 8], out2[PATH_MAX + 8];
	const char *uris[] = { out, out2, "tcp-listen:127.0.0.1:0", in };
	BRING_OPTS(ro, .flags = BRING_NO_DEFAULT_READER);
	BRING_IO_OPTS(o, .flags = BRING_IO_QUIET | io_mode_io_flags(variant->mode));
	bring_print_fn_t old;
	struct io_thread t;
	struct timespec ts;
	struct bring *r;
	pthread_t th;
	int n, before, err;

	if (variant->mode != IO_MODE_FALLBACK)
		SKIP(return, "threads per endpoint are the readv/writev mode's");
	ASSERT_EQ(0, spew(self->path[IN], "one\ntwo\n", 8));
	snprintf(in, sizeof(in), "file:%s", self->path[IN]);
	snprintf(out, sizeof(out), "file:%s", self->path[OUT]);
	snprintf(out2, sizeof(out2), "file:%s", self->path[OUT2]);
	/* A thread first: TSan starts one of its own with the first. */
	ASSERT_EQ(0, pthread_create(&th, NULL, idle_thread, NULL));
	pthread_join(th, NULL);
	before = own_threads_fewest(200); /* that one gone, TSan's kept */
	for (n = 1; n <= 4; n++) {
		r = bring_new(1 << 20, &ro);
		ASSERT_NE_NULL(r);
		t = (struct io_thread){ .io = bring_io_new(r, &o) };
		ASSERT_NE_NULL(t.io);
		ASSERT_EQ(0, bring_io_add_sink(t.io, out, NULL));
		ASSERT_EQ(0, bring_io_add_sink(t.io, out2, NULL));
		ASSERT_EQ(0, bring_io_add_source(t.io, uris[2]));
		ASSERT_EQ(0, bring_io_add_source(t.io, in));
		io_said[0] = '\0';
		old = bring_io_set_print(capture_print);
		__atomic_store_n(&bring_io__fault_thread, n, __ATOMIC_RELAXED);
		ASSERT_EQ(0, pthread_create(&th, NULL, io_thread_run, &t));
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		err = pthread_timedjoin_np(th, NULL, &ts);
		ASSERT_EQ(0, err) TH_LOG("thread %d failed: still running", n);
		bring_io_set_print(old);
		EXPECT_EQ(-EAGAIN, t.ret) TH_LOG("thread %d failed", n);
		EXPECT_EQ(0, __atomic_load_n(&bring_io__fault_thread,
					     __ATOMIC_RELAXED));
		/* The threads that ran were joined: none is left. */
		EXPECT_EQ(before, own_threads_settled(before))
			TH_LOG("thread %d failed", n);
		EXPECT_NE_NULL(strstr(io_said, uris[n - 1]))
			TH_LOG("thread %d failed: said \"%s\"", n, io_said);
		EXPECT_NE_NULL(strstr(io_said, "cannot start a thread: "
					       "Resource temporarily unavailable"))
			TH_LOG("thread %d failed: said \"%s\"", n, io_said);
		bring_io_free(t.io);
		bring_free(r);
	}
}

static rlim_t nproc_limit;

/*
 * The child: an unused uid that may run @nproc_limit tasks (root's
 * limit is not enforced); leak checks off, LSan needs a task of its own.
 */
static void limit_threads(void)
{
	struct rlimit rl = { nproc_limit, nproc_limit };
	uid_t uid = 2000000000 + getpid() % 100000;
	const char *asan = getenv("ASAN_OPTIONS");
	char opts[512];

	snprintf(opts, sizeof(opts), "%s%sdetect_leaks=0", asan ? asan : "",
		 asan ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
	if (setrlimit(RLIMIT_NPROC, &rl) || setgroups(0, NULL) ||
	    setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
		_exit(125);
}

/*
 * bringcat --no-uring under RLIMIT_NPROC (ulimit -u) with room for some
 * of its threads: it exits 1, and says in one line which endpoint's
 * thread could not start, and why.
 */
TEST_F(io, thread_limit_is_a_clear_error)
{
	char port[64], *err, *nl;
	const char *args[] = { "--no-uring", "-i", port, "-i", "-", "-o",
			       "file:/dev/null", "-o", "file:/dev/null",
			       NULL };
	size_t len;
	int rc, held;

	if (variant->mode != IO_MODE_FALLBACK)
		SKIP(return, "threads per endpoint are the readv/writev mode's");
	if (geteuid())
		SKIP(return, "needs root to run bringcat as an unused uid");
	snprintf(port, sizeof(port), "tcp-listen:127.0.0.1:%d",
		 reserve_port(&held));
	/* Itself and two threads, then three (a sink or a source fails). */
	for (nproc_limit = 3; nproc_limit <= 4; nproc_limit++) {
		rc = wait_rc(spawn_hooked(NULL, self->path[ERR1], args,
					  limit_threads),
			     10000);
		if (rc == 125) {
			close(held);
			SKIP(return, "cannot switch to an unused uid here");
		}
		err = slurp(self->path[ERR1], &len);
		ASSERT_NE_NULL(err);
		EXPECT_EQ(1, rc) TH_LOG("RLIMIT_NPROC %d: %s",
					(int)nproc_limit, err);
		nl = strchr(err, '\n');
		EXPECT_TRUE(nl && !nl[1]) TH_LOG("more than one line: %s", err);
		if (nl)
			*nl = '\0';
		EXPECT_EQ(0, strncmp(err, "bringcat: ", 10)) TH_LOG("%s", err);
		EXPECT_NE_NULL(strstr(err, ": cannot start a thread: Resource "
					   "temporarily unavailable"))
			TH_LOG("RLIMIT_NPROC %d: first line \"%s\"",
			       (int)nproc_limit, err);
		free(err);
	}
	close(held);
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
			       io_mode_io_flags(variant->mode));

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

/* ---- UDP and unix endpoints ------------------------------------------- */

/* bringcat's arguments in a uring/fallback test that wants its log lines. */
static const char *loud_mode(const FIXTURE_VARIANT(io) *variant)
{
	return io_mode_flag(variant->mode, "--stats");
}

/*
 * Datagrams of 0 to 1400 bytes, some with newlines, through
 * udp-listen -> ring -> udp: and back: each arrives whole, in order,
 * as sent. The sender waits for every 50 so that no socket overflows.
 * raw framing: with lines, a record's newlines separate messages, and a
 * udp: sink sends each line as a datagram of its own (next test).
 */
TEST_F(io, udp_roundtrip_keeps_datagrams)
{
	const int total = sanitized() ? 500 : 3000, window = 50;
	char sink[64], dg[1500], got[2000];
	const char *args[] = { self->mode, "-f", "raw", "-i",
			       "udp-listen:127.0.0.1:0", "-o", sink, NULL };
	int rx, tx, rport, port, i, j, k, len;
	ssize_t n;
	pid_t p;

	rx = udp_bound(&rport);
	ASSERT_GE(rx, 0);
	snprintf(sink, sizeof(sink), "udp:127.0.0.1:%d", rport);
	p = spawn(NULL, self->path[ERR1], args);
	port = wait_port(self->path[ERR1]);
	ASSERT_GT(port, 0);
	tx = udp_to(port);
	ASSERT_GE(tx, 0);
	for (i = 0; i < total; i += window) {
		for (j = i; j < i + window && j < total; j++) {
			len = (j * 131) % 1401;
			for (k = 0; k < len; k++)
				dg[k] = k % 10 == 9 ? '\n' : 'a' + (j + k) % 26;
			ASSERT_EQ(len, send(tx, dg, len, 0));
		}
		for (j = i; j < i + window && j < total; j++) {
			len = (j * 131) % 1401;
			for (k = 0; k < len; k++)
				dg[k] = k % 10 == 9 ? '\n' : 'a' + (j + k) % 26;
			n = recv_within(rx, got, sizeof(got), 10000);
			ASSERT_EQ(len, n) TH_LOG("datagram %d", j);
			ASSERT_EQ(0, memcmp(dg, got, len)) TH_LOG("datagram %d", j);
		}
	}
	kill(p, SIGTERM);
	EXPECT_EQ(0, wait_rc(p, 10000));
	close(tx);
	close(rx);
}

/*
 * lines from a file into a udp: sink: the source stores them as chunk
 * records (many lines each); the sink sends one datagram per line,
 * without its newline, in order.
 */
TEST_F(io, udp_sink_sends_a_datagram_per_line)
{
	const int total = sanitized() ? 300 : 2000;
	char fin[PATH_MAX + 8], sink[64], line[64], got[128], *text, *p;
	const char *args[] = { self->mode, "-i", fin, "-o", sink, NULL };
	int rx, rport, i;
	ssize_t n;
	pid_t pid;

	text = malloc((size_t)total * sizeof(line));
	ASSERT_NE_NULL(text);
	for (i = 0, p = text; i < total; i++)
		p += sprintf(p, "line %d%s\n", i, i % 7 ? "" : " and more");
	ASSERT_EQ(0, spew(self->path[IN], text, p - text));
	snprintf(fin, sizeof(fin), "file:%s", self->path[IN]);
	rx = udp_bound(&rport);
	ASSERT_GE(rx, 0);
	snprintf(sink, sizeof(sink), "udp:127.0.0.1:%d", rport);
	pid = spawn(NULL, self->path[ERR1], args);
	for (i = 0; i < total; i++) {
		snprintf(line, sizeof(line), "line %d%s", i,
			 i % 7 ? "" : " and more");
		n = recv_within(rx, got, sizeof(got), 10000);
		ASSERT_EQ((ssize_t)strlen(line), n) TH_LOG("datagram %d", i);
		ASSERT_EQ(0, memcmp(line, got, n)) TH_LOG("datagram %d", i);
	}
	EXPECT_EQ(0, wait_rc(pid, 10000));
	close(rx);
	free(text);
}

static size_t put_u32be(char *out, const char *data, uint32_t len)
{
	uint32_t be = htonl(len);

	memcpy(out, &be, 4);
	memcpy(out + 4, data, len);
	return 4 + len;
}

/*
 * --max-msg 100: datagrams a50 b250 c100 d101 e0 f30 (letter: its bytes,
 * number: its size) come out as the pieces listed (u32be on the file sink
 * shows the boundaries), and the policy's counter says 2.
 */
TEST_F(io, udp_oversize_policy)
{
	static const struct {
		const char *mode, *label, *pieces;
		int msgs;
	} pol[] = {
		{ "split", "split ", "a50 b100 b100 b50 c100 d100 d1 e0 f30", 9 },
		{ "truncate", "truncated ", "a50 b100 c100 d100 e0 f30", 6 },
		{ "drop", "dropped ", "a50 c100 e0 f30", 4 },
	};
	static const int sizes[] = { 50, 250, 100, 101, 0, 30 };
	char fout[PATH_MAX + 8], dg[300], want[1024];
	const char *args[] = { self->mode, "--stats", "-f", "u32be", "-m", "100",
			       "--oversize", NULL, "-i", "udp-listen:127.0.0.1:0",
			       "-o", fout, NULL };
	const char *pc;
	size_t w, len;
	unsigned int i, j;
	int port, tx, n;
	char *got, c;
	pid_t p;

	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	for (i = 0; i < 3; i++) {
		unlink(self->path[OUT]);
		unlink(self->path[ERR1]); /* wait_port() reads it */
		args[7] = pol[i].mode;
		p = spawn(NULL, self->path[ERR1], args);
		port = wait_port(self->path[ERR1]);
		ASSERT_GT(port, 0);
		tx = udp_to(port);
		for (j = 0; j < 6; j++) {
			memset(dg, 'a' + j, sizeof(dg));
			ASSERT_EQ(sizes[j], send(tx, dg, sizes[j], 0));
		}
		close(tx);
		for (pc = pol[i].pieces, w = 0; sscanf(pc, "%c%d", &c, &n) == 2;) {
			memset(dg, c, n);
			w += put_u32be(want + w, dg, n);
			pc = strchr(pc, ' ');
			if (!pc++)
				break;
		}
		ASSERT_TRUE(wait_size(self->path[OUT], w, 10000));
		kill(p, SIGTERM);
		ASSERT_EQ(0, wait_rc(p, 10000));
		got = slurp(self->path[OUT], &len);
		EXPECT_EQ(w, len) TH_LOG("--oversize %s", pol[i].mode);
		EXPECT_EQ(0, memcmp(got, want, len < w ? len : w))
			TH_LOG("--oversize %s", pol[i].mode);
		EXPECT_EQ(2, final_stat(self->path[ERR1], NULL, pol[i].label))
			TH_LOG("--oversize %s", pol[i].mode);
		EXPECT_EQ(pol[i].msgs,
			  final_stat(self->path[ERR1], NULL, "in "));
		free(got);
	}
}

/*
 * udp: sink: a message larger than a datagram can carry is dropped,
 * counted and logged; the sink goes on. Then, sending where nobody
 * listens: the ICMP error comes back as ECONNREFUSED on the next send,
 * which is counted and does not end the sink.
 */
TEST_F(io, udp_sink_drops_oversize_and_survives_refused)
{
	char fin[PATH_MAX + 8], sink[64], big[70000], got[100000], *err;
	const char *mode = loud_mode(variant);
	const char *tx_args[] = { mode, "--stats", "-f", "u32be", "-m", "128K",
				  "-i", fin, "-o", sink, NULL };
	const char *tx2_args[] = { mode, "--stats", "-i", "-", "-o", sink,
				   NULL };
	size_t n = 0, len;
	long long noports;
	int rx, rport, wfd;
	pid_t p;

	/* small1, 70000 bytes (more than 65507), small2 */
	memset(big, 'B', sizeof(big));
	n += put_u32be(got + n, "small1", 6);
	n += put_u32be(got + n, big, sizeof(big));
	n += put_u32be(got + n, "small2", 6);
	ASSERT_EQ(0, spew(self->path[IN], got, n));
	snprintf(fin, sizeof(fin), "file:%s", self->path[IN]);
	rx = udp_bound(&rport);
	ASSERT_GE(rx, 0);
	snprintf(sink, sizeof(sink), "udp:127.0.0.1:%d", rport);
	ASSERT_EQ(0, wait_rc(spawn(NULL, self->path[ERR1], tx_args), 10000));
	ASSERT_EQ(6, recv_within(rx, got, sizeof(got), 5000));
	EXPECT_EQ(0, memcmp(got, "small1", 6));
	ASSERT_EQ(6, recv_within(rx, got, sizeof(got), 5000));
	EXPECT_EQ(0, memcmp(got, "small2", 6));
	EXPECT_EQ(-1, recv_within(rx, got, sizeof(got), 100));
	EXPECT_EQ(1, final_stat(self->path[ERR1], NULL, "send dropped "));
	EXPECT_EQ(2, final_stat(self->path[ERR1], NULL, "out "));
	err = slurp(self->path[ERR1], &len);
	EXPECT_NE_NULL(strstr(err, "message of 70000 bytes: Message too long: dropped"));
	free(err);
	close(rx);

	/* Nobody on rport now: "one" comes back as an ICMP error. */
	ASSERT_EQ(0, mkfifo(self->path[FIFO], 0600));
	p = spawn(self->path[FIFO], self->path[ERR2], tx2_args);
	wfd = open(self->path[FIFO], O_WRONLY | O_CLOEXEC);
	ASSERT_GE(wfd, 0);
	noports = udp_noports();
	ASSERT_EQ(4, write(wfd, "one\n", 4));
	for (n = 0; n < 500 && udp_noports() == noports; n++)
		usleep(10000);
	EXPECT_GT(udp_noports(), noports);
	ASSERT_EQ(4, write(wfd, "two\n", 4));
	close(wfd);
	ASSERT_EQ(0, wait_rc(p, 10000));
	EXPECT_EQ(2, final_stat(self->path[ERR2], NULL, "out "));
	EXPECT_GE(final_stat(self->path[ERR2], NULL, "errors "), 1);
	err = slurp(self->path[ERR2], &len);
	EXPECT_NE_NULL(strstr(err, "Connection refused (1 so far)"));
	free(err);
}

/*
 * file -> bringcat -> unix: -> unix-listen -> bringcat -> file, lines and
 * raw, byte for byte; the listener removes its socket file at exit.
 */
TEST_F(io, unix_roundtrip)
{
	char sock[PATH_MAX];
	size_t n = 0, i;
	char *in = malloc(4 << 20);

	snprintf(sock, sizeof(sock), "%s/sock", self->dir);
	for (i = 0; n < (3 << 20); i++)
		n += sprintf(in + n, "unix line %zu %.*s\n", i, (int)(i % 40),
			     "0123456789012345678901234567890123456789");
	ASSERT_EQ(0, spew(self->path[IN], in, n));
	ASSERT_EQ(0, pipeline_via(_metadata, self, "lines", "1000", n, sock));
	expect_file(_metadata, self->path[OUT], in, n);
	EXPECT_FALSE(is_socket(sock));
	unlink(self->path[OUT]);
	ASSERT_EQ(0, pipeline_via(_metadata, self, "raw", "65536", n, sock));
	expect_file(_metadata, self->path[OUT], in, n);
	EXPECT_FALSE(is_socket(sock));
	free(in);
}

/*
 * A socket file that a killed listener left behind (nobody listens on
 * it) is replaced; the clients that connect then are served.
 */
TEST_F(io, unix_listen_replaces_stale_socket)
{
	char sock[PATH_MAX], listen[PATH_MAX + 16], fout[PATH_MAX + 8];
	const char *args[] = { self->mode, "-i", listen, "-o", fout, NULL };
	pid_t p;
	int fd;

	snprintf(sock, sizeof(sock), "%s/sock", self->dir);
	snprintf(listen, sizeof(listen), "unix-listen:%s", sock);
	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	ASSERT_EQ(0, make_stale_socket(sock));
	ASSERT_EQ(-1, unix_to(sock));
	p = spawn(NULL, self->path[ERR1], args);
	ASSERT_TRUE(wait_unix(sock));
	fd = unix_to(sock);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(6, write(fd, "stale\n", 6));
	close(fd);
	EXPECT_TRUE(wait_size(self->path[OUT], 6, 10000));
	kill(p, SIGTERM);
	ASSERT_EQ(0, wait_rc(p, 10000));
	EXPECT_EQ(6, file_size(self->path[OUT]));
	EXPECT_FALSE(is_socket(sock));
}

/*
 * util-linux logger(1) as a client: --tcp into tcp-listen, --udp into
 * udp-listen, -u into unix-listen; every message arrives, in order, one
 * line each, with the syslog header logger put in front of it.
 */
TEST_F(io, logger_clients)
{
	static const char *const kinds[] = { "tcp", "udp", "unix" };
	char listen[PATH_MAX + 16], fout[PATH_MAX + 8], cmd[PATH_MAX + 256],
		sock[128], want[64];
	const char *args[] = { self->mode, "-i", listen, "-o", fout, NULL };
	const int lines = 100;
	char *got, *line, *next;
	size_t n = 0, len;
	int k, i, port;
	char *in = malloc(lines * 32);
	pid_t p;

	if (system("command -v logger >/dev/null 2>&1"))
		SKIP(return, "logger (bsdutils) not installed");
	for (i = 0; i < lines; i++)
		n += sprintf(in + n, "logger message %03d\n", i);
	ASSERT_EQ(0, spew(self->path[IN], in, n));
	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	snprintf(sock, sizeof(sock), "%s/sock", self->dir);
	for (k = 0; k < 3; k++) {
		unlink(self->path[OUT]);
		unlink(self->path[ERR1]); /* wait_port() reads it */
		if (k == 2)
			snprintf(listen, sizeof(listen), "unix-listen:%s", sock);
		else
			snprintf(listen, sizeof(listen), "%s-listen:127.0.0.1:0",
				 kinds[k]);
		p = spawn(NULL, self->path[ERR1], args);
		port = k == 2 ? (wait_unix(sock) ? 0 : -1) :
				wait_port(self->path[ERR1]);
		ASSERT_GE(port, 0);
		if (k == 2)
			snprintf(cmd, sizeof(cmd),
				 "logger --socket-errors=on -u %s -t bringtest-%s -f %s",
				 sock, kinds[k], self->path[IN]);
		else
			snprintf(cmd, sizeof(cmd),
				 "logger --%s -n 127.0.0.1 -P %d -t bringtest-%s -f %s",
				 kinds[k], port, kinds[k], self->path[IN]);
		ASSERT_EQ(0, system(cmd)) TH_LOG("%s", cmd);
		EXPECT_TRUE(wait_lines(self->path[OUT], lines, 10000))
			TH_LOG("%s: %ld lines", kinds[k],
			       count_file_lines(self->path[OUT]));
		kill(p, SIGTERM);
		ASSERT_EQ(0, wait_rc(p, 10000));
		got = slurp(self->path[OUT], &len);
		ASSERT_NE_NULL(got);
		for (i = 0, line = got; i < lines && *line; i++, line = next) {
			next = strchr(line, '\n');
			ASSERT_NE_NULL(next);
			*next++ = '\0';
			snprintf(want, sizeof(want), " logger message %03d", i);
			/* "<13>..." then the tag, the message at the end */
			EXPECT_EQ('<', line[0]) TH_LOG("%s", line);
			EXPECT_NE_NULL(strstr(line, kinds[k]));
			EXPECT_TRUE(strlen(line) > strlen(want) &&
				    !strcmp(line + strlen(line) - strlen(want), want))
				TH_LOG("%s: line %d: %s", kinds[k], i, line);
		}
		EXPECT_EQ(lines, i);
		EXPECT_EQ('\0', *line);
		free(got);
	}
	free(in);
}

TEST_F(io, net_errors)
{
	char out[PATH_MAX + 8], uri[PATH_MAX + 16], uri2[300], path[256];
	struct sockaddr_un sun;
	socklen_t slen;
	int fd, port;

	snprintf(out, sizeof(out), "file:%s", self->path[OUT]);
	{
		const char *a[] = { self->mode, "-i", "udp-listen:127.0.0.1", "-o",
				    out, NULL };

		expect_error(_metadata, self, a, 2, "bad address (expected HOST:PORT)");
	}
	{
		const char *a[] = { self->mode, "-i", "-", "-o", "udp:[::1:5", NULL };

		expect_error(_metadata, self, a, 2, "bad address (expected HOST:PORT)");
	}
	{
		const char *a[] = { self->mode, "-i", "-", "-o",
				    "udp:no-such-host.invalid:514", NULL };

		expect_error(_metadata, self, a, 2, "cannot resolve host");
	}
	{
		const char *a[] = { self->mode, "-i", "unix-listen:", "-o", out,
				    NULL };

		expect_error(_metadata, self, a, 2, "bad address (expected a PATH)");
	}
	{
		const char *a[] = { self->mode, "-i", "-", "-o", "unix:", NULL };

		expect_error(_metadata, self, a, 2, "bad address (expected a PATH)");
	}
	{
		const char *a[] = { self->mode, "-i", "-", "-o", "udp-listen:1",
				    NULL };

		expect_error(_metadata, self, a, 2, "unknown sink type");
	}

	/* A UDP port in use. */
	fd = udp_bound(&port);
	ASSERT_GE(fd, 0);
	snprintf(uri, sizeof(uri), "udp-listen:127.0.0.1:%d", port);
	{
		const char *a[] = { self->mode, "-i", uri, "-o", out, NULL };

		expect_error(_metadata, self, a, 1, "Address already in use");
	}
	close(fd);

	/* Longer than sun_path (108 bytes with its NUL). */
	snprintf(path, sizeof(path), "%s/%0120d", self->dir, 0);
	snprintf(uri, sizeof(uri), "unix-listen:%s", path);
	snprintf(uri2, sizeof(uri2), "unix:%s", path);
	{
		const char *a[] = { self->mode, "-i", uri, "-o", out, NULL };

		expect_error(_metadata, self, a, 1, "path too long for a unix socket");
	}
	{
		const char *a[] = { self->mode, "-i", "-", "-o", uri2, NULL };

		expect_error(_metadata, self, a, 1, "path too long for a unix socket");
	}

	/* A regular file where the socket would go: left alone. */
	ASSERT_EQ(0, spew(self->path[SCRATCH], "keep", 4));
	snprintf(uri, sizeof(uri), "unix-listen:%s", self->path[SCRATCH]);
	{
		const char *a[] = { self->mode, "-i", uri, "-o", out, NULL };

		expect_error(_metadata, self, a, 1, "exists and is not a socket");
	}
	EXPECT_EQ(4, file_size(self->path[SCRATCH]));

	/* Somebody listens there: left alone. */
	snprintf(path, sizeof(path), "%s/live", self->dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	slen = unix_addr(&sun, path);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&sun, slen));
	ASSERT_EQ(0, listen(fd, 4));
	snprintf(uri, sizeof(uri), "unix-listen:%s", path);
	{
		const char *a[] = { self->mode, "-i", uri, "-o", out, NULL };

		expect_error(_metadata, self, a, 1, "another process listens on it");
	}
	EXPECT_TRUE(is_socket(path));
	close(fd);

	/* A directory that does not exist. */
	snprintf(uri, sizeof(uri), "unix-listen:%s/no/such/sock", self->dir);
	{
		const char *a[] = { self->mode, "-i", uri, "-o", out, NULL };

		expect_error(_metadata, self, a, 1, "No such file or directory");
	}

}

/* Accept one connection on @lfd and read it to its end into @path. */
static long long accept_to_file(int lfd, const char *path)
{
	char buf[65536];
	long long total = 0;
	int fd = accept(lfd, NULL, NULL), out;
	ssize_t n;

	if (fd < 0)
		return -1;
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	while (out >= 0 && (n = read(fd, buf, sizeof(buf))) > 0) {
		if (write(out, buf, n) != n)
			break;
		total += n;
	}
	close(out);
	close(fd);
	return total;
}

/*
 * A stream sink whose collector is not up at start: said at once in one
 * line, retried with backoff (no line per attempt), and everything is
 * sent once the collector comes. @how: "tcp", "unix" (no socket file),
 * "stale" (a socket file nobody listens on), "self" (tcp to a port of
 * the ephemeral range, in a network namespace whose range is that port
 * and the next: about every other connect is given that very port as
 * its own, and would connect to itself).
 */
#define SELF_PORT 40000
static void collector_late_case(struct __test_metadata *_metadata,
				FIXTURE_DATA(io) *self, const char *how)
{
	char sink[PATH_MAX + 16], sock[PATH_MAX];
	const char *a[] = { self->mode, "-i", "-", "-o", sink, NULL };
	const char *lines = "before the collector\nwas up\n", *why;
	bool unix_ep = !strcmp(how, "unix") || !strcmp(how, "stale");
	bool self_ep = !strcmp(how, "self");
	struct sockaddr_un sun;
	int lfd = -1, port = 0, i;
	size_t len;
	char *err, *got;
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/collector", self->dir);
	unlink(sock);
	if (!strcmp(how, "stale"))
		ASSERT_EQ(0, make_stale_socket(sock));
	if (unix_ep) {
		snprintf(sink, sizeof(sink), "unix:%s", sock);
	} else if (self_ep) {
		why = netns_with_ephemeral_ports(SELF_PORT, SELF_PORT + 1);
		if (why)
			SKIP(return, "%s", why);
		port = SELF_PORT; /* not held: the sink may pick it */
		snprintf(sink, sizeof(sink), "tcp:127.0.0.1:%d", port);
	} else {
		port = reserve_port(&lfd);
		ASSERT_GT(port, 0);
		snprintf(sink, sizeof(sink), "tcp:127.0.0.1:%d", port);
	}
	ASSERT_EQ(0, spew(self->path[IN], lines, strlen(lines)));
	pid = spawn(self->path[IN], self->path[ERR1], a);
	ASSERT_TRUE(wait_text(self->path[ERR1], "retrying until it is up", 5000));
	/* several attempts fail meanwhile (backoff 50 ms, doubling) */
	usleep((self_ep ? 1600 : 400) * 1000);
	EXPECT_EQ(0, waitpid(pid, NULL, WNOHANG)) /* still running */
		TH_LOG("bringcat exited instead of waiting for its collector");
	if (unix_ep) {
		unlink(sock);
		lfd = socket(AF_UNIX, SOCK_STREAM, 0);
		ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&sun,
				  unix_addr(&sun, sock)));
	} else if (self_ep) {
		/* The sink may hold the port for a moment, connected to itself. */
		for (i = 0; i < 200 && lfd < 0; i++) {
			lfd = loopback_listener(port, 0);
			if (lfd < 0)
				usleep(10 * 1000);
		}
		ASSERT_LE(0, lfd) TH_LOG("port %d stays taken", port);
	}
	ASSERT_EQ(0, listen(lfd, 4));
	EXPECT_EQ((long long)strlen(lines),
		  accept_to_file(lfd, self->path[OUT]));
	close(lfd);
	EXPECT_EQ(0, wait_rc(pid, 10000));
	got = slurp(self->path[OUT], &len);
	ASSERT_NE_NULL(got);
	EXPECT_EQ(strlen(lines), len);
	EXPECT_EQ(0, memcmp(got, lines, strlen(lines)));
	free(got);
	/* One line for the failure, not one per attempt. */
	err = slurp(self->path[ERR1], &len);
	ASSERT_NE_NULL(err);
	EXPECT_EQ(count_file_lines(self->path[ERR1]),
		  strstr(err, "connected\n") ? 2 : 1)
		TH_LOG("stderr: %s", err);
	EXPECT_NE_NULL(strstr(err, unix_ep && strcmp(how, "stale") ?
				   "No such file or directory; retrying" :
				   "Connection refused; retrying"));
	free(err);
}

TEST_F(io, tcp_sink_waits_for_its_collector_at_start)
{
	collector_late_case(_metadata, self, "tcp");
}

/* A connect the kernel answers with the sink's own port is refused. */
TEST_F(io, tcp_sink_never_connects_to_itself)
{
	collector_late_case(_metadata, self, "self");
}

TEST_F(io, unix_sink_waits_for_its_socket_at_start)
{
	collector_late_case(_metadata, self, "unix");
	unlink(self->path[OUT]);
	collector_late_case(_metadata, self, "stale");
}

/* "tcp-listen::PORT" listens on every interface: it says so. */
TEST_F(io, listen_on_empty_host_says_every_interface)
{
	const char *a[] = { io_mode_flag(variant->mode, "--stats"), "-i",
			    "tcp-listen::0", "-o", "-", NULL };
	char *err;
	size_t len;
	pid_t pid;

	pid = spawn(NULL, self->path[ERR1], a);
	ASSERT_TRUE(wait_text(self->path[ERR1], "every interface", 5000));
	kill(pid, SIGTERM);
	EXPECT_EQ(0, wait_rc(pid, 10000));
	err = slurp(self->path[ERR1], &len);
	ASSERT_NE_NULL(err);
	EXPECT_NE_NULL(strstr(err, "bringcat: tcp-listen::0: listening on port "));
	EXPECT_NE_NULL(strstr(err, " of every interface (HOST is empty)\n"));
	free(err);
}

#define RC_LINE_LEN 22 /* "reconnect line NNNNNN\n" */

static int write_lines(int fd, int from, int to)
{
	char buf[RC_LINE_LEN + 1];
	int i;

	for (i = from; i < to; i++) {
		snprintf(buf, sizeof(buf), "reconnect line %06d\n", i);
		if (write(fd, buf, RC_LINE_LEN) != RC_LINE_LEN)
			return -1;
	}
	return 0;
}

/*
 * A tcp: (or unix: when @unix_ep) sink whose listener is SIGKILLed while
 * the sink is idle, and comes back later: the sink sees the peer gone
 * before it sends the next lines (a send would succeed and lose them),
 * fails to connect while nobody listens, connects to the new listener
 * and sends every line, exactly once. --stats counts one reconnect.
 */
static void reconnect_case(struct __test_metadata *_metadata,
			   FIXTURE_DATA(io) *self, bool unix_ep)
{
	char listen[PATH_MAX + 16], sink[PATH_MAX + 16], fout[PATH_MAX + 8],
		sock[PATH_MAX], want[RC_LINE_LEN + 1];
	/*
	 * The first listener runs without io_uring: a killed process's
	 * io_uring lets go of its sockets a few milliseconds after it is
	 * reaped, and lines sent meanwhile go into a dying socket (lost, as
	 * documented). Without it, the sockets are closed once it is reaped.
	 */
	const char *rx1a[] = { "--no-uring", "-i", listen, "-o", fout, NULL };
	const char *rx[] = { self->mode, "-i", listen, "-o", fout, NULL };
	const char *tx[] = { self->mode, "--stats", "-i", "-", "-o", sink,
			     NULL };
	const int half = 1000;
	pid_t rx1, rx2, txp;
	int port = 0, wfd, i;
	size_t len;
	char *got;

	snprintf(fout, sizeof(fout), "file:%s", self->path[OUT]);
	snprintf(sock, sizeof(sock), "%s/sock", self->dir);
	if (unix_ep) {
		snprintf(listen, sizeof(listen), "unix-listen:%s", sock);
		snprintf(sink, sizeof(sink), "unix:%s", sock);
	} else {
		snprintf(listen, sizeof(listen), "tcp-listen:127.0.0.1:0");
	}
	rx1 = spawn(NULL, self->path[ERR1], rx1a);
	if (unix_ep) {
		ASSERT_TRUE(wait_unix(sock));
	} else {
		port = wait_port(self->path[ERR1]);
		ASSERT_GT(port, 0);
		snprintf(sink, sizeof(sink), "tcp:127.0.0.1:%d", port);
		snprintf(listen, sizeof(listen), "tcp-listen:127.0.0.1:%d", port);
	}
	ASSERT_EQ(0, mkfifo(self->path[FIFO], 0600));
	txp = spawn(self->path[FIFO], self->path[ERR2], tx);
	/* CLOEXEC: the end of file comes when we close it, not rx2. */
	wfd = open(self->path[FIFO], O_WRONLY | O_CLOEXEC);
	ASSERT_GE(wfd, 0);
	ASSERT_EQ(0, write_lines(wfd, 0, half));
	ASSERT_TRUE(wait_size(self->path[OUT], half * RC_LINE_LEN, 10000));

	/* The listener dies; the sink has nothing to send just now. */
	kill(rx1, SIGKILL);
	waitpid(rx1, NULL, 0);
	if (!unix_ep)
		ASSERT_TRUE(wait_tcp_state(0, port, TCP_CLOSE_WAIT_, 5000));
	ASSERT_EQ(0, write_lines(wfd, half, 2 * half));
	usleep(300 * 1000); /* a few connects fail meanwhile */
	EXPECT_EQ(half * RC_LINE_LEN, file_size(self->path[OUT]));

	/* A new listener (for unix: over the stale socket file rx1 left). */
	rx2 = spawn(NULL, self->path[SCRATCH], rx);
	EXPECT_TRUE(wait_size(self->path[OUT], 2 * half * RC_LINE_LEN, 20000));
	close(wfd);
	ASSERT_EQ(0, wait_rc(txp, 20000));
	EXPECT_EQ(1, final_stat(self->path[ERR2], NULL, "reconnects "));
	EXPECT_EQ(2 * half, final_stat(self->path[ERR2], NULL, "out "));
	kill(rx2, SIGTERM);
	ASSERT_EQ(0, wait_rc(rx2, 10000));
	got = slurp(self->path[OUT], &len);
	ASSERT_EQ(2 * half * RC_LINE_LEN, len);
	for (i = 0; i < 2 * half; i++) {
		snprintf(want, sizeof(want), "reconnect line %06d\n", i);
		ASSERT_EQ(0, memcmp(got + i * RC_LINE_LEN, want, RC_LINE_LEN))
			TH_LOG("line %d: %.*s", i, RC_LINE_LEN - 1,
			       got + i * RC_LINE_LEN);
	}
	free(got);
}

TEST_F(io, tcp_sink_reconnects)
{
	reconnect_case(_metadata, self, false);
}

TEST_F(io, unix_sink_reconnects)
{
	reconnect_case(_metadata, self, true);
}

/* ---- a sink peer killed and restarted while lines flow ---------------- */

#define RS_LINE 64 /* "NNNNNNNNNN " and letters, then '\n' */
#define RS_KILLS 20
/*
 * The most a sink holds unshifted, in lines: one batch is at most 512
 * records or 1 MiB (IO_BATCH_MSGS, IO_BATCH_BYTES), but its first record
 * always comes, and a chunk record is at most one 256 KiB read plus the
 * carried partial line (IO_READ_CHUNK; lines here are 64 bytes).
 */
#define RS_WINDOW (((1U << 20) + (256U << 10) + RS_LINE) / RS_LINE)

static void rs_line(char *p, uint32_t seq)
{
	int i;

	snprintf(p, 12, "%010u ", seq);
	for (i = 11; i < RS_LINE - 1; i++)
		p[i] = 'a' + (seq + i) % 26;
	p[RS_LINE - 1] = '\n';
}

/* The receiver: what it saw, checked line by line as it arrives. */
struct rs {
	uint32_t n; /* lines in the input */
	int64_t last; /* the highest line seen, -1 */
	uint32_t next; /* the line that must come next on this connection */
	bool started; /* this connection brought a whole line */
	uint64_t lines, dups; /* whole lines, those seen before */
	unsigned int max_dup; /* the longest replay */
	char bad[160]; /* the first thing that was wrong */
	char buf[(64 << 10) + RS_LINE];
	size_t len;
};

static void rs_check(struct rs *r, const char *p)
{
	char want[RS_LINE];
	uint32_t seq = strtoul(p, NULL, 10), back;

	rs_line(want, seq);
	if (seq >= r->n || memcmp(p, want, RS_LINE)) {
		snprintf(r->bad, sizeof(r->bad), "garbled line after %lld: %.40s",
			 (long long)r->last, p);
		return;
	}
	if (r->started && seq != r->next) {
		snprintf(r->bad, sizeof(r->bad),
			 "line %u after %u on one connection", seq, r->next - 1);
		return;
	}
	if (!r->started) { /* a new connection: the replayed batch first */
		if (seq > r->last + 1) {
			snprintf(r->bad, sizeof(r->bad),
				 "lost lines %lld to %u", (long long)r->last + 1,
				 seq - 1);
			return;
		}
		back = r->last + 1 - seq;
		if (back > RS_WINDOW) {
			snprintf(r->bad, sizeof(r->bad),
				 "replayed %u lines, more than the window", back);
			return;
		}
		if (back > r->max_dup)
			r->max_dup = back;
		r->started = true;
	}
	if ((int64_t)seq <= r->last)
		r->dups++;
	r->next = seq + 1;
	if ((int64_t)seq > r->last)
		r->last = seq;
	r->lines++;
}

/* Take @n bytes just read into r->buf; check every whole line. */
static void rs_feed(struct rs *r, size_t n)
{
	size_t off = 0;

	r->len += n;
	while (!r->bad[0] && r->len - off >= RS_LINE) {
		rs_check(r, r->buf + off);
		off += RS_LINE;
	}
	memmove(r->buf, r->buf + off, r->len - off);
	r->len -= off;
}

static int rs_listen(int port)
{
	int fd = loopback_listener(port, 0), rcvbuf = 128 << 10;

	/* Before listen(2): accepted sockets take it (and its window). */
	if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
				   sizeof(rcvbuf)) || listen(fd, 4))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int local_port(int fd, bool peer)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (peer ? getpeername(fd, (struct sockaddr *)&sa, &len) :
		   getsockname(fd, (struct sockaddr *)&sa, &len))
		return -1;
	return ntohs(sa.sin_port);
}

/*
 * Kill the receiving end of connection @cfd (from the sender's port to
 * @port) so that no byte is lost inside TCP: stop the sender, read until
 * the sender's send queue and our receive queue are both empty, then
 * reset the connection and close the listener. Returns 1 when killed, 0
 * when the sender closed the connection meanwhile, -1 on trouble.
 */
static int rs_kill_peer(struct __test_metadata *_metadata, struct rs *r,
			pid_t tx, int cfd, int *lfd, int port)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int sport = local_port(cfd, true), inq = 0, st, ret = 1;
	uint64_t end = now_ms() + 20000;
	unsigned int txq = 0;
	ssize_t n;

	kill(tx, SIGSTOP);
	if (waitpid(tx, &st, WUNTRACED) != tx || !WIFSTOPPED(st))
		return -1;
	for (;;) {
		n = recv(cfd, r->buf + r->len, sizeof(r->buf) - r->len,
			 MSG_DONTWAIT);
		if (n > 0) {
			rs_feed(r, n);
			continue;
		}
		if (n == 0) {
			ret = 0;
			break;
		}
		if (ioctl(cfd, SIOCINQ, &inq) ||
		    tcp_sock(sport, port, TCP_ESTABLISHED_, &txq) < 0)
			txq = inq = 0;
		if (!inq && !txq)
			break;
		if (now_ms() > end) {
			TH_LOG("sender's queue %u, ours %d", txq, inq);
			ret = -1;
			break;
		}
		usleep(1000);
	}
	setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(cfd);
	close(*lfd);
	*lfd = -1;
	/* The reset reached the sender before it runs again. */
	if (ret == 1 && !wait_tcp_state(sport, port, -1, 5000))
		ret = -1;
	kill(tx, SIGCONT);
	return ret;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok ? 0 : -EIO;
}

/*
 * Move this test (and what it spawns) into a network namespace of its
 * own, as root or else in a user namespace, with loopback up and TCP
 * send buffers of at most @wmem bytes. 0 or -errno.
 */
static int private_net(unsigned int wmem)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	char map[64], val[64];
	uid_t uid = getuid();
	gid_t gid = getgid();
	int fd, err = 0;

	if (unshare(CLONE_NEWNET)) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNET))
			return -errno;
		snprintf(map, sizeof(map), "0 %u 1", uid);
		err = write_file("/proc/self/uid_map", map);
		write_file("/proc/self/setgroups", "deny");
		snprintf(map, sizeof(map), "0 %u 1", gid);
		err = err ? err : write_file("/proc/self/gid_map", map);
		if (err)
			return err;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr))
		err = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!err && ioctl(fd, SIOCSIFFLAGS, &ifr))
		err = -errno;
	if (fd >= 0)
		close(fd);
	snprintf(val, sizeof(val), "4096 16384 %u", wmem);
	return err ? err : write_file("/proc/sys/net/ipv4/tcp_wmem", val);
}

/* accept() within 20 s, -1 when the sender exited or time is up. */
static int rs_accept(int lfd, pid_t tx)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	uint64_t end = now_ms() + 20000;

	while (now_ms() < end) {
		if (poll(&p, 1, 100) == 1)
			return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (waitpid(tx, NULL, WNOHANG) == tx)
			return -1;
	}
	return -1;
}

/*
 * "Sink peer killed and restarted 20 times while 1,000,000 lines flow:
 * nothing lost, order kept, duplicates only within the unshifted window."
 * (250,000 lines under sanitizers.)
 *
 * The peer is this test: it accepts, checks every line as it comes, and
 * 20 times, spread over the first 40% of the stream, kills the
 * connection and the listener and listens again. A sink shifts a batch
 * once the kernel took all of it, so bytes in the dead peer's receive
 * queue or still in the sender's send queue would be lost without any
 * fault of the sink (TCP acknowledges to the kernel, not to the
 * application; see Documentation/io.rst). Each kill therefore happens
 * with both queues empty (the sender stopped meanwhile): from then on,
 * what the sender has not shifted is all it must send again.
 *
 * Each kill reads the sender's whole send queue: the test runs in a
 * network namespace of its own whose TCP send buffers are at most 256 KiB
 * (4 MiB by default), so that 20 kills do not use the stream up.
 *
 * Checked: every line 0..N-1 arrives, whole; on one connection lines are
 * consecutive; a new connection starts at most RS_WINDOW lines back
 * (the replayed batch) and never past the next line; the sender exits 0
 * with 20 reconnects counted.
 */
TEST_F_TIMEOUT(io, tcp_sink_peer_restarts_lose_nothing, 180)
{
	uint32_t n = sanitized() ? 250000 : 1000000, i;
	char fin[PATH_MAX + 8], sink[64], *in;
	const char *tx[] = { self->mode, "--stats", "--buffer", "mem:1M", "-i",
			     fin, "-o", sink, NULL };
	int lfd, cfd, port, kills = 0, conns = 0, ret;
	struct rs *r = calloc(1, sizeof(*r));
	bool done = false;
	size_t elen;
	ssize_t got;
	pid_t txp;

	ret = private_net(256 << 10);
	if (ret)
		SKIP(free(r); return, "no network namespace of its own: %s",
		     strerror(-ret));
	in = malloc((size_t)n * RS_LINE);
	ASSERT_NE_NULL(in);
	for (i = 0; i < n; i++)
		rs_line(in + (size_t)i * RS_LINE, i);
	ASSERT_EQ(0, spew(self->path[IN], in, (size_t)n * RS_LINE));
	free(in);
	r->n = n;
	r->last = -1;
	lfd = rs_listen(0);
	ASSERT_GE(lfd, 0);
	port = local_port(lfd, false);
	snprintf(fin, sizeof(fin), "file:%s", self->path[IN]);
	snprintf(sink, sizeof(sink), "tcp:127.0.0.1:%d", port);
	txp = spawn(NULL, self->path[ERR2], tx);

	while (!done && !r->bad[0]) {
		cfd = rs_accept(lfd, txp);
		if (cfd < 0) {
			char *e = slurp(self->path[ERR2], &elen);

			TH_LOG("no connection after %d kills; sender: %s", kills,
			       e ? e : "");
			free(e);
		}
		ASSERT_GE(cfd, 0);
		conns++;
		r->started = false;
		r->len = 0; /* a torn line of the last connection is replayed */
		for (;;) {
			got = read(cfd, r->buf + r->len, sizeof(r->buf) - r->len);
			ASSERT_GE(got, 0);
			if (!got) {
				done = true;
				close(cfd);
				break;
			}
			rs_feed(r, got);
			if (r->bad[0] || kills == RS_KILLS ||
			    r->lines < (uint64_t)(kills + 1) * n / 50)
				continue;
			ret = rs_kill_peer(_metadata, r, txp, cfd, &lfd, port);
			ASSERT_GE(ret, 0);
			kills += ret;
			usleep(20 * 1000); /* refused while nobody listens */
			lfd = rs_listen(port);
			ASSERT_GE(lfd, 0);
			break;
		}
	}
	close(lfd);
	EXPECT_EQ(0, r->bad[0]) TH_LOG("%s", r->bad);
	ASSERT_EQ(0, wait_rc(txp, r->bad[0] ? 0 : 60000));
	TH_LOG("%u lines, %d kills: %llu lines again (at most %u at once)", n,
	       kills, (unsigned long long)r->dups, r->max_dup);
	EXPECT_EQ(n - 1, r->last);
	EXPECT_EQ(0, r->len);
	EXPECT_EQ(RS_KILLS, kills);
	EXPECT_EQ(RS_KILLS + 1, conns);
	EXPECT_EQ(RS_KILLS, final_stat(self->path[ERR2], NULL, "reconnects "));
	EXPECT_EQ(n, final_stat(self->path[ERR2], NULL, "out "));
	EXPECT_EQ(n + r->dups, r->lines);
	free(r);
}


TEST_HARNESS_MAIN
