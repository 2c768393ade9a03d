// SPDX-License-Identifier: GPL-2.0
/*
 * bringcat - ship messages from sources to sinks through a bring ring.
 *
 *   bringcat [OPTIONS] -i SOURCE [-i SOURCE ...] -o SINK [-o SINK ...]
 *
 * See man/bringcat.1.
 */
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bring.h"
#include "bring_io.h"
#include "metrics.h"
#include "readers.h"

#define MAX_EPS 64
#define MAX_PROPS 256 /* -X */
#define BUFFER_MIN 4096U /* bring_new()'s smallest capacity */
/*
 * The read-ahead of sources reading regular files (--read-ahead): the
 * slack of the default ring's lap jumps (W/2, bring_set_jump_slack()). A
 * source further ahead of its sinks than that stops the jumps, and the
 * ring is walked end to end: 4 MiB (before) had a readv/writev sender
 * touch 13 MiB of its ring and spend 1.05-1.16 ms of CPU per MB, against
 * 2 MiB and 0.83-0.85 (Documentation/benchmarks.rst, session 10).
 */
#define BRINGCAT_READ_AHEAD (1U << 20)

/*
 * Signals are taken by one thread (sigwait()), not by handlers: it may
 * print the statistics. the_io and the_stats are set and cleared under
 * io_lock, which the signal thread holds while it uses them.
 */
static pthread_mutex_t io_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bring_io *the_io;
static const struct stats_ctx *the_stats; /* --stats: report at exit */
static unsigned int signals; /* stop signals so far */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bringcat [OPTIONS] -i SOURCE [-i SOURCE ...] -o SINK [-o SINK ...]\n"
		"\n"
		"Sources: file:PATH  stdin: (or -)  tcp-listen:HOST:PORT  tail:PATH\n"
		"         udp-listen:HOST:PORT  unix-listen:PATH  bring-listen:HOST:PORT\n"
		"Sinks:   file:PATH  stdout: (or -)  tcp:HOST:PORT\n"
		"         udp:HOST:PORT  unix:PATH  bring:HOST:PORT\n"
		"Sources and sinks: kafka:HOST:PORT[,HOST:PORT...]/TOPIC?group=NAME (-i)\n"
		"         kafka:HOST:PORT[,HOST:PORT...]/TOPIC[?key=K|key-delim=C]\n"
		"              [&partition=N][&compression=zstd|lz4|gzip|snappy|none]\n"
		"\n"
		"Options:\n"
		"  -i, --input SOURCE      read messages from SOURCE (repeatable)\n"
		"  -o, --output SINK       write every message to SINK (repeatable)\n"
		"  -f, --framing MODE      lines (default), u32be, raw or syslog\n"
		"  -m, --max-msg SIZE      largest message (default 1M)\n"
		"      --oversize MODE     longer lines: split (default), truncate, drop\n"
		"      --line-records      one ring record per line (default: chunk records)\n"
		"      --tail-from WHERE   tail: sources start at the file's end (default)\n"
		"                          or start\n"
		"      --staging-max SIZE  a connection's partial message and read room\n"
		"                          (default max-msg + 256K); longer is oversize\n"
		"      --staging-total SIZE  the same for all connections (default 64M)\n"
		"      --idle-timeout SECS close accepted connections silent that long\n"
		"      --read-ahead SIZE   a source reading a regular file keeps at most\n"
		"                          SIZE in the buffer (default 4M; all: the\n"
		"                          whole buffer)\n"
		"  -b, --buffer SPEC       mem:SIZE (default mem:64M) or file:PATH[:SIZE] (64M)\n"
		"      --no-checkpoint     file buffer: tail: and file: sources start as\n"
		"                          new, file: sinks append (at least once)\n"
		"      --allow-foreign     file: buffer owned by another user or writable\n"
		"                          by group/others: use it (default: refuse)\n"
		"      --durability MODE   file buffer: none, interval or always (default:\n"
		"                          the file's, none when new); interval and\n"
		"                          always fdatasync file: sinks before their mark\n"
		"  -s, --stats[=SECONDS]   print statistics at exit [and every SECONDS]\n"
		"      --metrics HOST:PORT serve GET /metrics (Prometheus text format)\n"
		"      --max-conns N       listening sources keep at most N connections\n"
		"                          open; more are closed at once (default: no limit)\n"
		"      --send-timeout SECS a tcp:/unix: peer that takes nothing for SECS is\n"
		"                          failed and connected again (default 30; 0: never)\n"
		"      --no-uring          use readv/writev instead of io_uring\n"
		"      --no-futex-wait     io_uring: wait for the ring on an eventfd, as\n"
		"                          on kernels without IORING_OP_FUTEX_WAIT\n"
		"      --stream-id ID      bring: sinks: the stream's id (default\n"
		"                          HOSTNAME:RINGPATH; /READER is appended)\n"
		"      --hop-window SIZE   bring: sinks: unacknowledged bytes (8M)\n"
		"      --hop-heartbeat MS  bring:, bring-listen: heartbeat (1000)\n"
		"  -X PROP=VALUE           kafka: a librdkafka property (repeatable)\n"
		"      --on-error MODE     kafka: sinks, a message refused for good:\n"
		"                          stop (default: exit 1, keep it) or skip\n"
		"      --dead-letter SINK  kafka: with skip, write such messages there\n"
		"  -q, --quiet             no diagnostics but errors\n"
		"  -h, --help              this text\n"
		"\n"
		"       bringcat --list-readers PATH\n"
		"       bringcat --remove-reader NAME PATH\n"
		"  the named readers of the file ring PATH (one per sink, named after\n"
		"  its URI): their lag, owner and idle time; remove one no sink reads\n");
}

/* enum bring_durability of "none", "interval" or "always"; -1 else. */
static int parse_durability(const char *s)
{
	static const char *const names[] = {
		[BRING_DURABLE_NONE] = "none",
		[BRING_DURABLE_INTERVAL] = "interval",
		[BRING_DURABLE_ALWAYS] = "always",
	};
	int i;

	for (i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

/* Is the ring's durability interval or always (as opened)? */
static bool ring_durable(struct bring *r)
{
	struct bring_stats st = { .sz = sizeof(st) };

	return !bring_get_stats(r, &st) &&
	       st.durability != BRING_DURABLE_NONE;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

/*
 * The io layer's last lines, to tell whether it said the error that
 * bring_io_run() returns (it names the endpoint; bringcat cannot).
 */
static char io_said[16384];
static pthread_mutex_t io_said_lock = PTHREAD_MUTEX_INITIALIZER;

static int print_prefixed(const char *fmt, va_list ap)
{
	char line[8192]; /* smaller than io_said[] */
	size_t len, keep;
	int n = vsnprintf(line, sizeof(line), fmt, ap);

	fprintf(stderr, "bringcat: %s", line);
	pthread_mutex_lock(&io_said_lock);
	len = strlen(io_said);
	keep = sizeof(io_said) - 1 - strlen(line);
	if (len > keep) { /* forget the oldest lines */
		memmove(io_said, io_said + len - keep, keep + 1);
		len = keep;
	}
	memcpy(io_said + len, line, strlen(line) + 1);
	pthread_mutex_unlock(&io_said_lock);
	return n;
}

/* Did the io layer say @err already? */
static bool io_said_err(int err)
{
	bool said;

	pthread_mutex_lock(&io_said_lock);
	said = strstr(io_said, strerror(-err)) != NULL;
	pthread_mutex_unlock(&io_said_lock);
	return said;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct stats_ctx {
	struct bring *r;
	unsigned int period;
	bool tail; /* a tail: source: print its counters */
	bool kafka; /* a kafka: sink: print its counters */
	bool syslog; /* -f syslog: print its counters */
	double t0;
};

static const char *state_name(int state)
{
	switch (state) {
	case BRING_IO_RECONNECTING:
		return "reconnecting";
	case BRING_IO_FAILED:
		return "failed";
	case BRING_IO_DONE:
		return "done";
	default:
		return "up";
	}
}

/* One line per source, then per sink: which one lags, which is down. */
static void print_endpoints(void)
{
	struct bring_io_endpoint_stats es = { .sz = sizeof(es) };
	unsigned int i;

	for (i = 0; !bring_io_source_stats(the_io, i, &es); i++)
		fprintf(stderr, "bringcat: source %s: in %" PRIu64 " msgs %" PRIu64
			" bytes, %s\n", es.uri, es.msgs, es.bytes,
			state_name(es.state));
	for (i = 0; !bring_io_sink_stats(the_io, i, &es); i++) {
		fprintf(stderr, "bringcat: sink %s (reader %s): out %" PRIu64
			" msgs %" PRIu64 " bytes, lag %" PRIu64
			" bytes, reconnects %" PRIu64 ", %s", es.uri, es.reader,
			es.msgs, es.bytes, es.lag, es.reconnects,
			state_name(es.state));
		/* hardio's per-sink counters, when there is something to say */
		if (es.retries)
			fprintf(stderr, ", retries %" PRIu64, es.retries);
		if (es.reopens)
			fprintf(stderr, ", reopens %" PRIu64, es.reopens);
		if (es.send_timeouts)
			fprintf(stderr, ", send timeouts %" PRIu64,
				es.send_timeouts);
		if (es.last_err)
			fprintf(stderr, " (last error: %s)", strerror(-es.last_err));
		fputc('\n', stderr);
	}
}

static void print_stats(const struct stats_ctx *sc, const char *what)
{
	struct bring_io_stats st = { .sz = sizeof(st) };
	struct bring_stats rs = { .sz = sizeof(rs) };
	double dt = now_s() - sc->t0;

	print_endpoints();
	bring_io_get_stats(the_io, &st);
	bring_get_stats(sc->r, &rs);
	fprintf(stderr,
		"bringcat: %s %.3fs in %" PRIu64 " msgs %" PRIu64
		" bytes, out %" PRIu64 " msgs %" PRIu64 " bytes (%.1f MB/s), "
		"ring %" PRIu64 "/%" PRIu64 ", full waits %" PRIu64
		" (%.3fs), empty waits %" PRIu64 " (%.3fs), writes %" PRIu64
		" (short %" PRIu64
		"), split %" PRIu64 " truncated %" PRIu64 " dropped %" PRIu64
		", accepted %" PRIu64 " (refused %" PRIu64 ", accept failures %"
		PRIu64 "), reconnects %" PRIu64 " (send timeouts %" PRIu64
		"), sink retries %" PRIu64 ", reopens %" PRIu64
		", send dropped %" PRIu64 " errors %" PRIu64
		", hop frames %" PRIu64 " acks %" PRIu64 " resent %" PRIu64
		" rejected %" PRIu64 ", %s\n",
		what, dt, st.msgs_in, st.bytes_in, st.msgs_out, st.bytes_out,
		dt > 0 ? st.bytes_out / dt / 1e6 : 0.0, rs.used, rs.capacity,
		/* The sources' waits, plus the ring's own (readv/writev sinks). */
		st.full_waits + rs.write_waits,
		(st.full_wait_ns + rs.write_wait_ns) / 1e9,
		st.empty_waits + rs.read_waits,
		(st.empty_wait_ns + rs.read_wait_ns) / 1e9,
		st.writes, st.short_writes,
		st.split, st.truncated, st.dropped, st.accepted, st.refused,
		st.accept_errors, st.reconnects, st.send_timeouts,
		st.sink_retries, st.reopens,
		st.send_dropped, st.send_errors, st.hop_frames, st.hop_acks,
		st.hop_resent, st.hop_rejected,
		st.uring == 2 ? "io_uring+eventfd" :
		st.uring ? "io_uring" : "readv/writev");
	if (sc->kafka)
		fprintf(stderr, "bringcat: %s kafka delivered %" PRIu64
			", in flight %" PRIu64 ", retried %" PRIu64
			", failed %" PRIu64 "\n",
			what, st.kafka_delivered, st.kafka_inflight,
			st.kafka_retried, st.kafka_failed);
	if (sc->syslog)
		fprintf(stderr, "bringcat: %s syslog bad frames %" PRIu64 "\n",
			what, st.bad_frames);
	if (sc->tail)
		fprintf(stderr, "bringcat: %s tail rotations %" PRIu64
			", truncations %" PRIu64 "\n",
			what, st.rotations, st.truncations);
}

/*
 * SIGINT, SIGTERM: the first stops the sources and lets the sinks drain
 * the ring (a sink that cannot send gives up); the second exits at once,
 * 128 + the signal, after the final statistics (--stats). SIGHUP: file
 * sinks open their paths again (logrotate's postrotate).
 */
static bool signals_quiet; /* --quiet: the first signal says nothing */

static void *signal_thread(void *arg)
{
	const sigset_t *set = arg;
	int sig;

	for (;;) {
		if (sigwait(set, &sig))
			continue;
		pthread_mutex_lock(&io_lock);
		if (sig == SIGHUP) {
			bring_io_reopen(the_io); /* NULL: nothing to reopen */
		} else if (!signals++) {
			/* Why the stop takes a while, and that it was heard. */
			if (!signals_quiet)
				fprintf(stderr, "bringcat: %s: stopping; the sinks drain the ring (a second signal exits at once)\n",
					sig == SIGINT ? "SIGINT" : "SIGTERM");
			if (the_io)
				bring_io_stop(the_io);
		} else {
			fprintf(stderr, "bringcat: second signal: exiting without draining\n");
			if (the_io && the_stats)
				print_stats(the_stats, "done");
			_exit(128 + sig);
		}
		pthread_mutex_unlock(&io_lock);
	}
	return NULL;
}

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stats_cond = PTHREAD_COND_INITIALIZER;
static bool stats_done;

static void *stats_thread(void *arg)
{
	struct stats_ctx *sc = arg;
	struct timespec ts;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&stats_lock);
	while (!stats_done) {
		ts.tv_sec += sc->period;
		while (!stats_done &&
		       pthread_cond_timedwait(&stats_cond, &stats_lock, &ts) !=
			       ETIMEDOUT)
			;
		if (!stats_done)
			print_stats(sc, "stats");
	}
	pthread_mutex_unlock(&stats_lock);
	return NULL;
}

static void stats_stop(pthread_t t)
{
	pthread_mutex_lock(&stats_lock);
	stats_done = true;
	pthread_cond_signal(&stats_cond);
	pthread_mutex_unlock(&stats_lock);
	pthread_join(t, NULL);
}

/*
 * bring: sinks of a file ring: HOSTNAME:RINGPATH (the real path; a hash
 * of it when long), so that the rings of one host are distinct streams
 * for one receiver. Memory rings keep the io layer's HOSTNAME/RINGNAME.
 */
static const char *default_stream_id(const char *path)
{
	static char id[300];
	char host[64] = "localhost", *real = realpath(path, NULL);
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *p;

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	if (real && strlen(host) + 1 + strlen(real) <= 200) {
		snprintf(id, sizeof(id), "%s:%s", host, real);
	} else {
		for (p = real ? real : path; *p; p++)
			h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
		snprintf(id, sizeof(id), "%s:ring-%016llx", host,
			 (unsigned long long)h);
	}
	free(real);
	return id;
}

/* What bring_io_add_source()/_sink() failing with @err means for @uri. */
static const char *ep_error(const char *uri, int err, bool source)
{
	bool unix_ep = !strncmp(uri, "unix", 4);
	bool tail = source && !strncmp(uri, "tail:", 5);

	const char *colon = strchr(uri, ':');

	if (err == -EINVAL && colon && !colon[1] &&
	    (!strcmp(uri, "file:") || !strcmp(uri, "tail:")))
		return source ? "missing PATH (file:PATH, tail:PATH)" :
				"missing PATH (file:PATH)";
	if (tail && err == -ENOENT)
		return "its directory does not exist";
	if (tail && err == -EINVAL)
		return "not a regular file";
	switch (err) {
	case -EPROTONOSUPPORT:
		if (!strncmp(uri, "kafka:", 6))
			return "kafka: endpoints were left out of this build (no librdkafka-dev)";
		return source ? "unknown source type (file:PATH, stdin:, -, tcp-listen:HOST:PORT, udp-listen:HOST:PORT, unix-listen:PATH, tail:PATH, bring-listen:HOST:PORT)" :
				"unknown sink type (file:PATH, stdout:, -, tcp:HOST:PORT, udp:HOST:PORT, unix:PATH, bring:HOST:PORT)";
	case -ELIBACC:
		return "librdkafka.so.1 could not be loaded (Debian: apt-get install librdkafka1)";
	case -ELIBBAD:
		return "the librdkafka.so.1 found is too old (1.6 or later is needed)";
	case -EINVAL:
		if (!strncmp(uri, "kafka:", 6))
			return "bad kafka: endpoint (expected kafka:HOST:PORT[,HOST:PORT...]/TOPIC[?OPTIONS])";
		return unix_ep ? "bad address (expected a PATH)" :
				 "bad address (expected HOST:PORT)";
	case -EHOSTUNREACH:
		return "cannot resolve host";
	case -EAGAIN:
		return "cannot resolve host (temporary failure in name resolution)";
	case -ENAMETOOLONG:
		return unix_ep ? "path too long for a unix socket (at most 107 bytes)" :
				 strerror(-err);
	case -ENOTSOCK:
		return unix_ep ? "exists and is not a socket: not removing it" :
				 strerror(-err);
	case -EADDRINUSE:
		return unix_ep ? "Address already in use: another process listens on it" :
				 strerror(-err);
	default:
		return strerror(-err);
	}
}

/*
 * Usage errors exit 2: an unknown type, a bad address, a host that does
 * not resolve (a typo). Everything else (a file, a port in use) exits 1.
 */
static int ep_exit_code(const char *uri, int err, bool source)
{
	if (err == -EPROTONOSUPPORT || err == -EHOSTUNREACH)
		return 2;
	if (err == -EINVAL && !(source && !strncmp(uri, "tail:", 5) && uri[5]))
		return 2;
	return 1;
}

/*
 * A listening source on port 0 says which port it got; one with an
 * empty HOST ("tcp-listen::5140") says that it listens on every
 * interface, which a user may not have meant.
 */
static void say_listening(const char *uri, int port, bool quiet)
{
	size_t len = strlen(uri);
	bool any = (!strncmp(uri, "tcp-listen::", 12) ||
		    !strncmp(uri, "udp-listen::", 12));

	if (port <= 0)
		return;
	if (any && !quiet)
		fprintf(stderr, "bringcat: %s: listening on port %d of every interface (HOST is empty)\n",
			uri, port);
	else if (len > 2 && !strcmp(uri + len - 2, ":0"))
		fprintf(stderr, "bringcat: %s: listening on port %d\n", uri,
			port);
}

enum {
	OPT_NO_URING = 256,
	OPT_OVERSIZE,
	OPT_LINE_RECORDS,
	OPT_TAIL_FROM,
	OPT_NO_CHECKPOINT,
	OPT_NO_FUTEX_WAIT,
	OPT_STAGING_MAX,
	OPT_STAGING_TOTAL,
	OPT_IDLE_TIMEOUT,
	OPT_STREAM_ID,
	OPT_HOP_WINDOW,
	OPT_HOP_HEARTBEAT,
	OPT_METRICS,
	OPT_MAX_CONNS,
	OPT_SEND_TIMEOUT,
	OPT_ON_ERROR,
	OPT_DEAD_LETTER,
	OPT_LIST_READERS,
	OPT_REMOVE_READER,
	OPT_ALLOW_FOREIGN,
	OPT_DURABILITY,
	OPT_READ_AHEAD,
};

/*
 * --staging-max, --staging-total (sizes) and --idle-timeout (seconds,
 * decimals allowed) into @o; 0 or -1 after saying what is wrong.
 */
static int parse_staging(int opt, const char *arg, struct bring_io_opts *o)
{
	size_t v;
	double secs;
	char *end;

	if (opt == OPT_IDLE_TIMEOUT) {
		secs = strtod(arg, &end);
		if (*end || end == arg || !(secs >= 0.001) || secs > 86400 * 30) {
			fprintf(stderr, "bringcat: --idle-timeout: bad seconds '%s'\n",
				arg);
			return -1;
		}
		o->idle_ms = (unsigned int)(secs * 1000 + 0.5);
		return 0;
	}
	if (parse_size(arg, &v) || !v ||
	    (opt == OPT_STAGING_MAX && v < 16384)) {
		fprintf(stderr, "bringcat: --staging-%s: bad size '%s'%s\n",
			opt == OPT_STAGING_MAX ? "max" : "total", arg,
			opt == OPT_STAGING_MAX ? " (16K at least)" : "");
		return -1;
	}
	if (opt == OPT_STAGING_MAX)
		o->stage_max = v;
	else
		o->stage_total = v;
	return 0;
}

/* --list-readers PATH, --remove-reader NAME PATH: exit code. */
static int manage_readers(const char *path, const char *remove)
{
	BRING_OPTS(ropts, .flags = BRING_NO_DEFAULT_READER);
	struct bring *r = bring_open(path, 0, &ropts);
	int err = 0;

	if (!r) {
		fprintf(stderr, "bringcat: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (remove) {
		err = bring_reader_remove(r, remove);
		if (err)
			fprintf(stderr, "bringcat: %s: reader '%s': %s\n", path,
				remove,
				err == -EBUSY ? "a running process reads it" :
				err == -ENOENT ? "no such reader" :
						 strerror(-err));
		else
			fprintf(stderr, "bringcat: %s: reader '%s' removed\n",
				path, remove);
	} else {
		readers_list(r, stdout);
	}
	bring_free(r);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "framing", required_argument, NULL, 'f' },
		{ "max-msg", required_argument, NULL, 'm' },
		{ "oversize", required_argument, NULL, OPT_OVERSIZE },
		{ "line-records", no_argument, NULL, OPT_LINE_RECORDS },
		{ "tail-from", required_argument, NULL, OPT_TAIL_FROM },
		{ "no-checkpoint", no_argument, NULL, OPT_NO_CHECKPOINT },
		{ "buffer", required_argument, NULL, 'b' },
		{ "stats", optional_argument, NULL, 's' },
		{ "no-uring", no_argument, NULL, OPT_NO_URING },
		{ "no-futex-wait", no_argument, NULL, OPT_NO_FUTEX_WAIT },
		{ "staging-max", required_argument, NULL, OPT_STAGING_MAX },
		{ "staging-total", required_argument, NULL, OPT_STAGING_TOTAL },
		{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
		{ "stream-id", required_argument, NULL, OPT_STREAM_ID },
		{ "hop-window", required_argument, NULL, OPT_HOP_WINDOW },
		{ "hop-heartbeat", required_argument, NULL, OPT_HOP_HEARTBEAT },
		{ "metrics", required_argument, NULL, OPT_METRICS },
		{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
		{ "send-timeout", required_argument, NULL, OPT_SEND_TIMEOUT },
		{ "on-error", required_argument, NULL, OPT_ON_ERROR },
		{ "dead-letter", required_argument, NULL, OPT_DEAD_LETTER },
		{ "read-ahead", required_argument, NULL, OPT_READ_AHEAD },
		{ "durability", required_argument, NULL, OPT_DURABILITY },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "list-readers", required_argument, NULL, OPT_LIST_READERS },
		{ "remove-reader", required_argument, NULL, OPT_REMOVE_READER },
		{ "allow-foreign", no_argument, NULL, OPT_ALLOW_FOREIGN },
		{ NULL, 0, NULL, 0 },
	};
	const char *inputs[MAX_EPS], *outputs[MAX_EPS], *buffer = "mem:64M";
	const char *props[MAX_PROPS + 1];
	unsigned int nprops = 0;
	char *ring_path = NULL; /* --buffer file: */
	bool allow_foreign = false;
	const char *metrics_at = NULL;
	struct metrics *metrics = NULL;
	unsigned int nin = 0, nout = 0, i;
	static sigset_t sigs;
	struct stats_ctx sc = { 0 };
	bool want_stats = false, no_checkpoint = false, stop;
	int durability = -1;
	size_t max_msg = 0, size;
	struct bring_io *io;
	struct bring *r;
	pthread_t st, sigt;
	int opt, err;
	/* A file source's read-ahead (man bringcat, --read-ahead). */
	BRING_IO_OPTS(iopts, .read_ahead = BRINGCAT_READ_AHEAD);

	/*
	 * Early: a signal before the loop runs stays pending until the
	 * signal thread takes it, just before the loop runs, and stops it.
	 * Every thread started from here on blocks them too.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	argv[0] = "bringcat"; /* getopt prefixes its messages with it */
	while ((opt = getopt_long(argc, argv, "i:o:f:m:b:s::X:qh", longopts,
				  NULL)) != -1) {
		switch (opt) {
		case 'i':
		case 'o':
			if ((opt == 'i' ? nin : nout) == MAX_EPS) {
				fprintf(stderr, "bringcat: too many -%c\n", opt);
				return 2;
			}
			if (opt == 'i')
				inputs[nin++] = optarg;
			else
				outputs[nout++] = optarg;
			break;
		case 'f':
			if (!strcmp(optarg, "lines"))
				iopts.framing = BRING_IO_LINES;
			else if (!strcmp(optarg, "u32be"))
				iopts.framing = BRING_IO_U32BE;
			else if (!strcmp(optarg, "raw"))
				iopts.framing = BRING_IO_RAW;
			else if (!strcmp(optarg, "syslog"))
				iopts.framing = BRING_IO_SYSLOG;
			else {
				fprintf(stderr, "bringcat: --framing: unknown framing '%s' (lines, u32be, raw, syslog)\n",
					optarg);
				return 2;
			}
			break;
		case OPT_ALLOW_FOREIGN:
			allow_foreign = true;
			break;
		case OPT_LIST_READERS:
			return manage_readers(optarg, NULL);
		case OPT_REMOVE_READER:
			if (optind >= argc) {
				fprintf(stderr, "bringcat: --remove-reader NAME PATH\n");
				return 2;
			}
			return manage_readers(argv[optind], optarg);
		case OPT_OVERSIZE:
			if (!strcmp(optarg, "split"))
				iopts.oversize = BRING_IO_SPLIT;
			else if (!strcmp(optarg, "truncate"))
				iopts.oversize = BRING_IO_TRUNCATE;
			else if (!strcmp(optarg, "drop"))
				iopts.oversize = BRING_IO_DROP;
			else {
				fprintf(stderr, "bringcat: --oversize: unknown mode '%s' (split, truncate, drop)\n",
					optarg);
				return 2;
			}
			break;
		case OPT_NO_CHECKPOINT:
			no_checkpoint = true;
			break;
		case OPT_DURABILITY:
			durability = parse_durability(optarg);
			if (durability < 0) {
				fprintf(stderr, "bringcat: --durability: expected none, interval or always, got '%s'\n",
					optarg);
				return 2;
			}
			break;
		case OPT_TAIL_FROM:
			if (!strcmp(optarg, "start"))
				iopts.flags |= BRING_IO_TAIL_FROM_START;
			else if (!strcmp(optarg, "end"))
				iopts.flags &= ~BRING_IO_TAIL_FROM_START;
			else {
				fprintf(stderr, "bringcat: --tail-from: expected start or end, got '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'm':
			if (parse_size(optarg, &max_msg) || !max_msg) {
				fprintf(stderr, "bringcat: --max-msg: bad size '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'b':
			buffer = optarg;
			break;
		case 's':
			want_stats = true;
			if (optarg) {
				char *end;
				long v = strtol(optarg, &end, 10);

				if (*end || v <= 0) {
					fprintf(stderr, "bringcat: --stats: bad period '%s'\n",
						optarg);
					return 2;
				}
				sc.period = v;
			}
			break;
		case OPT_NO_URING:
			iopts.flags |= BRING_IO_NO_URING;
			break;
		case OPT_NO_FUTEX_WAIT:
			iopts.flags |= BRING_IO_NO_FUTEX_WAIT;
			break;
		case OPT_METRICS:
			metrics_at = optarg;
			break;
		case OPT_MAX_CONNS: {
			char *end;
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || *optarg == '-' ||
			    !v || v > UINT_MAX) {
				fprintf(stderr, "bringcat: --max-conns: expected a count from 1, got '%s'\n",
					optarg);
				return 2;
			}
			iopts.max_conns = v;
			break;
		}
		case OPT_SEND_TIMEOUT: {
			char *end;
			double v;

			errno = 0;
			v = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(v >= 0) ||
			    v > INT_MAX / 1000) {
				fprintf(stderr, "bringcat: --send-timeout: expected seconds, got '%s'\n",
					optarg);
				return 2;
			}
			/* 0: never; under a millisecond: one. */
			iopts.send_timeout_ms = v ? (v < 0.001 ? 1 : v * 1000) : -1;
			break;
		}
		case OPT_LINE_RECORDS:
			iopts.flags |= BRING_IO_LINE_RECORDS;
			break;
		case OPT_STAGING_MAX:
		case OPT_STAGING_TOTAL:
		case OPT_IDLE_TIMEOUT:
			if (parse_staging(opt, optarg, &iopts))
				return 2;
			break;
		case 'X':
			if (nprops == MAX_PROPS || !strchr(optarg, '=') ||
			    *optarg == '=') {
				fprintf(stderr, "bringcat: -X %s: %s\n", optarg,
					nprops == MAX_PROPS ? "too many -X" :
					"expected PROP=VALUE");
				return 2;
			}
			props[nprops++] = optarg;
			break;
		case OPT_ON_ERROR:
			if (!strcmp(optarg, "stop"))
				iopts.on_error = BRING_IO_ON_ERROR_STOP;
			else if (!strcmp(optarg, "skip"))
				iopts.on_error = BRING_IO_ON_ERROR_SKIP;
			else {
				fprintf(stderr, "bringcat: --on-error: expected stop or skip, got '%s'\n",
					optarg);
				return 2;
			}
			break;
		case OPT_DEAD_LETTER:
			iopts.dead_letter = optarg;
			break;
		case OPT_READ_AHEAD:
			if (!strcmp(optarg, "all")) {
				iopts.read_ahead = 0;
			} else if (parse_size(optarg, &size) || size < 4096) {
				fprintf(stderr, "bringcat: --read-ahead: bad size '%s' (4K at least, or all)\n",
					optarg);
				return 2;
			} else {
				iopts.read_ahead = size;
			}
			break;
		case 'q':
			iopts.flags |= BRING_IO_QUIET;
			break;
		case OPT_STREAM_ID:
			if (!*optarg || strlen(optarg) > 200) {
				fprintf(stderr, "bringcat: --stream-id: 1 to 200 bytes\n");
				return 2;
			}
			iopts.hop_id = optarg;
			break;
		case OPT_HOP_WINDOW:
			if (parse_size(optarg, &size) || size < 4096 ||
			    size > UINT32_MAX) {
				fprintf(stderr, "bringcat: --hop-window: bad size '%s' (4K to 4G-1)\n",
					optarg);
				return 2;
			}
			iopts.hop_window = size;
			break;
		case OPT_HOP_HEARTBEAT: {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 10 || v > 600000) {
				fprintf(stderr, "bringcat: --hop-heartbeat: bad period '%s' (10 to 600000 ms)\n",
					optarg);
				return 2;
			}
			iopts.hop_heartbeat_ms = (unsigned int)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bringcat: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	if (iopts.dead_letter && iopts.on_error != BRING_IO_ON_ERROR_SKIP) {
		fprintf(stderr, "bringcat: --dead-letter needs --on-error skip\n");
		return 2;
	}
	if (!nin || !nout) {
		fprintf(stderr, "bringcat: need at least one -i SOURCE and one -o SINK\n");
		usage(stderr);
		return 2;
	}

	/* The ring: memory, or a file that survives restarts. */
	{
		BRING_OPTS(ropts, .name = "bringcat",
			   .flags = BRING_NO_DEFAULT_READER);

		if (!strncmp(buffer, "mem:", 4)) {
			if (durability > BRING_DURABLE_NONE) {
				fprintf(stderr, "bringcat: --durability: a memory buffer is never durable (use --buffer file:PATH)\n");
				return 2;
			}
			if (parse_size(buffer + 4, &size)) {
				fprintf(stderr, "bringcat: --buffer: bad size '%s'\n",
					buffer + 4);
				return 2;
			}
			if (size < BUFFER_MIN) {
				fprintf(stderr, "bringcat: --buffer: %s is smaller than the minimum, mem:4K (%u bytes)\n",
					buffer, BUFFER_MIN);
				return 2;
			}
			r = bring_new(size, &ropts);
		} else if (!strncmp(buffer, "file:", 5) && buffer[5]) {
			char *path = strdup(buffer + 5), *colon;

			size = 64 << 20;
			colon = strrchr(path, ':');
			if (colon && !parse_size(colon + 1, &size))
				*colon = '\0';
			if (allow_foreign)
				ropts.flags |= BRING_ALLOW_FOREIGN;
			if (durability >= 0)
				ropts.durability = durability;
			r = bring_open(path, size, &ropts);
			if (!r)
				fprintf(stderr, "bringcat: --buffer %s: %s\n",
					buffer, strerror(errno));
			/* Applications may push into the file ring too. */
			iopts.flags |= BRING_IO_SHARED;
			/* Sources and file: sinks resume where they were. */
			if (!no_checkpoint)
				iopts.flags |= BRING_IO_CHECKPOINT;
			/* A sink's mark never runs ahead of its output. */
			if (r && ring_durable(r))
				iopts.flags |= BRING_IO_SYNC_SINKS;
			if (r && !iopts.hop_id)
				iopts.hop_id = default_stream_id(path);
			if (!r) {
				free(path);
				return 1;
			}
			ring_path = path; /* for the readers' check below */
		} else {
			fprintf(stderr, "bringcat: --buffer: expected mem:SIZE or file:PATH, got '%s'\n",
				buffer);
			return 2;
		}
		if (!r) {
			fprintf(stderr, "bringcat: --buffer %s: %s\n", buffer,
				strerror(errno));
			return 1;
		}
	}
	if (max_msg > bring_max_msg(r)) {
		fprintf(stderr, "bringcat: --max-msg %zu is larger than the buffer allows (%zu)\n",
			max_msg, bring_max_msg(r));
		return 2;
	}
	iopts.max_msg = max_msg;
	props[nprops] = NULL;
	iopts.kafka_props = props;
	bring_io_set_print(print_prefixed);
	io = bring_io_new(r, &iopts);
	if (!io) {
		fprintf(stderr, "bringcat: %s\n", strerror(errno));
		return 1;
	}
	pthread_mutex_lock(&io_lock);
	the_io = io;
	stop = signals;
	pthread_mutex_unlock(&io_lock);
	if (stop)
		bring_io_stop(the_io);
	for (i = 0; i < nin; i++) {
		err = bring_io_add_source(the_io, inputs[i]);
		if (err) {
			fprintf(stderr, "bringcat: -i %s: %s\n", inputs[i],
				ep_error(inputs[i], err, true));
			return ep_exit_code(inputs[i], err, true);
		}
		if (!strncmp(inputs[i], "tail:", 5))
			sc.tail = true;
		sc.syslog = iopts.framing == BRING_IO_SYSLOG;
		say_listening(inputs[i], bring_io_source_port(the_io, i),
			      iopts.flags & BRING_IO_QUIET);
	}
	for (i = 0; i < nout; i++) {
		char reader[BRING_NAME_MAX];

		if (!strncmp(outputs[i], "kafka:", 6))
			sc.kafka = true;
		readers_sink_name(outputs, i, reader);
		err = bring_io_add_sink(the_io, outputs[i], reader);
		if (err) {
			fprintf(stderr, "bringcat: -o %s: %s\n", outputs[i],
				ep_error(outputs[i], err, false));
			return ep_exit_code(outputs[i], err, false);
		}
	}
	if (ring_path)
		readers_warn_orphans(r, ring_path, outputs, nout);

	if (metrics_at) {
		int port = 0;

		metrics = metrics_start(metrics_at, the_io, r, &port, &err);
		if (!metrics) {
			fprintf(stderr, "bringcat: --metrics %s: %s\n", metrics_at,
				err == -EINVAL ? "bad address (expected HOST:PORT)" :
				err == -EHOSTUNREACH ? "cannot resolve host" :
						       strerror(-err));
			return err == -EINVAL || err == -EHOSTUNREACH ? 2 : 1;
		}
		if (!(iopts.flags & BRING_IO_QUIET) ||
		    !strcmp(metrics_at + strlen(metrics_at) - 2, ":0"))
			fprintf(stderr, "bringcat: --metrics %s: serving /metrics on port %d\n",
				metrics_at, port);
	}
	sc.r = r;
	sc.t0 = now_s();
	pthread_mutex_lock(&io_lock);
	the_stats = want_stats ? &sc : NULL;
	pthread_mutex_unlock(&io_lock);
	if (sc.period) {
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&stats_cond, &ca);
		if (pthread_create(&st, NULL, stats_thread, &sc))
			sc.period = 0;
	}
	signals_quiet = iopts.flags & BRING_IO_QUIET;
	err = pthread_create(&sigt, NULL, signal_thread, &sigs);
	if (err) {
		fprintf(stderr, "bringcat: cannot start a thread: %s\n",
			strerror(err));
		return 1;
	}
	err = bring_io_run(the_io);
	if (sc.period)
		stats_stop(st);
	if (want_stats)
		print_stats(&sc, "done");
	metrics_stop(metrics);
	/*
	 * A signal from now on finds no io to stop or report on, not a
	 * freed one.
	 */
	pthread_mutex_lock(&io_lock);
	io = the_io;
	the_io = NULL;
	pthread_mutex_unlock(&io_lock);
	/* It waits in sigwait(), a cancellation point. */
	pthread_cancel(sigt);
	pthread_join(sigt, NULL);
	bring_io_free(io);
	bring_free(r);
	free(ring_path);
	if (err) {
		/* The io layer says its errors, with the endpoint: once. */
		if (!io_said_err(err))
			fprintf(stderr, "bringcat: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}
