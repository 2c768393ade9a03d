/* SPDX-License-Identifier: GPL-2.0 */
/*
 * baselines.h - a plain byte ring shared by the baseline transports.
 *
 * Frames are a 4-byte length followed by the payload, packed with no
 * alignment; a frame that runs past the end of the buffer continues at
 * its start, so every access is split in at most two memcpy() calls.
 */
#ifndef BENCH_RING_BASELINES_H
#define BENCH_RING_BASELINES_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR 4U

struct bytering {
	uint8_t *buf;
	size_t cap; /* a power of two */
};

int bytering_init(struct bytering *b, size_t cap);
void bytering_free(struct bytering *b);
void bytering_put(const struct bytering *b, uint64_t pos, const void *src,
		  size_t len);
void bytering_get(const struct bytering *b, uint64_t pos, void *dst,
		  size_t len);

/* Append one frame at @pos; returns the bytes it took. */
static inline size_t bytering_put_frame(const struct bytering *b,
					uint64_t pos, const void *msg,
					size_t len)
{
	uint32_t len32 = (uint32_t)len;

	bytering_put(b, pos, &len32, FRAME_HDR);
	bytering_put(b, pos + FRAME_HDR, msg, len);
	return FRAME_HDR + len;
}

/* Length of the frame at @pos. */
static inline size_t bytering_frame_len(const struct bytering *b,
					uint64_t pos)
{
	uint32_t len32;

	bytering_get(b, pos, &len32, FRAME_HDR);
	return len32;
}

#endif /* BENCH_RING_BASELINES_H */
