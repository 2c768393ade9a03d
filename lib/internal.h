/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * internal.h - the shared ring layout and the process-local handles.
 *
 * Everything in struct bring_hdr and in the data area may be mapped by
 * several processes at once (today through a memfd, later through a file),
 * so it holds no pointers, only positions, and every word that threads
 * race on is accessed through the atomics below. Documentation/ring.rst
 * describes the layout and the wait/wake protocol; the comments here only
 * say who writes what.
 */
#ifndef BRING_INTERNAL_H
#define BRING_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bring.h"
#include "crc32c.h"
#include "futex.h"

#define BRING_MAGIC 0x31474e4952425f5fULL /* "__BRING1" little endian */
/*
 * 3: file rings escape (2026-12); 2: marks (bring 0.3 to 0.5), the same
 * layout, upgraded by the first exclusive open; 1: bring 0.1, 0.2.
 */
#define BRING_LAYOUT_VERSION 3
#define BRING_LAYOUT_UPGRADE 2
#define BRING_CACHELINE 64
#define BRING_HDR_SIZE 65536 /* header pages in front of the data */
#define BRING_CAPACITY_MIN 4096
#define BRING_CAPACITY_MAX (1ULL << 30)
#define BRING_SLOTS (BRING_READERS_MAX + 1) /* slot 0: the default reader */
#define BRING_NOTIFY_MAX 8 /* bring_notify_fd() eventfds per handle */

#define __cacheline_aligned __attribute__((aligned(BRING_CACHELINE)))

/*
 * Record header: 16 bytes in front of every message, records aligned to 8.
 *
 * A writer claims [pos, pos + footprint) by moving head with a CAS, then
 * writes the header: len_flags with BUSY set, then tag = pos ^ key with a
 * release store. Until the tag matches, the bytes at pos are whatever the
 * previous lap left there, and readers treat the record as not written
 * yet; key is a random per-ring secret, so no payload can forge a header
 * for a position it does not own. Bit 0 of the tag (TAG_SLACK8) says
 * that 8 unused bytes follow the payload. The writer commits by clearing BUSY
 * with a release store once the payload is in place. Readers stop at the
 * first record that is not written or not committed.
 */
struct bring_rec {
	union {
		struct {
			uint32_t len_flags;
			/* CRC32C (file rings); the writer's pid while BUSY */
			uint32_t crc;
		};
		/*
		 * The commit word: len_flags and crc as one 64-bit atomic,
		 * so that a commit and a crash repair (a CAS) can never mix
		 * one's length with the other's checksum. Concurrent code
		 * only touches the two halves through this word.
		 */
		uint64_t word;
	};
	uint64_t tag; /* pos ^ hdr->key: the record's position, keyed */
};

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "struct bring_rec: the commit word assumes little endian"
#endif

static inline uint64_t rec_word(uint32_t len_flags, uint32_t crc)
{
	return len_flags | (uint64_t)crc << 32;
}

static inline uint32_t word_lf(uint64_t word)
{
	return (uint32_t)word;
}

static inline uint32_t word_crc(uint64_t word)
{
	return (uint32_t)(word >> 32);
}

#define REC_BUSY (1U << 31) /* reserved, payload not committed yet */
#define REC_DISCARD (1U << 30) /* aborted or slack: readers skip it */
#define REC_LEN_MASK ((1U << 30) - 1)
#define TAG_SLACK8 1ULL /* in tag: 8 unused bytes follow the payload */
#define TAG_FLAGS 7ULL /* positions are 8-aligned; the key's low bits are 0 */
#define REC_HDR_SIZE ((uint64_t)sizeof(struct bring_rec))
#define HEAD_CLOSED (1ULL << 63)
#define BRING_MSG_MAX ((size_t)REC_LEN_MASK) /* bytes, payload */
/* bring_opts.flags that apply to one open of a file, never stored in it */
#define BRING_OPEN_FLAGS (BRING_VERIFY_CRC | BRING_ALLOW_FOREIGN)

/* A head word's position, without the close flag. */
static inline uint64_t head_pos(uint64_t head)
{
	return head & ~HEAD_CLOSED;
}

static inline uint64_t rec_footprint_len(uint64_t len)
{
	return (REC_HDR_SIZE + len + 7) & ~7ULL;
}

/* Footprint of a record from its commit word and tag. */
static inline uint64_t rec_footprint(uint32_t len_flags, uint64_t tag)
{
	return rec_footprint_len(len_flags & REC_LEN_MASK) +
	       ((tag & TAG_SLACK8) ? 8 : 0);
}

/*
 * File rings: a record's checksum covers its tag, its final commit word
 * and its payload, so that neither a zeroed header nor a flipped flag
 * passes for a record (DISCARD records have no payload).
 */
static inline uint32_t rec_crc_head(uint64_t tag, uint32_t len_flags)
{
	return crc32c_u64_u32(0, tag, len_flags);
}

static inline uint32_t rec_crc(uint64_t tag, uint32_t len_flags,
			       const void *payload, size_t len)
{
	uint32_t c = rec_crc_head(tag, len_flags);

	return len ? bring_crc32c(c, payload, len) : c;
}

/* Is @tag the tag of a record at @pos? */
static inline bool tag_matches(uint64_t tag, uint64_t pos, uint64_t key)
{
	return (tag & ~TAG_FLAGS) == (pos ^ key);
}

enum slot_state {
	SLOT_FREE = 0,
	SLOT_ACTIVE = 1,
};

/*
 * A persisted cursor (file rings) or a writer's mark: two generations in
 * each slot, each with its own checksum, written alternately, so that a
 * torn update falls back to the previous one (lib/mark.c). A reader's
 * cursor carries the reader's mark; a writer's names the record its mark
 * was committed with.
 */
struct bring_cursor {
	uint64_t pos; /* reader: its cursor; writer: the marked record */
	uint64_t gen; /* 0: never written, or revoked */
	uint32_t crc; /* CRC32C of pos, gen, mark_len and the mark */
	uint32_t mark_len;
	uint8_t mark[BRING_MARK_MAX];
};

/*
 * A named writer (bring_writer_open()): its mark, in the two
 * generations of saved[], is written by the thread holding the handle
 * just before each marked commit; the rest changes under the lock.
 */
struct bring_wslot {
	struct bring_cursor saved[2];
	uint32_t state; /* enum slot_state */
	int32_t owner; /* pid of the process holding a handle, 0 if none */
	char name[BRING_NAME_MAX];
	uint32_t locked; /* file rings: the owner holds the slot's OFD lock */
} __cacheline_aligned;

/*
 * One reader's cursor. The first two cache lines are written only by the
 * thread that holds the reader's handle; the third only under the lock.
 */
struct bring_slot {
	uint64_t pos; /* first byte not yet shifted: space before it is free */
	struct bring_cursor saved[2];
	uint64_t msgs_out __cacheline_aligned;
	uint64_t bytes_out;
	uint64_t read_waits;
	uint64_t read_wait_ns;
	uint64_t last_active; /* s since the epoch: last open or shift */
	uint64_t stuck_waits; /* 200 ms waits at an unfinished record */
	uint32_t state __cacheline_aligned; /* enum slot_state */
	int32_t owner; /* pid of the process holding a handle, 0 if none */
	char name[BRING_NAME_MAX];
	uint32_t locked; /* file rings: the owner holds the slot's OFD lock */
} __cacheline_aligned;

/*
 * A writer thread's claim in flight (file rings): published before the
 * claim's CAS and cleared once the record's header is tagged, so that a
 * reader stuck at an untagged position can tell a slow writer from a
 * dead one, and how many bytes the dead one had claimed.
 */
struct bring_intent {
	uint64_t pos; /* position claimed or being claimed, 0: none */
	uint64_t need; /* bytes */
	int32_t pid;
	int32_t tid; /* owner thread, 0: slot free */
	uint32_t gen; /* moves when the slot changes owner (file.c) */
} __cacheline_aligned;

#define BRING_INTENTS 64
#define INTENT_VALID (1ULL << 63) /* in bring_intent.pos: a claim */

enum bring_durability_mode {
	DURABLE_NONE = 0,
	DURABLE_INTERVAL = 1,
	DURABLE_ALWAYS = 2,
};

/* Fixed at creation, covered by hdr->c_crc. */
struct bring_hdr_const {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint64_t capacity;
	uint64_t max_msg;
	uint64_t key; /* random; see struct bring_rec */
	uint32_t flags; /* enum bring_flags given at creation */
	uint32_t durability; /* enum bring_durability_mode */
	uint32_t flush_ms;
	uint32_t file; /* 1 for a file-backed ring */
	char name[BRING_NAME_MAX];
};

/*
 * The ring header. Lines are grouped by writer: constants, the slow-path
 * lock line, the head line (writers write, readers read), the data-wait
 * line (readers write only when they sleep), the space-wait line (writers
 * write only when they sleep), the flush line, slow-path counters, then
 * the reader slots and the claim intents.
 */
struct bring_hdr {
	struct bring_hdr_const c;
	uint32_t c_crc; /* CRC32C of c */

	/* Slow paths only: sleeping writers' bookkeeping, the reader table. */
	pthread_mutex_t lock __cacheline_aligned;
	uint64_t readers_mask; /* bit i: slot i is active; under lock */

	/*
	 * Writers: head moves by CAS; bit 63 is the close flag, so a writer
	 * can never reserve after the close and readers see both at once.
	 */
	uint64_t head __cacheline_aligned; /* end of the reserved records */
	/*
	 * The last lap jump: claims skipped from here to the start of the
	 * next lap, jump_to(); a reader whose cursor is here continues
	 * there (Documentation/ring.rst, "Lap jumps"). 0: none yet. Only
	 * grows; stored once per jump, after the claim's CAS on head.
	 */
	uint64_t jump_from;
	/*
	 * The escape from the last jump's trap (Documentation/ring.rst,
	 * "Escape jumps"): claims skipped from here to jump_from plus the
	 * capacity, over the bytes a reader stopped before jump_from still
	 * holds. Only names an escape while escape_valid() says it belongs
	 * to jump_from; 0: none. Only grows; stored once per escape, after
	 * the claim's CAS on head (or by the repair of a dead escaper's
	 * claim, file_repair_stuck()). In file rings since layout 3.
	 */
	uint64_t escape_from;
	/*
	 * Escapers between the claim's CAS (counted just before it) and
	 * the store of escape_from. While not 0, no lap jump: a jump then
	 * would move jump_from, escape_from would no longer name the
	 * escape once stored, and readers at its start would wait there
	 * for good. Memory rings only: a file ring's escapers are known by
	 * their intents (file_escape_unpublished()), which a dead one
	 * leaves behind without blocking the jumps for good.
	 */
	uint64_t escaping;

	/* Writers only: readers never touch this line. */
	uint64_t tail_cache __cacheline_aligned; /* <= every active reader's
						  * pos; only grows */
	uint64_t msgs_in;
	uint64_t bytes_in;

	/* Readers' sleep: an eventcount (futex.h). */
	uint64_t data_seq __cacheline_aligned;

	/* Writers' sleep: an eventcount and what the sleepers need. */
	uint64_t space_seq __cacheline_aligned;
	uint64_t space_want; /* smallest need of a sleeping writer; written
			      * under lock, reset by every wake */

	/* File rings: flushing. */
	pthread_mutex_t flush_lock __cacheline_aligned; /* one flusher */
	uint64_t flush_started; /* generation of the last flush begun */
	uint64_t flush_done; /* generation of the last flush completed */
	uint64_t durable_pos; /* head when the last completed flush began */
	uint64_t flush_seq; /* eventcount: a flush completed */
	int32_t poisoned; /* errno of a failed flush; the ring is dead */
	/*
	 * Group commit's batching (heuristics only: a wrong value costs
	 * time, never durability). sync_asked counts the commits that
	 * wait for a flush; a flush takes sync_asked when it starts
	 * (sync_taken) and sync_batch is how many that flush gained. The
	 * next flusher waits on batch_seq, at most half a flush, for as
	 * many commits as the last flush took.
	 */
	uint64_t sync_asked;
	uint64_t sync_taken;
	uint32_t sync_batch;
	uint64_t batch_seq; /* eventcount: a batch is complete */
	uint64_t flush_ns; /* how long the last flush took */

	/* Slow-path counters (atomic adds). */
	uint64_t write_waits __cacheline_aligned;
	uint64_t write_wait_ns;
	uint64_t futex_waits;
	uint64_t futex_wakes;
	uint64_t damaged; /* records dropped by recovery (skip_damaged) */
	uint64_t flushes;

	struct bring_slot slots[BRING_SLOTS] __cacheline_aligned;
	struct bring_intent intents[BRING_INTENTS];
	struct bring_wslot wslots[BRING_WRITERS_MAX];
};

_Static_assert(sizeof(struct bring_hdr) <= BRING_HDR_SIZE,
	       "ring header must fit its pages");
_Static_assert(sizeof(struct bring_rec) == 16, "record header is 16 bytes");

/* A reader handle: process-local state of one cursor (own cache line). */
struct bring_reader {
	/*
	 * Fixed once attached, and read by other threads (bring_reader_lag()):
	 * first, so that reader_restore() can put the rest back alone.
	 */
	struct bring *ring;
	struct bring_slot *slot;
	unsigned int idx; /* slot index */
	/* The owner's state, from here on. */
	uint64_t pos; /* first unshifted record (past skipped discards) */
	uint64_t head_cache; /* last head seen; only grows */
	uint64_t pend_end; /* end of what next/peek returned */
	uint64_t pend_bytes;
	uint32_t pend_msgs; /* 0: nothing to shift */
	uint64_t stuck_pos; /* file rings: an unfinished record found here */
	uint64_t stuck_since; /* since then, ns; 0: not stuck */
	uint64_t damaged_pos; /* 1 + position of a refused record, or 0 */
	uint64_t jump_look; /* ring_jump_empty() looks again from here */
	uint64_t busy_len; /* length of the unfinished record at pend_end */
} __cacheline_aligned;

/* The ring handle: process-local view of a mapping. */
struct bring {
	struct bring_hdr *hdr;
	uint8_t *data; /* capacity bytes, mapped twice in a row */
	uint64_t capacity;
	uint64_t mask;
	uint64_t max_msg;
	uint64_t key; /* hdr->key */
	void *map; /* the whole reservation: header + data + mirror */
	size_t map_len;
	struct bring_reader *def; /* the default reader, NULL if none */
	uint64_t spin_ns; /* optimistic re-checks before sleeping; 0: none */
	uint64_t space_wait_end; /* ns: a writer's last wait for space ended */
	uint64_t jump_look; /* head below which claims do not look for a
			     * lap jump again (a hint, relaxed) */
	uint64_t jump_slack; /* bring_set_jump_slack(); relaxed */
	char name[BRING_NAME_MAX];
	/* File rings. */
	int fd; /* -1 for memory rings */
	int lock_fd; /* intent slot locks of this process, -1: none yet */
	uint64_t own_slots; /* intent slots this handle's threads own */
	/*
	 * bring_reserve()s made and ended through each slot (file.c,
	 * file_resv_open()), a line each: threads reserve through their own.
	 */
	struct {
		uint32_t opened; /* by the slot's owner thread only */
		uint32_t closed; /* by any thread that commits or aborts */
	} __cacheline_aligned slot_resv[BRING_INTENTS];
	uint64_t orphan_slots; /* given up by their thread, reservations open */
	bool file;
	bool skip_damaged;
	bool verify_crc; /* BRING_VERIFY_CRC */
	bool allow_foreign; /* BRING_ALLOW_FOREIGN */
	uint32_t durability;
	uint32_t flush_ms;
	uint64_t open_id; /* file rings: never reused within the process */
	struct bring_flusher *flusher; /* DURABLE_INTERVAL thread */
	/*
	 * bring_notify_fd(): eventfds, one per event loop that asked, each
	 * written whenever this handle wakes sleepers. notify_nr slots are
	 * reserved (fetch-add); a slot is -1 until its fd is stored.
	 */
	int notify_fds[BRING_NOTIFY_MAX];
	unsigned int notify_nr;
} __cacheline_aligned;

/* Handles are allocated on cache lines of their own. */
static inline void *zalloc_aligned(size_t size)
{
	void *p = NULL;

	if (posix_memalign(&p, BRING_CACHELINE, size))
		return NULL;
	return memset(p, 0, size);
}

/*
 * Atomics. READ/WRITE name the ordering; the comment at each call site
 * says what it pairs with. smp_mb() is the full fence of the Dekker-style
 * "publish, then look for sleepers" steps in the wait/wake protocol.
 */
#define load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define fetch_add(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define fetch_or(p, v) __atomic_fetch_or((p), (v), __ATOMIC_SEQ_CST)
#define add_relaxed(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

/*
 * Raise *@p to @v unless it is past it already, with release (the
 * publications of jumps and escapes: fields that only grow, whatever
 * order stalled publishers store in).
 */
static inline void store_max_release(uint64_t *p, uint64_t v)
{
	uint64_t old = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (old < v &&
	       !__atomic_compare_exchange_n(p, &old, v, false,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}
#ifdef __SANITIZE_THREAD__
/*
 * TSan does not model fences (gcc warns, -Wtsan). A seq_cst RMW on a
 * thread-local word is the same full barrier on the CPU and creates no
 * happens-before edge that could hide a race from TSan.
 */
extern __thread unsigned int bring_tsan_fence;
#define smp_mb() __atomic_fetch_add(&bring_tsan_fence, 0, __ATOMIC_SEQ_CST)
#elif defined(__x86_64__)
/*
 * As the kernel does on x86-64: a locked add to the stack is a full
 * barrier and cheaper than mfence; "memory" makes it a compiler barrier.
 */
#define smp_mb() __asm__ __volatile__("lock; addl $0,-4(%%rsp)" ::: "memory", "cc")
#else
#define smp_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

/* Tell the CPU we are spinning (lets the sibling hyperthread run). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

#define BRING_SPIN_NS_DEFAULT 2000
#ifndef BRING_SPIN_PAUSES
#define BRING_SPIN_PAUSES 32 /* between two looks at shared lines */
#endif

/*
 * One step of an optimistic spin: stay off the shared cache lines for a
 * few pause instructions, so the other side can write a few records
 * without us pulling its lines away after each one.
 */
static inline void spin_pause(void)
{
	int i;

	for (i = 0; i < BRING_SPIN_PAUSES; i++)
		cpu_relax();
}

/*
 * An optimistic spin that allows for the other side's copy of @bytes:
 * r->spin_ns, plus @bytes at @bytes_per_us, at most @max_ns more. A
 * writer waits for a reader's copy out (lib/ring.c), a reader for a
 * writer's copy in (lib/reader.c), at rates of their own.
 */
static inline uint64_t spin_budget(const struct bring *r, uint64_t bytes,
				   uint64_t bytes_per_us, uint64_t max_ns)
{
	uint64_t ns = bytes * 1000 / bytes_per_us;

	return r->spin_ns + (ns < max_ns ? ns : max_ns);
}

static inline struct bring_rec *rec_at(const struct bring *r, uint64_t pos)
{
	return (struct bring_rec *)(r->data + (pos & r->mask));
}

/*
 * Lap jumps (Documentation/ring.rst): where a jump from @pos lands, the
 * start of the next lap. Any value jump_from ever held names a jump whose
 * claim was made: no record was ever written in [jf, jump_to(jf)), so a
 * cursor at jf needs nothing before jump_to(jf) and counts as being
 * there. Position 0 is never a jump's start.
 */
#define JUMP_CAPACITY_MIN (1ULL << 20) /* smaller rings never jump */

static inline uint64_t jump_to(const struct bring *r, uint64_t pos)
{
	return (pos | r->mask) + 1;
}

/*
 * The published jumps, as one look loads them: the last lap jump and the
 * escape from it, if any (0: none). @esc is kept only while it belongs
 * to @from: after the lap jump from @from, claims went on at the next
 * lap's start, a reader stopped before @from held them to the room behind
 * it, and a claim escaped from @esc to @from plus the capacity, over that
 * reader's bytes into the first jump's skipped range (escape_start()).
 * Such an escape starts past jump_to(@from) and before @from plus the
 * capacity; an older escape, from an earlier jump, lies before @from.
 */
struct ring_jumps {
	uint64_t from; /* hdr->jump_from */
	uint64_t esc; /* hdr->escape_from, if it belongs to @from; else 0 */
};

static inline uint64_t escape_to(const struct bring *r,
				 const struct ring_jumps *j)
{
	return j->from + r->capacity;
}

/*
 * jump_from first: an escape is published after the jump it escapes, so
 * an escape loaded with an older jump_from lies past it by a lap and is
 * dropped here, never paired with the wrong jump. Both acquire: pair with
 * the release CASes in publish_jump() and publish_escape(), so the
 * claims that made them are visible.
 */
static inline void ring_jumps_load(const struct bring *r,
				   struct ring_jumps *j)
{
	j->from = load_acquire(&r->hdr->jump_from);
	j->esc = load_acquire(&r->hdr->escape_from);
	if (!j->from || j->esc <= jump_to(r, j->from) ||
	    j->esc >= escape_to(r, j))
		j->esc = 0;
}

/* Where a cursor at @pos really stands: past a published jump there. */
static inline uint64_t jump_cursor(const struct bring *r,
				   const struct ring_jumps *j, uint64_t pos)
{
	if (j->from && pos == j->from)
		return jump_to(r, pos);
	if (j->esc && pos == j->esc)
		return escape_to(r, j);
	return pos;
}

/* Pairs with the release CAS in publish_jump(): the jump's claim first. */
static inline uint64_t ring_jump_from(const struct bring *r)
{
	return load_acquire(&r->hdr->jump_from);
}

/*
 * Bytes of records from cursor @pos (as jump_cursor() leaves it) to
 * @head: a cursor still before a published jump does not count its
 * skipped bytes, which hold no record. Writers count the lap jump's
 * skipped bytes as used until every cursor passed them (the claims of the
 * next lap must stay behind the slowest one's physical position, see
 * ring_room_tail()); lag and bring_stats.used say what there is to read.
 */
static inline uint64_t ring_held(const struct bring *r,
				 const struct ring_jumps *j, uint64_t pos,
				 uint64_t head)
{
	uint64_t bytes = head > pos ? head - pos : 0, skip = 0;

	if (j->from && pos < j->from && head >= jump_to(r, j->from))
		skip += jump_to(r, j->from) - j->from;
	if (j->esc && pos < j->esc && head >= escape_to(r, j))
		skip += escape_to(r, j) - j->esc;
	return bytes > skip ? bytes - skip : 0;
}

/*
 * The position writers stay a capacity behind, given the cursors'
 * minimum @tail (jump_cursor() applied): @tail itself, except that once
 * an escape is published a cursor before the lap jump counts at the
 * jump's end. The escaping claims use the bytes the jump skipped, which
 * lie past that reader's, and the records after the jump, [jump_to,
 * escape start), are the next to be overwritten (Documentation/ring.rst,
 * "Escape jumps"). Monotonic in @tail, so it may be applied to the
 * minimum instead of to each cursor.
 */
static inline uint64_t ring_room_tail(const struct bring *r,
				      const struct ring_jumps *j,
				      uint64_t tail)
{
	if (j->esc && tail < j->from)
		return jump_to(r, j->from);
	return tail;
}

/*
 * Option structs (libbpf convention): @sz says how much of the struct the
 * caller knows. Fields past it read as their default; bytes past what this
 * library knows must be zero, or a newer caller asked for something we
 * cannot do.
 */
#define offsetofend(TYPE, FIELD) \
	(offsetof(TYPE, FIELD) + sizeof(((TYPE *)0)->FIELD))
#define OPTS_HAS(opts, field) \
	((opts) && (opts)->sz >= offsetofend(typeof(*(opts)), field))
#define OPTS_GET(opts, field, fallback) \
	(OPTS_HAS(opts, field) ? (opts)->field : (fallback))
#define OPTS_VALID(opts, type) \
	(!(opts) || bring_opts_valid((opts), (opts)->sz, \
				     offsetofend(struct type, type##__last_field)))

static inline bool bring_opts_valid(const void *opts, size_t user_sz,
				    size_t known_sz)
{
	const char *p = opts;
	size_t i;

	if (user_sz < sizeof(size_t))
		return false;
	for (i = known_sz; i < user_sz; i++)
		if (p[i])
			return false;
	return true;
}

/* Reader and writer names: 1 to BRING_NAME_MAX - 1 bytes. */
static inline int check_name(const char *name)
{
	if (!name || !name[0])
		return -EINVAL;
	return strlen(name) >= BRING_NAME_MAX ? -ENAMETOOLONG : 0;
}

/*
 * An event loop's wait: the word, the value, and the ticket to finish.
 * __priv[1]: the registration in bit 0, a writer's need (for its end
 * probe; a footprint, below 2^31) above it; __priv[2]: the ms the wait
 * may last (bring_wait_timeout()), 0: any.
 */
static inline void wait_ticket_save(struct bring_wait *w, uint64_t *word,
				    const struct evc_ticket *t, uint64_t need)
{
	w->uaddr = evc_futex(word);
	w->val = t->seen;
	w->__priv[0] = t->seen;
	w->__priv[1] = (uint32_t)((t->registered ? 1 : 0) | need << 1);
	w->__priv[2] = 0;
}

static inline void wait_ticket_load(const struct bring_wait *w,
				    struct evc_ticket *t)
{
	t->seen = w->__priv[0];
	t->registered = (int)(w->__priv[1] & 1);
}

static inline uint64_t wait_need(const struct bring_wait *w)
{
	return w->__priv[1] >> 1;
}

/* A marked commit: the writer's mark generations and the new mark. */
struct mark_stage {
	struct bring_cursor *saved;
	const void *mark;
	uint32_t mark_len;
};

/* ring.c */
int ring_commit(struct bring *r, struct bring_resv *resv, size_t len,
		const struct mark_stage *ms);
void ring_lock(struct bring *r);
uint64_t ring_refresh_tail(struct bring *r);
void ring_unlock(struct bring *r);
uint64_t ring_min_reader_pos(const struct bring *r);
void ring_jump_empty(struct bring *r, uint64_t pos, uint64_t *look);
void ring_wake_writers(struct bring *r);
void ring_test_stall(const int *hold, int *held);
void ring_count_futex_wait(struct bring *r);
void ring_signal(struct bring *r, uint64_t *word);
void ring_init_notify(struct bring *r);

/* reader.c */
struct bring_reader *reader_attach(struct bring *r, const char *name,
				   int *err);
void reader_detach(struct bring_reader *rd);

/* mem.c */
int ring_map_fd(struct bring *r, int fd, uint64_t capacity);
int ring_map_memfd(struct bring *r, const char *name, uint64_t capacity);
void ring_unmap(struct bring *r);

/* ring.c, shared with file.c */
int ring_init_header(struct bring *r, const char *name, uint64_t max_msg,
		     unsigned int flags);
void ring_init_locks(struct bring_hdr *h);
uint64_t ring_spin_ns(const struct bring_opts *opts);
int ring_check_opts(size_t capacity, const struct bring_opts *opts,
		    const char **name, uint64_t *max_msg);
uint64_t ring_round_capacity(size_t capacity);
uint32_t ring_hdr_crc(const struct bring_hdr *h);

/* file.c */
int file_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void file_close(struct bring *r);
int file_start_flusher(struct bring *r);
int file_wait_durable(struct bring *r);
void file_save_cursor(struct bring_slot *sl, uint64_t pos);
uint32_t file_busy_mark(const struct bring *r, struct bring_intent *in);
struct bring_intent *file_intent_slot(struct bring *r);
bool file_repair_stuck(struct bring *r, uint64_t pos);
bool file_escape_unpublished(struct bring *r, const struct ring_jumps *j);
void file_repair_busy(struct bring *r, uint64_t pos);
void file_resv_open(struct bring *r, uint64_t pos);
void file_resv_close(struct bring *r, uint32_t mark);
int file_load_cursor(const struct bring_slot *sl, uint64_t *pos);

/* A failed flush poisoned the ring: -EIO for good (memory rings: 0). */
static inline int file_check_poison(const struct bring *r)
{
	/* Pairs with the release store of poisoned in flush_locked(). */
	return r->file && load_acquire(&r->hdr->poisoned) ? -EIO : 0;
}

/* After a commit: durability "always" returns once the record is durable. */
static inline int file_after_commit(struct bring *r)
{
	if (r->durability == DURABLE_ALWAYS)
		return file_wait_durable(r);
	return file_check_poison(r);
}

/* Announce a claim of @need bytes at @pos, before the claim's CAS. */
static inline void file_set_intent(struct bring_intent *in, uint64_t pos,
				   uint64_t need)
{
	/*
	 * Release: whoever acquires this need sees what came before it,
	 * the clear of the slot's previous intent and the publication that
	 * preceded that (file_escape_unpublished() pairs a pos with a need
	 * of the next intent otherwise).
	 */
	store_release(&in->need, need);
	/* Visible before the claim's CAS (release) that it describes. */
	store_release(&in->pos, pos | INTENT_VALID);
}

/* The claim's headers are tagged: it needs no repair any more. */
static inline void file_clear_intent(struct bring_intent *in)
{
	store_release(&in->pos, 0);
}

/*
 * Which of the intents covering a reader's position @pos describes the
 * claim @pos lies in (run-time repair and recovery ask the same)? Stale
 * intents cover it too: a writer killed between its intent and its CAS,
 * or after losing the CAS. Every intent starts at a value head held, a
 * boundary between claims, so at or before the start of the claim that
 * holds @pos: that claim's intent is the one that starts last. Several
 * may start there (one CAS made it, the others did not): the claim ends
 * where the next claim starts, a boundary, which the caller's
 * @boundary() recognises (head, a tagged header, an intent starting
 * there, the published jump); the other ends lie inside the claim,
 * where none of these can be, since @pos starts the claim's first
 * untagged record and no head value falls inside a claim. The smallest
 * such end, or with none (damage) the smallest end. An end less than a
 * header past @pos is never the claim's: a hole cut there could not be
 * given a header. Offer each covering intent [@start, @end), then ask
 * claim_pick_end(); 0: none, or the claim's writer may live.
 */
struct claim_pick {
	uint64_t pos;
	uint64_t start; /* the latest start offered */
	bool have; /* one was offered */
	bool alive; /* a live writer's intent starts there: wait for it */
	uint64_t ends[BRING_INTENTS]; /* of the dead ones from there */
	int n;
};

/*
 * A live writer's intent that starts before the latest start is not the
 * claim's and never will be: its CAS expects head at its start, which
 * head is past for good. Only one from the latest start may be: @alive.
 */
static inline void claim_pick_offer(struct claim_pick *p, uint64_t start,
				    uint64_t end, bool alive)
{
	if (end - p->pos < REC_HDR_SIZE || (p->have && start < p->start))
		return;
	if (!p->have || start > p->start) {
		p->have = true;
		p->start = start;
		p->alive = false;
		p->n = 0;
	}
	if (alive)
		p->alive = true;
	else
		p->ends[p->n++] = end;
}

static inline uint64_t claim_pick_end(const struct claim_pick *p,
				      bool (*boundary)(const void *, uint64_t),
				      const void *arg)
{
	uint64_t min = 0, best = 0;
	int i;

	if (p->alive || !p->n)
		return 0;
	if (p->n == 1)
		return p->ends[0];
	for (i = 0; i < p->n; i++) {
		uint64_t e = p->ends[i];

		if (!min || e < min)
			min = e;
		if ((!best || e < best) && boundary(arg, e))
			best = e;
	}
	return best ? best : min;
}

/* mark.c */
uint32_t cursor_crc(const struct bring_cursor *c);
const struct bring_cursor *cursor_newest(const struct bring_cursor *c);
const struct bring_cursor *cursor_latest(const struct bring_cursor *c);
void cursor_settle(struct bring_cursor *c);
int cursor_copy_mark(const struct bring_cursor *c, void *buf, size_t size);
void cursor_store(struct bring_cursor *c, uint64_t pos, const void *mark,
		  uint32_t mark_len);
void mark_revoke_dead(struct bring *r, uint64_t pos);
int mark_check(const void *mark, size_t mark_len);
bool mark_pid_alive(int32_t pid);

/*
 * Who holds a named reader's or writer's slot (file.c, "Owner
 * liveness"): an OFD lock on a byte per slot in file rings, the owner's
 * pid otherwise. All under the ring lock.
 */
enum owner_kind { OWNER_READER, OWNER_WRITER };
bool slot_owner_alive(const struct bring *r, enum owner_kind k,
		      unsigned int slot);
int slot_owner_take(struct bring *r, enum owner_kind k, unsigned int slot);
void slot_owner_release(struct bring *r, enum owner_kind k, unsigned int slot);

/* recover.c */
int file_check_header(const struct bring_hdr *h, uint64_t file_size,
		      const char *path);
int file_recover(struct bring *r, const char *path);

#endif /* BRING_INTERNAL_H */
