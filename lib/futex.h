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
 * An eventcount on one futex word: bits 31..16 are the epoch, bits 15..0
 * count the sleepers registered in that epoch.
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
#define EVC_COUNT_MASK 0xffffU

struct evc_ticket {
	uint32_t seen; /* the word when we registered or last looked */
	int registered;
};

void evc_prepare(uint32_t *word, struct evc_ticket *t);
void evc_cancel(uint32_t *word, struct evc_ticket *t);
int evc_wait(uint32_t *word, struct evc_ticket *t,
	     const struct bring_deadline *dl);
bool evc_sleepers(uint32_t *word);
int evc_signal(uint32_t *word);

#endif /* BRING_FUTEX_H */
