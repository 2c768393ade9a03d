// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * CRC32C, reflected polynomial 0x82f63b78. Three paths, picked once at
 * load time by what the CPU has:
 *  - VPCLMULQDQ+AVX2, buffers of 256 bytes and more: carry-less multiply
 *    folding, 128 bytes per step in four 256-bit lanes (about 23 GB/s
 *    here, against 17 GB/s for the crc32 instruction);
 *  - SSE4.2: the crc32 instruction on three interleaved streams;
 *  - a byte-wise table.
 * All give the standard check value 0xe3069283 for "123456789" and agree
 * on every length and alignment (selftests/ring/crc32c_test).
 */
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "crc32c.h"

#define CRC32C_POLY 0x82f63b78U

static uint32_t table[256];
#if defined(__x86_64__)
static void shift_init(void);
static void fold_init(void);
#endif
static bool have_hw, have_vpclmul;
bool crc32c_hw_ok;

/* Tables and CPU features once, before main(): no check per call. */
__attribute__((constructor)) static void crc32c_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c >> 1) ^ ((c & 1) ? CRC32C_POLY : 0);
		table[i] = c;
	}
#if defined(__x86_64__)
	have_hw = __builtin_cpu_supports("sse4.2");
	crc32c_hw_ok = have_hw;
	have_vpclmul = have_hw && __builtin_cpu_supports("avx2") &&
		       __builtin_cpu_supports("vpclmulqdq") &&
		       __builtin_cpu_supports("pclmul");
	shift_init();
	fold_init();
#endif
}

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
/*
 * The crc32 instruction has a latency of three cycles and a throughput
 * of one, so the hardware path runs three streams at once over blocks of
 * 3 x SHORT bytes and merges them: the CRC of A followed by B is the CRC
 * of A shifted over len(B) zero bytes, xor the CRC of B (started from 0).
 * "Shifting over n zero bytes" is multiplication by x^(8n) modulo the
 * polynomial, done with four byte-indexed tables built at start-up.
 * (The technique is Mark Adler's, from his public-domain crc32c.c.)
 */
#define SHORT 256

static uint32_t shift_short[4][256];

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;

	for (; vec; vec >>= 1, mat++)
		if (vec & 1)
			sum ^= *mat;
	return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat)
{
	int n;

	for (n = 0; n < 32; n++)
		square[n] = gf2_times(mat, mat[n]);
}

/* The operator that appends @len zero bytes, in @even. */
static void zeros_op(uint32_t *even, size_t len)
{
	uint32_t odd[32], row = 1;
	int n;

	odd[0] = CRC32C_POLY; /* one zero bit */
	for (n = 1; n < 32; n++, row <<= 1)
		odd[n] = row;
	gf2_square(even, odd); /* two zero bits */
	gf2_square(odd, even); /* four */
	for (;;) {
		gf2_square(even, odd); /* one zero byte, then doubling */
		len >>= 1;
		if (!len)
			return;
		gf2_square(odd, even);
		len >>= 1;
		if (!len)
			break;
	}
	memcpy(even, odd, sizeof(odd));
}

static void shift_init(void)
{
	uint32_t op[32];
	uint32_t n;

	zeros_op(op, SHORT);
	for (n = 0; n < 256; n++) {
		shift_short[0][n] = gf2_times(op, n);
		shift_short[1][n] = gf2_times(op, n << 8);
		shift_short[2][n] = gf2_times(op, n << 16);
		shift_short[3][n] = gf2_times(op, n << 24);
	}
}

static uint32_t shift(uint32_t crc)
{
	return shift_short[0][crc & 0xff] ^ shift_short[1][(crc >> 8) & 0xff] ^
	       shift_short[2][(crc >> 16) & 0xff] ^ shift_short[3][crc >> 24];
}

/*
 * One stream of crc32 instructions, 8 bytes at a time, copying to @dst
 * on the way unless it is NULL: the tail of crc32c_hw(), and by itself
 * crc32c_hw_copy() for records too short to fold (no separate memcpy()
 * call, each word read once). Always inlined, so @dst is NULL or not at
 * compile time and no branch is left in the loops.
 */
__attribute__((target("sse4.2"), always_inline))
static inline uint32_t hw_stream(uint32_t crc, uint8_t *dst, const uint8_t *p,
				 size_t len)
{
	uint64_t c = crc, w;
	uint32_t w4;

	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&w, p, 8);
		if (dst) {
			memcpy(dst, &w, 8);
			dst += 8;
		}
		c = __builtin_ia32_crc32di(c, w);
	}
	crc = (uint32_t)c;
	if (len >= 4) {
		memcpy(&w4, p, 4);
		if (dst) {
			memcpy(dst, &w4, 4);
			dst += 4;
		}
		crc = __builtin_ia32_crc32si(crc, w4);
		p += 4;
		len -= 4;
	}
	for (; len; len--) {
		if (dst)
			*dst++ = *p;
		crc = __builtin_ia32_crc32qi(crc, *p++);
	}
	return crc;
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c0 = crc, c1, c2, a, b, c;
	const uint8_t *end;

	for (; len >= 3 * SHORT; len -= 3 * SHORT, p += 2 * SHORT) {
		c1 = c2 = 0;
		for (end = p + SHORT; p < end; p += 8) {
			memcpy(&a, p, 8);
			memcpy(&b, p + SHORT, 8);
			memcpy(&c, p + 2 * SHORT, 8);
			c0 = __builtin_ia32_crc32di(c0, a);
			c1 = __builtin_ia32_crc32di(c1, b);
			c2 = __builtin_ia32_crc32di(c2, c);
		}
		c0 = shift((uint32_t)c0) ^ (uint32_t)c1;
		c0 = shift((uint32_t)c0) ^ (uint32_t)c2;
	}
	return hw_stream((uint32_t)c0, NULL, p, len);
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw_copy(uint32_t crc, uint8_t *dst, const uint8_t *p,
			       size_t len)
{
	return hw_stream(crc, dst, p, len);
}

/*
 * Folding. Read in stream order, a 16-byte block is a polynomial of
 * degree < 128 whose first bit is the highest coefficient; with its two
 * little-endian 64-bit halves lo and hi, block = lo(x) x^64 + hi(x), each
 * half "reflected" (bit j is the coefficient of x^(63 - j)). Moving a
 * block F bits further down the stream multiplies it by x^F, and modulo
 * P that is
 *
 *	lo(x) (x^(64+F) mod P) + hi(x) (x^F mod P),
 *
 * a sum of two carry-less products of degree < 128 that is xored into
 * the block F bits on. A product of two reflected 64-bit operands comes
 * out one bit short (it is the product divided by x), hence the
 * constants x^(64+F-1) and x^(F-1). The initial CRC is xored into the
 * first four bytes; what is left after folding is one 16-byte block,
 * congruent to the whole buffer modulo P, which the crc32 instruction
 * finishes together with the tail.
 */
#define POLY_NORMAL 0x1edc6f41U /* 0x82f63b78 bit-reversed */
#define FOLD_LANES_BYTES 128

static uint64_t fold_k[4]; /* F = 128: k1, k2; F = 1024: k1, k2 */

/* x^n mod P as a reflected 64-bit operand: x^i at bit 63 - i. */
static uint64_t xpow_mod(unsigned int n)
{
	uint64_t r = 1, out = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		r <<= 1;
		if (r & (1ULL << 32))
			r ^= (1ULL << 32) | POLY_NORMAL;
	}
	for (i = 0; i < 32; i++)
		if (r & (1ULL << i))
			out |= 1ULL << (63 - i);
	return out;
}

static void fold_init(void)
{
	fold_k[0] = xpow_mod(64 + 128 - 1);
	fold_k[1] = xpow_mod(128 - 1);
	fold_k[2] = xpow_mod(64 + 8 * FOLD_LANES_BYTES - 1);
	fold_k[3] = xpow_mod(8 * FOLD_LANES_BYTES - 1);
}

#define FOLD_TARGET "vpclmulqdq,avx2,pclmul,sse4.2"

__attribute__((target(FOLD_TARGET)))
static inline __m128i fold16(__m128i x, __m128i k, __m128i next)
{
	return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
					   _mm_clmulepi64_si128(x, k, 0x11)),
			     next);
}

/*
 * Fold @len >= FOLD_LANES_BYTES bytes at @p; with @dst, also store what
 * is loaded there (the copy rides on the loads the folding makes anyway,
 * and the stores overlap the carry-less multiplies). @crc and the result
 * are not inverted. Always inlined into its two callers, where @dst is
 * NULL or not at compile time, so no branch is left in the loops.
 */
__attribute__((target(FOLD_TARGET), always_inline))
static inline uint32_t fold(uint32_t crc, uint8_t *dst, const uint8_t *p,
			    size_t len)
{
	const __m128i k16 = _mm_set_epi64x((long long)fold_k[1],
					   (long long)fold_k[0]);
	const __m256i k128 = _mm256_set_epi64x(
		(long long)fold_k[3], (long long)fold_k[2],
		(long long)fold_k[3], (long long)fold_k[2]);
	__m256i y[4], v;
	__m128i x, b;
	uint64_t c;
	int i;

	for (i = 0; i < 4; i++) {
		y[i] = _mm256_loadu_si256((const void *)(p + 32 * i));
		if (dst)
			_mm256_storeu_si256((void *)(dst + 32 * i), y[i]);
	}
	y[0] = _mm256_xor_si256(y[0], _mm256_zextsi128_si256(
					      _mm_cvtsi32_si128((int)crc)));
	for (p += 128, len -= 128; len >= 128; len -= 128, p += 128) {
		if (dst)
			dst += 128;
		for (i = 0; i < 4; i++) {
			v = _mm256_loadu_si256((const void *)(p + 32 * i));
			if (dst)
				_mm256_storeu_si256((void *)(dst + 32 * i), v);
			y[i] = _mm256_xor_si256(
				_mm256_xor_si256(
					_mm256_clmulepi64_epi128(y[i], k128, 0),
					_mm256_clmulepi64_epi128(y[i], k128,
								 0x11)),
				v);
		}
	}
	if (dst)
		dst += 128;
	/* Eight blocks in stream order: fold each into the next. */
	x = _mm256_castsi256_si128(y[0]);
	x = fold16(x, k16, _mm256_extracti128_si256(y[0], 1));
	for (i = 1; i < 4; i++) {
		x = fold16(x, k16, _mm256_castsi256_si128(y[i]));
		x = fold16(x, k16, _mm256_extracti128_si256(y[i], 1));
	}
	for (; len >= 16; len -= 16, p += 16) {
		b = _mm_loadu_si128((const void *)p);
		if (dst) {
			_mm_storeu_si128((void *)dst, b);
			dst += 16;
		}
		x = fold16(x, k16, b);
	}
	if (dst)
		memcpy(dst, p, len);
	c = __builtin_ia32_crc32di(0, (uint64_t)_mm_cvtsi128_si64(x));
	c = __builtin_ia32_crc32di(c, (uint64_t)_mm_extract_epi64(x, 1));
	return crc32c_hw((uint32_t)c, p, len);
}

__attribute__((target(FOLD_TARGET)))
static uint32_t crc32c_fold(uint32_t crc, const uint8_t *p, size_t len)
{
	return fold(crc, NULL, p, len);
}

__attribute__((target(FOLD_TARGET)))
static uint32_t crc32c_fold_copy(uint32_t crc, uint8_t *dst, const uint8_t *p,
				 size_t len)
{
	return fold(crc, dst, p, len);
}
#endif

/*
 * Copy @len bytes from @src to @dst (not overlapping) and return the
 * CRC32C of them, continuing from @crc: one pass where the CPU can fold.
 */
uint32_t bring_crc32c_copy(uint32_t crc, void *dst, const void *src,
			   size_t len)
{
#if defined(__x86_64__)
	if (have_vpclmul && len >= 2 * FOLD_LANES_BYTES)
		return ~crc32c_fold_copy(~crc, dst, src, len);
	if (have_hw && len < 2 * FOLD_LANES_BYTES)
		return ~crc32c_hw_copy(~crc, dst, src, len);
#endif
	if (len)
		memcpy(dst, src, len);
	return bring_crc32c(crc, dst, len);
}

uint32_t bring_crc32c(uint32_t crc, const void *buf, size_t len)
{
	crc = ~crc;
#if defined(__x86_64__)
	if (have_vpclmul && len >= 2 * FOLD_LANES_BYTES)
		return ~crc32c_fold(crc, buf, len);
	if (have_hw)
		return ~crc32c_hw(crc, buf, len);
#endif
	return ~crc32c_sw(crc, buf, len);
}

/* For the selftest: force the table path. */
bool crc32c_has(enum crc32c_path path)
{
	switch (path) {
	case CRC32C_TABLE:
		return true;
	case CRC32C_SSE42:
		return have_hw;
	case CRC32C_FOLD:
		return have_vpclmul;
	}
	return false;
}

uint32_t crc32c_by(enum crc32c_path path, uint32_t crc, const void *buf,
		   size_t len)
{
	crc = ~crc;
#if defined(__x86_64__)
	if (path == CRC32C_FOLD && have_vpclmul && len >= FOLD_LANES_BYTES)
		return ~crc32c_fold(crc, buf, len);
	if (path != CRC32C_TABLE && have_hw)
		return ~crc32c_hw(crc, buf, len);
#endif
	return ~crc32c_sw(crc, buf, len);
}
