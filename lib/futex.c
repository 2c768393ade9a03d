// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * futex(2) wrappers. See futex.h.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "futex.h"
#include "internal.h"

#ifdef __SANITIZE_THREAD__
__thread unsigned int bring_tsan_fence;
#endif

uint64_t bring_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void bring_deadline_init_ns(struct bring_deadline *dl, uint64_t ns)
{
	dl->forever = 0;
	clock_gettime(CLOCK_MONOTONIC, &dl->ts);
	dl->ts.tv_sec += (time_t)(ns / 1000000000ULL);
	dl->ts.tv_nsec += (long)(ns % 1000000000ULL);
	if (dl->ts.tv_nsec >= 1000000000L) {
		dl->ts.tv_sec++;
		dl->ts.tv_nsec -= 1000000000L;
	}
}

void bring_deadline_init(struct bring_deadline *dl, int timeout_ms)
{
	dl->forever = timeout_ms < 0;
	if (!dl->forever)
		bring_deadline_init_ns(dl, (uint64_t)timeout_ms * 1000000ULL);
}

int bring_futex_wait(uint32_t *uaddr, uint32_t val,
		     const struct bring_deadline *dl)
{
	long ret;

	/*
	 * FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a
	 * wait that is restarted after a spurious wakeup or a signal never
	 * stretches the caller's timeout.
	 */
	ret = syscall(SYS_futex, uaddr, FUTEX_WAIT_BITSET, val,
		      dl->forever ? NULL : &dl->ts, NULL,
		      FUTEX_BITSET_MATCH_ANY);
	if (ret == 0)
		return 0;
	switch (errno) {
	case EAGAIN:
		return -EAGAIN;
	case ETIMEDOUT:
		return -ETIMEDOUT;
	case EINTR:
		return -EINTR;
	default:
		return -errno;
	}
}

int bring_futex_wake(uint32_t *uaddr, int nr)
{
	long ret = syscall(SYS_futex, uaddr, FUTEX_WAKE, nr, NULL, NULL, 0);

	return ret < 0 ? -errno : (int)ret;
}

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "eventcounts: the futex word is the low half of the 64-bit word"
#endif

static uint32_t evc_epoch(uint64_t v)
{
	return (uint32_t)v;
}

void evc_prepare(uint64_t *word, struct evc_ticket *t)
{
	uint64_t v = __atomic_load_n(word, __ATOMIC_RELAXED);

	if (!(t->registered && evc_epoch(v) == t->seen)) {
		while (!__atomic_compare_exchange_n(word, &v,
						    v + EVC_ONE_SLEEPER, false,
						    __ATOMIC_SEQ_CST,
						    __ATOMIC_RELAXED))
			;
		t->seen = evc_epoch(v);
		t->registered = 1;
	}
	/*
	 * Full fence: the count is visible before the caller re-checks its
	 * condition. Pairs with the fence in evc_sleepers().
	 */
	smp_mb();
}

void evc_cancel(uint64_t *word, struct evc_ticket *t)
{
	uint64_t v = __atomic_load_n(word, __ATOMIC_RELAXED);

	if (!t->registered)
		return;
	t->registered = 0;
	/* A waker that moved the epoch has taken us off the count already. */
	while (evc_epoch(v) == t->seen &&
	       !__atomic_compare_exchange_n(word, &v, v - EVC_ONE_SLEEPER,
					    false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
}

int evc_wait(uint64_t *word, struct evc_ticket *t,
	     const struct bring_deadline *dl)
{
	int err = bring_futex_wait(evc_futex(word), t->seen, dl);

	/* A moved epoch means a waker woke us and dropped us from the count. */
	if (evc_epoch(__atomic_load_n(word, __ATOMIC_RELAXED)) != t->seen)
		t->registered = 0;
	return err;
}

bool evc_sleepers(uint64_t *word)
{
	/*
	 * Full fence: the caller's state change is visible before we look
	 * for sleepers. Pairs with the fence in evc_prepare().
	 */
	smp_mb();
	/* Acquire: what a sleeper stored before registering is visible. */
	return __atomic_load_n(word, __ATOMIC_ACQUIRE) >> 32;
}

int evc_signal(uint64_t *word)
{
	uint64_t v = __atomic_load_n(word, __ATOMIC_RELAXED);

	do {
		if (!(v >> 32))
			return 0; /* another waker got there first */
	} while (!__atomic_compare_exchange_n(word, &v,
					      (uint64_t)(evc_epoch(v) + 1U),
					      false, __ATOMIC_SEQ_CST,
					      __ATOMIC_RELAXED));
	bring_futex_wake(evc_futex(word), INT_MAX);
	return 1;
}
