/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * bpf_test_util.h - helpers shared by the bpf selftests: where things are,
 * why a test must SKIP, child processes with pipes and timeouts, bringlat
 * output parsers and a small JSON reader.
 */
#ifndef BPF_TEST_UTIL_H
#define BPF_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* ---- where things are ------------------------------------------------- */

/* $BRING_OUT, else the build tree this test was run from. */
const char *tu_out_dir(void);
/* The source tree (where Documentation/ is). */
const char *tu_src_dir(void);
/* tu_path("bpf/bringlat") = "<out>/bpf/bringlat", in a static buffer ring. */
const char *tu_out_path(const char *rel);
const char *tu_src_path(const char *rel);

/* ---- why a test cannot run here (NULL: it can) ------------------------ */

/* root, kernel BTF, uprobes, bringlat built */
const char *tu_bringlat_skip_reason(void);
/* the above without "bringlat built", plus bpftrace installed */
const char *tu_bpftrace_skip_reason(void);
/* the workload program */
const char *tu_blocker_skip_reason(void);

/* How many perf events (uprobes) @pid holds (bpftool perf list). */
int tu_perf_events_of(pid_t pid);

/* Mount tracefs (for bpftrace) when it is not; false when it cannot be. */
bool tu_ensure_tracefs(void);

/* ---- child processes ---------------------------------------------------- */

struct tu_proc {
	pid_t pid;
	int in; /* its stdin, -1 once closed */
	int out; /* its stdout (and stderr with TU_MERGE_STDERR) */
	int err; /* its stderr, or -1 */
	char *buf; /* stdout read so far, NUL-terminated */
	size_t len, cap, used; /* used: bytes already returned as lines */
	char *ebuf; /* stderr read so far */
	size_t elen, ecap;
	int status; /* wait status once reaped */
	bool reaped;
};

#define TU_MERGE_STDERR 1
#define TU_STDIN_NULL 2
#define TU_AS_NOBODY 4 /* drop to uid/gid 65534 first (when root) */

/* fork + exec argv[0] with pipes; -1 on error. */
int tu_spawn(struct tu_proc *p, char *const argv[], int flags);
/* "sh -c CMD" with the extra environment variable ENV ("NAME=VALUE" or NULL). */
int tu_spawn_sh(struct tu_proc *p, const char *cmd, const char *env, int flags);
/* Next line of stdout (without the newline) within timeout_ms; NULL on
 * EOF or timeout. The pointer is valid until the next call. */
const char *tu_read_line(struct tu_proc *p, int timeout_ms);
/* Read lines until one starts with prefix; the line, or NULL. */
const char *tu_wait_for(struct tu_proc *p, const char *prefix, int timeout_ms);
/* Wait until its stderr contains substr. */
bool tu_wait_stderr(struct tu_proc *p, const char *substr, int timeout_ms);
/* Write a line to its stdin. */
int tu_send(struct tu_proc *p, const char *line);
void tu_close_stdin(struct tu_proc *p);
/* Read stdout and stderr to EOF and reap, within timeout_ms (then SIGKILL).
 * Returns the exit status (0-255), 128+signal, or -1 on timeout. */
int tu_finish(struct tu_proc *p, int timeout_ms);
/* SIGKILL and reap if still running; free buffers. */
void tu_cleanup(struct tu_proc *p);
/* All of stdout from the first byte not returned by tu_read_line(). */
const char *tu_rest(struct tu_proc *p);

/* ---- the workload (bring_blocker) ------------------------------------- */

struct tu_ring_stats {
	char ring[32];
	unsigned long long write_waits, read_waits;
};

struct tu_timed {
	char ring[32];
	char side[8];
	unsigned long long us; /* the blocking call, timed around it */
	unsigned long long min_us; /* the least the wait itself lasted */
};

#define TU_MAX_TIMED 256
struct tu_blocker {
	struct tu_proc p;
	pid_t pid;
	struct tu_ring_stats st[2];
	int nr_st;
	struct tu_timed timed[TU_MAX_TIMED];
	int nr_timed;
};

/* Start "<out>/selftests/bpf/<exe> -g -H args..." and read "ready PID". */
int tu_blocker_start(struct tu_blocker *b, const char *exe, const char *args);
/* Say go, read its stats up to "done"; it then waits for tu_blocker_end. */
int tu_blocker_run(struct tu_blocker *b, int timeout_ms);
/* Let it exit and reap it; its exit status. */
int tu_blocker_end(struct tu_blocker *b);
const struct tu_ring_stats *tu_blocker_stats(const struct tu_blocker *b,
					     const char *ring);

/* How many blocking calls it timed for (ring, side). */
int tu_blocker_nr_timed(const struct tu_blocker *b, const char *ring,
			const char *side);
/*
 * Do these log2 slots (slot i: [2^i, 2^(i+1)) units of unit_us; e.g. from
 * bringlat or bpftrace) hold exactly the waits the workload made on (ring,
 * side)? A tracer times each wait from probe to probe: no longer than the
 * call the workload timed around it, no shorter than the workload's
 * designed minimum (the other side's sleep, or the timeout). So each wait
 * belongs in a slot between those two bounds' slots, and the slots must
 * account for every wait, one each. On a quiet machine the bounds fall in
 * one slot; on a loaded one a preempted call may span two or three.
 * NULL when they match, else what differs (a static buffer).
 */
const char *tu_check_slots(const struct tu_blocker *b, const char *ring,
			   const char *side, const unsigned long long *slots,
			   int nr_slots, unsigned long long unit_us);

/* ---- bringlat's text output ------------------------------------------- */

#define TU_SLOTS 32
struct tu_hist {
	char ring[32];
	char side[8]; /* "writer", "reader" or "durable" */
	unsigned int pid; /* with -P / -L */
	unsigned long long waits, errors;
	unsigned long long slots[TU_SLOTS];
	unsigned long long low[TU_SLOTS];
};

/* Parse every histogram in text; returns how many (at most max). */
int tu_parse_text(const char *text, struct tu_hist *h, int max);
const struct tu_hist *tu_find_hist(const struct tu_hist *h, int n,
				   const char *ring, const char *side,
				   unsigned int pid);
/* Sum of the slots; index of the only non-empty slot, -1 if several/none. */
unsigned long long tu_hist_sum(const struct tu_hist *h);
int tu_hist_only_slot(const struct tu_hist *h);

/* log2 slot of a duration: floor(log2(us)), as bringlat and bpftrace. */
int tu_slot_of(unsigned long long value);

/* ---- JSON ------------------------------------------------------------- */

enum tu_json_type {
	TU_JNULL,
	TU_JBOOL,
	TU_JNUM,
	TU_JSTR,
	TU_JARR,
	TU_JOBJ,
};

struct tu_json {
	enum tu_json_type type;
	double num;
	char *str; /* TU_JSTR; the key, for object members */
	char *key;
	struct tu_json *child; /* first element / member */
	struct tu_json *next;
};

/* Parse a whole document (trailing blanks allowed); NULL if not JSON. */
struct tu_json *tu_json_parse(const char *text);
void tu_json_free(struct tu_json *j);
struct tu_json *tu_json_get(const struct tu_json *obj, const char *key);
/* "a.b.c" through nested objects */
struct tu_json *tu_json_path(const struct tu_json *obj, const char *path);
int tu_json_len(const struct tu_json *arr);
struct tu_json *tu_json_at(const struct tu_json *arr, int i);

#endif /* BPF_TEST_UTIL_H */
