/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kselftest_harness.h - test harness with the macros and TAP 13 output of
 * the kernel's tools/testing/selftests/kselftest_harness.h, written anew.
 *
 *   TEST(name) { ... }                   a test of fixture "global"
 *   TEST_TIMEOUT(name, secs), TEST_SIGNAL(name, signo)
 *   FIXTURE(f) { members };              "self" in setup, teardown, tests
 *   FIXTURE_VARIANT(f) { members };      optional, "variant" in the same
 *   FIXTURE_VARIANT_ADD(f, v) { .member = value, };
 *   FIXTURE_SETUP(f) { ... }  FIXTURE_TEARDOWN(f) { ... }    (both needed)
 *   TEST_F(f, name), TEST_F_TIMEOUT(f, name, secs), TEST_F_SIGNAL(f, n, sig)
 *   TEST_HARNESS_MAIN                    or call test_harness_run()
 *
 * ASSERT_x ends the test (teardown still runs, unless it fails in setup or
 * in a helper thread or process), EXPECT_x marks it failed and goes on:
 * x = EQ NE LT LE GT GE (expected, seen), TRUE FALSE NULL NE_NULL (seen),
 * STREQ STRNE (expected, seen). Integers compare by value whatever their
 * signedness. A statement after a check runs only when it fails:
 * ASSERT_EQ(0, ret) TH_LOG("errno %d", errno);
 * SKIP(statement, fmt, ...) marks the test skipped, then runs statement.
 * TH_LOG(fmt, ...) prints "# file.c:line:test:message". Helpers that check
 * take a "struct __test_metadata *_metadata" argument.
 *
 * Every test runs setup, body and teardown in a forked child, killed with
 * its process group after its timeout (TEST_TIMEOUT_DEFAULT, 30 s; three
 * times as long when BRING_SANITIZED is set: a timeout detects a hang, and
 * sanitized code on a busy machine is that much slower). Output
 * is TAP 13; exit status 0 when nothing failed, 1 (KSFT_FAIL) when
 * something did, 4 (KSFT_SKIP) when every test was skipped. Options:
 * -f/-F fixture, -v/-V variant, -t/-T test (lower case selects, upper case
 * excludes; different letters must all match), -r fixture[.variant].test,
 * -l lists, -h. One source file per test program.
 */
#ifndef BRING_KSELFTEST_HARNESS_H
#define BRING_KSELFTEST_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#ifndef KSFT_PASS
#define KSFT_PASS	0
#define KSFT_FAIL	1
#define KSFT_XFAIL	2
#define KSFT_XPASS	3
#define KSFT_SKIP	4
#endif

#ifndef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT	30
#endif

/* Where TH_LOG and failed checks print; define before including. */
#ifndef TH_LOG_STREAM
#define TH_LOG_STREAM	stdout
#endif

#define __th_unused	__attribute__((unused))
#define __th_printf(a, b) __attribute__((format(printf, a, b)))

/* ----------------------------------------------------------------------- */
/* Registration.                                                           */

/* State shared with the parent: what the child found out. */
struct __th_shared {
	int failed;
	int skipped;
	char reason[512];
};

enum { __TH_SETUP, __TH_BODY, __TH_TEARDOWN, __TH_DONE };

/* What "_metadata" points to inside a test, its setup and teardown. */
struct __test_metadata {
	const char *name;
	struct __th_shared *shared;
	pid_t tid;
	int phase;
	void *self;
	const void *variant;
	void (*teardown)(struct __test_metadata *m, void *self,
			 const void *variant);
};

struct __th_variant_meta {
	const char *name;
	const void *data;
	struct __th_variant_meta *next;
};

struct __th_fixture {
	const char *name;
	int registered;
	struct __th_variant_meta *variants;
	struct __th_fixture *next;
};

struct __th_test {
	const char *name;
	struct __th_fixture *fixture;
	void (*fn)(struct __test_metadata *m, const void *variant);
	unsigned int timeout;
	int termsig;
	struct __th_test *next;
};

static __th_unused struct __th_fixture __th_fixture_global = {
	.name = "global",
};
static struct __th_fixture *__th_fixtures;
static struct __th_test *__th_tests;
static int __th_ctor_forward;

/*
 * Lists keep the order of the source. This constructor comes before any
 * test's, so it runs first when constructors run in source order and last
 * when they run backwards; registration appends or prepends accordingly.
 */
static void __attribute__((constructor)) __th_ctor_probe(void)
{
	__th_ctor_forward = 1;
}

#define __th_list_add(head, item)					\
	do {								\
		if (__th_ctor_forward) {				\
			__typeof__(item) *__pos = &(head);		\
									\
			while (*__pos)					\
				__pos = &(*__pos)->next;		\
			*__pos = (item);				\
		} else {						\
			(item)->next = (head);				\
			(head) = (item);				\
		}							\
	} while (0)

static __th_unused void __th_register_fixture(struct __th_fixture *f)
{
	if (f->registered)
		return;
	f->registered = 1;
	__th_list_add(__th_fixtures, f);
}

static __th_unused void __th_register_variant(struct __th_fixture *f,
					      struct __th_variant_meta *v)
{
	__th_list_add(f->variants, v);
}

static __th_unused void __th_register_test(struct __th_test *t)
{
	__th_register_fixture(t->fixture);
	__th_list_add(__th_tests, t);
}

/* ----------------------------------------------------------------------- */
/* Declaring tests.                                                        */

#define FIXTURE_DATA(f)		struct __th_data_##f
#define FIXTURE_VARIANT(f)	struct __th_variant_##f

#define __TH_FIXTURE_ARGS(f)						\
	struct __test_metadata __th_unused *_metadata,			\
	FIXTURE_DATA(f) __th_unused *self,				\
	const FIXTURE_VARIANT(f) __th_unused *variant

#define FIXTURE(f)							\
	FIXTURE_VARIANT(f);						\
	FIXTURE_DATA(f);						\
	static __th_unused void __th_setup_##f(__TH_FIXTURE_ARGS(f));	\
	static __th_unused void __th_teardown_##f(__TH_FIXTURE_ARGS(f)); \
	static __th_unused void __th_td_##f(struct __test_metadata *m,	\
					    void *self,			\
					    const void *variant)	\
	{								\
		__th_teardown_##f(m, self, variant);			\
	}								\
	static struct __th_fixture __th_fixture_##f = { .name = #f };	\
	static void __attribute__((constructor)) __th_freg_##f(void)	\
	{								\
		__th_register_fixture(&__th_fixture_##f);		\
	}								\
	FIXTURE_DATA(f)

#define FIXTURE_SETUP(f)	static void __th_setup_##f(__TH_FIXTURE_ARGS(f))
#define FIXTURE_TEARDOWN(f)						\
	static void __th_teardown_##f(__TH_FIXTURE_ARGS(f))

/* FIXTURE_VARIANT_ADD(f, v) { .field = value, }; */
#define FIXTURE_VARIANT_ADD(f, v)					\
	static const FIXTURE_VARIANT(f) __th_vdata_##f##__##v;		\
	static struct __th_variant_meta __th_vmeta_##f##__##v = {	\
		.name = #v,						\
		.data = &__th_vdata_##f##__##v,				\
	};								\
	static void __attribute__((constructor))			\
	__th_vreg_##f##__##v(void)					\
	{								\
		__th_register_variant(&__th_fixture_##f,		\
				      &__th_vmeta_##f##__##v);		\
	}								\
	static const FIXTURE_VARIANT(f) __th_vdata_##f##__##v =

#define __TH_REGISTER(id, f, tname, secs, signo)			\
	static struct __th_test __th_test_##id = {			\
		.name = #tname,						\
		.fixture = &__th_fixture_##f,				\
		.fn = __th_wrap_##id,					\
		.timeout = (secs),					\
		.termsig = (signo),					\
	};								\
	static void __attribute__((constructor)) __th_reg_##id(void)	\
	{								\
		__th_register_test(&__th_test_##id);			\
	}

#define __TH_TEST(name, secs, signo)					\
	static void __th_fn_##name(struct __test_metadata *_metadata);	\
	static void __th_wrap_##name(struct __test_metadata *_metadata,	\
				     const void *variant)		\
	{								\
		(void)variant;						\
		__th_fn_##name(_metadata);				\
	}								\
	__TH_REGISTER(name, global, name, secs, signo)			\
	static void __th_fn_##name(					\
		struct __test_metadata __th_unused *_metadata)

#define TEST(name)		__TH_TEST(name, TEST_TIMEOUT_DEFAULT, 0)
#define TEST_TIMEOUT(name, secs) __TH_TEST(name, secs, 0)
#define TEST_SIGNAL(name, signo) __TH_TEST(name, TEST_TIMEOUT_DEFAULT, signo)

#define __TH_TEST_F(f, name, secs, signo)				\
	static void __th_fn_##f##__##name(__TH_FIXTURE_ARGS(f));	\
	static void __th_wrap_##f##__##name(struct __test_metadata *m,	\
					    const void *variant)	\
	{								\
		FIXTURE_DATA(f) self;					\
									\
		memset(&self, 0, sizeof(self));				\
		__th_enter(m, &self, variant, __th_td_##f);		\
		__th_setup_##f(m, &self, variant);			\
		if (!__th_setup_done(m))				\
			return;						\
		__th_fn_##f##__##name(m, &self, variant);		\
		__th_leave(m);						\
	}								\
	__TH_REGISTER(f##__##name, f, name, secs, signo)		\
	static void __th_fn_##f##__##name(__TH_FIXTURE_ARGS(f))

#define TEST_F(f, name)		__TH_TEST_F(f, name, TEST_TIMEOUT_DEFAULT, 0)
#define TEST_F_TIMEOUT(f, name, secs) __TH_TEST_F(f, name, secs, 0)
#define TEST_F_SIGNAL(f, name, signo)					\
	__TH_TEST_F(f, name, TEST_TIMEOUT_DEFAULT, signo)

#define TEST_HARNESS_MAIN						\
	int main(int argc, char **argv)					\
	{								\
		return test_harness_run(argc, argv);			\
	}

/* ----------------------------------------------------------------------- */
/* Inside the child.                                                       */

static __th_unused void __th_enter(struct __test_metadata *m, void *self,
				   const void *variant,
				   void (*td)(struct __test_metadata *,
					      void *, const void *))
{
	m->self = self;
	m->variant = variant;
	m->teardown = td;
	m->phase = __TH_SETUP;
}

static __th_unused int __th_setup_done(struct __test_metadata *m)
{
	/* A setup that failed or skipped gets neither body nor teardown. */
	if (__atomic_load_n(&m->shared->failed, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&m->shared->skipped, __ATOMIC_RELAXED)) {
		m->phase = __TH_DONE;
		return 0;
	}
	m->phase = __TH_BODY;
	return 1;
}

static __th_unused void __th_leave(struct __test_metadata *m)
{
	if (m->phase == __TH_BODY && m->teardown) {
		m->phase = __TH_TEARDOWN;
		m->teardown(m, m->self, m->variant);
	}
	m->phase = __TH_DONE;
}

/* Prints "# " before every line of the message. */
static __th_unused __th_printf(3, 0) void __th_vprint(FILE *out,
						      const char *prefix,
						      const char *fmt,
						      va_list ap)
{
	char buf[2048];
	char *line, *nl;
	int n;

	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n >= (int)sizeof(buf))
		strcpy(buf + sizeof(buf) - 4, "...");
	else if (n < 0)
		strcpy(buf, "(bad format)");
	if (out != stdout)
		fflush(stdout);
	flockfile(out);
	fprintf(out, "# %s", prefix);
	for (line = buf; (nl = strchr(line, '\n')); line = nl + 1)
		fprintf(out, "%.*s\n# ", (int)(nl - line), line);
	fprintf(out, "%s\n", line);
	funlockfile(out);
	fflush(out);
}

static __th_unused __th_printf(4, 5) void __th_log(struct __test_metadata *m,
						   const char *file, int line,
						   const char *fmt, ...)
{
	const char *base = strrchr(file, '/');
	char prefix[512];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "%s:%d:%s:", base ? base + 1 : file,
		 line, m->name);
	va_start(ap, fmt);
	__th_vprint(TH_LOG_STREAM, prefix, fmt, ap);
	va_end(ap);
}

#define TH_LOG(...)	__th_log(_metadata, __FILE__, __LINE__, __VA_ARGS__)

static __th_unused __th_printf(1, 2) int ksft_print_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	__th_vprint(stdout, "", fmt, ap);
	va_end(ap);
	return 0;
}

static __th_unused __th_printf(2, 3) int __th_skip(struct __test_metadata *m,
						   const char *fmt, ...)
{
	struct __th_shared *sh = m->shared;
	va_list ap;
	char *p;

	if (!__atomic_exchange_n(&sh->skipped, 1, __ATOMIC_RELAXED)) {
		va_start(ap, fmt);
		vsnprintf(sh->reason, sizeof(sh->reason), fmt, ap);
		va_end(ap);
		for (p = sh->reason; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	}
	fflush(stdout);
	fprintf(TH_LOG_STREAM, "#      SKIP      %s\n", sh->reason);
	fflush(TH_LOG_STREAM);
	return 1;
}

/*
 * SKIP(statement, fmt, ...): mark the test skipped, say why, then run
 * statement, usually "return" (it is inside a do-while, so "break" would
 * not leave a loop of the caller). A test that also fails counts as failed.
 */
#define SKIP(statement, ...)						\
	do {								\
		__th_skip(_metadata, __VA_ARGS__);			\
		statement;						\
	} while (0)

static __th_unused __attribute__((noreturn)) void
__th_abort_test(struct __test_metadata *m)
{
	/* Teardown runs on the test's own thread, never in a helper. */
	if ((pid_t)syscall(SYS_gettid) == m->tid)
		__th_leave(m);
	fflush(NULL);
	_exit(KSFT_FAIL);
}

static __th_unused void __th_mark_failed(struct __test_metadata *m)
{
	__atomic_store_n(&m->shared->failed, 1, __ATOMIC_RELAXED);
}

/* Runs after the optional statement that follows a failed check. */
static __th_unused void *__th_bail(struct __test_metadata *m, int is_assert)
{
	if (is_assert)
		__th_abort_test(m);
	return NULL;
}

/* ----------------------------------------------------------------------- */
/* Checks.                                                                 */

enum { __TH_SIGNED, __TH_UNSIGNED, __TH_PTR, __TH_FLOAT };

/* A scalar operand, kept with its signedness. */
struct __th_num {
	int kind;
	intmax_t s;
	uintmax_t u;
	long double f;
};

#define __th_is_ptr(v)	(__builtin_classify_type(v) == 5)
#define __th_is_flt(v)							\
	_Generic((v), float: 1, double: 1, long double: 1, default: 0)
#define __th_is_sgn(v)							\
	_Generic((v), char: CHAR_MIN < 0, signed char: 1, short: 1,	\
		 int: 1, long: 1, long long: 1, default: 0)
#define __th_scalar(v)							\
	__builtin_choose_expr(__th_is_ptr(v), (uintptr_t)(v), (v))

/* Evaluates x once; integer conversions only for non-floating types. */
#define __th_num(x)							\
	({								\
		__auto_type __th_v = (x);				\
		(struct __th_num){					\
			.kind = __th_is_flt(__th_v) ? __TH_FLOAT :	\
				__th_is_ptr(__th_v) ? __TH_PTR :	\
				__th_is_sgn(__th_v) ? __TH_SIGNED :	\
				__TH_UNSIGNED,				\
			.s = __th_is_flt(__th_v) ? 0 :			\
				(intmax_t)__th_scalar(__th_v),		\
			.u = __th_is_flt(__th_v) ? 0 :			\
				(uintmax_t)__th_scalar(__th_v),		\
			.f = __th_is_flt(__th_v) ?			\
				(long double)__th_scalar(__th_v) : 0,	\
		};							\
	})

enum { __TH_EQ, __TH_NE, __TH_LT, __TH_LE, __TH_GT, __TH_GE };

static __th_unused long double __th_num_ld(const struct __th_num *n)
{
	if (n->kind == __TH_FLOAT)
		return n->f;
	return n->kind == __TH_SIGNED ? (long double)n->s : (long double)n->u;
}

/* -1, 0 or 1 as a < b, a == b, a > b by value; 2 when unordered (NaN). */
static __th_unused int __th_cmp(const struct __th_num *a,
				const struct __th_num *b)
{
	int aneg = a->kind == __TH_SIGNED && a->s < 0;
	int bneg = b->kind == __TH_SIGNED && b->s < 0;
	uintmax_t ua, ub;

	if (a->kind == __TH_FLOAT || b->kind == __TH_FLOAT) {
		long double x = __th_num_ld(a), y = __th_num_ld(b);

		if (x < y)
			return -1;
		if (x > y)
			return 1;
		return x <= y ? 0 : 2;
	}
	if (aneg && bneg)
		return (a->s > b->s) - (a->s < b->s);
	if (aneg || bneg)
		return aneg ? -1 : 1;
	ua = a->kind == __TH_SIGNED ? (uintmax_t)a->s : a->u;
	ub = b->kind == __TH_SIGNED ? (uintmax_t)b->s : b->u;
	return (ua > ub) - (ua < ub);
}

static __th_unused const char *__th_fmt(char *buf, size_t sz,
					const struct __th_num *n)
{
	switch (n->kind) {
	case __TH_SIGNED:
		snprintf(buf, sz, "%jd", n->s);
		break;
	case __TH_PTR:
		snprintf(buf, sz, "%#jx", n->u);
		break;
	case __TH_FLOAT:
		snprintf(buf, sz, "%Lg", n->f);
		break;
	default:
		snprintf(buf, sz, "%ju", n->u);
		break;
	}
	return buf;
}

/* Returns 1, after saying so, when "e op s" does not hold. */
static __th_unused int __th_check(struct __test_metadata *m,
				  const char *file, int line, int op,
				  const struct __th_num *e, const char *estr,
				  const struct __th_num *s, const char *sstr)
{
	static const char *const ops[] = { "==", "!=", "<", "<=", ">", ">=" };
	char ebuf[64], sbuf[64];
	int c = __th_cmp(e, s), ok;

	switch (op) {
	case __TH_EQ:
		ok = c == 0;
		break;
	case __TH_NE:
		ok = c != 0;
		break;
	case __TH_LT:
		ok = c == -1;
		break;
	case __TH_LE:
		ok = c == -1 || c == 0;
		break;
	case __TH_GT:
		ok = c == 1;
		break;
	default:
		ok = c == 1 || c == 0;
		break;
	}
	if (ok)
		return 0;
	__th_mark_failed(m);
	__th_log(m, file, line, "Expected %s (%s) %s %s (%s)", estr,
		 __th_fmt(ebuf, sizeof(ebuf), e), ops[op], sstr,
		 __th_fmt(sbuf, sizeof(sbuf), s));
	return 1;
}

static __th_unused int __th_check_str(struct __test_metadata *m,
				      const char *file, int line, int eq,
				      const char *e, const char *estr,
				      const char *s, const char *sstr)
{
	int same = e && s ? !strcmp(e, s) : e == s;

	if (same == eq)
		return 0;
	__th_mark_failed(m);
	__th_log(m, file, line, "Expected %s (%s%s%s) %s %s (%s%s%s)", estr,
		 e ? "\"" : "", e ? e : "NULL", e ? "\"" : "",
		 eq ? "==" : "!=", sstr,
		 s ? "\"" : "", s ? s : "NULL", s ? "\"" : "");
	return 1;
}

/*
 * One "for" statement: the statement after the check is its body, run once
 * when the check fails, before an ASSERT ends the test.
 */
#define __TH_CMP(e, estr, s, sstr, op, is_assert)			\
	for (struct __th_num __th_e = __th_num(e), __th_s = __th_num(s), \
	     *__th_once = __th_check(_metadata, __FILE__, __LINE__, op,	\
				     &__th_e, estr, &__th_s, sstr) ?	\
			  &__th_e : NULL;				\
	     __th_once; __th_once = __th_bail(_metadata, is_assert))

#define __TH_STR(e, estr, s, sstr, eq, is_assert)			\
	for (const char *__th_e = (e), *__th_s = (s),			\
	     *__th_once = __th_check_str(_metadata, __FILE__, __LINE__,	\
					 eq, __th_e, estr, __th_s,	\
					 sstr) ? "" : NULL;		\
	     __th_once; __th_once = __th_bail(_metadata, is_assert))

#define ASSERT_EQ(e, s)	__TH_CMP(e, #e, s, #s, __TH_EQ, 1)
#define ASSERT_NE(e, s)	__TH_CMP(e, #e, s, #s, __TH_NE, 1)
#define ASSERT_LT(e, s)	__TH_CMP(e, #e, s, #s, __TH_LT, 1)
#define ASSERT_LE(e, s)	__TH_CMP(e, #e, s, #s, __TH_LE, 1)
#define ASSERT_GT(e, s)	__TH_CMP(e, #e, s, #s, __TH_GT, 1)
#define ASSERT_GE(e, s)	__TH_CMP(e, #e, s, #s, __TH_GE, 1)
#define ASSERT_TRUE(s)	__TH_CMP(0, "0", s, #s, __TH_NE, 1)
#define ASSERT_FALSE(s)	__TH_CMP(0, "0", s, #s, __TH_EQ, 1)
#define ASSERT_NULL(s)	__TH_CMP(NULL, "NULL", s, #s, __TH_EQ, 1)
#define ASSERT_NE_NULL(s) __TH_CMP(NULL, "NULL", s, #s, __TH_NE, 1)
#define ASSERT_STREQ(e, s) __TH_STR(e, #e, s, #s, 1, 1)
#define ASSERT_STRNE(e, s) __TH_STR(e, #e, s, #s, 0, 1)

#define EXPECT_EQ(e, s)	__TH_CMP(e, #e, s, #s, __TH_EQ, 0)
#define EXPECT_NE(e, s)	__TH_CMP(e, #e, s, #s, __TH_NE, 0)
#define EXPECT_LT(e, s)	__TH_CMP(e, #e, s, #s, __TH_LT, 0)
#define EXPECT_LE(e, s)	__TH_CMP(e, #e, s, #s, __TH_LE, 0)
#define EXPECT_GT(e, s)	__TH_CMP(e, #e, s, #s, __TH_GT, 0)
#define EXPECT_GE(e, s)	__TH_CMP(e, #e, s, #s, __TH_GE, 0)
#define EXPECT_TRUE(s)	__TH_CMP(0, "0", s, #s, __TH_NE, 0)
#define EXPECT_FALSE(s)	__TH_CMP(0, "0", s, #s, __TH_EQ, 0)
#define EXPECT_NULL(s)	__TH_CMP(NULL, "NULL", s, #s, __TH_EQ, 0)
#define EXPECT_NE_NULL(s) __TH_CMP(NULL, "NULL", s, #s, __TH_NE, 0)
#define EXPECT_STREQ(e, s) __TH_STR(e, #e, s, #s, 1, 0)
#define EXPECT_STRNE(e, s) __TH_STR(e, #e, s, #s, 0, 0)

/* ----------------------------------------------------------------------- */
/* The runner, in the parent.                                              */

/*
 * Options are read from argv where they are: the runner allocates nothing,
 * so a leak checker in a test's child finds nothing of the parent's.
 */
struct __th_opts {
	int argc;
	char **argv;
	int list;
};

static __th_unused int __th_selected(const struct __th_opts *o,
				     const char *f, const char *v,
				     const char *t, const char *id)
{
	static const char keys[] = "fvtr";
	int want[4] = { 0 }, hit[4] = { 0 };
	const char *what, *name;
	int i, k;
	char c;

	for (i = 1; i < o->argc; i++) {
		c = o->argv[i][1];
		if (c == 'l')
			continue;
		name = o->argv[i][2] ? o->argv[i] + 2 : o->argv[++i];
		switch (c | 0x20) {
		case 'f':
			what = f;
			break;
		case 'v':
			what = v;
			break;
		case 't':
			what = t;
			break;
		default:
			what = id;
			break;
		}
		if (c >= 'A' && c <= 'Z') {
			if (!strcmp(what, name))
				return 0;
			continue;
		}
		k = (int)(strchr(keys, c) - keys);
		want[k] = 1;
		hit[k] |= !strcmp(what, name);
	}
	for (k = 0; k < 4; k++)
		if (want[k] && !hit[k])
			return 0;
	return 1;
}

static __th_unused const char *__th_id(char *buf, size_t sz,
				       const struct __th_fixture *f,
				       const struct __th_variant_meta *v,
				       const struct __th_test *t)
{
	snprintf(buf, sz, "%s%s%s.%s", f->name, v->name[0] ? "." : "",
		 v->name, t->name);
	return buf;
}

/* Waits for pid; kills it after timeout seconds. */
static __th_unused int __th_wait(pid_t pid, unsigned int timeout,
				 int *status)
{
	const long long slice = 250000000LL;
	struct timespec now, end, ts;
	long long left;
	sigset_t chld;
	pid_t r;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += timeout;
	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = (end.tv_sec - now.tv_sec) * 1000000000LL +
		       (end.tv_nsec - now.tv_nsec);
		if (left <= 0)
			break;
		if (left > slice)
			left = slice;
		ts.tv_sec = left / 1000000000LL;
		ts.tv_nsec = left % 1000000000LL;
		/* SIGCHLD is blocked: it stays pending until we get here. */
		sigtimedwait(&chld, NULL, &ts);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return 1;
}

static __th_unused __attribute__((noreturn)) void
__th_child(const struct __th_test *t, const struct __th_variant_meta *v,
	   struct __test_metadata *m, const sigset_t *mask, pid_t parent)
{
	struct __th_shared *sh = m->shared;

	sigprocmask(SIG_SETMASK, mask, NULL);
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(KSFT_FAIL);
	m->tid = getpid();
	m->phase = __TH_BODY;
	t->fn(m, v->data);
	m->phase = __TH_DONE;
	/* exit(), not _exit(): flush stdio, let sanitizers check for leaks. */
	if (__atomic_load_n(&sh->failed, __ATOMIC_RELAXED))
		exit(KSFT_FAIL);
	exit(__atomic_load_n(&sh->skipped, __ATOMIC_RELAXED) ? KSFT_SKIP :
							       KSFT_PASS);
}

enum { __TH_PASS, __TH_FAIL, __TH_SKIPPED };

static __th_unused int __th_run(const struct __th_test *t,
				const struct __th_variant_meta *v,
				const char *id, unsigned int num,
				struct __th_shared *sh, const sigset_t *mask)
{
	struct __test_metadata m = { .name = t->name, .shared = sh };
	unsigned int timeout = (t->timeout ? t->timeout : TEST_TIMEOUT_DEFAULT) *
			       (getenv("BRING_SANITIZED") ? 3 : 1);
	int status = 0, waited = -1, res = __TH_FAIL, code, sig;
	pid_t pid, parent = getpid();
	const char *why = "";

	memset(sh, 0, sizeof(*sh));
	printf("#  RUN           %s ...\n", id);
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		__th_child(t, v, &m, mask, parent);
	if (pid < 0) {
		printf("# %s: fork: %s\n", id, strerror(errno));
	} else {
		setpgid(pid, pid);
		waited = __th_wait(pid, timeout, &status);
		if (waited < 0)
			printf("# %s: waitpid: %s\n", id, strerror(errno));
		/* Whatever the test started and left behind goes too. */
		kill(-pid, SIGKILL);
	}

	if (waited > 0) {
		printf("# TIMEOUT: %s still running after %u s, killed\n",
		       id, timeout);
		why = " # TIMEOUT";
	} else if (waited == 0 && WIFSIGNALED(status)) {
		sig = WTERMSIG(status);
		if (sig != t->termsig)
			printf("# %s: Test terminated %sby signal %d (%s)\n",
			       id, t->termsig ? "" : "unexpectedly ", sig,
			       strsignal(sig));
		else if (!sh->failed)
			res = sh->skipped ? __TH_SKIPPED : __TH_PASS;
	} else if (waited == 0) {
		code = WEXITSTATUS(status);
		if (code != KSFT_PASS && code != KSFT_SKIP &&
		    (code != KSFT_FAIL || !sh->failed))
			printf("# %s: Test exited with status %d\n", id, code);
		else if (!sh->failed && (code == KSFT_SKIP || sh->skipped))
			res = __TH_SKIPPED;
		else if (!sh->failed && t->termsig)
			printf("# %s: Test exited, expected signal %d\n", id,
			       t->termsig);
		else if (!sh->failed)
			res = __TH_PASS;
	}

	switch (res) {
	case __TH_PASS:
		printf("#            OK  %s\nok %u %s\n", id, num, id);
		break;
	case __TH_SKIPPED:
		printf("#          SKIP  %s\nok %u %s # SKIP%s%s\n", id, num,
		       id, sh->reason[0] ? " " : "", sh->reason);
		break;
	default:
		printf("#          FAIL  %s\nnot ok %u %s%s\n", id, num, id,
		       why);
		break;
	}
	fflush(stdout);
	return res;
}

static __th_unused void __th_usage(FILE *out, const char *argv0)
{
	fprintf(out, "usage: %s [-h] [-l] [-f|-F fixture] [-v|-V variant]\n"
		"       [-t|-T test] [-r fixture[.variant].test]\n"
		"  -f -v -t -r  run only what matches (repeat for more names)\n"
		"  -F -V -T     leave out what matches\n"
		"  -l           list the tests that would run\n", argv0);
}

/* Checks the options; 1 after -h, -1 on a mistake. */
static __th_unused int __th_parse(struct __th_opts *o, int argc, char **argv)
{
	const char *a;
	int i;

	o->argc = argc;
	o->argv = argv;
	for (i = 1; i < argc; i++) {
		a = argv[i];
		if (a[0] != '-' || !a[1] || !strchr("hlfFvVtTr", a[1])) {
			fprintf(stderr, "%s: unknown option %s\n", argv[0], a);
			goto usage;
		}
		if (a[1] == 'h') {
			__th_usage(stdout, argv[0]);
			return 1;
		}
		if (a[1] == 'l') {
			o->list = 1;
			if (a[2]) {
				fprintf(stderr, "%s: unknown option %s\n",
					argv[0], a);
				goto usage;
			}
		} else if (!a[2] && ++i == argc) {
			fprintf(stderr, "%s: option %s needs a name\n",
				argv[0], a);
			goto usage;
		}
	}
	return 0;
usage:
	__th_usage(stderr, argv[0]);
	return -1;
}

#define __th_for_each(f, v, t, none)					\
	for (f = __th_fixtures; f; f = f->next)				\
		for (v = f->variants ? f->variants : &none; v; v = v->next) \
			for (t = __th_tests; t; t = t->next)		\
				if (t->fixture == f)

static __th_unused int test_harness_run(int argc, char **argv)
{
	struct __th_variant_meta none = { .name = "" }, *v, *last_v = NULL;
	struct __th_fixture *f, *last_f = NULL;
	unsigned int tests = 0, cases = 0, num = 0;
	unsigned int pass = 0, fail = 0, skip = 0;
	struct __th_opts opts = { 0 };
	struct __th_shared *sh;
	struct __th_test *t;
	sigset_t chld, mask;
	char id[512];
	int ret;

	ret = __th_parse(&opts, argc, argv);
	if (ret)
		return ret > 0 ? KSFT_PASS : KSFT_FAIL;

	__th_for_each(f, v, t, none) {
		__th_id(id, sizeof(id), f, v, t);
		if (!__th_selected(&opts, f->name, v->name, t->name, id))
			continue;
		if (opts.list)
			printf("%s\n", id);
		tests++;
		cases += f != last_f || v != last_v;
		last_f = f;
		last_v = v;
	}
	if (opts.list)
		return KSFT_PASS;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return KSFT_FAIL;
	}
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &mask);

	printf("TAP version 13\n1..%u\n", tests);
	printf("# Starting %u tests from %u test cases.\n", tests, cases);
	__th_for_each(f, v, t, none) {
		__th_id(id, sizeof(id), f, v, t);
		if (!__th_selected(&opts, f->name, v->name, t->name, id))
			continue;
		switch (__th_run(t, v, id, ++num, sh, &mask)) {
		case __TH_PASS:
			pass++;
			break;
		case __TH_SKIPPED:
			skip++;
			break;
		default:
			fail++;
			break;
		}
	}
	printf("# %s: %u / %u tests passed.\n", fail ? "FAILED" : "PASSED",
	       pass + skip, tests);
	printf("# Totals: pass:%u fail:%u xfail:0 xpass:0 skip:%u error:0\n",
	       pass, fail, skip);
	fflush(stdout);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	munmap(sh, sizeof(*sh));
	if (fail)
		return KSFT_FAIL;
	return skip == tests ? KSFT_SKIP : KSFT_PASS;
}

#endif /* BRING_KSELFTEST_HARNESS_H */
