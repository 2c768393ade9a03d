/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * USDT probes of libbring, provider "bring".
 *
 * Each probe is guarded by its semaphore: the kernel (uprobes) increments
 * bring_<probe>_semaphore while a tracer is attached, so an untraced probe
 * costs one load and a not-taken branch, and the nop in the probe site.
 * The probes fire only around real blocking (a futex wait), never on the
 * fast path.
 *
 *   write_wait_start(ring, name, u64 need, u64 id, who)
 *   write_wait_end  (ring, name, u64 need, int err, u64 id, who)
 *   read_wait_start (ring, name, u64 id, who)
 *   read_wait_end   (ring, name, int err, u64 id, who)
 *   durable_wait_start(ring, name, u64 id)
 *   durable_wait_end  (ring, name, int err, u64 id)
 *
 * ring is the process-local handle (struct bring *), name the ring's name
 * (opts.name), need the bytes the writer waits for (payload plus
 * framing), and err 0 when the wait ended with the condition met,
 * otherwise the negative errno the call returns (-ETIMEDOUT, -EPIPE).
 * id tells apart waits that overlap in one thread: 0 for the blocking
 * calls (one wait per thread), the struct bring_wait's address for the
 * waits of event loops (bring_*_wait_prepare() fires the start,
 * bring_*_wait_finish() the end, err 0). who is the reader's name for
 * reader waits (char *), NULL for writers. Pair a start with its end by
 * (thread, id). The first arguments are those of bring 0.1.
 *
 * durable_wait_* (bring 0.4) wrap the wait of a push to a file ring with
 * BRING_DURABLE_ALWAYS for its flush (its own fdatasync() or another
 * writer's, see file_wait_durable()): every such push waits. id is 0.
 *
 * Build with -DBRING_NO_PROBES to compile the probes out.
 */
#ifndef BRING_PROBES_H
#define BRING_PROBES_H

#if !defined(BRING_NO_PROBES) && __has_include(<sys/sdt.h>)
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

#define BRING_PROBE_SEMAPHORE(probe) \
	unsigned short bring_##probe##_semaphore \
		__attribute__((section(".probes"), used))

extern unsigned short bring_write_wait_start_semaphore;
extern unsigned short bring_write_wait_end_semaphore;
extern unsigned short bring_read_wait_start_semaphore;
extern unsigned short bring_read_wait_end_semaphore;
extern unsigned short bring_durable_wait_start_semaphore;
extern unsigned short bring_durable_wait_end_semaphore;

/* The semaphore is written by the kernel behind our back: read it once. */
#define BRING_PROBE_ENABLED(probe) \
	__builtin_expect(*(volatile unsigned short *)&bring_##probe##_semaphore, 0)

#define BRING_PROBE2(probe, a, b)                          \
	do {                                               \
		if (BRING_PROBE_ENABLED(probe))            \
			STAP_PROBE2(bring, probe, a, b);   \
	} while (0)
#define BRING_PROBE3(probe, a, b, c)                        \
	do {                                                \
		if (BRING_PROBE_ENABLED(probe))             \
			STAP_PROBE3(bring, probe, a, b, c); \
	} while (0)
#define BRING_PROBE4(probe, a, b, c, d)                        \
	do {                                                   \
		if (BRING_PROBE_ENABLED(probe))                \
			STAP_PROBE4(bring, probe, a, b, c, d); \
	} while (0)
#define BRING_PROBE5(probe, a, b, c, d, e)                        \
	do {                                                      \
		if (BRING_PROBE_ENABLED(probe))                   \
			STAP_PROBE5(bring, probe, a, b, c, d, e); \
	} while (0)
#define BRING_PROBE6(probe, a, b, c, d, e, f)                        \
	do {                                                         \
		if (BRING_PROBE_ENABLED(probe))                      \
			STAP_PROBE6(bring, probe, a, b, c, d, e, f); \
	} while (0)
#define BRING_HAVE_PROBES 1
#else
#define BRING_PROBE2(probe, a, b) do { (void)(a); (void)(b); } while (0)
#define BRING_PROBE3(probe, a, b, c) \
	do { (void)(a); (void)(b); (void)(c); } while (0)
#define BRING_PROBE4(probe, a, b, c, d) \
	do { (void)(a); (void)(b); (void)(c); (void)(d); } while (0)
#define BRING_PROBE5(probe, a, b, c, d, e) \
	do { (void)(a); (void)(b); (void)(c); (void)(d); (void)(e); } while (0)
#define BRING_PROBE6(probe, a, b, c, d, e, f)                            \
	do { (void)(a); (void)(b); (void)(c); (void)(d); (void)(e); (void)(f); \
	} while (0)
#define BRING_HAVE_PROBES 0
#endif

#endif /* BRING_PROBES_H */
