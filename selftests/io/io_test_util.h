/* SPDX-License-Identifier: GPL-2.0 */
/*
 * io_test_util.h - helpers shared by the io selftests: find and run
 * bringcat, wait for it (never forever), read and write whole files.
 */
#ifndef IO_TEST_UTIL_H
#define IO_TEST_UTIL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct __test_metadata;

/* The bringcat under test: $BRING_OUT/io/bringcat or next to the test. */
extern char bringcat[PATH_MAX + 32];
void find_bringcat(void);
/* io_uring with FUTEX_WAIT (opcode 51) works here. */
bool have_uring(void);
/* io_uring works here, FUTEX_WAIT or not. */
bool uring_works(void);
/*
 * The three io modes the tests run in: why this machine cannot run
 * @mode (NULL when it can), and bringcat's flag for it (@uring_flag,
 * e.g. "--quiet" or "--stats", for the io_uring mode).
 */
enum io_mode { IO_MODE_URING, IO_MODE_FALLBACK, IO_MODE_EVENTFD };
const char *io_mode_missing(enum io_mode mode);
const char *io_mode_flag(enum io_mode mode, const char *uring_flag);
/* The bring_io_opts.flags that select @mode. */
unsigned int io_mode_io_flags(enum io_mode mode);

/*
 * Fixture @f's variants, one per io mode: variant->mode. The eventfd
 * variant is io_uring whose ring waits go through the ring's eventfd.
 */
#define IO_MODE_VARIANTS(f)                                               \
	FIXTURE_VARIANT(f)                                                \
	{                                                                 \
		enum io_mode mode;                                        \
	};                                                                \
	FIXTURE_VARIANT_ADD(f, uring) { .mode = IO_MODE_URING, };         \
	FIXTURE_VARIANT_ADD(f, fallback) { .mode = IO_MODE_FALLBACK, };   \
	FIXTURE_VARIANT_ADD(f, eventfd) { .mode = IO_MODE_EVENTFD, }

uint64_t now_ms(void);
/* A @type (SOCK_STREAM, SOCK_DGRAM) socket connected to 127.0.0.1:@port,
 * or -1. */
int loopback_to(int type, int port);
/*
 * A TCP socket bound to 127.0.0.1:@port (0: any free one) with
 * SO_REUSEADDR, listening with @backlog when it is not 0 (0: bound only,
 * to set options before listen(2)); -1 on failure.
 */
int loopback_listener(int port, int backlog);
/*
 * A loopback TCP port held for the test: bound with SO_REUSEADDR but not
 * listening, so no other program and no outgoing connection's ephemeral
 * port takes it (and no connect can meet itself on it), a connect to it
 * is refused, and a bringcat that binds it with SO_REUSEADDR may listen
 * on it. Returns the port and its socket in *@fd (listen on it, or
 * close it at the end), or -1.
 */
int reserve_port(int *fd);
/*
 * Move this process into a network namespace of its own, loopback up,
 * whose connects take their local port from @lo..@hi only. NULL, or why
 * it could not (for a SKIP).
 */
const char *netns_with_ephemeral_ports(int lo, int hi);
/* The port a "tcp-listen:...:0" bringcat said (in the file @err), waiting
 * up to 5 s; -1 when it said none. */
int wait_port(const char *err);
/* A stream socket connected to the unix socket @path, or -1. */
int unix_to(const char *path);
/* Write all @n bytes of @p to @fd (EINTR retried); 0 or -1. */
int fd_write_all(int fd, const void *p, size_t n);
/* Start bringcat @args (NULL-terminated) with stdin from @in or /dev/null
 * and stderr to the file @err. */
pid_t spawn(const char *in, const char *err, const char **args);
/* The same, calling @before_exec in the child just before execv(). */
pid_t spawn_hooked(const char *in, const char *err, const char **args,
		   void (*before_exec)(void));
/* Exit code (128 + signal when killed), or -1 after @ms ms (then killed). */
int wait_rc(pid_t pid, int ms);

/* The whole file, NUL-terminated (free it); NULL when it cannot be read. */
char *slurp(const char *path, size_t *len);
/* Write @buf as the whole file @path; 0 or -1. */
int spew(const char *path, const void *buf, size_t len);
off_t file_size(const char *path);
/* Poll until @path has at least @size bytes; false after @ms ms. */
bool wait_size(const char *path, off_t size, int ms);
/* Poll until the file @err contains @what; false after @ms ms. */
bool wait_text(const char *err, const char *what, int ms);
/* Wait until process @pid has @file open at offset @bytes or more. */
bool wait_read(pid_t pid, const char *file, long long bytes, int ms);

/*
 * bringcat's final --stats report: from the first "bringcat: done" line
 * in the stderr file @err to its end (the tail: line too). final_stat()
 * is the integer after the first @key that follows @after (NULL: the
 * report's start): (NULL, "dropped ") is the oversize counter, not "send
 * dropped "; (" out ", "msgs ") the bytes out. final_stat_secs() is X
 * in "@key N (Xs)", e.g. "full waits ". Both -1 when it is not there.
 */
long long final_stat(const char *err, const char *after, const char *key);
double final_stat_secs(const char *err, const char *key);
/* @key's figure on sink @reader's last --stats line in @err, or -1. */
const char *sink_reader(const char *uri);
long long sink_stat(const char *err, const char *reader, const char *key);

/* Run bringcat @args, expect exit code @rc and "bringcat: ...@msg" as
 * the first line of its stderr (written to the file @err). */
void expect_exit(struct __test_metadata *_metadata, const char *err,
		 const char **args, int rc, const char *msg);

#endif
