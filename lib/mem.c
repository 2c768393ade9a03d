// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * mem.c - map a ring: header pages, then the data area twice in a row.
 *
 *   map                 data = map + hdr      data + capacity
 *   |                   |                     |
 *   v                   v                     v
 *   +-------------------+---------------------+---------------------+
 *   | struct bring_hdr  | data [0, capacity)  | the same pages again|
 *   +-------------------+---------------------+---------------------+
 *     fd offset 0         fd offset hdr         fd offset hdr (mirror)
 *
 * Because the data pages repeat, a record that starts near the end of the
 * data area simply runs on into the mirror: records never wrap, so there
 * are no padding records, a message of up to capacity - 16 bytes always
 * fits once readers drain, and readers and io_uring get one contiguous
 * pointer for every message or batch.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

int ring_map_fd(struct bring *r, int fd, uint64_t capacity)
{
	size_t len = BRING_HDR_SIZE + 2 * capacity;
	uint8_t *base, *p;
	int err;

	/* Reserve the whole range first so the two data maps are adjacent. */
	base = mmap(NULL, len, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return -errno;
	p = mmap(base, BRING_HDR_SIZE + capacity, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED)
		goto err;
	p = mmap(base + BRING_HDR_SIZE + capacity, capacity,
		 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
		 BRING_HDR_SIZE);
	if (p == MAP_FAILED)
		goto err;

	r->map = base;
	r->map_len = len;
	r->hdr = (struct bring_hdr *)base;
	r->data = base + BRING_HDR_SIZE;
	r->capacity = capacity;
	r->mask = capacity - 1;
	return 0;
err:
	err = -errno;
	munmap(base, len);
	return err;
}

int ring_map_memfd(struct bring *r, const char *name, uint64_t capacity)
{
	char memfd_name[64];
	int fd, err;

	snprintf(memfd_name, sizeof(memfd_name), "bring:%s", name);
	fd = memfd_create(memfd_name, MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, BRING_HDR_SIZE + capacity) < 0) {
		err = -errno;
		goto out;
	}
	err = ring_map_fd(r, fd, capacity);
out:
	/* The mappings hold the memory; the descriptor is not needed. */
	close(fd);
	return err;
}

void ring_unmap(struct bring *r)
{
	if (r->map)
		munmap(r->map, r->map_len);
	r->map = NULL;
}
