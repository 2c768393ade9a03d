// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * mark.c - marks: positions committed with the data.
 *
 * A named writer (bring_writer_open()) commits records together with a
 * mark, opaque bytes that say where in its source the record came from.
 * The mark lives in the writer's slot in the header, in two checksummed
 * generations like a reader's saved cursor, and each generation names
 * the position of the record it was committed with. The protocol:
 *
 *   writer                                 what a crash leaves
 *   ------                                 -------------------
 *   claim, tag the BUSY header, payload    a BUSY record; the newest
 *                                          generation is the last mark
 *   store generation g+1 = {pos, mark}     a BUSY record named by the
 *     into the older copy, crc last        newest generation (or a torn
 *                                          copy: invalid, g stays newest)
 *   commit (release: g+1 before it)        a committed record, its mark
 *
 * The invariant: the newest valid generation names a record that is
 * committed, or BUSY and about to be (its writer alive), or consumed by
 * every reader. Consumed means committed: readers pass only committed
 * records and DISCARD records, and a record becomes DISCARD (repair of a
 * dead writer's BUSY record, at run time or by recovery) only after the
 * generation naming it was revoked (its gen set to 0, one aligned
 * store), under the ring lock that serialises repairers. So:
 *
 *  - killed before the generation store: the newest generation is the
 *    previous mark; the BUSY record is repaired to DISCARD;
 *  - killed during it: the copy being written fails its checksum (the
 *    older copy was the target, the newest is intact);
 *  - killed between it and the commit: repair revokes, then discards;
 *    a repairer killed in between leaves a revoked mark and a BUSY
 *    record, which the next repair discards;
 *  - killed after the commit: the record and its mark stand; readers
 *    may consume the record and writers reuse its space at once, since
 *    nothing remains to be done for it.
 *
 * Whoever takes over a dead writer's name (bring_writer_open()) first
 * settles its last record (repairs it if its writer died before the
 * commit), so that bring_writer_mark() never returns a mark whose record
 * will not be committed. Recovery (recover.c) revokes every generation
 * whose record is not a valid committed one in the ring.
 *
 * A reader's mark is stored in the generation of its saved cursor that
 * a shift writes, so position and mark are always those of one shift.
 * Memory rings keep both kinds in their header like a file ring, without
 * crashes to survive.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "internal.h"

/* A named writer handle: process-local. */
struct bring_writer {
	struct bring *ring;
	struct bring_wslot *slot;
};

/* ------------------------------------------------------------------ */
/* Two checksummed generations: reader cursors and writer marks.      */

uint32_t cursor_crc(const struct bring_cursor *c)
{
	uint32_t crc = bring_crc32c(0, &c->pos, 2 * sizeof(uint64_t));
	/* A damaged length never makes the checksum read past the mark. */
	size_t len = c->mark_len < BRING_MARK_MAX ? c->mark_len : BRING_MARK_MAX;

	crc = bring_crc32c(crc, &c->mark_len, sizeof(c->mark_len));
	return len ? bring_crc32c(crc, c->mark, len) : crc;
}

static bool cursor_valid(const struct bring_cursor *c)
{
	return c->gen && c->mark_len <= BRING_MARK_MAX &&
	       c->crc == cursor_crc(c);
}

/* The newest generation that passes its checksum, or NULL. */
const struct bring_cursor *cursor_newest(const struct bring_cursor *c)
{
	const struct bring_cursor *best = NULL;
	int i;

	for (i = 0; i < 2; i++)
		if (cursor_valid(&c[i]) && (!best || c[i].gen > best->gen))
			best = &c[i];
	return best;
}

/* The index of the newest generation by number alone, or -1. */
static int latest_index(const struct bring_cursor *c)
{
	if (!c[0].gen && !c[1].gen)
		return -1;
	return c[0].gen > c[1].gen ? 0 : 1;
}

/*
 * The newest generation by number alone, or NULL: the owner's fast path.
 * It is valid: the owner wrote it, or cursor_settle() ran at takeover.
 */
const struct bring_cursor *cursor_latest(const struct bring_cursor *c)
{
	int i = latest_index(c);

	return i < 0 ? NULL : &c[i];
}

/* At takeover: a copy torn by a dead owner loses its generation. */
void cursor_settle(struct bring_cursor *c)
{
	int i;

	for (i = 0; i < 2; i++)
		if (c[i].gen && !cursor_valid(&c[i]))
			store_relaxed(&c[i].gen, 0);
}

/*
 * Store generation latest + 1 into the other copy, checksum last: a
 * store cut short leaves that copy invalid and the latest one intact.
 */
void cursor_store(struct bring_cursor *c, uint64_t pos, const void *mark,
		  uint32_t mark_len)
{
	int last = latest_index(c);
	struct bring_cursor *t = &c[last == 0 ? 1 : 0];

	t->pos = pos;
	t->gen = (last < 0 ? 0 : c[last].gen) + 1;
	t->mark_len = mark_len;
	if (mark_len)
		memcpy(t->mark, mark, mark_len);
	/* The checksum after the fields it covers, for the compiler too. */
	__atomic_signal_fence(__ATOMIC_RELEASE);
	t->crc = cursor_crc(t);
}

int cursor_copy_mark(const struct bring_cursor *c, void *buf, size_t size)
{
	const struct bring_cursor *best = cursor_newest(c);

	if (!best || !best->mark_len)
		return 0;
	if (size < best->mark_len || !buf)
		return -ENOSPC;
	memcpy(buf, best->mark, best->mark_len);
	return (int)best->mark_len;
}

/* ------------------------------------------------------------------ */
/* Repair: a mark never outlives its record.                          */

bool mark_pid_alive(int32_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/*
 * Under the ring lock, before the BUSY record at @pos of a dead writer
 * becomes DISCARD: revoke the generation that names it. Positions are
 * never reused, so only that writer ever named @pos, and its slot is
 * found by the position alone. Not by the slot's owner pid: the pid may
 * have been reused since, or belong to another PID namespace, and look
 * alive (before 2026-12 such slots were skipped and kept a mark whose
 * record was discarded; repair_test
 * a_dead_named_writers_mark_is_revoked_whatever_its_pid_names).
 */
void mark_revoke_dead(struct bring *r, uint64_t pos)
{
	struct bring_hdr *h = r->hdr;
	int i;

	for (i = 0; i < BRING_WRITERS_MAX; i++) {
		struct bring_wslot *ws = &h->wslots[i];
		const struct bring_cursor *c;

		if (ws->state != SLOT_ACTIVE)
			continue;
		c = cursor_newest(ws->saved);
		if (c && c->pos == pos)
			store_relaxed(&((struct bring_cursor *)c)->gen, 0);
	}
}

/* ------------------------------------------------------------------ */
/* Named writers.                                                     */

static int find_wslot(const struct bring_hdr *h, const char *name)
{
	int i;

	for (i = 0; i < BRING_WRITERS_MAX; i++)
		if (h->wslots[i].state == SLOT_ACTIVE &&
		    !strncmp(h->wslots[i].name, name, BRING_NAME_MAX))
			return i;
	return -ENOENT;
}

/* Under lock: a new slot for @name, or -ENOSPC. */
static int new_wslot(struct bring_hdr *h, const char *name)
{
	struct bring_wslot *ws;
	int i;

	for (i = 0; i < BRING_WRITERS_MAX; i++) {
		ws = &h->wslots[i];
		if (ws->state != SLOT_FREE)
			continue;
		memset(ws->saved, 0, sizeof(ws->saved));
		memset(ws->name, 0, sizeof(ws->name));
		strcpy(ws->name, name);
		ws->owner = 0;
		ws->locked = 0;
		ws->state = SLOT_ACTIVE;
		return i;
	}
	return -ENOSPC;
}

/*
 * The record the newest mark of a dead writer names: if it is still BUSY
 * (the writer died between storing the mark and committing), repair it
 * now, which revokes the mark. Called without the lock (repair takes it).
 */
static void settle_last_record(struct bring *r, const char *name)
{
	const struct bring_cursor *c;
	struct bring_rec *rec;
	uint64_t pos = 0;
	bool busy = false;
	int i;

	ring_lock(r);
	i = find_wslot(r->hdr, name);
	/* A live holder: bring_writer_open() says -EBUSY. */
	if (i >= 0 && !slot_owner_alive(r, OWNER_WRITER, (unsigned int)i)) {
		cursor_settle(r->hdr->wslots[i].saved);
		c = cursor_newest(r->hdr->wslots[i].saved);
		if (c) {
			pos = c->pos;
			rec = rec_at(r, pos);
			/* Pairs with the release store of the tag. */
			busy = tag_matches(load_acquire(&rec->tag), pos,
					   r->key) &&
			       (word_lf(load_acquire(&rec->word)) & REC_BUSY);
		}
	}
	ring_unlock(r);
	if (busy)
		file_repair_busy(r, pos);
}

/* Take slot @name for this process: its index, -EBUSY or -ENOSPC. */
static int claim_wslot(struct bring *r, const char *name)
{
	struct bring_hdr *h = r->hdr;
	int i;

	ring_lock(r);
	i = find_wslot(h, name);
	if (i >= 0 && slot_owner_alive(r, OWNER_WRITER, (unsigned int)i))
		i = -EBUSY;
	else if (i == -ENOENT)
		i = new_wslot(h, name);
	if (i >= 0) {
		int err = slot_owner_take(r, OWNER_WRITER, (unsigned int)i);

		if (err) {
			ring_unlock(r);
			return err;
		}
		cursor_settle(h->wslots[i].saved);
		h->wslots[i].owner = getpid();
	}
	ring_unlock(r);
	return i;
}

/**
 * bring_writer_open() - open a named writer, whose records carry marks
 * @r: the ring
 * @name: 1 to BRING_NAME_MAX - 1 bytes
 * @opts: options, or NULL (declare with BRING_DECLARE_OPTS())
 *
 * Opens the writer called @name, creating it if it does not exist (at
 * most BRING_WRITERS_MAX per ring). Records committed with
 * bring_writer_commit() or bring_writer_push() carry a mark, and
 * bring_writer_mark() returns the mark of the last one committed: in a
 * file ring also after any crash, so that a source restarted with the
 * same name resumes exactly after what the ring holds. One handle per
 * name at a time; a name whose holder died is taken over (its last
 * record, if it was not committed, is dropped first). A writer handle
 * is used by one thread at a time.
 *
 * Return: the writer, or NULL with errno set: EINVAL (@r or @name NULL,
 * @name empty, bad @opts), ENAMETOOLONG, EBUSY (@name is open), ENOSPC
 * (BRING_WRITERS_MAX writers exist), ENOMEM.
 */
struct bring_writer *bring_writer_open(struct bring *r, const char *name,
				       const struct bring_writer_opts *opts)
{
	struct bring_writer *w = NULL;
	int err = r ? check_name(name) : -EINVAL;

	if (!err && (!OPTS_VALID(opts, bring_writer_opts) ||
		     OPTS_GET(opts, flags, 0)))
		err = -EINVAL;
	if (err)
		goto err;
	if (r->file)
		settle_last_record(r, name);
	w = calloc(1, sizeof(*w));
	if (!w) {
		err = -ENOMEM;
		goto err;
	}
	err = claim_wslot(r, name);
	if (err < 0)
		goto err;
	w->ring = r;
	w->slot = &r->hdr->wslots[err];
	return w;
err:
	free(w);
	errno = -err;
	return NULL;
}

/**
 * bring_writer_close() - close a writer handle, keeping its mark
 * @w: the writer, or NULL
 *
 * bring_writer_open() with the same name resumes with the same mark.
 */
void bring_writer_close(struct bring_writer *w)
{
	if (!w)
		return;
	ring_lock(w->ring);
	w->slot->owner = 0;
	slot_owner_release(w->ring, OWNER_WRITER,
			   (unsigned int)(w->slot - w->ring->hdr->wslots));
	ring_unlock(w->ring);
	free(w);
}

/**
 * bring_writer_remove() - delete a named writer and its mark
 * @r: the ring
 * @name: the writer's name
 *
 * Records already committed stay in the ring.
 *
 * Return: 0; -ENOENT if there is no such writer; -EBUSY if a live
 * process holds a handle on it; -EINVAL, -ENAMETOOLONG for bad names.
 */
int bring_writer_remove(struct bring *r, const char *name)
{
	struct bring_wslot *ws;
	int i = r ? check_name(name) : -EINVAL;

	if (i)
		return i;
	ring_lock(r);
	i = find_wslot(r->hdr, name);
	if (i >= 0 && slot_owner_alive(r, OWNER_WRITER, (unsigned int)i))
		i = -EBUSY;
	if (i >= 0) {
		ws = &r->hdr->wslots[i];
		ws->state = SLOT_FREE;
		ws->owner = 0;
		ws->locked = 0;
		memset(ws->saved, 0, sizeof(ws->saved));
		memset(ws->name, 0, sizeof(ws->name));
	}
	ring_unlock(r);
	return i < 0 ? i : 0;
}

/**
 * bring_writer_mark() - the mark of the writer's last committed record
 * @w: the writer
 * @buf: where to copy it
 * @size: bytes at @buf
 *
 * After any crash and reopen (file rings) it is exactly the mark of the
 * last record of this writer that is committed in the ring, or was and
 * has been consumed: no record without its mark, no mark without its
 * record.
 *
 * Return: the mark's length, 0 to BRING_MARK_MAX (0 when the writer
 * never committed a marked record, or committed the empty mark);
 * -ENOSPC if @size is too small; -EINVAL if @w is NULL.
 */
int bring_writer_mark(const struct bring_writer *w, void *buf, size_t size)
{
	if (!w)
		return -EINVAL;
	return cursor_copy_mark(w->slot->saved, buf, size);
}

/* A mark given to a call: -EINVAL (NULL with a length), -EMSGSIZE. */
int mark_check(const void *mark, size_t mark_len)
{
	if (!mark && mark_len)
		return -EINVAL;
	return mark_len > BRING_MARK_MAX ? -EMSGSIZE : 0;
}

static int check_mark(const struct bring_writer *w, const void *mark,
		      size_t mark_len)
{
	return w ? mark_check(mark, mark_len) : -EINVAL;
}

/**
 * bring_writer_commit() - commit a reservation together with a mark
 * @w: the writer
 * @resv: from bring_reserve() on the writer's ring
 * @len: payload bytes written, at most @resv->len
 * @mark: the mark, opaque bytes (NULL when @mark_len is 0)
 * @mark_len: 0 to BRING_MARK_MAX; 0 stores the empty mark
 *
 * As bring_commit(); the mark is committed with the record: with
 * BRING_DURABLE_ALWAYS both are durable when this returns, with
 * BRING_DURABLE_INTERVAL both become durable in the same flush.
 *
 * Return: 0; -EINVAL (@resv not a live reservation of the writer's
 * ring, @len too large, bad arguments); -EMSGSIZE (@mark_len above
 * BRING_MARK_MAX); -EIO (a file ring whose flush failed: the record is
 * committed, not durable).
 */
int bring_writer_commit(struct bring_writer *w, struct bring_resv *resv,
			size_t len, const void *mark, size_t mark_len)
{
	struct mark_stage ms;
	int err = check_mark(w, mark, mark_len);

	if (err)
		return err;
	ms.saved = w->slot->saved;
	ms.mark = mark;
	ms.mark_len = (uint32_t)mark_len;
	return ring_commit(w->ring, resv, len, &ms);
}

/**
 * bring_writer_push() - copy a message in and commit it with a mark
 * @w: the writer
 * @data: payload (NULL when @len is 0)
 * @len: payload bytes, at most bring_max_msg()
 * @mark: the mark (NULL when @mark_len is 0)
 * @mark_len: 0 to BRING_MARK_MAX
 * @timeout_ms: as in bring_push_timeout(): < 0 waits forever
 *
 * Return: 0, or the errors of bring_push_timeout() and
 * bring_writer_commit(). Nothing is stored when it fails before the
 * commit.
 */
int bring_writer_push(struct bring_writer *w, const void *data, size_t len,
		      const void *mark, size_t mark_len, int timeout_ms)
{
	struct bring_resv resv;
	int err = check_mark(w, mark, mark_len);

	if (!err && !data && len)
		err = -EINVAL;
	if (err)
		return err;
	err = bring_reserve(w->ring, len, &resv, timeout_ms);
	if (err)
		return err;
	if (len)
		memcpy(resv.data, data, len);
	return bring_writer_commit(w, &resv, len, mark, mark_len);
}
