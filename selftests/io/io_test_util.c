// SPDX-License-Identifier: GPL-2.0
/*
 * io_test_util.c - see io_test_util.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "bring_io.h"
#include "io_test_util.h"
#include "../../io/readers.h"

#define MAX_ARGS 32

char bringcat[PATH_MAX + 32];

void find_bringcat(void)
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

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

int loopback_to(int type, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

int loopback_listener(int port, int backlog)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    (backlog && listen(fd, backlog))) {
		close(fd);
		return -1;
	}
	return fd;
}

int reserve_port(int *fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	*fd = loopback_listener(0, 0);
	if (*fd < 0)
		return -1;
	if (getsockname(*fd, (struct sockaddr *)&sa, &len)) {
		close(*fd);
		*fd = -1;
		return -1;
	}
	return ntohs(sa.sin_port);
}

const char *netns_with_ephemeral_ports(int lo, int hi)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	char range[32];
	int fd, ok;

	if (unshare(CLONE_NEWNET))
		return "cannot make a network namespace (unshare CLONE_NEWNET)";
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ok = fd >= 0 && !ioctl(fd, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	ok = ok && !ioctl(fd, SIOCSIFFLAGS, &ifr);
	if (fd >= 0)
		close(fd);
	if (!ok)
		return "cannot bring up lo in a new network namespace";
	snprintf(range, sizeof(range), "%d %d\n", lo, hi);
	if (spew("/proc/sys/net/ipv4/ip_local_port_range", range,
		 strlen(range)))
		return "cannot set net.ipv4.ip_local_port_range";
	return NULL;
}

int wait_port(const char *err)
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

int unix_to(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t n = strlen(path);

	if (n >= sizeof(sun.sun_path))
		n = sizeof(sun.sun_path) - 1;
	memcpy(sun.sun_path, path, n);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

int fd_write_all(int fd, const void *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p = (const char *)p + w;
		n -= w;
	}
	return 0;
}

pid_t spawn(const char *in, const char *err, const char **args)
{
	return spawn_hooked(in, err, args, NULL);
}

pid_t spawn_hooked(const char *in, const char *err, const char **args,
		   void (*before_exec)(void))
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
	if (before_exec)
		before_exec();
	execv(bringcat, (char **)argv);
	_exit(127);
}

int wait_rc(pid_t pid, int ms)
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

char *slurp(const char *path, size_t *len)
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

int spew(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n = write(fd, buf, len);

	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : st.st_size;
}

bool wait_size(const char *path, off_t size, int ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		if (file_size(path) >= size)
			return true;
		usleep(5000);
	}
	return false;
}

bool wait_text(const char *err, const char *what, int ms)
{
	uint64_t end = now_ms() + ms;
	size_t len;
	bool found;
	char *s;

	while (now_ms() < end) {
		s = slurp(err, &len);
		found = s && strstr(s, what);
		free(s);
		if (found)
			return true;
		usleep(5000);
	}
	return false;
}

bool wait_read(pid_t pid, const char *file, long long bytes, int ms)
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

/* The whole stderr file @err (free *@buf) and its final report in it. */
static const char *final_report(const char *err, char **buf)
{
	size_t len;

	*buf = slurp(err, &len);
	return *buf ? strstr(*buf, "bringcat: done") : NULL;
}

long long final_stat(const char *err, const char *after, const char *key)
{
	char *buf;
	const char *p = final_report(err, &buf);
	long long v = -1;

	if (p && after)
		p = strstr(p, after);
	p = p ? strstr(p, key) : NULL;
	if (p)
		v = atoll(p + strlen(key));
	free(buf);
	return v;
}

/* The reader bringcat names after its sink @uri (io/readers.c). */
const char *sink_reader(const char *uri)
{
	static char name[BRING_NAME_MAX];

	readers_sink_name(&uri, 0, name);
	return name;
}

/*
 * @key's figure on the last --stats line of the sink reading as @reader
 * ("bringcat: sink URI (reader READER): ..."), or -1.
 */
long long sink_stat(const char *err, const char *reader, const char *key)
{
	char *buf, *p, *line = NULL, *end, tag[128];
	long long v = -1;
	size_t len;

	buf = slurp(err, &len);
	if (!buf)
		return -1;
	snprintf(tag, sizeof(tag), " (reader %s): ", reader);
	for (p = buf; (p = strstr(p, tag)); p++)
		line = p;
	if (line) {
		end = strchr(line, '\n');
		if (end)
			*end = '\0';
		p = strstr(line, key);
		if (p)
			v = atoll(p + strlen(key));
	}
	free(buf);
	return v;
}

double final_stat_secs(const char *err, const char *key)
{
	char *buf, *end;
	const char *p = final_report(err, &buf);
	double v = -1;

	p = p ? strstr(p, key) : NULL;
	if (p) {
		strtoll(p + strlen(key), &end, 10);
		if (!strncmp(end, " (", 2))
			v = atof(end + 2);
	}
	free(buf);
	return v;
}

bool uring_works(void)
{
	struct io_uring ring;

	if (io_uring_queue_init(4, &ring, 0))
		return false;
	io_uring_queue_exit(&ring);
	return true;
}

bool have_uring(void)
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

const char *io_mode_missing(enum io_mode mode)
{
	if (mode == IO_MODE_EVENTFD && !uring_works())
		return "io_uring unavailable";
	if (mode == IO_MODE_URING && !have_uring())
		return "io_uring with FUTEX_WAIT unavailable";
	return NULL;
}

const char *io_mode_flag(enum io_mode mode, const char *uring_flag)
{
	return mode == IO_MODE_FALLBACK ? "--no-uring" :
	       mode == IO_MODE_EVENTFD	? "--no-futex-wait" :
					  uring_flag;
}

unsigned int io_mode_io_flags(enum io_mode mode)
{
	return mode == IO_MODE_FALLBACK ? BRING_IO_NO_URING :
	       mode == IO_MODE_EVENTFD	? BRING_IO_NO_FUTEX_WAIT :
					  0;
}

void expect_exit(struct __test_metadata *_metadata, const char *errpath,
		 const char **args, int rc, const char *msg)
{
	size_t len;
	char *err;

	EXPECT_EQ(rc, wait_rc(spawn(NULL, errpath, args), 10000));
	err = slurp(errpath, &len);
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
