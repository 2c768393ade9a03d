// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * tail:PATH - follow a file through appends, rotation and truncation.
 *
 * The source has one conn whose fd is the file it follows (-1 while there
 * is none). Both io modes read it to its end and then ask tail_check()
 * what next: read on (the file grew; or it shrank below the offset and is
 * read again from 0; or another file took the name, the old one is done
 * and the new one is read from 0), or wait for an inotify event. Events
 * only mean "look again": the decision comes from fstat() of the fd and
 * stat() of the path, so coalesced or overflowed events lose nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

/* The directory: the name coming and going, and the directory itself. */
#define TAIL_DIR_MASK                                          \
	(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
/* The file: appends and truncation, renames and unlinks of it. */
#define TAIL_FILE_MASK (IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF)

static bool tail_quiet(const struct source *src)
{
	return src->io->o.flags & BRING_IO_QUIET;
}

/* PATH's directory and last component; a trailing slash names a directory. */
static int tail_split(struct tail *t, const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		t->dir = strdup(".");
		t->base = path;
	} else {
		t->dir = slash == path ? strdup("/") :
					 strndup(path, slash - path);
		t->base = slash + 1;
	}
	if (!t->dir)
		return -ENOMEM;
	return *t->base ? 0 : -EISDIR;
}

/*
 * Open the regular file at @path for reading: the fd, or -errno. Opened
 * O_NONBLOCK so that a FIFO put there does not block the loop, then made
 * blocking again: io_uring returns -EAGAIN for reads of O_NONBLOCK files
 * instead of waiting for the page cache.
 */
static int tail_open_file(const char *path)
{
	struct stat st;
	int fd, err;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = 0;
	if (fstat(fd, &st) || fcntl(fd, F_SETFL, 0))
		err = -errno;
	else if (S_ISDIR(st.st_mode))
		err = -EISDIR;
	else if (!S_ISREG(st.st_mode))
		err = -EINVAL;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* Watch the inode @fd has open (its path may already name another). */
int tail_watch(struct tail *t, int fd, const char *path)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	t->wd_file = inotify_add_watch(t->ifd, proc, TAIL_FILE_MASK);
	if (t->wd_file < 0)
		t->wd_file = inotify_add_watch(t->ifd, path, TAIL_FILE_MASK);
	return t->wd_file < 0 ? -errno : 0;
}

void tail_unwatch(struct tail *t)
{
	if (t->wd_file >= 0)
		inotify_rm_watch(t->ifd, t->wd_file);
	t->wd_file = -1;
}

/*
 * Start at the end. With lines, a line that is being written at that
 * moment began before us: skip to its newline rather than ship its tail.
 */
static int tail_seek_end(struct conn *c)
{
	off_t end = lseek(c->fd, 0, SEEK_END);
	char last;

	if (end < 0)
		return -errno;
	if (end > 0 && c->src->io->o.framing == BRING_IO_LINES &&
	    pread(c->fd, &last, 1, end - 1) == 1 && last != '\n')
		c->discard = true;
	return 0;
}

/**
 * tail_open() - set up a tail:PATH source when it is added
 * @src: the source, its endpoint parsed (EP_TAIL).
 *
 * Watches PATH's directory, then opens the file: at its end, or its
 * start with BRING_IO_TAIL_FROM_START. A file that does not exist yet is
 * waited for (and read from its start when it appears); a directory that
 * does not exist is an error.
 *
 * Return: 0 or a negative errno (-ENOENT: no such directory; -EISDIR;
 * -EINVAL: not a regular file; -EACCES...). tail_free() cleans up.
 */
int tail_open(struct source *src)
{
	struct bring_io *io = src->io;
	struct tail *t;
	struct conn *c;
	int fd, err;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	src->tail = t;
	t->ifd = t->wd_dir = t->wd_file = -1;
	t->in_op = (struct op){ .type = OP_NOTIFY, .obj = src };
	err = tail_split(t, src->ep.path);
	if (err)
		return err;
	/* Non-blocking: io_uring polls it; a blocking one goes to io-wq. */
	t->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (t->ifd < 0)
		return -errno;
	/* The directory first: a file created after the open is seen. */
	t->wd_dir = inotify_add_watch(t->ifd, t->dir, TAIL_DIR_MASK);
	if (t->wd_dir < 0)
		return -errno;
	fd = tail_open_file(src->ep.path);
	if (fd < 0 && fd != -ENOENT)
		return fd;
	if (fd >= 0) {
		err = tail_watch(t, fd, src->ep.path);
		if (err) {
			close(fd);
			return err;
		}
	}
	c = source_add_conn(src, fd);
	if (!c) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	/* A checkpoint says where to start; --tail-from only without. */
	err = src->ck ? ckpt_resume_tail(c) : 0;
	if (err < 0)
		return err;
	if (err) {
		c->tail_eof = c->fd < 0;
		return 0;
	}
	if (fd < 0) {
		c->tail_eof = true; /* nothing to read: check, then wait */
		if (!tail_quiet(src))
			io_log("%s: waiting for the file to appear\n",
			       src->ep.uri);
		return 0;
	}
	if (!(io->o.flags & BRING_IO_TAIL_FROM_START))
		return tail_seek_end(c);
	return 0;
}

/**
 * tail_free() - close the inotify fd and free what tail_open() made
 * @src: any source; nothing happens when it is not a tail.
 */
void tail_free(struct source *src)
{
	struct tail *t = src->tail;

	if (!t)
		return;
	if (t->ifd >= 0)
		close(t->ifd);
	free(t->dir);
	free(t);
	src->tail = NULL;
}

/*
 * The file is done (rotated away or truncated): what is staged goes in,
 * a partial last line as a message of its own. 0, -EAGAIN or -EPIPE.
 */
static int tail_flush(struct conn *c, int timeout_ms)
{
	int ret = conn_push(c, true, timeout_ms);

	if (ret)
		return ret;
	c->discard = false;
	c->skip = 0;
	return 0;
}

/* The number N of "BASE.N", or 0. */
static unsigned long rotation_number(const struct tail *t, const char *name)
{
	size_t n = strlen(t->base);
	char *end;
	unsigned long k;

	if (strncmp(name, t->base, n) || name[n] != '.' || !name[n + 1])
		return 0;
	k = strtoul(name + n + 1, &end, 10);
	return *end ? 0 : k;
}

/* Is BASE.@k the file @st (1), another file (0), or no file (-1)? */
static int name_is(const struct tail *t, unsigned long k, const struct stat *st)
{
	char path[4096];
	struct stat now;

	snprintf(path, sizeof(path), "%s/%s.%lu", t->dir, t->base, k);
	if (stat(path, &now))
		return -1;
	return now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

static bool rotated_as(const struct tail *t, unsigned long k,
		       const struct stat *st)
{
	return name_is(t, k, st) == 1;
}

#define TAIL_PROBE_GAPS 4 /* names missing in a row end the probe */

/*
 * N when the file @st is BASE.N now, asked name by name from BASE.1 up.
 * A rotation renames the highest number first and moves each file one
 * up, so a probe going up meets a file that moves during it; the name a
 * rotation has just vacated is a gap of one. A readdir() scan can miss
 * a file renamed while it runs (the new name lands where the scan has
 * been, the old one goes before it gets there), and then the files
 * between ours and the path would be skipped.
 */
static unsigned long rotation_probe(const struct tail *t, const struct stat *st)
{
	unsigned long k, missing = 0;
	int is;

	for (k = 1; missing < TAIL_PROBE_GAPS; k++) {
		is = name_is(t, k, st);
		if (is == 1)
			return k;
		missing = is < 0 ? missing + 1 : 0;
	}
	return 0;
}

/*
 * N when the file @st is BASE.N now; 0 when it is none of them. The
 * probe first; the directory scan finds numbers past a longer gap.
 */
static unsigned long rotation_of(const struct tail *t, const struct stat *st)
{
	unsigned long k = rotation_probe(t, st);
	struct dirent *de;
	DIR *d;

	if (k)
		return k;
	d = opendir(t->dir);
	if (!d)
		return 0;
	while (!k && (de = readdir(d))) {
		if (de->d_ino != st->st_ino)
			continue;
		k = rotation_number(t, de->d_name);
		if (k && !rotated_as(t, k, st))
			k = 0;
	}
	closedir(d);
	return k;
}

/*
 * Was @fd rotated after the file @ours, as in logrotate's numbering (the
 * highest number the oldest)? Not when it is the file read before ours,
 * nor when it was last written before ours was (numbered oldest first,
 * as app.log.0, app.log.1...). Equal times count as after.
 */
static bool after(const struct tail *t, int fd, const struct stat *ours)
{
	struct stat st;

	if (fstat(fd, &st))
		return false;
	if (st.st_dev == t->prev_dev && st.st_ino == t->prev_ino)
		return false;
	return st.st_mtim.tv_sec > ours->st_mtim.tv_sec ||
	       (st.st_mtim.tv_sec == ours->st_mtim.tv_sec &&
		st.st_mtim.tv_nsec >= ours->st_mtim.tv_nsec);
}

#define TAIL_NEXT_TRIES 100 /* 1 ms apart: a rotation in progress */

/*
 * The followed file @fd is done (another file has the path): open the
 * file rotated right after it. When it is BASE.K now, that is BASE.K-1
 * (the path for K = 1): rotated twice before we looked, the path names a
 * later one. Rotations rename the highest number first, so the file
 * after ours moves only after ours has: ours still BASE.K after the open
 * means the open got the right file; otherwise look again. Returns the
 * fd, or a negative errno: open the path (ours is not among BASE.N, or
 * the path is missing for now).
 */
static int tail_open_next(struct source *src, int fd)
{
	struct tail *t = src->tail;
	char path[4096];
	struct stat ours;
	unsigned long k;
	int tries, next;

	if (fstat(fd, &ours))
		return -errno;
	for (tries = 0; tries < TAIL_NEXT_TRIES; tries++) {
		k = rotation_of(t, &ours);
		if (!k)
			return -ENOENT;
		if (k == 1)
			snprintf(path, sizeof(path), "%s", src->ep.path);
		else
			snprintf(path, sizeof(path), "%s/%s.%lu", t->dir,
				 t->base, k - 1);
		next = tail_open_file(path);
		/* Moved meanwhile, or BASE.K-1 not there yet: a rotation. */
		if (!rotated_as(t, k, &ours) || (next < 0 && k > 1)) {
			if (next >= 0)
				close(next);
			usleep(1000);
			continue;
		}
		if (next < 0 || k == 1)
			return next;
		if (!after(t, next, &ours)) {
			close(next);
			return -ENOENT; /* numbered oldest first: the path */
		}
		if (!tail_quiet(src))
			io_log("%s: rotated again since: reading %s first\n",
			       src->ep.uri, path);
		return next;
	}
	return -ENOENT;
}

/*
 * Read @fd from its start, or, when it is negative, what is at the path
 * now: TAIL_READ or TAIL_WAIT.
 */
static int tail_reopen(struct conn *c, int fd)
{
	struct source *src = c->src;
	struct tail *t = src->tail;
	const char *path = src->ep.path;
	int err;

	if (fd < 0)
		fd = tail_open_file(path);
	err = fd < 0 ? fd : tail_watch(t, fd, path);
	if (err) {
		if (fd >= 0)
			close(fd);
		/* Logged once, not at every event until it changes. */
		if (err != -ENOENT && err != t->last_err && !tail_quiet(src))
			io_log("%s: %s; waiting for another file\n",
			       src->ep.uri,
			       err == -EINVAL ? "not a regular file" :
						strerror(-err));
		t->last_err = err;
		return TAIL_WAIT;
	}
	t->last_err = 0;
	c->fd = fd;
	ckpt_file_opened(c);
	return TAIL_READ;
}

/**
 * tail_check() - what a tail conn does at the end of its file
 * @c:          the conn, read to its end (or with no file yet).
 * @timeout_ms: for the push of a partial last line (0 in the loop).
 *
 * The file grew: read on. It is shorter than the offset read to: it was
 * truncated (copytruncate); push a partial last line, count, and read it
 * again from 0. Another file has its name: this one is done (its partial
 * last line goes in as a message), the new one is read from 0. Otherwise
 * wait for an event; the renamed or deleted file stays followed until a
 * new file appears, since its writer may still be writing to it. The
 * file read after a rotated one is the one rotated right after it
 * (tail_open_next()): the path's only when it was rotated once.
 *
 * Return: TAIL_READ, TAIL_WAIT, -EAGAIN (no space for the partial line:
 * call again when there is) or another negative errno.
 */
int tail_check(struct conn *c, int timeout_ms)
{
	struct source *src = c->src;
	struct bring_io *io = src->io;
	struct stat fst, pst;
	int ret, next = -1;
	bool named;
	off_t pos;

	if (c->fd >= 0) {
		/*
		 * The path first: once it names a new file, what the writer
		 * wrote to the old one before is in the fstat() that follows.
		 */
		named = !stat(src->ep.path, &pst);
		pos = lseek(c->fd, 0, SEEK_CUR);
		if (pos < 0 || fstat(c->fd, &fst))
			return -errno;
		if (fst.st_size > pos)
			return TAIL_READ;
		if (fst.st_size < pos) {
			ret = tail_flush(c, timeout_ms);
			if (ret)
				return ret;
			if (lseek(c->fd, 0, SEEK_SET) < 0)
				return -errno;
			ckpt_file_opened(c); /* its first bytes changed */
			io_stat_add(io, truncations, 1);
			if (!tail_quiet(src))
				io_log("%s: truncated (%lld bytes, read %lld): reading it again from the start\n",
				       src->ep.uri, (long long)fst.st_size,
				       (long long)pos);
			return TAIL_READ;
		}
		if (!named ||
		    (pst.st_dev == fst.st_dev && pst.st_ino == fst.st_ino))
			return TAIL_WAIT;
		ret = tail_flush(c, timeout_ms);
		if (ret)
			return ret;
		next = tail_open_next(src, c->fd);
		src->tail->prev_dev = fst.st_dev;
		src->tail->prev_ino = fst.st_ino;
		tail_unwatch(src->tail);
		close(c->fd);
		c->fd = -1;
		io_stat_add(io, rotations, 1);
		if (!tail_quiet(src))
			io_log("%s: rotated: reading the new file from the start\n",
			       src->ep.uri);
	}
	return tail_reopen(c, next);
}

/**
 * tail_events() - look through inotify events read into the source's buffer
 * @src: a tail source.
 * @len: bytes read.
 *
 * Return: true when one may concern the followed file or its name (then
 * tail_check() decides what changed), false for other names in the
 * directory.
 */
bool tail_events(struct source *src, size_t len)
{
	struct tail *t = src->tail;
	const struct inotify_event *ev;
	bool wake = false;
	size_t off;

	for (off = 0; off + sizeof(*ev) <= len; off += sizeof(*ev) + ev->len) {
		ev = (const struct inotify_event *)(t->evbuf + off);
		if (ev->mask & IN_Q_OVERFLOW) {
			wake = true;
		} else if (ev->wd >= 0 && ev->wd == t->wd_file) {
			wake = true;
			if (ev->mask & IN_IGNORED)
				t->wd_file = -1;
		} else if (ev->wd >= 0 && ev->wd == t->wd_dir) {
			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
				if (!tail_quiet(src))
					io_log("%s: directory %s moved or removed: a new file at the path will not be seen\n",
					       src->ep.uri, t->dir);
			}
			if (ev->mask & IN_IGNORED)
				t->wd_dir = -1;
			if (ev->len && !strcmp(ev->name, t->base))
				wake = true;
		}
	}
	return wake;
}
