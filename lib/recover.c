// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * recover.c - validate a ring file and bring it back after crashes.
 *
 * Run by the process that opens a file nobody else has open. Nothing in
 * the file is trusted before it is checked, and nothing is written
 * before the whole scan has decided that the file can be used: a file
 * that fails is left exactly as it was. Documentation/file-format.rst
 * describes the algorithm.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "internal.h"

static bool name_ok(const char *name)
{
	return memchr(name, '\0', BRING_NAME_MAX) != NULL;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/*
 * A file of an older layout is refused, not converted: its header is
 * smaller, so converting means moving every record. Say what to do.
 */
static const char *old_layout(uint32_t version)
{
	static __thread char why[200];

	snprintf(why, sizeof(why),
		 "layout version %u (bring 0.1/0.2) is older than this "
		 "library's %u (bring 0.3 and later, marks): drain it with "
		 "the old bring, then remove it and let it be created again",
		 version, BRING_LAYOUT_VERSION);
	return why;
}

/* The constant part; @h may be a copy read with pread(). */
int file_check_header(const struct bring_hdr *h, uint64_t file_size,
		      const char *path)
{
	const struct bring_hdr_const *c = &h->c;
	const char *why;
	int err = -EINVAL;

	if (c->magic != BRING_MAGIC)
		why = "not a bring ring (bad magic)";
	else if (bring_crc32c(0, c, sizeof(*c)) != h->c_crc)
		err = -EBADMSG, why = "header checksum mismatch";
	else if (c->version < BRING_LAYOUT_UPGRADE)
		why = old_layout(c->version);
	else if (c->version > BRING_LAYOUT_VERSION)
		why = "unsupported layout version (made by a newer bring)";
	else if (c->hdr_size != BRING_HDR_SIZE || !is_pow2(c->capacity) ||
		 c->capacity < BRING_CAPACITY_MIN ||
		 c->capacity > BRING_CAPACITY_MAX)
		why = "bad header or capacity size";
	else if (file_size != c->hdr_size + c->capacity)
		why = "file size does not match the header";
	else if (c->max_msg > BRING_MSG_MAX ||
		 rec_footprint_len(c->max_msg) > c->capacity)
		why = "bad max_msg";
	else if (!name_ok(c->name) || c->file != 1 ||
		 c->durability > DURABLE_ALWAYS || (c->key & TAG_FLAGS) ||
		 c->flags & ~(unsigned int)(BRING_NO_DEFAULT_READER |
					    BRING_SKIP_DAMAGED))
		why = "bad header field";
	else
		return 0;
	file_printf("bring: %s: %s\n", path, why);
	return err;
}

/* ------------------------------------------------------------------ */

#define CURSOR_LOST UINT64_MAX
#define POS_MAX (1ULL << 62) /* the furthest head recovery accepts */

enum fix_kind {
	FIX_DEAD, /* BUSY record of a dead writer: make it DISCARD */
	FIX_HOLE, /* claimed, never tagged: a DISCARD record over it */
	FIX_DAMAGED, /* fails its checks inside committed data */
};

struct fixup {
	uint64_t pos;
	uint64_t bytes;
	enum fix_kind kind;
};

struct scan {
	struct bring *r;
	const char *path;
	uint64_t tail; /* oldest position any reader needs */
	uint64_t limit; /* stored head: nothing was claimed beyond it */
	uint64_t end; /* end of the valid records */
	uint64_t jf; /* the stored lap jump's start, if plausible; else 0 */
	uint64_t ef; /* the escape from jf (find_escape()); else 0 */
	struct cursor_ref {
		uint64_t pos; /* CURSOR_LOST: both saved copies damaged */
		int slot;
	} cursors[BRING_SLOTS]; /* sorted by pos once the tail is known */
	int ncursors;
	uint64_t drop_slots; /* duplicates merged into another slot */
	struct fixup *fix;
	size_t nfix, capfix;
	uint64_t damaged;
	bool skip;
	/* Writer mark generations to revoke: bit 2 * slot + copy. */
	uint64_t revoke[2 * BRING_WRITERS_MAX / 64];
};

enum rec_check {
	CHECK_OK,
	CHECK_SKIP, /* DISCARD */
	CHECK_DEAD, /* BUSY: its writer died */
	CHECK_BAD,
};

static enum rec_check check_record(struct scan *s, uint64_t pos,
				   uint64_t *fp)
{
	struct bring *r = s->r;
	struct bring_rec *rec = rec_at(r, pos);
	uint32_t lf = rec->len_flags;

	if (!tag_matches(rec->tag, pos, r->key))
		return CHECK_BAD;
	*fp = lf & REC_BUSY ? rec_footprint_len(lf & REC_LEN_MASK) :
			      rec_footprint(lf, rec->tag);
	if (pos + *fp > s->limit)
		return CHECK_BAD;
	if (lf & REC_BUSY)
		return (lf & REC_LEN_MASK) > r->max_msg ? CHECK_BAD : CHECK_DEAD;
	if (lf & REC_DISCARD)
		return rec->crc == rec_crc(rec->tag, lf, NULL, 0) ? CHECK_SKIP :
								   CHECK_BAD;
	if ((lf & REC_LEN_MASK) > r->max_msg ||
	    rec->crc != rec_crc(rec->tag, lf, rec + 1, lf & REC_LEN_MASK))
		return CHECK_BAD;
	return CHECK_OK;
}

static int add_fix(struct scan *s, uint64_t pos, uint64_t bytes,
		   enum fix_kind kind)
{
	struct fixup *v;

	if (s->nfix == s->capfix) {
		s->capfix = s->capfix ? 2 * s->capfix : 16;
		v = realloc(s->fix, s->capfix * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->fix = v;
	}
	s->fix[s->nfix++] = (struct fixup){ pos, bytes, kind };
	return 0;
}

/*
 * Does a claim start at @end (claim_pick_end())? The stored head, the
 * trusted jump, an intent starting there, or a header tagged there.
 */
static bool scan_boundary(const void *arg, uint64_t end)
{
	const struct scan *s = arg;
	const struct bring_hdr *h = s->r->hdr;
	int i;

	if (end == s->limit || (s->jf && end == s->jf) ||
	    (s->ef && end == s->ef))
		return true;
	for (i = 0; i < BRING_INTENTS; i++)
		if (h->intents[i].pos == (end | (1ULL << 63)))
			return true;
	return tag_matches(rec_at(s->r, end)->tag, end, s->r->key);
}

/* A claim that was in flight when its writer died, covering @pos. */
static uint64_t hole_end(struct scan *s, uint64_t pos)
{
	struct bring_hdr *h = s->r->hdr;
	struct claim_pick pick = { .pos = pos };
	int i;

	for (i = 0; i < BRING_INTENTS; i++) {
		uint64_t start = h->intents[i].pos, need = h->intents[i].need;

		if (!(start & (1ULL << 63)))
			continue;
		start &= ~(1ULL << 63);
		if (pos >= start && pos < start + need &&
		    start + need <= s->limit && !((start | need) & 7))
			claim_pick_offer(&pick, start, start + need, false);
	}
	return claim_pick_end(&pick, scan_boundary, s);
}

/* The next position after @pos where a valid record starts, or 0. */
static uint64_t next_valid(struct scan *s, uint64_t pos)
{
	uint64_t q, fp;

	for (q = pos + 16; q + REC_HDR_SIZE <= s->limit; q += 8)
		if (tag_matches(rec_at(s->r, q)->tag, q, s->r->key) &&
		    check_record(s, q, &fp) != CHECK_BAD)
			return q;
	return 0;
}

/* A cursor must sit on a record boundary. */
static int check_cursors_upto(struct scan *s, uint64_t pos, int *k)
{
	for (; *k < s->ncursors && s->cursors[*k].pos <= pos; (*k)++) {
		if (s->cursors[*k].pos == pos)
			continue;
		file_printf("bring: %s: reader cursor at offset %llu is not "
			    "at a record boundary\n",
			    s->path, (unsigned long long)s->cursors[*k].pos);
		if (!s->skip)
			return -EBADMSG;
		s->cursors[*k].pos = pos; /* deliver again from here */
	}
	return 0;
}

/* Handle an invalid record at *@pos; returns 1 at the torn tail. */
static int invalid_at(struct scan *s, uint64_t *pos)
{
	uint64_t end = hole_end(s, *pos), next;
	int err;

	if (end) {
		err = add_fix(s, *pos, end - *pos, FIX_HOLE);
		*pos = end;
		return err;
	}
	next = next_valid(s, *pos);
	if (!next)
		return 1; /* a torn tail: nothing valid follows */
	file_printf("bring: %s: damaged record at offset %llu (data offset "
		    "%llu), %llu bytes\n",
		    s->path, (unsigned long long)*pos,
		    (unsigned long long)(BRING_HDR_SIZE + (*pos & s->r->mask)),
		    (unsigned long long)(next - *pos));
	if (!s->skip)
		return -EBADMSG;
	s->damaged++;
	err = add_fix(s, *pos, next - *pos, FIX_DAMAGED);
	*pos = next;
	return err;
}

/* Walk the records from tail to the stored head; write nothing. */
static int scan_records(struct scan *s)
{
	uint64_t pos = s->tail, fp;
	int k = 0, err;

	while (pos < s->limit) {
		err = check_cursors_upto(s, pos, &k);
		if (err)
			return err;
		switch (check_record(s, pos, &fp)) {
		case CHECK_DEAD:
			err = add_fix(s, pos, fp, FIX_DEAD);
			if (err)
				return err;
			/* fallthrough */
		case CHECK_OK:
		case CHECK_SKIP:
			pos += fp;
			continue;
		case CHECK_BAD:
			break;
		}
		if (s->jf && pos == s->jf) {
			pos = jump_to(s->r, pos); /* nothing was written here */
			continue;
		}
		if (s->ef && pos == s->ef) {
			pos = s->jf + s->r->capacity; /* nor here */
			continue;
		}
		err = invalid_at(s, &pos);
		if (err < 0)
			return err;
		if (err)
			break;
	}
	s->end = pos;
	return check_cursors_upto(s, pos, &k);
}

static void apply_fixes(struct scan *s)
{
	struct bring *r = s->r;
	size_t i;

	for (i = 0; i < s->nfix; i++) {
		struct fixup *f = &s->fix[i];
		struct bring_rec *rec = rec_at(r, f->pos);

		if (f->kind == FIX_DEAD) {
			rec->len_flags = (rec->len_flags & ~REC_BUSY) |
					 REC_DISCARD;
			rec->tag &= ~TAG_SLACK8;
		} else {
			rec->len_flags = (uint32_t)(f->bytes - REC_HDR_SIZE) |
					 REC_DISCARD;
			rec->tag = f->pos ^ r->key;
		}
		rec->crc = rec_crc(rec->tag, rec->len_flags, NULL, 0);
	}
}

/*
 * The torn tail [end, limit) is cut off: no header in it may keep a tag
 * that matches its position. Else a later claim at the same position,
 * its writer stopped before it wrote its own header, would expose the
 * cut record to readers as if it were committed. Every 8-byte step is
 * checked: the cut range holds no trustworthy lengths to walk by.
 */
static void untag_cut_range(struct scan *s)
{
	struct bring *r = s->r;
	uint64_t pos;

	for (pos = s->end; pos + REC_HDR_SIZE <= s->limit; pos += 8) {
		struct bring_rec *rec = rec_at(r, pos);

		/* A position >= 2^63: never one a writer claims. */
		if (tag_matches(rec->tag, pos, r->key))
			rec->tag = ~(pos ^ r->key) & ~TAG_FLAGS;
	}
}

/*
 * Slot @i names a reader an earlier slot names already: -EBADMSG, or
 * with BRING_SKIP_DAMAGED keep one slot at the older of the two cursors
 * (nothing is skipped) and free the other. 0 when the name is unique.
 */
static int merge_duplicate(struct scan *s, int i, uint64_t pos)
{
	struct bring_hdr *h = s->r->hdr;
	int j;

	for (j = 0; j < s->ncursors; j++) {
		struct cursor_ref *c = &s->cursors[j];

		if (strncmp(h->slots[c->slot].name, h->slots[i].name,
			    BRING_NAME_MAX))
			continue;
		file_printf("bring: %s: reader slots %d and %d are both "
			    "'%s'\n",
			    s->path, c->slot, i, h->slots[i].name);
		if (!s->skip)
			return -EBADMSG;
		/* CURSOR_LOST (restart at the oldest message) is the oldest. */
		if (pos == CURSOR_LOST ||
		    (c->pos != CURSOR_LOST && pos < c->pos))
			c->pos = pos;
		s->drop_slots |= 1ULL << i;
		s->damaged++;
		return 1;
	}
	return 0;
}

/* Read the slot table; collect the readers' cursors. */
static int read_slots(struct scan *s)
{
	struct bring_hdr *h = s->r->hdr;
	int i, err;

	s->ncursors = 0;
	for (i = 0; i < BRING_SLOTS; i++) {
		struct bring_slot *sl = &h->slots[i];
		uint64_t pos;

		if (sl->state == SLOT_FREE)
			continue;
		if (sl->state != SLOT_ACTIVE || !name_ok(sl->name)) {
			file_printf("bring: %s: reader slot %d is damaged\n",
				    s->path, i);
			return -EBADMSG;
		}
		err = file_load_cursor(sl, &pos);
		if (err) {
			file_printf("bring: %s: reader '%s': both cursor "
				    "copies are damaged\n",
				    s->path, sl->name);
			if (!s->skip)
				return err;
			pos = CURSOR_LOST;
		}
		err = merge_duplicate(s, i, pos);
		if (err < 0)
			return err;
		if (err)
			continue;
		s->cursors[s->ncursors].slot = i;
		s->cursors[s->ncursors++].pos = pos;
	}
	return 0;
}

static int cmp_cursor(const void *a, const void *b)
{
	uint64_t x = ((const struct cursor_ref *)a)->pos;
	uint64_t y = ((const struct cursor_ref *)b)->pos;

	return x < y ? -1 : x > y;
}

/*
 * The last lap jump (Documentation/file-format.rst): trusted only where
 * it can be one: in a ring large enough to jump, aligned, past the start
 * of its lap, ending within the stored head, and with no record at its
 * start. A jump is published after its claim's CAS on head and before
 * any record of the claim is written, so no record is ever written in
 * [jf, jump_to(jf)); a crash before the jump was stored left an intent
 * over [jf, claim end) instead, which invalid_at() repairs as a hole.
 */
static void find_jump(struct scan *s)
{
	struct bring *r = s->r;
	uint64_t jf = r->hdr->jump_from;

	s->jf = 0;
	if (r->capacity >= JUMP_CAPACITY_MIN && jf && !(jf & 7) &&
	    (jf & r->mask) && jump_to(r, jf) <= s->limit &&
	    !tag_matches(rec_at(r, jf)->tag, jf, r->key))
		s->jf = jf;
}

/*
 * The escape from the trusted jump (Documentation/ring.rst, "Escape
 * jumps"), if any: claims skipped from ef to jf plus the capacity, over
 * the bytes of a reader stopped before jf. Trusted when it can be one:
 * aligned, past the jump's end and before jf plus the capacity, which
 * the stored head reached, and no record at its start (an escape is
 * published after its claim's CAS and before any of its records is
 * written, so nothing is ever written at ef in that lap). An escaper
 * killed between its CAS and its store left its intent instead, from
 * ef to past jf plus the capacity, and no record at ef: that is an
 * escape too. A discard at ef would be no repair: its header could lie
 * on the stopped reader's record, a capacity back.
 */
static void find_escape(struct scan *s)
{
	struct bring *r = s->r;
	uint64_t ef = r->hdr->escape_from, to = s->jf + r->capacity;
	int i;

	s->ef = 0;
	/*
	 * Layout 2: its libraries never escaped, and a dead claim of theirs
	 * taken for an escape would leave a file they misread should the
	 * upgrade after this recovery not happen.
	 */
	if (!s->jf || to > s->limit ||
	    r->hdr->c.version < BRING_LAYOUT_VERSION)
		return;
	for (i = -1; i < BRING_INTENTS && !s->ef; i++) {
		if (i >= 0) {
			ef = r->hdr->intents[i].pos;
			if (!(ef & (1ULL << 63)))
				continue;
			ef &= ~(1ULL << 63);
		}
		if (!ef || (ef & 7) || ef <= jump_to(r, s->jf) || ef >= to ||
		    tag_matches(rec_at(r, ef)->tag, ef, r->key))
			continue;
		/* The stored one, or a claim from ef over jf + capacity. */
		if (i < 0 || hole_end(s, ef) > to)
			s->ef = ef;
	}
}

/*
 * Where the scan starts. Data older than both the stored tail and one
 * capacity behind the stored head may have been overwritten: a cursor
 * below that (an older saved copy, after the newer one was damaged) moves
 * up to it; those messages had been shifted. A lost cursor restarts at
 * the oldest message. A cursor beyond the stored head reached the disk
 * before the data it covered; it is clamped after the scan.
 */
static int find_tail(struct scan *s)
{
	struct bring_hdr *h = s->r->hdr;
	struct ring_jumps jumps = { 0 };
	uint64_t lower, tail;
	int i;

	s->limit = head_pos(h->head);
	if (s->limit > POS_MAX) {
		/*
		 * 2^62 bytes take 146 years at 1 GB/s: a head this far
		 * is damage, and one near 2^63 would run pushes into
		 * the close flag.
		 */
		file_printf("bring: %s: head %llu is beyond 2^62\n", s->path,
			    (unsigned long long)s->limit);
		return -EBADMSG;
	}
	lower = s->limit > s->r->capacity ? s->limit - s->r->capacity : 0;
	if ((s->limit | h->tail_cache) & 7) {
		file_printf("bring: %s: head or tail not 8-byte aligned\n",
			    s->path);
		return -EBADMSG;
	}
	if (h->tail_cache > s->limit) {
		file_printf("bring: %s: head and tail are inconsistent\n",
			    s->path);
		return -EBADMSG;
	}
	find_jump(s);
	find_escape(s);
	jumps.from = s->jf;
	jumps.esc = s->ef;
	/*
	 * After an escape, head may be up to S plus the capacity, while a
	 * reader stopped before the jump still has [P, jf) to read, from ef
	 * less the capacity at the earliest (the claims before the escape
	 * stopped behind it).
	 */
	if (s->ef)
		lower = s->ef - s->r->capacity;
	if (jump_cursor(s->r, &jumps, h->tail_cache) > lower)
		lower = jump_cursor(s->r, &jumps, h->tail_cache);
	tail = s->ncursors ? s->limit : lower;
	for (i = 0; i < s->ncursors; i++) {
		struct cursor_ref *c = &s->cursors[i];

		/* At the jump's start: the reader goes on at its end. */
		if (c->pos != CURSOR_LOST)
			c->pos = jump_cursor(s->r, &jumps, c->pos);
		if (c->pos == CURSOR_LOST || c->pos < lower || (c->pos & 7))
			c->pos = lower;
		if (c->pos < tail)
			tail = c->pos;
	}
	s->tail = tail;
	qsort(s->cursors, (size_t)s->ncursors, sizeof(s->cursors[0]),
	      cmp_cursor);
	return 0;
}

/* Is there a committed record at @pos, inside the valid records? */
static bool committed_at(struct scan *s, uint64_t pos)
{
	uint64_t fp;

	return pos >= s->tail && pos < s->end && !(pos & 7) &&
	       check_record(s, pos, &fp) == CHECK_OK;
}

/*
 * A writer's newest mark must name a record that is committed in the
 * ring, or was consumed by every reader (lib/mark.c): a generation that
 * names a dead writer's BUSY record (killed between storing the mark and
 * committing) or a record lost with a torn tail is revoked, and the
 * older generation is checked in turn.
 */
static int check_writer(struct scan *s, int i)
{
	struct bring_wslot *ws = &s->r->hdr->wslots[i];
	struct bring_cursor c[2];
	const struct bring_cursor *best;
	uint64_t fp;

	if (ws->state == SLOT_FREE)
		return 0;
	if (ws->state != SLOT_ACTIVE || !name_ok(ws->name)) {
		file_printf("bring: %s: writer slot %d is damaged\n", s->path,
			    i);
		return -EBADMSG;
	}
	memcpy(c, ws->saved, sizeof(c));
	while ((best = cursor_newest(c))) {
		if (best->pos < s->tail || committed_at(s, best->pos))
			break;
		if (best->pos >= s->limit || (best->pos & 7) ||
		    check_record(s, best->pos, &fp) != CHECK_DEAD)
			file_printf("bring: %s: writer '%s': the record of its "
				    "mark (offset %llu) is lost; going back to "
				    "the mark before\n",
				    s->path, ws->name,
				    (unsigned long long)best->pos);
		s->revoke[i / 32] |= 1ULL << (2 * (i % 32) + (best - c));
		c[best - c].gen = 0;
	}
	return 0;
}

static int check_writers(struct scan *s)
{
	int i, err;

	for (i = 0; i < BRING_WRITERS_MAX; i++) {
		err = check_writer(s, i);
		if (err)
			return err;
	}
	return 0;
}

static void restore_writers(struct scan *s)
{
	struct bring_wslot *ws;
	int i, k;

	for (i = 0; i < BRING_WRITERS_MAX; i++) {
		ws = &s->r->hdr->wslots[i];
		ws->owner = 0;
		for (k = 0; k < 2; k++)
			if (s->revoke[i / 32] & (1ULL << (2 * (i % 32) + k)))
				ws->saved[k].gen = 0;
		cursor_settle(ws->saved);
	}
}

/* Put the checked cursors back, clamped into [tail, end]. */
static void restore_slots(struct scan *s)
{
	struct bring_hdr *h = s->r->hdr;
	uint64_t mask = 0;
	int i;

	for (i = 0; i < BRING_SLOTS; i++) {
		h->slots[i].owner = 0;
		if (s->drop_slots & (1ULL << i))
			h->slots[i].state = SLOT_FREE;
	}
	for (i = 0; i < s->ncursors; i++) {
		struct bring_slot *sl = &h->slots[s->cursors[i].slot];
		uint64_t pos = s->cursors[i].pos;

		if (pos > s->end)
			pos = s->end;
		sl->pos = pos;
		/* The mark of the copy that was loaded goes with it. */
		cursor_settle(sl->saved);
		file_save_cursor(sl, pos);
		mask |= 1ULL << s->cursors[i].slot;
	}
	h->readers_mask = mask;
}

/* The state that only means something while processes run. */
static void reset_runtime(struct scan *s)
{
	struct bring_hdr *h = s->r->hdr;

	h->head = s->end;
	h->tail_cache = s->tail;
	/*
	 * A jump the valid records do not reach past is forgotten (as is
	 * one that cannot be a jump): the next claims may write records at
	 * its start again, and no cursor counts as past it.
	 */
	if (!s->jf || s->end < jump_to(s->r, s->jf))
		h->jump_from = 0;
	/* The same for the escape: kept if the records reach its end. */
	if (!s->ef || s->end < s->jf + s->r->capacity)
		h->escape_from = 0;
	else
		h->escape_from = s->ef;
	h->escaping = 0;
	h->durable_pos = s->end;
	h->flush_started = 0;
	h->flush_done = 0;
	h->flush_seq = 0;
	h->sync_asked = 0;
	h->sync_taken = 0;
	h->sync_batch = 0;
	h->batch_seq = 0;
	h->flush_ns = 0;
	h->data_seq = 0;
	h->space_seq = 0;
	h->space_want = UINT64_MAX;
	h->poisoned = 0;
	h->damaged += s->damaged;
	memset(h->intents, 0, sizeof(h->intents));
	ring_init_locks(h);
}

int file_recover(struct bring *r, const char *path)
{
	struct scan s = { .r = r, .path = path, .skip = r->skip_damaged };
	int err;

	err = read_slots(&s);
	if (!err)
		err = find_tail(&s);
	if (!err)
		err = scan_records(&s);
	if (!err)
		err = check_writers(&s);
	if (err)
		goto out;
	if (s.end < s.limit)
		file_printf("bring: %s: torn tail at offset %llu truncated "
			    "(%llu bytes)\n",
			    path, (unsigned long long)s.end,
			    (unsigned long long)(s.limit - s.end));
	apply_fixes(&s);
	untag_cut_range(&s);
	reset_runtime(&s);
	restore_slots(&s);
	restore_writers(&s);
out:
	free(s.fix);
	return err;
}
