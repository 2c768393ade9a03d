/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * bring_io.h - feed and drain a bring ring through sockets and files.
 *
 * One event loop (one thread, one io_uring) serves any number of sources
 * (fd -> ring) and sinks (named reader -> fd). Sources of lines and raw
 * read straight into ring space, sinks send straight from it (lines: a
 * read's complete lines become one chunk record, see
 * BRING_IO_LINE_RECORDS). Where io_uring is missing or refused, the same
 * sources and sinks run on plain blocking readv/writev, one thread per
 * endpoint.
 *
 * Conventions are those of bring.h: 0, a count or a negative errno;
 * constructors return NULL and set errno; option structs start with sz.
 *
 * See Documentation/io.rst.
 */
#ifndef BRING_IO_H
#define BRING_IO_H

#include <stddef.h>
#include <stdint.h>

#include "bring.h"

#ifdef __cplusplus
extern "C" {
#endif

struct bring_io;

/* Framing of a byte stream into messages (sources) and back (sinks). */
enum bring_io_framing {
	BRING_IO_LINES = 0, /* '\n' ends a message; a final line needs none */
	BRING_IO_U32BE = 1, /* 4-byte big-endian length, then the payload */
	BRING_IO_RAW = 2, /* whatever one read returned is one message */
	/*
	 * RFC 6587 / RFC 5425 syslog over a stream: "LEN SP MSG" (octet
	 * counting), or a line ended by '\n' (non-transparent) when the
	 * frame does not start with a digit, decided per message. Sinks
	 * write "LEN SP MSG". See Documentation/io.rst.
	 */
	BRING_IO_SYSLOG = 3,
};

/* What a source does with a line longer than max_msg. */
enum bring_io_oversize {
	BRING_IO_SPLIT = 0, /* several messages of max_msg bytes (default) */
	BRING_IO_TRUNCATE = 1, /* its first max_msg bytes */
	BRING_IO_DROP = 2, /* nothing */
};

/* bring_io_opts.flags */
enum bring_io_flags {
	BRING_IO_NO_URING = 1U << 0, /* force the readv/writev mode */
	BRING_IO_QUIET = 1U << 1, /* log errors only */
	/*
	 * lines: one record per line. By default a source commits the
	 * complete lines of each read as one *chunk record*,
	 * "l1\nl2\n...\nlk" (joined by '\n', the final one left out),
	 * where they were received; sinks write both alike. Set this when
	 * the ring's own readers (bring_reader_next()) want one line each.
	 */
	BRING_IO_LINE_RECORDS = 1U << 2,
	BRING_IO_TAIL_FROM_START = 1U << 3, /* tail: read what is there first */
	/*
	 * io_uring mode: wait for ring readiness on bring_notify_fd()
	 * instead of IORING_OP_FUTEX_WAIT, as on kernels before 6.7, where
	 * this is chosen by itself. Only wakes made through the ring handle
	 * given to bring_io_new() reach that eventfd (see BRING_IO_SHARED).
	 */
	BRING_IO_NO_FUTEX_WAIT = 1U << 4,
	/*
	 * Other handles or processes write to or read from the ring too (a
	 * file ring that applications push into): without FUTEX_WAIT, use
	 * the readv/writev mode, whose futex waits see every waker.
	 */
	BRING_IO_SHARED = 1U << 5,
	/*
	 * A file ring: tail: and file: sources commit their position with
	 * their records (a named writer per source, "src:URI") and resume
	 * there when run again; file: sinks store their output's length
	 * with each shift and cut the output back to it at start, so that
	 * it holds every message once (Documentation/io.rst).
	 */
	BRING_IO_CHECKPOINT = 1U << 6,
	/* With BRING_IO_CHECKPOINT: fdatasync() a file: sink's output
	 * before the shift that records its length. */
	BRING_IO_SYNC_SINKS = 1U << 7,
};

/**
 * struct bring_io_opts - options of bring_io_new(), see BRING_IO_OPTS()
 * @sz:       sizeof(struct bring_io_opts).
 * @flags:    enum bring_io_flags.
 * @framing:  enum bring_io_framing, for every source and sink.
 * @oversize: enum bring_io_oversize.
 * @max_msg:  largest message a source makes; 0: bring_max_msg() of the
 *            ring, capped at 1 MiB.
 * @entries:  io_uring submission queue size (default 256).
 * @stage_max: bytes one connection may hold in staging: a partial line
 *            or u32be message, and room for the read that completes it.
 *            0: max_msg + 256 KiB. A message that would need more is cut:
 *            the oversize policy applies to what is held (u32be: drop).
 * @stage_total: the same for all connections of all sources together
 *            (each may still use 16 KiB). 0: 64 MiB.
 * @idle_ms:  a connection accepted by a listening source that sends
 *            nothing for this long is closed (its partial message is
 *            dropped, counted in dropped and idle_closed). 0: never.
 * @hop_id:   bring: sinks: the stream id (1..255 bytes) their receiver
 *            keeps the stream's offset under; each sink appends
 *            "/READER". NULL: "HOSTNAME/RINGNAME". See
 *            Documentation/protocol.rst.
 * @hop_window: bring: sinks: bytes sent and not yet acknowledged, at
 *            most (0: 8 MiB).
 * @hop_heartbeat_ms: bring: and bring-listen: endpoints: a PING after
 *            this long without sending (0: 1000); a peer silent for
 *            three times as long is dead.
 * @send_timeout_ms: a tcp: or unix: sink whose peer takes no byte for
 *            this long (a peer that accepts and never reads) is failed
 *            and connected again (TCP_USER_TIMEOUT too); the batch goes
 *            again. 0: 30 s; negative: never.
 * @max_conns: connections the listening sources keep open at once, all
 *            together; more are accepted and closed at once (counted in
 *            refused). 0: no limit but the process's RLIMIT_NOFILE, past
 *            which accepting pauses for 100 ms at a time.
 * @kafka_props: kafka: endpoints: NULL-terminated array of "name=value"
 *            librdkafka properties, applied after bring's defaults and
 *            the URI's query (bringcat -X). Read by bring_io_add_source()
 *            and bring_io_add_sink(): valid until the last such call.
 * @on_error: kafka: sinks: enum bring_io_on_error.
 * @dead_letter: kafka: sinks with BRING_IO_ON_ERROR_SKIP: a sink URI
 *            (file:, stdout:, tcp:, unix:) that gets the messages a
 *            permanent error made them skip, framed like the io's
 *            framing; NULL: they are only counted.
 * @read_ahead: bytes a source reading a regular file to its end
 *            (file:, or stdin redirected from one) reads ahead of the
 *            fastest sink at most, framing included; it reads on as the
 *            sinks shift (a stopped sink's bytes stay in the ring, up
 *            to its capacity; with no sinks, the ring's slowest reader
 *            counts). The
 *            file keeps the rest, and a ring whose readers are close
 *            behind stays in its working set (Documentation/ring.rst,
 *            "Lap jumps") instead of being written end to end. 0 (or
 *            the capacity or more): the whole ring. bringcat's default
 *            is 1 MiB, half the working set of a ring of 16 MiB or
 *            more: a source further ahead stops its lap jumps. With bring: sinks it comes on top of the largest
 *            @hop_window (their unacknowledged bytes stay in the ring).
 *            tail: sources always fill the whole ring (a file
 *            rotated away while the sinks are down is read from the
 *            ring, not from the disk).
 */
struct bring_io_opts {
	size_t sz;
	unsigned int flags;
	int framing;
	int oversize;
	size_t max_msg;
	unsigned int entries;
	size_t stage_max;
	size_t stage_total;
	unsigned int idle_ms;
	const char *hop_id;
	size_t hop_window;
	unsigned int hop_heartbeat_ms;
	unsigned int max_conns;
	int send_timeout_ms;
	const char *const *kafka_props;
	int on_error;
	const char *dead_letter;
	size_t read_ahead;
	size_t : 0;
};
#define bring_io_opts__last_field read_ahead

/* What a kafka: sink does when the cluster refuses a message for good. */
enum bring_io_on_error {
	BRING_IO_ON_ERROR_STOP = 0, /* say it, fail the run, keep the record */
	BRING_IO_ON_ERROR_SKIP = 1, /* count it (dead-letter it), go on */
};

#define BRING_IO_OPTS(NAME, ...) \
	BRING_DECLARE_OPTS(bring_io_opts, NAME, __VA_ARGS__)

/**
 * struct bring_io_stats - counters filled by bring_io_get_stats()
 * @sz:          set by the caller to sizeof(struct bring_io_stats).
 * @msgs_in:     messages the sources put into the ring (lines: every
 *               line of a chunk record counts).
 * @bytes_in:    bytes the sources read (framing included).
 * @msgs_out:    messages the sinks wrote in full and shifted (lines:
 *               every line).
 * @bytes_out:   bytes the sinks wrote (framing included).
 * @reads:       read/recv completions with data.
 * @writes:      write/send completions (short ones included).
 * @short_writes: writes that wrote less than asked and were resubmitted.
 * @split:       oversize lines split.
 * @truncated:   oversize lines truncated.
 * @dropped:     oversize messages dropped; at stop, a partial message and
 *               messages read that the ring could not take (full for
 *               500 ms after the stop, closed, or failing).
 * @accepted:    connections accepted by listening sources.
 * @reconnects:  sink connections made again after a failure.
 * @full_waits:  times a source waited for space (back-pressure).
 * @empty_waits: times a sink waited for messages.
 * @uring:       1 when the io_uring loop runs, 2 when it waits for the
 *               ring on bring_notify_fd() (no FUTEX_WAIT), 0 in
 *               readv/writev mode.
 * @send_dropped: messages a udp: sink dropped: too large for a datagram.
 * @send_errors: send errors a udp: sink went on after (ECONNREFUSED: an
 *               earlier datagram found nobody listening).
 * @rotations:   tail: switches to a new file at the path (renamed or
 *               deleted, then created again).
 * @truncations: tail: times the file was found shorter than the offset
 *               read to (copytruncate), and read again from its start.
 * @full_wait_ns: time sources spent waiting for space.
 * @empty_wait_ns: time sinks spent waiting for messages in the io_uring
 *               loop (readv/writev mode: the ring's read_wait_ns).
 * @idle_closed: connections closed after idle_ms without data.
 * @staged:      bytes of staging the connections hold now (not a
 *               counter), at most stage_total + 16 KiB per connection.
 * @copied:      bytes the sources copied on their way into the ring:
 *               from staging (u32be, datagrams, line records, oversize
 *               lines) and carried partial lines. Reads into ring space
 *               (raw, lines in chunk records) copy nothing.
 * @hop_frames:  bring: DATA frames sent, plus bring-listen: DATA frames
 *               received and committed.
 * @hop_acks:    bring: ACK frames received, plus bring-listen: ACK
 *               frames sent.
 * @hop_resent:  bring: messages sent again on a new connection (sent
 *               before, not acknowledged).
 * @hop_rejected: connections a bring-listen: closed for bad input, and
 *               those a bring: sink closed for a bad answer.
 * @refused:     connections closed as soon as accepted (max_conns).
 * @accept_errors: accepts that failed (EMFILE, ENFILE: out of fds).
 * @sink_retries: writes to file: sinks that failed (ENOSPC, EIO, ...):
 *               the batch was cut off the file and is written again
 *               after a backoff, the file opened again by its path.
 * @reopens:     file: sinks opened again by path: asked to
 *               (bring_io_reopen()), or their file was renamed or deleted.
 * @send_timeouts: sink sends that made no progress for send_timeout_ms.
 * @kafka_delivered: kafka: sinks: messages the cluster acknowledged.
 * @kafka_inflight: kafka: sinks: messages handed to librdkafka and not
 *               yet acknowledged or failed (a gauge).
 * @kafka_retried: kafka: sinks: produce requests librdkafka sent again
 *               (its brokers' txretries; updated every second).
 * @kafka_failed: kafka: sinks: messages refused for good (permanent
 *               errors), skipped or stopped at.
 * @bad_frames:  syslog: frames whose octet count was malformed (digits
 *               not ended by SP, 0, more than 10 digits), each also
 *               counted in dropped.
 */
struct bring_io_stats {
	size_t sz;
	uint64_t msgs_in;
	uint64_t bytes_in;
	uint64_t msgs_out;
	uint64_t bytes_out;
	uint64_t reads;
	uint64_t writes;
	uint64_t short_writes;
	uint64_t split;
	uint64_t truncated;
	uint64_t dropped;
	uint64_t accepted;
	uint64_t reconnects;
	uint64_t full_waits;
	uint64_t empty_waits;
	uint64_t uring;
	uint64_t send_dropped;
	uint64_t send_errors;
	uint64_t rotations;
	uint64_t truncations;
	uint64_t full_wait_ns;
	uint64_t empty_wait_ns;
	uint64_t copied;
	uint64_t idle_closed;
	uint64_t staged;
	uint64_t hop_frames;
	uint64_t hop_acks;
	uint64_t hop_resent;
	uint64_t hop_rejected;
	uint64_t refused;
	uint64_t accept_errors;
	uint64_t sink_retries;
	uint64_t reopens;
	uint64_t send_timeouts;
	uint64_t kafka_delivered;
	uint64_t kafka_inflight;
	uint64_t kafka_retried;
	uint64_t kafka_failed;
	uint64_t bad_frames;
};

/* bring_io_endpoint_stats.state */
enum bring_io_state {
	BRING_IO_UP = 0, /* open or connected, or not started yet */
	BRING_IO_RECONNECTING = 1, /* a socket sink whose peer is away */
	BRING_IO_FAILED = 2, /* given up: last_err says why (the run fails) */
	BRING_IO_DONE = 3, /* finished: a source at its end, a drained sink */
};

/**
 * struct bring_io_endpoint_stats - one source or sink, see
 * bring_io_source_stats() and bring_io_sink_stats()
 * @sz:         set by the caller to sizeof(struct bring_io_endpoint_stats).
 * @uri:        the endpoint as added; valid until bring_io_free().
 * @reader:     sinks: the name of the ring reader it drains; sources: NULL.
 * @msgs:       messages it put into the ring (sources) or wrote (sinks),
 *              counted as bring_io_stats.msgs_in / msgs_out.
 * @bytes:      bytes it read or wrote (framing included).
 * @lag:        sinks: bytes of the ring behind its reader's last shift
 *              (bring_reader_lag()); 0 for sources.
 * @reconnects: sinks: connections made again after a failure.
 * @state:      enum bring_io_state.
 * @last_err:   sinks: the negative errno of the last connection failure
 *              or of the failure that stopped it; 0 if none.
 * @retries:    file: sinks: failed writes retried (bring_io_stats'
 *              sink_retries).
 * @reopens:    file: sinks: files opened again by path.
 * @send_timeouts: tcp:/unix: sinks: sends that made no progress for
 *              send_timeout_ms.
 */
struct bring_io_endpoint_stats {
	size_t sz;
	const char *uri;
	const char *reader;
	uint64_t msgs;
	uint64_t bytes;
	uint64_t lag;
	uint64_t reconnects;
	int state;
	int last_err;
	uint64_t retries;
	uint64_t reopens;
	uint64_t send_timeouts;
};

/*
 * Endpoints are URIs.
 *   sources: file:PATH  stdin: (or -)  tcp-listen:HOST:PORT  tail:PATH
 *            udp-listen:HOST:PORT (one datagram is one message)
 *            unix-listen:PATH (SOCK_STREAM; a stale socket file is replaced)
 *            bring-listen:HOST:PORT (the acknowledged hop's receiver)
 *   sinks:   file:PATH (append, created 0640)  stdout: (or -)  tcp:HOST:PORT
 *            udp:HOST:PORT (one message is one datagram)  unix:PATH
 *            bring:HOST:PORT (the acknowledged hop: exactly once into a
 *            bring-listen: ring; Documentation/protocol.rst)
 *   kafka:   kafka:HOST:PORT[,HOST:PORT...]/TOPIC?group=NAME as a source (a
 *            consumer group; offsets are committed once the ring holds the
 *            messages), and as a sink
 *            kafka:HOST:PORT[,HOST:PORT...]/TOPIC[?key=K|key-delim=C]
 *            [&partition=N][&compression=zstd|lz4|gzip|snappy|none]
 *            (a record is shifted once every message of it is acknowledged;
 *            lines: one Kafka message per line. See Documentation/kafka.rst.)
 * HOST is a name or an address; IPv6 addresses go in brackets; one that
 * does not resolve fails bring_io_add_*() with -EHOSTUNREACH (-EAGAIN: a
 * temporary failure of the resolver). A tcp: or unix: sink whose peer is
 * not up at start (refused, unreachable, no socket file) is added down,
 * said in one line, and connected with backoff by bring_io_run(), like
 * one that fails later.
 * tail:PATH follows a regular file like tail -F: from its end (from its
 * start with BRING_IO_TAIL_FROM_START), through rename-and-recreate
 * rotation, deletion and truncation, and waits for it when it does not
 * exist yet (its directory must). It never ends; a line is a message only
 * once its newline arrived, or when its file was rotated away or
 * truncated. See Documentation/io.rst.
 */
BRING_API struct bring_io *bring_io_new(struct bring *r,
					const struct bring_io_opts *opts);
BRING_API int bring_io_add_source(struct bring_io *io, const char *uri);
BRING_API int bring_io_add_sink(struct bring_io *io, const char *uri,
				const char *reader);
/*
 * Run until every finite source (file:, stdin:) reached its end, or
 * bring_io_stop() was called, and every sink wrote every message: then
 * the ring is closed and the sinks drain it. Returns 0 or a negative
 * errno (the first fatal error, said through bring_io_set_print() with
 * its endpoint, BRING_IO_QUIET or not; -EAGAIN when a thread of the
 * readv/writev mode could not start: those started were stopped and
 * joined). The readv/writev mode's threads block all signals: handlers
 * run in the calling thread.
 */
BRING_API int bring_io_run(struct bring_io *io);
/*
 * Stop the sources and drain; async-signal-safe, any thread. Sources
 * read nothing more; one holding messages a full ring cannot take waits
 * while readers free space, and gives up once the ring has stayed full
 * for 500 ms: what it holds then is dropped (counted in dropped). A sink
 * that cannot write (its peer is down or stuck past send_timeout_ms, its
 * file fails) gives up instead of trying again: bring_io_run() then
 * returns its error, and its reader keeps its place in the ring.
 */
BRING_API void bring_io_stop(struct bring_io *io);
/*
 * Open every file: sink again by its path before its next write (after
 * logrotate moved the files: its postrotate SIGHUP); async-signal-safe,
 * any thread. A sink also does so by itself within 100 ms of a write
 * after its file was renamed or deleted.
 */
BRING_API void bring_io_reopen(struct bring_io *io);
/* 1 when running (or about to run) on io_uring, 0 otherwise. */
BRING_API int bring_io_uses_uring(const struct bring_io *io);
/* The local port of listening source @idx (0-based, in add order). */
BRING_API int bring_io_source_port(const struct bring_io *io, unsigned int idx);
BRING_API int bring_io_get_stats(const struct bring_io *io,
				 struct bring_io_stats *st);
/*
 * The figures of source or sink @idx (0-based, in add order); any
 * thread, while running or after. -ENOENT past the last one (iterate
 * until then), -EINVAL for bad arguments.
 */
BRING_API int bring_io_source_stats(const struct bring_io *io, unsigned int idx,
				    struct bring_io_endpoint_stats *st);
BRING_API int bring_io_sink_stats(const struct bring_io *io, unsigned int idx,
				  struct bring_io_endpoint_stats *st);
BRING_API void bring_io_free(struct bring_io *io);

/* Diagnostics ("bring_io: ..." lines); default stderr. */
BRING_API bring_print_fn_t bring_io_set_print(bring_print_fn_t fn);

#ifdef __cplusplus
}
#endif

#endif /* BRING_IO_H */
