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
 * the front of the next reservation: a copy per chunk, not per line. A
 * read that completes no line leaves everything in staging, and the next
 * reads go there too until a newline arrives (then the staging parser
 * pushes the line): a byte is copied a bounded number of times however
 * slowly its line arrives (bring_io_stats.copied counts them).
 * Anything unusual (a line longer than max_msg, the rest of one being
 * skipped) goes through the staging parser of frame.c, one record per
 * line, exactly as in BRING_IO_LINE_RECORDS mode.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define COUNT_X86 1
#endif

static size_t count_nl_tail(const unsigned char *s, size_t n)
{
	size_t k = 0, i;

	for (i = 0; i < n; i++)
		k += s[i] == '\n';
	return k;
}

#ifdef COUNT_X86
/*
 * Per-byte counters, 0 - (-1) for every match, summed (psadbw) before
 * they can overflow; two accumulators per loop to keep both load ports
 * busy. AVX2 is chosen at run time: 2.5x SSE2 on data in L2/L3.
 */
__attribute__((target("avx2"))) static size_t
count_nl_avx2(const unsigned char *s, size_t n)
{
	const __m256i nl = _mm256_set1_epi8('\n'),
		      zero = _mm256_setzero_si256();
	size_t k = 0, i = 0, j, lim;

	while (n - i >= 64) {
		__m256i a0 = zero, a1 = zero, sum;

		lim = (n - i) / 64;
		if (lim > 255)
			lim = 255;
		for (j = 0; j < lim; j++, i += 64) {
			__m256i v0 = _mm256_loadu_si256((const void *)(s + i));
			__m256i v1 =
				_mm256_loadu_si256((const void *)(s + i + 32));

			a0 = _mm256_sub_epi8(a0, _mm256_cmpeq_epi8(v0, nl));
			a1 = _mm256_sub_epi8(a1, _mm256_cmpeq_epi8(v1, nl));
		}
		sum = _mm256_add_epi64(_mm256_sad_epu8(a0, zero),
				       _mm256_sad_epu8(a1, zero));
		k += _mm256_extract_epi64(sum, 0) +
		     _mm256_extract_epi64(sum, 1) +
		     _mm256_extract_epi64(sum, 2) +
		     _mm256_extract_epi64(sum, 3);
	}
	return k + count_nl_tail(s + i, n - i);
}

static size_t count_nl_sse2(const unsigned char *s, size_t n)
{
	const __m128i nl = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
	size_t k = 0, i = 0, j, lim;

	while (n - i >= 32) {
		__m128i a0 = zero, a1 = zero, sum;

		lim = (n - i) / 32;
		if (lim > 255)
			lim = 255;
		for (j = 0; j < lim; j++, i += 32) {
			__m128i v0 = _mm_loadu_si128((const void *)(s + i));
			__m128i v1 =
				_mm_loadu_si128((const void *)(s + i + 16));

			a0 = _mm_sub_epi8(a0, _mm_cmpeq_epi8(v0, nl));
			a1 = _mm_sub_epi8(a1, _mm_cmpeq_epi8(v1, nl));
		}
		sum = _mm_add_epi64(_mm_sad_epu8(a0, zero),
				    _mm_sad_epu8(a1, zero));
		k += (size_t)_mm_cvtsi128_si64(sum) +
		     (size_t)_mm_extract_epi16(sum, 4);
	}
	return k + count_nl_tail(s + i, n - i);
}
#else
/* Exact zero-byte flags of x ^ "\n\n...", summed per byte lane. */
static size_t count_nl_swar(const unsigned char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101ULL, low7 = ones * 0x7f,
		       nl = ones * '\n';
	size_t k = 0, i = 0, j, lim;

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
	return k + count_nl_tail(s + i, n - i);
}
#endif

/* Newlines in @n bytes at @p. */
size_t count_nl(const void *p, size_t n)
{
#ifdef COUNT_X86
	if (__builtin_cpu_supports("avx2"))
		return count_nl_avx2(p, n);
	return count_nl_sse2(p, n);
#else
	return count_nl_swar(p, n);
#endif
}

int ledger_new(struct bring_io *io)
{
	unsigned int i;

	io->ledger = malloc(sizeof(*io->ledger));
	if (!io->ledger)
		return -ENOMEM;
	pthread_mutex_init(&io->ledger->lock, NULL);
	for (i = 0; i < IO_LEDGER_SLOTS; i++)
		io->ledger->slot[i].refs = 0;
	return 0;
}

void ledger_free(struct bring_io *io)
{
	if (!io->ledger)
		return;
	pthread_mutex_destroy(&io->ledger->lock);
	free(io->ledger);
	io->ledger = NULL;
}

static unsigned int ledger_slot(uint64_t seq)
{
	return (seq / 8) % IO_LEDGER_SLOTS; /* records are 8-byte aligned */
}

/* Before the commit that makes the record visible to the sinks. */
static void ledger_put(struct bring_io *io, uint64_t seq, uint64_t lines)
{
	struct io_ledger *l = io->ledger;
	unsigned int i = ledger_slot(seq);

	pthread_mutex_lock(&l->lock);
	l->slot[i].seq = seq;
	l->slot[i].lines = lines;
	l->slot[i].refs = io->nr_sinks;
	pthread_mutex_unlock(&l->lock);
}

/* The line count of the record at @seq, if a source of @io made it. */
bool ledger_take(struct bring_io *io, uint64_t seq, uint64_t *lines)
{
	struct io_ledger *l = io->ledger;
	unsigned int i = ledger_slot(seq);
	bool hit;

	if (!l)
		return false;
	pthread_mutex_lock(&l->lock);
	hit = l->slot[i].refs && l->slot[i].seq == seq;
	if (hit) {
		*lines = l->slot[i].lines;
		l->slot[i].refs--;
	}
	pthread_mutex_unlock(&l->lock);
	return hit;
}

/*
 * Reserve the carried partial line plus what waits to be read (see
 * conn_read_want(), io->chunk at most) and copy the carry to the front;
 * the read goes to c->resv.data + c->carry. Returns 0, 1 when this read
 * must go to staging instead (the rest of an oversize line is being
 * skipped, or the carry fills the largest reservation), IO_RESV_POLL,
 * IO_RESV_EOF, -EAGAIN when the ring is full (c->need set), or -EPIPE.
 */
int conn_chunk_reserve(struct conn *c, int timeout_ms)
{
	struct bring_io *io = c->src->io;
	size_t carry = c->len - c->off, want;
	ssize_t read;
	int ret;

	/* A carry moved once already goes on in staging (see above). */
	if (c->discard || carry >= io->ring_max || (carry && c->moved))
		return 1;
	read = conn_read_want(c, io->chunk);
	if (read <= 0)
		return read ? IO_RESV_EOF : IO_RESV_POLL;
	want = carry + read;
	if (want > io->ring_max)
		want = io->ring_max;
	/* Staging must take what the read leaves after its last newline. */
	ret = conn_stage_fit(c, want);
	if (ret == -ENOBUFS && c->cap - c->off > carry)
		ret = 0, want = c->cap - c->off, c->more = true;
	if (ret)
		return ret == -ENOBUFS ? 1 : ret; /* staging cuts the carry */
	if (conn_read_ahead_full(c, want))
		return -EAGAIN;
	ret = bring_reserve(io->r, want, &c->resv, timeout_ms);
	if (ret == -EAGAIN || ret == -ETIMEDOUT) {
		c->need = want;
		return -EAGAIN;
	}
	if (ret)
		return ret;
	memcpy(c->resv.data, c->buf + c->off, carry);
	io_stat_add(io, copied, carry);
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

/* Is every '\n'-ended line of the @len bytes at @p at most @max long? */
static bool lines_fit(const char *p, size_t len, size_t max)
{
	const char *e = p + len, *nl;

	for (; p < e && (nl = memchr(p, '\n', (size_t)(e - p))); p = nl + 1)
		if ((size_t)(nl - p) > max)
			return false;
	return true;
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
	io_stat_add(io, copied, len - end);
	c->off = 0;
	c->len = len - end;
	c->clean = 0;
	/*
	 * A read that ended no line leaves its bytes in staging, where the
	 * reads that follow go until the line is complete: moved back into
	 * a reservation for every read, a long partial line would be copied
	 * once per read (a slow client's bytes, quadratically).
	 */
	c->moved = !end;
	if (lines) {
		ledger_put(io, c->resv.seq, lines);
		if (c->src->ck)
			ckpt_commit(c, &c->resv, end - 1, len - end);
		else
			bring_commit(io->r, &c->resv, end - 1);
		conn_stat_add(c, msgs_in, lines);
	} else {
		bring_abort(io->r, &c->resv);
	}
	c->resv_open = false;
}

/*
 * A chunk conn's staging holds complete lines (a carried line that a
 * staging read completed and the lines that came with it, or what a
 * checkpointing tail: read): they go into the ring as one chunk record,
 * copied once, as a read into ring space would have made it, with one
 * mark when the source checkpoints. Returns 0 (done, or no complete
 * line), 1 when the staging parser must take them one by one (the rest
 * of an oversize line is being skipped, more than a record holds, or a
 * line longer than max_msg), -EAGAIN when the ring is full (c->need
 * set), or another error of the reservation or the commit.
 */
int conn_chunk_push(struct conn *c, int timeout_ms)
{
	struct bring_io *io = c->src->io;
	size_t held = c->len - c->off, from = c->clean, end;
	const char *p = c->buf + c->off, *nl;
	uint64_t lines;
	int ret = 0;

	if (c->discard || c->skip)
		return 1;
	if (from > held)
		from = 0;
	/* Bytes before c->clean were searched already: no newline there. */
	nl = memrchr(p + from, '\n', held - from);
	if (!nl)
		return 0;
	end = nl - p;
	if (end > io->ring_max ||
	    (end > io->max_msg && !lines_fit(p, end + 1, io->max_msg)))
		return 1;
	if (conn_read_ahead_full(c, end))
		return -EAGAIN;
	ret = bring_reserve(io->r, end, &c->resv, timeout_ms);
	if (ret == -EAGAIN || ret == -ETIMEDOUT) {
		c->need = end;
		return -EAGAIN;
	}
	if (ret)
		return ret;
	memcpy(c->resv.data, p, end);
	lines = count_nl(p, end) + 1;
	ledger_put(io, c->resv.seq, lines);
	if (c->src->ck)
		ret = ckpt_commit(c, &c->resv, end, held - end - 1);
	else
		bring_commit(io->r, &c->resv, end);
	conn_stat_add(c, msgs_in, lines);
	io_stat_add(io, copied, end);
	c->off += end + 1;
	return ret;
}
