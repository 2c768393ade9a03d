// SPDX-License-Identifier: GPL-2.0
/*
 * bringcat against hostile clients, full disks, signals and stuck or
 * half-closed peers (issue #13), in every io mode: a connection flood
 * past RLIMIT_NOFILE and --max-conns; a sink file on a full disk keeps
 * its cursor and retries; SIGHUP and renamed outputs reopen file sinks;
 * a peer that never reads times out and a stop still ends; a peer that
 * half-closes its side is not dead.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "io_test_util.h"

/* The port bringcat printed for a "tcp-listen:...:0" source, or -1. */
static int printed_port(const char *err)
{
	size_t len;
	char *s, *p;
	int port = -1;

	if (!wait_text(err, "listening on port ", 5000))
		return -1;
	s = slurp(err, &len);
	p = s ? strstr(s, "listening on port ") : NULL;
	if (p)
		port = atoi(p + strlen("listening on port "));
	free(s);
	return port;
}

/* A listening socket on an ephemeral loopback port; *@port is its port. */
static int tcp_listener(int *port, int rcvbuf)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	/* Inherited by accepted sockets: a small window fills fast. */
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len)) {
		close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* User plus system CPU time of @pid so far, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	p = p ? strrchr(buf, ')') : NULL; /* the name may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return -1;
	return ut + st;
}

static long count_lines(const char *path)
{
	size_t len, i;
	char *s = slurp(path, &len);
	long n = 0;

	for (i = 0; s && i < len; i++)
		n += s[i] == '\n';
	free(s);
	return s ? n : -1;
}

static bool wait_lines(const char *path, long lines, int ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		if (count_lines(path) >= lines)
			return true;
		usleep(10000);
	}
	return false;
}

/* "line NNNNNNN xxxx...\n", @len bytes in all, for lines @from..@to. */
static char *make_lines(int from, int to, size_t len, size_t *n)
{
	char *buf = malloc((size_t)(to - from) * len), *p = buf;
	int i;

	for (i = from; i < to; i++, p += len) {
		memset(p, 'a' + i % 26, len);
		memcpy(p, "line ", 5);
		snprintf(p + 5, 9, "%07d", i);
		p[12] = ' ';
		p[len - 1] = '\n';
	}
	*n = p - buf;
	return buf;
}

FIXTURE(hd)
{
	char dir[64];
	char in[PATH_MAX], out[PATH_MAX], out2[PATH_MAX], err[PATH_MAX],
		err2[PATH_MAX];
	char fin[PATH_MAX + 8], fout[PATH_MAX + 8], fout2[PATH_MAX + 8];
	const char *mode;
};

IO_MODE_VARIANTS(hd);

FIXTURE_SETUP(hd)
{
	find_bringcat();
	signal(SIGPIPE, SIG_IGN); /* a bringcat that died: fail, not die */
	if (access(bringcat, X_OK))
		SKIP(return, "%s not built", bringcat);
	if (io_mode_missing(variant->mode))
		SKIP(return, "%s", io_mode_missing(variant->mode));
	/* Sanitized runs are slow: the eventfd variant only runs plain. */
	if (getenv("BRING_SANITIZED") && variant->mode == IO_MODE_EVENTFD)
		SKIP(return, "the eventfd variant runs unsanitized only");
	self->mode = io_mode_flag(variant->mode, "--stats");
	strcpy(self->dir, "/tmp/harden_test.XXXXXX");
	ASSERT_NE_NULL(mkdtemp(self->dir));
	snprintf(self->in, PATH_MAX, "%s/in", self->dir);
	snprintf(self->out, PATH_MAX, "%s/out", self->dir);
	snprintf(self->out2, PATH_MAX, "%s/out2", self->dir);
	snprintf(self->err, PATH_MAX, "%s/err", self->dir);
	snprintf(self->err2, PATH_MAX, "%s/err2", self->dir);
	snprintf(self->fin, sizeof(self->fin), "file:%s", self->in);
	snprintf(self->fout, sizeof(self->fout), "file:%s", self->out);
	snprintf(self->fout2, sizeof(self->fout2), "file:%s", self->out2);
}

/* bringcat @args reading the FIFO self->in; *@wfd is its write end. */
static pid_t spawn_fed(FIXTURE_DATA(hd) *self, const char **args, int *wfd)
{
	pid_t pid;

	*wfd = -1;
	if (mkfifo(self->in, 0600))
		return -1;
	pid = spawn(self->in, self->err, args);
	*wfd = open(self->in, O_WRONLY | O_CLOEXEC);
	return pid;
}

FIXTURE_TEARDOWN(hd)
{
	char cmd[128];

	if (!strncmp(self->dir, "/tmp/harden_test.", 17)) {
		snprintf(cmd, sizeof(cmd), "%s/disk", self->dir);
		umount2(cmd, MNT_DETACH); /* where a test mounted one */
		snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
		if (system(cmd))
			TH_LOG("could not remove %s", self->dir);
	}
}

/* The new options refuse what they cannot use: usage errors (2). */
TEST_F(hd, bad_option_values_are_usage_errors)
{
	static const char *const bad[][2] = {
		{ "--max-conns", "0" }, { "--max-conns", "-1" },
		{ "--max-conns", "9x" }, { "--send-timeout", "-1" },
		{ "--send-timeout", "soon" }, { "--send-timeout", "1e99" },
	};
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *args[] = { self->mode, bad[i][0], bad[i][1], "-i",
				       "-", "-o", "-", NULL };

		expect_exit(_metadata, self->err, args, 2, bad[i][0] + 2);
	}
}

/* ---- 1. a connection flood ------------------------------------------- */

#define FLOOD_NOFILE 40
#define FLOOD_CLIENTS 60

static void low_nofile(void)
{
	struct rlimit rl = { FLOOD_NOFILE, FLOOD_NOFILE };

	setrlimit(RLIMIT_NOFILE, &rl);
}

/*
 * 60 clients at a bringcat that may open 40 fds: the accepts it cannot
 * make pause instead of spinning (little CPU over a second, stderr a few
 * lines, not megabytes), and once clients go, the waiting ones are
 * accepted and their lines arrive.
 */
TEST_F(hd, accept_flood_past_nofile_backs_off)
{
	const char *args[] = { self->mode, "--stats", "-i",
			       "tcp-listen:127.0.0.1:0", "-o", self->fout, NULL };
	int fd[FLOOD_CLIENTS], port, i, n;
	long t0, t1;
	char line[32];
	pid_t pid;

	pid = spawn_hooked(NULL, self->err, args, low_nofile);
	port = printed_port(self->err);
	ASSERT_GT(port, 0);
	for (i = 0; i < FLOOD_CLIENTS; i++) {
		fd[i] = loopback_to(SOCK_STREAM, port);
		ASSERT_GE(fd[i], 0);
		n = snprintf(line, sizeof(line), "client %03d\n", i);
		ASSERT_EQ(n, write(fd[i], line, n));
	}
	usleep(300 * 1000);
	t0 = cpu_ticks(pid);
	usleep(1000 * 1000);
	t1 = cpu_ticks(pid);
	ASSERT_GE(t0, 0);
	/* A spinning loop burns ~100 ticks a second; a paused one few. */
	EXPECT_LT(t1 - t0, 25) TH_LOG("%ld ticks in 1 s", t1 - t0);
	EXPECT_LT(file_size(self->err), 4096);
	EXPECT_TRUE(wait_text(self->err, "Too many open files", 1000));
	EXPECT_LT(count_lines(self->out), FLOOD_CLIENTS);

	/* Fds free up: the clients still queued are accepted. */
	for (i = 0; i < FLOOD_CLIENTS - 5; i++)
		close(fd[i]);
	EXPECT_TRUE(wait_lines(self->out, FLOOD_CLIENTS, 10000))
		TH_LOG("%ld of %d lines", count_lines(self->out),
		       FLOOD_CLIENTS);
	for (; i < FLOOD_CLIENTS; i++)
		close(fd[i]);
	kill(pid, SIGTERM);
	ASSERT_EQ(0, wait_rc(pid, 10000));
	EXPECT_EQ(FLOOD_CLIENTS, final_stat(self->err, NULL, "accepted "));
	EXPECT_GE(final_stat(self->err, NULL, "accept failures "), 1);
	EXPECT_LT(file_size(self->err), 4096);
}

/* Is @fd's peer closing it (EOF or reset) within @ms? */
static bool closed_within(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	return poll(&p, 1, ms) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

/*
 * --max-conns 3: a fourth and fifth client are closed at once and
 * counted; when one of the three goes, a new one is taken.
 */
TEST_F(hd, max_conns_refuses_politely)
{
	const char *args[] = { self->mode, "--stats", "--max-conns", "3",
			       "-i", "tcp-listen:127.0.0.1:0", "-o", self->fout,
			       NULL };
	int fd[6], port, i, n;
	char line[32];
	pid_t pid;

	pid = spawn(NULL, self->err, args);
	port = printed_port(self->err);
	ASSERT_GT(port, 0);
	for (i = 0; i < 3; i++) {
		fd[i] = loopback_to(SOCK_STREAM, port);
		ASSERT_GE(fd[i], 0);
		n = snprintf(line, sizeof(line), "client %d\n", i);
		ASSERT_EQ(n, write(fd[i], line, n));
	}
	ASSERT_TRUE(wait_lines(self->out, 3, 5000));
	for (i = 3; i < 5; i++) {
		fd[i] = loopback_to(SOCK_STREAM, port);
		ASSERT_GE(fd[i], 0);
		EXPECT_TRUE(closed_within(fd[i], 3000)) TH_LOG("client %d", i);
		close(fd[i]);
	}
	close(fd[0]);
	usleep(300 * 1000); /* its end is seen */
	fd[5] = loopback_to(SOCK_STREAM, port);
	ASSERT_GE(fd[5], 0);
	EXPECT_FALSE(closed_within(fd[5], 500));
	ASSERT_EQ(8, write(fd[5], "client5\n", 8));
	EXPECT_TRUE(wait_lines(self->out, 4, 5000));
	close(fd[1]);
	close(fd[2]);
	close(fd[5]);
	kill(pid, SIGTERM);
	ASSERT_EQ(0, wait_rc(pid, 10000));
	EXPECT_EQ(2, final_stat(self->err, NULL, "refused "));
	EXPECT_TRUE(wait_text(self->err, "refused", 100));
}

/* ---- 14. a peer that half-closes its side ---------------------------- */

/*
 * A peer that shuts its sending side down as soon as it accepts, then
 * reads to the end: every connection it gets, in one buffer (a sink that
 * takes the FIN for death connects again and sends its batch again).
 */
struct halfclose_peer {
	int lfd;
	int conns; /* accepted */
	char *buf;
	size_t len, cap;
	pthread_t thread;
};

static void *halfclose_run(void *arg)
{
	struct halfclose_peer *p = arg;
	struct pollfd pfd[8];
	int nfd = 1, i;
	ssize_t n;

	pfd[0] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
	while (nfd > 1 || p->conns < 1 || p->lfd >= 0) {
		if (poll(pfd, nfd, 5000) <= 0)
			break; /* the sender is long gone */
		if ((pfd[0].revents & POLLIN) && nfd < 8) {
			pfd[nfd].fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
			pfd[nfd].events = POLLIN;
			shutdown(pfd[nfd].fd, SHUT_WR);
			p->conns++;
			nfd++;
		}
		for (i = 1; i < nfd; i++) {
			if (!pfd[i].revents)
				continue;
			if (p->cap - p->len < 65536) {
				p->cap = p->cap * 2 + 65536;
				p->buf = realloc(p->buf, p->cap);
			}
			n = read(pfd[i].fd, p->buf + p->len, 65536);
			if (n > 0) {
				p->len += n;
				continue;
			}
			close(pfd[i].fd);
			pfd[i--] = pfd[--nfd];
		}
		if (nfd == 1 && p->conns)
			break; /* its connection ended: the sender exited */
	}
	for (i = 1; i < nfd; i++)
		close(pfd[i].fd);
	return NULL;
}

/*
 * Lines in 10 bursts to a tcp: sink whose peer half-closed at once: all
 * of them arrive, once, on the one connection; no reconnect, no "Broken
 * pipe".
 */
TEST_F(hd, half_closed_peer_is_not_dead)
{
	struct halfclose_peer peer = { 0 };
	char sink[64];
	const char *args[] = { self->mode, "--stats", "-i", "-", "-o", sink,
			       NULL };
	const int bursts = 10, per = 200;
	size_t len, total = 0;
	char *want = make_lines(0, bursts * per, 40, &len);
	int port = 0, wfd, i;
	pid_t pid;

	peer.lfd = tcp_listener(&port, 0);
	ASSERT_GE(peer.lfd, 0);
	ASSERT_EQ(0, pthread_create(&peer.thread, NULL, halfclose_run, &peer));
	snprintf(sink, sizeof(sink), "tcp:127.0.0.1:%d", port);
	pid = spawn_fed(self, args, &wfd);
	ASSERT_GE(wfd, 0);
	for (i = 0; i < bursts; i++) {
		ASSERT_EQ((ssize_t)(len / bursts),
			  write(wfd, want + total, len / bursts));
		total += len / bursts;
		usleep(30 * 1000); /* a batch each */
	}
	close(wfd);
	EXPECT_EQ(0, wait_rc(pid, 20000));
	pthread_join(peer.thread, NULL);
	close(peer.lfd);
	EXPECT_EQ(1, peer.conns);
	EXPECT_EQ(len, peer.len);
	EXPECT_EQ(0, memcmp(want, peer.buf, peer.len < len ? peer.len : len));
	EXPECT_EQ(0, final_stat(self->err, NULL, "reconnects "));
	EXPECT_FALSE(wait_text(self->err, "reconnecting", 10));
	free(want);
	free(peer.buf);
}

/* ---- 11. a sink on a full disk --------------------------------------- */

#define DISK_KB 1280 /* the small tmpfs: holds all the lines, not more */
#define DISK_FREE_KB 96 /* left free on it for the sink */
#define FULL_LINES 20000 /* 800 KB: more than the disk takes */

/* A full disk and the sink on it. */
struct disk {
	char dir[PATH_MAX];
	char filler[PATH_MAX + 8];
	char out[PATH_MAX + 8]; /* the sink's file */
	char uri[PATH_MAX + 16]; /* file:out */
};

/*
 * A tmpfs of DISK_KB at @self->dir/disk, in a mount namespace of this
 * test's own, filled but for DISK_FREE_KB by the file "filler"; false
 * (with the reason in @why) where that cannot be done.
 */
static bool small_disk(FIXTURE_DATA(hd) *self, struct disk *d,
		       const char **why)
{
	char opt[32], *buf;
	int fd;
	bool ok;

	snprintf(d->dir, sizeof(d->dir), "%s/disk", self->dir);
	snprintf(d->filler, sizeof(d->filler), "%s/filler", d->dir);
	snprintf(d->out, sizeof(d->out), "%s/out", d->dir);
	snprintf(d->uri, sizeof(d->uri), "file:%s", d->out);
	snprintf(opt, sizeof(opt), "size=%dk", DISK_KB);
	*why = "cannot unshare the mount namespace (not root?)";
	if (unshare(CLONE_NEWNS) ||
	    mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return false;
	*why = "cannot mount a tmpfs";
	if (mkdir(d->dir, 0700) || mount("tmpfs", d->dir, "tmpfs", 0, opt))
		return false;
	buf = calloc(1, (DISK_KB - DISK_FREE_KB) << 10);
	fd = open(d->filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok = fd >= 0 && write(fd, buf, (DISK_KB - DISK_FREE_KB) << 10) ==
				(DISK_KB - DISK_FREE_KB) << 10;
	close(fd);
	free(buf);
	*why = "cannot fill the tmpfs";
	return ok;
}

/* @path holds whole lines of @want, a prefix of it: no torn line. */
static void expect_whole_prefix(struct __test_metadata *_metadata,
				const char *path, const char *want,
				size_t want_len, size_t line_len)
{
	size_t len;
	char *got = slurp(path, &len);

	ASSERT_NE_NULL(got);
	EXPECT_LE(len, want_len);
	EXPECT_EQ(0, len % line_len) TH_LOG("%s: %zu bytes", path, len);
	EXPECT_EQ(0, memcmp(got, want, len < want_len ? len : want_len));
	free(got);
}

/*
 * A bringcat with @args (IN: @want, sinks: the full disk and OUT2) has
 * written all of IN to OUT2 and failed on the disk: a prefix of whole
 * lines there.
 */
static pid_t full_disk_run(struct __test_metadata *_metadata,
			   FIXTURE_DATA(hd) *self, const struct disk *d,
			   const char **args, const char *want, size_t len)
{
	pid_t pid;

	if (spew(self->in, want, len))
		return -1;
	pid = spawn(NULL, self->err, args);
	EXPECT_TRUE(wait_size(self->out2, len, 10000));
	EXPECT_TRUE(wait_text(self->err, "No space left on device", 5000));
	expect_whole_prefix(_metadata, d->out, want, len, 40);
	EXPECT_LT(file_size(d->out), (off_t)len);
	return pid;
}

/* Both sinks ended with all of @want, once. */
static void expect_both_whole(struct __test_metadata *_metadata,
			      FIXTURE_DATA(hd) *self, const struct disk *d,
			      const char *want, size_t len)
{
	expect_whole_prefix(_metadata, d->out, want, len, 40);
	EXPECT_EQ((off_t)len, file_size(d->out));
	EXPECT_EQ((off_t)len, file_size(self->out2));
}

/*
 * Two file sinks on a memory ring, one on a full disk: the healthy one
 * gets every line while the other fails, retries and says so; no partial
 * line stays in the full one; once space is freed it catches up and the
 * run ends with every line in both. The file source's read-ahead (64K)
 * is far less than the lines: it counts from the fastest sink, and the
 * ring holds what the failing one did not take.
 */
TEST_F(hd, full_disk_sink_retries_healthy_sink_flows)
{
	struct disk d;
	const char *args[] = { self->mode, "--stats", "--buffer", "mem:4M",
			       "--read-ahead", "64K", "-i", self->fin, "-o",
			       d.uri, "-o", self->fout2, NULL };
	const char *why;
	size_t len;
	char *want = make_lines(0, FULL_LINES, 40, &len);
	pid_t pid;

	if (!small_disk(self, &d, &why))
		SKIP(return, "%s", why);
	pid = full_disk_run(_metadata, self, &d, args, want, len);
	ASSERT_GT(pid, 0);
	usleep(200 * 1000); /* a retry or two */
	EXPECT_EQ(-1, waitpid(pid, NULL, WNOHANG) == pid ? 0 : -1);
	expect_whole_prefix(_metadata, d.out, want, len, 40);

	ASSERT_EQ(0, unlink(d.filler));
	EXPECT_EQ(0, wait_rc(pid, 15000));
	expect_both_whole(_metadata, self, &d, want, len);
	EXPECT_GE(final_stat(self->err, NULL, "sink retries "), 1);
	/* Counted for the full sink, not for the healthy one. */
	EXPECT_EQ(final_stat(self->err, NULL, "sink retries "),
		  sink_stat(self->err, sink_reader(d.uri), ", retries "));
	EXPECT_EQ(-1, sink_stat(self->err, sink_reader(self->fout2),
				", retries "));
	EXPECT_TRUE(wait_text(self->err, "writing again", 10));
	free(want);
}

/*
 * The same with a file ring, stopped while the sink fails: the sink's
 * reader keeps its place, so the next run (after space was freed) writes
 * exactly the lines it had not, and the healthy sink nothing twice.
 */
TEST_F(hd, full_disk_file_ring_keeps_the_sinks_place)
{
	struct disk d;
	char ring[PATH_MAX + 16], empty[PATH_MAX + 16];
	const char *args[] = { self->mode, "--stats", "--buffer", ring,
			       "--read-ahead", "64K", "-i", self->fin, "-o",
			       d.uri, "-o", self->fout2, NULL };
	const char *why;
	size_t len;
	char *want = make_lines(0, FULL_LINES, 40, &len);
	pid_t pid;

	if (!small_disk(self, &d, &why))
		SKIP(return, "%s", why);
	snprintf(ring, sizeof(ring), "file:%s/ring:4M", self->dir);
	pid = full_disk_run(_metadata, self, &d, args, want, len);
	ASSERT_GT(pid, 0);
	kill(pid, SIGTERM);
	/* A stop ends a failing sink's retries: it gives up, exit 1. */
	EXPECT_EQ(1, wait_rc(pid, 10000));
	EXPECT_TRUE(wait_text(self->err, "giving up", 10));
	expect_whole_prefix(_metadata, d.out, want, len, 40);

	/* Space freed, the next run: nothing more to read, the rest goes. */
	ASSERT_EQ(0, unlink(d.filler));
	snprintf(empty, sizeof(empty), "file:%s/empty", self->dir);
	ASSERT_EQ(0, spew(empty + 5, "", 0));
	args[7] = empty;
	pid = spawn(NULL, self->err2, args);
	EXPECT_EQ(0, wait_rc(pid, 15000));
	expect_both_whole(_metadata, self, &d, want, len);
	free(want);
}

/* ---- 12. SIGHUP, renamed and deleted outputs -------------------------- */

/* Lines @from..@to of make_lines(..., 40, ...) into @fd. */
/*
 * Write lines @from..@to to @fd. A write of megabytes into a FIFO may
 * return short when a signal arrives after part of it went in (seen:
 * 196,608 of 6,000,000 bytes): write on.
 */
static int feed_lines(int fd, int from, int to)
{
	size_t len;
	char *buf = make_lines(from, to, 40, &len);
	int err = fd_write_all(fd, buf, len);

	free(buf);
	return err;
}

/* @path holds exactly lines @from..@to of make_lines(..., 40, ...). */
static void expect_lines(struct __test_metadata *_metadata, const char *path,
			 int from, int to)
{
	size_t len, got_len;
	char *want = make_lines(from, to, 40, &len);
	char *got = slurp(path, &got_len);

	ASSERT_NE_NULL(got);
	EXPECT_EQ(len, got_len) TH_LOG("%s", path);
	EXPECT_EQ(0, memcmp(want, got, len < got_len ? len : got_len));
	free(want);
	free(got);
}

/*
 * A run killed while writing a batch leaves a torn last line; the next
 * run writes that batch again. The torn line is cut off first, not glued
 * to the next one; a tail longer than a line bringcat writes (--max-msg)
 * is no torn line of its own and stays.
 */
TEST_F(hd, torn_last_line_is_cut_before_writing)
{
	const char *args[] = { self->mode, "--max-msg", "100", "-i", self->fin,
			       "-o", self->fout, NULL };
	size_t blen, rlen, len;
	char *both = make_lines(0, 200, 40, &blen);
	char *rest = both + 100 * 40, zs[200], *got;

	rlen = blen - 100 * 40;
	ASSERT_EQ(0, spew(self->in, rest, rlen));
	/* Lines 0..99 whole, then line 100 torn after 17 bytes. */
	ASSERT_EQ(0, spew(self->out, both, 100 * 40 + 17));
	EXPECT_EQ(0, wait_rc(spawn(NULL, self->err, args), 10000));
	expect_lines(_metadata, self->out, 0, 200);
	EXPECT_TRUE(wait_text(self->err, "cut a torn last line of 17 bytes", 10));

	/* 200 bytes without a newline: longer than any line of ours. */
	memset(zs, 'z', sizeof(zs));
	ASSERT_EQ(0, spew(self->out, zs, sizeof(zs)));
	EXPECT_EQ(0, wait_rc(spawn(NULL, self->err, args), 10000));
	got = slurp(self->out, &len);
	ASSERT_NE_NULL(got);
	EXPECT_EQ(sizeof(zs) + rlen, len);
	EXPECT_EQ(0, memcmp(got, zs, sizeof(zs)));
	if (len == sizeof(zs) + rlen)
		EXPECT_EQ(0, memcmp(got + sizeof(zs), rest, rlen));
	free(got);
	free(both);
}

enum rotation {
	ROT_HUP, /* renamed, then SIGHUP (logrotate's way) */
	ROT_PATH, /* renamed, later the new one deleted: no signal */
	ROT_DIR, /* renamed, a directory in its place, then SIGHUP */
};

/*
 * The output is renamed to OUT.1 after 1000 lines and lines 1000..2000
 * follow. ROT_HUP: bringcat lives on, those go to a new file at the
 * path. ROT_PATH: the same, noticed before the lines; then that file is
 * deleted and lines 2000..2500 go to a third. ROT_DIR: the path cannot
 * be opened again: said, and the lines go on into OUT.1. Stdin's end
 * ends the run as usual.
 */
static void rotation_case(struct __test_metadata *_metadata,
			  FIXTURE_DATA(hd) *self, enum rotation how)
{
	static const char *const said[] = {
		[ROT_HUP] = "opened again (asked to)",
		[ROT_PATH] = "opened again (deleted)",
		[ROT_DIR] = "cannot open it again (asked to): Is a directory",
	};
	const char *args[] = { self->mode, "--stats", "-i", "-", "-o",
			       self->fout, NULL };
	char rotated[PATH_MAX + 8];
	int wfd;
	pid_t pid;

	snprintf(rotated, sizeof(rotated), "%s.1", self->out);
	pid = spawn_fed(self, args, &wfd);
	ASSERT_GE(wfd, 0);
	ASSERT_EQ(0, feed_lines(wfd, 0, 1000));
	ASSERT_TRUE(wait_size(self->out, 1000 * 40, 5000));
	ASSERT_EQ(0, rename(self->out, rotated));
	if (how == ROT_DIR)
		ASSERT_EQ(0, mkdir(self->out, 0700));
	if (how != ROT_PATH)
		kill(pid, SIGHUP);
	usleep(300 * 1000); /* longer than the sink looks at its path */
	EXPECT_EQ(-1, waitpid(pid, NULL, WNOHANG) == pid ? 0 : -1);
	ASSERT_EQ(0, feed_lines(wfd, 1000, 2000));
	EXPECT_TRUE(wait_size(how == ROT_DIR ? rotated : self->out,
			      (how == ROT_DIR ? 2000 : 1000) * 40, 5000));
	if (how == ROT_PATH) {
		ASSERT_EQ(0, unlink(self->out));
		usleep(300 * 1000);
		ASSERT_EQ(0, feed_lines(wfd, 2000, 2500));
		EXPECT_TRUE(wait_size(self->out, 500 * 40, 5000));
	}
	close(wfd);
	EXPECT_EQ(0, wait_rc(pid, 10000));
	EXPECT_TRUE(wait_text(self->err, said[how], 10));
	if (how == ROT_DIR) {
		expect_lines(_metadata, rotated, 0, 2000);
		EXPECT_EQ(0, final_stat(self->err, NULL, "reopens "));
		EXPECT_EQ(-1, sink_stat(self->err, sink_reader(self->fout), ", reopens "));
		return;
	}
	expect_lines(_metadata, rotated, 0, 1000);
	expect_lines(_metadata, self->out, how == ROT_HUP ? 1000 : 2000,
		     how == ROT_HUP ? 2000 : 2500);
	EXPECT_EQ(how == ROT_HUP ? 1 : 2,
		  final_stat(self->err, NULL, "reopens "));
	EXPECT_EQ(how == ROT_HUP ? 1 : 2,
		  sink_stat(self->err, sink_reader(self->fout), ", reopens "));
}

TEST_F(hd, sighup_reopens_file_sinks)
{
	rotation_case(_metadata, self, ROT_HUP);
}

TEST_F(hd, renamed_or_deleted_output_is_reopened)
{
	rotation_case(_metadata, self, ROT_PATH);
}

TEST_F(hd, reopen_failure_writes_on_to_the_old_file)
{
	rotation_case(_metadata, self, ROT_DIR);
}

/* ---- 13. a peer that never reads; signals ----------------------------- */

/* A peer that accepts every connection and never reads from it. */
struct stuck_peer {
	int lfd, port;
	int fds[16], nfd;
	bool quit; /* atomic */
	pthread_t thread;
};

static void *stuck_run(void *arg)
{
	struct stuck_peer *p = arg;
	struct pollfd pfd = { .fd = p->lfd, .events = POLLIN };

	while (!__atomic_load_n(&p->quit, __ATOMIC_RELAXED)) {
		if (poll(&pfd, 1, 50) == 1 && p->nfd < 16)
			p->fds[p->nfd++] = accept4(p->lfd, NULL, NULL,
						   SOCK_CLOEXEC);
	}
	return NULL;
}

/* Start the peer; @sink (64 bytes) is the tcp: URI to send to it. */
static int stuck_start(struct stuck_peer *p, char *sink)
{
	memset(p, 0, sizeof(*p));
	p->lfd = tcp_listener(&p->port, 4096);
	if (p->lfd < 0)
		return -1;
	snprintf(sink, 64, "tcp:127.0.0.1:%d", p->port);
	return pthread_create(&p->thread, NULL, stuck_run, p) ? -1 : 0;
}

static void stuck_stop(struct stuck_peer *p)
{
	int i;

	__atomic_store_n(&p->quit, true, __ATOMIC_RELAXED);
	pthread_join(p->thread, NULL);
	for (i = 0; i < p->nfd; i++)
		close(p->fds[i]);
	close(p->lfd);
}

#define STUCK_LINES 150000 /* 6 MB: more than the peer's socket holds */

/*
 * A tcp: sink whose peer never reads beside a file: sink: the file gets
 * every line; the stuck sink's sends time out and it connects again; a
 * SIGTERM then ends the run (the stuck sink gives up), with statistics.
 */
TEST_F(hd, stuck_peer_times_out_and_stop_ends)
{
	struct stuck_peer peer;
	char sink[64];
	const char *args[] = { self->mode, "--stats", "--send-timeout", "0.3",
			       "--buffer", "mem:16M", "-i", "-", "-o", sink,
			       "-o", self->fout, NULL };
	int wfd, rc;
	pid_t pid;

	ASSERT_EQ(0, stuck_start(&peer, sink));
	pid = spawn_fed(self, args, &wfd);
	ASSERT_GE(wfd, 0);
	ASSERT_EQ(0, feed_lines(wfd, 0, STUCK_LINES));
	EXPECT_TRUE(wait_size(self->out, (off_t)STUCK_LINES * 40, 20000));
	EXPECT_TRUE(wait_text(self->err, "Connection timed out", 5000));
	EXPECT_TRUE(wait_text(self->err, "reconnected", 5000));
	kill(pid, SIGTERM);
	rc = wait_rc(pid, 5000);
	/*
	 * 1: the stuck sink gave up. 0: its lines all went into the kernel
	 * buffers of its connections (up to 4 MiB each) before the stop.
	 */
	EXPECT_TRUE(rc == 0 || rc == 1) TH_LOG("exit %d", rc);
	if (rc == 1)
		EXPECT_TRUE(wait_text(self->err, "giving up", 10));
	EXPECT_GE(final_stat(self->err, NULL, "reconnects "), 1);
	EXPECT_GE(final_stat(self->err, NULL, "send timeouts "), 1);
	EXPECT_EQ(final_stat(self->err, NULL, "send timeouts "),
		  sink_stat(self->err, sink_reader(sink), ", send timeouts "));
	EXPECT_EQ(-1, sink_stat(self->err, sink_reader(self->fout),
				", send timeouts "));
	close(wfd);
	stuck_stop(&peer);
	expect_lines(_metadata, self->out, 0, STUCK_LINES);
}

/*
 * Until its send times out (30 s by default) a stuck sink holds the stop
 * up; a second SIGTERM exits at once, 143, and still prints the
 * statistics.
 */
TEST_F(hd, second_signal_exits_with_stats)
{
	struct stuck_peer peer;
	char sink[64];
	const char *args[] = { self->mode, "--stats", "--buffer", "mem:16M",
			       "-i", "-", "-o", sink, NULL };
	int wfd;
	pid_t pid;

	ASSERT_EQ(0, stuck_start(&peer, sink));
	pid = spawn_fed(self, args, &wfd);
	ASSERT_GE(wfd, 0);
	ASSERT_EQ(0, feed_lines(wfd, 0, STUCK_LINES));
	usleep(300 * 1000);
	kill(pid, SIGTERM);
	/* Heard (two pending SIGTERMs would be one), and still draining. */
	ASSERT_TRUE(wait_text(self->err, "SIGTERM: stopping; the sinks drain the ring",
			      10000));
	usleep(300 * 1000);
	EXPECT_EQ(-1, waitpid(pid, NULL, WNOHANG) == pid ? 0 : -1);
	kill(pid, SIGTERM);
	EXPECT_EQ(128 + SIGTERM, wait_rc(pid, 5000));
	EXPECT_EQ(STUCK_LINES, final_stat(self->err, NULL, "in "));
	EXPECT_TRUE(wait_text(self->err, "exiting without draining", 10));
	close(wfd);
	stuck_stop(&peer);
}

TEST_HARNESS_MAIN
