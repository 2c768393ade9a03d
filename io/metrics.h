/* SPDX-License-Identifier: GPL-2.0 */
/*
 * io/metrics.h - bringcat's --metrics endpoint (Prometheus text format).
 */
#ifndef BRING_METRICS_H
#define BRING_METRICS_H

#include <stdbool.h>

struct bring;
struct bring_io;
struct metrics;

/*
 * Listen on @hostport ("HOST:PORT", "[V6]:PORT", ":PORT") and serve
 * GET /metrics from a thread; *@port is the bound port. NULL with *@err
 * a negative errno (-EINVAL: bad address, -EHOSTUNREACH: no such host).
 */
struct metrics *metrics_start(const char *hostport, struct bring_io *io,
			      struct bring *r, int *port, int *err);
/* Stop serving, join the thread, free. */
void metrics_stop(struct metrics *m);

#endif
