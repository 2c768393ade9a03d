// SPDX-License-Identifier: GPL-2.0
/*
 * open_fuzz.c - libFuzzer target for bring_open()'s validation and
 * recovery of a ring file (lib/file.c, lib/recover.c).
 *
 * An input is one of:
 *
 *  - a whole ring file: it starts with the ring magic ("__BRING1");
 *
 *  - a patch list over a valid "base" ring file that the library made at
 *    start-up (see make_bases(): rings with messages, wrapped readers,
 *    aborted and short commits, a dead writer's reservation, a claim that
 *    was never written, durability modes), so that mutations explore the
 *    header, the reader slots, the claim intents and the records of a
 *    real file rather than random bytes:
 *
 *      byte 0    flags: FIX_HDR_CRC, FIX_CURSOR_CRC, FIX_RECORD_CRC
 *                (recompute those checksums after patching, so that the
 *                fields they protect can be explored)
 *      byte 1    base number (modulo NR_BASES)
 *      then ops  op byte: kind = op & 7, see apply_op(); a field is
 *                named by 3 bytes (area, a, b): a header field, a slot's
 *                field, an intent's field, a record's field (the a-th
 *                record of the base) or an absolute offset.
 *
 * The file is written to a temporary directory (a real file: bring_open()
 * refuses symbolic links such as /proc/self/fd/N), then opened with
 * bring_open(path, 0, ...) without and, on a fresh copy, with
 * BRING_SKIP_DAMAGED. An open that succeeds is used: every reader is
 * drained with timeout 0, a message is pushed, and every reader must then
 * read exactly that message. What is checked besides the sanitizers:
 * bring_open() fails only with EINVAL or EBADMSG; messages are at most
 * max_msg bytes, at increasing 8-byte-aligned positions; a push into the
 * recovered ring is readable by every reader.
 *
 * fuzz/mkcorpus.c writes the seed corpus; BRING_FUZZ_DUMP_BASES=DIR makes
 * this program write its base files there (raw seeds) and exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bring.h"
#include "crc32c.h"
#include "internal.h"

#define CAP 4096
#define FILE_SIZE (BRING_HDR_SIZE + CAP)
#define NR_BASES 5
#define MAX_RECS 512
#define DEAD_PID 0x7ffffff0 /* above any pid_max: never alive */

enum {
	FIX_HDR_CRC = 1,
	FIX_CURSOR_CRC = 2,
	FIX_RECORD_CRC = 4,
};

struct base {
	uint8_t bytes[FILE_SIZE];
	uint64_t recs[MAX_RECS]; /* positions of its records, oldest first */
	unsigned int nr_recs;
};

static struct base bases[NR_BASES];
static uint8_t file[FILE_SIZE];
static char dir[128], path[192];

/* ------------------------------------------------------------------ */
/* A fixed key while the bases are made, so that inputs reproduce.    */

static bool fixed_random;

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	if (fixed_random) {
		memset(buf, 0x5a, len);
		return (ssize_t)len;
	}
	return syscall(SYS_getrandom, buf, len, flags);
}

static void report_state(void);

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "open_fuzz: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	report_state();
	abort();
}

/* The library's diagnostics of the last open, shown when a check fails. */
static char diag[2048];
static size_t diag_len;

static int collect(const char *fmt, va_list ap)
{
	int n;

	if (diag_len >= sizeof(diag) - 1)
		return 0;
	n = vsnprintf(diag + diag_len, sizeof(diag) - diag_len, fmt, ap);
	if (n > 0)
		diag_len += (size_t)n < sizeof(diag) - diag_len ?
				    (size_t)n : sizeof(diag) - 1 - diag_len;
	return n;
}

static struct bring *cur_ring;
static unsigned int cur_flags;

/* Where the ring and its readers are, for a failure report. */
static void report_state(void)
{
	const struct bring_hdr *h;
	int i;

	fprintf(stderr, "open_fuzz: opened with flags %#x; library said: %s\n",
		cur_flags, diag_len ? diag : "(nothing)\n");
	if (!cur_ring)
		return;
	h = cur_ring->hdr;
	fprintf(stderr, "open_fuzz: head %llu, tail_cache %llu, max_msg %llu\n",
		(unsigned long long)h->head,
		(unsigned long long)h->tail_cache,
		(unsigned long long)cur_ring->max_msg);
	for (i = 0; i < BRING_SLOTS; i++)
		if (h->slots[i].state == SLOT_ACTIVE)
			fprintf(stderr, "open_fuzz: slot %d '%.31s' at %llu\n",
				i, h->slots[i].name,
				(unsigned long long)h->slots[i].pos);
}

/* ------------------------------------------------------------------ */
/* The bases.                                                         */

static void push_len(struct bring *r, size_t len)
{
	static uint8_t buf[CAP];
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(len + i * 7);
	if (bring_push_timeout(r, buf, len, 0))
		die("base: push of %zu bytes failed", len);
}

static void shift_n(struct bring_reader *rd, unsigned int n)
{
	struct bring_msg msg;

	while (n--)
		if (bring_reader_next(rd, &msg, 0) || bring_reader_shift(rd))
			die("base: shift failed");
}

static void commit_short(struct bring *r, size_t len, size_t used)
{
	struct bring_resv resv;

	if (bring_reserve(r, len, &resv, 0))
		die("base: reserve failed");
	memset(resv.data, 'c', used);
	if (bring_commit(r, &resv, used))
		die("base: commit failed");
}

static void abort_one(struct bring *r, size_t len)
{
	struct bring_resv resv;

	if (bring_reserve(r, len, &resv, 0) || bring_abort(r, &resv))
		die("base: abort failed");
}

/* The messages of a wrapped ring with two readers, and odd records. */
static void wrapped_traffic(struct bring *r, unsigned int laps)
{
	struct bring_reader *a = bring_reader_open(r, "a");
	struct bring_reader *b = bring_reader_open(r, "b");
	unsigned int i;

	if (!a || !b)
		die("base: reader open failed");
	for (i = 0; i < 30 * laps; i++) {
		push_len(r, (i * 37) % 300);
		shift_n(a, 1);
		if (i >= 3)
			shift_n(b, 1);
	}
	abort_one(r, 40);
	commit_short(r, 64, 56);	/* 8 bytes of slack: TAG_SLACK8 */
	commit_short(r, 200, 100);	/* the rest: a DISCARD record */
	push_len(r, 0);
	shift_n(a, 3);
	bring_reader_close(a);
	bring_reader_close(b);
}

static void make_base(unsigned int n, const char *p)
{
	BRING_OPTS(opts, .name = "fuzz");
	struct bring_reader *rd;
	struct bring_resv resv;
	struct bring_hdr *h;
	struct bring *r;
	uint64_t pos;

	switch (n) {
	case 0: /* default reader, a few messages, two read */
		r = bring_open(p, CAP, &opts);
		if (!r)
			break;
		push_len(r, 0);
		push_len(r, 1);
		push_len(r, 8);
		push_len(r, 100);
		push_len(r, 7);
		shift_n(bring_default_reader(r), 2);
		bring_free(r);
		return;
	case 1: /* two named readers, three laps, odd records */
		opts.flags = BRING_NO_DEFAULT_READER;
		r = bring_open(p, CAP, &opts);
		if (!r)
			break;
		wrapped_traffic(r, 3);
		bring_free(r);
		return;
	case 2: /* a crash: a dead writer's reservation, an unwritten claim */
		opts.flags = BRING_NO_DEFAULT_READER;
		r = bring_open(p, CAP, &opts);
		if (!r)
			break;
		wrapped_traffic(r, 1);
		if (bring_reserve(r, 48, &resv, 0))
			die("base: reserve failed");
		rec_at(r, resv.seq)->crc = DEAD_PID; /* its writer */
		push_len(r, 10);
		h = r->hdr;
		pos = h->head;
		h->intents[7] = (struct bring_intent){
			.pos = pos | (1ULL << 63), .need = 64,
			.pid = DEAD_PID, .tid = DEAD_PID,
		};
		h->head = pos + 64;
		h->slots[1].owner = DEAD_PID;
		bring_free(r);
		return;
	case 3: /* durability interval, closed */
		opts.durability = BRING_DURABLE_INTERVAL;
		opts.flush_ms = 5;
		r = bring_open(p, CAP, &opts);
		if (!r)
			break;
		push_len(r, 33);
		push_len(r, 1000);
		push_len(r, 5);
		shift_n(bring_default_reader(r), 1);
		bring_close(r);
		bring_free(r);
		return;
	case 4: /* durability always, one reader with many cursor saves */
		opts.durability = BRING_DURABLE_ALWAYS;
		opts.flags = BRING_NO_DEFAULT_READER;
		opts.max_msg = 512;
		r = bring_open(p, CAP, &opts);
		if (!r)
			break;
		rd = bring_reader_open(r, "x");
		if (!rd)
			break;
		for (pos = 0; pos < 21; pos++)
			push_len(r, 20 + pos);
		shift_n(rd, 20);
		bring_reader_close(rd);
		bring_free(r);
		return;
	}
	die("base %u: %s", n, strerror(errno));
}

/* Record positions from the tail to the head, as the base has them. */
static void list_records(struct base *b)
{
	const struct bring_hdr *h = (const void *)b->bytes;
	uint64_t pos = h->tail_cache, head = h->head & ~HEAD_CLOSED;
	unsigned int i;

	for (i = 1; i < BRING_SLOTS; i++)
		if (h->slots[i].state == SLOT_ACTIVE && h->slots[i].pos < pos)
			pos = h->slots[i].pos;
	if (h->slots[0].state == SLOT_ACTIVE && h->slots[0].pos < pos)
		pos = h->slots[0].pos;
	b->nr_recs = 0;
	while (pos < head && b->nr_recs < MAX_RECS) {
		const struct bring_rec *rec = (const void *)
			(b->bytes + BRING_HDR_SIZE + (pos & (CAP - 1)));

		b->recs[b->nr_recs++] = pos;
		if (!tag_matches(rec->tag, pos, h->c.key))
			break; /* the unwritten claim: the rest is its */
		pos += rec_footprint(rec->len_flags, rec->tag);
	}
}

static void make_bases(void)
{
	char p[256];
	unsigned int n;
	int fd;

	for (n = 0; n < NR_BASES; n++) {
		snprintf(p, sizeof(p), "%s/base%u", dir, n);
		unlink(p);
		fixed_random = true;
		make_base(n, p);
		fixed_random = false;
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0 ||
		    pread(fd, bases[n].bytes, FILE_SIZE, 0) != FILE_SIZE)
			die("base %u: read back failed", n);
		close(fd);
		unlink(p);
		list_records(&bases[n]);
	}
}

/* ------------------------------------------------------------------ */
/* Patching.                                                          */

#define HDR_FIELD(f) { offsetof(struct bring_hdr, f), \
		       sizeof(((struct bring_hdr *)0)->f) }

static const struct { size_t off, len; } hdr_fields[] = {
	HDR_FIELD(head), HDR_FIELD(tail_cache), HDR_FIELD(readers_mask),
	HDR_FIELD(msgs_in), HDR_FIELD(bytes_in), HDR_FIELD(durable_pos),
	HDR_FIELD(poisoned), HDR_FIELD(damaged), HDR_FIELD(space_want),
	HDR_FIELD(data_seq), HDR_FIELD(space_seq), HDR_FIELD(flush_started),
	HDR_FIELD(flush_done), HDR_FIELD(flush_seq), HDR_FIELD(lock),
	HDR_FIELD(flush_lock),
	HDR_FIELD(c.magic), HDR_FIELD(c.version), HDR_FIELD(c.hdr_size),
	HDR_FIELD(c.capacity), HDR_FIELD(c.max_msg), HDR_FIELD(c.key),
	HDR_FIELD(c.flags), HDR_FIELD(c.durability), HDR_FIELD(c.flush_ms),
	HDR_FIELD(c.file), HDR_FIELD(c.name), HDR_FIELD(c_crc),
};

#define SLOT_FIELD(f) { offsetof(struct bring_slot, f), \
			sizeof(((struct bring_slot *)0)->f) }

static const struct { size_t off, len; } slot_fields[] = {
	SLOT_FIELD(pos), SLOT_FIELD(saved[0].pos), SLOT_FIELD(saved[0].gen),
	SLOT_FIELD(saved[0].crc), SLOT_FIELD(saved[1].pos),
	SLOT_FIELD(saved[1].gen), SLOT_FIELD(saved[1].crc), SLOT_FIELD(state),
	SLOT_FIELD(owner), SLOT_FIELD(name), SLOT_FIELD(msgs_out),
};

/* Where a field reference points in the file: *@len bytes at the result. */
static size_t field_at(const struct base *b, const uint8_t *ref, size_t *len)
{
	unsigned int a = ref[1], x = ref[2];
	size_t off;

	*len = 8;
	switch (ref[0] % 5) {
	case 0: /* the header */
		a %= sizeof(hdr_fields) / sizeof(hdr_fields[0]);
		*len = hdr_fields[a].len;
		return hdr_fields[a].off;
	case 1: /* a reader slot: the first ones are the ones in use */
		x %= sizeof(slot_fields) / sizeof(slot_fields[0]);
		*len = slot_fields[x].len;
		return offsetof(struct bring_hdr, slots) +
		       (a % BRING_SLOTS) * sizeof(struct bring_slot) +
		       slot_fields[x].off;
	case 2: /* a claim intent */
		off = offsetof(struct bring_hdr, intents) +
		      (a % BRING_INTENTS) * sizeof(struct bring_intent);
		switch (x % 4) {
		case 0:
			return off + offsetof(struct bring_intent, pos);
		case 1:
			return off + offsetof(struct bring_intent, need);
		case 2:
			*len = 4;
			return off + offsetof(struct bring_intent, pid);
		default:
			*len = 4;
			return off + offsetof(struct bring_intent, tid);
		}
	case 3: /* a record of the base, or the bytes after the last */
		off = b->nr_recs ? b->recs[a % b->nr_recs] : 0;
		if (a >= b->nr_recs && b->nr_recs)
			off = b->recs[b->nr_recs - 1] + 8 * (a - b->nr_recs);
		off = BRING_HDR_SIZE + (off & (CAP - 1));
		switch (x % 5) {
		case 0:
			*len = 4;
			return off + offsetof(struct bring_rec, len_flags);
		case 1:
			*len = 4;
			return off + offsetof(struct bring_rec, crc);
		case 2:
			return off + offsetof(struct bring_rec, tag);
		case 3:
			return off + sizeof(struct bring_rec);
		default:
			*len = 1;
			return off + sizeof(struct bring_rec) + x;
		}
	default: /* anywhere */
		*len = 1;
		return (a | x << 8) % FILE_SIZE;
	}
}

static void put(size_t off, const void *v, size_t len)
{
	if (off >= FILE_SIZE)
		return;
	if (len > FILE_SIZE - off)
		len = FILE_SIZE - off;
	memcpy(file + off, v, len);
}

/* The first min(@len, 8) bytes of a field, as a number. */
static uint64_t get64(size_t off, size_t len)
{
	uint64_t v = 0;

	if (len > sizeof(v))
		len = sizeof(v);
	if (off < FILE_SIZE)
		memcpy(&v, file + off,
		       len < FILE_SIZE - off ? len : FILE_SIZE - off);
	return v;
}

/*
 * One op at @p (@left bytes); returns the bytes it took, 0 at the end.
 *   kind 0: raw bytes: offset u16, then (op >> 3) + 1 bytes
 *   kind 1: add a signed 16-bit delta to a field
 *   kind 2: set a field's low 32 bits
 *   kind 3: xor one byte of a field: byte index, value
 *   kind 4: set a field to a 64-bit value
 *   kind 5: copy a field from another field (3 bytes each: to, from)
 *   kind 6: the same, setting bit 63 (an intent's "claim in flight" bit)
 */
static size_t apply_op(const struct base *b, const uint8_t *p, size_t left)
{
	size_t off, len, n;
	uint64_t v;

	switch (p[0] & 7) {
	case 0:
		n = (size_t)(p[0] >> 3) + 1;
		if (left < 3 + n)
			return 0;
		put((size_t)(p[1] | p[2] << 8), p + 3, n);
		return 3 + n;
	case 1:
		if (left < 6)
			return 0;
		off = field_at(b, p + 1, &len);
		v = get64(off, len) +
		    (uint64_t)(int64_t)(int16_t)(p[4] | p[5] << 8);
		put(off, &v, len < 8 ? len : 8);
		return 6;
	case 2:
		if (left < 8)
			return 0;
		off = field_at(b, p + 1, &len);
		memcpy(&v, p + 4, 4);
		put(off, &v, len < 4 ? len : 4);
		return 8;
	case 3:
		if (left < 6)
			return 0;
		off = field_at(b, p + 1, &len);
		if (off + p[4] % len < FILE_SIZE)
			file[off + p[4] % len] ^= p[5];
		return 6;
	case 4:
		if (left < 12)
			return 0;
		off = field_at(b, p + 1, &len);
		memcpy(&v, p + 4, 8);
		put(off, &v, len < 8 ? len : 8);
		return 12;
	case 5:
	case 6: {
		size_t from, flen;

		if (left < 7)
			return 0;
		off = field_at(b, p + 1, &len);
		from = field_at(b, p + 4, &flen);
		v = get64(from, flen) | ((p[0] & 7) == 6 ? 1ULL << 63 : 0);
		len = len < flen ? len : flen;
		put(off, &v, len < 8 ? len : 8);
		return 7;
	}
	default:
		return 1;
	}
}

static void fix_crcs(const struct base *b, unsigned int flags)
{
	struct bring_hdr *h = (struct bring_hdr *)file;
	unsigned int i, j;

	if (flags & FIX_CURSOR_CRC)
		for (i = 0; i < BRING_SLOTS; i++)
			for (j = 0; j < 2; j++) {
				struct bring_cursor *c = &h->slots[i].saved[j];

				c->crc = cursor_crc(c);
			}
	if (flags & FIX_RECORD_CRC)
		for (i = 0; i < b->nr_recs; i++) {
			uint64_t at = b->recs[i] & (CAP - 1);
			struct bring_rec *rec = (struct bring_rec *)
				(file + BRING_HDR_SIZE + at);
			uint32_t lf = rec->len_flags, len = lf & REC_LEN_MASK;

			if (lf & REC_BUSY || at + sizeof(*rec) + len > CAP)
				continue;
			rec->crc = lf & REC_DISCARD ?
					   rec_crc(rec->tag, lf, NULL, 0) :
					   rec_crc(rec->tag, lf, rec + 1, len);
		}
	if (flags & FIX_HDR_CRC)
		h->c_crc = bring_crc32c(0, &h->c, sizeof(h->c));
}

/* ------------------------------------------------------------------ */
/* Using what opened.                                                 */

static void write_file(const uint8_t *bytes, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	if (size && write(fd, bytes, size) != (ssize_t)size)
		die("write: %s", strerror(errno));
	close(fd);
}

struct drained {
	struct bring_reader *rd;
	bool owned; /* a named reader's handle, closed by us */
	const char *name;
};

/* Read everything @rd holds, checking each message. */
static void drain(struct bring *r, struct drained *d)
{
	uint64_t last = 0, n = 0, sum = 0;
	struct bring_msg msg;
	size_t i;
	int err;

	while ((err = bring_reader_next(d->rd, &msg, 0)) == 0) {
		if (msg.len > bring_max_msg(r))
			die("reader '%s': %zu-byte message, max_msg %zu",
			    d->name, msg.len, bring_max_msg(r));
		if (msg.seq % 8 || (n && msg.seq <= last))
			die("reader '%s': message at position %llu after %llu",
			    d->name, (unsigned long long)msg.seq,
			    (unsigned long long)last);
		for (i = 0; i < msg.len; i++)
			sum += ((const uint8_t *)msg.data)[i];
		last = msg.seq;
		if (++n > CAP / 16 + 1)
			die("reader '%s': more messages than the ring holds",
			    d->name);
		if (bring_reader_shift(d->rd))
			die("reader '%s': shift failed", d->name);
	}
	if (err != -EAGAIN && err != -EPIPE)
		die("reader '%s': next: %s", d->name, strerror(-err));
	(void)sum;
}

static void use_ring(struct bring *r)
{
	static const char probe[16] = "open_fuzz probe";
	struct bring_stats st = { .sz = sizeof(st) };
	struct drained d[BRING_SLOTS];
	unsigned int nr = 0, i;
	struct bring_msg msg;
	int err;

	if (bring_get_stats(r, &st) || st.used > st.capacity)
		die("stats: %llu bytes used of %llu",
		    (unsigned long long)st.used,
		    (unsigned long long)st.capacity);
	if (bring_default_reader(r))
		d[nr++] = (struct drained){ bring_default_reader(r), false,
					    "(default)" };
	for (i = 1; i < BRING_SLOTS; i++) {
		const struct bring_slot *sl = &r->hdr->slots[i];
		unsigned int j;

		if (sl->state != SLOT_ACTIVE || !sl->name[0])
			continue;
		/*
		 * Recovery lets two slots have one name today; only the
		 * first can be opened (reported, not checked here).
		 */
		for (j = 1; j < i; j++)
			if (r->hdr->slots[j].state == SLOT_ACTIVE &&
			    !strncmp(r->hdr->slots[j].name, sl->name,
				     BRING_NAME_MAX))
				break;
		if (j < i)
			continue;
		d[nr].rd = bring_reader_open(r, sl->name);
		if (!d[nr].rd)
			die("reader '%.31s': open: %s", sl->name,
			    strerror(errno));
		d[nr].owned = true;
		d[nr].name = sl->name;
		nr++;
	}
	for (i = 0; i < nr; i++)
		drain(r, &d[i]);
	err = bring_push_timeout(r, probe, sizeof(probe), 0);
	if (err && err != -EAGAIN && err != -EMSGSIZE)
		die("push: %s", strerror(-err));
	for (i = 0; i < nr; i++) {
		if (!err) {
			int e = bring_reader_next(d[i].rd, &msg, 0);

			if (e)
				die("reader '%s': the message pushed after recovery is not there: %s",
				    d[i].name, strerror(-e));
			if (msg.len != sizeof(probe) ||
			    memcmp(msg.data, probe, sizeof(probe)))
				die("reader '%s': %zu bytes at %llu instead of the message pushed",
				    d[i].name, msg.len,
				    (unsigned long long)msg.seq);
			bring_reader_shift(d[i].rd);
		}
		if (d[i].owned)
			bring_reader_close(d[i].rd);
	}
}

static void open_and_use(unsigned int flags)
{
	BRING_OPTS(opts, .flags = flags);
	struct bring *r;

	diag_len = 0;
	diag[0] = '\0';
	cur_flags = flags;
	r = bring_open(path, 0, &opts);
	cur_ring = r;
	if (!r) {
		if (errno != EINVAL && errno != EBADMSG && errno != ENOMEM)
			die("bring_open: unexpected error %s", strerror(errno));
		return;
	}
	use_ring(r);
	cur_ring = NULL;
	bring_free(r);
}

/* ------------------------------------------------------------------ */

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	const char *dump = getenv("BRING_FUZZ_DUMP_BASES");
	char p[512];
	unsigned int n;

	(void)argc;
	(void)argv;
	if (access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	snprintf(dir, sizeof(dir), "%s/bring-fuzz-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		die("mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/ring", dir);
	atexit(cleanup);
	bring_set_print(collect);
	make_bases();
	if (dump) {
		for (n = 0; n < NR_BASES; n++) {
			FILE *f;

			snprintf(p, sizeof(p), "%s/raw-base%u", dump, n);
			f = fopen(p, "w");
			if (!f || fwrite(bases[n].bytes, FILE_SIZE, 1, f) != 1)
				die("%s: %s", p, strerror(errno));
			fclose(f);
		}
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *bytes = file;
	size_t len = FILE_SIZE, i, n;
	const struct base *b;

	if (size >= 8 && !memcmp(data, "__BRING1", 8)) {
		bytes = data;	/* a whole file */
		len = size;
	} else {
		if (size < 2)
			return 0;
		b = &bases[data[1] % NR_BASES];
		memcpy(file, b->bytes, FILE_SIZE);
		for (i = 2; i < size; i += n) {
			n = apply_op(b, data + i, size - i);
			if (!n)
				break;
		}
		fix_crcs(b, data[0]);
	}
	write_file(bytes, len);
	open_and_use(0);
	/* Recovery may have written the file: the same input again. */
	write_file(bytes, len);
	open_and_use(BRING_SKIP_DAMAGED);
	return 0;
}
