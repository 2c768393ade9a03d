// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the syslog framing (BRING_IO_SYSLOG, io/frame.c):
 * the input is a stream a client sends to a tcp-listen: source, after
 * three bytes that choose max_msg, the oversize policy and where the
 * reads end. The stream goes through the real source path (staging,
 * conn_push(), the ring) in reads cut there, and what the ring holds
 * and the counters must be what the reference model
 * (selftests/io/syslog_model.h) makes of the whole stream: however the
 * reads cut a count or a message, nothing is lost, doubled or changed,
 * and nothing crashes.
 *
 * Build and run: scripts/fuzz.sh (fuzz/Build).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../selftests/io/syslog_model.h"

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "syslog_fuzz: broken: %s\n", what);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t maxes[] = { 1, 2, 5, 16, 64, 300, 4096 };
	static const int policies[] = { BRING_IO_SPLIT, BRING_IO_TRUNCATE,
					BRING_IO_DROP };
	struct bring_io_stats st;
	const char *in = (const char *)data + 3;
	uint32_t cuts;
	size_t max, n, i, k;
	struct model w;
	static struct feed feeds[7][3];
	struct feed *f;
	int policy;

	if (size < 3)
		return 0;
	max = maxes[data[0] % 7];
	policy = policies[data[1] % 3];
	cuts = data[2] * 2654435761U;
	n = size - 3;
	/* One ring per max and policy, kept: making one costs an mmap. */
	f = &feeds[data[0] % 7][data[1] % 3];
	if (!f->r)
		check(!feed_open(f, max, policy, 0), "feed_open");
	else
		check(!feed_conn(f), "feed_conn");
	model_run(in, n, max, policy, &w);
	for (i = 0; i < n; i += k) {
		/* Reads of 1 to 16 bytes, or the rest, as the third byte says. */
		cuts = cuts * 1103515245 + 12345;
		k = (cuts >> 16) % 17;
		if (!k || k > n - i)
			k = n - i;
		check(!feed_read(f, in + i, k), "a read is taken");
	}
	check(!feed_end(f), "the end is taken");
	feed_stats(f, &st);
	check(f->len == w.len && !memcmp(f->got, w.out, w.len),
	      "the ring holds the model's messages");
	check(st.msgs_in == (uint64_t)w.msgs && st.split == (uint64_t)w.split &&
		      st.truncated == (uint64_t)w.truncated &&
		      st.dropped == (uint64_t)w.dropped &&
		      st.bad_frames == (uint64_t)w.bad,
	      "the counters are the model's");
	free(w.out);
	return 0;
}
