// SPDX-License-Identifier: GPL-2.0
/*
 * harness_test.c - tests of selftests/kselftest_harness.h itself.
 *
 * The binary holds two suites. Run as it is, it runs the "outer" suite
 * (fixtures "outer" and "filter"). Most outer tests execute the binary
 * again with HARNESS_TEST_INNER=1 in the environment, which runs the
 * "inner" suite instead: tests that pass, fail an ASSERT, fail EXPECTs and
 * go on, skip, crash, hang past their timeout, fail in setup... The outer
 * test then checks the inner run's TAP output, line by line, and its exit
 * status.
 */
#include "kselftest_harness.h"

#include <pthread.h>
#include <stdbool.h>

#define INNER_ENV "HARNESS_TEST_INNER"

/* ----------------------------------------------------------------------- */
/* The inner suite: misbehaves on purpose.                                 */

TEST(pass)
{
	EXPECT_EQ(1, 1);
	ASSERT_TRUE(1);
	TH_LOG("a message\nof two lines");
}

/* The outer suite expects the ASSERT on the line after the TH_LOG. */
TEST(fail_assert)
{
	int one = 1, two = 2;

	TH_LOG("before the assert");
	ASSERT_EQ(one, two);
	TH_LOG("not reached");
}

/* The outer suite expects these checks on consecutive lines. */
TEST(fail_expect)
{
	int one = 1, two = 2, minus_one = -1, zero = 0;
	uint64_t big = UINT64_MAX;
	const char *str = "abd";
	void *ptr = (void *)0x1000;

	TH_LOG("before the expects");
	EXPECT_EQ(one, two) TH_LOG("custom %d", 7);
	EXPECT_EQ(minus_one, big);
	EXPECT_STREQ("abc", str);
	EXPECT_LT(2.5, 1.5);
	EXPECT_NULL(ptr);
	EXPECT_TRUE(zero);
	EXPECT_GE(minus_one, big);
	TH_LOG("still running");
}

TEST(skip)
{
	SKIP(return, "not today %d", 42);
	TH_LOG("not reached");
}

/* Failing wins over skipping. */
TEST(fail_then_skip)
{
	EXPECT_EQ(1, 2);
	SKIP(return, "too late");
}

TEST(crash_abort)
{
	abort();
}

TEST(crash_segv)
{
	/* Sanitizers catch SIGSEGV; give it back its default action. */
	signal(SIGSEGV, SIG_DFL);
	raise(SIGSEGV);
	TH_LOG("not reached");
}

TEST_TIMEOUT(hang, 1)
{
	for (;;)
		pause();
}

TEST_SIGNAL(expected_abort, SIGABRT)
{
	abort();
}

TEST_SIGNAL(missing_signal, SIGABRT)
{
}

static void *assert_in_thread(void *arg)
{
	struct __test_metadata *_metadata = arg;

	ASSERT_EQ(1, 2);
	return NULL;
}

TEST(thread_assert)
{
	pthread_t th;

	ASSERT_EQ(0, pthread_create(&th, NULL, assert_in_thread, _metadata));
	pthread_join(th, NULL);
	TH_LOG("not reached");
}

TEST(exit_status)
{
	exit(3);
}

/* Its child would keep the output pipe open if the harness left it. */
TEST(leaves_a_child)
{
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid)
		for (;;)
			pause();
}

FIXTURE(inner) {
	int size;
};

FIXTURE_VARIANT(inner) {
	int size;
};

FIXTURE_VARIANT_ADD(inner, small) {
	.size = 8,
};

FIXTURE_VARIANT_ADD(inner, large) {
	.size = 64,
};

FIXTURE_SETUP(inner)
{
	ASSERT_EQ(0, self->size);
	self->size = variant->size;
	TH_LOG("setup %d", self->size);
}

FIXTURE_TEARDOWN(inner)
{
	TH_LOG("teardown %d", self->size);
}

TEST_F(inner, size)
{
	ASSERT_EQ(variant->size, self->size);
}

TEST_F(inner, overflow)
{
	if (variant->size > 8)
		SKIP(return, "small rings only");
	ASSERT_EQ(9, self->size);
	TH_LOG("not reached");
}

TEST_F_TIMEOUT(inner, quick, 5)
{
	EXPECT_GT(self->size, 0);
}

FIXTURE(plain) {
	int calls;
};

FIXTURE_SETUP(plain)
{
	self->calls++;
}

FIXTURE_TEARDOWN(plain)
{
	TH_LOG("plain teardown");
}

TEST_F(plain, works)
{
	ASSERT_NULL(variant);
	ASSERT_EQ(1, self->calls);
}

/* No teardown when a helper thread fails: the test may still be running. */
TEST_F(plain, helper_assert)
{
	pthread_t th;

	ASSERT_EQ(0, pthread_create(&th, NULL, assert_in_thread, _metadata));
	pthread_join(th, NULL);
	TH_LOG("not reached");
}

FIXTURE(badsetup) {
	int zero;
};

FIXTURE_SETUP(badsetup)
{
	ASSERT_TRUE(self->zero);
	TH_LOG("not reached");
}

FIXTURE_TEARDOWN(badsetup)
{
	TH_LOG("teardown must not run");
}

TEST_F(badsetup, body)
{
	TH_LOG("body must not run");
}

FIXTURE(skipsetup) {
	int unused;
};

FIXTURE_SETUP(skipsetup)
{
	SKIP(return, "setup skipped");
}

FIXTURE_TEARDOWN(skipsetup)
{
	TH_LOG("teardown must not run");
}

TEST_F(skipsetup, body)
{
	TH_LOG("body must not run");
}

/* ----------------------------------------------------------------------- */
/* Running the inner suite and reading its output.                         */

struct run {
	char *out;	/* its standard output */
	char **line;	/* out split at newlines */
	int nr;
	char err[4096];	/* the start of its standard error */
	int status;	/* exit status, or 128 + signal */
	double secs;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->line);
	memset(r, 0, sizeof(*r));
}

static void dump(struct __test_metadata *_metadata, const struct run *r)
{
	int i;

	TH_LOG("inner run: status %d, %d lines:", r->status, r->nr);
	for (i = 0; i < r->nr; i++)
		TH_LOG("| %s", r->line[i]);
	if (r->err[0])
		TH_LOG("standard error:\n%s", r->err);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs the inner suite with these arguments (NULL-terminated). */
static void run_inner(struct __test_metadata *_metadata, struct run *r,
		      const char *const *args)
{
	size_t len = 0, cap = 0;
	char *argv[32], *p;
	int fds[2], status, n = 0, i;
	double start = now();
	FILE *err = tmpfile();
	ssize_t got;
	pid_t pid;

	run_free(r);
	argv[n++] = "harness_test";
	for (i = 0; args && args[i]; i++) {
		ASSERT_LT(n, 31);
		argv[n++] = (char *)args[i];
	}
	argv[n] = NULL;

	ASSERT_NE_NULL(err) TH_LOG("tmpfile: %s", strerror(errno));
	ASSERT_EQ(0, pipe(fds)) TH_LOG("pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid) TH_LOG("fork: %s", strerror(errno));
	if (!pid) {
		dup2(fds[1], STDOUT_FILENO);
		dup2(fileno(err), STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		setenv(INNER_ENV, "1", 1);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		if (cap - len < 4096) {
			cap = cap * 2 + 8192;
			p = realloc(r->out, cap);
			ASSERT_NE_NULL(p);
			r->out = p;
		}
		got = read(fds[0], r->out + len, cap - len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		ASSERT_LE(0, got) TH_LOG("read: %s", strerror(errno));
		if (!got)
			break;
		len += got;
	}
	close(fds[0]);
	r->out[len] = '\0';
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	r->secs = now() - start;
	rewind(err);
	r->err[fread(r->err, 1, sizeof(r->err) - 1, err)] = '\0';
	fclose(err);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) :
					128 + WTERMSIG(status);

	r->line = calloc(len + 1, sizeof(*r->line));
	ASSERT_NE_NULL(r->line);
	for (p = r->out; *p; p++) {
		r->line[r->nr++] = p;
		p = strchrnul(p, '\n');
		if (!*p)
			break;
		*p = '\0';
	}
}

/* Index of the first line at or after from equal to s, or -1. */
static int find(const struct run *r, int from, const char *s)
{
	for (; from < r->nr; from++)
		if (!strcmp(r->line[from], s))
			return from;
	return -1;
}

/* Same, for a line that contains s. */
static int find_part(const struct run *r, int from, const char *s)
{
	for (; from < r->nr; from++)
		if (strstr(r->line[from], s))
			return from;
	return -1;
}

static bool is_result(const char *l)
{
	return !strncmp(l, "ok ", 3) || !strncmp(l, "not ok ", 7);
}

/* "fixture.variant.test" from a result line, in buf. */
static const char *result_id(const char *l, char *buf, size_t sz)
{
	const char *end;

	l = strchr(l + (*l == 'n' ? 7 : 3), ' ') + 1;
	end = strstr(l, " # ");
	snprintf(buf, sz, "%.*s", end ? (int)(end - l) : (int)strlen(l), l);
	return buf;
}

/*
 * Checks that the output is TAP 13 whose results are exactly tap[] (NULL
 * terminated), that every result comes after its RUN and verdict lines,
 * and that it ends with the summary lines.
 */
static void check_tap(struct __test_metadata *_metadata, const struct run *r,
		      const char *const *tap)
{
	int i, n = 0, nr_tap = 0, last = 3;
	char buf[256], id[128];
	const char *verdict;

	while (tap[nr_tap])
		nr_tap++;
	ASSERT_LE(4, r->nr) dump(_metadata, r);
	ASSERT_STREQ("TAP version 13", r->line[0]);
	snprintf(buf, sizeof(buf), "1..%d", nr_tap);
	ASSERT_STREQ(buf, r->line[1]);
	ASSERT_EQ(0, strncmp(r->line[2], "# Starting ", 11));
	for (i = 3; i < r->nr; i++) {
		const char *l = r->line[i];

		if (l[0] == '#')
			continue;
		ASSERT_TRUE(is_result(l)) TH_LOG("not TAP: \"%s\"", l);
		ASSERT_LT(n, nr_tap) TH_LOG("extra result \"%s\"", l);
		EXPECT_STREQ(tap[n], l);
		n++;

		result_id(l, id, sizeof(id));
		verdict = l[0] == 'n' ? "FAIL" : strstr(l, " # SKIP") ? "SKIP" :
								  "OK";
		snprintf(buf, sizeof(buf), "#          %4s  %s", verdict, id);
		EXPECT_STREQ(buf, r->line[i - 1]);
		snprintf(buf, sizeof(buf), "#  RUN           %s ...", id);
		EXPECT_EQ(last, find(r, last, buf)) TH_LOG("no RUN for %s", id);
		last = i + 1;
	}
	ASSERT_EQ(nr_tap, n) dump(_metadata, r);
	/* Only the summary after the last result. */
	ASSERT_EQ(r->nr - 2, last) dump(_metadata, r);
	ASSERT_EQ(0, strncmp(r->line[last], "# ", 2));
	ASSERT_EQ(0, strncmp(r->line[last + 1], "# Totals: ", 10));
}

/* ----------------------------------------------------------------------- */
/* The outer suite.                                                        */

FIXTURE(outer) {
	struct run run;
};

FIXTURE_SETUP(outer)
{
}

FIXTURE_TEARDOWN(outer)
{
	run_free(&self->run);
}

static const char *const full_tap[] = {
	"ok 1 global.pass",
	"not ok 2 global.fail_assert",
	"not ok 3 global.fail_expect",
	"ok 4 global.skip # SKIP not today 42",
	"not ok 5 global.fail_then_skip",
	"not ok 6 global.crash_abort",
	"not ok 7 global.crash_segv",
	"not ok 8 global.hang # TIMEOUT",
	"ok 9 global.expected_abort",
	"not ok 10 global.missing_signal",
	"not ok 11 global.thread_assert",
	"not ok 12 global.exit_status",
	"ok 13 global.leaves_a_child",
	"ok 14 inner.small.size",
	"not ok 15 inner.small.overflow",
	"ok 16 inner.small.quick",
	"ok 17 inner.large.size",
	"ok 18 inner.large.overflow # SKIP small rings only",
	"ok 19 inner.large.quick",
	"ok 20 plain.works",
	"not ok 21 plain.helper_assert",
	"not ok 22 badsetup.body",
	"ok 23 skipsetup.body # SKIP setup skipped",
	NULL
};

TEST_F_TIMEOUT(outer, full_run, 120)
{
	struct run *r = &self->run;
	int i;

	run_inner(_metadata, r, NULL);
	ASSERT_EQ(KSFT_FAIL, r->status) dump(_metadata, r);
	check_tap(_metadata, r, full_tap);
	ASSERT_EQ(2, find(r, 0, "# Starting 23 tests from 6 test cases."));
	ASSERT_STREQ("# FAILED: 11 / 23 tests passed.", r->line[r->nr - 2]);
	ASSERT_STREQ("# Totals: pass:8 fail:12 xfail:0 xpass:0 skip:3 error:0",
		     r->line[r->nr - 1]);
	EXPECT_LT(0, find_part(r, 0, ":works:plain teardown"));
	EXPECT_LT(0, find_part(r, 0, ":helper_assert:Expected 1 (1) == 2"));
	EXPECT_EQ(-1, find_part(r, 0, ":helper_assert:plain teardown"));
	i = find_part(r, 0, ":pass:a message");
	ASSERT_LT(0, i);
	EXPECT_STREQ("# of two lines", r->line[i + 1]);
	EXPECT_EQ(-1, find_part(r, 0, "not reached")) dump(_metadata, r);
	EXPECT_EQ(-1, find_part(r, 0, "must not run")) dump(_metadata, r);
}

TEST_F(outer, assert_output)
{
	static const char *const args[] = { "-t", "fail_assert", NULL };
	struct run *r = &self->run;
	char buf[256];
	int i, line;

	run_inner(_metadata, r, args);
	ASSERT_EQ(KSFT_FAIL, r->status);
	i = find_part(r, 0, ":fail_assert:before the assert");
	ASSERT_LT(0, i) dump(_metadata, r);
	ASSERT_EQ(1, sscanf(r->line[i], "# harness_test.c:%d:", &line))
		dump(_metadata, r);
	snprintf(buf, sizeof(buf),
		 "# harness_test.c:%d:fail_assert:Expected one (1) == two (2)",
		 line + 1);
	EXPECT_STREQ(buf, r->line[i + 1]);
	EXPECT_STREQ("#          FAIL  global.fail_assert", r->line[i + 2]);
	EXPECT_STREQ("not ok 1 global.fail_assert", r->line[i + 3]);
	EXPECT_STREQ("# FAILED: 0 / 1 tests passed.", r->line[r->nr - 2]);
}

TEST_F(outer, expect_output)
{
	static const char *const args[] = { "-t", "fail_expect", NULL };
	static const char *const want[] = {
		"Expected one (1) == two (2)",
		"custom 7",
		"Expected minus_one (-1) == big (18446744073709551615)",
		"Expected \"abc\" (\"abc\") == str (\"abd\")",
		"Expected 2.5 (2.5) < 1.5 (1.5)",
		"Expected NULL (0) == ptr (0x1000)",
		"Expected 0 (0) != zero (0)",
		"Expected minus_one (-1) >= big (18446744073709551615)",
		"still running",
		NULL
	};
	struct run *r = &self->run;
	int i, j, line, off = 0;
	char buf[256];

	run_inner(_metadata, r, args);
	ASSERT_EQ(KSFT_FAIL, r->status);
	i = find_part(r, 0, ":fail_expect:before the expects");
	ASSERT_LT(0, i) dump(_metadata, r);
	ASSERT_EQ(1, sscanf(r->line[i], "# harness_test.c:%d:", &line));
	for (j = 0; want[j]; j++) {
		/* The custom message shares its check's line. */
		off += strcmp(want[j], "custom 7") != 0;
		snprintf(buf, sizeof(buf), "# harness_test.c:%d:fail_expect:%s",
			 line + off, want[j]);
		EXPECT_STREQ(buf, r->line[i + 1 + j]);
	}
	EXPECT_STREQ("not ok 1 global.fail_expect", r->line[i + j + 2]);
}

TEST_F(outer, crash_output)
{
	static const char *const args[] = {
		"-t", "crash_abort", "-t", "crash_segv", "-t", "expected_abort",
		"-t", "missing_signal", "-t", "thread_assert",
		"-t", "exit_status", NULL
	};
	static const char *const tap[] = {
		"not ok 1 global.crash_abort",
		"not ok 2 global.crash_segv",
		"ok 3 global.expected_abort",
		"not ok 4 global.missing_signal",
		"not ok 5 global.thread_assert",
		"not ok 6 global.exit_status",
		NULL
	};
	static const char *const diag[] = {
		"# global.crash_abort: Test terminated unexpectedly by "
			"signal 6 (",
		"# global.crash_segv: Test terminated unexpectedly by "
			"signal 11 (",
		"# global.missing_signal: Test exited, expected signal 6",
		":thread_assert:Expected 1 (1) == 2 (2)",
		"# global.exit_status: Test exited with status 3",
		NULL
	};
	struct run *r = &self->run;
	int i;

	run_inner(_metadata, r, args);
	ASSERT_EQ(KSFT_FAIL, r->status);
	check_tap(_metadata, r, tap);
	for (i = 0; diag[i]; i++)
		EXPECT_LT(0, find_part(r, 0, diag[i])) TH_LOG("no %s", diag[i]);
	EXPECT_EQ(-1, find_part(r, 0, "not reached")) dump(_metadata, r);
	EXPECT_EQ(-1, find_part(r, 0, "expected_abort: Test"));
}

/* A 1 s timeout; 3 s in sanitized runs (the inner run inherits it). */
TEST_F(outer, timeout)
{
	static const char *const args[] = { "-t", "hang", NULL };
	static const char *const tap[] = {
		"not ok 1 global.hang # TIMEOUT", NULL
	};
	unsigned int secs = getenv("BRING_SANITIZED") ? 3 : 1;
	struct run *r = &self->run;
	char said[96];

	run_inner(_metadata, r, args);
	ASSERT_EQ(KSFT_FAIL, r->status);
	check_tap(_metadata, r, tap);
	snprintf(said, sizeof(said),
		 "# TIMEOUT: global.hang still running after %u s, killed",
		 secs);
	EXPECT_LT(0, find(r, 0, said));
	EXPECT_LE((double)secs, r->secs);
	EXPECT_GT(secs + 2.0, r->secs);
}

TEST_F(outer, fixture_order)
{
	static const char *const args[] = { "-f", "inner", NULL };
	static const char *const seq[] = {
		"#  RUN           inner.small.overflow ...",
		":overflow:setup 8",
		":overflow:Expected 9 (9) == self->size (8)",
		":overflow:teardown 8",
		"not ok 2 inner.small.overflow",
		"#  RUN           inner.large.overflow ...",
		":overflow:setup 64",
		"#      SKIP      small rings only",
		":overflow:teardown 64",
		"ok 5 inner.large.overflow # SKIP small rings only",
		NULL
	};
	struct run *r = &self->run;
	int i, at = 0;

	run_inner(_metadata, r, args);
	ASSERT_EQ(KSFT_FAIL, r->status);
	for (i = 0; seq[i]; i++) {
		at = find_part(r, at, seq[i]);
		ASSERT_LE(0, at) TH_LOG("missing, or out of order: %s", seq[i]);
	}
	EXPECT_EQ(-1, find_part(r, 0, "not reached"));
}

TEST_F(outer, bad_options)
{
	static const char *const unknown[] = { "-x", NULL };
	static const char *const no_name[] = { "-t", NULL };
	static const char *const help[] = { "-h", NULL };
	struct run *r = &self->run;

	run_inner(_metadata, r, unknown);
	EXPECT_EQ(KSFT_FAIL, r->status);
	EXPECT_EQ(0, r->nr);
	EXPECT_NE_NULL(strstr(r->err, "unknown option -x\nusage: "));
	run_inner(_metadata, r, no_name);
	EXPECT_EQ(KSFT_FAIL, r->status);
	EXPECT_EQ(0, r->nr);
	EXPECT_NE_NULL(strstr(r->err, "option -t needs a name\nusage: "));
	run_inner(_metadata, r, help);
	EXPECT_EQ(KSFT_PASS, r->status);
	EXPECT_LE(0, find_part(r, 0, "usage: "));
}

/* Passing checks of every kind: any failure here fails the outer suite. */
TEST_F(outer, compare_semantics)
{
	enum { A = 1, B = 2 } e = B;
	int neg = -1, x = 0;
	size_t one = 1;
	uint64_t big = UINT64_MAX;
	long long min = LLONG_MIN;
	unsigned char uc = 200;
	signed char sc = -100;
	char c = 'a', buf[4] = "abc";
	bool yes = true;
	double half = 0.5, nan = __builtin_nan("");
	float f = 1.5f;
	void *null = NULL;
	const char *s = "abc";

	/* Integers compare by value, not after C's usual conversions. */
	ASSERT_LT(neg, one);
	ASSERT_GT(one, neg);
	ASSERT_NE(neg, big);
	ASSERT_LT(min, big);
	ASSERT_LT(sc, uc);
	ASSERT_EQ(1, one);
	ASSERT_LE(big, big);
	ASSERT_GE(neg, min);
	/* Each operand is evaluated once. */
	ASSERT_EQ(0, x++);
	ASSERT_EQ(1, x);
	/* Pointers, characters, booleans, enums, floating point. */
	ASSERT_NULL(null);
	ASSERT_NE(NULL, &x);
	ASSERT_NE_NULL(buf);
	ASSERT_TRUE(&x);
	ASSERT_FALSE(null);
	ASSERT_EQ('a', c);
	ASSERT_TRUE(yes);
	ASSERT_EQ(B, e);
	ASSERT_LT(half, f);
	ASSERT_NE(nan, nan);
	EXPECT_GT(0.75, half);
	/* Strings. */
	ASSERT_STREQ(s, buf);
	ASSERT_STRNE("abd", buf);
	ASSERT_STRNE(NULL, s);
	/* A check is one statement: the else goes with the if. */
	if (x)
		ASSERT_EQ(1, x);
	else
		ASSERT_EQ(0, x);
	/* The statement after a check runs only when the check fails. */
	EXPECT_EQ(1, x) x = 100;
	ASSERT_EQ(1, x);
}

static void *expect_in_thread(void *arg)
{
	struct __test_metadata *_metadata = arg;
	int i;

	for (i = 0; i < 1000; i++)
		EXPECT_EQ(i, i);
	return NULL;
}

TEST_F(outer, threads)
{
	pthread_t th[4];
	int i;

	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, expect_in_thread,
					    _metadata));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_join(th[i], NULL));
}

/* Selecting tests: each variant runs the inner suite with a filter. */
FIXTURE(filter) {
	struct run run;
};

FIXTURE_VARIANT(filter) {
	const char *args[8];
	const char *tap[8];
	int status;
};

FIXTURE_VARIANT_ADD(filter, one_test) {
	.args = { "-t", "pass" },
	.tap = { "ok 1 global.pass" },
	.status = KSFT_PASS,
};

FIXTURE_VARIANT_ADD(filter, attached) {
	.args = { "-tpass" },
	.tap = { "ok 1 global.pass" },
	.status = KSFT_PASS,
};

FIXTURE_VARIANT_ADD(filter, fixtures) {
	.args = { "-f", "plain", "-f", "skipsetup" },
	.tap = { "ok 1 plain.works", "not ok 2 plain.helper_assert",
		 "ok 3 skipsetup.body # SKIP setup skipped" },
	.status = KSFT_FAIL,
};

FIXTURE_VARIANT_ADD(filter, variant) {
	.args = { "-f", "inner", "-v", "large" },
	.tap = { "ok 1 inner.large.size",
		 "ok 2 inner.large.overflow # SKIP small rings only",
		 "ok 3 inner.large.quick" },
	.status = KSFT_PASS,
};

FIXTURE_VARIANT_ADD(filter, tests) {
	.args = { "-t", "size", "-t", "works" },
	.tap = { "ok 1 inner.small.size", "ok 2 inner.large.size",
		 "ok 3 plain.works" },
	.status = KSFT_PASS,
};

FIXTURE_VARIANT_ADD(filter, exclude) {
	.args = { "-f", "inner", "-T", "overflow", "-V", "small" },
	.tap = { "ok 1 inner.large.size", "ok 2 inner.large.quick" },
	.status = KSFT_PASS,
};

FIXTURE_VARIANT_ADD(filter, full_id) {
	.args = { "-r", "inner.small.overflow", "-r", "global.pass" },
	.tap = { "ok 1 global.pass", "not ok 2 inner.small.overflow" },
	.status = KSFT_FAIL,
};

FIXTURE_VARIANT_ADD(filter, all_skipped) {
	.args = { "-t", "skip", "-t", "overflow", "-v", "large" },
	.tap = { "ok 1 inner.large.overflow # SKIP small rings only" },
	.status = KSFT_SKIP,
};

FIXTURE_VARIANT_ADD(filter, nothing) {
	.args = { "-t", "no_such_test" },
	.status = KSFT_SKIP,
};

FIXTURE_SETUP(filter)
{
}

FIXTURE_TEARDOWN(filter)
{
	run_free(&self->run);
}

TEST_F(filter, select)
{
	struct run *r = &self->run;

	run_inner(_metadata, r, variant->args);
	ASSERT_EQ(variant->status, r->status) dump(_metadata, r);
	check_tap(_metadata, r, variant->tap);
}

TEST_F(filter, list)
{
	const char *args[10] = { "-l" };
	struct run *r = &self->run;
	char id[128];
	int i;

	memcpy(args + 1, variant->args, sizeof(variant->args));
	run_inner(_metadata, r, args);
	ASSERT_EQ(KSFT_PASS, r->status);
	for (i = 0; variant->tap[i]; i++) {
		ASSERT_LT(i, r->nr) dump(_metadata, r);
		EXPECT_STREQ(result_id(variant->tap[i], id, sizeof(id)),
			     r->line[i]);
	}
	EXPECT_EQ(i, r->nr) dump(_metadata, r);
}

/*
 * The outer suite trusts the harness to report its own failures. In case
 * the harness is broken so that it does not, check its verdicts once more
 * here, without it: a test that fails, one that fails and skips, one that
 * passes, and the exit status.
 */
static int verdicts_ok(void)
{
	static const char *const args[] = {
		"-t", "fail_assert", "-t", "fail_then_skip", "-t", "pass", NULL
	};
	static const char *const want[] = {
		"ok 1 global.pass", "not ok 2 global.fail_assert",
		"not ok 3 global.fail_then_skip"
	};
	static struct __th_shared shared;
	struct __test_metadata m = { .name = "main", .shared = &shared };
	struct run r = { 0 };
	int i, n = 0, ok;

	run_inner(&m, &r, args);
	ok = r.status == KSFT_FAIL && !shared.failed;
	for (i = 0; i < r.nr; i++)
		if (is_result(r.line[i]))
			ok &= n < 3 && !strcmp(want[n++], r.line[i]);
	ok &= n == 3;
	run_free(&r);
	return ok;
}

/*
 * The outer suite runs the fixtures "outer" and "filter", the inner suite
 * everything else; arguments given on the command line come after.
 */
int main(int argc, char **argv)
{
	static char *outer[] = { "-f", "outer", "-f", "filter" };
	static char *inner[] = { "-F", "outer", "-F", "filter" };
	static char **args; /* static: leak checkers see it from the children */
	bool is_inner = getenv(INNER_ENV);
	char **set = is_inner ? inner : outer;
	int i, n = 0, ret;

	args = calloc((size_t)argc + 5, sizeof(*args));
	if (!args)
		return KSFT_FAIL;
	args[n++] = argv[0];
	for (i = 0; i < 4; i++)
		args[n++] = set[i];
	for (i = 1; i < argc; i++)
		args[n++] = argv[i];
	ret = test_harness_run(n, args);
	free(args);
	if (!is_inner && argc == 1 && !verdicts_ok()) {
		printf("Bail out! the harness reports wrong verdicts\n");
		ret = KSFT_FAIL;
	}
	return ret;
}
