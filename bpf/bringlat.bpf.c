// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * bringlat.bpf.c - time the waits of libbring in the kernel.
 *
 * The library fires write_wait_start/end around each real block of a
 * writer (waiting for space), read_wait_start/end around each real block
 * of a reader (waiting for data) and durable_wait_start/end around a
 * durable push's wait for its flush. A start stamps the thread; the matching
 * end turns the delta into a log2 bucket of the (ring name, side[, pid])
 * histogram. User space (bringlat.c) prints and clears "hists".
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>
#include "bringlat.h"

/* Set by bringlat.c before load (.rodata). */
const volatile __u64 targ_unit_ns = 1000; /* usecs; 1000000 with -m */
const volatile int targ_per_process = 0; /* -P: key by tgid */
const volatile int targ_per_thread = 0; /* -L: key by tid */
const volatile int targ_filter_ring = 0; /* -n NAME given */
const volatile int targ_per_reader = 0; /* -R: key by reader name */
const volatile char targ_ring[BRINGLAT_NAME_LEN] = {};

/* LRU: a thread that dies in a wait must not leak its entry for good. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BRINGLAT_MAX_WAITS);
	__type(key, struct wait_key);
	__type(value, struct wait_start);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BRINGLAT_MAX_HISTS);
	__type(key, struct hist_key);
	__type(value, struct hist);
} hists SEC(".maps");

/* A zeroed value to create histograms from (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist);
} zero_hist SEC(".maps");

static __always_inline int log2_u32(__u32 v)
{
	int r, shift;

	r = (v > 0xFFFF) << 4;
	v >>= r;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline int log2_u64(__u64 v)
{
	__u32 hi = v >> 32;

	return hi ? log2_u32(hi) + 32 : log2_u32(v);
}

static __always_inline int wait_start(__u32 side, __u64 wait_id)
{
	struct wait_key wk = {
		.pid_tgid = bpf_get_current_pid_tgid(),
		.id = wait_id,
	};
	struct wait_start ws = {
		.ts = bpf_ktime_get_ns(),
		.side = side,
	};

	bpf_map_update_elem(&starts, &wk, &ws, BPF_ANY);
	return 0;
}

static __always_inline int ring_matches(const char *name)
{
	int i;

	if (!targ_filter_ring)
		return 1;
	for (i = 0; i < BRINGLAT_NAME_LEN; i++) {
		if (name[i] != targ_ring[i])
			return 0;
		if (!name[i])
			return 1;
	}
	return 1;
}

static __always_inline int wait_end(__u32 side, const char *ring, long err,
				    __u64 wait_id, const char *reader)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct wait_key wk = { .pid_tgid = id, .id = wait_id };
	struct hist_key key;
	struct wait_start *ws;
	struct hist *h;
	__u64 delta, slot;
	__u32 zero = 0;

	ws = bpf_map_lookup_elem(&starts, &wk);
	if (!ws)
		return 0; /* attached in the middle of this wait */
	if (ws->side != side) {
		bpf_map_delete_elem(&starts, &wk);
		return 0;
	}
	delta = bpf_ktime_get_ns() - ws->ts;
	bpf_map_delete_elem(&starts, &wk);

	__builtin_memset(&key, 0, sizeof(key));
	if (bpf_probe_read_user_str(key.ring, sizeof(key.ring), ring) < 0)
		__builtin_memcpy(key.ring, "?", 2);
	if (!ring_matches(key.ring))
		return 0;
	key.side = side;
	if (targ_per_reader && reader &&
	    bpf_probe_read_user_str(key.reader, sizeof(key.reader), reader) < 0)
		key.reader[0] = '\0';
	if (targ_per_thread)
		key.pid = (__u32)id;
	else if (targ_per_process)
		key.pid = id >> 32;

	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		struct hist *z = bpf_map_lookup_elem(&zero_hist, &zero);

		if (!z)
			return 0;
		z->unit_ns = targ_unit_ns;
		if (targ_per_thread || targ_per_process)
			bpf_get_current_comm(z->comm, sizeof(z->comm));
		bpf_map_update_elem(&hists, &key, z, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h)
			return 0; /* map full */
	}

	slot = log2_u64(delta / targ_unit_ns);
	if (slot >= BRINGLAT_MAX_SLOTS)
		slot = BRINGLAT_MAX_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->total_ns, delta);
	if (err)
		__sync_fetch_and_add(&h->errors, 1);
	if (delta > h->max_ns)
		h->max_ns = delta; /* racy, good enough for a maximum */
	return 0;
}

/* The probes' arguments: see lib/probes.h. */
SEC("usdt")
int BPF_USDT(wwait_start, void *r, const char *ring, __u64 need, __u64 id)
{
	return wait_start(BRINGLAT_WRITER, id);
}

SEC("usdt")
int BPF_USDT(wwait_end, void *r, const char *ring, __u64 need, int err,
	     __u64 id)
{
	return wait_end(BRINGLAT_WRITER, ring, err, id, NULL);
}

SEC("usdt")
int BPF_USDT(rwait_start, void *r, const char *ring, __u64 id)
{
	return wait_start(BRINGLAT_READER, id);
}

SEC("usdt")
int BPF_USDT(rwait_end, void *r, const char *ring, int err, __u64 id,
	     const char *reader)
{
	return wait_end(BRINGLAT_READER, ring, err, id, reader);
}

/* A push waiting for its flush (BRING_DURABLE_ALWAYS), bring 0.4. */
SEC("usdt")
int BPF_USDT(dwait_start, void *r, const char *ring, __u64 id)
{
	return wait_start(BRINGLAT_DURABLE, id);
}

SEC("usdt")
int BPF_USDT(dwait_end, void *r, const char *ring, int err, __u64 id)
{
	return wait_end(BRINGLAT_DURABLE, ring, err, id, NULL);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
