// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * ring.c - ring life cycle, writers, statistics.
 *
 * The wait/wake protocol (Documentation/ring.rst has the full argument):
 *
 *  Writers never take a lock on the data path. A writer claims space by
 *  moving head with a compare-and-swap once the space behind the slowest
 *  reader's cursor allows it, writes a BUSY record header and tags it with
 *  its position, copies the payload, and commits by clearing BUSY with a
 *  release store. Readers load head and record headers with acquire loads
 *  and publish their cursor with a release store.
 *
 *  Sleeping uses two eventcounts (futex.h): data_seq for readers and
 *  space_seq for writers. A sleeper registers, issues a full fence,
 *  re-checks its condition and futex-waits on the value it registered
 *  with. A waker publishes its change, issues a full fence and looks for
 *  sleepers: only when there are some does it move the epoch and call
 *  FUTEX_WAKE. Either the sleeper's re-check sees the change or the waker
 *  sees the sleeper, so no wakeup is lost, and nobody waiting means no
 *  system call.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "internal.h"
#include "crc32c.h"
#include "probes.h"

#if BRING_HAVE_PROBES
BRING_PROBE_SEMAPHORE(write_wait_start);
BRING_PROBE_SEMAPHORE(write_wait_end);
BRING_PROBE_SEMAPHORE(read_wait_start);
BRING_PROBE_SEMAPHORE(read_wait_end);
#endif

#define RESV_TOKEN 0x5245535652455356ULL /* marks a live reservation */

void ring_lock(struct bring *r)
{
	int err = pthread_mutex_lock(&r->hdr->lock);

	/*
	 * The lock is robust because rings are shared between processes. It
	 * guards only slow-path bookkeeping, which a dead holder leaves
	 * consistent: at worst a stale space_want, which costs a spurious
	 * wake-up.
	 */
	if (err == EOWNERDEAD)
		pthread_mutex_consistent(&r->hdr->lock);
}

void ring_unlock(struct bring *r)
{
	pthread_mutex_unlock(&r->hdr->lock);
}

/*
 * The oldest position any reader still needs: a cursor at a published
 * jump's start counts as being at its end (jump_cursor()). The jumps may
 * be loaded before or after the cursors: every value they hold names a
 * jump that was claimed, so either order gives a position no reader has
 * use for the bytes below.
 */
uint64_t ring_min_reader_pos(const struct bring *r)
{
	struct bring_hdr *h = r->hdr;
	/* Pairs with the release stores of readers_mask in reader.c. */
	uint64_t mask = load_acquire(&h->readers_mask);
	uint64_t min = UINT64_MAX, pos;
	struct ring_jumps j;

	ring_jumps_load(r, &j);
	/* Pairs with the release CAS in ring_refresh_tail(). */
	if (!mask)
		return jump_cursor(r, &j, load_acquire(&h->tail_cache));
	while (mask) {
		/* Pairs with the reader's release store in reader_publish(). */
		pos = load_acquire(&h->slots[__builtin_ctzll(mask)].pos);
		pos = jump_cursor(r, &j, pos);
		if (pos < min)
			min = pos;
		mask &= mask - 1;
	}
	return min;
}

/*
 * Re-read the readers' cursors and raise tail_cache to their minimum. It
 * only grows: racing writers may compute different minima, and a smaller
 * one is stale, never wrong, because cursors only move forward.
 */
uint64_t ring_refresh_tail(struct bring *r)
{
	uint64_t *tc = &r->hdr->tail_cache;
	uint64_t tail = ring_min_reader_pos(r);
	/* Acquire: a larger value another writer stored is one we use. */
	uint64_t old = load_acquire(tc);

	/*
	 * Release: a writer that trusts tail_cache (acquire) also sees the
	 * cursor stores that let us compute it; acquire on failure, as for
	 * the load above.
	 */
	while (old < tail && !__atomic_compare_exchange_n(tc, &old, tail, false,
							 __ATOMIC_ACQ_REL,
							 __ATOMIC_ACQUIRE))
		;
	return old > tail ? old : tail;
}

static void count_futex_wake(struct bring *r)
{
	add_relaxed(&r->hdr->futex_wakes, 1);
}

void ring_count_futex_wait(struct bring *r)
{
	add_relaxed(&r->hdr->futex_waits, 1);
}

/*
 * Wake the sleepers of @word: futex sleepers, and event loops that wait
 * on this handle's notify eventfd (they registered on the word like any
 * sleeper, so we only get here when one may be waiting).
 */
void ring_signal(struct bring *r, uint64_t *word)
{
	/* Pairs with the release in bring_notify_fd(): slot, then fd. */
	unsigned int i, n = load_acquire(&r->notify_nr);
	int fd;

	if (evc_signal(word))
		count_futex_wake(r);
	for (i = 0; i < n && i < BRING_NOTIFY_MAX; i++) {
		fd = load_acquire(&r->notify_fds[i]);
		if (fd >= 0)
			eventfd_write(fd, 1);
	}
}

void ring_init_notify(struct bring *r)
{
	int i;

	for (i = 0; i < BRING_NOTIFY_MAX; i++)
		r->notify_fds[i] = -1;
}

/* After commits: wake sleeping readers, if any. */
static void ring_wake_readers(struct bring *r)
{
	/* evc_sleepers() fences: our commits come before its look. */
	if (evc_sleepers(&r->hdr->data_seq))
		ring_signal(r, &r->hdr->data_seq);
}

/*
 * Free bytes at @head, given the cursors' minimum @tail: a capacity
 * behind the tail as ring_room_tail() places it. After an escape, head
 * may be more than a capacity past a cursor still before the lap jump
 * (the escape's claim passed over it): until the escape is published,
 * that is no room, never a wrapped difference. A tail past @head comes
 * with a @head loaded before the jump that put the tail there: the
 * claim's CAS from that @head fails.
 */
static uint64_t ring_room(const struct bring *r, uint64_t head, uint64_t tail)
{
	struct ring_jumps j;

	if (head - tail <= r->capacity)
		return r->capacity - (head - tail);
	ring_jumps_load(r, &j);
	tail = ring_room_tail(r, &j, tail);
	if (tail > head)
		return r->capacity;
	return head - tail < r->capacity ? r->capacity - (head - tail) : 0;
}

static uint64_t escape_start(struct bring *r, uint64_t head, uint64_t need);

/*
 * Lock-free look: could a claim of @need bytes be made now? Room at
 * head, or an escape from a lap jump's trap (escape_start()): a writer
 * asleep in the trap when the jump is published is woken to escape.
 */
static bool claim_visible(struct bring *r, uint64_t need)
{
	uint64_t head = head_pos(load_acquire(&r->hdr->head));

	return ring_room(r, head, ring_min_reader_pos(r)) >= need ||
	       escape_start(r, head, need) != head;
}

/*
 * Wake every sleeping writer and forget their wants: each one that still
 * cannot fit re-asserts its need after it registers again. Under the slow
 * lock, so that a want lowered by a writer registering in the new epoch is
 * never wiped out (see enter_space_wait()). A dead sleeper's want thus
 * costs at most one spurious wake.
 */
static void wake_writers_locked(struct bring *r)
{
	struct bring_hdr *h = r->hdr;

	ring_lock(r);
	store_relaxed(&h->space_want, UINT64_MAX);
	ring_signal(r, &h->space_seq);
	ring_unlock(r);
}

/* After a reader published its cursor: wake writers whose need now fits. */
void ring_wake_writers(struct bring *r)
{
	struct bring_hdr *h = r->hdr;

	/* evc_sleepers() fences: the cursor store comes before its look. */
	if (!evc_sleepers(&h->space_seq))
		return;
	/* evc_sleepers() is an acquire load: it sees the sleepers' want. */
	if (claim_visible(r, load_relaxed(&h->space_want)))
		wake_writers_locked(r);
}

/* Wake every sleeper on both sides: close and reader removal. */
static void ring_wake_all(struct bring *r)
{
	struct bring_hdr *h = r->hdr;

	if (evc_sleepers(&h->data_seq))
		ring_signal(r, &h->data_seq);
	if (evc_sleepers(&h->space_seq))
		wake_writers_locked(r);
}

/* Would @need bytes fit at @head? Refreshes the cached tail if not. */
static bool space_fits(struct bring *r, uint64_t head, uint64_t need)
{
	/* Pairs with the release CAS in ring_refresh_tail(). */
	uint64_t tail = load_acquire(&r->hdr->tail_cache);

	if (ring_room(r, head, tail) >= need)
		return true;
	return ring_room(r, head, ring_refresh_tail(r)) >= need;
}

/*
 * The optimistic spin grows with the bytes waited for, at the rate of a
 * reader's copy out, 8 bytes per ns, up to 256 KiB of them (32 us).
 */
#define SPACE_SPIN_BYTES_PER_US 8000
#define SPACE_SPIN_MAX_NS 32768ULL

/*
 * The wake-up storm. A writer that sleeps on a full ring and is woken the
 * moment its record fits pushes that record, finds the ring full again,
 * spins 2 us and sleeps again, while the reader that woke it is still
 * inside FUTEX_WAKE (several microseconds in a VM: an IPI to a halted
 * vCPU) and frees nothing: one FUTEX_WAIT and one FUTEX_WAKE per message,
 * a mode 5-10x slower than streaming that feeds itself (traced with
 * 4 KiB messages: streaks of writer sleeps one record apart, the reader's
 * cursor not moving during the writer's whole spin). A writer that must
 * wait again within REWAIT_WINDOW_NS of its handle's last sleep for
 * space was just woken by a reader that is evidently busy freeing space,
 * so it spins up to REWAIT_SPIN_NS before it sleeps: long enough for that
 * reader to come back from its FUTEX_WAKE and shift the next record. What
 * wakes whom, and when, is unchanged; a reader that stopped costs the
 * writer at most REWAIT_SPIN_NS of CPU per sleep.
 */
#define REWAIT_WINDOW_NS 100000ULL
#define REWAIT_SPIN_NS 50000ULL

/*
 * Spin briefly for space that a reader is about to free: a wait of a
 * microsecond or two is cheaper than the futex wait and wake it replaces.
 * Bounded by r->spin_ns plus the time a reader takes to consume @need
 * bytes (a 64 KiB message takes longer to copy out than 2 us), or by
 * REWAIT_SPIN_NS right after a sleep (the wake-up storm above).
 */
static bool spin_for_space(struct bring *r, uint64_t need)
{
	uint64_t t0, budget;

	if (!r->spin_ns)
		return false;
	budget = spin_budget(r, need, SPACE_SPIN_BYTES_PER_US,
			     SPACE_SPIN_MAX_NS);
	t0 = bring_now_ns();
	if (t0 - load_relaxed(&r->space_wait_end) < REWAIT_WINDOW_NS &&
	    budget < REWAIT_SPIN_NS)
		budget = REWAIT_SPIN_NS;
	do {
		spin_pause();
		if (claim_visible(r, need) ||
		    (load_relaxed(&r->hdr->head) & HEAD_CLOSED))
			return true;
	} while (bring_now_ns() - t0 < budget);
	return false;
}

/*
 * Register as a sleeping writer that needs @need bytes: lower space_want,
 * then register on space_seq, both under the slow lock. A waker that sees
 * the registration also sees the want (the registration is a seq_cst CAS
 * after the store); a waker resets the want under the same lock before it
 * moves the epoch, so either our want survives the reset or the epoch move
 * wakes us.
 */
static void enter_space_wait(struct bring *r, uint64_t need,
			     struct evc_ticket *ticket)
{
	struct bring_hdr *h = r->hdr;

	ring_lock(r);
	if (load_relaxed(&h->space_want) > need)
		store_relaxed(&h->space_want, need);
	/* Fences: registered before the caller re-reads the cursors. */
	evc_prepare(&h->space_seq, ticket);
	ring_unlock(r);
}

/* Is the wait over? 0: space; -EPIPE: closed; 1: keep waiting. */
static int space_wait_done(struct bring *r, uint64_t need)
{
	if (load_acquire(&r->hdr->head) & HEAD_CLOSED)
		return -EPIPE;
	return claim_visible(r, need) ? 0 : 1;
}

/* Sleep until @need bytes fit, the ring closes or the deadline passes. */
static int wait_space(struct bring *r, uint64_t need,
		      const struct bring_deadline *dl)
{
	struct bring_hdr *h = r->hdr;
	struct evc_ticket ticket = { 0 };
	uint64_t t0;
	int err;

	if (spin_for_space(r, need))
		return 0;
	t0 = bring_now_ns();
	BRING_PROBE5(write_wait_start, r, r->name, need, 0ULL, (char *)NULL);
	for (;;) {
		enter_space_wait(r, need, &ticket);
		err = space_wait_done(r, need);
		if (err <= 0)
			break;
		ring_count_futex_wait(r);
		err = evc_wait(&h->space_seq, &ticket, dl);
		if (err == -ETIMEDOUT) {
			err = space_wait_done(r, need);
			err = err > 0 ? -ETIMEDOUT : err;
			break;
		}
	}
	evc_cancel(&h->space_seq, &ticket);
	add_relaxed(&h->write_waits, 1);
	store_relaxed(&r->space_wait_end, bring_now_ns());
	add_relaxed(&h->write_wait_ns, load_relaxed(&r->space_wait_end) - t0);
	BRING_PROBE6(write_wait_end, r, r->name, need, err, 0ULL, (char *)NULL);
	return err;
}

/**
 * bring_write_wait_prepare() - get a futex word to wait on for space
 * @r: the ring
 * @len: payload length the writer wants to push
 * @w: filled with the word and the value to wait on
 *
 * The writer-side twin of bring_reader_wait_prepare(): the ring wakes the
 * word once a message of @len bytes fits (or the ring closes). After the
 * wait, call bring_write_wait_finish(), then push with a timeout of 0.
 *
 * Return: 0 to wait on @w; 1 when the message fits now or the ring is
 * closed (nothing registered, do not finish); -EMSGSIZE, -EINVAL.
 */
int bring_write_wait_prepare(struct bring *r, size_t len, struct bring_wait *w)
{
	struct evc_ticket ticket = { 0 };
	uint64_t need;

	if (!r || !w)
		return -EINVAL;
	if (len > r->max_msg)
		return -EMSGSIZE;
	need = rec_footprint_len(len);
	enter_space_wait(r, need, &ticket);
	if (space_wait_done(r, need) <= 0) {
		evc_cancel(&r->hdr->space_seq, &ticket);
		return 1;
	}
	wait_ticket_save(w, &r->hdr->space_seq, &ticket, need);
	/* An event loop's wait: told apart from others in its thread by @w. */
	BRING_PROBE5(write_wait_start, r, r->name, need, (uint64_t)(uintptr_t)w,
		     (char *)NULL);
	return 0;
}

/*
 * Bytes of records the slowest reader still has to read (bring_stats.used),
 * and in *@room what a writer can claim. The jumps first, then the
 * cursors, then head (bring_reader_lag()): head covers every claim the
 * jumps and cursors name.
 */
static uint64_t ring_used(const struct bring *r, uint64_t *room)
{
	struct ring_jumps j;
	uint64_t tail, head;

	ring_jumps_load(r, &j);
	tail = ring_min_reader_pos(r);
	head = head_pos(load_acquire(&r->hdr->head));
	if (room)
		*room = ring_room(r, head, tail);
	return ring_held(r, &j, tail, head);
}

/* Is the drain over? 0: at most @held bytes held; -EPIPE: closed; 1: no. */
static int drain_wait_done(struct bring *r, uint64_t held)
{
	if (load_acquire(&r->hdr->head) & HEAD_CLOSED)
		return -EPIPE;
	return ring_used(r, NULL) <= held ? 0 : 1;
}

/**
 * bring_drain_wait_prepare() - get a futex word to wait on until readers drain
 * @r: the ring
 * @held: wait until the ring holds at most this many bytes
 * @w: filled with the word and the value to wait on
 *
 * For a writer that keeps the ring from holding more than it wants to
 * (a source reading a file ahead of its sinks by at most so much): the
 * ring wakes the word when a reader moves on and then holds at most
 * @held bytes (&struct bring_stats.used), or the ring closes. Unlike
 * bring_write_wait_prepare(), whose wait ends once a push would not
 * block, which may be at once even with the ring full (a claim may
 * escape over a reader stopped before a lap jump, Documentation/
 * ring.rst), this wait ends only by readers' progress. Every move of a
 * reader wakes it while it waits. After the wait, call
 * bring_write_wait_finish().
 *
 * Return: 0 to wait on @w; 1 when the ring holds at most @held bytes now
 * or is closed (nothing registered, do not finish); -EINVAL.
 */
int bring_drain_wait_prepare(struct bring *r, size_t held, struct bring_wait *w)
{
	struct evc_ticket ticket = { 0 };

	if (!r || !w)
		return -EINVAL;
	/* A want of 0: every reader's publish wakes us (ring_wake_writers()). */
	enter_space_wait(r, 0, &ticket);
	if (drain_wait_done(r, held) <= 0) {
		evc_cancel(&r->hdr->space_seq, &ticket);
		return 1;
	}
	wait_ticket_save(w, &r->hdr->space_seq, &ticket, 0);
	BRING_PROBE5(write_wait_start, r, r->name, 0ULL, (uint64_t)(uintptr_t)w,
		     (char *)NULL);
	return 0;
}

/**
 * bring_write_wait_finish() - end a wait begun with bring_write_wait_prepare()
 * @r: the ring
 * @w: as filled by bring_write_wait_prepare()
 */
void bring_write_wait_finish(struct bring *r, struct bring_wait *w)
{
	struct evc_ticket ticket;

	if (!r || !w)
		return;
	wait_ticket_load(w, &ticket);
	evc_cancel(&r->hdr->space_seq, &ticket);
	BRING_PROBE6(write_wait_end, r, r->name, wait_need(w), 0,
		     (uint64_t)(uintptr_t)w, (char *)NULL);
}

/*
 * A claim of ring space: what the writer asks for and what it got. With
 * @fill, claim() takes as many of the batch's records as fit once the
 * first one does.
 */
struct claim {
	uint64_t need; /* in: first record's footprint; out: bytes claimed */
	uint64_t pos; /* out: where the claimed bytes start */
	const struct bring_msg *fill; /* a batch, or NULL for one record */
	unsigned int nr; /* in: records in @fill; out: records claimed */
	/* File rings: this thread's intent, cleared once headers are tagged. */
	struct bring_intent *intent;
};

/*
 * How many of the batch's @want records fit at @head once the first
 * does: their total footprint, and their number in c->nr.
 */
static uint64_t claim_fill(struct bring *r, uint64_t head, struct claim *c,
			   unsigned int want)
{
	uint64_t total = c->need;
	unsigned int n;

	for (n = 1; c->fill && n < want; n++) {
		uint64_t more = rec_footprint_len(c->fill[n].len);

		if (!space_fits(r, head, total + more))
			break;
		total += more;
	}
	c->nr = n;
	return total;
}

/*
 * Lap jumps (Documentation/ring.rst has the argument). A ring that its
 * readers keep up with would still be written end to end, every lap:
 * each page first-touch faulted once per process, and cache-cold. So
 * when a claim finds the ring empty and head more than the working set
 * into its lap, it claims from the start of the next lap instead, and
 * publishes the skipped range in hdr->jump_from. Rings below
 * JUMP_CAPACITY_MIN never jump: their whole lap is a working set.
 */
/*
 * 2 MiB: a bringcat pair at full speed needs 6.0 page faults per MB
 * with it against 9.2 with 8 MiB, and its first 64 MiB costs 1.6x its
 * second instead of 2.8x (each page a process touches first costs 16-20
 * us on the reference VM; Documentation/benchmarks.rst, session 8).
 * 1 MiB was slower: a slack of W/2 is then less than a pipelined
 * shipper's lag, and fewer claims jump.
 */
#define JUMP_WORKSET_MAX (2ULL << 20)
/* A claim that found the ring not empty looks again this far on. */
#define JUMP_LOOK_SHIFT 4 /* working set / 16 */

/* Fault injection for the selftests: die at this step of a jump (1, 2). */
int bring__fault_jump;

static void jump_fault(int step)
{
	if (load_relaxed(&bring__fault_jump) == step)
		raise(SIGKILL);
}

/* How far into a lap head may go before an empty ring jumps; 0: never. */
static uint64_t jump_workset(const struct bring *r)
{
	if (r->capacity < JUMP_CAPACITY_MIN)
		return 0;
	return r->capacity / 8 < JUMP_WORKSET_MAX ? r->capacity / 8 :
						    JUMP_WORKSET_MAX;
}

/*
 * Where a claim of @need bytes at @head starts: @head, or the start of
 * the next lap when @head is past the working set W and the ring is
 * empty: every reader's cursor at head (with none, the tail is). Then
 * no record before head is unread and no claim is in flight before it,
 * since readers stop at uncommitted records. The claim's CAS from @head
 * makes sure no other writer claimed in between. The skipped bytes
 * [head, next lap) count as used until every reader passed them, so the
 * claim must fit behind the slowest reader's physical cursor: the fit
 * check below (for an empty ring, @need within head's offset).
 *
 * With a slack (bring_set_jump_slack()), the readers may be up to that
 * far behind (W/2 at most): records before @head, committed or still
 * being written, are read first, then a reader meeting the jump's start
 * continues at its end. The price is the trap described there: a reader
 * stopping before the jump holds the writers to the physical room behind
 * it, about W, until it passes the jump.
 *
 * Why jump_from can name the new jump: every cursor is within W/2 of
 * @head, which is at least W into its lap, so every cursor is past that
 * lap's start, and so past the end of any earlier jump (jumps end at lap
 * starts, and head only grows). No reader still needs the old value; one
 * at an old jump's start counts at its end, too far behind to pass. An
 * escape ends inside a lap, so that argument does not cover it: a new
 * jump also waits until every cursor is past the escape's end, since
 * the escape stops naming one (ring_jumps_load()) once jump_from moves.
 */
static uint64_t jump_start(struct bring *r, uint64_t head, uint64_t need)
{
	uint64_t off = head & r->mask, w = jump_workset(r), tail, to, slack;
	struct ring_jumps j;

	if (!w || off < w || need > off)
		return head;
	/*
	 * Not at every claim: after a look that found readers behind, skip
	 * W/16 bytes of claims, unless a reader sleeps (registered on
	 * data_seq), as readers that caught up do. A hint: a stale value
	 * costs a look, or a jump a little later.
	 */
	if (head < load_relaxed(&r->jump_look) &&
	    !(load_relaxed(&r->hdr->data_seq) / EVC_ONE_SLEEPER))
		return head;
	/*
	 * Raises tail_cache to the cursors' minimum: the claim's space
	 * checks (claim_fill()) then count only the room really free.
	 */
	tail = ring_refresh_tail(r);
	to = jump_to(r, head);
	slack = load_relaxed(&r->jump_slack);
	/*
	 * An escape claimed and not published yet blocks the jump. Acquire
	 * on head: if the escaper's CAS made @head, its increment (before
	 * the CAS) is visible; a 0 acquired from escaping comes after a
	 * decrement, which follows the store of escape_from: ring_jumps_load()
	 * below then sees the escape. A head that moved fails our CAS
	 * anyway.
	 */
	if (head_pos(load_acquire(&r->hdr->head)) != head ||
	    (!r->file && load_acquire(&r->hdr->escaping)))
		return head;
	ring_jumps_load(r, &j);
	if (head - tail > (slack < w / 2 ? slack : w / 2) ||
	    to + need - tail > r->capacity ||
	    (j.esc && tail <= escape_to(r, &j))) {
		/* Readers are behind: looking at every claim would put
		 * their cursors' lines in each one. */
		store_relaxed(&r->jump_look, head + (w >> JUMP_LOOK_SHIFT));
		return head;
	}
	/*
	 * A file ring has no escaping count (a dead escaper would leave it
	 * up for good): its escapers' intents say the same. The acquire
	 * load of head above made the intent of the escaper whose CAS made
	 * @head visible.
	 */
	if (r->file && file_escape_unpublished(r, &j))
		return head;
	return to;
}

/*
 * The jump from @from is claimed (our CAS moved head past the next
 * lap's start): publish it. Readers at @from continue at jump_to(), and
 * writers count them there. A later jump needs every cursor past
 * jump_to(@from) (see jump_start()), so jump_from only grows; the CAS
 * keeps it so even against a stalled publisher.
 */
static void publish_jump(struct bring *r, uint64_t from)
{
	jump_fault(1);
	/*
	 * Release: whoever acquires the jump sees the claim's CAS on head,
	 * so a reader that jumps never finds head behind its cursor.
	 */
	store_max_release(&r->hdr->jump_from, from);
	jump_fault(2);
	/*
	 * The skipped bytes are free now: a writer that slept for space
	 * while they counted as used must look again (evc_sleepers()
	 * fences: the jump is published before we look for sleepers, and a
	 * sleeper registers before it re-reads the cursors and the jump).
	 */
	ring_wake_writers(r);
}

/*
 * Escape jumps (Documentation/ring.rst, "Escape jumps"). A lap jump made
 * with a reader behind (the slack) sends the claims to the next lap's
 * start S while that reader still needs [P, J): should it stop there, the
 * claims of the new lap fill the room behind P, about W, and then wait,
 * though the jump's skipped range [J, S), a lap later [J + capacity,
 * S + capacity), lies free past the reader's bytes. A claim that does
 * not fit at @head for that reason escapes: it starts at J + capacity
 * instead, and readers that reach @head continue there. The ring holds
 * its capacity again, less the bytes between @head and P + capacity,
 * less than one record.
 *
 * When: a lap jump is published and not escaped yet; @head is inside
 * the lap after it, past S; a cursor stands before J (the trap: the
 * caller found no room at @head); the claim fits in the skipped range.
 * One escape per jump: escaping claims end by S + capacity, where the
 * records after the jump are the next to be overwritten, and writers
 * count a cursor before J at S once the escape is published
 * (ring_room_tail()).
 *
 * File rings escape the same way; a dead escaper's claim is repaired by
 * publishing its escape, never by a header at @head, which may lie on
 * the stopped reader's record (file_repair_stuck(), recovery).
 */
static uint64_t escape_start(struct bring *r, uint64_t head, uint64_t need)
{
	struct ring_jumps j;
	uint64_t s;

	ring_jumps_load(r, &j);
	if (!j.from || j.esc)
		return head;
	s = jump_to(r, j.from);
	if (head <= s || head >= escape_to(r, &j) || need > s - j.from)
		return head;
	if (ring_refresh_tail(r) >= j.from)
		return head; /* no cursor before the jump: simply full */
	return escape_to(r, &j);
}

/* Selftests: hold an escaper here, before its store (a preempted one). */
int bring__stall_escape;
int bring__escape_stalled;

/*
 * Selftest hooks: while *@hold is set, stand here (a preempted or
 * stopped process), having said so in *@held.
 */
void ring_test_stall(const int *hold, int *held)
{
	if (!load_acquire(hold))
		return;
	store_release(held, 1);
	while (load_acquire(hold))
		usleep(100);
}

/* Fault injection for the selftests: die at this step of an escape. */
int bring__fault_escape;

static void escape_fault(int step)
{
	if (load_relaxed(&bring__fault_escape) == step)
		raise(SIGKILL);
}

/*
 * The escape from @from is claimed (our CAS moved head past the lap
 * jump's end plus the capacity): publish it, as publish_jump() does a
 * jump. Only the escaping claim's owner stores it, and a later escape
 * needs a later jump, which needs every cursor past this one; the CAS
 * to the maximum keeps the field growing against a stalled publisher
 * all the same.
 */
static void publish_escape(struct bring *r, uint64_t from)
{
	ring_test_stall(&bring__stall_escape, &bring__escape_stalled);
	escape_fault(2);
	/*
	 * Release: whoever acquires the escape sees the claim's CAS on
	 * head, so a reader that escapes never finds head behind it.
	 */
	store_max_release(&r->hdr->escape_from, from);
	escape_fault(3);
	/* Release (a seq_cst RMW): after the store, see jump_start(). */
	if (!r->file)
		fetch_add(&r->hdr->escaping, (uint64_t)-1);
	/* Writers that slept on the trap have the first jump's skipped
	 * range now (evc_sleepers() fences, as in publish_jump()). */
	ring_wake_writers(r);
}

/*
 * The readers' side of lap jumps. A pipelined shipper claims its next
 * chunk before its sink has shifted the last one, so a claim rarely
 * finds the ring empty; the instant it is empty is when the last reader
 * shifts up to head. Then that reader, having published its cursor at
 * @pos, jumps the ring itself: a claim of nothing, from @pos to the next
 * lap's start, by the same rules (the ring empty, @pos past W, the CAS
 * from @pos failing if any writer claimed first). @look is the reader's
 * own hint of where to look again. A file ring's intent covers the
 * jump, so that a reader that dies between its CAS and publish_jump()
 * leaves a claim the repair and recovery know (Documentation/ring.rst).
 */
void ring_jump_empty(struct bring *r, uint64_t pos, uint64_t *look)
{
	uint64_t w = jump_workset(r), expect = pos, to;
	struct bring_intent *in = NULL;

	if (!w || (pos & r->mask) < w || pos < *look)
		return;
	if (ring_refresh_tail(r) != pos ||
	    head_pos(load_acquire(&r->hdr->head)) != pos) {
		*look = pos + (w >> JUMP_LOOK_SHIFT);
		return;
	}
	to = jump_to(r, pos);
	if (r->file) {
		in = file_intent_slot(r);
		if (!in)
			return; /* no intent slot: no jump, nothing lost */
		file_set_intent(in, pos, to - pos);
	}
	/*
	 * Release: the intent before the claim, as in claim(); fails on a
	 * closed ring (the flag is in head) or a writer's claim at @pos.
	 */
	if (__atomic_compare_exchange_n(&r->hdr->head, &expect, to, false,
					__ATOMIC_RELEASE, __ATOMIC_RELAXED))
		publish_jump(r, pos);
	if (in)
		file_clear_intent(in);
}

/* Claim space at head for records the caller then writes. */
static int claim(struct bring *r, struct claim *c, int timeout_ms)
{
	struct bring_hdr *h = r->hdr;
	uint64_t head = load_relaxed(&h->head), total, start;
	struct bring_deadline dl = { .forever = -1 };
	unsigned int want = c->nr; /* a lost race must not shrink the batch */
	bool fits, escape;
	int err;

	for (;;) {
		if (head & HEAD_CLOSED)
			return -EPIPE;
		fits = space_fits(r, head, c->need);
		start = fits ? jump_start(r, head, c->need) :
			       escape_start(r, head, c->need);
		if (!fits && start == head) {
			if (timeout_ms == 0)
				return -EAGAIN;
			/* One deadline for the call, however often we lose
			 * the space we woke up for to another writer. */
			if (dl.forever == -1)
				bring_deadline_init(&dl, timeout_ms);
			err = wait_space(r, c->need, &dl);
			if (err)
				return err;
			head = load_relaxed(&h->head);
			continue;
		}
		total = claim_fill(r, start, c, want);
		if (r->file) {
			/* Taken once space is there: a full or closed
			 * ring says so first. */
			if (!c->intent)
				c->intent = file_intent_slot(r);
			if (!c->intent)
				return -EUSERS; /* > BRING_INTENTS writers */
			/* A jump's intent covers the skipped bytes too:
			 * a dead jumper's claim is repaired from head. */
			file_set_intent(c->intent, head, start + total - head);
		}
		/*
		 * The claim. Release: a file ring's intent, stored just
		 * above, is visible to whoever sees the new head (a repairer
		 * looking for the claim's owner). Nobody reads the records
		 * until their tags say they are written; acquire for the
		 * cursors we checked was done by space_fits().
		 */
		/*
		 * An escape counts before its CAS (see jump_start()); in a
		 * file ring its intent, stored above, does. A lap jump
		 * lands at a lap's start, an escape inside the lap.
		 */
		escape = start != head && (start & r->mask);
		if (escape && !r->file)
			fetch_add(&h->escaping, 1);
		if (escape)
			escape_fault(1);
		if (__atomic_compare_exchange_n(&h->head, &head, start + total,
						false, __ATOMIC_RELEASE,
						__ATOMIC_RELAXED))
			break;
		if (escape && !r->file)
			fetch_add(&h->escaping, (uint64_t)-1);
		/*
		 * Lost the race: the intent describes another writer's
		 * claim now. Left in place, it would make that claim look
		 * alive to a repairer should its owner die.
		 */
		if (r->file)
			file_clear_intent(c->intent);
	}
	c->pos = start;
	c->need = total;
	if (escape)
		publish_escape(r, head);
	else if (start != head)
		publish_jump(r, head);
	return 0;
}

/*
 * Write a BUSY (or DISCARD) header at @pos, then tag it; returns the
 * footprint. @in: a file ring's BUSY record names the intent slot of the
 * claim that made it (NULL for a memory ring or a DISCARD record).
 */
static uint64_t put_busy_header(struct bring *r, uint64_t pos, uint64_t len,
				uint32_t flags, struct bring_intent *in)
{
	struct bring_rec *rec = rec_at(r, pos);

	/*
	 * File rings: a BUSY record names its writer, for crash repair; a
	 * record born DISCARD (the tail of a short commit) gets its check.
	 */
	uint32_t lf = (uint32_t)len | flags, crc = 0;

	if (r->file)
		crc = flags & REC_BUSY ? file_busy_mark(r, in) :
					 rec_crc(pos ^ r->key, lf, NULL, 0);
	store_relaxed(&rec->word, rec_word(lf, crc));
	/* Pairs with the acquire load of the tag in reader_collect(). */
	store_release(&rec->tag, pos ^ r->key);
	return rec_footprint_len(len);
}

static void count_in(struct bring *r, uint64_t msgs, uint64_t bytes)
{
	add_relaxed(&r->hdr->msgs_in, msgs);
	if (bytes)
		add_relaxed(&r->hdr->bytes_in, bytes);
}

static int ring_reserve(struct bring *r, uint64_t len, int timeout_ms,
			uint64_t *posp)
{
	struct claim c = { .need = rec_footprint_len(len) };
	int err;

	err = file_check_poison(r);
	if (err)
		return err;
	err = claim(r, &c, timeout_ms);
	if (err)
		return err;
	put_busy_header(r, c.pos, len, REC_BUSY, c.intent);
	if (r->file)
		file_clear_intent(c.intent);
	count_in(r, 1, len);
	*posp = c.pos;
	return 0;
}

/*
 * Clear BUSY: the payload before this store is visible to readers. File
 * rings checksum the payload first (DISCARD records carry none).
 */
static void publish_record(struct bring_rec *rec, uint32_t len_flags,
			   uint32_t crc)
{
	/*
	 * Pairs with the acquire load of the commit word in
	 * reader_collect(); length and checksum land together, so a
	 * repair's CAS (file_repair_stuck()) either wins before this store
	 * or fails.
	 */
	store_release(&rec->word, rec_word(len_flags, crc));
}

/* Commit a record whose payload is in place (reserve/commit, abort). */
static void commit_record(struct bring *r, struct bring_rec *rec,
			  uint32_t len_flags)
{
	uint32_t crc = 0;

	if (r->file)
		crc = rec_crc(load_relaxed(&rec->tag), len_flags, rec + 1,
			      len_flags & REC_DISCARD ?
				      0 :
				      len_flags & REC_LEN_MASK);
	publish_record(rec, len_flags, crc);
}

/*
 * Copy a payload into its record and commit it. File rings checksum the
 * payload during the copy: one pass over it, not two.
 */
static void copy_and_commit(struct bring *r, struct bring_rec *rec,
			    const void *data, uint32_t len)
{
	uint32_t crc = 0;

	if (r->file)
		crc = bring_crc32c_copy(
			rec_crc_head(load_relaxed(&rec->tag), len), rec + 1,
			data, len);
	else if (len)
		memcpy(rec + 1, data, len);
	publish_record(rec, len, crc);
}

static int check_push_args(struct bring *r, const void *data, size_t len)
{
	if (!r || (!data && len))
		return -EINVAL;
	return len > r->max_msg ? -EMSGSIZE : 0;
}

/**
 * bring_push_timeout() - copy one message into the ring
 * @r: the ring
 * @data: payload (may be NULL when @len is 0)
 * @len: payload length, at most bring_max_msg()
 * @timeout_ms: <0 waits for space forever, 0 never waits, >0 waits at most
 *              that many milliseconds
 *
 * Return: 0; -EMSGSIZE if @len > bring_max_msg() (at once, full ring or
 * not); -EAGAIN (@timeout_ms == 0) or -ETIMEDOUT when there was no space;
 * -EPIPE once the ring is closed; -EINVAL for bad arguments.
 */
int bring_push_timeout(struct bring *r, const void *data, size_t len,
		       int timeout_ms)
{
	uint64_t pos;
	int err;

	err = check_push_args(r, data, len);
	if (err)
		return err;
	err = ring_reserve(r, len, timeout_ms, &pos);
	if (err)
		return err;
	copy_and_commit(r, rec_at(r, pos), data, (uint32_t)len);
	ring_wake_readers(r);
	return file_after_commit(r);
}

/**
 * bring_push() - copy one message into the ring, waiting for space
 * @r: the ring
 * @data: payload (may be NULL when @len is 0)
 * @len: payload length, at most bring_max_msg()
 *
 * Same as bring_push_timeout() with a timeout of -1.
 *
 * Return: 0, -EMSGSIZE, -EPIPE or -EINVAL.
 */
int bring_push(struct bring *r, const void *data, size_t len)
{
	return bring_push_timeout(r, data, len, -1);
}

/* How many of @msgs are pushable, and their checks. */
static int batch_prefix(struct bring *r, const struct bring_msg *msgs,
			unsigned int nr)
{
	unsigned int i;
	int err;

	for (i = 0; i < nr; i++) {
		err = check_push_args(r, msgs[i].data, msgs[i].len);
		if (err)
			return i ? (int)i : err;
	}
	return (int)nr;
}

static uint64_t bytes_of(const struct bring_msg *msgs, unsigned int nr)
{
	uint64_t bytes = 0;
	unsigned int i;

	for (i = 0; i < nr; i++)
		bytes += msgs[i].len;
	return bytes;
}

/*
 * Write a claimed batch at @pos. In a memory ring the first record stays
 * BUSY until all payloads are in place, so readers see the batch after
 * one release store; the others are written committed, since readers
 * cannot get past the first. A file ring commits each record on its own:
 * if the writer dies half way, every record it did not finish is BUSY
 * and names it, and repair discards exactly those.
 */
static void fill_batch(struct bring *r, const struct claim *c)
{
	const struct bring_msg *msgs = c->fill;
	uint64_t pos = c->pos, p = pos;
	unsigned int i, nr = c->nr;

	for (i = 0; i < nr; i++)
		p += put_busy_header(r, p, msgs[i].len,
				     i && !r->file ? 0 : REC_BUSY, c->intent);
	if (r->file)
		file_clear_intent(c->intent);
	for (i = 0; i < nr; i++) {
		struct bring_rec *rec = rec_at(r, pos);

		if (r->file)
			copy_and_commit(r, rec, msgs[i].data,
					(uint32_t)msgs[i].len);
		else if (msgs[i].len)
			memcpy(rec + 1, msgs[i].data, msgs[i].len);
		pos += rec_footprint_len(msgs[i].len);
	}
	if (!r->file)
		commit_record(r, rec_at(r, c->pos), (uint32_t)msgs[0].len);
}

/**
 * bring_push_batch() - copy several messages in with one claim
 * @r: the ring
 * @msgs: the messages (@msgs[i].seq is ignored)
 * @nr: number of messages
 * @timeout_ms: how long to wait for space for the first message, as in
 *              bring_push_timeout()
 *
 * Pushes the longest prefix of @msgs that fits once the first message
 * fits, like writev(2) for messages: the caller pushes the rest with
 * another call. A message larger than bring_max_msg() ends the prefix.
 *
 * Return: the number of messages pushed (>= 1); 0 when @nr is 0;
 * otherwise the error bring_push_timeout() would return for @msgs[0].
 */
int bring_push_batch(struct bring *r, const struct bring_msg *msgs,
		     unsigned int nr, int timeout_ms)
{
	struct claim c = { .fill = msgs };
	int err;

	if (!r || (!msgs && nr))
		return -EINVAL;
	if (!nr)
		return 0;
	if (nr > INT_MAX)
		nr = INT_MAX; /* the count must fit the return value */
	err = batch_prefix(r, msgs, nr);
	if (err < 0)
		return err;
	c.nr = (unsigned int)err;

	err = file_check_poison(r);
	if (err)
		return err;
	c.need = rec_footprint_len(msgs[0].len);
	err = claim(r, &c, timeout_ms);
	if (err)
		return err;
	fill_batch(r, &c);
	count_in(r, c.nr, bytes_of(msgs, c.nr));
	ring_wake_readers(r);
	err = file_after_commit(r);
	return err ? err : (int)c.nr;
}

/**
 * bring_reserve() - reserve space for one message, to be filled in place
 * @r: the ring
 * @len: payload bytes to reserve, at most bring_max_msg()
 * @resv: filled with where to write (@resv->data, @resv->len)
 * @timeout_ms: as in bring_push_timeout()
 *
 * The zero-copy writer path: fill @resv->data, then bring_commit() (with
 * the length actually used) or bring_abort(). Readers stop at the first
 * uncommitted reservation, so commit promptly.
 *
 * Return: 0 or the errors of bring_push_timeout().
 */
int bring_reserve(struct bring *r, size_t len, struct bring_resv *resv,
		  int timeout_ms)
{
	uint64_t pos;
	int err;

	if (!r || !resv)
		return -EINVAL;
	if (len > r->max_msg)
		return -EMSGSIZE;
	err = ring_reserve(r, len, timeout_ms, &pos);
	if (err)
		return err;
	if (r->file)
		file_resv_open(r, pos); /* its writer lives until it ends */
	resv->data = rec_at(r, pos) + 1;
	resv->len = len;
	resv->seq = pos;
	resv->__priv[0] = pos;
	resv->__priv[1] = RESV_TOKEN ^ pos;
	return 0;
}

/* The reservation's record, or NULL if @resv is not a live one. */
static struct bring_rec *resv_record(struct bring *r, struct bring_resv *resv)
{
	struct bring_rec *rec;

	if (!r || !resv || resv->__priv[1] != (RESV_TOKEN ^ resv->__priv[0]))
		return NULL;
	rec = rec_at(r, resv->__priv[0]);
	if (load_relaxed(&rec->tag) != (resv->__priv[0] ^ r->key) ||
	    word_lf(load_relaxed(&rec->word)) !=
		    ((uint32_t)resv->len | REC_BUSY))
		return NULL;
	return rec;
}

/* Take back what was counted at reservation time. */
static void uncount(struct bring *r, uint64_t msgs, uint64_t bytes)
{
	__atomic_fetch_sub(&r->hdr->msgs_in, msgs, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&r->hdr->bytes_in, bytes, __ATOMIC_RELAXED);
}

/*
 * A commit shorter than the reservation leaves unused bytes behind the
 * payload: 8 are absorbed with TAG_SLACK8 in the record's tag, 16 or more
 * become a DISCARD record that readers skip. Readers cannot look at either
 * before the commit that follows (its release store orders them).
 */
static void split_reservation(struct bring *r, uint64_t pos,
			      uint64_t reserved, uint64_t len)
{
	uint64_t used = rec_footprint_len(len);
	uint64_t rest = rec_footprint_len(reserved) - used;
	struct bring_rec *rec = rec_at(r, pos);

	if (rest == 8)
		store_relaxed(&rec->tag, load_relaxed(&rec->tag) | TAG_SLACK8);
	else if (rest)
		put_busy_header(r, pos + used, rest - REC_HDR_SIZE, REC_DISCARD,
				NULL);
}

/**
 * bring_commit() - publish a reservation as a message
 * @r: the ring
 * @resv: from bring_reserve()
 * @len: payload bytes actually written, at most @resv->len
 *
 * Return: 0; -EINVAL if @resv is not a live reservation of @r (already
 * committed or aborted) or @len > @resv->len.
 */
int bring_commit(struct bring *r, struct bring_resv *resv, size_t len)
{
	return ring_commit(r, resv, len, NULL);
}

/*
 * Commit a reservation; with @ms, a named writer's mark is stored just
 * before the commit (lib/mark.c says why that order).
 */
int ring_commit(struct bring *r, struct bring_resv *resv, size_t len,
		const struct mark_stage *ms)
{
	struct bring_rec *rec = resv_record(r, resv);
	uint32_t mark;

	if (!rec || len > resv->len)
		return -EINVAL;
	mark = word_crc(load_relaxed(&rec->word)); /* BUSY: its writer */
	split_reservation(r, resv->__priv[0], resv->len, len);
	if (len < resv->len)
		uncount(r, 0, resv->len - len);
	resv->__priv[1] = 0;
	/* Ordered before the commit by its release store. */
	if (ms)
		cursor_store(ms->saved, resv->__priv[0], ms->mark,
			     ms->mark_len);
	commit_record(r, rec, (uint32_t)len);
	if (r->file)
		file_resv_close(r, mark); /* after the commit: never repaired */
	ring_wake_readers(r);
	return file_after_commit(r);
}

/**
 * bring_abort() - give a reservation back
 * @r: the ring
 * @resv: from bring_reserve()
 *
 * The space becomes a record that readers skip; no reader sees a message.
 *
 * Return: 0, or -EINVAL if @resv is not a live reservation of @r.
 */
int bring_abort(struct bring *r, struct bring_resv *resv)
{
	struct bring_rec *rec = resv_record(r, resv);
	uint32_t mark;

	if (!rec)
		return -EINVAL;
	mark = word_crc(load_relaxed(&rec->word)); /* BUSY: its writer */
	uncount(r, 1, resv->len);
	resv->__priv[1] = 0;
	commit_record(r, rec, (uint32_t)resv->len | REC_DISCARD);
	if (r->file)
		file_resv_close(r, mark);
	/* A reader may sleep on this record: let it skip it. */
	ring_wake_readers(r);
	return 0;
}

/**
 * bring_close() - stop accepting messages
 * @r: the ring
 *
 * Graceful: pushes and reservations fail with -EPIPE from now on, writers
 * sleeping for space wake up with -EPIPE, and readers get every message
 * pushed before the close, then -EPIPE. Reservations made before the close
 * can still be committed. Closing twice is harmless.
 */
void bring_close(struct bring *r)
{
	if (!r)
		return;
	/*
	 * The flag lives in head: claims after this fail, and a reader that
	 * sees the flag sees the final head with it.
	 */
	fetch_or(&r->hdr->head, HEAD_CLOSED);
	ring_wake_all(r);
}

uint32_t ring_hdr_crc(const struct bring_hdr *h)
{
	return bring_crc32c(0, &h->c, sizeof(h->c));
}

/* The robust, process-shared locks of the header. */
void ring_init_locks(struct bring_hdr *h)
{
	pthread_mutexattr_t attr;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&h->lock, &attr);
	pthread_mutex_init(&h->flush_lock, &attr);
	pthread_mutexattr_destroy(&attr);
}

/* A new header in zeroed memory; the default reader is the caller's. */
int ring_init_header(struct bring *r, const char *name, uint64_t max_msg,
		     unsigned int flags)
{
	struct bring_hdr *h = r->hdr;

	h->c.magic = BRING_MAGIC;
	h->c.version = BRING_LAYOUT_VERSION;
	h->c.hdr_size = BRING_HDR_SIZE;
	h->c.capacity = r->capacity;
	h->c.max_msg = max_msg;
	h->c.flags = flags;
	h->c.durability = r->durability;
	h->c.file = r->file;
	strcpy(h->c.name, name);
	if (getrandom(&h->c.key, sizeof(h->c.key), 0) != sizeof(h->c.key))
		h->c.key = bring_now_ns() * 0x9e3779b97f4a7c15ULL;
	h->c.key &= ~TAG_FLAGS; /* tag bits of their own */
	h->space_want = UINT64_MAX;
	r->key = h->c.key;
	ring_init_locks(h);
	return 0;
}

uint64_t ring_spin_ns(const struct bring_opts *opts)
{
	int ns = OPTS_GET(opts, spin_ns, 0);

	/* Spinning only helps when the other side runs on another CPU. */
	if (ns < 0 || sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return 0;
	return ns ? (uint64_t)ns : BRING_SPIN_NS_DEFAULT;
}

uint64_t ring_round_capacity(size_t capacity)
{
	uint64_t cap = BRING_CAPACITY_MIN;

	while (cap < capacity)
		cap <<= 1;
	return cap;
}

/* Validate the options; fills the resolved name and max_msg. */
int ring_check_opts(size_t capacity, const struct bring_opts *opts,
			  const char **name, uint64_t *max_msg)
{
	uint64_t cap;

	if (!OPTS_VALID(opts, bring_opts) || !capacity ||
	    capacity > BRING_CAPACITY_MAX)
		return -EINVAL;
	if (OPTS_GET(opts, flags, 0) &
	    ~(unsigned int)(BRING_NO_DEFAULT_READER | BRING_SKIP_DAMAGED |
			    BRING_OPEN_FLAGS))
		return -EINVAL;
	if ((unsigned int)OPTS_GET(opts, durability, 0) > BRING_DURABLE_ALWAYS)
		return -EINVAL;
	*name = OPTS_GET(opts, name, NULL) ?: "bring";
	if (strlen(*name) >= BRING_NAME_MAX)
		return -ENAMETOOLONG;
	cap = ring_round_capacity(capacity);
	*max_msg = OPTS_GET(opts, max_msg, 0);
	if (!*max_msg)
		*max_msg = cap - REC_HDR_SIZE;
	if (*max_msg > BRING_MSG_MAX || rec_footprint_len(*max_msg) > cap)
		return -EINVAL;
	return 0;
}

/**
 * bring_new() - create an in-memory ring
 * @capacity: bytes of message space wanted, at most 1 GiB; rounded up to
 *            a power of two of at least 4096 (see bring_capacity())
 * @opts: options, or NULL for the defaults (declare with BRING_OPTS())
 *
 * Each message takes 16 bytes of framing plus its payload, rounded up to
 * 8 bytes. Unless @opts sets BRING_NO_DEFAULT_READER the ring starts with
 * its default reader, used by bring_next() and bring_shift().
 *
 * Return: the ring, or NULL with errno set: EINVAL (capacity 0 or above
 * 1 GiB, bad @opts->sz, unknown trailing option bytes or flags, a max_msg
 * that cannot fit), ENAMETOOLONG (name of BRING_NAME_MAX bytes or more),
 * ENOMEM.
 */
struct bring *bring_new(size_t capacity, const struct bring_opts *opts)
{
	unsigned int flags = OPTS_GET(opts, flags, 0);
	struct bring *r = NULL;
	const char *name;
	uint64_t max_msg;
	int err;

	err = ring_check_opts(capacity, opts, &name, &max_msg);
	if (err)
		goto err;
	r = zalloc_aligned(sizeof(*r));
	if (r)
		ring_init_notify(r);
	if (!r) {
		err = -ENOMEM;
		goto err;
	}
	err = ring_map_memfd(r, name, ring_round_capacity(capacity));
	if (err)
		goto err;
	r->max_msg = max_msg;
	r->spin_ns = ring_spin_ns(opts);
	strcpy(r->name, name);
	r->fd = -1;
	err = ring_init_header(r, name, max_msg, flags);
	if (err)
		goto err;
	if (!(flags & BRING_NO_DEFAULT_READER)) {
		r->def = reader_attach(r, BRING_DEFAULT_READER, &err);
		if (!r->def)
			goto err;
	}
	return r;
err:
	bring_free(r);
	errno = -err;
	return NULL;
}

/**
 * bring_free() - unmap a ring and free its handle
 * @r: the ring, or NULL
 *
 * Close named readers of @r first. Threads still using @r must be done.
 */
void bring_free(struct bring *r)
{
	int i;

	if (!r)
		return;
	if (r->def)
		reader_detach(r->def);
	if (r->file)
		file_close(r);
	ring_unmap(r);
	for (i = 0; i < BRING_NOTIFY_MAX; i++)
		if (r->notify_fds[i] >= 0)
			close(r->notify_fds[i]);
	free(r);
}

/**
 * bring_set_jump_slack() - let this handle's claims jump with readers behind
 * @r: the ring
 * @bytes: how far behind head the slowest reader may be (0: the default)
 *
 * A claim at least the working set W into its lap (min(2 MiB, capacity
 * / 8); rings below 1 MiB never jump) continues at the next lap's start
 * when the ring is empty, so that a ring whose readers keep up stays in
 * its first W and its far pages are never touched (Documentation/
 * ring.rst, "Lap jumps"). A pipelined writer always has something in
 * flight, so its ring is rarely empty at a claim. With a slack, this
 * handle's claims also jump when every reader is at most @bytes (and at
 * most W/2) behind head.
 *
 * A reader that stops before such a jump needs the bytes it has not
 * read, in the middle of the lap the writers left. In a memory ring the
 * claims then go on around them (an escape jump, Documentation/ring.rst):
 * the ring still holds its capacity, less under two records. In a file
 * ring they do not: until the reader passes the jump, the writers have
 * only the physical room behind it, about W, not the whole capacity. Set
 * a slack on a file ring only where the writers can wait without losing
 * data, e.g. when they read files (bring_io does so). It applies to this
 * handle only.
 *
 * Return: 0, or -EINVAL for a NULL ring.
 */
int bring_set_jump_slack(struct bring *r, size_t bytes)
{
	if (!r)
		return -EINVAL;
	store_relaxed(&r->jump_slack, (uint64_t)bytes);
	return 0;
}

/**
 * bring_notify_fd() - an eventfd for an event loop that cannot wait on futexes
 * @r: the ring
 *
 * For io_uring event loops on kernels without IORING_OP_FUTEX_WAIT (before
 * Linux 6.7) and for epoll loops: after bring_reader_wait_prepare() or
 * bring_write_wait_prepare() returned 0, poll this eventfd for reading
 * instead of waiting on the futex word. Whenever a push, shift, abort,
 * repair or close made through *this handle* wakes sleepers, the ring
 * adds 1 to every eventfd it handed out; read it to reset it, call the
 * wait_finish() function of every wait that was pending, and look again.
 * Wakers that use another handle (another bring_open() of the same file,
 * or another process) only wake futex waiters: loops that share a file
 * ring across handles need IORING_OP_FUTEX_WAIT or a thread.
 *
 * Each call makes a new eventfd, for one consumer: two loops that read
 * one eventfd would steal each other's wakes. At most 8 per handle; all
 * are non-blocking and close-on-exec, and bring_free() closes them.
 * Nothing is written while nobody has prepared a wait.
 *
 * Return: the descriptor, or -errno: -EINVAL for a NULL ring, -EMFILE
 * when the handle has 8 already, or what eventfd(2) failed with.
 */
int bring_notify_fd(struct bring *r)
{
	unsigned int slot;
	int fd;

	if (!r)
		return -EINVAL;
	slot = __atomic_fetch_add(&r->notify_nr, 1, __ATOMIC_RELAXED);
	if (slot >= BRING_NOTIFY_MAX)
		return -EMFILE; /* notify_nr only grows: ring_signal() caps it */
	fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0)
		return -errno; /* the slot stays -1: skipped by ring_signal() */
	/*
	 * Release: the eventfd exists before a waker loads it. A waker that
	 * still sees -1 has no consumer of this fd to wake yet: its loop
	 * has not prepared a wait.
	 */
	store_release(&r->notify_fds[slot], fd);
	return fd;
}

/**
 * bring_capacity() - bytes of message space, framing included
 * @r: the ring
 *
 * Return: the capacity, a power of two >= the capacity asked for.
 */
size_t bring_capacity(const struct bring *r)
{
	return r->capacity;
}

/**
 * bring_max_msg() - the largest payload a push accepts
 * @r: the ring
 *
 * Return: bytes; by default bring_capacity() - 16, so any accepted message
 * fits an empty ring and a writer never waits for space that cannot come.
 */
size_t bring_max_msg(const struct bring *r)
{
	return r->max_msg;
}

/**
 * bring_name() - the ring's name
 * @r: the ring
 *
 * Return: the name given in bring_opts, or "bring".
 */
const char *bring_name(const struct bring *r)
{
	return r->name;
}

static void sum_reader_stats(const struct bring_hdr *h, struct bring_stats *s)
{
	uint64_t mask = load_acquire(&h->readers_mask);

	while (mask) {
		const struct bring_slot *sl = &h->slots[__builtin_ctzll(mask)];

		s->msgs_out += load_relaxed(&sl->msgs_out);
		s->bytes_out += load_relaxed(&sl->bytes_out);
		s->read_waits += load_relaxed(&sl->read_waits);
		s->read_wait_ns += load_relaxed(&sl->read_wait_ns);
		s->readers++;
		mask &= mask - 1;
	}
}

/**
 * bring_get_stats() - read the ring's counters
 * @r: the ring
 * @st: filled up to @st->sz bytes; set @st->sz = sizeof(*st) first
 *
 * Counters are read without stopping writers or readers, so they are each
 * exact but not a snapshot of one instant. Reader counters cover the
 * readers that exist now.
 *
 * Return: 0, or -EINVAL if @r or @st is NULL or @st->sz is too small.
 */
int bring_get_stats(const struct bring *r, struct bring_stats *st)
{
	struct bring_stats s = { 0 };
	const struct bring_hdr *h;
	size_t sz;

	if (!r || !st || st->sz < sizeof(size_t))
		return -EINVAL;
	h = r->hdr;
	sz = st->sz;
	s.msgs_in = load_relaxed(&h->msgs_in);
	s.bytes_in = load_relaxed(&h->bytes_in);
	s.write_waits = load_relaxed(&h->write_waits);
	s.write_wait_ns = load_relaxed(&h->write_wait_ns);
	s.futex_waits = load_relaxed(&h->futex_waits);
	s.futex_wakes = load_relaxed(&h->futex_wakes);
	sum_reader_stats(h, &s);
	s.used = ring_used(r, &s.room);
	s.capacity = r->capacity;
	s.max_msg = r->max_msg;
	s.damaged = load_relaxed(&h->damaged);
	s.flushes = load_relaxed(&h->flushes);
	s.durable = r->file ? load_relaxed(&h->durable_pos) : 0;
	s.id = r->key;
	s.file = r->file;
	s.durability = r->file ? r->durability : BRING_DURABLE_NONE;
	if (sz > sizeof(s)) {
		memset((char *)st + sizeof(s), 0, sz - sizeof(s));
		sz = sizeof(s);
	}
	memcpy(st, &s, sz);
	st->sz = sz;
	return 0;
}
