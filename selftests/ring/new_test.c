// SPDX-License-Identifier: GPL-2.0
/*
 * bring_new(): capacity rounding, options and their errors.
 */
#include <errno.h>
#include <string.h>

#include "bring.h"
#include "kselftest_harness.h"

TEST(capacity_zero_is_einval)
{
	errno = 0;
	ASSERT_NULL(bring_new(0, NULL));
	ASSERT_EQ(EINVAL, errno);
}

TEST(capacity_above_limit_is_einval)
{
	errno = 0;
	ASSERT_NULL(bring_new((size_t)1 << 41, NULL));
	ASSERT_EQ(EINVAL, errno);
}

TEST(capacity_rounds_up_to_power_of_two)
{
	struct bring *r = bring_new(5000, NULL);

	ASSERT_NE_NULL(r);
	EXPECT_EQ(8192, bring_capacity(r));
	bring_free(r);
	r = bring_new(1, NULL);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(4096, bring_capacity(r));
	bring_free(r);
	r = bring_new(1 << 20, NULL);
	ASSERT_NE_NULL(r);
	EXPECT_EQ(1 << 20, bring_capacity(r));
	bring_free(r);
}

TEST(default_max_msg_is_capacity_minus_header)
{
	struct bring *r = bring_new(65536, NULL);

	ASSERT_NE_NULL(r);
	EXPECT_EQ(65536 - 16, bring_max_msg(r));
	EXPECT_GE(bring_max_msg(r), bring_capacity(r) / 2);
	bring_free(r);
}

TEST(max_msg_option_is_honoured)
{
	BRING_OPTS(opts, .max_msg = 100);
	struct bring *r = bring_new(4096, &opts);

	ASSERT_NE_NULL(r);
	EXPECT_EQ(100, bring_max_msg(r));
	EXPECT_EQ(-EMSGSIZE, bring_push(r, "x", 101));
	EXPECT_EQ(0, bring_push_timeout(r, NULL, 0, 0));
	bring_free(r);
}

TEST(max_msg_that_cannot_fit_is_einval)
{
	BRING_OPTS(opts, .max_msg = 4096 - 15);

	errno = 0;
	ASSERT_NULL(bring_new(4096, &opts));
	ASSERT_EQ(EINVAL, errno);
	opts.max_msg = 4096 - 16;
	struct bring *r = bring_new(4096, &opts);
	ASSERT_NE_NULL(r);
	bring_free(r);
}

TEST(opts_sz_too_small_is_einval)
{
	struct bring_opts opts = { .sz = 4 };

	errno = 0;
	ASSERT_NULL(bring_new(4096, &opts));
	ASSERT_EQ(EINVAL, errno);
}

/* An older caller passes a shorter struct: fields past sz are defaults. */
TEST(opts_from_older_caller_are_accepted)
{
	struct bring_opts opts = { .sz = offsetof(struct bring_opts, max_msg),
				   .name = "old" };
	struct bring *r = bring_new(4096, &opts);

	ASSERT_NE_NULL(r);
	EXPECT_STREQ("old", bring_name(r));
	EXPECT_EQ(4096 - 16, bring_max_msg(r));
	bring_free(r);
}

/* A newer caller's struct: unknown trailing bytes must be zero. */
TEST(opts_unknown_trailing_bytes_are_einval)
{
	struct {
		struct bring_opts opts;
		long future_field;
	} big;

	memset(&big, 0, sizeof(big));
	big.opts.sz = sizeof(big);
	struct bring *r = bring_new(4096, &big.opts);
	ASSERT_NE_NULL(r) TH_LOG("zero trailing bytes must be accepted");
	bring_free(r);
	big.future_field = 1;
	errno = 0;
	ASSERT_NULL(bring_new(4096, &big.opts));
	ASSERT_EQ(EINVAL, errno);
}

TEST(unknown_flags_are_einval)
{
	BRING_OPTS(opts, .flags = 1U << 7);

	errno = 0;
	ASSERT_NULL(bring_new(4096, &opts));
	ASSERT_EQ(EINVAL, errno);
}

TEST(name_defaults_and_is_kept)
{
	BRING_OPTS(opts, .name = "access-log");
	struct bring *r = bring_new(4096, NULL);

	ASSERT_NE_NULL(r);
	EXPECT_STREQ("bring", bring_name(r));
	bring_free(r);
	r = bring_new(4096, &opts);
	ASSERT_NE_NULL(r);
	EXPECT_STREQ("access-log", bring_name(r));
	bring_free(r);
}

TEST(name_too_long_is_enametoolong)
{
	char name[BRING_NAME_MAX + 1];

	memset(name, 'n', sizeof(name) - 1);
	name[BRING_NAME_MAX] = '\0';
	BRING_OPTS(opts, .name = name);
	errno = 0;
	ASSERT_NULL(bring_new(4096, &opts));
	ASSERT_EQ(ENAMETOOLONG, errno);
	name[BRING_NAME_MAX - 1] = '\0';
	struct bring *r = bring_new(4096, &opts);
	ASSERT_NE_NULL(r);
	bring_free(r);
}

TEST(free_and_close_accept_null)
{
	bring_free(NULL);
	bring_close(NULL);
	bring_reader_close(NULL);
}

TEST(null_ring_arguments_are_einval)
{
	struct bring_msg msg;
	struct bring_resv resv;
	struct bring_stats st = { .sz = sizeof(st) };

	EXPECT_EQ(-EINVAL, bring_push(NULL, "x", 1));
	EXPECT_EQ(-EINVAL, bring_push_batch(NULL, &msg, 1, 0));
	EXPECT_EQ(-EINVAL, bring_reserve(NULL, 1, &resv, 0));
	EXPECT_EQ(-EINVAL, bring_next_timeout(NULL, &msg, 0));
	EXPECT_EQ(-EINVAL, bring_peek(NULL, &msg, 1, 0, 0));
	EXPECT_EQ(-EINVAL, bring_shift(NULL));
	EXPECT_EQ(-EINVAL, bring_get_stats(NULL, &st));
	EXPECT_EQ(-EINVAL, bring_reader_shift(NULL));
	EXPECT_EQ(-EINVAL, bring_reader_next(NULL, &msg, 0));
	errno = 0;
	EXPECT_NULL(bring_reader_open(NULL, "x"));
	EXPECT_EQ(EINVAL, errno);
}

TEST_HARNESS_MAIN
