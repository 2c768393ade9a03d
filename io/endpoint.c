// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * Endpoint URIs: parsing, listening, connecting, opening files.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stddef.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

static int default_print(const char *fmt, va_list ap)
{
	fputs("bring_io: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

static bring_print_fn_t print_fn = default_print;

bring_print_fn_t bring_io_set_print(bring_print_fn_t fn)
{
	bring_print_fn_t old = print_fn;

	print_fn = fn ? fn : default_print;
	return old;
}

uint64_t io_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

void io_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print_fn(fmt, ap);
	va_end(ap);
}

/* "HOST:PORT", "[V6]:PORT"; an empty host means any (listen) or loopback. */
static int parse_hostport(struct endpoint *ep, const char *s, bool passive)
{
	struct addrinfo hints = { .ai_socktype = ep->socktype,
				  .ai_flags = AI_NUMERICSERV |
					      (passive ? AI_PASSIVE : 0) };
	struct addrinfo *res;
	char host[256];
	const char *colon, *port;
	char *end;
	long pn;
	int err;

	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, rb - s - 1);
		host[rb - s - 1] = '\0';
		port = rb + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, colon - s);
		host[colon - s] = '\0';
		port = colon + 1;
	}
	errno = 0;
	pn = strtol(port, &end, 10);
	if (!*port || *end || errno || pn < 0 || pn > 65535)
		return -EINVAL;
	err = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (err) /* the caller says it: one line */
		return err == EAI_AGAIN ? -EAGAIN : -EHOSTUNREACH;
	memcpy(&ep->addr, res->ai_addr, res->ai_addrlen);
	ep->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* "PATH" of a unix socket: it and its NUL must fit in sun_path. */
static int parse_unix(struct endpoint *ep, const char *path)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&ep->addr;
	size_t len = strlen(path);

	if (!len)
		return -EINVAL;
	if (len >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	ep->path = strdup(path);
	if (!ep->path)
		return -ENOMEM;
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len + 1);
	ep->addrlen = offsetof(struct sockaddr_un, sun_path) + len + 1;
	return 0;
}

struct ep_prefix {
	const char *prefix;
	enum ep_kind kind;
	bool source;
	int socktype;
};

static const struct ep_prefix ep_prefixes[] = {
	{ "tcp-listen:", EP_TCP_LISTEN, true, SOCK_STREAM },
	{ "tcp:", EP_TCP, false, SOCK_STREAM },
	{ "udp-listen:", EP_UDP_LISTEN, true, SOCK_DGRAM },
	{ "udp:", EP_UDP, false, SOCK_DGRAM },
	{ "unix-listen:", EP_UNIX_LISTEN, true, SOCK_STREAM },
	{ "unix:", EP_UNIX, false, SOCK_STREAM },
	{ "bring-listen:", EP_HOP_LISTEN, true, SOCK_STREAM },
	{ "bring:", EP_HOP, false, SOCK_STREAM },
};

/*
 * kafka:HOST:PORT[,HOST:PORT...]/TOPIC[?QUERY]: the broker list as
 * librdkafka takes it, a topic name as Kafka allows it (1..249 of
 * [A-Za-z0-9._-]); the query is checked by kafka.c.
 */
static int parse_kafka(struct endpoint *ep, const char *arg)
{
	const char *slash = strchr(arg, '/'), *q, *t;

	ep->kind = EP_KAFKA;
	if (!slash || slash == arg)
		return -EINVAL;
	q = strchr(slash + 1, '?');
	if (!q)
		q = slash + strlen(slash);
	if (q == slash + 1 || q - slash - 1 > 249)
		return -EINVAL;
	for (t = slash + 1; t < q; t++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789._-", *t))
			return -EINVAL;
	ep->brokers = strndup(arg, slash - arg);
	ep->topic = strndup(slash + 1, q - slash - 1);
	ep->query = *q ? strdup(q + 1) : NULL;
	if (!ep->brokers || !ep->topic || (*q && !ep->query))
		return -ENOMEM;
	return 0;
}

int ep_parse(struct endpoint *ep, const char *uri, bool source)
{
	const struct ep_prefix *p;
	const char *arg;
	size_t i;

	memset(ep, 0, sizeof(*ep));
	ep->uri = strdup(uri);
	if (!ep->uri)
		return -ENOMEM;
	if (!strcmp(uri, "-")) {
		ep->kind = source ? EP_STDIN : EP_STDOUT;
		return 0;
	}
	if (!strcmp(uri, "stdin:") && source) {
		ep->kind = EP_STDIN;
		return 0;
	}
	if (!strcmp(uri, "stdout:") && !source) {
		ep->kind = EP_STDOUT;
		return 0;
	}
	/* A known type without its PATH is a bad address, not a type. */
	if (!strcmp(uri, "file:") || (source && !strcmp(uri, "tail:")))
		return -EINVAL;
	if (!strncmp(uri, "file:", 5) && uri[5]) {
		ep->kind = EP_FILE;
		ep->path = strdup(uri + 5);
		return ep->path ? 0 : -ENOMEM;
	}
	if (source && !strncmp(uri, "tail:", 5) && uri[5]) {
		ep->kind = EP_TAIL;
		ep->path = strdup(uri + 5);
		return ep->path ? 0 : -ENOMEM;
	}
	if (!strncmp(uri, "kafka:", 6))
		return parse_kafka(ep, uri + 6);
	for (i = 0; i < sizeof(ep_prefixes) / sizeof(ep_prefixes[0]); i++) {
		p = &ep_prefixes[i];
		if (p->source != source ||
		    strncmp(uri, p->prefix, strlen(p->prefix)))
			continue;
		ep->kind = p->kind;
		ep->socktype = p->socktype;
		arg = uri + strlen(p->prefix);
		if (p->kind == EP_UNIX_LISTEN || p->kind == EP_UNIX)
			return parse_unix(ep, arg);
		return parse_hostport(ep, arg, source);
	}
	return -EPROTONOSUPPORT;
}

void ep_free(struct endpoint *ep)
{
	free(ep->uri);
	free(ep->path);
	free(ep->brokers);
	free(ep->topic);
	free(ep->query);
	ep->uri = ep->path = ep->brokers = ep->topic = ep->query = NULL;
}

static int sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/*
 * A unix socket file is in the way of bind(): remove it if it is a socket
 * nobody listens on (left by a process that died), refuse otherwise.
 */
static int unix_remove_stale(const struct endpoint *ep)
{
	struct stat st;
	int fd, err;

	if (lstat(ep->path, &st))
		return errno == ENOENT ? 0 : -errno; /* gone meanwhile */
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	err = 0;
	if (connect(fd, (const struct sockaddr *)&ep->addr, ep->addrlen))
		err = errno;
	close(fd);
	/* Accepted, or a datagram socket (EPROTOTYPE), or a full backlog. */
	if (err != ECONNREFUSED)
		return -EADDRINUSE;
	if (unlink(ep->path) && errno != ENOENT)
		return -errno;
	return 0;
}

static int ep_bind(struct endpoint *ep, int fd)
{
	int err;

	if (!bind(fd, (struct sockaddr *)&ep->addr, ep->addrlen))
		return 0;
	if (errno != EADDRINUSE || ep->kind != EP_UNIX_LISTEN)
		return -errno;
	err = unix_remove_stale(ep);
	if (err)
		return err;
	return bind(fd, (struct sockaddr *)&ep->addr, ep->addrlen) ? -errno : 0;
}

/*
 * A listening socket (tcp-listen, unix-listen) or a bound datagram
 * socket (udp-listen). Returns the fd; *port is the local port (0 for
 * unix). UDP gets no SO_REUSEADDR: two sockets would share the port.
 */
int ep_listen(struct endpoint *ep, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd, one = 1, rcvbuf = IO_DGRAM_RCVBUF, err;

	fd = socket(ep->addr.ss_family, ep->socktype | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ep->kind == EP_TCP_LISTEN)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ep->kind == EP_UDP_LISTEN) /* room for bursts */
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	err = ep_bind(ep, fd);
	if (err)
		goto fail;
	if (ep->socktype == SOCK_STREAM && listen(fd, 1024))
		goto fail_errno;
	*port = 0;
	if (ep->addr.ss_family == AF_UNIX)
		return fd;
	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		goto fail_errno;
	*port = sockaddr_port(&ss);
	return fd;
fail_errno:
	err = -errno;
fail:
	close(fd);
	return err;
}

/* unix-listen: remove the socket file at the end if it is still ours. */
void ep_unlink(struct source *src)
{
	struct stat st;

	if (src->ep.kind != EP_UNIX_LISTEN || !src->ino)
		return;
	if (!lstat(src->ep.path, &st) && st.st_dev == src->dev &&
	    st.st_ino == src->ino)
		unlink(src->ep.path);
	src->ino = 0;
}

/*
 * A TCP or UDP socket connected to itself. Nobody listening on a local
 * port of the ephemeral range: the kernel may pick that very port for
 * the connecting end, and a TCP connect then "succeeds" by simultaneous
 * open (a UDP one always does). What the sink then sent would go
 * nowhere, and the port would stay taken from the collector that comes
 * later. true for such a socket, whose close is then made abortive (no
 * TIME_WAIT holding the port for a minute): the caller closes it and
 * counts it as refused.
 */
bool ep_refuse_self_connect(int fd)
{
	struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
	struct sockaddr_storage a, b;
	socklen_t la = sizeof(a), lb = sizeof(b);

	if (getsockname(fd, (struct sockaddr *)&a, &la) ||
	    getpeername(fd, (struct sockaddr *)&b, &lb) || la != lb ||
	    (a.ss_family != AF_INET && a.ss_family != AF_INET6) ||
	    memcmp(&a, &b, la))
		return false;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close,
		   sizeof(abort_close));
	return true;
}

int ep_connect(const struct endpoint *ep)
{
	int fd, one = 1, err;

	fd = socket(ep->addr.ss_family, ep->socktype | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&ep->addr, ep->addrlen)) {
		err = -errno;
		close(fd);
		return err;
	}
	if (ep_refuse_self_connect(fd)) {
		close(fd);
		return -ECONNREFUSED;
	}
	if (ep->kind == EP_TCP)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static bool fd_is_sock(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && S_ISSOCK(st.st_mode);
}

static bool fd_is_dir(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && S_ISDIR(st.st_mode);
}

int ep_open_sink(struct endpoint *ep, bool *sock)
{
	int fd;

	*sock = false;
	switch (ep->kind) {
	case EP_STDOUT:
		*sock = fd_is_sock(1);
		fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
		return fd < 0 ? -errno : fd;
	case EP_FILE:
		fd = open(ep->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			  0640);
		return fd < 0 ? -errno : fd;
	case EP_TCP:
	case EP_UDP:
	case EP_UNIX:
		*sock = true;
		return ep_connect(ep);
	default:
		return -EINVAL;
	}
}

int ep_open_file_source(struct endpoint *ep)
{
	int fd;

	if (ep->kind == EP_STDIN)
		fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
	else
		fd = open(ep->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fd_is_dir(fd)) {
		close(fd);
		return -EISDIR;
	}
	return fd;
}
