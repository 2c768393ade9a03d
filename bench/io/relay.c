// SPDX-License-Identifier: GPL-2.0
/*
 * relay - the baselines of bench/io: a file shipped over TCP into a file
 * by the plainest programs that can do it.
 *
 *   relay relay send FILE HOST:PORT   read(2) 64 KiB, write(2) it all
 *   relay relay recv HOST:PORT FILE   accept one connection, read(2)
 *                                     64 KiB, write(2) it to FILE
 *   relay sendfile send FILE HOST:PORT  sendfile(2) the whole file
 *   relay sendfile recv HOST:PORT FILE  splice(2) socket -> pipe -> FILE
 *
 * "relay" is the two-copy bound (user space touches every byte once on
 * each side), "sendfile" the one-copy bound. A receiver listening on
 * port 0 prints "listening on port N" on stderr; it exits 0 at the
 * sender's end of stream. FILE is created and truncated.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUF_BYTES (64U << 10)
#define SPLICE_BYTES (1U << 20)

static int resolve(const char *hostport, struct sockaddr_storage *ss,
		   socklen_t *len, int passive)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = passive ? AI_PASSIVE : 0 };
	char host[256], *colon;
	struct addrinfo *res;

	snprintf(host, sizeof(host), "%s", hostport);
	colon = strrchr(host, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	if (getaddrinfo(*host ? host : NULL, colon + 1, &hints, &res))
		return -EHOSTUNREACH;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

static int copy_rw(int in, int out)
{
	static char buf[BUF_BYTES];
	ssize_t n;

	for (;;) {
		n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -1 : 0;
		if (write_all(out, buf, n))
			return -1;
	}
}

static int copy_sendfile(int in, int out)
{
	struct stat st;
	off_t off = 0;
	ssize_t n;

	if (fstat(in, &st))
		return -1;
	while (off < st.st_size) {
		n = sendfile(out, in, &off, st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
	}
	return 0;
}

static int copy_splice(int in, int out)
{
	ssize_t n, m;
	int p[2];

	if (pipe(p))
		return -1;
	fcntl(p[1], F_SETPIPE_SZ, SPLICE_BYTES);
	for (;;) {
		n = splice(in, NULL, p[1], NULL, SPLICE_BYTES, SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		while (n) {
			m = splice(p[0], NULL, out, NULL, n, SPLICE_F_MOVE);
			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0)
				goto out;
			n -= m;
		}
	}
out:
	close(p[0]);
	close(p[1]);
	return n ? -1 : 0;
}

static int do_send(int sendfile_mode, const char *path, const char *hostport)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int in, s, err;

	in = open(path, O_RDONLY);
	if (in < 0 || resolve(hostport, &ss, &len, 0))
		return -1;
	s = socket(ss.ss_family, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&ss, len))
		return -1;
	err = sendfile_mode ? copy_sendfile(in, s) : copy_rw(in, s);
	close(s);
	close(in);
	return err;
}

static int do_recv(int splice_mode, const char *hostport, const char *path)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int l, c, out, one = 1, err;

	if (resolve(hostport, &ss, &len, 1))
		return -1;
	l = socket(ss.ss_family, SOCK_STREAM, 0);
	if (l < 0)
		return -1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&ss, len) || listen(l, 1))
		return -1;
	len = sizeof(ss);
	getsockname(l, (struct sockaddr *)&ss, &len);
	fprintf(stderr, "relay: listening on port %d\n",
		ntohs(((struct sockaddr_in *)&ss)->sin_port));
	c = accept(l, NULL, NULL);
	if (c < 0)
		return -1;
	close(l);
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		return -1;
	err = splice_mode ? copy_splice(c, out) : copy_rw(c, out);
	close(c);
	close(out);
	return err;
}

int main(int argc, char **argv)
{
	int sf, err;

	if (argc != 5 ||
	    (strcmp(argv[1], "relay") && strcmp(argv[1], "sendfile"))) {
		fprintf(stderr,
			"usage: relay {relay|sendfile} send FILE HOST:PORT\n"
			"       relay {relay|sendfile} recv HOST:PORT FILE\n");
		return 2;
	}
	sf = !strcmp(argv[1], "sendfile");
	if (!strcmp(argv[2], "send"))
		err = do_send(sf, argv[3], argv[4]);
	else if (!strcmp(argv[2], "recv"))
		err = do_recv(sf, argv[3], argv[4]);
	else
		err = -1;
	if (err)
		perror("relay");
	return err ? 1 : 0;
}
