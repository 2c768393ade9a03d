// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * kafka: endpoints through librdkafka. See Documentation/kafka.rst.
 *
 * Sink: records are produced zero copy from ring memory (librdkafka holds
 * pointers into the ring: nothing is shifted before its report came) and
 * shifted once every message of them is acknowledged, the contiguous
 * delivered prefix at a time (partitions report out of order). lines
 * chunk records give one Kafka message per line. Every message carries
 * the header "bring.pos" = "SEQ:N" (the record's ring position, the line's
 * index in it) so that consumers can drop what a crash sent twice.
 *
 * Waits, in both loops: librdkafka signals its main queue (delivery
 * reports, errors, statistics) on an eventfd through
 * rd_kafka_queue_io_event_enable(). While messages are in flight the sink
 * waits on that eventfd only: each batch of reports shifts, and looks for
 * new records in the ring, so a busy stream is taken as fast as the
 * cluster acknowledges it. With nothing in flight it waits for the ring
 * (FUTEX_WAIT in the io_uring loop, a blocking peek in its thread in the
 * readv/writev mode). QUEUE_FULL from librdkafka is the back-pressure:
 * take nothing more until reports freed room.
 *
 * Source: a consumer group; a thread of its own in both modes, waiting in
 * poll(2) on the consumer queue's eventfd and io->wake_fd (the io_uring
 * loop, which reads wake_fd itself, writes the eventfd at a stop). An
 * offset is stored for commit only once the ring holds its message.
 *
 * With BRING_IO_CHECKPOINT (a file ring) the ring is the source of truth
 * for where the source is: each partition has a named writer
 * ("kafka:TOPIC/P") whose mark (struct kafka_mark) is committed with
 * every message it pushes and holds that message's offset. On each
 * assignment (the rebalance callback, run on the source's thread between
 * two batches, so every pushed message is committed by then) an assigned
 * partition with a mark starts at mark + 1: after a SIGKILL nothing is
 * read twice and nothing skipped. The group's committed offsets are still
 * stored (monitoring, and partitions without a mark yet). Without a file
 * ring: the committed offsets, at least once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "io.h"

#ifndef BRING_HAVE_KAFKA

int kafka_sink_new(struct sink *s)
{
	return -EPROTONOSUPPORT;
}

void kafka_sink_free(struct sink *s)
{
}

int kafka_sink_pump(struct sink *s)
{
	return -EPROTONOSUPPORT;
}

int kafka_sink_fd(const struct sink *s)
{
	return -1;
}

void *kafka_sink_thread(void *arg)
{
	return NULL;
}

int kafka_source_new(struct source *src)
{
	return -EPROTONOSUPPORT;
}

void kafka_source_free(struct source *src)
{
}

void *kafka_source_thread(void *arg)
{
	return NULL;
}

int kafka_source_fd(const struct source *src)
{
	return -1;
}

void kafka_source_kick(struct source *src)
{
}

#else /* BRING_HAVE_KAFKA */

#include <dlfcn.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>

#define RDK_SONAME "librdkafka.so.1"

/*
 * librdkafka is loaded when the first kafka: endpoint opens, not when the
 * program starts: linked, it and the libraries it needs (OpenSSL, SASL,
 * zstd, lz4) cost every bringcat 4.4-5.3 ms and about 230 page faults
 * before main(), half of its start (Documentation/benchmarks.rst,
 * session 10), whether it ships to Kafka or not. Every function of it
 * this file calls goes through rdk, filled by rdk_load() from the
 * library the dynamic linker finds as librdkafka.so.1 (its soname since
 * 1.0). It is never unloaded: its threads and atexit handlers stay.
 */
#define RDK_FUNCS(X) \
	X(rd_kafka_assign) \
	X(rd_kafka_conf_destroy) \
	X(rd_kafka_conf_new) \
	X(rd_kafka_conf_set) \
	X(rd_kafka_conf_set_dr_msg_cb) \
	X(rd_kafka_conf_set_error_cb) \
	X(rd_kafka_conf_set_log_cb) \
	X(rd_kafka_conf_set_opaque) \
	X(rd_kafka_conf_set_rebalance_cb) \
	X(rd_kafka_conf_set_stats_cb) \
	X(rd_kafka_consume_batch_queue) \
	X(rd_kafka_consumer_close) \
	X(rd_kafka_destroy) \
	X(rd_kafka_err2str) \
	X(rd_kafka_error_destroy) \
	X(rd_kafka_error_string) \
	X(rd_kafka_fatal_error) \
	X(rd_kafka_incremental_assign) \
	X(rd_kafka_incremental_unassign) \
	X(rd_kafka_last_error) \
	X(rd_kafka_message_destroy) \
	X(rd_kafka_message_errstr) \
	X(rd_kafka_name) \
	X(rd_kafka_new) \
	X(rd_kafka_offsets_store) \
	X(rd_kafka_opaque) \
	X(rd_kafka_poll) \
	X(rd_kafka_poll_set_consumer) \
	X(rd_kafka_producev) \
	X(rd_kafka_purge) \
	X(rd_kafka_queue_destroy) \
	X(rd_kafka_queue_get_consumer) \
	X(rd_kafka_queue_get_main) \
	X(rd_kafka_queue_io_event_enable) \
	X(rd_kafka_rebalance_protocol) \
	X(rd_kafka_subscribe) \
	X(rd_kafka_topic_destroy) \
	X(rd_kafka_topic_name) \
	X(rd_kafka_topic_new) \
	X(rd_kafka_topic_partition_list_add) \
	X(rd_kafka_topic_partition_list_destroy) \
	X(rd_kafka_topic_partition_list_find) \
	X(rd_kafka_topic_partition_list_new)

static struct {
#define RDK_FUNC_PTR(fn) __typeof__(fn) *fn;
	RDK_FUNCS(RDK_FUNC_PTR)
#undef RDK_FUNC_PTR
} rdk;

static pthread_once_t rdk_once = PTHREAD_ONCE_INIT;
static int rdk_err;

static void rdk_load_once(void)
{
	void *lib = dlopen(RDK_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!lib) {
		io_log("kafka: cannot load %s: %s\n", RDK_SONAME, dlerror());
		rdk_err = -ELIBACC;
		return;
	}
#define RDK_FUNC_LOAD(fn)                                                    \
	rdk.fn = (__typeof__(rdk.fn))dlsym(lib, #fn);                        \
	if (!rdk.fn) {                                                       \
		io_log("kafka: %s lacks %s()\n", RDK_SONAME, #fn);          \
		rdk_err = -ELIBBAD;                                          \
		return;                                                      \
	}
	RDK_FUNCS(RDK_FUNC_LOAD)
#undef RDK_FUNC_LOAD
}

/* 0, or -ELIBACC (not found, not loadable), -ELIBBAD (a function missing) */
static int rdk_load(void)
{
	pthread_once(&rdk_once, rdk_load_once);
	return rdk_err;
}

#ifdef __SANITIZE_THREAD__
/*
 * librdkafka starts its threads with C11 thrd_create(), which glibc
 * implements without going through pthread_create(): TSan (GCC 12) does
 * not intercept it, and those threads crash in its allocator (no thread
 * state). In TSan builds the program defines them over libc's (the
 * executable comes first in symbol lookup), through pthread_create().
 * They must stay visible for that (and so must the suppressions below,
 * which libtsan looks up the same way): io/ builds with
 * -fvisibility=hidden, and a hidden definition does not interpose (TSan
 * then crashed in librdkafka's threads again, in every kafka test).
 */
#define TSAN_INTERPOSE __attribute__((visibility("default")))
#include <threads.h>

struct thrd_tramp {
	thrd_start_t fn;
	void *arg;
};

static void *thrd_tramp(void *p)
{
	struct thrd_tramp t = *(struct thrd_tramp *)p;

	free(p);
	return (void *)(intptr_t)t.fn(t.arg);
}

TSAN_INTERPOSE int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg);
int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
	struct thrd_tramp *t = malloc(sizeof(*t));

	if (!t)
		return thrd_nomem;
	t->fn = fn;
	t->arg = arg;
	if (pthread_create(thr, NULL, thrd_tramp, t)) {
		free(t);
		return thrd_error;
	}
	return thrd_success;
}

TSAN_INTERPOSE int thrd_join(thrd_t thr, int *res);
int thrd_join(thrd_t thr, int *res)
{
	void *ret;

	if (pthread_join(thr, &ret))
		return thrd_error;
	if (res)
		*res = (int)(intptr_t)ret;
	return thrd_success;
}

TSAN_INTERPOSE int thrd_detach(thrd_t thr);
int thrd_detach(thrd_t thr)
{
	return pthread_detach(thr) ? thrd_error : thrd_success;
}

/*
 * librdkafka is not instrumented and locks with C11 mtx_lock(), which
 * TSan does not see: what it does inside is not ours to check. Our side
 * (the callbacks, the ring) stays checked.
 */
TSAN_INTERPOSE const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "called_from_lib:librdkafka.so.1\n";
}
#endif

#define KAFKA_RECS 32768 /* ring records in flight at most, per sink */
#define KAFKA_TAKE 512 /* records taken from the ring at once */
#define KAFKA_SRC_BATCH 1024 /* messages a source takes at once */
#define KAFKA_POS_HDR "bring.pos"
/*
 * Delivery reports are served every KAFKA_POLL_EVERY messages produced,
 * not only between pumps: a pump takes all the ring holds, up to ~75,000
 * messages with an 8 MiB ring, and librdkafka allocates each (its
 * rd_kafka_msg_t and header list) when it is produced and frees it in
 * its report. Producing them all before serving one report swung the
 * heap by tens of MiB per pump: glibc gave the top back to the kernel
 * and the next burst faulted it in again (15% of the sink's samples
 * were page faults under malloc; 0.3-0.4 us of CPU per message more
 * than plain_producer, which polls after every message). Serving them
 * as it goes keeps the heap at its high-water mark. Documentation/
 * benchmarks.rst has the figures.
 */
#define KAFKA_POLL_EVERY 256
/*
 * A pump produces about this many messages at most, then comes back
 * through its own eventfd: the io_uring loop runs the sources in the same
 * thread, and a pump that took a whole 8 MiB ring (~75,000 lines, 0.1-
 * 0.2 s) kept them from refilling the space the reports freed meanwhile
 * (a file: source waited 0.4-0.7 s of a 1 s run for space; 0.03-0.13 s
 * with this).
 */
#define KAFKA_PUMP_MAX 16384

/*
 * bring's defaults for a sink that must not lose data (kafka.rst says
 * why and how linger/batch were measured). The URI's query, then
 * bring_io_opts.kafka_props (-X), override them.
 */
static const char *const sink_defaults[][2] = {
	{ "enable.idempotence", "true" }, /* acks=all, ordered, no dups */
	{ "message.timeout.ms", "0" }, /* never give a message up */
	{ "linger.ms", "5" },
	{ "batch.num.messages", "10000" },
	{ "batch.size", "1000000" },
	/*
	 * librdkafka 2.0.2's idempotent producer counts a partition's
	 * messages in flight against its limit of 5 requests, so a
	 * partition has one request in flight; what it was given meanwhile
	 * waits, and once its linger.ms is over the broker thread polls
	 * without sleeping until the answer (10 ms sticky, the default,
	 * is two lingers per partition). Shorter than linger.ms: one
	 * batch per partition's turn.
	 */
	{ "sticky.partitioning.linger.ms", "2" },
	/* librdkafka's own default since 2.10 (its #4986: latency) */
	{ "socket.nagle.disable", "true" },
	{ "statistics.interval.ms", "1000" }, /* for kafka_retried */
};

static const char *const source_defaults[][2] = {
	{ "enable.auto.offset.store", "false" }, /* stored once in the ring */
	{ "enable.auto.commit", "true" }, /* what was stored, every 5 s */
	{ "auto.offset.reset", "earliest" }, /* a new group reads it all */
};

/* One ring record in flight. */
struct kafka_rec {
	uint64_t seq;
	uint32_t sent; /* messages produced */
	uint32_t done; /* delivery reports received */
	bool whole; /* every message of it was produced */
	bool failed; /* refused for good, on_error stop */
};

struct kafka_sink {
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	int efd; /* librdkafka's main queue became non-empty */
	int32_t partition;
	char *key;
	size_t key_len;
	int key_delim; /* -1: none */
	struct kafka_rec *recs; /* KAFKA_RECS, indexed by number % */
	uint64_t head, tail; /* record numbers [head, tail) in flight */
	bool partial; /* recs[tail - 1] is not whole: produced up to off */
	size_t off;
	struct bring_msg *pk; /* peek buffer, KAFKA_RECS + KAFKA_TAKE */
	bool full; /* QUEUE_FULL: wait for reports */
	unsigned int since_poll; /* messages produced since rdk.rd_kafka_poll() */
	unsigned int pumped; /* messages produced by this pump */
	bool more; /* take() stopped at KAFKA_PUMP_MAX: come back */
	/*
	 * Counters gathered by the callbacks and produce(), which all run
	 * on the pump's thread, and added to the io's stats once per pump:
	 * five atomic adds per message were 3% of the pump's samples.
	 */
	uint64_t st_produced, st_reported, st_delivered, st_bytes;
	bool eof; /* the ring is closed and was all read */
	int stop_err; /* on_error stop: the error met, -errno */
	uint64_t retried; /* last txretries sum seen */
	struct endpoint dl_ep; /* --dead-letter */
	int dl_fd;
	bool dl_sock;
};

/* A source's writer mark (BRING_IO_CHECKPOINT): the message it came with. */
#define KAFKA_MARK_MAGIC 0x314b5242U /* "BRK1" */
struct kafka_mark {
	uint32_t magic;
	int32_t partition;
	int64_t offset;
	uint64_t topic_hash; /* io_fnv64() of the topic's name */
};

/* A partition's named writer. */
struct kafka_part {
	int32_t partition;
	struct bring_writer *w;
};

struct kafka_source {
	rd_kafka_t *rk;
	bool marks; /* BRING_IO_CHECKPOINT: offsets live in writer marks */
	uint64_t topic_hash;
	unsigned int nparts;
	struct kafka_part parts[BRING_WRITERS_MAX];
	rd_kafka_queue_t *q;
	int efd; /* consumer queue non-empty, or a stop (io_uring) */
	int done_fd; /* written when the thread ends (io_uring loop) */
	bool said_big;
	bool closed; /* rdk.rd_kafka_consumer_close() was called */
	bool broken; /* a partition's writer could not be opened */
	rd_kafka_message_t *batch[KAFKA_SRC_BATCH];
	struct bring_msg msgs[KAFKA_SRC_BATCH];
};

static bool quiet(const struct bring_io *io)
{
	return io->o.flags & BRING_IO_QUIET;
}

static int conf_set(rd_kafka_conf_t *conf, const char *uri, const char *name,
		    const char *val)
{
	char errstr[256];

	if (rdk.rd_kafka_conf_set(conf, name, val, errstr, sizeof(errstr)) ==
	    RD_KAFKA_CONF_OK)
		return 0;
	io_log("%s: %s=%s: %s\n", uri, name, val, errstr);
	return -EINVAL;
}

/* bring_io_opts.kafka_props: "name=value" each. */
static int conf_props(rd_kafka_conf_t *conf, const struct bring_io *io,
		      const char *uri)
{
	const char *const *p;
	char name[256];
	const char *eq;
	int err;

	for (p = io->o.kafka_props; p && *p; p++) {
		eq = strchr(*p, '=');
		if (!eq || eq == *p || (size_t)(eq - *p) >= sizeof(name)) {
			io_log("%s: -X %s: expected name=value\n", uri, *p);
			return -EINVAL;
		}
		memcpy(name, *p, eq - *p);
		name[eq - *p] = '\0';
		err = conf_set(conf, uri, name, eq + 1);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Walk the URI's query "a=b&c=d": @fn gets each pair (NUL-terminated
 * copies); it returns 0, or -errno to stop with.
 */
static int query_each(const struct endpoint *ep,
		      int (*fn)(void *ctx, const char *k, const char *v),
		      void *ctx)
{
	char *q, *pair, *save = NULL, *eq;
	int err = 0;

	if (!ep->query)
		return 0;
	q = strdup(ep->query);
	if (!q)
		return -ENOMEM;
	for (pair = strtok_r(q, "&", &save); pair && !err;
	     pair = strtok_r(NULL, "&", &save)) {
		eq = strchr(pair, '=');
		if (!eq) {
			io_log("%s: %s: expected name=value\n", ep->uri, pair);
			err = -EINVAL;
			break;
		}
		*eq = '\0';
		err = fn(ctx, pair, eq + 1);
	}
	free(q);
	return err;
}

static int kafka_errno(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
		return -EMSGSIZE;
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
		return -ENOENT;
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
		return -EACCES;
	default:
		return -EPROTO;
	}
}

/*
 * The opaque librdkafka hands the callbacks (s is NULL for a source).
 */
struct kafka_opaque {
	struct bring_io *io;
	struct sink *s;
	struct source *src; /* a source's (its rebalance callback) */
};

/* librdkafka's own log lines, through bring_io's print function. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac,
		   const char *buf)
{
	const struct kafka_opaque *op = rdk.rd_kafka_opaque(rk);
	const struct bring_io *io = op->io;

	/* FAIL lines come through on_error() too (sinks): said once. */
	if (level <= 2 || (level <= 4 && !quiet(io) &&
			   (!op->s || strcmp(fac, "FAIL"))))
		io_log("%s: %s: %s\n", rdk.rd_kafka_name(rk), fac, buf);
}

/* ---- sink ------------------------------------------------------------- */

static int sink_query(void *ctx, const char *k, const char *v)
{
	struct sink *s = ctx;
	struct kafka_sink *ks = s->kafka;
	char *end;
	long n;

	if (!strcmp(k, "key")) {
		free(ks->key);
		ks->key = strdup(v);
		ks->key_len = strlen(v);
		return ks->key ? 0 : -ENOMEM;
	}
	if (!strcmp(k, "key-delim") && strlen(v) == 1) {
		ks->key_delim = (unsigned char)*v;
		return 0;
	}
	if (!strcmp(k, "partition")) {
		errno = 0;
		n = strtol(v, &end, 10);
		if (*v && !*end && !errno && n >= 0 && n <= INT32_MAX) {
			ks->partition = (int32_t)n;
			return 0;
		}
	}
	if (!strcmp(k, "compression")) {
		if (!strcmp(v, "zstd") || !strcmp(v, "lz4") ||
		    !strcmp(v, "gzip") || !strcmp(v, "snappy") ||
		    !strcmp(v, "none"))
			return 0; /* set in sink_conf() */
	}
	io_log("%s: %s=%s: expected key=TEXT, key-delim=CHAR, partition=N or compression=zstd|lz4|gzip|snappy|none\n",
	       s->ep.uri, k, v);
	return -EINVAL;
}

static int sink_query_conf(void *ctx, const char *k, const char *v)
{
	struct sink *s = ((void **)ctx)[0];

	if (strcmp(k, "compression"))
		return 0;
	return conf_set(((void **)ctx)[1], s->ep.uri, "compression.codec", v);
}

/* Write a refused message to --dead-letter, framed like the io's framing. */
static void dead_letter(struct sink *s, const void *data, size_t len)
{
	struct kafka_sink *ks = s->kafka;
	uint32_t be = htonl((uint32_t)len);
	char count[IO_SYSLOG_HDR];
	struct iovec iov[3];
	int i, n = 0;
	size_t total = 0, done = 0;
	ssize_t w;

	if (ks->dl_fd < 0)
		return;
	if (s->io->o.framing == BRING_IO_U32BE)
		iov[n++] = (struct iovec){ &be, 4 };
	if (s->io->o.framing == BRING_IO_SYSLOG)
		iov[n++] = (struct iovec){ count, snprintf(count, sizeof(count),
							   "%zu ", len) };
	iov[n++] = (struct iovec){ (void *)data, len };
	if (s->io->o.framing == BRING_IO_LINES)
		iov[n++] = (struct iovec){ "\n", 1 };
	for (i = 0; i < n; i++)
		total += iov[i].iov_len;
	while (done < total) {
		w = writev(ks->dl_fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			io_log("%s: dead letter %s: %s\n", s->ep.uri,
			       ks->dl_ep.uri, strerror(errno));
			return;
		}
		done += w;
		/* Skip what was written; rare (a full socket or disk). */
		while (n && (size_t)w >= iov[0].iov_len) {
			w -= iov[0].iov_len;
			memmove(iov, iov + 1, --n * sizeof(*iov));
		}
		if (n) {
			iov[0].iov_base = (char *)iov[0].iov_base + w;
			iov[0].iov_len -= w;
		}
	}
}

/* A message was refused for good (a report, or produce itself). */
static void refused(struct sink *s, struct kafka_rec *rec, const void *data,
		    size_t len, rd_kafka_resp_err_t err)
{
	struct kafka_sink *ks = s->kafka;
	struct bring_io *io = s->io;

	if (ks->stop_err)
		return; /* stopping: purged messages report too */
	io_stat_add(io, kafka_failed, 1);
	if (io->o.on_error == BRING_IO_ON_ERROR_SKIP &&
	    err != RD_KAFKA_RESP_ERR__FATAL) {
		dead_letter(s, data, len);
		return;
	}
	rec->failed = true;
	ks->stop_err = kafka_errno(err);
	io_log("%s: ring position %" PRIu64 ": %s (%s): stopping; the record stays in the ring\n",
	       s->ep.uri, rec->seq, rdk.rd_kafka_err2str(err),
	       strerror(-ks->stop_err));
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
			void *opaque)
{
	struct sink *s = ((struct kafka_opaque *)opaque)->s;
	struct kafka_sink *ks = s->kafka;
	uint64_t nr = (uintptr_t)m->_private;
	struct kafka_rec *rec = &ks->recs[nr % KAFKA_RECS];

	rec->done++;
	ks->st_reported++;
	if (m->err) {
		refused(s, rec, m->payload, m->len, m->err);
		return;
	}
	ks->st_delivered++;
	ks->st_bytes += m->len;
}

/* What the callbacks and produce() counted, into the io's stats. */
static void stats_flush(struct sink *s)
{
	struct kafka_sink *ks = s->kafka;

	if (!ks->st_produced && !ks->st_reported)
		return;
	/* Modulo 2^64: the difference may be "negative". */
	io_stat_add(s->io, kafka_inflight, ks->st_produced - ks->st_reported);
	io_stat_add(s->io, kafka_delivered, ks->st_delivered);
	sink_stat_add(s, msgs_out, ks->st_delivered);
	sink_stat_add(s, bytes_out, ks->st_bytes);
	ks->st_produced = ks->st_reported = 0;
	ks->st_delivered = ks->st_bytes = 0;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct sink *s = ((struct kafka_opaque *)opaque)->s;
	char buf[512];

	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		/* The idempotent producer cannot go on: stop, keep the ring. */
		rdk.rd_kafka_fatal_error(rk, buf, sizeof(buf));
		if (!s->kafka->stop_err) {
			s->kafka->stop_err = -EPROTO;
			io_log("%s: fatal: %s: stopping; the records in flight stay in the ring\n",
			       s->ep.uri, buf);
		}
		return;
	}
	if (!quiet(s->io))
		io_log("%s: %s\n", s->ep.uri, reason);
}

/* Every broker's "txretries", summed: produce requests sent again. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	struct sink *s = ((struct kafka_opaque *)opaque)->s;
	static const char key[] = "\"txretries\":";
	uint64_t sum = 0;
	const char *p = json;

	while ((p = strstr(p, key))) {
		p += sizeof(key) - 1;
		sum += strtoull(p, NULL, 10);
	}
	if (sum > s->kafka->retried) {
		io_stat_add(s->io, kafka_retried, sum - s->kafka->retried);
		s->kafka->retried = sum;
	}
	return 0; /* librdkafka frees json */
}

static int sink_conf(struct sink *s, rd_kafka_conf_t *conf)
{
	void *ctx[2] = { s, conf };
	const char *uri = s->ep.uri;
	unsigned int i;
	int err;

	err = conf_set(conf, uri, "bootstrap.servers", s->ep.brokers);
	for (i = 0; !err && i < sizeof(sink_defaults) / sizeof(*sink_defaults);
	     i++)
		err = conf_set(conf, uri, sink_defaults[i][0],
			       sink_defaults[i][1]);
	if (!err)
		err = query_each(&s->ep, sink_query, s);
	if (!err)
		err = query_each(&s->ep, sink_query_conf, ctx);
	if (!err)
		err = conf_props(conf, s->io, uri);
	return err;
}

static int dead_letter_open(struct sink *s)
{
	struct kafka_sink *ks = s->kafka;
	int err;

	ks->dl_fd = -1;
	if (!s->io->o.dead_letter)
		return 0;
	err = ep_parse(&ks->dl_ep, s->io->o.dead_letter, false);
	if (!err && (ks->dl_ep.kind == EP_UDP || ks->dl_ep.kind == EP_KAFKA))
		err = -EINVAL;
	if (!err) {
		ks->dl_fd = ep_open_sink(&ks->dl_ep, &ks->dl_sock);
		err = ks->dl_fd < 0 ? ks->dl_fd : 0;
	}
	if (err)
		io_log("%s: dead letter %s: %s\n", s->ep.uri,
		       s->io->o.dead_letter, strerror(-err));
	return err;
}

int kafka_sink_new(struct sink *s)
{
	struct kafka_opaque *op;
	struct kafka_sink *ks;
	rd_kafka_conf_t *conf;
	char errstr[512];
	int err = rdk_load();

	if (err)
		return err;
	err = -ENOMEM;
	ks = calloc(1, sizeof(*ks));
	op = calloc(1, sizeof(*op));
	if (!ks || !op)
		goto fail_free;
	s->kafka = ks;
	ks->efd = -1;
	ks->dl_fd = -1;
	ks->key_delim = -1;
	ks->partition = RD_KAFKA_PARTITION_UA;
	ks->recs = calloc(KAFKA_RECS, sizeof(*ks->recs));
	ks->pk = calloc(KAFKA_RECS + KAFKA_TAKE, sizeof(*ks->pk));
	ks->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!ks->recs || !ks->pk || ks->efd < 0)
		goto fail_free;
	err = dead_letter_open(s);
	if (err)
		goto fail_free;
	conf = rdk.rd_kafka_conf_new();
	err = sink_conf(s, conf);
	if (err) {
		rdk.rd_kafka_conf_destroy(conf);
		goto fail_free;
	}
	op->io = s->io;
	op->s = s;
	rdk.rd_kafka_conf_set_opaque(conf, op);
	rdk.rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rdk.rd_kafka_conf_set_error_cb(conf, on_error);
	rdk.rd_kafka_conf_set_stats_cb(conf, on_stats);
	rdk.rd_kafka_conf_set_log_cb(conf, on_log);
	ks->rk = rdk.rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!ks->rk) {
		rdk.rd_kafka_conf_destroy(conf);
		io_log("%s: %s\n", s->ep.uri, errstr);
		err = -EINVAL;
		goto fail_free;
	}
	op = NULL; /* freed with the handle, in kafka_sink_free() */
	ks->rkt = rdk.rd_kafka_topic_new(ks->rk, s->ep.topic, NULL);
	if (!ks->rkt) {
		err = kafka_errno(rdk.rd_kafka_last_error());
		io_log("%s: %s\n", s->ep.uri,
		       rdk.rd_kafka_err2str(rdk.rd_kafka_last_error()));
		goto fail_free;
	}
	{
		rd_kafka_queue_t *q = rdk.rd_kafka_queue_get_main(ks->rk);

		rdk.rd_kafka_queue_io_event_enable(q, ks->efd, "\1\0\0\0\0\0\0\0",
					       8);
		rdk.rd_kafka_queue_destroy(q);
	}
	return 0;
fail_free:
	free(op);
	if (!s->kafka)
		free(ks);
	return err;
}

void kafka_sink_free(struct sink *s)
{
	struct kafka_sink *ks = s->kafka;
	void *op;

	if (!ks)
		return;
	if (ks->rk) {
		op = rdk.rd_kafka_opaque(ks->rk);
		/* What is in flight stays in the ring: do not wait for it. */
		rdk.rd_kafka_purge(ks->rk, RD_KAFKA_PURGE_F_QUEUE |
					       RD_KAFKA_PURGE_F_INFLIGHT);
		if (ks->rkt)
			rdk.rd_kafka_topic_destroy(ks->rkt);
		rdk.rd_kafka_destroy(ks->rk);
		free(op);
	}
	if (ks->efd >= 0)
		close(ks->efd);
	if (ks->dl_fd >= 0)
		close(ks->dl_fd);
	ep_free(&ks->dl_ep);
	free(ks->key);
	free(ks->recs);
	free(ks->pk);
	free(ks);
	s->kafka = NULL;
}

int kafka_sink_fd(const struct sink *s)
{
	return s->kafka->efd;
}

/* Decimal digits of @v at @p; their number. */
static size_t put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

/*
 * The bring.pos header's value, "SEQ:N", at @p (31 bytes at most, no
 * NUL); its length. By hand: snprintf() was 3% of the pump's samples.
 */
static size_t pos_header(char *p, uint64_t seq, uint32_t idx)
{
	size_t n = put_u64(p, seq);

	p[n++] = ':';
	return n + put_u64(p + n, idx);
}

/* Produce one message of record @nr; 0 or librdkafka's error. */
static rd_kafka_resp_err_t produce(struct sink *s, uint64_t nr,
				   const char *data, size_t len, uint32_t idx)
{
	struct kafka_sink *ks = s->kafka;
	const struct kafka_rec *rec = &ks->recs[nr % KAFKA_RECS];
	const char *key = ks->key, *d;
	size_t key_len = ks->key_len;
	char pos[32];
	size_t n;

	if (ks->key_delim >= 0) {
		d = memchr(data, ks->key_delim, len);
		key = d ? data : NULL;
		key_len = d ? (size_t)(d - data) : 0;
	}
	n = pos_header(pos, rec->seq, idx);
	return rdk.rd_kafka_producev(ks->rk, RD_KAFKA_V_RKT(ks->rkt),
				 RD_KAFKA_V_PARTITION(ks->partition),
				 RD_KAFKA_V_VALUE((void *)data, len),
				 RD_KAFKA_V_KEY(key, key_len),
				 RD_KAFKA_V_HEADER(KAFKA_POS_HDR, pos, n),
				 RD_KAFKA_V_OPAQUE((void *)(uintptr_t)nr),
				 RD_KAFKA_V_END);
}

/*
 * Produce record @m's messages from ks->off on (lines chunk records: one
 * per line). false when librdkafka's queue is full (the rest later) or
 * a report served meanwhile stopped the sink.
 */
static bool produce_record(struct sink *s, const struct bring_msg *m)
{
	struct kafka_sink *ks = s->kafka;
	uint64_t nr = ks->tail - 1;
	struct kafka_rec *rec = &ks->recs[nr % KAFKA_RECS];
	const char *p, *end;
	rd_kafka_resp_err_t err;
	size_t len;

	while (!rec->whole) {
		p = (const char *)m->data + ks->off;
		len = m->len - ks->off;
		end = s->io->chunks ? memchr(p, '\n', len) : NULL;
		if (end)
			len = end - p;
		err = produce(s, nr, p, len, rec->sent);
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			ks->full = true;
			return false;
		}
		rec->sent++;
		if (err) {
			rec->done++;
			refused(s, rec, p, len, err);
		} else {
			ks->st_produced++;
			ks->pumped++;
		}
		ks->off += len + (end ? 1 : 0);
		rec->whole = !end;
		if (++ks->since_poll >= KAFKA_POLL_EVERY) {
			ks->since_poll = 0;
			rdk.rd_kafka_poll(ks->rk, 0); /* reports: rec stays put */
			if (ks->stop_err)
				return false; /* a report refused one: stop */
		}
	}
	ks->partial = false;
	return true;
}

/* Take what the ring has beyond the records in flight. */
static void take(struct sink *s)
{
	struct kafka_sink *ks = s->kafka;
	unsigned int in, i;
	int n;

	while (!ks->full && !ks->stop_err) {
		in = (unsigned int)(ks->tail - ks->head);
		if (in == KAFKA_RECS && !ks->partial)
			return; /* reports will make room */
		n = bring_reader_peek(s->rd, ks->pk, in + KAFKA_TAKE, 0, 0);
		if (n == -EPIPE)
			ks->eof = true;
		if (n < 0 || (unsigned int)n < in)
			return; /* n < in cannot be: they are unshifted */
		if (ks->partial && !produce_record(s, &ks->pk[in - 1]))
			return;
		if ((unsigned int)n == in)
			return; /* nothing new */
		for (i = in; i < (unsigned int)n && i < KAFKA_RECS; i++) {
			struct kafka_rec *rec = &ks->recs[ks->tail % KAFKA_RECS];

			if (ks->pumped >= KAFKA_PUMP_MAX) {
				ks->more = true;
				return;
			}
			*rec = (struct kafka_rec){ .seq = ks->pk[i].seq };
			ks->tail++;
			ks->partial = true;
			ks->off = 0;
			if (!produce_record(s, &ks->pk[i]))
				return;
		}
	}
}

/* Shift the contiguous prefix of records every message of which is in. */
static int shift_delivered(struct sink *s)
{
	struct kafka_sink *ks = s->kafka;
	const struct kafka_rec *rec;
	unsigned int k = 0;
	int n;

	for (; ks->head + k < ks->tail; k++) {
		rec = &ks->recs[(ks->head + k) % KAFKA_RECS];
		if (!rec->whole || rec->done < rec->sent || rec->failed)
			break;
	}
	if (!k)
		return 0;
	n = bring_reader_peek(s->rd, ks->pk, k, 0, 0);
	if (n != (int)k)
		return n < 0 ? n : -EIO; /* cannot be: they were unshifted */
	n = bring_reader_shift(s->rd);
	if (n)
		return n;
	ks->head += k;
	return 0;
}

/* kafka_sink_pump() without the stats. */
static int pump(struct sink *s)
{
	struct kafka_sink *ks = s->kafka;
	uint64_t v;
	int err;

	if (read(ks->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	rdk.rd_kafka_poll(ks->rk, 0);
	err = shift_delivered(s);
	if (err) {
		io_fatal(s->io, s, err);
		return err;
	}
	if (!ks->stop_err) {
		ks->full = false;
		ks->pumped = 0;
		take(s); /* may meet a permanent error too */
	}
	if (ks->more) {
		/* The loop's read (or poll) of the eventfd ends at once. */
		v = 1;
		ks->more = false;
		if (write(ks->efd, &v, sizeof(v)) < 0)
			return -errno;
	}
	if (ks->stop_err) {
		/* Said once by refused(); what is unshifted stays. */
		s->done = true;
		io_set_err(s->io, ks->stop_err);
		bring_io_stop(s->io);
		return ks->stop_err;
	}
	if (ks->head != ks->tail)
		return 0;
	if (ks->eof) {
		s->done = true;
		return KAFKA_DONE;
	}
	return KAFKA_WANT_DATA;
}

/*
 * Serve librdkafka's queue, shift what was delivered, take more. Returns
 * KAFKA_WANT_DATA (nothing in flight: wait for the ring), KAFKA_DONE (the
 * ring closed and all of it delivered), 0 (wait for librdkafka's eventfd)
 * or -errno (stopped: s->done is set, the error said and recorded).
 */
int kafka_sink_pump(struct sink *s)
{
	int ret = pump(s);

	stats_flush(s);
	return ret;
}

/* The readv/writev mode's thread for a kafka: sink. */
void *kafka_sink_thread(void *arg)
{
	struct sink *s = arg;
	struct pollfd pfd = { .fd = s->kafka->efd, .events = POLLIN };
	struct bring_msg m;
	int ret;

	for (;;) {
		ret = kafka_sink_pump(s);
		if (ret < 0 || ret == KAFKA_DONE)
			break;
		if (ret == KAFKA_WANT_DATA) {
			/* Nothing in flight: only the ring can bring work. */
			ret = bring_reader_peek(s->rd, &m, 1, 0, -1);
			if (ret < 0 && ret != -EPIPE && ret != -EINTR &&
			    ret != -ETIMEDOUT) {
				io_fatal(s->io, s, ret);
				break;
			}
			continue;
		}
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			break;
	}
	s->done = true;
	return NULL;
}

/* ---- source ----------------------------------------------------------- */

static int source_query(void *ctx, const char *k, const char *v)
{
	void **c = ctx;
	const struct endpoint *ep = c[0];

	if (!strcmp(k, "group") && *v)
		return conf_set(c[1], ep->uri, "group.id", v);
	io_log("%s: %s=%s: a kafka: source takes group=NAME\n", ep->uri, k, v);
	return -EINVAL;
}

/*
 * The named writer of @partition, opened on first use: "kafka:TOPIC/P",
 * or "kafka:" and a hash of that when it is longer than a name can be.
 * NULL (said) when it cannot be opened.
 */
static struct bring_writer *part_writer(struct source *src, int32_t partition)
{
	struct kafka_source *ks = src->kafka;
	char full[512], name[BRING_NAME_MAX];
	struct bring_writer *w = NULL;
	unsigned int i;
	int n;

	for (i = 0; i < ks->nparts; i++)
		if (ks->parts[i].partition == partition)
			return ks->parts[i].w;
	n = snprintf(full, sizeof(full), "kafka:%s/%" PRId32, src->ep.topic,
		     partition);
	if (n > 0 && (size_t)n < sizeof(name))
		memcpy(name, full, n + 1);
	else
		snprintf(name, sizeof(name), "kafka:%016" PRIx64,
			 io_fnv64(FNV64_INIT, full, strlen(full)));
	errno = ENOSPC; /* more partitions than a ring has writers */
	if (ks->nparts < BRING_WRITERS_MAX)
		w = bring_writer_open(src->io->r, name, NULL);
	if (!w) {
		io_log("%s: partition %" PRId32 ": writer %s: %s\n",
		       src->ep.uri, partition, name, strerror(errno));
		io_set_err(src->io, -errno);
		return NULL;
	}
	ks->parts[ks->nparts++] = (struct kafka_part){ partition, w };
	return w;
}

/* Where the ring says @partition goes on: its mark + 1, or INVALID. */
static int64_t part_resume(struct source *src, int32_t partition,
			   struct bring_writer *w)
{
	struct kafka_mark m;
	int n = bring_writer_mark(w, &m, sizeof(m));

	if (n == 0)
		return RD_KAFKA_OFFSET_INVALID; /* the group's offset */
	if (n != (int)sizeof(m) || m.magic != KAFKA_MARK_MAGIC ||
	    m.partition != partition ||
	    m.topic_hash != src->kafka->topic_hash || m.offset < 0) {
		io_log("%s: partition %" PRId32 ": checkpoint not understood: the group's offset instead\n",
		       src->ep.uri, partition);
		return RD_KAFKA_OFFSET_INVALID;
	}
	return m.offset + 1;
}

/*
 * Assigned partitions start where the ring's marks say (false when a
 * writer could not be opened: the source stops).
 */
static bool src_seek_marks(struct source *src,
			   rd_kafka_topic_partition_list_t *parts)
{
	struct bring_writer *w;
	int i;

	for (i = 0; i < parts->cnt; i++) {
		rd_kafka_topic_partition_t *p = &parts->elems[i];

		w = part_writer(src, p->partition);
		if (!w)
			return false;
		p->offset = part_resume(src, p->partition, w);
		if (!quiet(src->io) && p->offset >= 0)
			io_log("%s: partition %" PRId32 " resumes at offset %" PRId64 " (ring checkpoint)\n",
			       src->ep.uri, p->partition, p->offset);
	}
	return true;
}

/* BRING_IO_CHECKPOINT: (un)assign, with the ring's offsets. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct kafka_opaque *op = opaque;
	struct source *src = op->src;
	bool coop = !strcmp(rdk.rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
	bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
	rd_kafka_error_t *e = NULL;
	rd_kafka_resp_err_t r = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (assign && !src_seek_marks(src, parts)) {
		__atomic_store_n(&src->kafka->broken, true, __ATOMIC_RELAXED);
		return; /* nothing assigned; the thread ends */
	}
	if (coop)
		e = assign ? rdk.rd_kafka_incremental_assign(rk, parts) :
			     rdk.rd_kafka_incremental_unassign(rk, parts);
	else
		r = rdk.rd_kafka_assign(rk, assign ? parts : NULL);
	if (e) {
		io_log("%s: %s\n", src->ep.uri, rdk.rd_kafka_error_string(e));
		rdk.rd_kafka_error_destroy(e);
	} else if (r) {
		io_log("%s: %s\n", src->ep.uri, rdk.rd_kafka_err2str(r));
	}
}

int kafka_source_new(struct source *src)
{
	rd_kafka_topic_partition_list_t *topics;
	struct kafka_opaque *op = NULL;
	struct kafka_source *ks = NULL;
	rd_kafka_conf_t *conf = NULL;
	const char *uri = src->ep.uri;
	char errstr[512];
	void *ctx[2];
	unsigned int i;
	int err = rdk_load();

	if (err)
		return err;
	err = -ENOMEM;
	op = calloc(1, sizeof(*op));
	ks = calloc(1, sizeof(*ks));
	if (!ks || !op)
		goto fail;
	src->kafka = ks;
	ks->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ks->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ks->efd < 0 || ks->done_fd < 0)
		goto fail;
	conf = rdk.rd_kafka_conf_new();
	ctx[0] = &src->ep;
	ctx[1] = conf;
	err = conf_set(conf, uri, "bootstrap.servers", src->ep.brokers);
	for (i = 0; !err &&
		    i < sizeof(source_defaults) / sizeof(*source_defaults);
	     i++)
		err = conf_set(conf, uri, source_defaults[i][0],
			       source_defaults[i][1]);
	if (!err && (!src->ep.query || !strstr(src->ep.query, "group="))) {
		io_log("%s: a kafka: source needs ?group=NAME\n", uri);
		err = -EINVAL;
	}
	if (!err)
		err = query_each(&src->ep, source_query, ctx);
	if (!err)
		err = conf_props(conf, src->io, uri);
	if (err)
		goto fail;
	op->io = src->io;
	op->src = src;
	rdk.rd_kafka_conf_set_opaque(conf, op);
	rdk.rd_kafka_conf_set_log_cb(conf, on_log);
	ks->marks = src->io->o.flags & BRING_IO_CHECKPOINT;
	ks->topic_hash = io_fnv64(FNV64_INIT, src->ep.topic,
				  strlen(src->ep.topic));
	if (ks->marks)
		rdk.rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
	ks->rk = rdk.rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!ks->rk) {
		io_log("%s: %s\n", uri, errstr);
		err = -EINVAL;
		goto fail;
	}
	conf = NULL;
	op = NULL;
	rdk.rd_kafka_poll_set_consumer(ks->rk);
	topics = rdk.rd_kafka_topic_partition_list_new(1);
	rdk.rd_kafka_topic_partition_list_add(topics, src->ep.topic,
					  RD_KAFKA_PARTITION_UA);
	err = rdk.rd_kafka_subscribe(ks->rk, topics);
	rdk.rd_kafka_topic_partition_list_destroy(topics);
	if (err) {
		io_log("%s: %s\n", uri, rdk.rd_kafka_err2str(err));
		err = kafka_errno(err);
		goto fail;
	}
	ks->q = rdk.rd_kafka_queue_get_consumer(ks->rk);
	rdk.rd_kafka_queue_io_event_enable(ks->q, ks->efd, "\1\0\0\0\0\0\0\0", 8);
	return 0;
fail:
	if (conf)
		rdk.rd_kafka_conf_destroy(conf);
	free(op);
	if (!src->kafka)
		free(ks);
	return err;
}

void kafka_source_free(struct source *src)
{
	struct kafka_source *ks = src->kafka;
	unsigned int i;
	void *op;

	if (!ks)
		return;
	if (ks->q)
		rdk.rd_kafka_queue_destroy(ks->q);
	if (ks->rk) {
		op = rdk.rd_kafka_opaque(ks->rk);
		/* Commits what was stored: what the ring holds. */
		if (!ks->closed)
			rdk.rd_kafka_consumer_close(ks->rk);
		rdk.rd_kafka_destroy(ks->rk);
		free(op);
	}
	for (i = 0; i < ks->nparts; i++)
		bring_writer_close(ks->parts[i].w);
	if (ks->efd >= 0)
		close(ks->efd);
	if (ks->done_fd >= 0)
		close(ks->done_fd);
	free(ks);
	src->kafka = NULL;
}

int kafka_source_fd(const struct source *src)
{
	return src->kafka->done_fd;
}

/* io_uring loop, at a stop: the thread's poll(2) wakes and sees it. */
void kafka_source_kick(struct source *src)
{
	uint64_t one = 1;

	if (write(src->kafka->efd, &one, sizeof(one)) < 0)
		io_log("%s: %s\n", src->ep.uri, strerror(errno));
}

static bool src_stopped(const struct bring_io *io)
{
	return __atomic_load_n(&io->stop, __ATOMIC_RELAXED);
}

/*
 * BRING_IO_CHECKPOINT: push message @i through its partition's writer,
 * its offset the mark committed with it. 1, or -errno.
 */
static int src_push_marked(struct source *src, unsigned int i,
			   int timeout_ms)
{
	struct kafka_source *ks = src->kafka;
	const rd_kafka_message_t *m = ks->batch[i];
	struct kafka_mark mk = { .magic = KAFKA_MARK_MAGIC,
				 .partition = m->partition,
				 .offset = m->offset,
				 .topic_hash = ks->topic_hash };
	struct bring_writer *w = part_writer(src, m->partition);
	int err;

	if (!w)
		return -EIO; /* said, and the run's error is set */
	err = bring_writer_push(w, ks->msgs[i].data, ks->msgs[i].len, &mk,
				sizeof(mk), timeout_ms);
	return err ? err : 1;
}

/*
 * Push @nr messages; blocks while the ring is full, in waits of 100 ms
 * that look at the stop flag. After a stop it goes on while readers free
 * space, IO_STOP_STALL_MS at most without progress. Returns how many went
 * in (the rest: not stored, so consumed again by the next run).
 */
static unsigned int src_push(struct source *src, unsigned int nr)
{
	struct kafka_source *ks = src->kafka;
	struct bring_io *io = src->io;
	unsigned int done = 0;
	uint64_t stall = 0;
	int n;

	while (done < nr) {
		if (ks->marks)
			n = src_push_marked(src, done, 100);
		else
			n = bring_push_batch(io->r, ks->msgs + done, nr - done,
					     100);
		if (n > 0) {
			done += n;
			stall = 0;
			continue;
		}
		if (n == -ETIMEDOUT) {
			io_stat_add(io, full_waits, 1);
			if (!src_stopped(io))
				continue;
			if (!stall)
				stall = io_now_ns() +
					IO_STOP_STALL_MS * 1000000ULL;
			if (io_now_ns() < stall)
				continue;
		} else if (n != -EPIPE) {
			io_log("%s: ring: %s\n", src->ep.uri, strerror(-n));
			io_set_err(io, n);
		}
		io_stat_add(io, dropped, nr - done);
		break;
	}
	return done;
}

/* Store the offsets of the first @nr messages of the batch for commit. */
static void src_store(struct kafka_source *ks, unsigned int nr)
{
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_topic_partition_t *p;
	unsigned int i;

	if (!nr)
		return;
	l = rdk.rd_kafka_topic_partition_list_new(8);
	for (i = 0; i < nr; i++) {
		rd_kafka_message_t *m = ks->batch[i];

		if (!m)
			continue;
		p = rdk.rd_kafka_topic_partition_list_find(
			l, rdk.rd_kafka_topic_name(m->rkt), m->partition);
		if (!p)
			p = rdk.rd_kafka_topic_partition_list_add(
				l, rdk.rd_kafka_topic_name(m->rkt), m->partition);
		p->offset = m->offset + 1; /* the next one to read */
	}
	if (l->cnt)
		rdk.rd_kafka_offsets_store(ks->rk, l);
	rdk.rd_kafka_topic_partition_list_destroy(l);
}

/* One batch from the consumer queue into the ring; false once stopped. */
static bool src_batch(struct source *src, ssize_t n)
{
	struct kafka_source *ks = src->kafka;
	struct bring_io *io = src->io;
	unsigned int i, k = 0, pushed, take;
	uint64_t lines = 0, bytes = 0;

	for (i = 0; i < (unsigned int)n; i++) {
		rd_kafka_message_t *m = ks->batch[i];

		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
			    !quiet(io))
				io_log("%s: %s\n", src->ep.uri,
				       rdk.rd_kafka_message_errstr(m));
			rdk.rd_kafka_message_destroy(m);
			continue;
		}
		if (m->len > io->ring_max) {
			if (!ks->said_big)
				io_log("%s: a message of %zu bytes is larger than the ring takes (%zu): dropped\n",
				       src->ep.uri, m->len, io->ring_max);
			ks->said_big = true;
			io_stat_add(io, dropped, 1);
			rdk.rd_kafka_message_destroy(m); /* it cannot go in */
			continue;
		}
		/* Kept messages move down: batch[0, k) is what is pushed. */
		ks->batch[k] = m;
		ks->msgs[k++] = (struct bring_msg){ .data = m->payload,
						    .len = m->len };
		lines += io->chunks ? count_nl(m->payload, m->len) + 1 : 1;
		bytes += m->len;
	}
	take = k;
	pushed = src_push(src, k);
	if (pushed == take) {
		io_stat_add(io, msgs_in, lines);
		io_stat_add(io, bytes_in, bytes);
	} else {
		for (i = 0; i < pushed; i++)
			io_stat_add(io, msgs_in, io->chunks ?
				    count_nl(ks->msgs[i].data,
					     ks->msgs[i].len) + 1 : 1);
	}
	io_stat_add(io, reads, 1);
	src_store(ks, pushed);
	for (i = 0; i < k; i++)
		rdk.rd_kafka_message_destroy(ks->batch[i]);
	return pushed == take;
}

void *kafka_source_thread(void *arg)
{
	struct source *src = arg;
	struct kafka_source *ks = src->kafka;
	struct bring_io *io = src->io;
	struct pollfd pfd[2] = {
		{ .fd = io->wake_fd, .events = POLLIN },
		{ .fd = ks->efd, .events = POLLIN },
	};
	uint64_t v;
	ssize_t n;

	while (!src_stopped(io)) {
		n = rdk.rd_kafka_consume_batch_queue(ks->q, 0, ks->batch,
						 KAFKA_SRC_BATCH);
		/* Set by on_rebalance(), which that call may have run. */
		if (__atomic_load_n(&ks->broken, __ATOMIC_RELAXED))
			break;
		if (n > 0) {
			if (!src_batch(src, n))
				break;
			continue;
		}
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (read(ks->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
	}
	/* Commits the stored offsets: what the ring holds. */
	rdk.rd_kafka_consumer_close(ks->rk);
	ks->closed = true;
	__atomic_store_n(&src->finished, true, __ATOMIC_RELEASE);
	v = 1;
	if (write(ks->done_fd, &v, sizeof(v)) < 0)
		io_log("%s: %s\n", src->ep.uri, strerror(errno));
	return NULL;
}

#endif /* BRING_HAVE_KAFKA */
