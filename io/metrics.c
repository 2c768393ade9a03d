// SPDX-License-Identifier: GPL-2.0
/*
 * bringcat --metrics HOST:PORT: GET /metrics in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * Served from a thread of its own, not from the event loop: a scrape
 * reads the same relaxed counters --stats prints (bring_io_get_stats(),
 * bring_io_source_stats(), bring_io_sink_stats(), bring_get_stats()), so
 * the data path does no work for it and never waits on a slow or stuck
 * scraper; and the readv/writev mode has no loop to serve from. One
 * connection at a time, each closed after its answer; a client gets
 * METRICS_IO_TIMEOUT_S to send its request.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bring.h"
#include "bring_io.h"
#include "metrics.h"

#define METRICS_IO_TIMEOUT_S 2
#define METRICS_REQ_MAX 4096

struct metrics {
	struct bring_io *io;
	struct bring *r;
	int lfd;
	int stop_fd; /* eventfd: metrics_stop() */
	pthread_t thread;
};

/* A growing text buffer; on ENOMEM it stays short and says so. */
struct text {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void __attribute__((format(printf, 2, 3)))
put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0 || t->oom)
			return;
		if ((size_t)n < t->cap - t->len) {
			t->len += n;
			return;
		}
		{
			size_t cap = (t->cap + n + 1) * 2;
			char *b = realloc(t->buf, cap);

			if (!b) {
				t->oom = true;
				return;
			}
			t->buf = b;
			t->cap = cap;
		}
	}
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label(struct text *t, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\' || *v == '"')
			put(t, "\\%c", *v);
		else if (*v == '\n')
			put(t, "\\n");
		else
			put(t, "%c", *v);
	}
}

static void family(struct text *t, const char *name, const char *type,
		   const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * A family of @n samples of @v: one without labels when @label is NULL,
 * else told apart by {@label[0]="@label[1 + i]"}.
 */
static void metric(struct text *t, const char *name, const char *type,
		   const char *help, const char *const *label,
		   const uint64_t *v, unsigned int n)
{
	unsigned int i;

	family(t, name, type, help);
	for (i = 0; i < n; i++) {
		if (label)
			put(t, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label[0],
			    label[1 + i], v[i]);
		else
			put(t, "%s %" PRIu64 "\n", name, v[i]);
	}
}

static void sample_ep(struct text *t, const char *name,
		      const struct bring_io_endpoint_stats *es, uint64_t v)
{
	put(t, "%s{uri=\"", name);
	put_label(t, es->uri);
	if (es->reader) {
		put(t, "\",reader=\"");
		put_label(t, es->reader);
	}
	put(t, "\"} %" PRIu64 "\n", v);
}

static const char *const state_names[] = { "up", "reconnecting", "failed",
					   "done" };

/* Per-endpoint families; the nth takes ep_value()'s nth value. */
struct ep_family {
	const char *name, *type, *help;
};

static uint64_t ep_value(const struct bring_io_endpoint_stats *es,
			 unsigned int f)
{
	uint64_t v[] = { es->msgs, es->bytes, es->lag, es->reconnects,
			 es->state == BRING_IO_UP, es->retries, es->reopens,
			 es->send_timeouts };

	return v[f];
}

static void render_eps(struct text *t, struct bring_io *io, bool sinks,
		       const struct ep_family *fams, unsigned int nr)
{
	struct bring_io_endpoint_stats es = { .sz = sizeof(es) };
	unsigned int f, i;

	for (f = 0; f < nr; f++) {
		family(t, fams[f].name, fams[f].type, fams[f].help);
		for (i = 0; !(sinks ? bring_io_sink_stats(io, i, &es) :
				      bring_io_source_stats(io, i, &es));
		     i++)
			sample_ep(t, fams[f].name, &es, ep_value(&es, f));
	}
}

static void render_sinks(struct text *t, struct bring_io *io)
{
	static const struct ep_family fams[] = {
		{ "bring_sink_messages_total", "counter", "Messages a sink wrote." },
		{ "bring_sink_bytes_total", "counter", "Bytes a sink wrote, framing included." },
		{ "bring_sink_lag_bytes", "gauge", "Bytes of the ring a sink has not shifted yet." },
		{ "bring_sink_reconnects_total", "counter", "Connections a sink made again." },
		{ "bring_sink_up", "gauge", "1 when a sink is connected (or open)." },
		{ "bring_sink_retries_total", "counter", "Failed writes a file: sink retried." },
		{ "bring_sink_reopens_total", "counter", "Times a file: sink opened its path again." },
		{ "bring_sink_send_timeouts_total", "counter", "Sends of a sink that made no progress for the send timeout." },
	};
	struct bring_io_endpoint_stats es = { .sz = sizeof(es) };
	unsigned int f, i;

	render_eps(t, io, true, fams, sizeof(fams) / sizeof(fams[0]));
	family(t, "bring_sink_state", "gauge",
	       "1 for the state a sink is in (up, reconnecting, failed, done).");
	for (i = 0; !bring_io_sink_stats(io, i, &es); i++) {
		for (f = 0; f < 4; f++) {
			put(t, "bring_sink_state{uri=\"");
			put_label(t, es.uri);
			put(t, "\",reader=\"");
			put_label(t, es.reader);
			put(t, "\",state=\"%s\"} %d\n", state_names[f],
			    es.state == (int)f);
		}
	}
}

static void render_sources(struct text *t, struct bring_io *io)
{
	static const struct ep_family fams[] = {
		{ "bring_source_messages_total", "counter", "Messages a source put into the ring." },
		{ "bring_source_bytes_total", "counter", "Bytes a source read, framing included." },
	};

	render_eps(t, io, false, fams, sizeof(fams) / sizeof(fams[0]));
}

/* The whole page into @t: the ring, the io's totals, every endpoint. */
static void metrics_render(struct text *t, struct bring_io *io, struct bring *r)
{
	struct bring_io_stats st = { .sz = sizeof(st) };
	struct bring_stats rs = { .sz = sizeof(rs) };

	/* The label's name, then its value for each sample. */
	static const char *const sides[] = { "side", "writer", "reader" };
	static const char *const actions[] = { "action", "split", "truncated" };
	static const char *const wheres[] = { "where", "source", "send" };

	bring_io_get_stats(io, &st);
	bring_get_stats(r, &rs);
	metric(t, "bring_ring_capacity_bytes", "gauge", "Bytes the ring holds.",
	       NULL, &rs.capacity, 1);
	metric(t, "bring_ring_used_bytes", "gauge",
	       "Bytes held behind the slowest reader.", NULL, &rs.used, 1);
	/* As --stats: the io loop's waits plus the ring's own. */
	metric(t, "bring_ring_waits_total", "counter",
	       "Waits: writers for space (full), readers for data (empty).",
	       sides, (const uint64_t[]){ st.full_waits + rs.write_waits,
					  st.empty_waits + rs.read_waits }, 2);
	family(t, "bring_ring_wait_seconds_total", "counter",
	       "Time spent in those waits.");
	put(t, "bring_ring_wait_seconds_total{side=\"writer\"} %.9f\n",
	    (st.full_wait_ns + rs.write_wait_ns) / 1e9);
	put(t, "bring_ring_wait_seconds_total{side=\"reader\"} %.9f\n",
	    (st.empty_wait_ns + rs.read_wait_ns) / 1e9);
	metric(t, "bring_io_reconnects_total", "counter",
	       "Sink connections made again, all sinks.", NULL, &st.reconnects,
	       1);
	metric(t, "bring_io_accepted_total", "counter",
	       "Connections listening sources accepted.", NULL, &st.accepted, 1);
	metric(t, "bring_io_oversize_total", "counter",
	       "Messages longer than the maximum, by what was done.", actions,
	       (const uint64_t[]){ st.split, st.truncated }, 2);
	metric(t, "bring_io_dropped_total", "counter",
	       "Messages dropped: oversize or at stop (source), too large for a datagram (send).",
	       wheres, (const uint64_t[]){ st.dropped, st.send_dropped }, 2);
	metric(t, "bring_io_bad_frames_total", "counter",
	       "syslog frames with a malformed octet count (also dropped).",
	       NULL, &st.bad_frames, 1);
	render_sources(t, io);
	render_sinks(t, io);
}

static void answer(int fd, int code, const char *status, const char *type,
		   const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 code, status, type, len);
	struct iovec iov[2] = { { head, n }, { (void *)body, len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		return; /* the scraper went away: its loss */
}

/* Read a request's head; serve GET /metrics, 404 or 405 otherwise. */
static void serve(struct metrics *m, int fd)
{
	struct timeval tv = { .tv_sec = METRICS_IO_TIMEOUT_S };
	char req[METRICS_REQ_MAX + 1];
	struct text t = { 0 };
	size_t len = 0;
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (len < METRICS_REQ_MAX &&
	       (n = read(fd, req + len, METRICS_REQ_MAX - len)) > 0) {
		len += n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[len] = '\0';
	if (strncmp(req, "GET ", 4)) {
		answer(fd, 405, "Method Not Allowed", "text/plain", "GET only\n", 9);
		return;
	}
	if (strncmp(req + 4, "/metrics ", 9) && strncmp(req + 4, "/metrics?", 9)) {
		answer(fd, 404, "Not Found", "text/plain", "try /metrics\n", 13);
		return;
	}
	metrics_render(&t, m->io, m->r);
	if (t.oom)
		answer(fd, 500, "Internal Server Error", "text/plain",
		       "out of memory\n", 14);
	else
		answer(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
		       t.buf, t.len);
	free(t.buf);
}

static void *metrics_thread(void *arg)
{
	struct metrics *m = arg;
	struct pollfd p[2] = { { .fd = m->lfd, .events = POLLIN },
			       { .fd = m->stop_fd, .events = POLLIN } };
	sigset_t all;
	int fd;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(m, fd);
		close(fd);
	}
	return NULL;
}

/* "HOST:PORT", "[V6]:PORT", ":PORT" (every interface). */
static int metrics_listen(const char *hostport, int *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct addrinfo *res;
	char host[256];
	const char *colon = strrchr(hostport, ':');
	int fd, one = 1, err;
	size_t hl;

	if (!colon || !colon[1])
		return -EINVAL;
	hl = colon - hostport;
	if (hl && hostport[0] == '[' && hostport[hl - 1] == ']') {
		hostport++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, hostport, hl);
	host[hl] = '\0';
	err = getaddrinfo(hl ? host : NULL, colon + 1, &hints, &res);
	if (err)
		return err == EAI_SERVICE ? -EINVAL : -EHOSTUNREACH;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		err = -errno;
		close(fd);
		goto out;
	}
	*port = ntohs(ss.ss_family == AF_INET6 ?
			      ((struct sockaddr_in6 *)&ss)->sin6_port :
			      ((struct sockaddr_in *)&ss)->sin_port);
	err = fd;
out:
	freeaddrinfo(res);
	return err;
}

struct metrics *metrics_start(const char *hostport, struct bring_io *io,
			      struct bring *r, int *port, int *err)
{
	struct metrics *m = calloc(1, sizeof(*m));

	*err = -ENOMEM;
	if (!m)
		return NULL;
	m->io = io;
	m->r = r;
	m->stop_fd = -1;
	m->lfd = metrics_listen(hostport, port);
	if (m->lfd < 0) {
		*err = m->lfd;
		goto fail;
	}
	m->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (m->stop_fd < 0) {
		*err = -errno;
		goto fail;
	}
	*err = -pthread_create(&m->thread, NULL, metrics_thread, m);
	if (*err)
		goto fail;
	return m;
fail:
	if (m->lfd >= 0)
		close(m->lfd);
	if (m->stop_fd >= 0)
		close(m->stop_fd);
	free(m);
	return NULL;
}

void metrics_stop(struct metrics *m)
{
	uint64_t one = 1;

	if (!m)
		return;
	if (write(m->stop_fd, &one, sizeof(one)) != sizeof(one))
		return; /* cannot happen: the thread would be left running */
	pthread_join(m->thread, NULL);
	close(m->lfd);
	close(m->stop_fd);
	free(m);
}
