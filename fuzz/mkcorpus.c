// SPDX-License-Identifier: GPL-2.0
/*
 * mkcorpus.c - write the seed corpus of fuzz/open_fuzz.c.
 *
 *   build/fuzz/mkcorpus [DIR]      (default fuzz/corpus)
 *
 * Every seed is a patch list (see open_fuzz.c) applied to each of its base
 * files: the plain bases, then one change each to the header, a cursor,
 * a slot, a claim intent or a record, the changes a crash or a damaged
 * disk leaves, with and without the checksums fixed up. The field numbers
 * below are indices into open_fuzz.c's hdr_fields[] and slot_fields[]
 * tables and field_at()'s areas: keep them in step.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define NR_BASES 5

enum { FIX_HDR_CRC = 1, FIX_CURSOR_CRC = 2, FIX_RECORD_CRC = 4 };
enum { AREA_HDR, AREA_SLOT, AREA_INTENT, AREA_REC, AREA_ABS };
enum {
	H_HEAD, H_TAIL, H_MASK, H_MSGS_IN, H_BYTES_IN, H_DURABLE, H_POISONED,
	H_DAMAGED, H_SPACE_WANT, H_DATA_SEQ, H_SPACE_SEQ, H_FLUSH_STARTED,
	H_FLUSH_DONE, H_FLUSH_SEQ, H_LOCK, H_FLUSH_LOCK, H_MAGIC, H_VERSION,
	H_HDR_SIZE, H_CAPACITY, H_MAX_MSG, H_KEY, H_FLAGS, H_DURABILITY,
	H_FLUSH_MS, H_FILE, H_NAME, H_C_CRC,
};
enum {
	S_POS, S_SAVED0_POS, S_SAVED0_GEN, S_SAVED0_CRC, S_SAVED1_POS,
	S_SAVED1_GEN, S_SAVED1_CRC, S_STATE, S_OWNER, S_NAME, S_MSGS_OUT,
};
enum { I_POS, I_NEED, I_PID, I_TID };
enum { R_LEN_FLAGS, R_CRC, R_TAG, R_PAYLOAD };

struct seed {
	uint8_t b[64];
	size_t len;
};

static void op(struct seed *s, const uint8_t *p, size_t n)
{
	if (s->len + n > sizeof(s->b)) {
		fprintf(stderr, "mkcorpus: seed too long\n");
		exit(1);
	}
	memcpy(s->b + s->len, p, n);
	s->len += n;
}

static void add16(struct seed *s, int area, int a, int x, int16_t delta)
{
	uint8_t p[6] = { 1, (uint8_t)area, (uint8_t)a, (uint8_t)x,
			 (uint8_t)delta, (uint8_t)((uint16_t)delta >> 8) };

	op(s, p, sizeof(p));
}

static void set32(struct seed *s, int area, int a, int x, uint32_t v)
{
	uint8_t p[8] = { 2, (uint8_t)area, (uint8_t)a, (uint8_t)x };

	memcpy(p + 4, &v, 4);
	op(s, p, sizeof(p));
}

static void xor8(struct seed *s, int area, int a, int x, int byte, int v)
{
	uint8_t p[6] = { 3, (uint8_t)area, (uint8_t)a, (uint8_t)x,
			 (uint8_t)byte, (uint8_t)v };

	op(s, p, sizeof(p));
}

static void set64(struct seed *s, int area, int a, int x, uint64_t v)
{
	uint8_t p[12] = { 4, (uint8_t)area, (uint8_t)a, (uint8_t)x };

	memcpy(p + 4, &v, 8);
	op(s, p, sizeof(p));
}

static void raw(struct seed *s, size_t off, const void *v, size_t n)
{
	uint8_t p[3] = { (uint8_t)((n - 1) << 3), (uint8_t)off,
			 (uint8_t)(off >> 8) };

	op(s, p, sizeof(p));
	op(s, v, n);
}

/* Field (@area, @a, @x) = field (@sarea, @sa, @sx), with bit 63 if @valid. */
static void copy(struct seed *s, int area, int a, int x, int sarea, int sa,
		 int sx, int valid)
{
	uint8_t p[7] = { (uint8_t)(valid ? 6 : 5), (uint8_t)area, (uint8_t)a,
			 (uint8_t)x, (uint8_t)sarea, (uint8_t)sa, (uint8_t)sx };

	op(s, p, sizeof(p));
}

static const char *outdir = "fuzz/corpus";
static unsigned int written;

/* Write @s once per base in @bases (a bit mask). */
static void emit(const char *name, unsigned int flags, const struct seed *s,
		 unsigned int bases)
{
	char path[512];
	unsigned int n;
	FILE *f;

	for (n = 0; n < NR_BASES; n++) {
		uint8_t head[2] = { (uint8_t)flags, (uint8_t)n };

		if (!(bases & (1U << n)))
			continue;
		snprintf(path, sizeof(path), "%s/%s-base%u", outdir, name, n);
		f = fopen(path, "w");
		if (!f || fwrite(head, 2, 1, f) != 1 ||
		    (s->len && fwrite(s->b, s->len, 1, f) != 1) || fclose(f)) {
			fprintf(stderr, "mkcorpus: %s: %s\n", path,
				strerror(errno));
			exit(1);
		}
		written++;
	}
}

#define ALL ((1U << NR_BASES) - 1)
#define SEED(name, flags, bases, ...)					\
	do {								\
		struct seed s = { .len = 0 };				\
		__VA_ARGS__;						\
		emit(name, flags, &s, bases);				\
	} while (0)

int main(int argc, char **argv)
{
	static const char long_name[32] = "abcdefghijklmnopqrstuvwxyz012345";

	if (argc > 1)
		outdir = argv[1];
	mkdir(outdir, 0755);

	/* The bases as they are. */
	SEED("plain", 0, ALL, (void)0);
	SEED("plain-fixed", FIX_HDR_CRC | FIX_CURSOR_CRC | FIX_RECORD_CRC, ALL,
	     (void)0);

	/* Positions in the header. */
	SEED("head-plus8", 0, ALL, add16(&s, AREA_HDR, H_HEAD, 0, 8));
	SEED("head-minus8", 0, ALL, add16(&s, AREA_HDR, H_HEAD, 0, -8));
	SEED("head-plus-cap", 0, ALL, add16(&s, AREA_HDR, H_HEAD, 0, 4096));
	SEED("head-closed", 0, ALL, xor8(&s, AREA_HDR, H_HEAD, 0, 7, 0x80));
	SEED("tail-minus8", 0, ALL, add16(&s, AREA_HDR, H_TAIL, 0, -8));
	SEED("tail-plus64", 0, ALL, add16(&s, AREA_HDR, H_TAIL, 0, 64));
	SEED("mask-zero", 0, ALL, set64(&s, AREA_HDR, H_MASK, 0, 0));
	SEED("mask-all", 0, ALL, set64(&s, AREA_HDR, H_MASK, 0, ~0ULL));
	SEED("poisoned", 0, ALL, set32(&s, AREA_HDR, H_POISONED, 0, EIO));
	SEED("lock-garbage", 0, ALL,
	     set64(&s, AREA_HDR, H_LOCK, 0, 0x1234567890abcdefULL);
	     set64(&s, AREA_HDR, H_FLUSH_LOCK, 0, 0xffffffffULL));
	SEED("flush-gens", 0, 1U << 3 | 1U << 4,
	     set64(&s, AREA_HDR, H_FLUSH_DONE, 0, ~0ULL);
	     set64(&s, AREA_HDR, H_FLUSH_STARTED, 0, 1));

	/* The constant header, checksum fixed up or not. */
	SEED("crc-flip", 0, ALL, xor8(&s, AREA_HDR, H_C_CRC, 0, 0, 1));
	SEED("magic-flip", FIX_HDR_CRC, ALL,
	     xor8(&s, AREA_HDR, H_MAGIC, 0, 3, 0x20));
	SEED("version-2", FIX_HDR_CRC, ALL,
	     set32(&s, AREA_HDR, H_VERSION, 0, 2));
	SEED("hdr-size", FIX_HDR_CRC, ALL,
	     set32(&s, AREA_HDR, H_HDR_SIZE, 0, 4096));
	SEED("capacity-8k", FIX_HDR_CRC, ALL,
	     set64(&s, AREA_HDR, H_CAPACITY, 0, 8192));
	SEED("capacity-odd", FIX_HDR_CRC, ALL,
	     set64(&s, AREA_HDR, H_CAPACITY, 0, 4095));
	SEED("max-msg-big", FIX_HDR_CRC, ALL,
	     set64(&s, AREA_HDR, H_MAX_MSG, 0, 4096));
	SEED("max-msg-small", FIX_HDR_CRC, ALL,
	     set64(&s, AREA_HDR, H_MAX_MSG, 0, 8));
	SEED("key-change", FIX_HDR_CRC, ALL,
	     xor8(&s, AREA_HDR, H_KEY, 0, 2, 0x40));
	SEED("flags-all", FIX_HDR_CRC, ALL,
	     set32(&s, AREA_HDR, H_FLAGS, 0, 0xffffffffU));
	SEED("flags-no-default", FIX_HDR_CRC, ALL,
	     set32(&s, AREA_HDR, H_FLAGS, 0, BRING_NO_DEFAULT_READER));
	SEED("durability-3", FIX_HDR_CRC, ALL,
	     set32(&s, AREA_HDR, H_DURABILITY, 0, 3));
	SEED("durability-interval", FIX_HDR_CRC, ALL,
	     set32(&s, AREA_HDR, H_DURABILITY, 0, BRING_DURABLE_INTERVAL);
	     set32(&s, AREA_HDR, H_FLUSH_MS, 0, 1));
	SEED("flush-ms-huge", FIX_HDR_CRC, 1U << 3,
	     set32(&s, AREA_HDR, H_FLUSH_MS, 0, 0xffffffffU));
	SEED("file-0", FIX_HDR_CRC, ALL, set32(&s, AREA_HDR, H_FILE, 0, 0));
	SEED("name-unterminated", FIX_HDR_CRC, ALL,
	     raw(&s, offsetof(struct bring_hdr, c.name), long_name, 32));

	/* Reader slots and their cursors. */
	SEED("cursor-plus8", FIX_CURSOR_CRC, ALL,
	     add16(&s, AREA_SLOT, 1, S_SAVED0_POS, 8);
	     add16(&s, AREA_SLOT, 1, S_SAVED1_POS, 8);
	     add16(&s, AREA_SLOT, 0, S_SAVED0_POS, 8);
	     add16(&s, AREA_SLOT, 0, S_SAVED1_POS, 8));
	SEED("cursor-plus16", FIX_CURSOR_CRC, ALL,
	     add16(&s, AREA_SLOT, 1, S_SAVED0_POS, 16);
	     add16(&s, AREA_SLOT, 1, S_SAVED1_POS, 16));
	SEED("cursor-back-lap", FIX_CURSOR_CRC, ALL,
	     add16(&s, AREA_SLOT, 2, S_SAVED0_POS, -4096);
	     add16(&s, AREA_SLOT, 2, S_SAVED1_POS, -4096));
	SEED("cursor-beyond-head", FIX_CURSOR_CRC, ALL,
	     add16(&s, AREA_SLOT, 0, S_SAVED0_POS, 512);
	     add16(&s, AREA_SLOT, 0, S_SAVED1_POS, 512);
	     add16(&s, AREA_SLOT, 0, S_SAVED0_GEN, 2));
	SEED("cursor-one-copy-bad", 0, ALL,
	     xor8(&s, AREA_SLOT, 1, S_SAVED0_CRC, 0, 1);
	     xor8(&s, AREA_SLOT, 0, S_SAVED0_CRC, 0, 1));
	SEED("cursor-both-bad", 0, ALL,
	     xor8(&s, AREA_SLOT, 1, S_SAVED0_CRC, 0, 1);
	     xor8(&s, AREA_SLOT, 1, S_SAVED1_CRC, 0, 1);
	     xor8(&s, AREA_SLOT, 0, S_SAVED0_CRC, 0, 1);
	     xor8(&s, AREA_SLOT, 0, S_SAVED1_CRC, 0, 1));
	SEED("cursor-never-saved", 0, ALL,
	     set64(&s, AREA_SLOT, 3, S_SAVED0_GEN, 0);
	     set64(&s, AREA_SLOT, 3, S_SAVED1_GEN, 0);
	     set32(&s, AREA_SLOT, 3, S_SAVED0_CRC, 0);
	     set32(&s, AREA_SLOT, 3, S_SAVED1_CRC, 0);
	     set32(&s, AREA_SLOT, 3, S_STATE, SLOT_ACTIVE));
	SEED("slot-state-bad", 0, ALL, set32(&s, AREA_SLOT, 1, S_STATE, 7));
	SEED("slot-free", 0, ALL, set32(&s, AREA_SLOT, 1, S_STATE, SLOT_FREE);
	     set32(&s, AREA_SLOT, 0, S_STATE, SLOT_FREE));
	SEED("slot-name-unterminated", 0, ALL,
	     raw(&s, offsetof(struct bring_hdr, slots[1].name), long_name, 32));
	SEED("slot-default-named", 0, ALL,
	     set32(&s, AREA_SLOT, 0, S_NAME, 'z'));
	SEED("slot-owner-live", 0, ALL, set32(&s, AREA_SLOT, 1, S_OWNER, 1));

	/* Claim intents: holes of writers that died between claim and tag. */
	SEED("intent-hole", 0, ALL,
	     set64(&s, AREA_INTENT, 9, I_NEED, 64);
	     set32(&s, AREA_INTENT, 9, I_PID, 0x7ffffff0);
	     copy(&s, AREA_INTENT, 9, I_POS, AREA_HDR, H_HEAD, 0, 1);
	     add16(&s, AREA_HDR, H_HEAD, 0, 64));
	SEED("intent-short", 0, 1U << 2, add16(&s, AREA_INTENT, 7, I_NEED, -56));
	SEED("intent-long", 0, 1U << 2, add16(&s, AREA_INTENT, 7, I_NEED, 64));
	SEED("intent-overlap", 0, 1U << 2,
	     copy(&s, AREA_INTENT, 8, I_POS, AREA_INTENT, 7, I_POS, 0);
	     set64(&s, AREA_INTENT, 8, I_NEED, 24));
	SEED("intent-gone", 0, 1U << 2, set64(&s, AREA_INTENT, 7, I_POS, 0));

	/* Records. */
	SEED("rec-busy", 0, ALL, xor8(&s, AREA_REC, 1, R_LEN_FLAGS, 3, 0x80));
	SEED("rec-busy-slack", 0, ALL,
	     xor8(&s, AREA_REC, 2, R_LEN_FLAGS, 3, 0x80);
	     xor8(&s, AREA_REC, 2, R_TAG, 0, 1));
	SEED("rec-discard", 0, ALL, xor8(&s, AREA_REC, 1, R_LEN_FLAGS, 3, 0x40));
	SEED("rec-longer", FIX_RECORD_CRC, ALL,
	     add16(&s, AREA_REC, 1, R_LEN_FLAGS, 8));
	SEED("rec-shorter", FIX_RECORD_CRC, ALL,
	     add16(&s, AREA_REC, 2, R_LEN_FLAGS, -8));
	SEED("rec-huge", FIX_RECORD_CRC, ALL,
	     set32(&s, AREA_REC, 1, R_LEN_FLAGS, 0x3fffffff));
	SEED("rec-crc-flip", 0, ALL, xor8(&s, AREA_REC, 3, R_CRC, 1, 4));
	SEED("rec-payload-flip", 0, ALL,
	     xor8(&s, AREA_REC, 3, R_PAYLOAD, 0, 0x10));
	SEED("rec-tag-flip", 0, ALL, xor8(&s, AREA_REC, 2, R_TAG, 5, 1));
	SEED("rec-tag-slack", 0, ALL, xor8(&s, AREA_REC, 1, R_TAG, 0, 1));
	SEED("rec-last-torn", 0, ALL, xor8(&s, AREA_REC, 200, R_TAG, 1, 0xff));
	SEED("rec-two-damaged", 0, ALL,
	     xor8(&s, AREA_REC, 1, R_CRC, 0, 1);
	     xor8(&s, AREA_REC, 4, R_TAG, 2, 8));

	printf("mkcorpus: %u seeds in %s\n", written, outdir);
	return 0;
}
