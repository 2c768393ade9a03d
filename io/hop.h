/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * io/hop.h - the acknowledged hop between bringcats: the bring: sink and
 * the bring-listen: source. Frames, the parser and the receiver's state
 * checks (hop_proto.c, free of any io: the fuzz target links it alone),
 * and the endpoints (hop.c): threads, or state machines in the io_uring
 * loop. Documentation/protocol.rst is the byte-by-byte specification;
 * keep the two in step.
 */
#ifndef BRING_IO_HOP_H
#define BRING_IO_HOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOP_VERSION 1
#define HOP_MAGIC "BHOP" /* first 4 bytes of a HELLO's body */
#define HOP_HDR 8 /* type u8, flags u8, reserved u16, length u32 */
#define HOP_ID_MAX 255 /* stream id bytes */
#define HOP_HELLO_MIN 26 /* magic 4, version 2, flags 2, epoch 8, window 4,
			  * max_msg 4, id_len 2 */
#define HOP_WELCOME_LEN 20 /* version 2, flags 2, max_frame 4, hb_ms 4,
			    * offset 8 */
#define HOP_ERROR_MAX 1024 /* bytes of an ERROR's text */
#define HOP_DATA_MIN 8 /* end u64 before the payload */

enum hop_type {
	HOP_HELLO = 1, /* sender -> receiver: who, which epoch */
	HOP_WELCOME = 2, /* receiver -> sender: resend from this offset */
	HOP_DATA = 3, /* sender -> receiver: one record and its end offset */
	HOP_ACK = 4, /* receiver -> sender: committed below this offset */
	HOP_PING = 5, /* either way: still here */
	HOP_ERROR = 6, /* either way: why the connection ends */
};

/* HELLO flags */
#define HOP_F_VOLATILE 0x0001 /* the sender's ring is in memory */
#define HOP_F_LINES 0x0002 /* payloads are lines joined by '\n' */
#define HOP_HELLO_FLAGS (HOP_F_VOLATILE | HOP_F_LINES)

/* A frame's header and, for all but DATA, its body. */
struct hop_frame {
	uint8_t type;
	uint32_t len; /* body bytes */
	/* HELLO */
	uint16_t version, flags;
	uint64_t epoch;
	uint32_t window, max_msg;
	uint16_t id_len;
	char id[HOP_ID_MAX + 1];
	/* WELCOME */
	uint32_t max_frame, hb_ms;
	/* WELCOME, ACK: offset; DATA: the end offset */
	uint64_t offset;
	/* ERROR: text (NUL-terminated) */
	char text[HOP_ERROR_MAX + 1];
};

/*
 * Parse the frame at @buf (@len bytes available). For DATA only the
 * header and the end offset are consumed: the payload (f->len - 8 bytes)
 * follows and is the caller's to receive (into a ring reservation).
 * @max_data: the largest DATA payload accepted. Returns the bytes
 * consumed (> 0), 0 when more bytes are needed, or -EPROTO with @why
 * (one line, no newline) filled.
 */
int hop_parse(const void *buf, size_t len, size_t max_data,
	      struct hop_frame *f, char *why, size_t why_len);

/* Encoders: the frame's bytes at @buf (room for them); its length. */
size_t hop_put_hdr(void *buf, uint8_t type, uint32_t len);
size_t hop_put_hello(void *buf, uint16_t flags, uint64_t epoch,
		     uint32_t window, uint32_t max_msg, const char *id);
size_t hop_put_welcome(void *buf, uint16_t flags, uint32_t max_frame,
		       uint32_t hb_ms, uint64_t offset);
size_t hop_put_offset(void *buf, uint8_t type, uint64_t offset,
		      uint32_t payload);
size_t hop_put_error(void *buf, const char *text);
#define HOP_HELLO_BUF (HOP_HDR + HOP_HELLO_MIN + HOP_ID_MAX)
#define HOP_ERROR_BUF (HOP_HDR + HOP_ERROR_MAX)

/*
 * The receiver's per-connection protocol state: what a frame may be
 * now. hop_rx_check() returns 0 when @f is acceptable in this state (and
 * moves it on), or -EPROTO with @why filled.
 */
enum hop_rx_phase { HOP_RX_HELLO, HOP_RX_STREAM, HOP_RX_CLOSED };
struct hop_rx {
	enum hop_rx_phase phase;
	uint64_t next; /* DATA ends must be above this (the committed offset) */
};
int hop_rx_check(struct hop_rx *rx, const struct hop_frame *f, char *why,
		 size_t why_len);

/* The writer name a stream is stored under in the receiver's ring. */
void hop_writer_name(const char *id, size_t id_len, char *name, size_t size);

/* The receiver's writer mark: the stream's epoch and committed offset. */
#define HOP_MARK_LEN 16
void hop_mark_put(void *mark, uint64_t epoch, uint64_t offset);
bool hop_mark_get(const void *mark, size_t len, uint64_t *epoch,
		  uint64_t *offset);

/* hop.c: the endpoints. */
struct bring_io;
struct source;
struct sink;
int hop_sink_add(struct bring_io *io, struct sink *s);
size_t hop_sink_window(const struct sink *s);
int hop_source_add(struct bring_io *io, struct source *src);
int hop_wake_fd(struct bring_io *io);
int hop_start(struct bring_io *io);
int hop_start_threads(struct bring_io *io);
/* io_uring mode: bring: sinks and bring-listen: sources run in the loop */
struct loop;
struct op;
void hop_tx_uring_start(struct loop *l, struct sink *s);
void hop_tx_uring_event(struct op *op, int res);
void hop_tx_uring_kick(struct sink *s);
void hop_tx_uring_step(struct sink *s);
void hop_rx_uring_start(struct loop *l, struct source *src);
void hop_rx_uring_stop(struct source *src);
void hop_rx_uring_listen_event(struct op *op, int res, unsigned int flags);
void hop_rx_uring_event(struct op *op, int res, unsigned int flags);
void hop_rx_uring_ringfd(struct source *src);
void hop_join(struct bring_io *io);
void hop_sink_free(struct sink *s);
void hop_source_free(struct source *src);

#endif
