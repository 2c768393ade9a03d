// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * shipper - the smallest log shipper on the bring io layer.
 *
 *   shipper RING SOURCE SINK...
 *
 * RING is mem:BYTES (a ring in memory) or file:PATH (a 1 MiB file ring
 * that outlives the process: what the sinks did not write is still there
 * for the next run). SOURCE and SINK are bring_io URIs (bring_io(7)):
 * file:PATH, tcp-listen:HOST:PORT, tcp:HOST:PORT, stdout:, ... Every sink
 * gets every message. It runs until the source ends (file:, stdin:) and
 * the sinks wrote everything, or until SIGINT/SIGTERM; SIGHUP makes file:
 * sinks open their paths again. Then it prints each source's and sink's
 * figures on stderr.
 *
 *   cc -o shipper shipper.c $(pkg-config --cflags --libs libbring_io)
 *
 * See Documentation/io.rst, "Linking the io layer".
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bring_io.h>

static const char *const state_names[] = {
	[BRING_IO_UP] = "up",
	[BRING_IO_RECONNECTING] = "reconnecting",
	[BRING_IO_FAILED] = "failed",
	[BRING_IO_DONE] = "done",
};

/* Set before the handlers are installed; bring_io_stop() and
 * bring_io_reopen() are async-signal-safe. */
static struct bring_io *the_io;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		bring_io_reopen(the_io);
	else
		bring_io_stop(the_io);
}

static struct bring *open_ring(const char *spec, unsigned int *io_flags)
{
	BRING_OPTS(opts, .name = "shipper", .flags = BRING_NO_DEFAULT_READER);
	char *end;

	if (!strncmp(spec, "mem:", 4)) {
		unsigned long long size = strtoull(spec + 4, &end, 0);

		if (end == spec + 4 || *end) {
			errno = EINVAL;
			return NULL;
		}
		return bring_new(size, &opts);
	}
	if (!strncmp(spec, "file:", 5)) {
		/* Others may use the file too; sources resume where they
		 * stopped, file: sinks hold every message once. */
		*io_flags |= BRING_IO_SHARED | BRING_IO_CHECKPOINT;
		return bring_open(spec + 5, 1 << 20, &opts);
	}
	errno = EINVAL;
	return NULL;
}

static void print_endpoint(const char *what,
			   const struct bring_io_endpoint_stats *es)
{
	fprintf(stderr, "%-6s %-28s %10" PRIu64 " msgs %12" PRIu64
		" bytes  %s", what, es->uri, es->msgs, es->bytes,
		state_names[es->state]);
	if (es->reader)
		fprintf(stderr, "  reader %s lag %" PRIu64, es->reader,
			es->lag);
	if (es->last_err)
		fprintf(stderr, "  last error: %s", strerror(-es->last_err));
	fputc('\n', stderr);
}

static void print_stats(const struct bring_io *io)
{
	struct bring_io_endpoint_stats es = { .sz = sizeof(es) };
	unsigned int i;

	for (i = 0; !bring_io_source_stats(io, i, &es); i++)
		print_endpoint("source", &es);
	for (i = 0; !bring_io_sink_stats(io, i, &es); i++)
		print_endpoint("sink", &es);
}

static int ship(struct bring *r, unsigned int flags, char **uris, int n)
{
	BRING_IO_OPTS(opts, .flags = flags);
	struct sigaction sa = { .sa_handler = on_signal };
	int err, port, i;

	the_io = bring_io_new(r, &opts);
	if (!the_io) {
		fprintf(stderr, "shipper: bring_io_new: %s\n", strerror(errno));
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	err = bring_io_add_source(the_io, uris[0]);
	if (err) {
		fprintf(stderr, "shipper: %s: %s\n", uris[0], strerror(-err));
		goto out;
	}
	port = bring_io_source_port(the_io, 0);
	if (port > 0)
		fprintf(stderr, "shipper: %s: listening on port %d\n", uris[0],
			port);
	for (i = 1; i < n; i++) {
		err = bring_io_add_sink(the_io, uris[i], NULL);
		if (err) {
			fprintf(stderr, "shipper: %s: %s\n", uris[i],
				strerror(-err));
			goto out;
		}
	}

	err = bring_io_run(the_io);
	if (err)
		fprintf(stderr, "shipper: %s\n", strerror(-err));
	print_stats(the_io);
out:
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	bring_io_free(the_io);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	unsigned int flags = 0;
	struct bring *r;
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: shipper mem:BYTES|file:PATH SOURCE SINK...\n");
		return 2;
	}
	r = open_ring(argv[1], &flags);
	if (!r) {
		fprintf(stderr, "shipper: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	rc = ship(r, flags, argv + 2, argc - 2);
	bring_free(r);
	return rc;
}
