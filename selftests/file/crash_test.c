// SPDX-License-Identifier: GPL-2.0
/*
 * File rings and SIGKILL: writers and readers die at any instant, others
 * carry on, and whoever opens the file after everybody died recovers it.
 *
 * The crash loop (crash_loop, and crash_loop_long with BRING_CRASH_KILLS)
 * runs four writer processes and two named readers in two processes, each
 * with its own bring_open(), and a driver that kills one of them at a
 * random instant (or at a chosen one: between reserve and commit, asleep
 * on a full or an empty ring, inside a shift), restarts it and, every
 * CL_KILL_ALL_EVERY kills, kills everybody and reopens the file alone so
 * that bring_open() recovers it. Writers acknowledge a message in shared
 * memory once its push returned 0 and restart after their last
 * acknowledged message; readers log every message they process before
 * they shift it. At the end every acknowledged message must have reached
 * both readers, in each writer's order, intact; a message may come twice
 * only right after its reader was restarted before it shifted it, and a
 * writer's message pushed but not acknowledged may appear once.
 *
 * The other tests build one state each, for a run-time repair by a stuck
 * reader or for recovery at bring_open(): some by killing a process at
 * the right moment, some by writing into the file's header the state a
 * kill leaves, or values recovery must not trust (lib/internal.h has the
 * layout).
 *
 * BRING_CRASH_KILLS=N runs crash_loop_long with N kills instead of
 * crash_loop's CL_DEFAULT_KILLS; BRING_CRASH_SEED fixes the driver's
 * random choices.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "bring.h"
#include "internal.h"
#include "kselftest_harness.h"
#include "util.h"

/* ================================================================== */
/* The crash loop.                                                    */

#define CL_WRITERS 4
#define CL_READERS 2
#define CL_PROCS (CL_WRITERS + CL_READERS)
#define CL_RING_CAP 16384
#define CL_MSG_MIN 32		/* struct cl_hdr */
#define CL_MSG_MAX 320
#define CL_BATCH_MAX 4
#define CL_PEEK_MAX 8
#define CL_KILL_ALL_EVERY 50
#define CL_DEFAULT_KILLS 1000
#define CL_IO_MS 1000		/* timeout of every push and read */
#define CL_STUCK_MAX_MS 3000	/* to get past a killed writer's record */
#define CL_EXIT_MS 30000	/* processes told to stop stop within this */
#define CL_MAGIC 0x43524153U
#define CL_STOP_WRITER CL_WRITERS /* writer id of the driver's last message */

static const char *const cl_reader_names[CL_READERS] = { "a", "b" };

enum cl_phase {
	PH_IDLE,
	PH_START,	/* opening the ring */
	PH_PUSH,	/* in push or push_batch */
	PH_RESERVE,	/* in bring_reserve() */
	PH_RESV,	/* reserved: filling, spinning, committing */
	PH_ACK,		/* push returned, not acknowledged yet */
	PH_NEXT,	/* in next or peek */
	PH_LOG,		/* checking and logging what next/peek returned */
	PH_SHIFT,	/* in shift */
	PH_NR,
};

static const char *const cl_phase_names[PH_NR] = {
	"idle", "opening", "in push", "in reserve", "between reserve and commit",
	"after push", "in next/peek", "between next and shift", "in shift",
};

enum cl_writer_mode {
	WM_PUSH,	/* bring_push_timeout() */
	WM_RESERVE,	/* bring_reserve(), a busy loop, bring_commit() */
	WM_BATCH,	/* bring_push_batch() of 1 to CL_BATCH_MAX */
	WM_DURABLE,	/* push and reserve in turn, BRING_DURABLE_ALWAYS */
};

static const enum cl_writer_mode cl_modes[CL_WRITERS] = {
	WM_PUSH, WM_RESERVE, WM_BATCH, WM_DURABLE,
};

/* One process's state, in memory shared with the driver. */
struct cl_proc {
	uint32_t phase;
	uint32_t inc;		/* incarnation: restarts so far */
	uint64_t next_seq;	/* writers: messages acknowledged */
	uint64_t resv_pos;	/* writers: position of the reservation */
	uint64_t passed;	/* readers: position past the last logged */
	uint64_t delivered;	/* readers: messages logged */
	uint64_t timeouts;
	char err[256];
};

struct cl_shared {
	struct cl_proc p[CL_PROCS];
	uint32_t stop;		/* writers: stop after this message */
};

/* A message: this header, then bytes that depend on it. */
struct cl_hdr {
	uint32_t magic;
	uint32_t writer;
	uint32_t inc;
	uint32_t len;
	uint64_t seq;
	uint32_t sum;
	uint32_t pad;
};

/* A reader's log: units of a RESTART entry, or BATCH(n) + n entries. */
#define LOG_RESTART 0xffffffffU
#define LOG_BATCH 0xfffffffeU
#define LOG_CORRUPT 0xfffffffdU

struct cl_log {
	uint32_t type;		/* writer id or LOG_* */
	uint32_t inc;
	uint64_t seq;		/* LOG_BATCH: n; LOG_CORRUPT: position */
};

static uint32_t cl_sum(const void *buf, size_t len)
{
	struct cl_hdr h;

	memcpy(&h, buf, sizeof(h));
	h.sum = 0;
	return fnv1a(fnv1a(FNV1A_INIT, &h, sizeof(h)),
		     (const uint8_t *)buf + sizeof(h), len - sizeof(h));
}

static size_t cl_len(uint32_t writer, uint32_t inc, uint64_t seq)
{
	uint64_t x = (seq * 0x9e3779b97f4a7c15ULL) ^ (writer * 0x51ULL) ^
		     ((uint64_t)inc << 40);

	return CL_MSG_MIN + (size_t)((x >> 29) % (CL_MSG_MAX - CL_MSG_MIN + 1));
}

static void cl_build(void *buf, uint32_t writer, uint32_t inc, uint64_t seq)
{
	size_t len = cl_len(writer, inc, seq), i;
	struct cl_hdr h = {
		.magic = CL_MAGIC, .writer = writer, .inc = inc,
		.len = (uint32_t)len, .seq = seq,
	};
	uint8_t *p = buf;

	for (i = sizeof(h); i < len; i++)
		p[i] = (uint8_t)(seq * 13 + writer * 7 + inc * 3 + i);
	memcpy(buf, &h, sizeof(h));
	h.sum = cl_sum(buf, len);
	memcpy(buf, &h, sizeof(h));
}

static bool cl_intact(const struct bring_msg *msg, struct cl_hdr *h)
{
	if (msg->len < sizeof(*h))
		return false;
	memcpy(h, msg->data, sizeof(*h));
	return h->magic == CL_MAGIC && h->len == msg->len &&
	       h->writer <= CL_STOP_WRITER &&
	       msg->len == cl_len(h->writer, h->inc, h->seq) &&
	       h->sum == cl_sum(msg->data, msg->len);
}

struct cl_ctx {
	struct tmp t;
	char logs[CL_READERS][192];
	struct cl_shared *sh;
	pid_t pids[CL_PROCS];
	uint64_t rnd;
	/* Writers: the first sequence number of each incarnation. */
	uint64_t *starts[CL_WRITERS];
	uint32_t ninc[CL_WRITERS];
	/* What happened. */
	char fail[512];
	unsigned int kills, kill_alls, recoveries;
	unsigned int by_phase[2][PH_NR];	/* [writer/reader][phase] */
	unsigned int asleep[2];		/* killed asleep in futex */
	unsigned int stopped_others;	/* kills with the other side stopped */
	unsigned int stuck_waits;	/* readers behind a killed writer */
	uint64_t stuck_max_ns, stuck_sum_ns;
	unsigned int recovery_diags;
	char last_diag[256];
};

static void __attribute__((format(printf, 2, 3)))
cl_fail(struct cl_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->fail[0])
		return;
	va_start(ap, fmt);
	vsnprintf(c->fail, sizeof(c->fail), fmt, ap);
	va_end(ap);
}

/* In a child: say why, exit 1 (the driver reports it). */
static void __attribute__((noreturn, format(printf, 2, 3)))
child_die(struct cl_proc *me, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(me->err, sizeof(me->err), fmt, ap);
	va_end(ap);
	_exit(1);
}

static void set_phase(struct cl_proc *me, enum cl_phase ph)
{
	__atomic_store_n(&me->phase, ph, __ATOMIC_SEQ_CST);
}

static void spin_us(unsigned int us)
{
	uint64_t end = now_ns() + us * 1000ULL;

	while (now_ns() < end)
		;
}

/* ------------------------------------------------------------------ */
/* Writer processes.                                                  */

static int cl_push_one(struct bring *r, struct cl_proc *me, uint8_t *buf,
		       unsigned int w, uint64_t seq, bool reserve,
		       uint64_t *rnd)
{
	size_t len = cl_len(w, me->inc, seq);
	struct bring_resv resv;
	int err;

	if (!reserve) {
		cl_build(buf, w, me->inc, seq);
		set_phase(me, PH_PUSH);
		return bring_push_timeout(r, buf, len, CL_IO_MS);
	}
	set_phase(me, PH_RESERVE);
	err = bring_reserve(r, len, &resv, CL_IO_MS);
	if (err)
		return err;
	__atomic_store_n(&me->resv_pos, resv.seq, __ATOMIC_SEQ_CST);
	set_phase(me, PH_RESV);
	cl_build(resv.data, w, me->inc, seq);
	/* Widen the window in which the record is reserved, not committed. */
	spin_us(5 + xorshift(rnd) % 60);
	return bring_commit(r, &resv, len);
}

static void __attribute__((noreturn))
cl_writer_main(struct cl_ctx *c, unsigned int w)
{
	BRING_OPTS(opts, .durability = cl_modes[w] == WM_DURABLE ?
					       BRING_DURABLE_ALWAYS : 0);
	struct cl_proc *me = &c->sh->p[w];
	uint64_t rnd = (now_ns() ^ ((uint64_t)getpid() << 32)) | 1;
	static uint8_t bufs[CL_BATCH_MAX][CL_MSG_MAX];
	uint64_t seq = __atomic_load_n(&me->next_seq, __ATOMIC_SEQ_CST);
	struct bring *r;
	unsigned int n = 0;
	int err = 0;

	set_phase(me, PH_START);
	r = bring_open(c->t.path, 0, &opts);
	if (!r)
		child_die(me, "writer %u: bring_open: %s", w, strerror(errno));
	while (!__atomic_load_n(&c->sh->stop, __ATOMIC_SEQ_CST)) {
		switch (cl_modes[w]) {
		case WM_PUSH:
			err = cl_push_one(r, me, bufs[0], w, seq, false, &rnd);
			n = 1;
			break;
		case WM_RESERVE:
			err = cl_push_one(r, me, bufs[0], w, seq, true, &rnd);
			n = 1;
			break;
		case WM_DURABLE:
			err = cl_push_one(r, me, bufs[0], w, seq, seq & 1,
					  &rnd);
			n = 1;
			break;
		case WM_BATCH: {
			struct bring_msg msgs[CL_BATCH_MAX];
			unsigned int k = 1 + xorshift(&rnd) % CL_BATCH_MAX, i;

			for (i = 0; i < k; i++) {
				cl_build(bufs[i], w, me->inc, seq + i);
				msgs[i].data = bufs[i];
				msgs[i].len = cl_len(w, me->inc, seq + i);
			}
			set_phase(me, PH_PUSH);
			err = bring_push_batch(r, msgs, k, CL_IO_MS);
			n = err > 0 ? (unsigned int)err : 0;
			err = err > 0 ? 0 : err ? err : -EPROTO;
			break;
		}
		}
		set_phase(me, PH_ACK);
		if (err == -ETIMEDOUT)
			continue;
		if (err)
			child_die(me, "writer %u: push of seq %llu: %s", w,
				  (unsigned long long)seq, strerror(-err));
		seq += n;
		/* Acknowledged: a restart continues after it. */
		__atomic_store_n(&me->next_seq, seq, __ATOMIC_SEQ_CST);
		set_phase(me, PH_IDLE);
		/* Pauses let the readers drain the ring and wait. */
		if (xorshift(&rnd) % 64 == 0)
			usleep(500 + xorshift(&rnd) % 2500);
	}
	bring_free(r);
	_exit(0);
}

/* ------------------------------------------------------------------ */
/* Reader processes.                                                  */

/*
 * Walk a log; returns the length of its complete units. A SIGKILL can
 * cut a write(2) that crosses a page boundary: a reader truncates its
 * log there before it appends again (the messages of a cut batch were
 * not shifted, so they come again).
 */
static size_t cl_log_complete(const struct cl_log *log, size_t nr)
{
	size_t i = 0, n;

	while (i < nr) {
		if (log[i].type == LOG_RESTART) {
			i++;
			continue;
		}
		if (log[i].type != LOG_BATCH)
			break;
		n = log[i].seq;
		if (n > CL_PEEK_MAX || i + 1 + n > nr)
			break;
		i += 1 + n;
	}
	return i;
}

static int cl_log_repair(int fd)
{
	struct cl_log *log;
	struct stat st;
	size_t nr, good;

	if (fstat(fd, &st) < 0)
		return -errno;
	nr = (size_t)st.st_size / sizeof(*log);
	if (!nr)
		return ftruncate(fd, 0) < 0 ? -errno : 0;
	log = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (log == MAP_FAILED)
		return -errno;
	good = cl_log_complete(log, nr);
	munmap(log, (size_t)st.st_size);
	if (ftruncate(fd, (off_t)(good * sizeof(*log))) < 0)
		return -errno;
	return 0;
}

static void __attribute__((noreturn))
cl_reader_main(struct cl_ctx *c, unsigned int i)
{
	struct cl_proc *me = &c->sh->p[CL_WRITERS + i];
	uint64_t rnd = (now_ns() ^ ((uint64_t)getpid() << 32)) | 1;
	struct cl_log log[1 + CL_PEEK_MAX];
	struct bring_msg msgs[CL_PEEK_MAX];
	struct bring_reader *rd;
	bool stop = false;
	struct bring *r;
	int fd, n, k;
	ssize_t len;

	set_phase(me, PH_START);
	fd = open(c->logs[i], O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || cl_log_repair(fd))
		child_die(me, "reader %s: log: %s", cl_reader_names[i],
			  strerror(errno));
	log[0] = (struct cl_log){ .type = LOG_RESTART, .inc = me->inc };
	if (write(fd, log, sizeof(log[0])) != sizeof(log[0]))
		child_die(me, "reader %s: log write", cl_reader_names[i]);
	r = bring_open(c->t.path, 0, NULL);
	if (!r)
		child_die(me, "reader %s: bring_open: %s", cl_reader_names[i],
			  strerror(errno));
	rd = bring_reader_open(r, cl_reader_names[i]);
	if (!rd)
		child_die(me, "reader %s: bring_reader_open: %s",
			  cl_reader_names[i], strerror(errno));
	while (!stop) {
		set_phase(me, PH_NEXT);
		if (i == 0) {
			n = bring_reader_next(rd, msgs, CL_IO_MS);
			n = n ? n : 1;
		} else {
			n = bring_reader_peek(rd, msgs, CL_PEEK_MAX, 0,
					      CL_IO_MS);
		}
		if (n == -ETIMEDOUT) {
			me->timeouts++;
			continue;
		}
		if (n <= 0)
			child_die(me, "reader %s: next/peek: %s",
				  cl_reader_names[i], strerror(-n));
		set_phase(me, PH_LOG);
		log[0] = (struct cl_log){ .type = LOG_BATCH,
					  .seq = (uint64_t)n };
		for (k = 0; k < n; k++) {
			struct cl_hdr h;

			if (!cl_intact(&msgs[k], &h)) {
				log[1 + k] = (struct cl_log){
					.type = LOG_CORRUPT,
					.seq = msgs[k].seq,
				};
				continue;
			}
			log[1 + k] = (struct cl_log){
				.type = h.writer, .inc = h.inc, .seq = h.seq,
			};
			stop |= h.writer == CL_STOP_WRITER;
		}
		len = (ssize_t)((1 + (size_t)n) * sizeof(log[0]));
		if (write(fd, log, (size_t)len) != len)
			child_die(me, "reader %s: log write: %s",
				  cl_reader_names[i], strerror(errno));
		__atomic_store_n(&me->passed, msgs[n - 1].seq + 1,
				 __ATOMIC_SEQ_CST);
		me->delivered += (uint64_t)n;
		if (xorshift(&rnd) % 1024 == 0)
			usleep(1000 + xorshift(&rnd) % 9000);
		set_phase(me, PH_SHIFT);
		n = bring_reader_shift(rd);
		if (n)
			child_die(me, "reader %s: shift: %s",
				  cl_reader_names[i], strerror(-n));
		set_phase(me, PH_IDLE);
	}
	bring_reader_close(rd);
	bring_free(r);
	close(fd);
	_exit(0);
}

/* ------------------------------------------------------------------ */
/* The driver.                                                        */

static bool is_writer(unsigned int p)
{
	return p < CL_WRITERS;
}

static int cl_start(struct cl_ctx *c, unsigned int p)
{
	struct cl_proc *me = &c->sh->p[p];
	pid_t pid;

	if (is_writer(p)) {
		uint32_t k = c->ninc[p];

		if (!(k & (k - 1))) {
			uint64_t *v = realloc(c->starts[p],
					      (k ? 2 * k : 1) * sizeof(*v));

			if (!v)
				return -ENOMEM;
			c->starts[p] = v;
		}
		c->starts[p][k] = me->next_seq;
		me->inc = k;
		c->ninc[p] = k + 1;
	} else {
		me->inc++;
	}
	me->phase = PH_IDLE;
	pid = fork_child();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (is_writer(p))
			cl_writer_main(c, p);
		cl_reader_main(c, p - CL_WRITERS);
	}
	c->pids[p] = pid;
	return 0;
}

/* Did a process end by itself? That is a failure, and why. */
static bool cl_check_alive(struct cl_ctx *c)
{
	unsigned int p;
	int status;

	for (p = 0; p < CL_PROCS; p++) {
		if (waitpid(c->pids[p], &status, WNOHANG) != c->pids[p])
			continue;
		c->pids[p] = 0;
		cl_fail(c, "%s %u ended by itself (status %#x): %s",
			is_writer(p) ? "writer" : "reader", p, status,
			c->sh->p[p].err);
		return false;
	}
	return true;
}

/* Kill process @p, account for the instant it died at. */
static void cl_kill(struct cl_ctx *c, unsigned int p)
{
	struct cl_proc *me = &c->sh->p[p];
	char st = task_state(c->pids[p], c->pids[p]);
	enum cl_phase ph;
	int status = 0, err;

	err = kill_child(c->pids[p], &status);
	c->pids[p] = 0;
	if (err)
		cl_fail(c, "process %u ended by itself (status %#x): %s", p,
			status, me->err);
	ph = __atomic_load_n(&me->phase, __ATOMIC_SEQ_CST);
	c->by_phase[!is_writer(p)][ph < PH_NR ? ph : PH_IDLE]++;
	if (st == 'S' && (ph == PH_PUSH || ph == PH_RESERVE || ph == PH_NEXT))
		c->asleep[!is_writer(p)]++;
	c->kills++;
}

static void cl_signal_group(struct cl_ctx *c, bool writers, int sig)
{
	unsigned int p;

	for (p = 0; p < CL_PROCS; p++)
		if (is_writer(p) == writers && c->pids[p])
			kill(c->pids[p], sig);
}

/* Wait up to @ms for process @p to be in one of @phases; true if so. */
static bool cl_wait_phase(struct cl_ctx *c, unsigned int p, unsigned int mask,
			  bool asleep, unsigned int ms)
{
	uint64_t end = now_ns() + ms * MS;
	struct cl_proc *me = &c->sh->p[p];

	do {
		unsigned int ph = __atomic_load_n(&me->phase, __ATOMIC_SEQ_CST);

		if ((mask & (1U << ph)) &&
		    (!asleep || task_state(c->pids[p], c->pids[p]) == 'S'))
			return true;
		if (asleep)
			usleep(200);
	} while (now_ns() < end);
	return false;
}

/*
 * After a writer died holding a reservation at @pos: both readers must
 * get past it (repairing it) within CL_STUCK_MAX_MS.
 */
static void cl_wait_past(struct cl_ctx *c, uint64_t pos, unsigned int w)
{
	uint64_t t0 = now_ns(), dt;
	unsigned int i;

	for (i = 0; i < CL_READERS; i++) {
		struct cl_proc *rp = &c->sh->p[CL_WRITERS + i];

		while (__atomic_load_n(&rp->passed, __ATOMIC_SEQ_CST) <= pos) {
			if (now_ns() - t0 > CL_STUCK_MAX_MS * MS) {
				cl_fail(c, "reader %s still behind position %llu, the reservation of killed writer %u, after %d ms",
					cl_reader_names[i],
					(unsigned long long)pos, w,
					CL_STUCK_MAX_MS);
				return;
			}
			if (!cl_check_alive(c))
				return;
			usleep(1000);
		}
	}
	dt = now_ns() - t0;
	c->stuck_waits++;
	c->stuck_sum_ns += dt;
	if (dt > c->stuck_max_ns)
		c->stuck_max_ns = dt;
}

/* One kill of one process at an instant chosen by one of four ways. */
static void cl_kill_one(struct cl_ctx *c)
{
	unsigned int p = xorshift(&c->rnd) % CL_PROCS;
	unsigned int how = xorshift(&c->rnd) % 4;
	struct cl_proc *me = &c->sh->p[p];
	bool w = is_writer(p), stopped = false;
	uint64_t resv = 0;
	enum cl_phase ph;

	switch (how) {
	case 0: /* anywhere, soon */
		usleep(xorshift(&c->rnd) % 3000);
		break;
	case 1: /* in the narrow windows */
		cl_wait_phase(c, p, w ? 1U << PH_RESV : 1U << PH_SHIFT, false,
			      50);
		break;
	case 2: /* asleep: the other side stopped, so the ring fills/drains */
		cl_signal_group(c, !w, SIGSTOP);
		stopped = true;
		cl_wait_phase(c, p, w ? (1U << PH_PUSH | 1U << PH_RESERVE) :
					1U << PH_NEXT, true, 300);
		break;
	default: /* anywhere, later */
		usleep(xorshift(&c->rnd) % 30000);
		break;
	}
	ph = __atomic_load_n(&me->phase, __ATOMIC_SEQ_CST);
	cl_kill(c, p);
	if (stopped) {
		cl_signal_group(c, !w, SIGCONT);
		c->stopped_others++;
	}
	/* Read after the kill: the reservation it died with, if any. */
	ph = __atomic_load_n(&me->phase, __ATOMIC_SEQ_CST);
	if (w && ph == PH_RESV)
		resv = __atomic_load_n(&me->resv_pos, __ATOMIC_SEQ_CST) + 1;
	if (cl_start(c, p))
		cl_fail(c, "restart of process %u failed", p);
	if (resv && !c->fail[0])
		cl_wait_past(c, resv - 1, p);
}

/*
 * The file as everybody left it, before the recovery: a failing run keeps it
 * (ring.before) so that the recovery can be replayed.
 */
static void cl_snapshot(struct cl_ctx *c)
{
	char path[sizeof(c->t.path) + 16];
	size_t len;
	void *buf = read_all(c->t.path, &len);

	if (!buf)
		return;
	snprintf(path, sizeof(path), "%s.before", c->t.path);
	if (write_all(path, buf, len))
		cl_fail(c, "cannot write %s", path);
	free(buf);
}

/* Everybody dies; the driver alone opens the file, which recovers it. */
static void cl_kill_all(struct cl_ctx *c)
{
	struct bring_stats st = { .sz = sizeof(st) };
	unsigned int p, first = xorshift(&c->rnd) % CL_PROCS;
	bring_print_fn_t old;
	struct bring *r;

	for (p = 0; p < CL_PROCS; p++)
		kill(c->pids[(first + p) % CL_PROCS], SIGKILL);
	for (p = 0; p < CL_PROCS; p++)
		cl_kill(c, p);
	c->kill_alls++;
	cl_snapshot(c);
	old = capture_start();
	r = bring_open(c->t.path, 0, NULL);
	bring_set_print(old);
	if (printed_nr) {
		c->recovery_diags += printed_nr;
		snprintf(c->last_diag, sizeof(c->last_diag), "%s", printed);
	}
	if (!r) {
		cl_fail(c, "bring_open after killing everybody: %s; library said: %s",
			strerror(errno), printed);
		return;
	}
	c->recoveries++;
	bring_get_stats(r, &st);
	if (st.damaged)
		cl_fail(c, "recovery dropped %llu damaged records",
			(unsigned long long)st.damaged);
	bring_free(r);
	for (p = 0; p < CL_PROCS; p++)
		if (cl_start(c, p))
			cl_fail(c, "restart of process %u failed", p);
}

/* ------------------------------------------------------------------ */
/* Checking the logs.                                                 */

struct cl_verdict {
	uint64_t msgs, dups, extras, restarts;
};

static int cl_cmp(uint32_t i1, uint64_t s1, uint32_t i2, uint64_t s2)
{
	if (i1 != i2)
		return i1 < i2 ? -1 : 1;
	return s1 < s2 ? -1 : s1 > s2;
}

static void cl_verify(struct cl_ctx *c, unsigned int ri, struct cl_verdict *v)
{
	const char *name = cl_reader_names[ri];
	struct cl_log allowed[CL_PEEK_MAX], *log, last_batch[CL_PEEK_MAX];
	unsigned int nallowed = 0, nlast = 0, w, k;
	uint32_t last_inc[CL_WRITERS];
	uint64_t last_seq[CL_WRITERS];
	bool any[CL_WRITERS] = { false }, after_restart = false, stop = false;
	uint8_t *seen[CL_WRITERS] = { NULL };
	size_t nr, i, n;
	struct stat st;
	int fd;

	memset(v, 0, sizeof(*v));
	fd = open(c->logs[ri], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		cl_fail(c, "reader %s: no log", name);
		goto out;
	}
	nr = (size_t)st.st_size / sizeof(*log);
	log = NULL;
	if (nr)
		log = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE,
			   fd, 0);
	if (log == MAP_FAILED || cl_log_complete(log, nr) != nr) {
		cl_fail(c, "reader %s: log cut short or unreadable", name);
		goto out_close;
	}
	for (w = 0; w < CL_WRITERS; w++) {
		seen[w] = calloc(c->sh->p[w].next_seq / 8 + 1 + CL_BATCH_MAX,
				 1);
		if (!seen[w]) {
			cl_fail(c, "out of memory");
			goto out_unmap;
		}
	}
	for (i = 0; i < nr; i += 1 + n) {
		n = 0;
		if (log[i].type == LOG_RESTART) {
			/* What the last batch returned may come again once. */
			if (nlast) {
				memcpy(allowed, last_batch, sizeof(allowed));
				nallowed = nlast;
				nlast = 0;
			}
			after_restart = true;
			v->restarts++;
			continue;
		}
		n = log[i].seq;
		for (k = 0; k < n; k++) {
			const struct cl_log *e = &log[i + 1 + k];
			uint64_t bound;
			unsigned int a;

			last_batch[k] = *e;
			if (e->type == LOG_CORRUPT) {
				cl_fail(c, "reader %s: corrupt message at ring position %llu",
					name, (unsigned long long)e->seq);
				goto out_unmap;
			}
			if (stop) {
				cl_fail(c, "reader %s: a message after the last one", name);
				goto out_unmap;
			}
			if (e->type == CL_STOP_WRITER) {
				stop = true;
				continue;
			}
			w = e->type;
			if (w >= CL_WRITERS || e->inc >= c->ninc[w]) {
				cl_fail(c, "reader %s: message of unknown writer %u incarnation %u",
					name, w, e->inc);
				goto out_unmap;
			}
			if (any[w] && cl_cmp(e->inc, e->seq, last_inc[w],
					     last_seq[w]) <= 0) {
				for (a = 0; after_restart && a < nallowed; a++)
					if (allowed[a].type == e->type &&
					    allowed[a].inc == e->inc &&
					    allowed[a].seq == e->seq)
						break;
				if (!after_restart || a == nallowed) {
					cl_fail(c, "reader %s: writer %u: (%u, %llu) after (%u, %llu): %s",
						name, w, e->inc,
						(unsigned long long)e->seq,
						last_inc[w],
						(unsigned long long)last_seq[w],
						after_restart ?
						"redelivered, but not the unshifted batch" :
						"duplicate or out of order");
					goto out_unmap;
				}
				allowed[a].type = LOG_CORRUPT; /* used up */
				v->dups++;
				continue;
			}
			if (any[w] && e->inc == last_inc[w] &&
			    e->seq != last_seq[w] + 1) {
				cl_fail(c, "reader %s: writer %u incarnation %u: seq %llu after %llu: lost messages",
					name, w, e->inc,
					(unsigned long long)e->seq,
					(unsigned long long)last_seq[w]);
				goto out_unmap;
			}
			if ((!any[w] || e->inc != last_inc[w]) &&
			    (e->seq != c->starts[w][e->inc] ||
			     (any[w] ? last_seq[w] + 1 : 0) < e->seq)) {
				cl_fail(c, "reader %s: writer %u: first message of incarnation %u is seq %llu (it started at %llu, last delivered %llu): lost messages",
					name, w, e->inc,
					(unsigned long long)e->seq,
					(unsigned long long)c->starts[w][e->inc],
					any[w] ? (unsigned long long)last_seq[w] :
						 0ULL);
				goto out_unmap;
			}
			/* Pushed, not acknowledged: the incarnation's last. */
			if (e->inc + 1 < c->ninc[w]) {
				bound = c->starts[w][e->inc + 1];
				if (e->seq >= bound)
					v->extras++;
				bound += cl_modes[w] == WM_BATCH ? CL_BATCH_MAX :
								   1;
			} else {
				bound = c->sh->p[w].next_seq;
			}
			if (e->seq >= bound) {
				cl_fail(c, "reader %s: writer %u: seq %llu of incarnation %u was never pushed",
					name, w, (unsigned long long)e->seq,
					e->inc);
				goto out_unmap;
			}
			seen[w][e->seq / 8] |= (uint8_t)(1U << (e->seq % 8));
			any[w] = true;
			last_inc[w] = e->inc;
			last_seq[w] = e->seq;
			v->msgs++;
		}
		nlast = (unsigned int)n;
		after_restart = false;
		nallowed = 0;
	}
	if (!stop) {
		cl_fail(c, "reader %s: never got the last message", name);
		goto out_unmap;
	}
	for (w = 0; w < CL_WRITERS; w++) {
		uint64_t s;

		for (s = 0; s < c->sh->p[w].next_seq; s++) {
			if (seen[w][s / 8] & (1U << (s % 8)))
				continue;
			cl_fail(c, "reader %s: writer %u: acknowledged seq %llu never delivered",
				name, w, (unsigned long long)s);
			goto out_unmap;
		}
	}
out_unmap:
	if (log && log != MAP_FAILED)
		munmap(log, (size_t)st.st_size);
out_close:
	close(fd);
out:
	for (w = 0; w < CL_WRITERS; w++)
		free(seen[w]);
}

/* ------------------------------------------------------------------ */

static void cl_stop_all(struct cl_ctx *c)
{
	unsigned int p;

	for (p = 0; p < CL_PROCS; p++)
		if (c->pids[p])
			kill_child(c->pids[p], NULL);
}

/* Wait for @p to exit 0 by itself. */
static bool cl_wait_exit(struct cl_ctx *c, unsigned int p, unsigned int ms)
{
	int status = wait_child(c->pids[p], ms);

	c->pids[p] = 0;
	if (status == -1) {
		cl_fail(c, "process %u did not stop within %u ms (phase: %s)",
			p, ms, cl_phase_names[c->sh->p[p].phase % PH_NR]);
		return false;
	}
	if (!exited_ok(status)) {
		cl_fail(c, "process %u failed at the end (status %#x): %s", p,
			status, c->sh->p[p].err);
		return false;
	}
	return true;
}

static uint64_t crash_seed(void)
{
	const char *s = getenv("BRING_CRASH_SEED");

	if (s && *s)
		return strtoull(s, NULL, 0) | 1;
	return (now_ns() ^ ((uint64_t)getpid() << 40)) | 1;
}

static unsigned int crash_kills(void)
{
	const char *s = getenv("BRING_CRASH_KILLS");
	unsigned long n = s && *s ? strtoul(s, NULL, 0) : 0;

	return n > 10000000 ? 10000000 : (unsigned int)n;
}

static void crash_loop(struct __test_metadata *_metadata, unsigned int kills)
{
	BRING_OPTS(opts, .name = "crash", .flags = BRING_NO_DEFAULT_READER);
	struct bring_stats st = { .sz = sizeof(st) };
	struct cl_verdict verdict[CL_READERS];
	uint64_t seed = crash_seed(), t0 = now_ns(), acked = 0;
	struct cl_ctx *c = calloc(1, sizeof(*c));
	struct bring_reader *rd;
	struct bring *r;
	unsigned int p, i;

	ASSERT_NE_NULL(c);
	c->rnd = seed;
	TH_LOG("seed %#llx (BRING_CRASH_SEED), %u kills",
	       (unsigned long long)seed, kills);
	ASSERT_EQ(0, tmp_make_shm(&c->t));
	for (i = 0; i < CL_READERS; i++)
		snprintf(c->logs[i], sizeof(c->logs[i]), "%s/log-%s", c->t.dir,
			 cl_reader_names[i]);
	c->sh = mmap(NULL, sizeof(*c->sh), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, c->sh);

	/* Both readers exist before the first push. */
	r = bring_open(c->t.path, CL_RING_CAP, &opts);
	ASSERT_NE_NULL(r) TH_LOG("bring_open: %s", strerror(errno));
	for (i = 0; i < CL_READERS; i++) {
		rd = bring_reader_open(r, cl_reader_names[i]);
		ASSERT_NE_NULL(rd);
		bring_reader_close(rd);
	}
	bring_free(r);

	for (p = 0; p < CL_PROCS; p++)
		ASSERT_EQ(0, cl_start(c, p));
	while (c->kills < kills && !c->fail[0]) {
		if (!cl_check_alive(c))
			break;
		if (c->kills && c->kills / CL_KILL_ALL_EVERY !=
				(c->kills + CL_PROCS) / CL_KILL_ALL_EVERY)
			cl_kill_all(c);
		else
			cl_kill_one(c);
	}

	/* The end: writers stop, then a last message tells readers to. */
	__atomic_store_n(&c->sh->stop, 1, __ATOMIC_SEQ_CST);
	for (p = 0; p < CL_WRITERS && !c->fail[0]; p++)
		cl_wait_exit(c, p, CL_EXIT_MS);
	if (!c->fail[0]) {
		static uint8_t buf[CL_MSG_MAX];

		r = bring_open(c->t.path, 0, NULL);
		if (r) {
			cl_build(buf, CL_STOP_WRITER, 0, 0);
			if (bring_push_timeout(r, buf,
					       cl_len(CL_STOP_WRITER, 0, 0),
					       CL_EXIT_MS))
				cl_fail(c, "the last push failed");
			bring_free(r);
		} else {
			cl_fail(c, "bring_open at the end: %s", strerror(errno));
		}
	}
	for (p = CL_WRITERS; p < CL_PROCS && !c->fail[0]; p++)
		cl_wait_exit(c, p, CL_EXIT_MS);
	cl_stop_all(c);

	for (i = 0; i < CL_READERS && !c->fail[0]; i++)
		cl_verify(c, i, &verdict[i]);
	for (p = 0; p < CL_WRITERS; p++)
		acked += c->sh->p[p].next_seq;

	/* Nobody has the file open: this open recovers it once more. */
	if (!c->fail[0]) {
		r = bring_open(c->t.path, 0, NULL);
		if (!r) {
			cl_fail(c, "final bring_open: %s", strerror(errno));
		} else {
			bring_get_stats(r, &st);
			if (st.used)
				cl_fail(c, "%llu bytes still held after both readers read everything",
					(unsigned long long)st.used);
			bring_free(r);
		}
	}

	TH_LOG("%u kills in %.1f s: %u of writers, %u of readers, %u all at once (%u recoveries at bring_open, %u lines of diagnostics%s%s)",
	       c->kills, (now_ns() - t0) / 1e9,
	       c->by_phase[0][PH_IDLE] + c->by_phase[0][PH_START] +
		       c->by_phase[0][PH_PUSH] + c->by_phase[0][PH_RESERVE] +
		       c->by_phase[0][PH_RESV] + c->by_phase[0][PH_ACK],
	       c->by_phase[1][PH_IDLE] + c->by_phase[1][PH_START] +
		       c->by_phase[1][PH_NEXT] + c->by_phase[1][PH_LOG] +
		       c->by_phase[1][PH_SHIFT],
	       c->kill_alls * CL_PROCS, c->recoveries, c->recovery_diags,
	       c->recovery_diags ? ", last: " : "", c->last_diag);
	TH_LOG("writers killed: %u between reserve and commit, %u in push, %u in reserve, %u asleep on a full ring, %u after push, %u idle, %u opening",
	       c->by_phase[0][PH_RESV], c->by_phase[0][PH_PUSH],
	       c->by_phase[0][PH_RESERVE], c->asleep[0], c->by_phase[0][PH_ACK],
	       c->by_phase[0][PH_IDLE], c->by_phase[0][PH_START]);
	TH_LOG("readers killed: %u in shift, %u between next and shift, %u in next/peek (%u asleep), %u idle, %u opening",
	       c->by_phase[1][PH_SHIFT], c->by_phase[1][PH_LOG],
	       c->by_phase[1][PH_NEXT], c->asleep[1], c->by_phase[1][PH_IDLE],
	       c->by_phase[1][PH_START]);
	TH_LOG("readers got past a killed writer's reservation %u times, in %.0f ms on average, %.0f ms at most",
	       c->stuck_waits,
	       c->stuck_waits ? c->stuck_sum_ns / 1e6 / c->stuck_waits : 0.0,
	       c->stuck_max_ns / 1e6);
	if (!c->fail[0])
		TH_LOG("%llu messages acknowledged; reader a: %llu delivered, %llu redelivered, %llu unacknowledged extra, %llu restarts; reader b: %llu, %llu, %llu, %llu",
		       (unsigned long long)acked,
		       (unsigned long long)verdict[0].msgs,
		       (unsigned long long)verdict[0].dups,
		       (unsigned long long)verdict[0].extras,
		       (unsigned long long)verdict[0].restarts,
		       (unsigned long long)verdict[1].msgs,
		       (unsigned long long)verdict[1].dups,
		       (unsigned long long)verdict[1].extras,
		       (unsigned long long)verdict[1].restarts);
	EXPECT_STREQ("", c->fail);
	EXPECT_GE(c->kills, kills);
	/* The chosen instants were reached. */
	EXPECT_GE(c->by_phase[0][PH_RESV], 1);
	EXPECT_GE(c->asleep[0], 1);
	EXPECT_GE(c->asleep[1], 1);
	EXPECT_GE(c->recoveries, kills / CL_KILL_ALL_EVERY / 2);

	if (c->fail[0])
		TH_LOG("kept %s for inspection (ring.before: the file before the last recovery)",
		       c->t.dir);
	else
		tmp_remove(&c->t);
	for (p = 0; p < CL_WRITERS; p++)
		free(c->starts[p]);
	munmap(c->sh, sizeof(*c->sh));
	free(c);
}

TEST_TIMEOUT(crash_loop, 175)
{
	if (crash_kills())
		SKIP(return, "BRING_CRASH_KILLS is set: crash_loop_long runs");
	crash_loop(_metadata, CL_DEFAULT_KILLS);
}

TEST_TIMEOUT(crash_loop_long, 24 * 3600)
{
	if (!crash_kills())
		SKIP(return, "set BRING_CRASH_KILLS to run it");
	crash_loop(_metadata, crash_kills());
}

/* ================================================================== */
/* One crash state at a time.                                         */

#define INTENT_VALID (1ULL << 63)	/* lib/file.c: a claim in flight */
#define IO_MS 2000	/* a stuck reader repairs well before */

FIXTURE(state)
{
	struct tmp t;
	struct bring *r;
	struct bring_reader *rd;
	int *shm;
};

FIXTURE_SETUP(state)
{
	ASSERT_EQ(0, tmp_make_shm(&self->t));
	self->shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->shm);
}

FIXTURE_TEARDOWN(state)
{
	bring_reader_close(self->rd);
	bring_free(self->r);
	munmap(self->shm, 4096);
	tmp_remove(&self->t);
}

/* A ring without default reader; reader "r" open here if @reader. */
static int open_ring(FIXTURE_DATA(state) *self, size_t cap, bool reader)
{
	BRING_OPTS(opts, .flags = BRING_NO_DEFAULT_READER);

	self->r = bring_open(self->t.path, cap, &opts);
	if (!self->r)
		return -errno;
	if (!reader)
		return 0;
	self->rd = bring_reader_open(self->r, "r");
	return self->rd ? 0 : -errno;
}

static int open_ring_with_reader(FIXTURE_DATA(state) *self, size_t cap)
{
	return open_ring(self, cap, true);
}

/* Close everything, then open the file alone: bring_open() recovers it. */
static int reopen_alone(FIXTURE_DATA(state) *self, unsigned int flags)
{
	BRING_OPTS(opts, .flags = flags);

	bring_reader_close(self->rd);
	self->rd = NULL;
	bring_free(self->r);
	capture_start();
	self->r = bring_open(self->t.path, 0, &opts);
	bring_set_print(NULL);
	if (!self->r)
		return -errno;
	self->rd = bring_reader_open(self->r, "r");
	return self->rd ? 0 : -errno;
}

/*
 * A process that opens the ring, reserves @len bytes and dies with the
 * reservation neither committed nor aborted. Returns the reservation's
 * position.
 */
static int64_t killed_in_reservation(const char *path, size_t len, int *shm)
{
	uint64_t *pos = (uint64_t *)shm;
	int status, go[2];
	pid_t pid;
	char c;

	if (pipe(go))
		return -errno;
	pid = fork_child();
	if (pid == 0) {
		struct bring *r = bring_open(path, 0, NULL);
		struct bring_resv resv;

		if (!r || bring_reserve(r, len, &resv, 0))
			_exit(1);
		memset(resv.data, 'x', len);
		*pos = resv.seq;
		if (write(go[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(go[1]);
	if (read(go[0], &c, 1) != 1) {
		close(go[0]);
		waitpid(pid, &status, 0);
		return -EPROTO;
	}
	close(go[0]);
	kill_child(pid, NULL);
	return (int64_t)*pos;
}

static int push_u32(struct bring *r, uint32_t v)
{
	return bring_push_timeout(r, &v, sizeof(v), 0);
}

static int next_u32(struct bring_reader *rd, uint32_t *v, int timeout_ms)
{
	struct bring_msg msg;
	int err = bring_reader_next(rd, &msg, timeout_ms);

	if (err)
		return err;
	if (msg.len != sizeof(*v))
		return -EBADMSG;
	memcpy(v, msg.data, sizeof(*v));
	return bring_reader_shift(rd);
}

/*
 * Reader "r" gets @want, the message after a dead writer's @dead (record
 * or claim): at run time, where a stuck reader repairs within IO_MS, or
 * with @recover after reopen_alone() had bring_open() recover the file.
 */
static void expect_after_dead(struct __test_metadata *_metadata,
			      FIXTURE_DATA(state) *self, bool recover,
			      uint32_t want, const char *dead)
{
	uint32_t v = 0;

	if (recover)
		ASSERT_EQ(0, reopen_alone(self, 0))
			TH_LOG("library said: %s", printed);
	ASSERT_EQ(0, next_u32(self->rd, &v, recover ? 0 : IO_MS))
		TH_LOG("the message after the dead %s is gone%s%s", dead,
		       recover ? "; library said: " : "",
		       recover ? printed : "");
	EXPECT_EQ(want, v);
}

/*
 * A reader stuck behind the reservation of a dead writer repairs it after
 * about 200 ms, even while other writers keep committing messages behind
 * it (each commit wakes the sleeping reader).
 */
TEST_F_TIMEOUT(state, reader_repairs_dead_writers_record_under_steady_traffic,
	       30)
{
	struct bring_stats st = { .sz = sizeof(st) };
	uint64_t t0, elapsed;
	uint32_t v = 0;
	int err;
	pid_t ticker;

	ASSERT_EQ(0, open_ring_with_reader(self, 65536));
	ASSERT_LE(0, killed_in_reservation(self->t.path, 100, self->shm));
	/* Another process pushes a message every 50 ms. */
	ticker = fork_child();
	ASSERT_GE(ticker, 0);
	if (ticker == 0) {
		struct bring *r = bring_open(self->t.path, 0, NULL);
		uint32_t i;

		for (i = 1; r && i <= 100; i++) {
			if (push_u32(r, i))
				_exit(1);
			usleep(50000);
		}
		_exit(0);
	}
	t0 = now_ns();
	err = next_u32(self->rd, &v, IO_MS);
	elapsed = (now_ns() - t0) / MS;
	kill_child(ticker, NULL);
	bring_get_stats(self->r, &st);
	ASSERT_EQ(0, err) TH_LOG("still stuck after %llu ms with %llu messages behind the dead record",
				 (unsigned long long)elapsed,
				 (unsigned long long)st.msgs_in - 1);
	EXPECT_EQ(1, v);
	EXPECT_LE(elapsed, 1000);
}

/*
 * A reader that polls (timeout 0, as an event loop does after its own
 * wait) gets past the reservation of a dead writer too.
 */
TEST_F_TIMEOUT(state, polling_reader_gets_past_dead_writers_record, 30)
{
	uint64_t t0 = now_ns();
	uint32_t v = 0;
	int err;

	ASSERT_EQ(0, open_ring_with_reader(self, 65536));
	ASSERT_LE(0, killed_in_reservation(self->t.path, 100, self->shm));
	ASSERT_EQ(0, push_u32(self->r, 7));
	do {
		err = next_u32(self->rd, &v, 0);
		if (err == -EAGAIN)
			usleep(20000);
	} while (err == -EAGAIN && now_ns() - t0 < IO_MS * MS);
	ASSERT_EQ(0, err) TH_LOG("no message after %d ms of polling", IO_MS);
	EXPECT_EQ(7, v);
}

/*
 * A writer that commits 8 bytes less than it reserved marks the record's
 * tag with TAG_SLACK8 before it clears BUSY. Killed in between (the
 * checksum of a large payload is computed there), it leaves a BUSY record
 * with TAG_SLACK8 set, whose footprint is still that of the reservation.
 * Kills a process looping on such commits (reader "w" keeps the ring
 * empty) until one lands there; then reader "r" starts at that record and
 * "w" goes. A kill that lands elsewhere can leave a dead BUSY record
 * without the slack bit (killed before the commit got there): the next
 * child's "w" then stops at it (its next() does not wait the 200 ms a
 * repair takes), the ring fills and every later try blocks in reserve
 * (-ETIMEDOUT), or "r" starts at that older record and reads a 256 KiB
 * message where 9 was expected (-EBADMSG). So each try after a miss
 * starts from a new ring.
 */
static int64_t killed_in_short_commit(FIXTURE_DATA(state) *self,
				      unsigned int *tries)
{
	enum { LEN = 256 * 1024 };
	volatile uint64_t *pos = (uint64_t *)self->shm;
	struct bring_rec *rec;
	int go[2], err;
	pid_t pid;
	char c;

	for (*tries = 1; *tries <= 500; (*tries)++) {
		if (*tries > 1) {
			bring_free(self->r);
			self->r = NULL;
			if (unlink(self->t.path))
				return -errno;
			err = open_ring(self, 1 << 20, false);
			if (err)
				return err;
		}
		if (pipe(go))
			return -errno;
		pid = fork_child();
		if (pid == 0) {
			struct bring *r = bring_open(self->t.path, 0, NULL);
			struct bring_reader *rd = r ? bring_reader_open(r, "w") : NULL;
			struct bring_resv resv;
			struct bring_msg msg;

			if (!rd || write(go[1], "r", 1) != 1)
				_exit(1);
			for (;;) {
				if (bring_reserve(r, LEN, &resv, -1))
					_exit(1);
				*pos = resv.seq;
				if (bring_commit(r, &resv, LEN - 8) ||
				    bring_reader_next(rd, &msg, 0) ||
				    bring_reader_shift(rd))
					_exit(1);
			}
		}
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			return -EPROTO;
		close(go[0]);
		spin_us(20 + (unsigned int)(now_ns() % 400));
		kill_child(pid, NULL);
		rec = rec_at(self->r, *pos);
		if (tag_matches(rec->tag, *pos, self->r->key) &&
		    (rec->tag & TAG_SLACK8) && (rec->len_flags & REC_BUSY))
			break;
	}
	if (*tries > 500)
		return -ETIMEDOUT;
	self->rd = bring_reader_open(self->r, "r");
	if (!self->rd || bring_reader_remove(self->r, "w"))
		return -EPROTO;
	return (int64_t)*pos;
}

/* The message after the short commit's dead record arrives. */
static void check_killed_short_commit(struct __test_metadata *_metadata,
				      FIXTURE_DATA(state) *self, bool recover)
{
	unsigned int tries;

	ASSERT_EQ(0, open_ring(self, 1 << 20, false));
	ASSERT_LE(0, killed_in_short_commit(self, &tries))
		TH_LOG("no kill landed inside the commit");
	TH_LOG("kill %u landed inside the commit", tries);
	ASSERT_EQ(0, push_u32(self->r, 9));
	expect_after_dead(_metadata, self, recover, 9, "record");
}

TEST_F_TIMEOUT(state, killed_short_commit_is_skipped_at_run_time, 60)
{
	check_killed_short_commit(_metadata, self, false);
}

TEST_F_TIMEOUT(state, killed_short_commit_is_skipped_at_recovery, 60)
{
	check_killed_short_commit(_metadata, self, true);
}

/*
 * Two dead claim intents over one position: writer A published its
 * intent (@pos, 64 bytes) and died before its claim's CAS, writer B then
 * claimed 48 bytes at @pos and died before tagging the record. Only B's
 * claim is real: the message that follows at @pos + 48 must survive.
 */
static int64_t two_dead_intents(FIXTURE_DATA(state) *self)
{
	struct bring_hdr *h = self->r->hdr;
	pid_t a = dead_pid(), b = dead_pid();
	uint64_t pos;
	uint32_t v;

	/* Our own writer thread takes intent slot 0 with a first push. */
	if (push_u32(self->r, 1) || next_u32(self->rd, &v, 0))
		return -EPROTO;
	pos = h->head & ~HEAD_CLOSED;
	h->intents[1] = (struct bring_intent){
		.pos = pos | INTENT_VALID, .need = 64, .pid = a, .tid = a,
	};
	h->intents[2] = (struct bring_intent){
		.pos = pos | INTENT_VALID, .need = 48, .pid = b, .tid = b,
	};
	h->head = pos + 48;
	return push_u32(self->r, 2) ?: (int64_t)pos;
}

/* B's claim ends where B's record does: the message after it arrives. */
static void check_two_dead_intents(struct __test_metadata *_metadata,
				   FIXTURE_DATA(state) *self, bool recover)
{
	ASSERT_EQ(0, open_ring_with_reader(self, 4096));
	ASSERT_LE(0, two_dead_intents(self));
	expect_after_dead(_metadata, self, recover, 2, "claim");
}

TEST_F(state, dead_claim_is_repaired_to_its_own_end_at_run_time)
{
	check_two_dead_intents(_metadata, self, false);
}

TEST_F(state, dead_claim_is_repaired_to_its_own_end_at_recovery)
{
	check_two_dead_intents(_metadata, self, true);
}

/*
 * Positions in the header are never trusted: recovery refuses (or
 * corrects) a head, tail or cursor that is not 8-byte aligned, since
 * records and their atomically accessed headers sit at such positions.
 */
TEST_F(state, recovery_refuses_unaligned_positions)
{
	struct bring_hdr *h;
	struct bring_msg msg;
	int err;

	ASSERT_EQ(0, open_ring_with_reader(self, 4096));
	h = self->r->hdr;
	h->head = 4;
	h->tail_cache = 4;
	self->rd->slot->pos = 4;
	file_save_cursor(self->rd->slot, 4);
	err = reopen_alone(self, 0);
	if (err) {
		EXPECT_TRUE(err == -EBADMSG || err == -EINVAL);
		return;
	}
	ASSERT_EQ(0, push_u32(self->r, 3));
	ASSERT_EQ(0, bring_reader_next(self->rd, &msg, 0))
		TH_LOG("the message pushed after recovery cannot be read (head at %llu)",
		       (unsigned long long)(self->r->hdr->head & ~HEAD_CLOSED));
	EXPECT_EQ(0, msg.seq % 8) TH_LOG("a record at position %llu",
					 (unsigned long long)msg.seq);
}

/*
 * The flush generations of group commit are run-time state like head and
 * the eventcounts: recovery must not trust them. A file with a huge
 * flush_started must not make a durable push flush for ever, and one with
 * a huge flush_done must not make it return without a flush.
 */
TEST_F(state, recovery_resets_flush_generations)
{
	BRING_OPTS(opts, .durability = BRING_DURABLE_ALWAYS,
		   .flags = BRING_NO_DEFAULT_READER);
	struct bring_stats st = { .sz = sizeof(st) };
	struct bring_hdr *h;
	uint64_t flushes;
	int status = 0;
	pid_t pid;

	self->r = bring_open(self->t.path, 4096, &opts);
	ASSERT_NE_NULL(self->r);
	self->rd = bring_reader_open(self->r, "r");
	ASSERT_NE_NULL(self->rd);

	/* A huge flush_done: the push must still wait for a flush. */
	h = self->r->hdr;
	h->flush_done = UINT64_MAX;
	ASSERT_EQ(0, reopen_alone(self, 0));
	ASSERT_EQ(0, bring_get_stats(self->r, &st));
	flushes = st.flushes;
	ASSERT_EQ(0, push_u32(self->r, 1));
	ASSERT_EQ(0, bring_get_stats(self->r, &st));
	EXPECT_LT(flushes, st.flushes)
		TH_LOG("a durable push returned without flushing");

	/* A huge flush_started: the push must return. */
	h = self->r->hdr;
	h->flush_started = UINT64_MAX;
	h->flush_done = 0;
	ASSERT_EQ(0, reopen_alone(self, 0));
	pid = fork_child();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(push_u32(self->r, 2) ? 1 : 0);
	status = wait_child(pid, 3000);
	ASSERT_NE(-1, status)
		TH_LOG("a durable push is still flushing after 3 s");
	EXPECT_TRUE(exited_ok(status));
}

/*
 * BRING_DURABLE_INTERVAL with a flush_ms beyond INT_MAX (from the options
 * or from a file's header): the flusher thread must sleep between
 * flushes, not spin (bring_deadline_init() takes an int).
 */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

TEST_F(state, flusher_with_huge_flush_ms_does_not_spin)
{
	BRING_OPTS(opts, .durability = BRING_DURABLE_INTERVAL,
		   .flush_ms = 0xffffffffU);
	uint64_t cpu;

	self->r = bring_open(self->t.path, 4096, &opts);
	if (!self->r) {
		/* Refusing the option is fine too. */
		ASSERT_EQ(EINVAL, errno);
		return;
	}
	ASSERT_EQ(0, push_u32(self->r, 1));
	cpu = cpu_ns();
	usleep(500000);
	cpu = cpu_ns() - cpu;
	EXPECT_LT(cpu, 100 * MS)
		TH_LOG("%llu ms of CPU in 500 ms of doing nothing",
		       (unsigned long long)(cpu / MS));
}

TEST_HARNESS_MAIN
