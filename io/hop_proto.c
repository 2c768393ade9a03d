// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * The bring: hop's wire format: frame parsing and encoding, and the
 * receiver's checks of what a frame may be at each point of a
 * connection. Pure functions over bytes (no io, no ring), so that the
 * fuzz target (fuzz/hop_fuzz.c) runs exactly this code. The format is
 * specified in Documentation/protocol.rst.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hop.h"

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	put32(p + 4, (uint32_t)v);
}

static int bad(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

/* The first bytes of what arrived, printable, for "not a bring: peer". */
static void show_bytes(const uint8_t *p, size_t len, char *out, size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < len && i < 16 && o + 5 < size; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			out[o++] = (char)p[i];
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x",
					      p[i]);
	}
	out[o] = '\0';
}

static int parse_hello(const uint8_t *b, uint32_t len, struct hop_frame *f,
		       char *why, size_t why_len)
{
	if (memcmp(b, HOP_MAGIC, 4))
		return bad(why, why_len, "not a bring: peer (bad magic)");
	f->version = get16(b + 4);
	if (f->version != HOP_VERSION)
		return bad(why, why_len,
			   "protocol version %u not supported (this side speaks %u)",
			   f->version, HOP_VERSION);
	f->flags = get16(b + 6);
	if (f->flags & ~HOP_HELLO_FLAGS)
		return bad(why, why_len, "unknown HELLO flags 0x%x", f->flags);
	f->epoch = get64(b + 8);
	f->window = get32(b + 16);
	f->max_msg = get32(b + 20);
	f->id_len = get16(b + 24);
	if (!f->id_len || f->id_len > HOP_ID_MAX ||
	    len != HOP_HELLO_MIN + (uint32_t)f->id_len)
		return bad(why, why_len, "HELLO: bad stream id length %u",
			   f->id_len);
	memcpy(f->id, b + HOP_HELLO_MIN, f->id_len);
	f->id[f->id_len] = '\0';
	if (memchr(f->id, '\0', f->id_len))
		return bad(why, why_len, "HELLO: NUL in the stream id");
	return 0;
}

/* The body's length is right for its type (DATA: the payload's bound). */
static int check_len(const struct hop_frame *f, size_t max_data, char *why,
		     size_t why_len)
{
	uint32_t len = f->len;
	bool ok;

	switch (f->type) {
	case HOP_HELLO:
		ok = len >= HOP_HELLO_MIN + 1 &&
		     len <= HOP_HELLO_MIN + HOP_ID_MAX;
		break;
	case HOP_WELCOME:
		ok = len == HOP_WELCOME_LEN;
		break;
	case HOP_DATA:
		if (len < HOP_DATA_MIN)
			return bad(why, why_len, "DATA frame of %u bytes", len);
		if (len - HOP_DATA_MIN > max_data)
			return bad(why, why_len,
				   "frame of %u bytes is longer than max_msg %zu",
				   len - HOP_DATA_MIN, max_data);
		return 0;
	case HOP_ACK:
		ok = len == 8;
		break;
	case HOP_PING:
		ok = len == 0;
		break;
	case HOP_ERROR:
		ok = len <= HOP_ERROR_MAX;
		break;
	default:
		return bad(why, why_len, "unknown frame type %u", f->type);
	}
	if (!ok)
		return bad(why, why_len, "frame type %u with a body of %u bytes",
			   f->type, len);
	return 0;
}

int hop_parse(const void *buf, size_t len, size_t max_data,
	      struct hop_frame *f, char *why, size_t why_len)
{
	const uint8_t *p = buf, *b = p + HOP_HDR;
	char shown[80];
	size_t need;
	int err;

	if (len < HOP_HDR)
		return 0;
	f->type = p[0];
	f->len = get32(p + 4);
	if (p[1] || get16(p + 2)) {
		show_bytes(p, len, shown, sizeof(shown));
		return bad(why, why_len,
			   "not a bring: peer (it sent \"%s\")", shown);
	}
	err = check_len(f, max_data, why, why_len);
	if (err)
		return err;
	need = HOP_HDR + (f->type == HOP_DATA ? HOP_DATA_MIN : f->len);
	if (len < need)
		return 0;
	switch (f->type) {
	case HOP_HELLO:
		err = parse_hello(b, f->len, f, why, why_len);
		break;
	case HOP_WELCOME:
		f->version = get16(b);
		f->flags = get16(b + 2);
		f->max_frame = get32(b + 4);
		f->hb_ms = get32(b + 8);
		f->offset = get64(b + 12);
		if (f->version != HOP_VERSION)
			err = bad(why, why_len,
				  "peer answered with protocol version %u (this side speaks %u)",
				  f->version, HOP_VERSION);
		else if (!f->max_frame || !f->hb_ms)
			err = bad(why, why_len, "WELCOME with a zero limit");
		break;
	case HOP_DATA:
	case HOP_ACK:
		f->offset = get64(b);
		break;
	case HOP_ERROR: {
		size_t i;

		memcpy(f->text, b, f->len);
		f->text[f->len] = '\0';
		for (i = 0; i < f->len; i++) /* one printable line */
			if ((unsigned char)f->text[i] < 0x20 ||
			    f->text[i] == 0x7f)
				f->text[i] = '?';
		break;
	}
	default:
		break;
	}
	return err ? err : (int)need;
}

int hop_rx_check(struct hop_rx *rx, const struct hop_frame *f, char *why,
		 size_t why_len)
{
	switch (rx->phase) {
	case HOP_RX_HELLO:
		if (f->type != HOP_HELLO)
			return bad(why, why_len,
				   "not a bring: peer (frame type %u before HELLO)",
				   f->type);
		rx->phase = HOP_RX_STREAM;
		return 0;
	case HOP_RX_STREAM:
		if (f->type == HOP_PING)
			return 0;
		if (f->type == HOP_ERROR) {
			rx->phase = HOP_RX_CLOSED;
			return 0;
		}
		if (f->type != HOP_DATA)
			return bad(why, why_len, "unexpected frame type %u",
				   f->type);
		if (f->offset <= rx->next)
			return bad(why, why_len,
				   "DATA ends at offset %llu, not past the committed %llu",
				   (unsigned long long)f->offset,
				   (unsigned long long)rx->next);
		rx->next = f->offset;
		return 0;
	default:
		return bad(why, why_len, "frame after the connection ended");
	}
}

size_t hop_put_hdr(void *buf, uint8_t type, uint32_t len)
{
	uint8_t *p = buf;

	p[0] = type;
	p[1] = 0;
	put16(p + 2, 0);
	put32(p + 4, len);
	return HOP_HDR;
}

size_t hop_put_hello(void *buf, uint16_t flags, uint64_t epoch,
		     uint32_t window, uint32_t max_msg, const char *id)
{
	uint8_t *b = (uint8_t *)buf + HOP_HDR;
	size_t id_len = strnlen(id, HOP_ID_MAX);

	hop_put_hdr(buf, HOP_HELLO, (uint32_t)(HOP_HELLO_MIN + id_len));
	memcpy(b, HOP_MAGIC, 4);
	put16(b + 4, HOP_VERSION);
	put16(b + 6, flags);
	put64(b + 8, epoch);
	put32(b + 16, window);
	put32(b + 20, max_msg);
	put16(b + 24, (uint16_t)id_len);
	memcpy(b + HOP_HELLO_MIN, id, id_len);
	return HOP_HDR + HOP_HELLO_MIN + id_len;
}

size_t hop_put_welcome(void *buf, uint16_t flags, uint32_t max_frame,
		       uint32_t hb_ms, uint64_t offset)
{
	uint8_t *b = (uint8_t *)buf + HOP_HDR;

	hop_put_hdr(buf, HOP_WELCOME, HOP_WELCOME_LEN);
	put16(b, HOP_VERSION);
	put16(b + 2, flags);
	put32(b + 4, max_frame);
	put32(b + 8, hb_ms);
	put64(b + 12, offset);
	return HOP_HDR + HOP_WELCOME_LEN;
}

/* ACK, or a DATA header (its payload follows) */
size_t hop_put_offset(void *buf, uint8_t type, uint64_t offset,
		      uint32_t payload)
{
	hop_put_hdr(buf, type, 8 + payload);
	put64((uint8_t *)buf + HOP_HDR, offset);
	return HOP_HDR + 8;
}

size_t hop_put_error(void *buf, const char *text)
{
	size_t len = strnlen(text, HOP_ERROR_MAX);

	hop_put_hdr(buf, HOP_ERROR, (uint32_t)len);
	memcpy((uint8_t *)buf + HOP_HDR, text, len);
	return HOP_HDR + len;
}

/* FNV-1a, 64 bits: stream ids of up to 255 bytes in a 31-byte name. */
void hop_writer_name(const char *id, size_t id_len, char *name, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < id_len; i++) {
		h ^= (unsigned char)id[i];
		h *= 0x100000001b3ULL;
	}
	snprintf(name, size, "hop-%016llx", (unsigned long long)h);
}

void hop_mark_put(void *mark, uint64_t epoch, uint64_t offset)
{
	put64(mark, epoch);
	put64((uint8_t *)mark + 8, offset);
}

bool hop_mark_get(const void *mark, size_t len, uint64_t *epoch,
		  uint64_t *offset)
{
	if (len != HOP_MARK_LEN)
		return false;
	*epoch = get64(mark);
	*offset = get64((const uint8_t *)mark + 8);
	return true;
}
