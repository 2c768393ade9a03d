// SPDX-License-Identifier: GPL-2.0
/*
 * push, next and shift on the default reader: order, zero copy, sizes,
 * framing, timeouts and the wrap point.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "bring.h"
#include "kselftest_harness.h"
#include "util.h"

RING_FIXTURE(4096, 0)

TEST_F(ring, messages_come_out_in_push_order)
{
	struct bring_msg msg;
	char buf[16];
	int i;

	for (i = 0; i < 20; i++) {
		int len = snprintf(buf, sizeof(buf), "msg-%d", i);

		ASSERT_EQ(0, bring_push(self->r, buf, len));
	}
	for (i = 0; i < 20; i++) {
		int len = snprintf(buf, sizeof(buf), "msg-%d", i);

		ASSERT_EQ(0, bring_next_timeout(self->r, &msg, 0));
		ASSERT_EQ(len, msg.len);
		ASSERT_EQ(0, memcmp(buf, msg.data, len));
		ASSERT_EQ(0, bring_shift(self->r));
	}
	ASSERT_EQ(-EAGAIN, bring_next_timeout(self->r, &msg, 0));
}

TEST_F(ring, next_repeats_until_shift)
{
	struct bring_msg a, b;

	ASSERT_EQ(0, bring_push(self->r, "first", 5));
	ASSERT_EQ(0, bring_push(self->r, "second", 6));
	ASSERT_EQ(0, bring_next(self->r, &a));
	ASSERT_EQ(0, bring_next(self->r, &b));
	EXPECT_EQ(a.data, b.data);
	EXPECT_EQ(a.len, b.len);
	EXPECT_EQ(a.seq, b.seq);
	ASSERT_EQ(0, bring_shift(self->r));
	ASSERT_EQ(0, bring_next(self->r, &b));
	EXPECT_EQ(6, b.len);
	EXPECT_EQ(0, memcmp("second", b.data, 6));
	EXPECT_GT(b.seq, a.seq);
}

TEST_F(ring, shift_without_next_is_enodata)
{
	struct bring_msg msg;

	EXPECT_EQ(-ENODATA, bring_shift(self->r));
	ASSERT_EQ(0, bring_push(self->r, "x", 1));
	EXPECT_EQ(-ENODATA, bring_shift(self->r));
	ASSERT_EQ(0, bring_next(self->r, &msg));
	EXPECT_EQ(0, bring_shift(self->r));
	EXPECT_EQ(-ENODATA, bring_shift(self->r));
	/* The message is gone: nothing to read, no corruption. */
	EXPECT_EQ(-EAGAIN, bring_next_timeout(self->r, &msg, 0));
}

TEST_F(ring, data_points_into_the_ring)
{
	struct bring_msg msg, two[2];
	uint8_t payload[100];

	memset(payload, 0xab, sizeof(payload));
	ASSERT_EQ(0, bring_push(self->r, payload, sizeof(payload)));
	ASSERT_EQ(0, bring_push(self->r, "y", 1));
	ASSERT_EQ(0, bring_next(self->r, &msg));
	/* Zero copy: not our buffer, but ring memory, framed as documented. */
	EXPECT_NE((const void *)payload, msg.data);
	ASSERT_EQ(2, bring_peek(self->r, two, 2, 0, 0));
	EXPECT_EQ(msg.data, two[0].data);
	EXPECT_EQ((const char *)msg.data + 104 + 16, (const char *)two[1].data);
	/* Still valid and intact after more pushes, until shift. */
	ASSERT_EQ(0, bring_push(self->r, "z", 1));
	EXPECT_EQ(0, memcmp(payload, msg.data, sizeof(payload)));
}

TEST_F(ring, zero_length_messages_are_messages)
{
	struct bring_msg msg;

	ASSERT_EQ(0, bring_push(self->r, NULL, 0));
	ASSERT_EQ(0, bring_push(self->r, "z", 0));
	ASSERT_EQ(0, bring_push(self->r, "a", 1));
	ASSERT_EQ(0, bring_next_timeout(self->r, &msg, 0));
	EXPECT_EQ(0, msg.len);
	ASSERT_EQ(0, bring_shift(self->r));
	ASSERT_EQ(0, bring_next_timeout(self->r, &msg, 0));
	EXPECT_EQ(0, msg.len);
	ASSERT_EQ(0, bring_shift(self->r));
	ASSERT_EQ(0, bring_next_timeout(self->r, &msg, 0));
	EXPECT_EQ(1, msg.len);
}

TEST_F(ring, null_data_with_length_is_einval)
{
	EXPECT_EQ(-EINVAL, bring_push(self->r, NULL, 1));
}

TEST_F(ring, oversized_message_is_emsgsize_even_when_full)
{
	size_t max = bring_max_msg(self->r);
	static uint8_t big[8192];

	EXPECT_EQ(-EMSGSIZE, bring_push(self->r, big, max + 1));
	/* Fill the ring completely. */
	ASSERT_EQ(0, bring_push_timeout(self->r, big, max, 0));
	EXPECT_EQ(-EAGAIN, bring_push_timeout(self->r, big, 0, 0));
	/* Still -EMSGSIZE at once: not -EAGAIN, and no wait. */
	EXPECT_EQ(-EMSGSIZE, bring_push(self->r, big, max + 1));
	EXPECT_EQ(-EMSGSIZE, bring_push_timeout(self->r, big, 1 << 20, -1));
}

/* 16 bytes of header per message, payload rounded up to 8. */
TEST_F(ring, framing_is_16_bytes_plus_alignment)
{
	/* Payload length, and the footprint of such a message. */
	static const struct {
		size_t len;
		size_t footprint;
	} sizes[] = { { 8, 24 }, { 1, 24 }, { 0, 16 } };
	size_t cap = bring_capacity(self->r), n, i;
	char b[64] = { 0 };

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (i) {
			bring_free(self->r);
			self->r = bring_new(4096, NULL);
			ASSERT_NE_NULL(self->r);
		}
		n = 0;
		while (bring_push_timeout(self->r, b, sizes[i].len, 0) == 0)
			n++;
		EXPECT_EQ(cap / sizes[i].footprint, n)
			TH_LOG("messages of %zu bytes", sizes[i].len);
	}
}

TEST_F(ring, push_timeout_zero_on_full_ring_is_eagain)
{
	static uint8_t big[4096];

	ASSERT_EQ(0, bring_push(self->r, big, bring_max_msg(self->r)));
	EXPECT_EQ(-EAGAIN, bring_push_timeout(self->r, "x", 1, 0));
}

TEST_F(ring, push_timeout_expires_with_etimedout)
{
	static uint8_t big[4096];
	uint64_t t0;

	ASSERT_EQ(0, bring_push(self->r, big, bring_max_msg(self->r)));
	t0 = now_ns();
	EXPECT_EQ(-ETIMEDOUT, bring_push_timeout(self->r, "x", 1, 50));
	EXPECT_GE(now_ns() - t0, 50 * MS);
}

TEST_F(ring, next_timeout_zero_on_empty_ring_is_eagain)
{
	struct bring_msg msg;

	EXPECT_EQ(-EAGAIN, bring_next_timeout(self->r, &msg, 0));
}

TEST_F(ring, next_timeout_expires_with_etimedout)
{
	struct bring_msg msg;
	uint64_t t0 = now_ns();

	EXPECT_EQ(-ETIMEDOUT, bring_next_timeout(self->r, &msg, 30));
	EXPECT_GE(now_ns() - t0, 30 * MS);
}

TEST_F(ring, seq_increases_with_footprint)
{
	struct bring_msg a, b;

	ASSERT_EQ(0, bring_push(self->r, "abc", 3));
	ASSERT_EQ(0, bring_push(self->r, "d", 1));
	ASSERT_EQ(0, bring_next(self->r, &a));
	ASSERT_EQ(0, bring_shift(self->r));
	ASSERT_EQ(0, bring_next(self->r, &b));
	EXPECT_EQ(a.seq + 24, b.seq);
}

struct drain_arg {
	struct bring *r;
	size_t count;
	size_t bytes;
	int bad;
};

static void *drain(void *p)
{
	struct drain_arg *d = p;
	struct bring_msg msg;

	while (bring_next(d->r, &msg) == 0) {
		const uint8_t *b = msg.data;

		if (msg.len && (b[0] != (uint8_t)msg.len ||
				b[msg.len - 1] != (uint8_t)msg.len))
			d->bad++;
		d->count++;
		d->bytes += msg.len;
		bring_shift(d->r);
	}
	return NULL;
}

/*
 * The Benthos ring deadlocked when a frame over half the capacity landed
 * near the wrap point. Push maximal and odd-sized messages so that they
 * start at every offset: each must be accepted as the reader drains.
 */
TEST_F_TIMEOUT(ring, every_max_size_message_fits_near_the_wrap, 60)
{
	static uint8_t buf[4096];
	size_t max = bring_max_msg(self->r), sent = 0, i;
	struct drain_arg d = { .r = self->r };
	pthread_t t;

	ASSERT_EQ(0, pthread_create(&t, NULL, drain, &d));
	for (i = 0; i < 3000; i++) {
		size_t len = (i % 3) ? max - (i % 97) : (i * 8) % 200;

		memset(buf, (uint8_t)len, len);
		ASSERT_EQ(0, bring_push(self->r, buf, len));
		sent += len;
	}
	bring_close(self->r);
	pthread_join(t, NULL);
	EXPECT_EQ(3000, d.count);
	EXPECT_EQ(sent, d.bytes);
	EXPECT_EQ(0, d.bad);
}

TEST_HARNESS_MAIN
