/* SPDX-License-Identifier: GPL-2.0 */
/*
 * util.h - helpers shared by the selftest programs of selftests/ring and
 * selftests/file: time, child processes, /proc, scratch directories,
 * files as bytes, captured library diagnostics, checksummed messages and
 * the plain memory ring fixture. Header only: static inline functions
 * and macros, so a program that includes it uses what it needs.
 *
 * Include it after kselftest_harness.h (RING_FIXTURE uses its macros).
 */
#ifndef BRING_SELFTESTS_UTIL_H
#define BRING_SELFTESTS_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "bring.h"

/* ------------------------------------------------------------------ */
/* Build and time.                                                    */

/* Nanoseconds in a millisecond: timeouts in ms, clocks in ns. */
#define MS 1000000ULL

/*
 * SANITIZED_THREAD, SANITIZED_ADDRESS: 1 in builds with that sanitizer
 * (gcc says so with __SANITIZE_*__, clang with __has_feature), else 0.
 * For scaling loads down in the much slower sanitized builds.
 */
#if defined(__SANITIZE_THREAD__)
#define SANITIZED_THREAD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SANITIZED_THREAD 1
#endif
#endif
#ifndef SANITIZED_THREAD
#define SANITIZED_THREAD 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED_ADDRESS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED_ADDRESS 1
#endif
#endif
#ifndef SANITIZED_ADDRESS
#define SANITIZED_ADDRESS 0
#endif

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Checksums and pseudo-random numbers.                               */

#define FNV1A_INIT 2166136261U	/* the 32-bit FNV offset basis */

/* 32-bit FNV-1a of @len bytes at @p, continuing from @h (or FNV1A_INIT). */
static inline uint32_t fnv1a(uint32_t h, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ b[i]) * 16777619U;
	return h;
}

/* xorshift64*: the next number of the sequence in *@s (never seed 0). */
static inline uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* ------------------------------------------------------------------ */
/* Rings.                                                             */

/* The ring's counters (the caller sets nothing). */
static inline struct bring_stats get_stats(const struct bring *r)
{
	struct bring_stats st = { .sz = sizeof(st) };

	bring_get_stats(r, &st);
	return st;
}

/*
 * RING_FIXTURE(cap, flags): FIXTURE(ring), a memory ring of @cap bytes
 * created with @flags (enum bring_flags) in self->r, freed in teardown.
 * A line of its own at file scope, without a semicolon.
 */
#define RING_FIXTURE(cap, ring_flags)					\
	FIXTURE(ring)							\
	{								\
		struct bring *r;					\
	};								\
									\
	FIXTURE_SETUP(ring)						\
	{								\
		BRING_OPTS(opts, .flags = (ring_flags));		\
									\
		self->r = bring_new((cap), &opts);			\
		ASSERT_NE_NULL(self->r);				\
	}								\
									\
	FIXTURE_TEARDOWN(ring)						\
	{								\
		bring_free(self->r);					\
	}

/*
 * Test messages: this header, then bytes that depend on it. @id says
 * whose (a writer, a seed), @seq which of its messages, @len is the
 * whole message (header included), @sum the FNV-1a of the whole message
 * with @sum zero.
 */
struct tmsg {
	uint32_t id;
	uint32_t seq;
	uint32_t len;
	uint32_t sum;
};

/* The checksum of the @len-byte message at @buf, as tmsg_build() sets. */
static inline uint32_t tmsg_sum(const void *buf, size_t len)
{
	struct tmsg h;

	memcpy(&h, buf, sizeof(h));
	h.sum = 0;
	return fnv1a(fnv1a(FNV1A_INIT, &h, sizeof(h)),
		     (const uint8_t *)buf + sizeof(h), len - sizeof(h));
}

/* Message (@id, @seq) of @len >= sizeof(struct tmsg) bytes at @buf. */
static inline void tmsg_build(void *buf, size_t len, uint32_t id, uint32_t seq)
{
	struct tmsg h = { .id = id, .seq = seq, .len = (uint32_t)len };
	uint8_t *p = buf;
	size_t i;

	for (i = sizeof(h); i < len; i++)
		p[i] = (uint8_t)(seq * 31 + id * 7 + i);
	memcpy(buf, &h, sizeof(h));
	h.sum = tmsg_sum(buf, len);
	memcpy(buf, &h, sizeof(h));
}

/*
 * Is @msg an intact tmsg_build() message? NULL, with its header in *@h,
 * or what is wrong with it.
 */
static inline const char *tmsg_check(const struct bring_msg *msg,
				     struct tmsg *h)
{
	if (msg->len < sizeof(*h))
		return "short message";
	memcpy(h, msg->data, sizeof(*h));
	if (h->len != msg->len)
		return "length mismatch";
	if (h->sum != tmsg_sum(msg->data, msg->len))
		return "checksum mismatch";
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Child processes.                                                   */

/*
 * In a child process: no harness checks (they would end the child
 * without a word to the parent's logic); say what failed and exit 1.
 */
#define CHILD_CHECK(cond)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "# child %d: %s:%d: %s\n",	\
				(int)getpid(), __FILE__, __LINE__, #cond); \
			_exit(1);					\
		}							\
	} while (0)

/* fork() with nothing buffered, so that nothing is printed twice. */
static inline pid_t fork_child(void)
{
	fflush(NULL);
	return fork();
}

/*
 * Wait for @pid to exit; after @timeout_ms kill it. Returns its wait
 * status, or -1 if it had to be killed (or waitpid failed).
 */
static inline int wait_child(pid_t pid, unsigned int timeout_ms)
{
	uint64_t end = now_ns() + timeout_ms * MS;
	int status;
	pid_t ret;

	for (;;) {
		ret = waitpid(pid, &status, WNOHANG);
		if (ret == pid)
			return status;
		if (ret < 0 && errno != EINTR)
			return -1;
		if (now_ns() > end)
			break;
		usleep(1000);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return -1;
}

/* Is @status (from wait_child()) that of a child that exited with 0? */
static inline bool exited_ok(int status)
{
	return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * Kill @pid with SIGKILL and reap it; its wait status goes to *@status
 * unless that is NULL. 0 if the SIGKILL ended it, -ECHILD if it had
 * ended otherwise, -errno if it could not be reaped.
 */
static inline int kill_child(pid_t pid, int *status)
{
	int st;

	if (!status)
		status = &st;
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL ? 0 :
								      -ECHILD;
}

/* The id of a process that ran and was reaped; -1 if fork() failed. */
static inline pid_t dead_pid(void)
{
	int status;
	pid_t pid = fork_child();

	if (pid == 0)
		_exit(0);
	if (pid > 0 && waitpid(pid, &status, 0) != pid)
		return -1;
	return pid;
}

/* ------------------------------------------------------------------ */
/* Tasks as /proc shows them.                                         */

/* Read a small text file whole into @buf, NUL-terminated: 0 or -1. */
static inline int read_small_file(const char *path, char *buf, size_t sz)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sz - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/*
 * The state letter ('R', 'S', 'T', ...) of thread @tid of process @pid
 * (0: this process), from /proc/PID/task/TID/stat; 0 if unreadable.
 */
static inline char task_state(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat",
		 pid ? pid : getpid(), tid);
	if (read_small_file(path, buf, sizeof(buf)))
		return 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/*
 * Is thread @tid of process @pid (0: this process) asleep in futex(2)?
 * State S, and futex as the current system call where the kernel tells
 * (/proc/.../syscall needs CONFIG_HAVE_ARCH_TRACEHOOK).
 */
static inline bool task_in_futex(pid_t pid, pid_t tid)
{
	char path[64], buf[512];
	long nr;

	if (task_state(pid, tid) != 'S')
		return false;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall",
		 pid ? pid : getpid(), tid);
	if (read_small_file(path, buf, sizeof(buf)))
		return true;
	return sscanf(buf, "%ld", &nr) == 1 && nr == SYS_futex;
}

/* Wait until the task sleeps in futex(2); false after @timeout_ms. */
static inline bool wait_in_futex(pid_t pid, pid_t tid, unsigned int timeout_ms)
{
	uint64_t end = now_ns() + timeout_ms * MS;

	while (!task_in_futex(pid, tid)) {
		if (now_ns() > end)
			return false;
		usleep(1000);
	}
	return true;
}

/* The same for the main thread of single-threaded process @pid. */
static inline bool wait_proc_in_futex(pid_t pid, unsigned int timeout_ms)
{
	return wait_in_futex(pid, pid, timeout_ms);
}

/* ------------------------------------------------------------------ */
/* Scratch directories.                                               */

/* A directory of the test's own, and the ring's path "ring" in it. */
struct tmp {
	char dir[64];
	char path[128];
};

/* mkdtemp() of @base/bring-PROGRAM-XXXXXX: 0 or -errno. */
static inline int tmp_make_in(struct tmp *t, const char *base)
{
	snprintf(t->dir, sizeof(t->dir), "%s/bring-%s-XXXXXX", base,
		 program_invocation_short_name);
	if (!mkdtemp(t->dir)) {
		t->dir[0] = '\0';
		return -errno;
	}
	snprintf(t->path, sizeof(t->path), "%s/ring", t->dir);
	return 0;
}

/* A scratch directory in /tmp. */
static inline int tmp_make(struct tmp *t)
{
	return tmp_make_in(t, "/tmp");
}

/* A scratch directory on tmpfs (/dev/shm) when there is one. */
static inline int tmp_make_shm(struct tmp *t)
{
	return tmp_make_in(t,
			   access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
}

/* Remove the directory and what the test left in it (one level). */
static inline void tmp_remove(struct tmp *t)
{
	struct dirent *de;
	DIR *d;

	if (!t->dir[0])
		return;
	d = opendir(t->dir);
	if (d) {
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") ||
			    !strcmp(de->d_name, ".."))
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) < 0 &&
			    errno == EISDIR)
				unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
		}
		closedir(d);
	}
	rmdir(t->dir);
	t->dir[0] = '\0';
}

/* ------------------------------------------------------------------ */
/* Files as bytes.                                                    */

/* The whole file in a malloc()ed buffer, its size in *@len; or NULL. */
static inline void *read_all(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd;

	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf && pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* Make the file at @path (created 0600 if need be) exactly @buf: 0 or -1. */
static inline int write_all(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pwrite(fd, buf, len, 0);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/* Does the file at @path hold exactly @len bytes @buf? */
static inline bool file_is(const char *path, const void *buf, size_t len)
{
	size_t now_len;
	void *now = read_all(path, &now_len);
	bool same = now && now_len == len && !memcmp(now, buf, len);

	free(now);
	return same;
}

/* pread() or pwrite() of exactly @len bytes at @off: 0 or -1. */
static inline int file_rw(const char *path, void *buf, size_t len, off_t off,
			  bool write)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static inline int file_read(const char *path, void *buf, size_t len, off_t off)
{
	return file_rw(path, buf, len, off, false);
}

static inline int file_write(const char *path, const void *buf, size_t len,
			     off_t off)
{
	return file_rw(path, (void *)buf, len, off, true);
}

/* Flip bit @bit of the byte at @off: 0 or -1. */
static inline int flip_bit(const char *path, off_t off, int bit)
{
	unsigned char c;

	if (file_read(path, &c, 1, off))
		return -1;
	c ^= (unsigned char)(1U << bit);
	return file_write(path, &c, 1, off);
}

/* ------------------------------------------------------------------ */
/* The library's diagnostics, captured.                               */

/* What the library printed since capture_start(), and in how many calls. */
static char printed[65536] __attribute__((unused));
static size_t printed_len __attribute__((unused));
static unsigned int printed_nr __attribute__((unused));

/* A bring_print_fn_t that appends to printed[] (cut off when full). */
static inline int capture_print(const char *fmt, va_list ap)
{
	size_t room = sizeof(printed) - printed_len;
	int n = vsnprintf(printed + printed_len, room, fmt, ap);

	if (n > 0) {
		printed_len += (size_t)n < room ? (size_t)n : room - 1;
		printed_nr++;
	}
	return n;
}

/* Empty printed[] and capture from now on; returns the previous printer. */
static inline bring_print_fn_t capture_start(void)
{
	printed[0] = '\0';
	printed_len = 0;
	printed_nr = 0;
	return bring_set_print(capture_print);
}

#endif /* BRING_SELFTESTS_UTIL_H */
