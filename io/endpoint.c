// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * Endpoint URIs: parsing, listening, connecting, opening files.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
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
	if (err) {
		io_log("%s: %s\n", ep->uri, gai_strerror(err));
		return -EHOSTUNREACH;
	}
	memcpy(&ep->addr, res->ai_addr, res->ai_addrlen);
	ep->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int ep_parse(struct endpoint *ep, const char *uri, bool source)
{
	const char *arg;
	int err = 0;

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
	if (source && !strncmp(uri, "tcp-listen:", 11)) {
		ep->kind = EP_TCP_LISTEN;
		arg = uri + 11;
		err = parse_hostport(ep, arg, true);
	} else if (!source && !strncmp(uri, "tcp:", 4)) {
		ep->kind = EP_TCP;
		arg = uri + 4;
		err = parse_hostport(ep, arg, false);
	} else {
		err = -EPROTONOSUPPORT;
	}
	return err;
}

void ep_free(struct endpoint *ep)
{
	free(ep->uri);
	free(ep->path);
	ep->uri = ep->path = NULL;
}

static int sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

int ep_listen(struct endpoint *ep, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd, one = 1, err;

	fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ep->addr, ep->addrlen) ||
	    listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		err = -errno;
		close(fd);
		return err;
	}
	*port = sockaddr_port(&ss);
	return fd;
}

int ep_connect(const struct endpoint *ep)
{
	int fd, one = 1, err;

	fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&ep->addr, ep->addrlen)) {
		err = -errno;
		close(fd);
		return err;
	}
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
