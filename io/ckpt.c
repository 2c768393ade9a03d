// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * Checkpoints: where a tail: or file: source is, committed with its
 * records (BRING_IO_CHECKPOINT, a file ring), and how long a file: sink's
 * output was at its last shift.
 *
 * A source opens a named writer of the ring, called after its URI, and
 * commits every record with a mark (struct ckpt_mark): the identity of
 * the file it reads (device, inode, and a hash of its first bytes, which
 * catches an inode number reused by another file) and the offset just
 * past the last byte that went into a committed record. The library
 * keeps that mark exactly in step with the records (lib/mark.c), so a
 * restarted source resumes at the first byte the ring does not hold.
 *
 * A file: sink stores its output file's length as its reader mark, in
 * the same cursor update as the shift; at start it cuts the output back
 * to that length: what lies beyond was written and never shifted, and
 * is about to be written again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

#define CKPT_MAGIC 0x31435242U /* "BRC1" */
#define SINK_MAGIC 0x31535242U /* "BRS1" */

static bool quiet(const struct bring_io *io)
{
	return io->o.flags & BRING_IO_QUIET;
}

uint64_t io_fnv64(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n--)
		h = (h ^ *s++) * 0x100000001b3ULL;
	return h;
}

/* ------------------------------------------------------------------ */
/* Sources.                                                           */

/*
 * The writer's name: "src:" and the URI when it fits BRING_NAME_MAX,
 * else "src:" and a hash of the URI.
 */
static void writer_name(const char *uri, char *buf, size_t size)
{
	if (strlen(uri) + 4 < size)
		snprintf(buf, size, "src:%s", uri);
	else
		snprintf(buf, size, "src:%016llx",
			 (unsigned long long)io_fnv64(FNV64_INIT, uri,
						   strlen(uri)));
}

/* Does this source checkpoint? */
static bool ckpt_wanted(const struct source *src)
{
	return (src->io->o.flags & BRING_IO_CHECKPOINT) &&
	       (src->ep.kind == EP_TAIL || src->ep.kind == EP_FILE);
}

int ckpt_open(struct source *src)
{
	char name[BRING_NAME_MAX];
	int n;

	if (!ckpt_wanted(src))
		return 0;
	writer_name(src->ep.uri, name, sizeof(name));
	src->ck = bring_writer_open(src->io->r, name, NULL);
	if (!src->ck)
		return -errno;
	memset(&src->resume, 0, sizeof(src->resume));
	n = bring_writer_mark(src->ck, &src->resume, sizeof(src->resume));
	src->has_resume = (n == (int)sizeof(src->resume) ||
			   n == (int)CKPT_MARK_V3) &&
			  src->resume.magic == CKPT_MAGIC;
	if (n > 0 && !src->has_resume && !quiet(src->io))
		io_log("%s: checkpoint not understood: ignored\n",
		       src->ep.uri);
	return 0;
}

void ckpt_close(struct source *src)
{
	bring_writer_close(src->ck);
	src->ck = NULL;
}

/* Hash of the first @len bytes of @fd; false if it has fewer. */
static bool head_hash(int fd, uint32_t len, uint32_t *hash)
{
	char buf[CKPT_HEAD];

	if (len > sizeof(buf) || pread(fd, buf, len, 0) != (ssize_t)len)
		return false;
	*hash = (uint32_t)io_fnv64(FNV64_INIT, buf, len);
	return true;
}

/* The conn reads a new file from now on: its identity for the marks. */
void ckpt_file_opened(struct conn *c)
{
	struct stat st;

	c->ck_head_len = 0;
	c->ck_dev = c->ck_ino = 0;
	if (c->fd >= 0 && !fstat(c->fd, &st)) {
		c->ck_dev = st.st_dev;
		c->ck_ino = st.st_ino;
	}
}

/*
 * The mark for a record that ends at file offset @off, the parser in
 * state @at there (NULL: at a message's end).
 */
static void ckpt_build(struct conn *c, uint64_t off, const struct ckpt_at *at,
		       struct ckpt_mark *m)
{
	uint32_t want = off < CKPT_HEAD ? (uint32_t)off : CKPT_HEAD;

	/* The head grows until CKPT_HEAD bytes: bytes before @off stay. */
	if (want > c->ck_head_len &&
	    head_hash(c->fd, want, &c->ck_head_hash))
		c->ck_head_len = want;
	*m = (struct ckpt_mark){ .magic = CKPT_MAGIC,
				 .dev = c->ck_dev,
				 .ino = c->ck_ino,
				 .off = off,
				 .head_len = c->ck_head_len,
				 .head_hash = c->ck_head_hash };
	if (!at)
		return;
	m->flags = (at->discard ? CKPT_DISCARD : 0) |
		   (at->in_line ? CKPT_IN_LINE : 0);
	m->rest = at->rest;
	m->skip = at->skip;
}

/* The file offset the conn has read to (the reads use the fd's offset). */
static uint64_t read_off(const struct conn *c)
{
	off_t pos = lseek(c->fd, 0, SEEK_CUR);

	return pos < 0 ? 0 : (uint64_t)pos;
}

/*
 * Commit a reservation of a checkpointing conn; @rest bytes read are not
 * in it (kept for the next record).
 */
int ckpt_commit(struct conn *c, struct bring_resv *resv, size_t len,
		size_t rest)
{
	struct ckpt_mark m;

	ckpt_build(c, read_off(c) - rest, NULL, &m);
	return bring_writer_commit(c->src->ck, resv, len, &m, sizeof(m));
}

/*
 * Push staged messages one by one, each with the mark of where it ends:
 * @at[i].end bytes of staging are consumed after message i, and the rest
 * of @at[i] is the parser's state then (a piece of an oversize message
 * ends inside it: a restart goes on with the next piece). Returns how
 * many went in, or the error of the first push.
 */
int ckpt_push(struct conn *c, const struct bring_msg *msgs,
	      const struct ckpt_at *at, int n, int timeout_ms)
{
	uint64_t base = read_off(c) - c->len;
	struct ckpt_mark m;
	int i, err;

	for (i = 0; i < n; i++) {
		ckpt_build(c, base + at[i].end, &at[i], &m);
		err = bring_writer_push(c->src->ck, msgs[i].data, msgs[i].len,
					&m, sizeof(m), i ? 0 : timeout_ms);
		if (err)
			return i ? i : err;
	}
	return n;
}

/* Has the file at @fd the device and inode of mark @m? */
static bool same_inode(int fd, const struct ckpt_mark *m)
{
	struct stat st;

	return !fstat(fd, &st) && (uint64_t)st.st_dev == m->dev &&
	       (uint64_t)st.st_ino == m->ino;
}

/* Is the file at @fd the one of mark @m (its first bytes too)? */
static bool same_file(int fd, const struct ckpt_mark *m)
{
	uint32_t hash;

	if (!same_inode(fd, m))
		return false;
	return !m->head_len ||
	       (head_hash(fd, m->head_len, &hash) && hash == m->head_hash);
}

/*
 * Resume conn @c (its fd open on the file at the path) where mark @m
 * says: 1 when it is the same file and long enough (the offset is set),
 * 0 when it is another file (the caller decides), -errno.
 */
static int resume_at(struct conn *c, const struct ckpt_mark *m)
{
	struct stat st;

	if (!same_file(c->fd, m) || fstat(c->fd, &st))
		return 0;
	if ((uint64_t)st.st_size < m->off)
		return 0;
	if (lseek(c->fd, (off_t)m->off, SEEK_SET) < 0)
		return -errno;
	/* Inside an oversize message: its next piece, as if never stopped. */
	c->discard = m->flags & CKPT_DISCARD;
	c->in_line = m->flags & CKPT_IN_LINE;
	c->rest = (size_t)m->rest;
	c->skip = m->skip;
	return 1;
}

/* file: at start: resume, or say why not and read from the start. */
int ckpt_resume_file(struct conn *c)
{
	struct source *src = c->src;
	int ret;

	ckpt_file_opened(c);
	if (!src->has_resume)
		return 0;
	ret = resume_at(c, &src->resume);
	if (ret)
		return ret < 0 ? ret : 0;
	if (!quiet(src->io))
		io_log("%s: not the file of the checkpoint (replaced or "
		       "truncated since): reading it from the start\n",
		       src->ep.uri);
	return 0;
}

/* ------------------------------------------------------------------ */
/* tail: after a restart: the checkpointed file, wherever it went.    */

/*
 * Look in the directory for the file of the mark (a rotation while we
 * were down renamed it): its fd, or -ENOENT. The files rotated after it
 * are found from it when it is done (tail_check()).
 */
static int scan_rotated(struct tail *t, const struct ckpt_mark *m)
{
	char path[4096];
	struct dirent *de;
	int fd = -ENOENT;
	DIR *d;

	d = opendir(t->dir);
	if (!d)
		return -errno;
	while (fd < 0 && (de = readdir(d))) {
		/* d_ino is the inode on the directory's own device. */
		if ((uint64_t)de->d_ino != m->ino || !strcmp(de->d_name, t->base))
			continue;
		snprintf(path, sizeof(path), "%s/%s", t->dir, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0 && !same_file(fd, m)) {
			close(fd);
			fd = -ENOENT;
		}
	}
	closedir(d);
	return fd;
}

/*
 * A rotation renaming it again between the scan and the open (or while
 * readdir() runs) hides it from one scan: look a few times.
 */
static int find_rotated(struct tail *t, const struct ckpt_mark *m)
{
	int fd = -ENOENT, tries;

	for (tries = 0; fd == -ENOENT && tries < 4; tries++)
		fd = scan_rotated(t, m);
	return fd;
}

/*
 * tail: with a checkpoint, at start. @c->fd is the file at the path, or
 * -1. Returns 1 when the position was set from the checkpoint, 0 when
 * the caller starts as without one (--tail-from), or -errno.
 */
int ckpt_resume_tail(struct conn *c)
{
	struct source *src = c->src;
	struct tail *t = src->tail;
	const struct ckpt_mark *m = &src->resume;
	int ret, fd;

	ckpt_file_opened(c);
	if (!src->has_resume)
		return 0;
	if (c->fd >= 0) {
		ret = resume_at(c, m);
		if (ret)
			return ret;
	}
	fd = find_rotated(t, m);
	if (fd >= 0) {
		/* Ours was rotated while we were down: its rest first. */
		if (c->fd >= 0) {
			tail_unwatch(t);
			close(c->fd);
		}
		c->fd = fd;
		ret = resume_at(c, m);
		if (ret <= 0)
			return ret < 0 ? ret : 0;
		if (!quiet(src->io))
			io_log("%s: rotated while stopped: reading the rest of "
			       "the checkpointed file first\n", src->ep.uri);
		/* The files rotated after it: tail_check() finds them. */
		ckpt_file_opened(c);
		return tail_watch(t, fd, src->ep.path) ?: 1;
	}
	if (!quiet(src->io) && c->fd >= 0 && same_inode(c->fd, m))
		io_log("%s: truncated or replaced since the checkpoint: "
		       "reading it from the start\n", src->ep.uri);
	else if (!quiet(src->io))
		io_log("%s: the checkpointed file is gone: reading %s from "
		       "the start\n", src->ep.uri, src->ep.path);
	if (c->fd >= 0 && lseek(c->fd, 0, SEEK_SET) < 0)
		return -errno;
	return 1;
}

/* ------------------------------------------------------------------ */
/* file: sinks.                                                       */

struct sink_mark {
	uint32_t magic;
	uint32_t pad;
	uint64_t len; /* the output's length after the last shift */
};

/*
 * At start: cut the output back to the length of the last shift (what
 * lies beyond is written again), or, shorter than that (rotated or
 * truncated by someone else), say so and append.
 */
int ckpt_sink_start(struct sink *s)
{
	struct sink_mark m;
	struct stat st;
	int n;

	if (!(s->io->o.flags & BRING_IO_CHECKPOINT) ||
	    s->ep.kind != EP_FILE || !s->regular)
		return 0;
	s->exact = true;
	if (fstat(s->fd, &st))
		return -errno;
	n = bring_reader_mark(s->rd, &m, sizeof(m));
	if (n != (int)sizeof(m) || m.magic != SINK_MAGIC) {
		/* The first run: what the output holds now is not ours. */
		m = (struct sink_mark){ .magic = SINK_MAGIC,
					.len = (uint64_t)st.st_size };
		return bring_reader_set_mark(s->rd, &m, sizeof(m));
	}
	if ((uint64_t)st.st_size > m.len) {
		if (ftruncate(s->fd, (off_t)m.len))
			return -errno;
		if (!quiet(s->io))
			io_log("%s: %llu bytes written after the last shift "
			       "cut off: they are written again\n",
			       s->ep.uri,
			       (unsigned long long)(st.st_size - m.len));
	} else if ((uint64_t)st.st_size < m.len && !quiet(s->io)) {
		io_log("%s: shorter (%lld bytes) than at the last shift "
		       "(%llu): rotated or truncated since; appending\n",
		       s->ep.uri, (long long)st.st_size,
		       (unsigned long long)m.len);
	}
	return 0;
}

/* For the selftests: SIGKILL after this many batches, before the shift. */
static long sink_kill_after(void)
{
	static long n = -1;

	if (n < 0) {
		const char *e = getenv("BRING_FAULT_SINK_KILL");

		n = e ? strtol(e, NULL, 10) : 0;
	}
	return n;
}

/*
 * The batch is written: shift it and store the output's length with the
 * shift. With BRING_IO_SYNC_SINKS the output is on stable storage first,
 * so that the mark never runs ahead of it after a power loss.
 */
int ckpt_sink_shift(struct sink *s)
{
	struct sink_mark m = { .magic = SINK_MAGIC };
	struct stat st;

	if (sink_kill_after() && ++s->batches >= sink_kill_after())
		raise(SIGKILL);
	if ((s->io->o.flags & BRING_IO_SYNC_SINKS) && fdatasync(s->fd))
		return -errno;
	if (fstat(s->fd, &st))
		return -errno;
	m.len = (uint64_t)st.st_size;
	return bring_reader_shift_mark(s->rd, &m, sizeof(m));
}
