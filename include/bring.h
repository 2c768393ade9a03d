/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * bring.h - a byte ring for variable-length messages, shared by threads
 * and processes, with blocking that costs nothing when nobody waits.
 *
 * Conventions (liburing/libbpf style):
 *  - every function that can fail returns 0, a count, or a negative errno;
 *  - constructors return NULL and set errno;
 *  - option structs start with "size_t sz" and are declared with
 *    BRING_OPTS() so that old binaries keep working with new libraries.
 *
 * See Documentation/ring.rst for the design and man/ for each call.
 */
#ifndef BRING_H
#define BRING_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef BRING_API
#define BRING_API __attribute__((visibility("default")))
#endif

#define BRING_VERSION_MAJOR 0
#define BRING_VERSION_MINOR 1

/* Opaque handles. */
struct bring;
struct bring_reader;

/**
 * struct bring_msg - one message as seen by a reader
 * @data: first byte of the payload, inside the ring (zero copy). Valid
 *        until the reader shifts it.
 * @len:  payload length in bytes; 0 is a valid message.
 * @seq:  the message's position in the ring's byte stream. Strictly
 *        increasing in push order; equal for a redelivered message.
 */
struct bring_msg {
	const void *data;
	size_t len;
	uint64_t seq;
};

/**
 * struct bring_resv - a reservation made by bring_reserve()
 * @data: where the writer puts the payload, inside the ring.
 * @len:  bytes reserved at @data.
 * @seq:  the position the message will have (see &struct bring_msg).
 *
 * The remaining fields are private to the library.
 */
struct bring_resv {
	void *data;
	size_t len;
	uint64_t seq;
	uint64_t __priv[2];
};

/* bring_opts.flags */
enum bring_flags {
	/*
	 * Create the ring without the default reader that bring_next() and
	 * bring_shift() use. Rings whose consumers are all named readers set
	 * this, or the unused default reader keeps every message alive.
	 */
	BRING_NO_DEFAULT_READER = 1U << 0,
	/*
	 * File rings: when opening finds a damaged record inside committed
	 * data, drop it (counted in bring_stats.damaged) instead of failing
	 * with -EBADMSG.
	 */
	BRING_SKIP_DAMAGED = 1U << 1,
	/*
	 * File rings, for this process: readers check each record's
	 * CRC32C before handing it out (a failing record is refused with
	 * -EBADMSG, as a record with a bad length always is). Costs one
	 * checksum pass over every payload read; see
	 * Documentation/security.rst.
	 */
	BRING_VERIFY_CRC = 1U << 2,
	/*
	 * File rings, for this process: open a ring file owned by another
	 * user, or writable by its group or by others. Without it such a
	 * file is refused with -EPERM: whoever can write the file can make
	 * every reader refuse its records and every writer block.
	 */
	BRING_ALLOW_FOREIGN = 1U << 3,
};

/* bring_opts.durability (file rings) */
enum bring_durability {
	BRING_DURABLE_NONE = 0, /* page cache: survives process crashes */
	BRING_DURABLE_INTERVAL = 1, /* flushed every flush_ms milliseconds */
	BRING_DURABLE_ALWAYS = 2, /* push returns once the message is durable */
};

/**
 * struct bring_opts - creation options, declared with BRING_OPTS()
 * @sz:      sizeof(struct bring_opts), set by BRING_OPTS().
 * @name:    ring name, shown in statistics and USDT probes (at most
 *           BRING_NAME_MAX - 1 bytes). Default "bring".
 * @max_msg: largest payload accepted, in bytes. 0 picks the largest that
 *           always fits: bring_capacity() - 16.
 * @flags:   enum bring_flags.
 * @spin_ns: before a writer or reader goes to sleep it re-checks its
 *           condition for up to this long (default 0: 2000 ns; negative:
 *           never), which saves two system calls whenever the other side
 *           is only a moment away. The sleep itself is a futex wait.
 * @durability: file rings, at creation: enum bring_durability.
 * @flush_ms: file rings with BRING_DURABLE_INTERVAL: the flush period
 *            (default 1000), which is also the window of messages a
 *            machine crash may lose.
 * @mode:    file rings: permissions of a new file (default 0600).
 */
struct bring_opts {
	size_t sz;
	const char *name;
	size_t max_msg;
	unsigned int flags;
	int spin_ns;
	int durability;
	unsigned int flush_ms;
	unsigned int mode;
	size_t : 0;
};
#define bring_opts__last_field mode

#define BRING_NAME_MAX 32 /* ring and reader names, including the NUL */
#define BRING_READERS_MAX 63 /* named readers per ring, plus the default */
#define BRING_DEFAULT_READER "" /* name of the default reader */

/*
 * BRING_DECLARE_OPTS(TYPE, NAME, ...) declares "struct TYPE NAME", zeroed
 * (padding included, so the library's trailing-byte check works), with .sz
 * set and the given designated initialisers applied.
 */
#define BRING_DECLARE_OPTS(TYPE, NAME, ...)                 \
	struct TYPE NAME = ({                               \
		memset(&NAME, 0, sizeof(struct TYPE));      \
		(struct TYPE){ .sz = sizeof(struct TYPE),   \
			       __VA_ARGS__ };               \
	})

/* BRING_OPTS(NAME, ...) declares a struct bring_opts called NAME. */
#define BRING_OPTS(NAME, ...) BRING_DECLARE_OPTS(bring_opts, NAME, __VA_ARGS__)

/**
 * struct bring_stats - counters filled by bring_get_stats()
 * @sz:            set by the caller to sizeof(struct bring_stats).
 * @msgs_in:       messages pushed or reserved and not aborted.
 * @bytes_in:      payload bytes of @msgs_in.
 * @msgs_out:      messages shifted, summed over all readers.
 * @bytes_out:     payload bytes of @msgs_out.
 * @write_waits:   times a writer blocked for space.
 * @write_wait_ns: total time writers spent blocked.
 * @read_waits:    times a reader blocked for data.
 * @read_wait_ns:  total time readers spent blocked.
 * @used:          bytes held behind the slowest reader, framing included.
 * @capacity:      bring_capacity().
 * @futex_waits:   FUTEX_WAIT system calls made.
 * @futex_wakes:   FUTEX_WAKE system calls made.
 * @readers:       readers holding space, the default one included.
 * @max_msg:       bring_max_msg().
 * @damaged:       records dropped when a file ring was opened with
 *                 BRING_SKIP_DAMAGED.
 * @flushes:       fdatasync() calls made for a file ring.
 * @durable:       file rings: bytes of the stream known to be on stable
 *                 storage (the position up to which they are).
 * @id:            random, fixed when the ring was created (a file ring
 *                 keeps it in the file): tells the positions of one ring
 *                 from those of another, or of a ring made again.
 * @file:          1 for a file ring (bring_open()), 0 for a memory ring.
 * @durability:    file rings: enum bring_durability of the file.
 * @room:          bytes a writer can claim now: @capacity - @used, less
 *                 the bytes a lap jump (or an escape from it) skipped
 *                 while a reader that has not passed it yet holds them
 *                 (bring_set_jump_slack()).
 */
struct bring_stats {
	size_t sz;
	uint64_t msgs_in;
	uint64_t bytes_in;
	uint64_t msgs_out;
	uint64_t bytes_out;
	uint64_t write_waits;
	uint64_t write_wait_ns;
	uint64_t read_waits;
	uint64_t read_wait_ns;
	uint64_t used;
	uint64_t capacity;
	uint64_t futex_waits;
	uint64_t futex_wakes;
	uint64_t readers;
	uint64_t max_msg;
	uint64_t damaged;
	uint64_t flushes;
	uint64_t durable;
	uint64_t id;
	uint64_t file;
	uint64_t durability;
	uint64_t room;
};

/**
 * struct bring_reader_stats - one reader, filled by bring_get_reader_stats()
 * @sz:          set by the caller to sizeof(struct bring_reader_stats).
 * @name:        the reader's name; "" for the default reader.
 * @pos:         its cursor: the position of the first message it has not
 *               shifted (see &struct bring_msg.seq).
 * @lag:         bytes between the cursor and the newest message, framing
 *               included: what this reader holds.
 * @msgs_out:    messages it shifted.
 * @bytes_out:   payload bytes of @msgs_out.
 * @last_active: when it last opened or shifted, in seconds since the
 *               epoch (CLOCK_REALTIME); 0 if never.
 * @owner:       the process id that holds a handle on it, as that
 *               process saw itself when it opened; 0 when no handle is
 *               open (a reader nobody reads holds its messages all the
 *               same).
 * @owner_alive: 1 when @owner still runs as seen from this process, 0
 *               when not or when there is no owner.
 * @stuck:       times it waited 200 ms in front of a record a writer had
 *               claimed and not finished (file rings: after each such
 *               wait the library checks whether the writer died).
 */
struct bring_reader_stats {
	size_t sz;
	char name[32];
	uint64_t pos;
	uint64_t lag;
	uint64_t msgs_out;
	uint64_t bytes_out;
	uint64_t last_active;
	int32_t owner;
	uint32_t owner_alive;
	uint64_t stuck;
};

/* Life cycle. */
BRING_API struct bring *bring_new(size_t capacity,
				  const struct bring_opts *opts);
BRING_API struct bring *bring_open(const char *path, size_t capacity,
				   const struct bring_opts *opts);
BRING_API void bring_free(struct bring *r);
BRING_API void bring_close(struct bring *r);

/*
 * Diagnostics: the library prints only when it refuses or repairs a file
 * (which check failed, at which offset). Default: stderr.
 */
typedef int (*bring_print_fn_t)(const char *fmt, va_list ap);
BRING_API bring_print_fn_t bring_set_print(bring_print_fn_t fn);

/* Properties. */
BRING_API size_t bring_capacity(const struct bring *r);
BRING_API size_t bring_max_msg(const struct bring *r);
BRING_API const char *bring_name(const struct bring *r);
BRING_API int bring_get_stats(const struct bring *r, struct bring_stats *st);
BRING_API int bring_get_reader_stats(const struct bring *r, unsigned int idx,
				     struct bring_reader_stats *st);

/* Writers: copy in. */
BRING_API int bring_push(struct bring *r, const void *data, size_t len);
BRING_API int bring_push_timeout(struct bring *r, const void *data,
				 size_t len, int timeout_ms);
BRING_API int bring_push_batch(struct bring *r, const struct bring_msg *msgs,
			       unsigned int nr, int timeout_ms);

/* Writers: zero copy. */
BRING_API int bring_reserve(struct bring *r, size_t len,
			    struct bring_resv *resv, int timeout_ms);
BRING_API int bring_commit(struct bring *r, struct bring_resv *resv,
			   size_t len);
BRING_API int bring_abort(struct bring *r, struct bring_resv *resv);

/* The default reader. */
BRING_API int bring_next(struct bring *r, struct bring_msg *msg);
BRING_API int bring_next_timeout(struct bring *r, struct bring_msg *msg,
				 int timeout_ms);
BRING_API int bring_peek(struct bring *r, struct bring_msg *msgs,
			 unsigned int nr, size_t max_bytes, int timeout_ms);
BRING_API int bring_shift(struct bring *r);

/* Named readers. */
BRING_API struct bring_reader *bring_reader_open(struct bring *r,
						 const char *name);
BRING_API int bring_reader_next(struct bring_reader *rd,
				struct bring_msg *msg, int timeout_ms);
BRING_API int bring_reader_peek(struct bring_reader *rd,
				struct bring_msg *msgs, unsigned int nr,
				size_t max_bytes, int timeout_ms);
BRING_API int bring_reader_shift(struct bring_reader *rd);
BRING_API void bring_reader_close(struct bring_reader *rd);
BRING_API int bring_reader_remove(struct bring *r, const char *name);

/*
 * Marks: a position in a writer's source, committed together with its
 * record, and a reader's own position, stored with its cursor. See
 * Documentation/ring.rst ("Marks") and file-format.rst.
 */
#define BRING_MARK_MAX 64 /* bytes in a writer or reader mark */
#define BRING_WRITERS_MAX 64 /* named writers per ring */

struct bring_writer; /* a named writer of a ring */

/**
 * struct bring_writer_opts - options of bring_writer_open()
 * @sz:    sizeof(struct bring_writer_opts), set by BRING_DECLARE_OPTS().
 * @flags: none defined yet: must be 0.
 */
struct bring_writer_opts {
	size_t sz;
	unsigned int flags;
	size_t : 0;
};
#define bring_writer_opts__last_field flags

BRING_API struct bring_writer *
bring_writer_open(struct bring *r, const char *name,
		  const struct bring_writer_opts *opts);
BRING_API void bring_writer_close(struct bring_writer *w);
BRING_API int bring_writer_remove(struct bring *r, const char *name);
BRING_API int bring_writer_mark(const struct bring_writer *w, void *buf,
				size_t size);
BRING_API int bring_writer_commit(struct bring_writer *w,
				  struct bring_resv *resv, size_t len,
				  const void *mark, size_t mark_len);
BRING_API int bring_writer_push(struct bring_writer *w, const void *data,
				size_t len, const void *mark, size_t mark_len,
				int timeout_ms);
BRING_API int bring_reader_shift_mark(struct bring_reader *rd,
				      const void *mark, size_t mark_len);
BRING_API int bring_reader_mark(const struct bring_reader *rd, void *buf,
				size_t size);
BRING_API int bring_reader_set_mark(struct bring_reader *rd, const void *mark,
				    size_t mark_len);

/*
 * Waiting from an event loop (io_uring, epoll with a helper): the ring's
 * sleeps are futex waits on 32-bit words in its shared memory.
 */

/**
 * struct bring_wait - a futex word to wait on outside the library
 * @uaddr: the word; shared (never FUTEX_PRIVATE_FLAG / FUTEX2_PRIVATE)
 * @val:   wait while *@uaddr == @val
 *
 * The remaining fields are private to the library.
 */
struct bring_wait {
	uint32_t *uaddr;
	uint32_t val;
	uint32_t __priv[3];
};

BRING_API int bring_reader_wait_prepare(struct bring_reader *rd,
					struct bring_wait *w);
BRING_API void bring_reader_wait_finish(struct bring_reader *rd,
					struct bring_wait *w);
/* Holding unshifted messages: wait for more past them. */
BRING_API int bring_reader_wait_more_prepare(struct bring_reader *rd,
					     struct bring_wait *w);
BRING_API int bring_write_wait_prepare(struct bring *r, size_t len,
				       struct bring_wait *w);
BRING_API void bring_write_wait_finish(struct bring *r, struct bring_wait *w);
/* A writer's own limit: wait until readers leave at most @held bytes. */
BRING_API int bring_drain_wait_prepare(struct bring *r, size_t held,
				       struct bring_wait *w);
BRING_API struct bring_reader *bring_default_reader(struct bring *r);
/* The longest a loop may wait on a prepared word: -1 none, else ms. */
BRING_API int bring_wait_timeout(const struct bring_wait *w);
/* Bytes between the reader's last shift and the head (LIBBRING_0.3). */
BRING_API uint64_t bring_reader_lag(const struct bring_reader *rd);
/* Event loops without FUTEX_WAIT: an eventfd per loop, written on wakes. */
BRING_API int bring_notify_fd(struct bring *r);
BRING_API int bring_set_jump_slack(struct bring *r, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* BRING_H */
