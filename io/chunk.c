// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * lines in chunk records: a source reserves ring space, reads straight
 * into it and commits the complete lines it holds as ONE record, joined
 * by '\n' with the final '\n' left out ("l1\nl2\n...\nlk"). A lines sink
 * writes every record followed by "\n", so chunk records and records of
 * one line each (bring_push() by an application, or
 * BRING_IO_LINE_RECORDS) mix freely in one ring.
 *
 *   reservation: [carry | bytes read .........................]
 *                 \____ complete lines ____/\ partial /  unused
 *   record:      "l1\n...\nlk"  (the '\n' after lk is not in it)
 *
 * The partial last line is copied to the conn's staging buffer before the
 * commit (the filler that a short commit writes may overwrite it) and to
 * the front of the next reservation: a copy per chunk, not per line.
 * Anything unusual (a line longer than max_msg, the rest of one being
 * skipped) goes through the staging parser of frame.c, one record per
 * line, exactly as in BRING_IO_LINE_RECORDS mode.
 */
#include <errno.h>
#include <string.h>

#include "io.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Newlines in @n bytes at @p. */
size_t count_nl(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t k = 0, i = 0, j, lim;

#ifdef __SSE2__
	const __m128i nl = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();

	/* Per-byte counters (0 - (-1) per match), summed every 255 rounds. */
	while (n - i >= 16) {
		__m128i acc = zero, sum;

		lim = (n - i) / 16;
		if (lim > 255)
			lim = 255;
		for (j = 0; j < lim; j++, i += 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(s + i));

			acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(v, nl));
		}
		sum = _mm_sad_epu8(acc, zero);
		k += (size_t)_mm_cvtsi128_si32(sum) +
		     (size_t)_mm_extract_epi16(sum, 4);
	}
#else
	const uint64_t ones = 0x0101010101010101ULL, low7 = ones * 0x7f,
		       nl = ones * '\n';

	/* Exact zero-byte flags of x ^ nl, summed per byte lane. */
	while (n - i >= 8) {
		uint64_t acc = 0, x;

		lim = (n - i) / 8;
		if (lim > 255)
			lim = 255;
		for (j = 0; j < lim; j++, i += 8) {
			memcpy(&x, s + i, 8);
			x ^= nl;
			acc += (~(((x & low7) + low7) | x) >> 7) & ones;
		}
		k += (acc * ones) >> 56;
	}
#endif
	for (; i < n; i++)
		k += s[i] == '\n';
	return k;
}

/*
 * Reserve the carried partial line plus io->chunk bytes and copy the
 * carry to the front; the read goes to c->resv.data + c->carry. Returns
 * 0, 1 when this read must go to staging instead (the rest of an
 * oversize line is being skipped, or the carry fills the largest
 * reservation), -EAGAIN when the ring is full (c->need set), or -EPIPE.
 */
int conn_chunk_reserve(struct conn *c, int timeout_ms)
{
	struct bring_io *io = c->src->io;
	size_t carry = c->len - c->off, want = carry + io->chunk;
	int ret;

	if (want > io->ring_max)
		want = io->ring_max;
	if (c->discard || want <= carry)
		return 1;
	ret = bring_reserve(io->r, want, &c->resv, timeout_ms);
	if (ret == -EAGAIN || ret == -ETIMEDOUT) {
		c->need = want;
		return -EAGAIN;
	}
	if (ret)
		return ret;
	memcpy(c->resv.data, c->buf + c->off, carry);
	c->carry = carry;
	c->resv_open = true;
	return 0;
}

/*
 * Where the chunk's complete lines end when one of them may be longer
 * than max_msg: the offset after the '\n' of the last line before the
 * first oversize one (0: none), with *@lines set to their number.
 */
static size_t scan_lines(const struct conn *c, const char *p, size_t len,
			 uint64_t *lines)
{
	size_t max = c->src->io->max_msg, s = 0, from = c->carry;
	const char *nl;

	*lines = 0;
	while ((nl = memchr(p + from, '\n', len - from))) {
		if ((size_t)(nl - p) - s > max)
			break;
		(*lines)++;
		s = from = nl - p + 1;
	}
	return s;
}

/*
 * @n bytes were read behind the carry: commit the complete lines as one
 * record and leave the rest in staging, for conn_push() (which handles an
 * oversize line) and the next reservation.
 */
void conn_chunk_done(struct conn *c, size_t n)
{
	struct bring_io *io = c->src->io;
	size_t len = c->carry + n, end;
	char *p = c->resv.data;
	const char *nl;
	uint64_t lines;

	if (io->max_msg + 1 >= len) {
		/* No complete line can be longer than max_msg. */
		nl = memrchr(p + c->carry, '\n', n);
		end = nl ? (size_t)(nl - p) + 1 : 0;
		lines = nl ? count_nl(p + c->carry, end - c->carry) : 0;
	} else {
		end = scan_lines(c, p, len, &lines);
	}
	/* The tail first: a short commit may write over it. */
	memcpy(c->buf, p + end, len - end);
	c->off = 0;
	c->len = len - end;
	if (lines) {
		bring_commit(io->r, &c->resv, end - 1);
		io_stat_add(io, msgs_in, lines);
	} else {
		bring_abort(io->r, &c->resv);
	}
	c->resv_open = false;
}
