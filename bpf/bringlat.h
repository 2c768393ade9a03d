/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * bringlat.h - types shared by bringlat.bpf.c (kernel) and bringlat.c
 * (user space). They are also the key and value types of the "hists" map
 * that --pin exposes, so their field names are what
 * "bpftool map dump pinned DIR/hists" shows: keep them stable.
 */
#ifndef BRINGLAT_H
#define BRINGLAT_H

#define BRINGLAT_MAX_SLOTS 32 /* log2 buckets: 0-1, 2-3, ... 2^31 units */
#define BRINGLAT_NAME_LEN 32 /* BRING_NAME_MAX: ring name with its NUL */
#define BRINGLAT_COMM_LEN 16 /* TASK_COMM_LEN */
#define BRINGLAT_MAX_HISTS 4096 /* (ring, side[, pid]) histograms */
#define BRINGLAT_MAX_WAITS 16384 /* threads blocked at the same time */

enum bringlat_side {
	BRINGLAT_WRITER = 0, /* write_wait_start -> write_wait_end */
	BRINGLAT_READER = 1, /* read_wait_start -> read_wait_end */
	BRINGLAT_DURABLE = 2, /* durable_wait_start -> durable_wait_end */
};

/*
 * struct hist_key - one histogram: a ring name, a side and, with -P or -L,
 * a process or thread id (0 otherwise); with -R, the reader's name for
 * reader waits (a sink of bringcat is a reader), empty otherwise.
 */
struct hist_key {
	char ring[BRINGLAT_NAME_LEN];
	enum bringlat_side side;
	__u32 pid; /* tgid with -P, tid with -L, else 0 */
	char reader[BRINGLAT_NAME_LEN]; /* -R: the reader's name */
};

/*
 * struct hist - waits of one key. slots[i] counts waits that lasted
 * [2^i, 2^(i+1)) units (slot 0 also holds 0), the unit being the one
 * bringlat runs with (unit_ns: 1000 for usecs, 1000000 for msecs).
 */
struct hist {
	__u64 count; /* waits that ended */
	__u64 total_ns; /* time spent blocked, summed */
	__u64 max_ns; /* longest single wait */
	__u64 errors; /* waits that ended with err != 0 */
	__u64 unit_ns; /* the unit of slots[] */
	char comm[BRINGLAT_COMM_LEN]; /* first thread seen, with -P/-L */
	__u64 slots[BRINGLAT_MAX_SLOTS];
};

/*
 * struct wait_key - an open wait: the thread, and the wait's id (probe
 * argument; 0 for blocking calls, the struct bring_wait's address for
 * an event loop's waits, several of which overlap in one thread).
 */
struct wait_key {
	__u64 pid_tgid;
	__u64 id;
};

/* struct wait_start - an open wait, keyed by struct wait_key. */
struct wait_start {
	__u64 ts; /* bpf_ktime_get_ns() at the start probe */
	__u32 side; /* enum bringlat_side */
	__u32 pad;
};

#endif /* BRINGLAT_H */
