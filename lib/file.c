// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * file.c - the ring in a file that many processes map at once.
 *
 * The file holds exactly what a memory ring's memfd holds: the header
 * pages and the data area (Documentation/file-format.rst). On top of the
 * memory ring this file adds:
 *
 *  - creation that never exposes a half-made file (O_TMPFILE + linkat),
 *    and an open protocol in which the first process to open the file
 *    (nobody else has it open) validates and recovers it;
 *  - persisted reader cursors (two checksummed generations per slot);
 *  - crash repair: a reader stuck behind a record whose writer died turns
 *    it into a record readers skip;
 *  - durability: none, interval (a flusher thread) or always (group
 *    commit), and poisoning after a failed flush.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crc32c.h"
#include "internal.h"
#include "probes.h"

#if BRING_HAVE_PROBES
BRING_PROBE_SEMAPHORE(durable_wait_start);
BRING_PROBE_SEMAPHORE(durable_wait_end);
#endif

#define FLUSH_MS_DEFAULT 1000

/* Fault injection for the selftests: make the next flushes fail. */
int bring__fault_flush;
/*
 * How long bring_open() waits for the open lock; the selftests shorten
 * it. Opening and recovering a 1 GiB ring takes under 2 s (bench/file).
 */
unsigned int bring__open_lock_ms = 10000;
/*
 * For the selftests: waits for a flush that ended by their poll timeout
 * and then found the flush lock free or their record covered, i.e. a
 * wake-up that should have come and did not.
 */
unsigned long bring__flush_missed_wakes;

struct bring_flusher {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
};

static int default_print(const char *fmt, va_list ap)
{
	return vfprintf(stderr, fmt, ap);
}

static bring_print_fn_t print_fn = default_print;

/**
 * bring_set_print() - where the library's diagnostics go
 * @fn: the new printer, or NULL for silence
 *
 * The library prints only when it refuses or repairs a file: which check
 * failed, at which offset. The default printer writes to stderr.
 *
 * Return: the previous printer.
 */
bring_print_fn_t bring_set_print(bring_print_fn_t fn)
{
	bring_print_fn_t old = print_fn;

	print_fn = fn;
	return old;
}

int file_printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!print_fn)
		return 0;
	va_start(ap, fmt);
	n = print_fn(fmt, ap);
	va_end(ap);
	return n;
}

/* ------------------------------------------------------------------ */
/* Process identity: cached, refreshed in fork children.              */

static int32_t my_pid;

static void refresh_pid(void)
{
	store_relaxed(&my_pid, (int32_t)getpid());
}

/* Before main(), and again in every fork child. */
__attribute__((constructor)) static void pid_init(void)
{
	refresh_pid();
	pthread_atfork(NULL, NULL, refresh_pid);
}

static int32_t self_pid(void)
{
	return load_relaxed(&my_pid);
}


/* ------------------------------------------------------------------ */
/* Claim intents: one slot per writer thread and ring.                */

#define TLS_INTENTS 4

/*
 * A thread caches its intent slot per ring. A cached slot points into a
 * mapping that bring_free() may unmap while the thread lives on, so an
 * entry is identified by the ring's open id (never reused), and a slot is
 * touched outside the owning ring's calls only while that ring is known
 * to be open: the open ids of live file rings are kept in a registry.
 */
struct tls_intent {
	uint64_t open_id;
	struct bring_intent *in;
};

/*
 * initial-exec: the slot is looked up on every claim, and the default
 * model would make each lookup a call to __tls_get_addr().
 */
static __thread struct tls_intent tls_intents[TLS_INTENTS]
	__attribute__((tls_model("initial-exec")));
static pthread_key_t intent_key;
static pthread_once_t intent_once = PTHREAD_ONCE_INIT;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
/* Live file rings by open id; id 0: a free entry. */
static struct registry_entry {
	uint64_t id;
	struct bring *r;
} registry[256];
static uint64_t next_open_id = 1;

#define REGISTRY_SIZE (sizeof(registry) / sizeof(registry[0]))

/* Under registry_lock: the live ring with open id @id, or NULL. */
static struct bring *registry_find(uint64_t id)
{
	size_t i;

	for (i = 0; i < REGISTRY_SIZE; i++)
		if (id && registry[i].id == id)
			return registry[i].r;
	return NULL;
}

/* A new open id for @r, registered as live (0 if the registry is full). */
static void registry_add(struct bring *r)
{
	size_t i;

	pthread_mutex_lock(&registry_lock);
	for (i = 0; i < REGISTRY_SIZE; i++) {
		if (!registry[i].id) {
			r->open_id = registry[i].id = next_open_id++;
			registry[i].r = r;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
}

static void registry_del(struct bring *r)
{
	size_t i;

	pthread_mutex_lock(&registry_lock);
	for (i = 0; i < REGISTRY_SIZE; i++)
		if (registry[i].id && registry[i].id == r->open_id)
			registry[i] = (struct registry_entry){ 0 };
	pthread_mutex_unlock(&registry_lock);
}

/*
 * Writer liveness (Documentation/file-format.rst, "Writer liveness").
 * A thread that owns intent slot i holds an OFD write lock on byte
 * INTENT_LOCK_BASE + i of the file, through a descriptor of its own
 * (r->lock_fd, a second open file description) for as long as it owns
 * the slot. The kernel drops the lock when the process dies, whatever
 * PID namespace it runs in, and no later process can inherit it, so "is
 * the lock held?" (F_OFD_GETLK through r->fd, which never holds one)
 * answers "does the claim's writer live?" where PIDs cannot: across PID
 * namespaces and after PID reuse. A BUSY record names its writer by slot
 * and generation (file_busy_mark()); the generation moves each time the
 * slot changes owner, so a record of a dead owner is never taken for
 * the new owner's.
 */
#define INTENT_LOCK_BASE 4096 /* bytes 0..4095: byte 0 is the open mutex */
#define MARK_SLOT_BITS 6 /* BRING_INTENTS == 64 */
#define MARK_GEN_MASK ((1U << (32 - MARK_SLOT_BITS)) - 1)

_Static_assert(BRING_INTENTS == 1 << MARK_SLOT_BITS,
	       "a busy mark holds a slot index");

static int slot_lock(int fd, short type, int cmd, unsigned int slot,
		     struct flock *fl)
{
	*fl = (struct flock){ .l_type = type, .l_whence = SEEK_SET,
			      .l_start = INTENT_LOCK_BASE + slot, .l_len = 1 };
	return fcntl(fd, cmd, fl);
}

/* Does a live process hold intent slot @slot's lock? */
static bool slot_alive(struct bring *r, unsigned int slot)
{
	struct flock fl;

	/* Cannot tell: count it alive, a claim is never taken from one. */
	if (slot_lock(r->fd, F_WRLCK, F_OFD_GETLK, slot, &fl) < 0)
		return true;
	return fl.l_type != F_UNLCK;
}

/* This process's lock descriptor for @r: a second open file description. */
static int lock_fd(struct bring *r)
{
	char proc[64];
	int fd = load_acquire(&r->lock_fd), old = -1;

	if (fd >= 0)
		return fd;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", r->fd);
	fd = open(proc, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Another thread of ours may have opened one meanwhile: use it. */
	if (!__atomic_compare_exchange_n(&r->lock_fd, &old, fd, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		close(fd);
		fd = old;
	}
	return fd;
}

/*
 * Owner liveness of named readers and writers. A process that opens one
 * in a file ring takes an OFD write lock on a byte of the slot's own
 * (through r->lock_fd, as for intent slots) and sets the slot's
 * "locked"; the lock goes when it closes the handle or dies. The pid in
 * the slot cannot say as much: a bringcat restarted in a container gets
 * the pid its killed predecessor had, and a reused pid may belong to
 * anyone, so a slot of a dead owner looked held (-EBUSY) for as long as
 * that pid lived. A slot without "locked" was taken by a library before
 * 0.5 (or by a memory ring's process): its pid is all there is.
 */
#define READER_LOCK_BASE (INTENT_LOCK_BASE + BRING_INTENTS)
#define WRITER_LOCK_BASE (READER_LOCK_BASE + BRING_SLOTS)

static off_t owner_byte(enum owner_kind k, unsigned int slot)
{
	return (k == OWNER_READER ? READER_LOCK_BASE : WRITER_LOCK_BASE) +
	       (off_t)slot;
}

static uint32_t *owner_locked(const struct bring *r, enum owner_kind k,
			      unsigned int slot)
{
	return k == OWNER_READER ? &r->hdr->slots[slot].locked :
				   &r->hdr->wslots[slot].locked;
}

static int32_t owner_pid(const struct bring *r, enum owner_kind k,
			 unsigned int slot)
{
	return k == OWNER_READER ? r->hdr->slots[slot].owner :
				   r->hdr->wslots[slot].owner;
}

static int byte_lock(int fd, short type, int cmd, off_t at, struct flock *fl)
{
	*fl = (struct flock){ .l_type = type, .l_whence = SEEK_SET,
			      .l_start = at, .l_len = 1 };
	return fcntl(fd, cmd, fl);
}

/* Does a live process hold the slot? Exact under the ring lock. */
bool slot_owner_alive(const struct bring *r, enum owner_kind k,
		      unsigned int slot)
{
	struct flock fl;

	if (!r->file || !*owner_locked(r, k, slot))
		return mark_pid_alive(owner_pid(r, k, slot));
	/* Through r->fd, which holds no lock: any holder conflicts. */
	if (byte_lock(r->fd, F_WRLCK, F_OFD_GETLK, owner_byte(k, slot), &fl) < 0)
		return true; /* cannot tell: never take a live one's slot */
	return fl.l_type != F_UNLCK;
}

/*
 * Take the slot's lock for this handle, the slot found free or dead;
 * -EBUSY if a holder appeared (a library before 0.5 took it meanwhile
 * cannot, it takes the ring lock too). Memory rings: nothing to take.
 */
int slot_owner_take(struct bring *r, enum owner_kind k, unsigned int slot)
{
	struct flock fl;
	int fd;

	if (!r->file)
		return 0;
	fd = lock_fd(r);
	if (fd < 0)
		return fd;
	if (byte_lock(fd, F_WRLCK, F_OFD_SETLK, owner_byte(k, slot), &fl) < 0)
		return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
	store_relaxed(owner_locked(r, k, slot), 1);
	return 0;
}

void slot_owner_release(struct bring *r, enum owner_kind k, unsigned int slot)
{
	int fd = load_acquire(&r->lock_fd);
	struct flock fl;

	if (!r->file)
		return;
	store_relaxed(owner_locked(r, k, slot), 0);
	if (fd >= 0)
		byte_lock(fd, F_UNLCK, F_OFD_SETLK, owner_byte(k, slot), &fl);
}

/*
 * In a fork child: the lock descriptors are the parent's open file
 * descriptions, and would keep its slots' locks alive after it died;
 * the forking thread's cached slots are the parent thread's. Drop both:
 * the child takes slots of its own when it writes.
 */
static void intent_fork_child(void)
{
	size_t i;

	/* intent_fork_prepare() took the lock in the forking thread: ours. */
	for (i = 0; i < REGISTRY_SIZE; i++) {
		struct bring *r = registry[i].r;

		if (registry[i].id && r->lock_fd >= 0) {
			close(r->lock_fd);
			r->lock_fd = -1;
			r->own_slots = 0;
			r->orphan_slots = 0;
		}
	}
	for (i = 0; i < TLS_INTENTS; i++)
		tls_intents[i] = (struct tls_intent){ 0 };
	pthread_mutex_unlock(&registry_lock);
}

static void intent_fork_prepare(void)
{
	pthread_mutex_lock(&registry_lock);
}

static void intent_fork_parent(void)
{
	pthread_mutex_unlock(&registry_lock);
}

__attribute__((constructor)) static void intent_fork_init(void)
{
	pthread_atfork(intent_fork_prepare, intent_fork_parent,
		       intent_fork_child);
}

/* Under registry_lock: unlock slot @slot, then let our threads take it. */
static void slot_give_back(struct bring *r, unsigned int slot)
{
	int fd = load_acquire(&r->lock_fd);
	struct flock fl;

	store_release(&r->hdr->intents[slot].tid, 0);
	if (fd >= 0)
		slot_lock(fd, F_UNLCK, F_OFD_SETLK, slot, &fl);
	__atomic_fetch_and(&r->own_slots, ~(1ULL << slot), __ATOMIC_SEQ_CST);
}

/*
 * Reservations open through a slot (bring_reserve() until its commit or
 * abort, in any thread). The slot's lock is what says that the writer of
 * a BUSY record naming the slot lives: given back while a reservation
 * is open, a stuck reader would take the live reservation for a dead
 * writer's and discard it, and its commit would fail. So a thread that
 * gives its slot up (its cache of slots is full, it exits) with
 * reservations open leaves it *orphaned*: lock and own_slots bit kept,
 * until the commit or abort of the last one gives it back.
 */
void file_resv_open(struct bring *r, uint64_t pos)
{
	uint32_t mark = word_crc(load_relaxed(&rec_at(r, pos)->word));
	uint32_t *opened = &r->slot_resv[mark & (BRING_INTENTS - 1)].opened;

	/*
	 * The mark names our own slot: only its owner thread counts opens,
	 * so no locked instruction. A thread that commits the reservation
	 * got it from us, after this store.
	 */
	store_relaxed(opened, load_relaxed(opened) + 1);
}

/*
 * Dekker pair with file_resv_close(), seq_cst: we (the owner) set the
 * orphan bit, then look at the closes; a closer counts its close, then
 * looks at the bit. Either we see every reservation closed, or the
 * closer sees the bit (and with it all our opens, made before); whoever
 * clears the bit (fetch_and) gives the slot back, once. True: orphaned,
 * not to be given back now.
 */
static bool slot_orphan(struct bring *r, unsigned int slot)
{
	uint32_t opened = load_relaxed(&r->slot_resv[slot].opened);
	uint64_t bit = 1ULL << slot;

	if (opened == __atomic_load_n(&r->slot_resv[slot].closed,
				      __ATOMIC_SEQ_CST))
		return false;
	fetch_or(&r->orphan_slots, bit);
	if (opened != __atomic_load_n(&r->slot_resv[slot].closed,
				      __ATOMIC_SEQ_CST))
		return true;
	return !(__atomic_fetch_and(&r->orphan_slots, ~bit, __ATOMIC_SEQ_CST) &
		 bit);
}

/* A reservation whose BUSY @mark named its slot was committed or aborted. */
void file_resv_close(struct bring *r, uint32_t mark)
{
	unsigned int slot = mark & (BRING_INTENTS - 1);
	uint32_t closed = fetch_add(&r->slot_resv[slot].closed, 1) + 1;
	uint64_t bit = 1ULL << slot;

	/* Pairs with slot_orphan(): close counted, then the bit looked at. */
	if ((__atomic_load_n(&r->orphan_slots, __ATOMIC_SEQ_CST) & bit) &&
	    load_relaxed(&r->slot_resv[slot].opened) == closed &&
	    (__atomic_fetch_and(&r->orphan_slots, ~bit, __ATOMIC_SEQ_CST) &
	     bit)) {
		pthread_mutex_lock(&registry_lock);
		slot_give_back(r, slot);
		pthread_mutex_unlock(&registry_lock);
	}
}

/* Give back one cached slot, if its ring is still open. */
static void intent_release(struct tls_intent *t)
{
	struct bring *r;

	pthread_mutex_lock(&registry_lock);
	r = registry_find(t->open_id);
	if (t->in && r && !(load_relaxed(&t->in->pos) & INTENT_VALID)) {
		unsigned int slot = (unsigned int)(t->in - r->hdr->intents);

		if (!slot_orphan(r, slot))
			slot_give_back(r, slot);
	}
	pthread_mutex_unlock(&registry_lock);
	t->in = NULL;
	t->open_id = 0;
}

/* At thread exit: give the thread's intent slots back. */
static void intent_release_all(void *unused)
{
	int i;

	for (i = 0; i < TLS_INTENTS; i++)
		intent_release(&tls_intents[i]);
}

static void intent_key_init(void)
{
	pthread_key_create(&intent_key, intent_release_all);
}

/*
 * May this slot be taken, now that we hold its lock (so its owner, if
 * any, is dead or gone)? Unless a dead claim in it still waits for a
 * repair: one that every cursor has passed, to its end, was repaired or
 * passed. Its start is not enough: a claim of several records whose
 * writer died tagging their headers is repaired in steps (the tagged
 * BUSY records, then the untagged rest from this intent), and readers
 * stand inside it in between.
 */
static bool intent_reclaimable(struct bring *r, struct bring_intent *in)
{
	uint64_t pos = load_relaxed(&in->pos);

	if (!load_acquire(&in->tid) || !(pos & INTENT_VALID))
		return true;
	/*
	 * A lap jump's claim starts before the jump and ends after it, in
	 * the lap where the cursors that passed the start stand.
	 */
	return (pos & ~INTENT_VALID) + load_relaxed(&in->need) <=
	       ring_min_reader_pos(r);
}

/*
 * Try to take slot @i for thread @tid: its bit in own_slots first, then
 * its lock (another open file description holding it means a live
 * owner), then the slot itself.
 */
static bool intent_try(struct bring *r, int fd, unsigned int i, int32_t tid)
{
	struct bring_intent *in = &r->hdr->intents[i];
	struct flock fl;
	int32_t old;

	/*
	 * Our threads share one lock descriptor, and its lock does not
	 * conflict with itself, so among them the bit decides, set
	 * atomically. Two threads that both saw it clear would both get
	 * the lock and both pass the tid compare-exchange, one after the
	 * other, and share the slot. intent_release() clears the bit
	 * only after unlocking, so a new owner's lock is never undone.
	 */
	if (fetch_or(&r->own_slots, 1ULL << i) & (1ULL << i))
		return false;
	if (slot_lock(fd, F_WRLCK, F_OFD_SETLK, i, &fl) < 0)
		goto give_back;
	old = load_relaxed(&in->tid);
	if (!intent_reclaimable(r, in) ||
	    !__atomic_compare_exchange_n(&in->tid, &old, tid, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		goto unlock;
	store_relaxed(&in->pos, 0);
	store_relaxed(&in->pid, self_pid());
	/* A new owner: marks of the old one no longer match. */
	store_release(&in->gen, (load_relaxed(&in->gen) + 1) & MARK_GEN_MASK);
	return true;
unlock:
	slot_lock(fd, F_UNLCK, F_OFD_SETLK, i, &fl);
give_back:
	__atomic_fetch_and(&r->own_slots, ~(1ULL << i), __ATOMIC_SEQ_CST);
	return false;
}

/* Take a free intent slot for the calling thread, or NULL. */
static struct bring_intent *intent_acquire(struct bring *r)
{
	int32_t tid = (int32_t)syscall(SYS_gettid);
	int fd = lock_fd(r);
	unsigned int i;

	if (fd < 0)
		return NULL;
	for (i = 0; i < BRING_INTENTS; i++)
		if (intent_try(r, fd, i, tid))
			return &r->hdr->intents[i];
	return NULL;
}

static struct tls_intent *intent_lookup(struct bring *r)
{
	int i;

	for (i = 0; i < TLS_INTENTS; i++)
		if (tls_intents[i].in && tls_intents[i].open_id == r->open_id)
			return &tls_intents[i];
	return NULL;
}

/*
 * What a BUSY record says about its writer: the intent slot @in that the
 * claiming thread owns (its claim's, from file_intent_slot()) and the
 * slot's generation (see slot_alive()).
 */
uint32_t file_busy_mark(const struct bring *r, struct bring_intent *in)
{
	uint32_t slot = (uint32_t)(in - r->hdr->intents);

	return load_relaxed(&in->gen) << MARK_SLOT_BITS | slot;
}

/* Does the writer a BUSY record's @mark names still run? */
static bool mark_alive(struct bring *r, uint32_t mark)
{
	unsigned int slot = mark & (BRING_INTENTS - 1);
	struct bring_intent *in = &r->hdr->intents[slot];

	/* The slot changed owner since: its writer is gone. */
	if (load_acquire(&in->gen) != mark >> MARK_SLOT_BITS)
		return false;
	return slot_alive(r, slot);
}

/* This thread's intent slot in @r, taken on first use. */
struct bring_intent *file_intent_slot(struct bring *r)
{
	struct tls_intent *t = intent_lookup(r);
	int i;

	if (t)
		return t->in;
	if (!r->open_id)
		return NULL;
	pthread_once(&intent_once, intent_key_init);
	pthread_setspecific(intent_key, tls_intents);
	for (i = 0; i < TLS_INTENTS && tls_intents[i].in; i++)
		;
	if (i == TLS_INTENTS) {
		/* Give back the oldest cached ring's slot. */
		intent_release(&tls_intents[0]);
		i = 0;
	}
	tls_intents[i].in = intent_acquire(r);
	if (!tls_intents[i].in)
		return NULL;
	tls_intents[i].open_id = r->open_id;
	return tls_intents[i].in;
}

/* ------------------------------------------------------------------ */
/* Crash repair at run time.                                          */

static void discard_range(struct bring *r, uint64_t pos, uint64_t bytes)
{
	struct bring_rec *rec = rec_at(r, pos);

	uint32_t lf = (uint32_t)(bytes - REC_HDR_SIZE) | REC_DISCARD;

	store_relaxed(&rec->word, rec_word(lf, rec_crc(pos ^ r->key, lf,
							NULL, 0)));
	/* Pairs with the acquire load of the tag in reader_collect(). */
	store_release(&rec->tag, pos ^ r->key);
}

/*
 * Does a claim start at @end (claim_pick_end())? Head (as loaded before
 * the intents' scan), the published jump, a valid intent starting
 * there, or a tagged header. The tag is looked at after the intents: a
 * claim there whose writer tagged it and cleared its intent since is
 * seen tagged (the acquire load that saw the clear made the tag
 * visible).
 */
struct boundary_look {
	struct bring *r;
	uint64_t head;
};

static bool claim_boundary(const void *arg, uint64_t end)
{
	const struct boundary_look *b = arg;
	struct bring *r = b->r;
	int i;

	/* Acquire: pairs with the release CAS in publish_escape(). */
	if (end == b->head || end == ring_jump_from(r) ||
	    end == load_acquire(&r->hdr->escape_from))
		return true;
	for (i = 0; i < BRING_INTENTS; i++)
		if (load_acquire(&r->hdr->intents[i].pos) == (end | INTENT_VALID))
			return true;
	/* Pairs with the release store of the tag (put_busy_header()). */
	return tag_matches(load_acquire(&rec_at(r, end)->tag), end, r->key);
}

/*
 * The claim in flight holding @pos, if its writer died: its end (see
 * struct claim_pick for which covering intent that is). @head: loaded
 * (acquire) before, so every claim below it has its intent visible.
 */
static uint64_t dead_claim_end(struct bring *r, uint64_t pos, uint64_t head,
			       bool *alive)
{
	struct claim_pick pick = { .pos = pos };
	struct boundary_look look = { r, head };
	int i;

	*alive = false;
	for (i = 0; i < BRING_INTENTS; i++) {
		struct bring_intent *in = &r->hdr->intents[i];
		uint64_t start = load_acquire(&in->pos);
		uint64_t need = load_relaxed(&in->need);

		if (!(start & INTENT_VALID))
			continue;
		start &= ~INTENT_VALID;
		if (pos < start || pos >= start + need)
			continue;
		/*
		 * A live one matters only if it may be the claim's: one
		 * that starts before another covering intent's start is
		 * not (a stopped writer's, with an old head value, would
		 * hold the repair up for as long as it is stopped).
		 */
		claim_pick_offer(&pick, start, start + need,
				 slot_alive(r, (unsigned int)i));
	}
	*alive = pick.alive;
	return claim_pick_end(&pick, claim_boundary, &look);
}

/*
 * The record at @pos is tagged: if BUSY and its writer dead, make it
 * DISCARD. Returns -1 when its writer lives, 1 when it was repaired
 * here, 0 when there is nothing to wait for (committed, or repaired by
 * another).
 */
static int repair_busy(struct bring *r, uint64_t pos)
{
	struct bring_rec *rec = rec_at(r, pos);
	uint64_t word, tag;
	uint32_t lf;
	bool ok;

	/*
	 * One load gives the BUSY bit and, while BUSY, the writer's mark:
	 * a checksum stored by a racing commit is never taken for a mark.
	 */
	word = load_acquire(&rec->word);
	lf = word_lf(word);
	if (!(lf & REC_BUSY))
		return 0;
	if (mark_alive(r, word_crc(word)))
		return -1;
	/*
	 * Its writer died between claim and commit: skip it, length and
	 * checksum in one CAS. A repairer dying before the CAS leaves a
	 * BUSY record, which recovery drops all the same. The whole
	 * reservation is skipped: with the slack bit (a short commit's 8
	 * spare bytes, set before the commit that never came) the DISCARD
	 * record's length is 8 less, and the bit, counted by
	 * rec_footprint(), makes up for it. The tag is never stored to: a
	 * repair that runs late (its caller not standing at the record, so
	 * not holding its bytes: a named writer's takeover) would clear the
	 * bit of the next lap's record there; the CAS below fails instead.
	 */
	tag = load_relaxed(&rec->tag);
	/*
	 * Counted from the footprint, not the length: a reservation of 1
	 * to 7 bytes committed with none has its slack too, and its length
	 * less 8 would be below zero.
	 */
	if (tag & TAG_SLACK8)
		lf = (uint32_t)(rec_footprint_len(lf & REC_LEN_MASK) -
				REC_HDR_SIZE - 8);
	lf = (lf & REC_LEN_MASK) | REC_DISCARD;
	/*
	 * A named writer's mark staged for this record is revoked first,
	 * under the lock that serialises repairers (see lib/mark.c): a
	 * record is never skipped while a mark still names it.
	 */
	ring_lock(r);
	/*
	 * Still the record at @pos, and still BUSY: nobody passes it then,
	 * and nobody else repairs it while we hold the lock. The tag is
	 * looked at again after the word: a caller standing at no cursor
	 * (file_repair_busy()) may have been stopped between its look at
	 * the tag and ours at the word, while the record was repaired, the
	 * ring made a full lap and another dead writer's BUSY record took
	 * its bytes; the word alone would not tell, and marks would be
	 * revoked at @pos instead of a lap later.
	 */
	ok = load_acquire(&rec->word) == word &&
	     tag_matches(load_relaxed(&rec->tag), pos, r->key);
	if (ok)
		mark_revoke_dead(r, pos);
	/* Release: pairs with the acquire load of the word by readers. */
	ok = ok && __atomic_compare_exchange_n(
			   &rec->word, &word,
			   rec_word(lf, rec_crc(tag, lf, NULL, 0)), false,
			   __ATOMIC_RELEASE, __ATOMIC_RELAXED);
	ring_unlock(r);
	return ok;
}

static void repaired_wake_readers(struct bring *r)
{
	if (evc_sleepers(&r->hdr->data_seq))
		ring_signal(r, &r->hdr->data_seq);
}

/*
 * Is the claim ending at @end, which covers the reader's cursor @pos,
 * an escape from the published lap jump @j that was never published?
 * An escape claims from head, past the jump's end, to beyond jump_from
 * plus the capacity (escape_start()); its writer died between its CAS
 * and its store. While a cursor is before the jump, no other claim of
 * that lap reaches that far: the claims stay behind that cursor's
 * physical position. Once none is, a dead writer's claim across
 * jump_from plus the capacity (a normal claim, or a lap jump from
 * inside the lap) is taken for an escape too, harmlessly: the readers
 * at @pos go on at jump_from plus the capacity, inside the same dead
 * claim, whose rest is then discarded from there
 * (a_dead_lap_jump_from_inside_the_lap_is_repaired in lap_test); the
 * escape's skipped bytes are the dead claim's, and writers count a
 * published escape only for a cursor before the jump, of which there
 * is none.
 */
static bool dead_escape(struct bring *r, const struct ring_jumps *j,
			uint64_t pos, uint64_t end)
{
	return j->from && !j->esc && pos > jump_to(r, j->from) &&
	       pos < escape_to(r, j) && end > escape_to(r, j);
}

/*
 * Publish a dead escaper's escape from @pos for it: readers at @pos go
 * on at jump_from plus the capacity, where its records (BUSY, or never
 * written) are repaired as any dead writer's. A DISCARD record at @pos
 * is no repair: its header may lie on the stopped reader's record, a
 * capacity back. The CAS to the maximum is publish_escape()'s; the
 * escaper is dead and stores nothing more. Release: pairs with the
 * acquire in ring_jumps_load().
 */
static void publish_dead_escape(struct bring *r, uint64_t pos)
{
	store_max_release(&r->hdr->escape_from, pos);
	/* Writers in the trap have the skipped range now (as there). */
	ring_wake_writers(r);
}

/*
 * A lap jump must wait for an escape that is claimed and not published
 * yet (Documentation/ring.rst, "Escape jumps"): a memory ring counts its
 * escapers, a file ring looks at their intents, which a dead escaper
 * leaves behind until the repair published its escape. @j: the jumps as
 * the caller loaded them, after an acquire load of head that made the
 * intent of the claim behind that head visible. An escaper's intent
 * starts past the jump's end and covers jump_from plus the capacity.
 * Its intent is cleared only after the escape is stored, so an intent
 * found cleared here (acquire) means the store is visible: the jumps
 * loaded again say so. The same for a pos paired with the need of the
 * slot's next intent: the need is stored (release) after the clear, so
 * acquiring it makes the store visible too. A dead owner's intent with
 * a record tagged at its start lost its CAS (someone else claimed
 * there): it blocks nothing. A live normal claim across jump_from plus
 * the capacity (possible once no cursor is before the jump) holds the
 * jump up for as long as it is in flight, no longer.
 */
bool file_escape_unpublished(struct bring *r, const struct ring_jumps *j)
{
	uint64_t s = jump_to(r, j->from), to = escape_to(r, j);
	struct ring_jumps now;
	bool found = false;
	unsigned int i;

	if (!j->from || j->esc)
		return false;
	for (i = 0; i < BRING_INTENTS && !found; i++) {
		struct bring_intent *in = &r->hdr->intents[i];
		uint64_t start = load_acquire(&in->pos);

		if (!(start & INTENT_VALID))
			continue;
		start &= ~INTENT_VALID;
		/* Acquire: see above. */
		if (start <= s || start >= to ||
		    start + load_acquire(&in->need) <= to)
			continue;
		/* Pairs with the release store of the tag. */
		found = slot_alive(r, i) ||
			!tag_matches(load_acquire(&rec_at(r, start)->tag),
				     start, r->key);
	}
	ring_jumps_load(r, &now);
	return found || now.from != j->from || now.esc != j->esc;
}

/* Selftests: hold a takeover's repair here (a stopped process). */
int bring__stall_repair_busy;
int bring__repair_busy_stalled;

/*
 * For a named writer's takeover, which stands at no cursor: the BUSY
 * record of its dead holder at @pos, if it is still there. Never a
 * hole: by the time we look, readers may have repaired and passed the
 * record and writers reused its bytes, which no reader then holds; a
 * stale dead intent covering @pos would have a DISCARD header written
 * over the next lap's record.
 */
void file_repair_busy(struct bring *r, uint64_t pos)
{
	/* Pairs with the release store of the tag (put_busy_header()). */
	if (!tag_matches(load_acquire(&rec_at(r, pos)->tag), pos, r->key))
		return;
	ring_test_stall(&bring__stall_repair_busy, &bring__repair_busy_stalled);
	if (repair_busy(r, pos) > 0)
		repaired_wake_readers(r);
}

/*
 * A reader stuck at @pos, its own cursor: the bytes there are not reused
 * while it stands there.
 */
bool file_repair_stuck(struct bring *r, uint64_t pos)
{
	struct bring_rec *rec = rec_at(r, pos);
	struct ring_jumps j;
	uint64_t end, head;
	bool alive;
	int ret;

	/*
	 * Only claimed bytes are repaired: nobody may write a header where
	 * a writer is about to claim. Acquire: pairs with the claim's
	 * release CAS, so the claim's intent, stored before it, is visible
	 * to dead_claim_end().
	 */
	head = head_pos(load_acquire(&r->hdr->head));
	if (pos >= head)
		return false;
	if (tag_matches(load_acquire(&rec->tag), pos, r->key)) {
		ret = repair_busy(r, pos);
		if (ret <= 0)
			return !ret;
	} else {
		end = dead_claim_end(r, pos, head, &alive);
		if (!end) /* none, or a live one */
			return false;
		/*
		 * A lap jump starts here: the reader jumps, nothing is to
		 * be repaired, and a header written at pos could land on a
		 * record of the next lap (writers count a cursor here as
		 * being at the jump's end). Loaded after the writer was
		 * found dead: a dead jumper publishes nothing any more.
		 */
		ring_jumps_load(r, &j);
		if (jump_cursor(r, &j, pos) != pos)
			return true;
		/*
		 * The claim's owner may have tagged its header and cleared
		 * its intent between our tag load and the scan; a dead
		 * intent that merely covered the same bytes (its CAS lost,
		 * or never made) then looks like the claim's. The scan's
		 * acquire loads saw that clear, so the tag it follows is
		 * visible now: look again. A tag still not there belongs
		 * to a claim whose own intent the scan saw (the head load
		 * above made it visible) and found dead.
		 */
		if (tag_matches(load_acquire(&rec->tag), pos, r->key))
			return true;
		if (dead_escape(r, &j, pos, end))
			publish_dead_escape(r, pos);
		else /* Claimed, never tagged: the writer died in between. */
			discard_range(r, pos, end - pos);
	}
	repaired_wake_readers(r);
	return true;
}

/* ------------------------------------------------------------------ */
/* Cursors.                                                           */

/* The reader's mark goes with every cursor update (lib/mark.c). */
void file_save_cursor(struct bring_slot *sl, uint64_t pos)
{
	const struct bring_cursor *c = cursor_latest(sl->saved);

	cursor_store(sl->saved, pos, c ? c->mark : NULL, c ? c->mark_len : 0);
}

/* The newest valid saved cursor, or -EBADMSG. */
int file_load_cursor(const struct bring_slot *sl, uint64_t *pos)
{
	const struct bring_cursor *best = cursor_newest(sl->saved);

	if (!best)
		return -EBADMSG;
	*pos = best->pos;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Flushing: group commit and the interval flusher.                   */

static void flush_lock(struct bring_hdr *h)
{
	/* A flusher that died mid-flush left nothing half done. */
	if (pthread_mutex_lock(&h->flush_lock) == EOWNERDEAD)
		pthread_mutex_consistent(&h->flush_lock);
}

/*
 * Flush everything committed so far: a flush of generation g covers every
 * record committed before g was taken. fdatasync() covers the header
 * pages and the data together; recovery never trusts a cursor beyond
 * valid data. A failure is never retried: the ring is poisoned for good,
 * since the kernel may have dropped the dirty pages it could not write.
 * Called with flush_lock held; flush_unlock() wakes the writers waiting.
 */
static int flush_locked(struct bring *r)
{
	struct bring_hdr *h = r->hdr;
	uint64_t gen, head, asked, t0;
	int err = 0;

	if (load_relaxed(&h->poisoned))
		return -EIO;
	/*
	 * Full barrier (seq_cst RMW): the generation is taken before we
	 * read head, and a writer that read the old generation committed
	 * before this flush may start (see file_wait_durable()).
	 */
	gen = fetch_add(&h->flush_started, 1) + 1;
	head = load_acquire(&h->head) & ~HEAD_CLOSED;
	asked = load_relaxed(&h->sync_asked);
	store_relaxed(&h->sync_batch,
		      (uint32_t)(asked - load_relaxed(&h->sync_taken)));
	store_relaxed(&h->sync_taken, asked);
	t0 = bring_now_ns();
	if (load_relaxed(&bring__fault_flush) || fdatasync(r->fd) < 0)
		err = load_relaxed(&bring__fault_flush) ? EIO : errno;
	store_relaxed(&h->flush_ns, bring_now_ns() - t0);
	add_relaxed(&h->flushes, 1);
	if (err) {
		store_release(&h->poisoned, err);
		file_printf("bring: %s: flush failed (%s): ring poisoned\n",
			    r->name, strerror(err));
	} else {
		store_relaxed(&h->durable_pos, head);
		/* Pairs with the acquire loads in file_wait_durable(). */
		store_release(&h->flush_done, gen);
	}
	return err ? -EIO : 0;
}

/*
 * Drop the flush lock, then wake the writers waiting on flush_seq: those
 * the flush covered, and those that found the lock taken and need the
 * next flush. Waking before the unlock would lose the second kind: one
 * that woke (or registered) then would find the lock still held, sleep
 * again and wait for its poll timeout. Dekker pairing with the sleeper's
 * "register on flush_seq, then trylock": the unlock comes before the
 * fence in evc_sleepers(), so either we see the sleeper or its trylock
 * sees the lock free.
 */
static void flush_unlock(struct bring *r)
{
	struct bring_hdr *h = r->hdr;

	pthread_mutex_unlock(&h->flush_lock);
	if (evc_sleepers(&h->flush_seq) && evc_signal(&h->flush_seq))
		add_relaxed(&h->futex_wakes, 1);
}



#define BATCH_WAIT_MAX_NS 1000000ULL /* 1 ms */

/* Have as many commits asked for a flush as the last flush took? */
static bool batch_complete(struct bring_hdr *h)
{
	return load_relaxed(&h->sync_asked) - load_relaxed(&h->sync_taken) >=
	       load_relaxed(&h->sync_batch);
}

/*
 * The flusher's pause before a flush. Each writer has one message in
 * flight, so the writers a flush covered are pushing their next message
 * right now; a flush started at once would cover the few that are quick
 * and leave the rest to the flush after. So wait, on batch_seq, until as
 * many commits wait as the last flush took, or half the last flush's
 * duration (at most 1 ms) has passed. A writer that stopped pushing
 * costs one such pause: the next batch is smaller and so is the next
 * wait. With one writer the batch is complete at once.
 */
static void wait_for_batch(struct bring *r)
{
	struct bring_hdr *h = r->hdr;
	struct evc_ticket ticket = { 0 };
	struct bring_deadline dl;
	uint64_t ns = load_relaxed(&h->flush_ns) / 2;
	int err;

	if (batch_complete(h))
		return;
	bring_deadline_init_ns(&dl, ns < BATCH_WAIT_MAX_NS ? ns :
							    BATCH_WAIT_MAX_NS);
	for (;;) {
		/* Fences: registered before we count again. */
		evc_prepare(&h->batch_seq, &ticket);
		if (batch_complete(h))
			break;
		err = evc_wait(&h->batch_seq, &ticket, &dl);
		/* Woken, or the word moved: count again. Else give up. */
		if (err && err != -EINTR && err != -EAGAIN)
			break;
	}
	evc_cancel(&h->batch_seq, &ticket);
}

/* Become the flusher if nobody is; -EBUSY if somebody is. */
static int try_flush(struct bring *r, uint64_t gen)
{
	struct bring_hdr *h = r->hdr;
	int err = pthread_mutex_trylock(&h->flush_lock);

	if (err == EBUSY)
		return -EBUSY;
	/* A flusher that died mid-flush left nothing half done. */
	if (err == EOWNERDEAD)
		pthread_mutex_consistent(&h->flush_lock);
	err = 0;
	if (load_acquire(&h->flush_done) <= gen) {
		wait_for_batch(r);
		err = flush_locked(r);
	}
	flush_unlock(r);
	return err;
}

/* A commit asks for a flush; the one that completes a batch says so. */
static void ask_for_flush(struct bring_hdr *h)
{
	/*
	 * A full barrier (seq_cst RMW): our record is written before we
	 * read the flush generation, and before a flusher waiting for the
	 * batch can see us counted.
	 */
	fetch_add(&h->sync_asked, 1);
	/* evc_sleepers() fences: counted before we look for the flusher. */
	if (evc_sleepers(&h->batch_seq) && batch_complete(h))
		evc_signal(&h->batch_seq);
}

#define FLUSHER_CHECK_MS 100

/*
 * After a poll timeout on flush_seq: should a wake-up have come? Yes if
 * our record was covered meanwhile, or if nobody holds the flush lock:
 * then nobody was flushing who could have woken us. A flusher that died
 * is no missed wake-up (its lock is made consistent for the next one).
 */
static bool missed_wake(struct bring_hdr *h, uint64_t gen)
{
	int err;

	if (load_acquire(&h->flush_done) > gen)
		return true;
	err = pthread_mutex_trylock(&h->flush_lock);
	if (err == EBUSY)
		return false;
	if (err == EOWNERDEAD)
		pthread_mutex_consistent(&h->flush_lock);
	pthread_mutex_unlock(&h->flush_lock);
	return err == 0;
}

/*
 * BRING_DURABLE_ALWAYS: return once the caller's committed record is on
 * stable storage, i.e. once a flush that began after the commit has
 * completed. Group commit: one writer flushes, the others sleep on
 * flush_seq and all wake when it completes; those it covered return, and
 * one of the rest becomes the next flusher, which first lets the batch
 * fill (wait_for_batch()). A sleeper re-checks every FLUSHER_CHECK_MS so
 * that a flusher that died holding the (robust) lock is taken over.
 */
static int wait_durable(struct bring *r)
{
	struct bring_hdr *h = r->hdr;
	struct evc_ticket ticket = { 0 };
	struct bring_deadline dl;
	uint64_t gen;
	int err;

	ask_for_flush(h);
	gen = load_relaxed(&h->flush_started);
	for (;;) {
		err = file_check_poison(r);
		if (err || load_acquire(&h->flush_done) > gen)
			break;
		err = try_flush(r, gen);
		if (err != -EBUSY)
			continue;
		evc_prepare(&h->flush_seq, &ticket);
		if (load_acquire(&h->flush_done) > gen)
			continue;
		err = try_flush(r, gen);
		if (err != -EBUSY)
			continue;
		bring_deadline_init(&dl, FLUSHER_CHECK_MS);
		ring_count_futex_wait(r);
		if (evc_wait(&h->flush_seq, &ticket, &dl) == -ETIMEDOUT &&
		    missed_wake(h, gen))
			add_relaxed(&bring__flush_missed_wakes, 1);
	}
	evc_cancel(&h->flush_seq, &ticket);
	return err;
}

/* The push waits for its flush, always: traced as a wait (lib/probes.h). */
int file_wait_durable(struct bring *r)
{
	int err;

	BRING_PROBE3(durable_wait_start, r, r->name, 0ULL);
	err = wait_durable(r);
	BRING_PROBE4(durable_wait_end, r, r->name, err, 0ULL);
	return err;
}

static void *flusher_main(void *arg)
{
	struct bring *r = arg;
	struct bring_flusher *f = r->flusher;
	struct bring_deadline dl;
	uint64_t flushed = 0, head;

	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		bring_deadline_init(&dl, (int)r->flush_ms);
		pthread_cond_timedwait(&f->cond, &f->lock, &dl.ts);
		if (f->stop)
			break;
		head = load_acquire(&r->hdr->head) & ~HEAD_CLOSED;
		if (head == flushed || load_relaxed(&r->hdr->poisoned))
			continue;
		pthread_mutex_unlock(&f->lock);
		flush_lock(r->hdr);
		flush_locked(r);
		flush_unlock(r);
		flushed = head;
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

int file_start_flusher(struct bring *r)
{
	struct bring_flusher *f = calloc(1, sizeof(*f));
	pthread_condattr_t attr;
	int err;

	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cond, &attr);
	pthread_condattr_destroy(&attr);
	r->flusher = f;
	err = pthread_create(&f->thread, NULL, flusher_main, r);
	if (err) {
		r->flusher = NULL;
		free(f);
	}
	return -err;
}

static void stop_flusher(struct bring *r)
{
	struct bring_flusher *f = r->flusher;

	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
	r->flusher = NULL;
}

void file_close(struct bring *r)
{
	struct tls_intent *t = intent_lookup(r);

	if (t)
		intent_release(t);
	registry_del(r);
	if (r->lock_fd >= 0)
		close(r->lock_fd); /* drops this process's slot locks */
	r->lock_fd = -1;
	stop_flusher(r);
	/* Data pushed with durability "interval" gets its last flush. */
	if (r->durability == DURABLE_INTERVAL && !file_check_poison(r)) {
		flush_lock(r->hdr);
		flush_locked(r);
		flush_unlock(r);
	}
	if (r->fd >= 0)
		close(r->fd); /* drops our flock */
	r->fd = -1;
}

/* ------------------------------------------------------------------ */
/* Creating and opening.                                              */

/*
 * An open-file-description lock on byte 0 serialises the open protocol
 * between processes; the flock() on the whole file says who has the ring
 * open. The two kinds of lock are independent.
 */
static void unlock_open_mutex(int fd)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET,
			    .l_start = 0, .l_len = 1 };

	fcntl(fd, F_OFD_SETLK, &fl);
}

#define OPEN_LOCK_POLL_MAX_US 50000

/*
 * Take the open mutex, waiting at most bring__open_lock_ms: any process
 * that can read the file can hold a read lock on byte 0 for as long as it
 * likes, and a process that waits forever for it is one more stuck
 * process. OFD locks have no timed wait (F_OFD_SETLKW waits until a
 * signal), so poll, backing off from 1 ms to 50 ms.
 */
static int lock_open_mutex_bounded(int fd, const char *path)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = 0, .l_len = 1 };
	uint64_t t0 = bring_now_ns(), limit;
	useconds_t us = 1000;

	limit = (uint64_t)load_relaxed(&bring__open_lock_ms) * 1000000ULL;
	while (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		if (errno != EAGAIN && errno != EACCES && errno != EINTR)
			return -errno;
		if (bring_now_ns() - t0 >= limit) {
			file_printf("bring: %s: another process has held the "
				    "open lock (byte 0) for %u ms; see "
				    "/proc/locks\n",
				    path, load_relaxed(&bring__open_lock_ms));
			return -ETIMEDOUT;
		}
		usleep(us);
		if (us < OPEN_LOCK_POLL_MAX_US)
			us *= 2;
	}
	return 0;
}

/*
 * Whoever can write the ring file can make its readers refuse records
 * and its writers block (Documentation/security.rst). Unless the caller
 * says it trusts them (BRING_ALLOW_FOREIGN), refuse a file owned by
 * another user, or writable by its group or by others.
 */
static int check_owner(int fd, const char *path, bool allow_foreign)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	/* Not a ring file at all: read_header() says so. */
	if (allow_foreign || !S_ISREG(st.st_mode))
		return 0;
	if (st.st_uid != geteuid()) {
		file_printf("bring: %s: owned by uid %u, not by us (uid %u): "
			    "refused without BRING_ALLOW_FOREIGN\n",
			    path, (unsigned int)st.st_uid,
			    (unsigned int)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		file_printf("bring: %s: writable by %s (mode %04o): refused "
			    "without BRING_ALLOW_FOREIGN\n",
			    path, st.st_mode & S_IWOTH ? "others" : "its group",
			    (unsigned int)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

static int zero_fill(int fd, uint64_t size)
{
	static const char zeros[65536];
	uint64_t off;
	ssize_t n;

	for (off = 0; off < size; off += (uint64_t)n) {
		n = pwrite(fd, zeros,
			   size - off < sizeof(zeros) ? size - off : sizeof(zeros),
			   (off_t)off);
		if (n < 0)
			return -errno;
	}
	return 0;
}

/* Fill a new file at @fd and map it into @r. */
static int init_file(struct bring *r, int fd, const char *name,
		     uint64_t max_msg, unsigned int flags, unsigned int flush_ms)
{
	uint64_t size = BRING_HDR_SIZE + r->capacity;
	struct bring_hdr *h;
	int err;

	/* Preallocate: a full disk fails here, never as SIGBUS later. */
	err = posix_fallocate(fd, 0, (off_t)size);
	if (err)
		return -err;
	/*
	 * A durable ring also writes its blocks once: a first write to a
	 * fallocated (unwritten) block changes the extent tree, which would
	 * make the fdatasync() after it commit the journal every time.
	 */
	if (r->durability != DURABLE_NONE) {
		err = zero_fill(fd, size);
		if (err)
			return err;
	}
	err = ring_map_fd(r, fd, r->capacity);
	if (err)
		return err;
	h = r->hdr;
	ring_init_header(r, name, max_msg, flags);
	h->c.flush_ms = flush_ms;
	h->c_crc = ring_hdr_crc(h);
	if (!(flags & BRING_NO_DEFAULT_READER)) {
		h->slots[0].state = SLOT_ACTIVE;
		file_save_cursor(&h->slots[0], 0);
		h->readers_mask = 1;
	}
	if (r->durability != DURABLE_NONE && fdatasync(fd) < 0)
		return -errno;
	return 0;
}

/* An unnamed file in @path's directory, or a uniquely named one. */
static int tmp_file(const char *path, unsigned int mode, char *tmp,
		    size_t tmp_size)
{
	char dir[PATH_MAX];
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	fd = open(dirname(dir), O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
	if (fd >= 0) {
		tmp[0] = '\0';
		return fd;
	}
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	snprintf(tmp, tmp_size, "%s.%d.tmp", path, (int)self_pid());
	fd = open(tmp, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC,
		  mode);
	return fd < 0 ? -errno : fd;
}

/* Make the finished file visible at @path; -EEXIST if someone won. */
static int publish_file(int fd, const char *tmp, const char *path)
{
	char proc[64];
	int err = 0;

	if (tmp[0]) {
		if (link(tmp, path) < 0)
			err = -errno;
		unlink(tmp);
		return err;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	return 0;
}

static int create_ring(struct bring *r, const char *path,
		       const struct bring_opts *opts, uint64_t max_msg)
{
	unsigned int mode = OPTS_GET(opts, mode, 0) ?: 0600;
	char tmp[PATH_MAX + 32];
	int fd, err;

	fd = tmp_file(path, mode, tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	r->fd = fd;
	if (fchmod(fd, mode) < 0) {
		err = -errno;
		goto err;
	}
	err = init_file(r, fd, r->name, max_msg,
			OPTS_GET(opts, flags, 0) & ~BRING_OPEN_FLAGS,
			OPTS_GET(opts, flush_ms, 0) ?: FLUSH_MS_DEFAULT);
	if (err)
		goto err;
	/* We use it from the moment it is visible. */
	flock(fd, LOCK_SH);
	err = publish_file(fd, tmp, path);
	if (err)
		goto err;
	return 0;
err:
	if (tmp[0])
		unlink(tmp);
	ring_unmap(r);
	close(fd);
	r->fd = -1;
	return err;
}

/*
 * Read and check the header before anything is mapped or changed; the
 * checked constants go to @c. Only this copy is trusted afterwards: the
 * file may change under us.
 */
static int read_header(int fd, const char *path, struct bring_hdr_const *c)
{
	struct bring_hdr *h;
	struct stat st;
	int err;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(*h)) {
		file_printf("bring: %s: not a ring file\n", path);
		return -EINVAL;
	}
	h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (pread(fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h))
		err = -EIO;
	else
		err = file_check_header(h, (uint64_t)st.st_size, path);
	if (!err)
		*c = h->c;
	free(h);
	return err;
}

/*
 * Every open preallocates: a copy of a ring file may be sparse (cp,
 * rsync, a restore), and a hole that cannot be filled on a full disk
 * raises SIGBUS inside a push, not an error. fallocate(2) mode 0 never
 * touches data; glibc's posix_fallocate() emulation writes zeros, which
 * would race with the processes that have the ring open, so where the
 * file system has no fallocate the file is used as it is. The size is
 * checked again afterwards: a file truncated since its header was read
 * would raise SIGBUS in whoever touches the cut pages.
 */
static int preallocate(int fd, uint64_t size, const char *path)
{
	struct stat st;

	if (fallocate(fd, 0, 0, (off_t)size) < 0 && errno != EOPNOTSUPP) {
		int err = -errno;

		file_printf("bring: %s: cannot preallocate %llu bytes: %s\n",
			    path, (unsigned long long)size, strerror(-err));
		return err;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size != size) {
		file_printf("bring: %s: file size changed while opening\n",
			    path);
		return -EINVAL;
	}
	return 0;
}

/*
 * Layout 2 (bring 0.3 to 0.5) is layout 3 but for escapes in file rings,
 * which a process of those libraries would not follow: its readers would
 * stop at an escape's start, and its recovery would cut the records past
 * it off as a torn tail. So the first exclusive open, after recovery,
 * makes the file layout 3, which those libraries refuse, and a file still
 * at layout 2 that others have open is refused here: one of them is such
 * a process. The version and its checksum go in one pwrite(2), within
 * the first sector.
 */
static int upgrade_layout(struct bring *r, const char *path)
{
	struct {
		struct bring_hdr_const c;
		uint32_t c_crc;
	} u;

	_Static_assert(offsetof(struct bring_hdr, c_crc) ==
			       sizeof(struct bring_hdr_const),
		       "the checksum follows the constant header");
	size_t len = offsetofend(struct bring_hdr, c_crc);
	ssize_t n;

	memcpy(&u, r->hdr, len);
	u.c.version = BRING_LAYOUT_VERSION;
	u.c_crc = bring_crc32c(0, &u.c, sizeof(u.c));
	n = pwrite(r->fd, &u, len, 0);
	if (n != (ssize_t)len) {
		int err = n < 0 ? -errno : -EIO;

		file_printf("bring: %s: cannot upgrade layout version %u to "
			    "%u: %s\n",
			    path, BRING_LAYOUT_UPGRADE, BRING_LAYOUT_VERSION,
			    strerror(-err));
		return err;
	}
	return 0;
}

static int refuse_old_sharer(const char *path)
{
	file_printf("bring: %s: layout version %u, open in a process of an "
		    "older bring (0.3 to 0.5): stop it, then open the file "
		    "again (it is then upgraded to version %u)\n",
		    path, BRING_LAYOUT_UPGRADE, BRING_LAYOUT_VERSION);
	return -EBUSY;
}

static int open_ring(struct bring *r, const char *path)
{
	struct bring_hdr_const c = { 0 };
	int fd, err;

	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		/* A directory or a socket is simply not a ring file. */
		if (errno == EISDIR || errno == ENXIO)
			return -EINVAL;
		return -errno;
	}
	r->fd = fd;
	err = check_owner(fd, path, r->allow_foreign);
	if (err)
		goto err;
	err = lock_open_mutex_bounded(fd, path);
	if (err)
		goto err;
	err = read_header(fd, path, &c);
	if (err)
		goto err;
	err = preallocate(fd, BRING_HDR_SIZE + c.capacity, path);
	if (err)
		goto err;
	err = ring_map_fd(r, fd, c.capacity);
	if (err)
		goto err;
	r->key = c.key;
	r->max_msg = c.max_msg;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		/* Nobody else has it open: check everything, repair. */
		err = file_recover(r, path);
		if (!err && c.version == BRING_LAYOUT_UPGRADE)
			err = upgrade_layout(r, path);
		if (err)
			goto err;
	} else if (c.version == BRING_LAYOUT_UPGRADE) {
		err = refuse_old_sharer(path);
		goto err;
	}
	flock(fd, LOCK_SH);
	unlock_open_mutex(fd);
	return 0;
err:
	ring_unmap(r);
	close(fd);
	r->fd = -1;
	return err;
}

/**
 * bring_open() - create or open a ring in a file
 * @path: the file; a symbolic link is refused
 * @capacity: bytes of message space for a new file (rounded up as in
 *            bring_new()); 0: the file must exist
 * @opts: options, or NULL (declare with BRING_OPTS()); name, max_msg,
 *        flags, durability, flush_ms and mode apply when the file is
 *        created; durability, flush_ms, spin_ns and BRING_SKIP_DAMAGED
 *        also apply to this process when it opens an existing file
 *
 * Creates the file (mode 0600 unless @opts->mode, space preallocated) or
 * opens an existing one. The first process to open a file that nobody has
 * open validates it and recovers it after crashes: a torn tail is cut
 * off, records of writers that died are dropped, cursors go back to their
 * last saved place. Any number of processes may have the ring open, with
 * writers and named readers in each. Two processes racing to create the
 * same file both end up with the one ring. A file ring has the same calls
 * and semantics as a memory ring; its default reader (if it was created
 * with one) is attached by the first bring_next() of a process.
 *
 * An existing file owned by another user, or writable by its group or by
 * others, is refused unless @opts->flags has BRING_ALLOW_FOREIGN: whoever
 * can write the file can stall everyone who uses it
 * (Documentation/security.rst). Every open preallocates the file, so a
 * sparse copy fails here with ENOSPC and not with SIGBUS later.
 *
 * Return: the ring, or NULL with errno set: ENOENT (no file and @capacity
 * 0), ELOOP (@path is a symbolic link), EPERM (the file is another user's
 * or writable by group or others, without BRING_ALLOW_FOREIGN),
 * ETIMEDOUT (another process held the open lock for 10 s; the library
 * prints the path), EINVAL (bad arguments or options,
 * or the file is not a ring: bad magic, version, sizes), EBADMSG (the
 * header checksum fails, or damaged records, cursors or slots were found
 * and BRING_SKIP_DAMAGED was not given; the library prints which and at
 * what offset, see bring_set_print()), EBUSY (a file of layout version 2
 * that another process, of an older library, has open; the first open
 * of this library upgrades such a file to version 3), ENOSPC (no room to
 * preallocate),
 * ENAMETOOLONG, EACCES and the other errors of open(2), ENOMEM.
 */
struct bring *bring_open(const char *path, size_t capacity,
			 const struct bring_opts *opts)
{
	struct bring *r = NULL;
	const char *name = NULL;
	uint64_t max_msg = 0;
	int err, tries;

	if (!path || !OPTS_VALID(opts, bring_opts)) {
		err = -EINVAL;
		goto err;
	}
	err = ring_check_opts(capacity ?: BRING_CAPACITY_MAX, opts, &name,
			      &max_msg);
	if (err)
		goto err;
	r = zalloc_aligned(sizeof(*r));
	if (r)
		ring_init_notify(r);
	if (!r) {
		err = -ENOMEM;
		goto err;
	}
	r->fd = -1;
	r->lock_fd = -1;
	r->file = true;
	r->skip_damaged = OPTS_GET(opts, flags, 0) & BRING_SKIP_DAMAGED;
	r->verify_crc = OPTS_GET(opts, flags, 0) & BRING_VERIFY_CRC;
	r->allow_foreign = OPTS_GET(opts, flags, 0) & BRING_ALLOW_FOREIGN;
	r->durability = (uint32_t)OPTS_GET(opts, durability, 0);
	r->spin_ns = ring_spin_ns(opts);
	snprintf(r->name, sizeof(r->name), "%s", name);
	for (tries = 0; tries < 3; tries++) {
		err = open_ring(r, path);
		if (err != -ENOENT || !capacity)
			break;
		r->capacity = ring_round_capacity(capacity);
		r->max_msg = max_msg;
		err = create_ring(r, path, opts, max_msg);
		if (err != -EEXIST)
			break; /* else another process created it first */
	}
	if (err)
		goto err;
	registry_add(r);
	snprintf(r->name, sizeof(r->name), "%s", r->hdr->c.name);
	if (!OPTS_HAS(opts, durability) || !opts->durability)
		r->durability = r->hdr->c.durability;
	r->flush_ms = OPTS_GET(opts, flush_ms, 0) ?: r->hdr->c.flush_ms;
	if (r->flush_ms > INT_MAX)
		r->flush_ms = INT_MAX;
	if (r->durability == DURABLE_INTERVAL) {
		err = file_start_flusher(r);
		if (err)
			goto err;
	}
	return r;
err:
	bring_free(r);
	errno = -err;
	return NULL;
}
