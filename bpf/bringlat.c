// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * bringlat - summarize how long libbring writers wait for space, readers
 * wait for data and durable pushes wait for their flush, as log2
 * histograms per ring name, measured in the kernel
 * from the library's USDT probes (provider "bring").
 *
 * Usage: bringlat -p PID | -l PATH [-mPLTj] [-n RING] [-i SEC] [-c N]
 *        [--pin DIR] [interval [count]]
 *
 * In the libbpf-tools tradition (runqlat): a CO-RE skeleton, histograms
 * printed on Ctrl-C or every interval, JSON for machines. See bringlat(8)
 * and Documentation/tracing.rst.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <gelf.h>
#include <libelf.h>
#include <linux/capability.h>
#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bringlat.h"
#include "bringlat.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef NT_STAPSDT
#define NT_STAPSDT 3
#endif

#define BTF_VMLINUX "/sys/kernel/btf/vmlinux"
#define UPROBE_PMU "/sys/bus/event_source/devices/uprobe/type"
#define BPFFS_DEFAULT "/sys/fs/bpf"
#define PIN_NAME "hists"
#define MAX_TARGETS 64

/*
 * The probes bringlat times. The last pair came with bring 0.4: an older
 * library has no durable waits to time, and is traced without them.
 */
#define NR_PROBES 6
#define NR_PROBES_REQUIRED 4
static const char *const probe_names[NR_PROBES] = {
	"write_wait_start",   "write_wait_end",	  "read_wait_start",
	"read_wait_end",      "durable_wait_start", "durable_wait_end",
};

static struct env {
	pid_t pid;
	const char *libs[MAX_TARGETS];
	int nr_libs;
	const char *ring;
	const char *pin_dir;
	double interval; /* seconds, 0: print once at the end */
	long count; /* intervals, 0: unlimited */
	bool msecs;
	bool per_process;
	bool per_reader;
	bool per_thread;
	bool timestamp;
	bool json;
	bool verbose;
} env;

/* Objects we attach to: a path (for libbpf) and how to show it. */
static struct target {
	char attach_path[PATH_MAX];
	char shown_path[PATH_MAX];
} targets[MAX_TARGETS];
static int nr_targets;

static struct bpf_link *links[MAX_TARGETS * NR_PROBES];
static int nr_links;

/* What --pin created, so that it can be undone at exit. */
static char pin_path[PATH_MAX];
static char *pin_made_dirs[32];
static int pin_nr_made;

static volatile sig_atomic_t exiting;

/* clang-format off */
static const char usage_text[] =
"Usage: bringlat -p PID | -l PATH [options] [interval [count]]\n"
"Summarize libbring wait times (writers waiting for space, readers waiting\n"
"for data, durable pushes waiting for their flush) as log2 histograms per\n"
"ring name, from the bring USDT probes.\n"
"\n"
"  -p, --pid PID          trace the bring probes of this process\n"
"  -l, --lib PATH         trace every process using PATH (libbring.so or a\n"
"                         statically linked program); may be repeated\n"
"  -i, --interval SECS    print (and clear) the histograms every SECS\n"
"  -c, --count N          stop after N intervals\n"
"  -m, --milliseconds     histograms in msecs (default usecs)\n"
"  -P, --pids             one histogram per process\n"
"  -L, --tids             one histogram per thread\n"
"  -R, --readers          reader waits: one histogram per reader name (a\n"
"                         bringcat sink is a reader: sink0, sink1, ...)\n"
"  -n, --ring NAME        only the ring called NAME\n"
"  -T, --timestamp        print a timestamp with each interval\n"
"  -j, --json             one JSON object per interval, on stdout\n"
"      --pin DIR          pin the histogram map as DIR/" PIN_NAME " in bpffs,\n"
"                         for bpftool map dump pinned DIR/" PIN_NAME "\n"
"  -v, --verbose          show libbpf's debug output\n"
"  -h, --help             this help\n"
"\n"
"Without -i, the histograms are printed when bringlat ends: on Ctrl-C,\n"
"SIGTERM, or when the process given with -p exits.\n"
"\n"
"Examples:\n"
"  bringlat -p 1234                  # one summary of pid 1234, on Ctrl-C\n"
"  bringlat -p 1234 -i 1 -c 10       # ten 1-second summaries\n"
"  bringlat -l /usr/local/lib/libbring.so.0 -mP   # every user, msecs, per pid\n"
"  bringlat -p 1234 -j -i 5          # JSON lines every 5 seconds\n"
"  bringlat -p 1234 --pin /sys/fs/bpf/bringlat    # then bpftool map dump\n";
/* clang-format on */

/* Every fatal error is one line on stderr and exit status 1. */
static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;

	fputs("bringlat: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void __attribute__((noreturn)) usage_error(const char *what)
{
	fprintf(stderr, "bringlat: %s (see bringlat --help)\n", what);
	exit(2);
}

static long parse_long(const char *s, const char *what, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		char buf[128];

		snprintf(buf, sizeof(buf), "invalid %s: '%s'", what, s);
		usage_error(buf);
	}
	return v;
}

static double parse_seconds(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 86400 * 365) {
		char buf[128];

		snprintf(buf, sizeof(buf), "invalid interval: '%s'", s);
		usage_error(buf);
	}
	return v;
}

enum { OPT_PIN = 256 };

static const struct option long_opts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "lib", required_argument, NULL, 'l' },
	{ "interval", required_argument, NULL, 'i' },
	{ "count", required_argument, NULL, 'c' },
	{ "milliseconds", no_argument, NULL, 'm' },
	{ "pids", no_argument, NULL, 'P' },
	{ "tids", no_argument, NULL, 'L' },
	{ "ring", required_argument, NULL, 'n' },
	{ "readers", no_argument, NULL, 'R' },
	{ "timestamp", no_argument, NULL, 'T' },
	{ "json", no_argument, NULL, 'j' },
	{ "pin", required_argument, NULL, OPT_PIN },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void parse_args(int argc, char **argv)
{
	int c;

	while ((c = getopt_long(argc, argv, "p:l:i:c:mPRLn:Tjvh", long_opts,
				NULL)) != -1) {
		switch (c) {
		case 'p':
			env.pid = parse_long(optarg, "pid", 1, INT_MAX);
			break;
		case 'l':
			if (env.nr_libs == MAX_TARGETS)
				usage_error("too many -l");
			env.libs[env.nr_libs++] = optarg;
			break;
		case 'i':
			env.interval = parse_seconds(optarg);
			break;
		case 'c':
			env.count = parse_long(optarg, "count", 1, LONG_MAX);
			break;
		case 'm':
			env.msecs = true;
			break;
		case 'P':
			env.per_process = true;
			break;
		case 'R':
			env.per_reader = true;
			break;
		case 'L':
			env.per_thread = true;
			break;
		case 'n':
			if (strlen(optarg) >= BRINGLAT_NAME_LEN)
				usage_error("ring name too long (31 bytes at "
					    "most)");
			env.ring = optarg;
			break;
		case 'T':
			env.timestamp = true;
			break;
		case 'j':
			env.json = true;
			break;
		case OPT_PIN:
			if (!*optarg || strlen(optarg) + sizeof(PIN_NAME) + 1 >=
						sizeof(pin_path))
				usage_error("invalid --pin directory");
			env.pin_dir = optarg;
			break;
		case 'v':
			env.verbose = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			fprintf(stderr, "%s", usage_text);
			exit(2);
		}
	}
	/* runqlat-style positional [interval [count]] */
	if (optind < argc)
		env.interval = parse_seconds(argv[optind++]);
	if (optind < argc)
		env.count = parse_long(argv[optind++], "count", 1, LONG_MAX);
	if (optind < argc)
		usage_error("unexpected argument");
	if (!env.pid && !env.nr_libs)
		usage_error("give -p PID or -l PATH");
	if (env.count && !env.interval)
		usage_error("-c needs an interval (-i)");
	if (env.per_process && env.per_thread)
		usage_error("-P and -L exclude each other");
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list args)
{
	if (!env.verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/*
 * Privileges and kernel support, checked before libbpf gets a chance to
 * fail in a less obvious way. Each failure is one line naming what is
 * missing.
 */
static bool has_cap(const struct __user_cap_data_struct *d, int cap)
{
	return d[cap / 32].effective & (1U << (cap % 32));
}

static void check_environment(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = {};

	if (syscall(SYS_capget, &hdr, data) == 0) {
		bool bpf = has_cap(data, CAP_BPF);
		bool perfmon = has_cap(data, CAP_PERFMON);
		bool admin = has_cap(data, CAP_SYS_ADMIN);

		if (!admin && !(bpf && perfmon)) {
			const char *missing =
				!bpf && !perfmon ? "CAP_BPF and CAP_PERFMON" :
				!bpf		 ? "CAP_BPF" :
						   "CAP_PERFMON";

			die("%s: missing %s (or CAP_SYS_ADMIN); run bringlat "
			    "as root",
			    geteuid() ? "not root" :
					"root without capabilities",
			    missing);
		}
	}
	if (access(BTF_VMLINUX, R_OK))
		die("kernel BTF not available: %s: %s (needs "
		    "CONFIG_DEBUG_INFO_BTF=y)",
		    BTF_VMLINUX, strerror(errno));
	if (access(UPROBE_PMU, R_OK))
		die("kernel has no uprobe support: %s: %s (needs "
		    "CONFIG_UPROBE_EVENTS=y)",
		    UPROBE_PMU, strerror(errno));
}

/* Number of bring USDT notes in an ELF file, or -errno. */
static int count_bring_probes(const char *path)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int fd, n = 0;
	Elf *elf;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF ||
	    elf_getshdrstrndx(elf, &shstrndx)) {
		if (elf)
			elf_end(elf);
		close(fd);
		return -ENOEXEC;
	}
	while ((scn = elf_nextscn(elf, scn))) {
		size_t off = 0, name_off, desc_off;
		const char *sname;
		GElf_Shdr shdr;
		Elf_Data *data;
		GElf_Nhdr nhdr;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE)
			continue;
		sname = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (!sname || strcmp(sname, ".note.stapsdt"))
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		while ((off = gelf_getnote(data, off, &nhdr, &name_off,
					   &desc_off)) > 0) {
			const char *desc = (const char *)data->d_buf + desc_off;
			size_t addrs =
				3 * (gelf_getclass(elf) == ELFCLASS32 ? 4 : 8);

			if (nhdr.n_type != NT_STAPSDT || nhdr.n_descsz <= addrs)
				continue;
			/* provider\0name\0args\0 after three addresses */
			if (nhdr.n_descsz - addrs > 6 &&
			    !memcmp(desc + addrs, "bring", 6))
				n++;
		}
	}
	elf_end(elf);
	close(fd);
	return n;
}

static void add_target(const char *attach_path, const char *shown_path)
{
	int i;

	for (i = 0; i < nr_targets; i++)
		if (!strcmp(targets[i].attach_path, attach_path))
			return;
	if (nr_targets == MAX_TARGETS)
		die("too many objects to attach to");
	snprintf(targets[nr_targets].attach_path, PATH_MAX, "%s", attach_path);
	snprintf(targets[nr_targets].shown_path, PATH_MAX, "%s", shown_path);
	nr_targets++;
}

static bool process_alive(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* comm may hold anything */
	if (!p || p[1] != ' ')
		return true;
	return p[2] != 'Z' && p[2] != 'X';
}

/* The files mapped by PID that carry bring probes (the lib or the exe). */
static void find_pid_targets(pid_t pid)
{
	char path[64], line[PATH_MAX + 256], root_path[PATH_MAX + 32];
	char prev[PATH_MAX + 256] = "";
	int found = 0, seen_deleted = 0;
	bool same_mntns;
	struct stat a, b;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
	same_mntns = !stat(path, &a) && !stat("/proc/self/ns/mnt", &b) &&
		     a.st_ino == b.st_ino && a.st_dev == b.st_dev;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		die("-p %d: %s", pid,
		    errno == ENOENT ? "no such process" : strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *file = strchr(line, '/');
		char *nl;

		if (!file)
			continue;
		nl = strchr(file, '\n');
		if (nl)
			*nl = '\0';
		if (strstr(file, " (deleted)")) {
			/* an object replaced on disk: did it have probes? */
			unsigned long start, end;

			if (sscanf(line, "%lx-%lx", &start, &end) == 2) {
				snprintf(root_path, sizeof(root_path),
					 "/proc/%d/map_files/%lx-%lx", pid,
					 start, end);
				if (count_bring_probes(root_path) > 0)
					seen_deleted = 1;
			}
			continue;
		}
		/* an object maps several segments, one line each */
		if (!strcmp(file, prev))
			continue;
		snprintf(prev, sizeof(prev), "%s", file);
		if (env.nr_libs) {
			/* -p with -l: only the given objects, in this pid */
			bool want = false;
			char real[PATH_MAX];
			int i;

			for (i = 0; i < env.nr_libs; i++)
				if (realpath(env.libs[i], real) &&
				    !strcmp(real, file))
					want = true;
			if (!want)
				continue;
		}
		/* through its root, unless it shares our mount namespace */
		if (same_mntns)
			snprintf(root_path, sizeof(root_path), "%s", file);
		else
			snprintf(root_path, sizeof(root_path),
				 "/proc/%d/root%s", pid, file);
		if (count_bring_probes(root_path) > 0) {
			int before = nr_targets;

			add_target(root_path, file);
			found += nr_targets > before;
		}
	}
	fclose(f);
	if (!found) {
		char comm[32] = "?";
		FILE *cf;

		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		cf = fopen(path, "re");
		if (cf) {
			if (fgets(comm, sizeof(comm), cf))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(cf);
		}
		die("-p %d (%s): %s", pid, comm,
		    seen_deleted ? "its bring library was replaced on disk "
				   "(deleted); restart the process" :
		    env.nr_libs ? "does not map the given -l object with bring "
				  "probes" :
				  "maps no object with bring USDT probes "
				  "(libbring built without <sys/sdt.h> or with "
				  "BRING_NO_PROBES, or not loaded yet)");
	}
}

static void find_lib_targets(void)
{
	int i, n;

	for (i = 0; i < env.nr_libs; i++) {
		char real[PATH_MAX];

		if (!realpath(env.libs[i], real))
			die("-l %s: %s", env.libs[i], strerror(errno));
		n = count_bring_probes(real);
		if (n < 0)
			die("-l %s: %s", env.libs[i],
			    n == -ENOEXEC ? "not an ELF file" : strerror(-n));
		if (n == 0)
			die("-l %s: no bring USDT probes in it (built without "
			    "<sys/sdt.h> or with BRING_NO_PROBES?)",
			    env.libs[i]);
		add_target(real, env.libs[i]);
	}
}

/* Attach probe @i of target @t; false when an optional one is missing. */
static bool attach_one(struct bpf_program *prog, int t, int i)
{
	struct bpf_link *link;
	int err;

	link = bpf_program__attach_usdt(prog, env.pid ? env.pid : -1,
				       targets[t].attach_path, "bring",
				       probe_names[i], NULL);
	if (link) {
		links[nr_links++] = link;
		return true;
	}
	err = -errno;
	if (i >= NR_PROBES_REQUIRED && err == -ENOENT)
		return false;
	die("cannot attach to bring:%s in %s: %s%s", probe_names[i],
	    targets[t].shown_path, strerror(-err),
	    env.verbose ? "" : " (-v shows libbpf's reason)");
	return false;
}

static void attach_all(struct bringlat_bpf *obj)
{
	struct bpf_program *progs[NR_PROBES] = {
		obj->progs.wwait_start, obj->progs.wwait_end,
		obj->progs.rwait_start, obj->progs.rwait_end,
		obj->progs.dwait_start, obj->progs.dwait_end,
	};
	int t, i;

	for (t = 0; t < nr_targets; t++) {
		for (i = 0; i < NR_PROBES; i++) {
			if (attach_one(progs[i], t, i))
				continue;
			/* Both of the pair, or neither. */
			if (i % 2)
				bpf_link__destroy(links[--nr_links]);
			if (env.verbose)
				fprintf(stderr,
					"bringlat: %s has no durable wait probes (bring < 0.4): not timed\n",
					targets[t].shown_path);
			break;
		}
	}
}

/* --pin: make sure DIR is on bpffs (mounting /sys/fs/bpf if needed). */
static void pin_prepare_dir(const char *dir)
{
	char probe[PATH_MAX], *slash;
	struct statfs sfs;
	struct stat st;
	size_t len;

	if (dir[0] != '/')
		die("--pin %s: give an absolute path (under %s)", dir,
		    BPFFS_DEFAULT);
	snprintf(probe, sizeof(probe), "%s", dir);
	len = strlen(probe);
	while (len > 1 && probe[len - 1] == '/')
		probe[--len] = '\0';
	/* the nearest existing ancestor tells the file system */
	while (stat(probe, &st)) {
		if (errno != ENOENT)
			die("--pin %s: %s: %s", dir, probe, strerror(errno));
		slash = strrchr(probe, '/');
		if (slash == probe)
			probe[1] = '\0';
		else
			*slash = '\0';
	}
	if (!S_ISDIR(st.st_mode))
		die("--pin %s: %s is not a directory", dir, probe);
	if (statfs(probe, &sfs))
		die("--pin %s: statfs %s: %s", dir, probe, strerror(errno));
	if (sfs.f_type != BPF_FS_MAGIC) {
		bool under_default =
			!strncmp(dir, BPFFS_DEFAULT, strlen(BPFFS_DEFAULT)) &&
			(dir[strlen(BPFFS_DEFAULT)] == '/' ||
			 dir[strlen(BPFFS_DEFAULT)] == '\0');

		if (!under_default)
			die("--pin %s: %s is not a bpf file system; pin under "
			    "%s, or mount one first: mount -t bpf bpf DIR",
			    dir, probe, BPFFS_DEFAULT);
		if (stat(BPFFS_DEFAULT, &st) || !S_ISDIR(st.st_mode))
			die("--pin %s: bpffs is not mounted and %s does not "
			    "exist to mount it on",
			    dir, BPFFS_DEFAULT);
		if (mount("bpf", BPFFS_DEFAULT, "bpf", 0, "mode=0700"))
			die("--pin %s: bpffs is not mounted on %s and mounting "
			    "it failed: %s%s",
			    dir, BPFFS_DEFAULT, strerror(errno),
			    errno == EPERM ? " (needs CAP_SYS_ADMIN in the "
					     "initial mount namespace)" :
					     "");
		if (!env.json)
			fprintf(stderr, "bringlat: mounted bpffs on %s\n",
				BPFFS_DEFAULT);
	}
	/* mkdir -p, remembering what to remove at exit */
	snprintf(probe, sizeof(probe), "%s", dir);
	for (slash = probe + 1;; slash++) {
		char c = *slash;

		if (c != '/' && c != '\0')
			continue;
		*slash = '\0';
		if (mkdir(probe, 0700) == 0) {
			if (pin_nr_made < (int)(sizeof(pin_made_dirs) /
						sizeof(pin_made_dirs[0])))
				pin_made_dirs[pin_nr_made++] = strdup(probe);
		} else if (errno != EEXIST) {
			die("--pin %s: mkdir %s: %s", dir, probe,
			    strerror(errno));
		}
		*slash = c;
		if (!c)
			break;
	}
}

static void pin_maps(struct bringlat_bpf *obj)
{
	int err;

	pin_prepare_dir(env.pin_dir);
	snprintf(pin_path, sizeof(pin_path), "%s/%s", env.pin_dir, PIN_NAME);
	if (access(pin_path, F_OK) == 0)
		die("--pin %s: %s already exists (another bringlat, or left "
		    "over: rm %s)",
		    env.pin_dir, pin_path, pin_path);
	err = bpf_map__pin(obj->maps.hists, pin_path);
	if (err) {
		pin_path[0] = '\0';
		die("--pin %s: cannot pin the histogram map: %s", env.pin_dir,
		    strerror(-err));
	}
}

static void unpin_maps(struct bringlat_bpf *obj)
{
	if (pin_path[0])
		bpf_map__unpin(obj->maps.hists, pin_path);
	while (pin_nr_made > 0) {
		char *d = pin_made_dirs[--pin_nr_made];

		rmdir(d);
		free(d);
	}
}

/* ---- reading and printing ------------------------------------------- */

struct entry {
	struct hist_key key;
	struct hist val;
};

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strncmp(x->key.ring, y->key.ring, BRINGLAT_NAME_LEN);

	if (c)
		return c;
	if (x->key.side != y->key.side)
		return x->key.side < y->key.side ? -1 : 1;
	if (x->key.pid != y->key.pid)
		return x->key.pid < y->key.pid ? -1 : 1;
	return strncmp(x->key.reader, y->key.reader, BRINGLAT_NAME_LEN);
}

/* Copy the histograms out, deleting them when clear is set. */
static int read_hists(int fd, bool clear, struct entry **out)
{
	struct hist_key keys[BRINGLAT_MAX_HISTS], next, *prev = NULL;
	struct entry *ents;
	int n = 0, i, k = 0;

	while (n < BRINGLAT_MAX_HISTS &&
	       !bpf_map_get_next_key(fd, prev, &next)) {
		keys[n] = next;
		prev = &keys[n++];
	}
	ents = calloc(n ? n : 1, sizeof(*ents));
	if (!ents)
		die("out of memory");
	for (i = 0; i < n; i++) {
		int err;

		ents[k].key = keys[i];
		if (clear) {
			err = bpf_map_lookup_and_delete_elem(fd, &keys[i],
							     &ents[k].val);
			if (err && (errno == EINVAL || errno == ENOTSUP ||
				    errno == EOPNOTSUPP)) {
				err = bpf_map_lookup_elem(fd, &keys[i],
							  &ents[k].val);
				bpf_map_delete_elem(fd, &keys[i]);
			}
		} else {
			err = bpf_map_lookup_elem(fd, &keys[i], &ents[k].val);
		}
		if (!err && ents[k].val.count)
			k++;
	}
	qsort(ents, k, sizeof(*ents), cmp_entry);
	*out = ents;
	return k;
}

static const char *side_name(enum bringlat_side side)
{
	switch (side) {
	case BRINGLAT_WRITER:
		return "writer";
	case BRINGLAT_READER:
		return "reader";
	default:
		return "durable";
	}
}

static void print_stars(unsigned long long val, unsigned long long val_max,
			int width)
{
	int num_stars, i;

	num_stars = (val < val_max ? val : val_max) * width / val_max;
	for (i = 0; i < num_stars; i++)
		putchar('*');
	for (; i < width; i++)
		putchar(' ');
	if (val > val_max)
		putchar('+');
}

/* The layout of libbpf-tools' print_log2_hist(), as runqlat prints it. */
static void print_log2_hist(const __u64 *vals, int nr, const char *unit)
{
	unsigned long long val_max = 0, low, high;
	int i, idx_max = -1;

	for (i = 0; i < nr; i++) {
		if (vals[i] > 0)
			idx_max = i;
		if (vals[i] > val_max)
			val_max = vals[i];
	}
	if (idx_max < 0)
		return;
	printf("%*s%-*s : count    distribution\n", 5, "", 19, unit);
	for (i = 0; i <= idx_max; i++) {
		low = (1ULL << (i + 1)) >> 1;
		high = (1ULL << (i + 1)) - 1;
		if (low == high)
			low -= 1;
		printf("%*llu -> %-*llu : %-8llu |", 10, low, 10, high,
		       (unsigned long long)vals[i]);
		print_stars(vals[i], val_max, 40);
		printf("|\n");
	}
}

static void fmt_duration(char *buf, size_t len, __u64 ns)
{
	if (ns >= 10000000000ULL)
		snprintf(buf, len, "%.3f s", ns / 1e9);
	else if (ns >= 1000000)
		snprintf(buf, len, "%.3f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.3f us", ns / 1e3);
}

static void print_text(const struct entry *e, int n)
{
	const char *unit = env.msecs ? "msecs" : "usecs";
	int i;

	if (env.timestamp) {
		char ts[32];
		time_t t = time(NULL);

		strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&t));
		printf("%-8s\n", ts);
	}
	if (!n) {
		printf("no bring waits\n\n");
		return;
	}
	for (i = 0; i < n; i++) {
		const struct hist *h = &e[i].val;
		char total[32], max[32], mean[32];

		fmt_duration(total, sizeof(total), h->total_ns);
		fmt_duration(max, sizeof(max), h->max_ns);
		fmt_duration(mean, sizeof(mean), h->total_ns / h->count);
		printf("ring = %.*s, %s", BRINGLAT_NAME_LEN, e[i].key.ring,
		       side_name(e[i].key.side));
		if (e[i].key.reader[0])
			printf(" %.*s", BRINGLAT_NAME_LEN, e[i].key.reader);
		if (env.per_process)
			printf(", pid = %u %.*s", e[i].key.pid,
			       BRINGLAT_COMM_LEN, h->comm);
		else if (env.per_thread)
			printf(", tid = %u %.*s", e[i].key.pid,
			       BRINGLAT_COMM_LEN, h->comm);
		printf("\nwaits = %llu, blocked = %s, avg = %s, max = %s, "
		       "errors = %llu\n",
		       (unsigned long long)h->count, total, mean, max,
		       (unsigned long long)h->errors);
		print_log2_hist(h->slots, BRINGLAT_MAX_SLOTS, unit);
		printf("\n");
	}
}

static void json_string(const char *s, size_t max)
{
	size_t i;

	putchar('"');
	for (i = 0; i < max && s[i]; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json(const struct entry *e, int n, double ts)
{
	int i, s;

	printf("{\"time\":%.6f,\"unit\":\"%s\",\"hists\":[", ts,
	       env.msecs ? "msecs" : "usecs");
	for (i = 0; i < n; i++) {
		const struct hist *h = &e[i].val;
		bool first = true;

		printf("%s{\"ring\":", i ? "," : "");
		json_string(e[i].key.ring, BRINGLAT_NAME_LEN);
		printf(",\"side\":\"%s\"", side_name(e[i].key.side));
		if (e[i].key.reader[0]) {
			printf(",\"reader\":");
			json_string(e[i].key.reader, BRINGLAT_NAME_LEN);
		}
		if (env.per_process || env.per_thread) {
			printf(",\"%s\":%u,\"comm\":",
			       env.per_process ? "pid" : "tid", e[i].key.pid);
			json_string(h->comm, BRINGLAT_COMM_LEN);
		}
		printf(",\"count\":%llu,\"total_ns\":%llu,\"max_ns\":%llu,"
		       "\"errors\":%llu,\"buckets\":[",
		       (unsigned long long)h->count,
		       (unsigned long long)h->total_ns,
		       (unsigned long long)h->max_ns,
		       (unsigned long long)h->errors);
		for (s = 0; s < BRINGLAT_MAX_SLOTS; s++) {
			unsigned long long low = s ? 1ULL << s : 0;
			unsigned long long high = (1ULL << (s + 1)) - 1;

			if (!h->slots[s])
				continue;
			printf("%s{\"low\":%llu,\"high\":%llu,\"count\":%llu}",
			       first ? "" : ",", low, high,
			       (unsigned long long)h->slots[s]);
			first = false;
		}
		printf("]}");
	}
	printf("]}\n");
}

static void report(int fd, bool clear)
{
	struct entry *ents;
	struct timeval tv;
	int n;

	gettimeofday(&tv, NULL);
	n = read_hists(fd, clear, &ents);
	if (env.json)
		print_json(ents, n, tv.tv_sec + tv.tv_usec / 1e6);
	else
		print_text(ents, n);
	fflush(stdout);
	free(ents);
}

static void sig_handler(int sig)
{
	exiting = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = sig_handler };
	struct bringlat_bpf *obj;
	FILE *banner;
	double next;
	long done = 0;
	bool gone = false;
	int err, fd, i;

	parse_args(argc, argv);
	libbpf_set_print(libbpf_print);
	check_environment();

	if (elf_version(EV_CURRENT) == EV_NONE)
		die("libelf is too old");
	if (env.pid)
		find_pid_targets(env.pid);
	else
		find_lib_targets();

	obj = bringlat_bpf__open();
	if (!obj)
		die("cannot open the BPF object: %s", strerror(errno));
	obj->rodata->targ_unit_ns = env.msecs ? 1000000 : 1000;
	obj->rodata->targ_per_process = env.per_process;
	obj->rodata->targ_per_reader = env.per_reader;
	obj->rodata->targ_per_thread = env.per_thread;
	if (env.ring) {
		obj->rodata->targ_filter_ring = 1;
		strncpy((char *)obj->rodata->targ_ring, env.ring,
			BRINGLAT_NAME_LEN - 1);
	}
	err = bringlat_bpf__load(obj);
	if (err)
		die("cannot load the BPF programs: %s%s", strerror(-err),
		    err == -EPERM ?
			    " (seccomp, lockdown or a LSM forbids bpf())" :
		    env.verbose ? "" :
				  " (-v shows the verifier log)");

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (env.pin_dir)
		pin_maps(obj);
	attach_all(obj);

	banner = env.json ? stderr : stdout;
	fprintf(banner, "Tracing bring waits");
	if (env.pid)
		fprintf(banner, " of pid %d", env.pid);
	for (i = 0; i < nr_targets; i++)
		fprintf(banner, "%s%s", i ? ", " : " in ",
			targets[i].shown_path);
	if (env.pin_dir)
		fprintf(banner, ", map pinned at %s", pin_path);
	fprintf(banner, "... Hit Ctrl-C to end.\n");
	if (!env.json)
		fputc('\n', banner);
	fflush(banner);

	fd = bpf_map__fd(obj->maps.hists);
	next = now_s() + env.interval;
	while (!exiting) {
		double left = env.interval ? next - now_s() : 0.2;
		struct timespec ts;

		if (left > 0.2)
			left = 0.2;
		if (left > 0) {
			ts.tv_sec = (time_t)left;
			ts.tv_nsec = (long)((left - ts.tv_sec) * 1e9);
			nanosleep(&ts, NULL);
		}
		if (env.pid && !process_alive(env.pid)) {
			gone = true;
			break;
		}
		if (env.interval && now_s() >= next) {
			report(fd, true);
			next += env.interval;
			if (env.count && ++done >= env.count)
				break;
		}
	}
	/* without -i: the whole run; with -i: the interval cut short */
	if (!env.interval || exiting || gone)
		report(fd, env.interval > 0);

	for (i = 0; i < nr_links; i++)
		bpf_link__destroy(links[i]);
	unpin_maps(obj);
	bringlat_bpf__destroy(obj);
	return 0;
}
