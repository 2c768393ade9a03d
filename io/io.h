/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * io/io.h - internals of the io layer shared by the io_uring loop
 * (uring.c) and the readv/writev mode (fallback.c).
 */
#ifndef BRING_IO_INTERNAL_H
#define BRING_IO_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/time_types.h>

#include "bring.h"
#include "bring_io.h"

#define IO_BATCH_MSGS 512 /* messages per write (lines: 2 iovecs each) */
#define IO_BATCH_BYTES (1U << 20) /* payload bytes per write */
#define IO_READ_CHUNK (256U << 10) /* bytes per read beyond max_msg */
#define IO_STAGE_MIN (16U << 10) /* staging a connection starts with */
#define IO_STAGE_TOTAL (64U << 20) /* default cap, all connections */
/* Every enum bring_io_flags bit this library knows: the highest, times 2, - 1. */
#define IO_KNOWN_FLAGS ((BRING_IO_SYNC_SINKS << 1) - 1U)
#define IO_READ_PROBE 512 /* polled, nothing waits: a read for EOF/error */
#define IO_WANT_POLL 0 /* conn_read_want(): nothing waits, poll first */
#define IO_WANT_EOF (-1) /* conn_read_want(): the peer's end */
#define IO_RESV_POLL 2 /* conn_resv_begin(): nothing waits, poll first */
#define IO_RESV_EOF 3 /* conn_resv_begin(): the peer's end, nothing read */
#define IO_PUSH_MSGS 256 /* messages per bring_push_batch() */
#define IO_LEDGER_SLOTS 4096 /* chunk records whose line count sinks reuse */
#define IO_BACKOFF_MIN_MS 50
/*
 * After a stop, a source keeps pushing what it has read while readers
 * free space; once the ring has stayed full this long it gives up.
 */
#define IO_STOP_STALL_MS 500
#define IO_BACKOFF_MAX_MS 5000
/* A sink that stays down says so once per this window, not per attempt. */
#define IO_DOWN_SAY_MS 30000
#define IO_SYSLOG_HDR 24 /* "LEN SP" of a syslog frame, with room */
#define IO_DGRAM_HDR 4 /* staging: a datagram's length before its bytes */
#define IO_DGRAM_MAX 65536 /* room a recv gets: larger than any UDP payload */
#define IO_DGRAM_RCVBUF (8U << 20) /* asked for; the kernel caps at rmem_max */
#define IO_ACCEPT_BACKOFF_MS 100 /* out of fds (EMFILE): accept again after */
#define IO_SAY_EVERY_S 10 /* a condition that lasts is said this often */
#define IO_ACKWAIT_MS 1 /* tcp sink after a FIN: look at the acks this often */
#define IO_SEND_TIMEOUT_MS 30000 /* default bring_io_opts.send_timeout_ms */
#define IO_PATH_CHECK_MS 100 /* file sinks: is the path still our file? */

enum ep_kind {
	EP_FILE,
	EP_STDIN,
	EP_STDOUT,
	EP_TCP_LISTEN,
	EP_TCP,
	EP_UDP_LISTEN,
	EP_UDP,
	EP_UNIX_LISTEN,
	EP_UNIX,
	EP_TAIL,
	EP_HOP, /* bring:HOST:PORT (hop.c) */
	EP_HOP_LISTEN, /* bring-listen:HOST:PORT (hop.c) */
	EP_KAFKA, /* kafka:BROKERS/TOPIC[?QUERY], source or sink (kafka.c) */
};

/* A parsed URI. */
struct endpoint {
	enum ep_kind kind;
	char *uri; /* as given, for messages */
	char *path; /* EP_FILE, EP_TAIL, EP_UNIX* */
	struct sockaddr_storage addr; /* EP_TCP*, EP_UDP*, EP_UNIX* */
	socklen_t addrlen;
	int socktype; /* SOCK_STREAM or SOCK_DGRAM */
	char *brokers, *topic, *query; /* EP_KAFKA; query may be NULL */
};

/* One in-flight io_uring operation: user_data points here. */
enum op_type {
	OP_READ, /* conn: read/recv into staging or reservation */
	OP_POLL, /* conn: wait for readability before a zero-copy recv */
	OP_SPACE, /* conn: FUTEX_WAIT for ring space */
	OP_ACCEPT, /* source: multishot accept */
	OP_WRITE, /* sink: writev/sendmsg */
	OP_WPOLL, /* datagram sink: wait until the socket takes more */
	OP_DATA, /* sink: FUTEX_WAIT for messages */
	OP_TIMER, /* sink: reconnect backoff */
	OP_ACKWAIT, /* tcp sink after a FIN: is the batch acknowledged? */
	OP_RETRY, /* file sink: its writes failed, try again */
	OP_CONNECT, /* sink: reconnect */
	OP_WAKE, /* loop: eventfd read (stop) */
	OP_NOTIFY, /* tail source: inotify read */
	OP_RINGFD, /* loop: bring_notify_fd() read (no FUTEX_WAIT) */
	OP_STALL, /* loop: stopping, is the ring still being drained? */
	OP_IDLE, /* loop: look for idle connections (idle_ms) */
	OP_ACCEPT_WAIT, /* source: out of fds, accept again after a pause */
	OP_KAFKA, /* kafka sink: eventfd read (librdkafka's queue) */
	OP_KSRC, /* kafka source: eventfd read (its thread ended) */
	OP_REPAIR, /* loop: sinks stuck at an unfinished record look again */
	OP_HOP_TX, /* bring: sink in the loop: its send, recv, connect, tick */
	OP_HOP_LISTEN, /* bring-listen: in the loop: its accept, its tick */
	OP_HOP_RX, /* bring-listen: connection: recv, send, space wait */
	OP_CANCEL, /* ignored */
};

struct op {
	enum op_type type;
	void *obj;
	bool busy;
};

struct source;

/*
 * A source's checkpoint (io/ckpt.c): its writer's mark, 48 bytes, native
 * byte order (the ring file is too).
 */
struct ckpt_mark {
	uint32_t magic;
	uint32_t flags; /* CKPT_DISCARD, CKPT_IN_LINE */
	uint64_t dev;
	uint64_t ino;
	uint64_t off; /* just past the last byte in a committed record */
	uint32_t head_len; /* bytes hashed at the file's start */
	uint32_t head_hash;
	/*
	 * bring 0.4: at @off, the parser is inside an oversize message
	 * (syslog, u32be): @rest bytes of it still go in as pieces, then
	 * @skip bytes are skipped. Marks of 0.3 end before these fields
	 * and are read as 0: at a message's end.
	 */
	uint64_t rest;
	uint64_t skip;
};

#define CKPT_DISCARD 1U /* lines: the rest of an oversize line is skipped */
#define CKPT_IN_LINE 2U /* syslog: @off is inside a line that was split */
#define CKPT_MARK_V3 offsetof(struct ckpt_mark, rest) /* bring 0.3's size */

/* Where a pushed message ends in staging, and the parser's state there. */
struct ckpt_at {
	size_t end; /* staging bytes consumed after the message */
	uint64_t skip, rest;
	bool discard, in_line;
};
#define CKPT_HEAD 64 /* bytes of a file's start that identify it */

/* A readable fd feeding the ring: a file, stdin or an accepted socket. */
struct conn {
	struct source *src;
	struct conn *next;
	int fd;
	bool sock; /* recv/poll instead of read */
	bool dgram; /* one recv is one datagram is one message (udp-listen) */
	bool pollfirst; /* wait for data before reserving (not a file) */
	bool readable; /* polled readable, or the last read filled its buffer */
	bool polled; /* readable because a poll said so (EOF looks alike) */
	bool more; /* the read into ring space asked for less than waited */
	bool nowait_bad; /* RWF_NOWAIT refused (a FIFO opened by name) */
	bool eof;
	bool idle; /* closed for idleness: a partial message is dropped */
	uint64_t last_ns; /* accepted: when it last sent data */
	bool finished;
	bool tail_eof; /* tail: read to the end; check before reading on */
	bool tail_wait; /* tail: at the end, waiting for an inotify event */
	bool accepted; /* counted in bring_io.nr_conns */
	char *buf; /* staging (lines, u32be); lines in chunks: the carry */
	size_t cap, len, off;
	bool moved; /* chunks: the carry was copied into a reservation once */
	bool cut; /* staging is full: the held message is oversize */
	size_t clean; /* lines: held bytes from off known to have no '\n' */
	bool discard; /* lines: skipping the rest of an oversize line */
	uint64_t skip; /* u32be, syslog: bytes of a message still to skip */
	size_t rest; /* dgram, syslog: bytes of a message to push in pieces */
	bool in_line; /* syslog: off is inside a line that was split */
	size_t need; /* bytes of the message that did not fit */
	/* The read-ahead is full: wait until the fastest sink is at most
	 * drain_to bytes behind instead of for room for @need (reset per
	 * wait; conn_read_ahead_full()). */
	bool drain;
	size_t drain_to;
	struct bring_resv resv; /* raw, chunks: the reservation read into */
	size_t carry; /* chunks: carried bytes at the start of resv */
	bool resv_open;
	struct bring_wait ww;
	uint64_t wait_t0; /* io_uring: when the space wait began (ns) */
	struct op rd_op, ww_op;
	/* Checkpoints: the identity of the file the fd reads. */
	uint64_t ck_dev, ck_ino;
	uint32_t ck_head_len, ck_head_hash;
};

/*
 * tail:PATH: the file at PATH, followed with inotify watches on it and on
 * its directory (for the name coming back after a rename or a delete).
 */
struct tail {
	char *dir; /* PATH's directory */
	const char *base; /* PATH's last component, in the endpoint's path */
	int ifd; /* inotify */
	int wd_dir, wd_file; /* watch descriptors, or -1 */
	int last_err; /* the last error logged while reopening */
	struct op in_op; /* OP_NOTIFY: the read of ifd */
	bool in_poll; /* in_op is a POLL_ADD (a kernel that said -EAGAIN) */
	char evbuf[4096] __attribute__((aligned(8))); /* inotify events */
	dev_t prev_dev; /* the file read before the followed one */
	ino_t prev_ino;
};

struct source {
	struct bring_io *io;
	struct endpoint ep;
	int lfd; /* listening socket, or -1 */
	int port;
	dev_t dev; /* unix-listen: the socket file we made, removed at the end */
	ino_t ino;
	struct conn *conns;
	bool finite;
	bool finished;
	struct tail *tail; /* tail:PATH, or NULL */
	struct hop_listen *hop; /* bring-listen:, run by hop.c, or NULL */
	unsigned int idx; /* among the io's sources, in add order */
	struct kafka_source *kafka; /* kafka: (a thread of its own), or NULL */
	struct op ks_op; /* io_uring: OP_KSRC, read of its thread's end */
	uint64_t ks_val;
	bool ks_thread; /* io_uring: its thread was started (join it) */
	struct op acc_op;
	struct op acc_wait_op; /* OP_ACCEPT_WAIT */
	struct __kernel_timespec acc_ts;
	pthread_t thread;
	struct bring_writer *ck; /* BRING_IO_CHECKPOINT: the named writer */
	struct ckpt_mark resume; /* its mark at start */
	bool has_resume;
	uint64_t msgs_in, bytes_in; /* this source's share of io->st */
	/* Bytes the ring may hold before this source waits; 0: no limit. */
	size_t read_ahead;
};

/* A condition said once, then at most every IO_SAY_EVERY_S seconds. */
struct io_say {
	uint64_t next_ns; /* not before then */
	uint64_t quiet; /* times it happened since it was last said */
};

struct sink {
	struct bring_io *io;
	struct endpoint ep;
	int fd;
	bool sock;
	bool dgram; /* udp: one message, one datagram (sendmmsg(2) in place) */
	bool regular; /* a regular file: written with writev(2) in place */
	char reader_name[BRING_NAME_MAX];
	struct bring_reader *rd;
	struct bring_msg batch[IO_BATCH_MSGS];
	struct iovec iov[2 * IO_BATCH_MSGS];
	uint32_t hdr[IO_BATCH_MSGS];
	char syslog_hdr[IO_BATCH_MSGS][IO_SYSLOG_HDR]; /* "LEN SP" */
	struct msghdr mh;
	/*
	 * dgram: one header and one iovec per datagram of the batch; a
	 * lines chunk record is one datagram per line. dg_cap entries.
	 */
	struct mmsghdr *mm;
	struct iovec *dg_iov;
	size_t dg_cap;
	int nmsg, niov, iov_pos; /* batch peeked; iov[iov_pos..niov) unsent
				  * (dgram: mm[iov_pos..niov)) */
	size_t batch_bytes, left; /* left: bytes, or datagrams for dgram */
	uint64_t batch_msgs; /* messages in the batch (lines: '\n'-counted) */
	int ndrop; /* dgram: datagrams of the batch dropped (too large) */
	bool inflight, waiting, done, down;
	bool exact; /* a file: sink with BRING_IO_CHECKPOINT */
	long batches; /* BRING_FAULT_SINK_KILL */
	bool was_up; /* connected once: a connect now is a reconnect */
	bool peer_fin; /* tcp: the peer sent a FIN: shift once it acked */
	unsigned int backoff_ms;
	int last_err; /* the last error of a connection (sink_set_state()) */
	unsigned int attempts; /* connects failed since it was last up */
	uint64_t said_ns; /* when sink_connect_failed() last said a line */
	struct __kernel_timespec ts;
	struct bring_wait rw;
	uint64_t wait_t0; /* io_uring: when the data wait began (ns) */
	struct op wr_op, rw_op, tm_op;
	struct hop_tx *hop; /* bring:, run by hop.c, or NULL */
	pthread_t thread;
	uint64_t msgs_out, bytes_out; /* this sink's share of io->st */
	uint64_t reconnects, sink_retries, reopens, send_timeouts;
	unsigned int idx; /* in add order among all sinks, bring: ones too */
	/*
	 * enum bring_io_state and last_err, for bring_io_sink_stats() in
	 * other threads: written by sink_set_state() (atomics).
	 */
	int state;
	/* file: sinks */
	off_t batch_at; /* the file's size before this batch, or -1 */
	unsigned int reopen_gen; /* bring_io.reopen_gen when last opened */
	uint64_t path_check_ns; /* look at the path again from then */
	uint64_t unacked_since; /* tcp after a FIN: waiting for acks since */
	struct __kernel_timespec send_ts; /* the send's link timeout */
	int fail_err; /* writes fail with it (retrying), or 0 */
	struct io_say fail_say, reopen_say;
	struct kafka_sink *kafka; /* kafka:, or NULL (kafka.c) */
	struct op kf_op; /* OP_KAFKA: read of its eventfd */
	uint64_t kf_val;
};

/*
 * Line counts of the chunk records this io's sources committed, so that
 * its sinks need not count newlines again: direct-mapped by position,
 * overwritten on collision (a sink that misses counts for itself).
 */
struct io_ledger {
	pthread_mutex_t lock; /* fallback mode: sources and sinks are threads */
	struct {
		uint64_t seq;
		uint64_t lines;
		unsigned int refs; /* sinks still to take it */
	} slot[IO_LEDGER_SLOTS];
};

struct io_counters {
	_Atomic uint64_t v[16];
};

struct bring_io {
	struct bring *r;
	struct bring_io_opts o;
	size_t max_msg;
	bool chunks; /* lines in chunk records (no BRING_IO_LINE_RECORDS) */
	size_t chunk; /* chunks: bytes read per reservation, beyond the carry */
	size_t ring_max; /* bring_max_msg() */
	size_t stage_max, stage_total; /* staging caps (frame.c) */
	size_t staged; /* staging held by all conns (atomic) */
	struct io_ledger *ledger; /* chunks only */
	struct source **srcs;
	unsigned int nr_srcs;
	struct sink **sinks;
	unsigned int nr_sinks;
	/* bring: sinks, and bring-listen: sources (in srcs[]): hop.c's */
	struct sink **hop_sinks;
	unsigned int nr_hop_sinks;
	unsigned int nr_hop_srcs;
	int hop_fd; /* eventfd written by bring_io_stop(), for hop.c; or -1 */
	bool uring; /* decided by bring_io_new() (probe) */
	bool ringfd; /* io_uring without FUTEX_WAIT: wait on bring_notify_fd() */
	int ringfd_fd; /* that eventfd, this io's own (the ring closes it) */
	int wake_fd; /* eventfd: bring_io_stop() */
	/*
	 * 1 once bring_io_stop() was called; also the futex word that
	 * readv/writev sources waiting for space wait on besides the ring's.
	 */
	uint32_t stop;
	bool no_waitv; /* readv/writev: futex_waitv(2) is not there */
	bool stopping;
	bool closed;
	int err; /* first fatal error */
	unsigned int nr_conns; /* accepted connections open (atomic) */
	unsigned int reopen_gen; /* bring_io_reopen() calls (atomic) */
	struct io_say accept_say, refuse_say; /* accept errors, max_conns */
	bool ran;
	struct bring_io_stats st; /* updated with relaxed atomics */
	/* A sink's reader is closed (io_fatal()) while stats and sources'
	 * read-ahead (fastest_sink_lag()) look at it. */
	pthread_mutex_t rd_lock;
};

/*
 * Every sink of @io, bring: ones (hop.c's own list) after the others:
 * io_sink(io, i) for i below io_nr_sinks(io).
 */
static inline unsigned int io_nr_sinks(const struct bring_io *io)
{
	return io->nr_sinks + io->nr_hop_sinks;
}

static inline struct sink *io_sink(const struct bring_io *io, unsigned int i)
{
	return i < io->nr_sinks ? io->sinks[i] : io->hop_sinks[i - io->nr_sinks];
}

#define io_stat_add(io, field, n) \
	__atomic_fetch_add(&(io)->st.field, (n), __ATOMIC_RELAXED)
/* A source's or a sink's counter, and the io's total. */
#define conn_stat_add(c, field, n)                                        \
	do {                                                              \
		uint64_t n_ = (n);                                        \
		io_stat_add((c)->src->io, field, n_);                     \
		__atomic_fetch_add(&(c)->src->field, n_, __ATOMIC_RELAXED); \
	} while (0)
#define sink_stat_add(s, field, n)                                    \
	do {                                                          \
		uint64_t n_ = (n);                                    \
		io_stat_add((s)->io, field, n_);                      \
		__atomic_fetch_add(&(s)->field, n_, __ATOMIC_RELAXED); \
	} while (0)

/* endpoint.c */
int ep_parse(struct endpoint *ep, const char *uri, bool source);
void ep_free(struct endpoint *ep);
int ep_listen(struct endpoint *ep, int *port);
int ep_connect(const struct endpoint *ep);
bool ep_refuse_self_connect(int fd);
void ep_unlink(struct source *src);
int ep_open_sink(struct endpoint *ep, bool *sock);
int ep_open_file_source(struct endpoint *ep);
uint64_t io_now_ns(void);
void io_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void io_fatal(struct bring_io *io, struct sink *s, int err);
unsigned int sink_next_backoff(struct sink *s);
void sink_connect_failed(struct sink *s, int err);
void sink_connected(struct sink *s);
void sink_set_state(struct sink *s, int state, int err);
void sink_batch_begin(struct sink *s);
unsigned int sink_write_failed(struct sink *s, int err);
int sink_retry(struct sink *s);
void sink_sock_opts(struct sink *s);
void sink_give_up(struct sink *s, int err);
void io_set_err(struct bring_io *io, int err);
struct conn *source_add_conn(struct source *src, int fd);
bool io_say_now(struct io_say *say, uint64_t *times);
struct conn *source_accepted(struct source *src, int fd);
void source_conn_gone(struct conn *c);
unsigned int source_accept_failed(struct source *src, int err);
void io_ring_error(struct bring_io *io, struct conn *c, int err);

/* tail.c */
enum { TAIL_READ = 1, TAIL_WAIT = 2 };
int tail_open(struct source *src);
void tail_free(struct source *src);
int tail_check(struct conn *c, int timeout_ms);
bool tail_events(struct source *src, size_t len);
int tail_watch(struct tail *t, int fd, const char *path);
void tail_unwatch(struct tail *t);

/* ckpt.c */
/* FNV-1a, 64 bits: io_fnv64(FNV64_INIT, p, n), chained through @h. */
#define FNV64_INIT 0xcbf29ce484222325ULL
uint64_t io_fnv64(uint64_t h, const void *p, size_t n);
int ckpt_open(struct source *src);
void ckpt_close(struct source *src);
void ckpt_file_opened(struct conn *c);
int ckpt_commit(struct conn *c, struct bring_resv *resv, size_t len,
		size_t rest);
int ckpt_push(struct conn *c, const struct bring_msg *msgs,
	      const struct ckpt_at *at, int n, int timeout_ms);
int ckpt_resume_file(struct conn *c);
int ckpt_resume_tail(struct conn *c);
int ckpt_sink_start(struct sink *s);
int ckpt_sink_shift(struct sink *s);

/* frame.c */
int conn_init(struct conn *c, struct source *src, int fd);
void conn_free(struct conn *c);
int conn_push(struct conn *c, bool final, int timeout_ms);
void conn_drop_staged(struct conn *c);
bool conn_idle(struct conn *c, uint64_t now);
int conn_stage_fit(struct conn *c, size_t need);
int conn_stage_slot(struct conn *c, char **at, size_t *room);
int conn_raw_reserve(struct conn *c, int timeout_ms);
size_t conn_raw_chunk(const struct conn *c);
ssize_t conn_read_want(struct conn *c, size_t max);
bool conn_resv_read(const struct conn *c);
int conn_resv_begin(struct conn *c, int timeout_ms);
void conn_resv_done(struct conn *c, ssize_t n);
int sink_fill(struct sink *s, int timeout_ms);
void sink_advance(struct sink *s, size_t n);
int sink_batch_done(struct sink *s);
void sink_rewind(struct sink *s);
int sink_send_dgrams(struct sink *s, int flags);
int sink_peer_gone(struct sink *s);
int sink_unacked(struct sink *s);
void *conn_dgram_slot(struct conn *c, size_t *room);
void conn_dgram_add(struct conn *c, size_t n);
int conn_recv_dgrams(struct conn *c);

/* chunk.c */
size_t count_nl(const void *p, size_t n);
int conn_chunk_reserve(struct conn *c, int timeout_ms);
bool conn_read_ahead_full(struct conn *c, size_t len);
int conn_space_wait_prepare(struct conn *c, struct bring_wait *w);
void conn_chunk_done(struct conn *c, size_t n);
int conn_chunk_push(struct conn *c, int timeout_ms);
int ledger_new(struct bring_io *io);
void ledger_free(struct bring_io *io);
bool ledger_take(struct bring_io *io, uint64_t seq, uint64_t *lines);

/*
 * What a kafka: sink may have in flight (produced, not yet reported) on
 * top of a file source's read-ahead: its cursor moves on delivery
 * reports, so without it the read-ahead would cap the bytes in flight to
 * the cluster (1 MiB per linger and round trip; the sink fell to 0.50x
 * plain_producer -H in bench/kafka with the 1 MiB read-ahead).
 */
#define KAFKA_WINDOW (8U << 20)

/* kafka.c (stubs returning -EPROTONOSUPPORT without librdkafka) */
enum { KAFKA_WANT_DATA = 1, KAFKA_DONE = 2 };
int kafka_sink_new(struct sink *s);
void kafka_sink_free(struct sink *s);
int kafka_sink_pump(struct sink *s);
int kafka_sink_fd(const struct sink *s);
void *kafka_sink_thread(void *arg);
int kafka_source_new(struct source *src);
void kafka_source_free(struct source *src);
void *kafka_source_thread(void *arg);
int kafka_source_fd(const struct source *src);
void kafka_source_kick(struct source *src);

/* uring.c, fallback.c */
int io_uring_probe_ok(bool *futex_wait);
/* uring.c, for hop.c's endpoints in the loop */
struct loop;
struct io_uring_sqe *uring_sqe(struct loop *l, struct op *op);
void uring_cancel(struct loop *l, struct op *op);
void uring_data_wait(struct loop *l, struct op *op, const struct bring_wait *w);
void uring_data_wait_cancel(struct loop *l, struct sink *s);
int io_run_uring(struct bring_io *io);
int io_run_fallback(struct bring_io *io);
void fallback_wait_ring(struct bring_io *io, const struct bring_wait *w,
			unsigned int ms);

/*
 * readv/writev mode: a thread that waits on a shared ring's futex word
 * for a thread that poll(2)s descriptors too, and writes @efd when the
 * word moves (fallback.c). Zeroed, it is off; ring_relay_hand() starts
 * it, ring_relay_stop() ends it.
 */
struct ring_relay {
	struct bring_io *io;
	pthread_t th;
	uint32_t *word; /* the ring's futex word */
	uint32_t val; /* its value at the latest prepared wait */
	uint32_t req; /* +2 per hand-off; bit 0: quit */
	int efd;
	bool on; /* the owner's thread only */
	bool broken; /* no futex_waitv(2): the owner polls instead */
};

bool ring_relay_hand(struct ring_relay *rl, struct bring_io *io,
		     const struct bring_wait *w, int efd);
void ring_relay_stop(struct ring_relay *rl);

#endif
