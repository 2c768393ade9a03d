// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the bring: hop receiver's frame parser and its
 * state checks (io/hop_proto.c): the input is what a peer sends on a
 * bring-listen: connection. Frames are taken as the receiver takes
 * them (DATA payloads skipped as if received into the ring) and every
 * frame is checked against what the parser promises:
 *
 *   - it consumes no more than it was given, and never 0 bytes for a
 *     frame it accepted; a prefix of a frame is "need more" (0) or the
 *     same error, never a different frame;
 *   - accepted DATA ends are strictly increasing, payloads within
 *     max_data; ERROR texts are one printable line;
 *   - HELLO, WELCOME and ACK frames encode back to the same fields.
 *
 * Build and run: scripts/fuzz.sh (fuzz/Build).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hop.h"

#define MAX_DATA 4096

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "hop_fuzz: broken: %s\n", what);
		abort();
	}
}

static void roundtrip(const struct hop_frame *f)
{
	uint8_t buf[HOP_HELLO_BUF + 64];
	struct hop_frame g;
	char why[HOP_ERROR_MAX];
	size_t len;
	int ret;

	switch (f->type) {
	case HOP_HELLO:
		len = hop_put_hello(buf, f->flags, f->epoch, f->window,
				    f->max_msg, f->id);
		break;
	case HOP_WELCOME:
		len = hop_put_welcome(buf, f->flags, f->max_frame, f->hb_ms,
				      f->offset);
		break;
	case HOP_ACK:
		len = hop_put_offset(buf, HOP_ACK, f->offset, 0);
		break;
	default:
		return;
	}
	ret = hop_parse(buf, len, MAX_DATA, &g, why, sizeof(why));
	check(ret == (int)len, "an encoded frame parses whole");
	check(g.type == f->type, "an encoded frame keeps its type");
	if (f->type == HOP_HELLO)
		check(g.id_len == f->id_len && !strcmp(g.id, f->id) &&
			      g.epoch == f->epoch && g.flags == f->flags &&
			      g.window == f->window && g.max_msg == f->max_msg,
		      "HELLO keeps its fields");
	else if (f->type == HOP_WELCOME)
		check(g.offset == f->offset && g.flags == f->flags &&
			      g.max_frame == f->max_frame && g.hb_ms == f->hb_ms,
		      "WELCOME keeps its fields");
	else
		check(g.offset == f->offset, "ACK keeps its offset");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hop_rx rx = { .phase = HOP_RX_HELLO };
	struct hop_frame f, g;
	char why[HOP_ERROR_MAX], why2[HOP_ERROR_MAX];
	uint64_t last_end = 0;
	size_t pos = 0, i;
	int ret, ret2;

	while (pos < size) {
		ret = hop_parse(data + pos, size - pos, MAX_DATA, &f, why,
				sizeof(why));
		if (ret <= 0) {
			check(ret == 0 || ret == -EPROTO, "0 or -EPROTO");
			check(ret == 0 || (why[0] && strlen(why) < sizeof(why)),
			      "an error says why");
			break;
		}
		check((size_t)ret <= size - pos, "consumes what it was given");
		/* A prefix one byte short is "more", never another frame. */
		ret2 = hop_parse(data + pos, (size_t)ret - 1, MAX_DATA, &g,
				 why2, sizeof(why2));
		check(ret2 == 0, "a frame's prefix needs more bytes");
		pos += (size_t)ret;
		if (f.type == HOP_ERROR)
			for (i = 0; i < f.len; i++)
				check((unsigned char)f.text[i] >= 0x20 &&
					      f.text[i] != 0x7f,
				      "ERROR text is one printable line");
		roundtrip(&f);
		if (hop_rx_check(&rx, &f, why, sizeof(why)))
			break; /* the receiver closes the connection */
		if (f.type == HOP_DATA) {
			check(f.len - HOP_DATA_MIN <= MAX_DATA,
			      "payload within max_data");
			check(f.offset > last_end, "DATA ends increase");
			last_end = f.offset;
			/* The payload goes into the ring, not the parser. */
			if (f.len - HOP_DATA_MIN > size - pos)
				break;
			pos += f.len - HOP_DATA_MIN;
		}
		if (rx.phase == HOP_RX_CLOSED)
			break;
	}
	return 0;
}
