/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * Thin wrappers around futex(2) and the monotonic clock.
 *
 * Every futex in bring lives in memory that may be shared between
 * processes (a memfd or a file mapping), so the wrappers never use
 * FUTEX_PRIVATE_FLAG: the waker and the waiter must agree, and io_uring's
 * FUTEX_WAIT must be able to wait on the same words.
 */
#ifndef BRING_FUTEX_H
#define BRING_FUTEX_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Deadline of a wait: tv_sec < 0 means "no deadline". */
struct bring_deadline {
	struct timespec ts;
	int forever;
};

uint64_t bring_now_ns(void);
void bring_deadline_init(struct bring_deadline *dl, int timeout_ms);
/* A deadline @ns from now (never "forever"). */
void bring_deadline_init_ns(struct bring_deadline *dl, uint64_t ns);

/*
 * bring_futex_wait - sleep while *@uaddr == @val.
 *
 * Returns 0 when woken (possibly spuriously), -EAGAIN when *@uaddr already
 * differed, -ETIMEDOUT when @dl passed, -EINTR on a signal.
 */
int bring_futex_wait(uint32_t *uaddr, uint32_t val,
		     const struct bring_deadline *dl);

/* Wake up to @nr waiters on @uaddr; returns the number woken or -errno. */
int bring_futex_wake(uint32_t *uaddr, int nr);

/*
 * An eventcount on one 64-bit word: its low half (the futex word: the
 * first four bytes, little endian) is the epoch, its high half counts
 * the sleepers registered in that epoch. Sleepers wait on the epoch
 * alone, so it takes 2^32 epoch moves, not 2^16 as when the two shared
 * one 32-bit word, before a preempted (or stopped) sleeper could find the
 * value it registered with again and sleep through a wake that already
 * dropped it from the count (Documentation/ring.rst, "The epoch").
 *
 *   sleeper:  evc_prepare(w, &t);        count + 1, full fence
 *             if (condition holds) { evc_cancel(w, &t); done; }
 *             evc_wait(w, &t, dl);        FUTEX_WAIT on the value it saw
 *   waker:    change the state;  evc_signal(w);   full fence, and only if
 *             the count is non-zero: epoch + 1, count 0, FUTEX_WAKE all.
 *
 * The fences order "announce, then re-check" against "publish, then look":
 * either the sleeper's re-check sees the new state, or the waker sees the
 * count and moves the epoch, which makes the sleeper's FUTEX_WAIT fail at
 * once or wakes it. The waker zeroes the count, so a burst of changes
 * costs one FUTEX_WAKE per sleep, not one per change; a sleeper that
 * re-checks and need not sleep takes itself off the count, so nobody pays
 * for a sleep that did not happen. With no sleepers evc_signal() is a
 * fence and a load.
 */
#define EVC_ONE_SLEEPER (1ULL << 32)

struct evc_ticket {
	uint32_t seen; /* the epoch we registered in */
	int registered;
};

/* The futex word of an eventcount: its epoch. */
static inline uint32_t *evc_futex(uint64_t *word)
{
	return (uint32_t *)word;
}

void evc_prepare(uint64_t *word, struct evc_ticket *t);
void evc_cancel(uint64_t *word, struct evc_ticket *t);
int evc_wait(uint64_t *word, struct evc_ticket *t,
	     const struct bring_deadline *dl);
bool evc_sleepers(uint64_t *word);
int evc_signal(uint64_t *word);

#endif /* BRING_FUTEX_H */
