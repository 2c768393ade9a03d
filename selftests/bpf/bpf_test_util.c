// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * bpf_test_util.c - see bpf_test_util.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bpf_test_util.h"

/* ---- where things are ------------------------------------------------- */

static char out_dir[PATH_MAX], src_dir[PATH_MAX];

const char *tu_out_dir(void)
{
	const char *e = getenv("BRING_OUT");
	char *p;
	ssize_t n;
	int i;

	if (out_dir[0])
		return out_dir;
	if (e && *e) {
		if (!realpath(e, out_dir))
			snprintf(out_dir, sizeof(out_dir), "%s", e);
		return out_dir;
	}
	/* <out>/selftests/bpf/<test> */
	n = readlink("/proc/self/exe", out_dir, sizeof(out_dir) - 1);
	if (n <= 0) {
		strcpy(out_dir, ".");
		return out_dir;
	}
	out_dir[n] = '\0';
	for (i = 0; i < 3; i++) {
		p = strrchr(out_dir, '/');
		if (p && p != out_dir)
			*p = '\0';
	}
	return out_dir;
}

const char *tu_src_dir(void)
{
	const char *e = getenv("BRING_SRC");
	struct stat st;
	char *p;

	if (src_dir[0])
		return src_dir;
	if (e && *e) {
		snprintf(src_dir, sizeof(src_dir), "%s", e);
		return src_dir;
	}
	/* make check runs the tests from the source tree */
	if (!stat("Documentation/tracing.rst", &st) ||
	    !stat("selftests/bpf/bring_blocker.c", &st)) {
		if (!getcwd(src_dir, sizeof(src_dir)))
			strcpy(src_dir, ".");
		return src_dir;
	}
	/* the Makefile compiles $(srctree)/selftests/bpf/bpf_test_util.c */
	snprintf(src_dir, sizeof(src_dir), "%s", __FILE__);
	p = strstr(src_dir, "/selftests/bpf/");
	if (p)
		*p = '\0';
	else
		strcpy(src_dir, ".");
	return src_dir;
}

static char path_bufs[8][PATH_MAX];
static int path_next;

static const char *join(const char *dir, const char *rel)
{
	char *b = path_bufs[path_next++ % 8];

	snprintf(b, PATH_MAX, "%s/%s", dir, rel);
	return b;
}

const char *tu_out_path(const char *rel)
{
	return join(tu_out_dir(), rel);
}

const char *tu_src_path(const char *rel)
{
	return join(tu_src_dir(), rel);
}

/* ---- skip reasons ------------------------------------------------------ */

static const char *kernel_skip_reason(void)
{
	if (geteuid() != 0)
		return "not root: attaching BPF to USDT probes needs CAP_BPF "
		       "and CAP_PERFMON";
	if (access("/sys/kernel/btf/vmlinux", R_OK))
		return "kernel has no BTF (/sys/kernel/btf/vmlinux)";
	if (access("/sys/bus/event_source/devices/uprobe/type", R_OK))
		return "kernel has no uprobe support (CONFIG_UPROBE_EVENTS)";
	return NULL;
}

const char *tu_blocker_skip_reason(void)
{
	if (access(tu_out_path("selftests/bpf/bring_blocker"), X_OK) ||
	    access(tu_out_path("selftests/bpf/bring_blocker_shared"), X_OK))
		return "bring_blocker not built (make selftests builds it)";
	return NULL;
}

const char *tu_bringlat_skip_reason(void)
{
	const char *r = kernel_skip_reason();

	if (r)
		return r;
	if (access(tu_out_path("bpf/bringlat"), X_OK))
		return "bringlat not built: the BPF toolchain is missing (see "
		       "the bpf: line of make)";
	return tu_blocker_skip_reason();
}

const char *tu_bpftrace_skip_reason(void)
{
	const char *r = kernel_skip_reason();

	if (r)
		return r;
	if (system("command -v bpftrace >/dev/null 2>&1"))
		return "bpftrace is not installed";
	if (!tu_ensure_tracefs())
		return "tracefs is not mounted and cannot be mounted on "
		       "/sys/kernel/tracing";
	return tu_blocker_skip_reason();
}

bool tu_ensure_tracefs(void)
{
	if (!access("/sys/kernel/tracing/uprobe_events", F_OK) ||
	    !access("/sys/kernel/debug/tracing/uprobe_events", F_OK))
		return true;
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) &&
	    errno != EBUSY)
		return false;
	return !access("/sys/kernel/tracing/uprobe_events", F_OK);
}

/* ---- child processes --------------------------------------------------- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int tu_spawn(struct tu_proc *p, char *const argv[], int flags)
{
	int in[2], out[2], err[2] = { -1, -1 };

	memset(p, 0, sizeof(*p));
	p->in = p->out = p->err = -1;
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -1;
	if (!(flags & TU_MERGE_STDERR) && pipe2(err, O_CLOEXEC))
		return -1;
	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0)
		return -1;
	if (p->pid == 0) {
		if (flags & TU_STDIN_NULL) {
			int fd = open("/dev/null", O_RDONLY);

			dup2(fd, 0);
		} else {
			dup2(in[0], 0);
		}
		dup2(out[1], 1);
		dup2((flags & TU_MERGE_STDERR) ? out[1] : err[1], 2);
		/* dies with the test, which the harness may kill */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((flags & TU_AS_NOBODY) && geteuid() == 0 &&
		    (setgroups(0, NULL) || setgid(65534) || setuid(65534))) {
			fprintf(stderr, "cannot become nobody: %s\n",
				strerror(errno));
			_exit(126);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (err[1] >= 0)
		close(err[1]);
	p->in = in[1];
	p->out = out[0];
	p->err = err[0];
	if (flags & TU_STDIN_NULL)
		tu_close_stdin(p);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int tu_spawn_sh(struct tu_proc *p, const char *cmd, const char *env, int flags)
{
	char *argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };

	if (env)
		putenv((char *)env); /* inherited by the child */
	return tu_spawn(p, argv, flags);
}

static void grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	*cap = need * 2 + 4096;
	*buf = realloc(*buf, *cap);
	if (!*buf)
		abort();
}

/* Read what is there from stdout/stderr, waiting up to ms; -1 at EOF. */
static int pump(struct tu_proc *p, int ms)
{
	struct pollfd fds[2];
	int nfds = 0, i;

	if (p->out >= 0)
		fds[nfds++] = (struct pollfd){ .fd = p->out, .events = POLLIN };
	if (p->err >= 0)
		fds[nfds++] = (struct pollfd){ .fd = p->err, .events = POLLIN };
	if (!nfds)
		return -1;
	if (poll(fds, nfds, ms) <= 0)
		return 0;
	for (i = 0; i < nfds; i++) {
		char tmp[4096];
		ssize_t n;

		if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(fds[i].fd, tmp, sizeof(tmp));
		if (n <= 0) {
			close(fds[i].fd);
			if (fds[i].fd == p->out)
				p->out = -1;
			else
				p->err = -1;
			continue;
		}
		if (fds[i].fd == p->out) {
			grow(&p->buf, &p->cap, p->len + n + 1);
			memcpy(p->buf + p->len, tmp, n);
			p->len += n;
			p->buf[p->len] = '\0';
		} else {
			grow(&p->ebuf, &p->ecap, p->elen + n + 1);
			memcpy(p->ebuf + p->elen, tmp, n);
			p->elen += n;
			p->ebuf[p->elen] = '\0';
		}
	}
	return 0;
}

const char *tu_read_line(struct tu_proc *p, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	static char line[8192];

	for (;;) {
		char *nl = p->buf ? memchr(p->buf + p->used, '\n',
					   p->len - p->used) :
				    NULL;

		if (nl) {
			size_t n = nl - (p->buf + p->used);

			if (n >= sizeof(line))
				n = sizeof(line) - 1;
			memcpy(line, p->buf + p->used, n);
			line[n] = '\0';
			p->used = nl + 1 - p->buf;
			return line;
		}
		if (p->out < 0) {
			/* EOF: a last line without newline */
			if (p->len > p->used) {
				size_t n = p->len - p->used;

				if (n >= sizeof(line))
					n = sizeof(line) - 1;
				memcpy(line, p->buf + p->used, n);
				line[n] = '\0';
				p->used = p->len;
				return line;
			}
			return NULL;
		}
		if (now_ms() >= end)
			return NULL;
		pump(p, (int)(end - now_ms()));
	}
}

const char *tu_wait_for(struct tu_proc *p, const char *prefix, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	const char *l;

	while ((l = tu_read_line(
			p, (int)(end - now_ms() > 0 ? end - now_ms() : 0))))
		if (!strncmp(l, prefix, strlen(prefix)))
			return l;
	return NULL;
}

bool tu_wait_stderr(struct tu_proc *p, const char *substr, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	while (!(p->ebuf && strstr(p->ebuf, substr))) {
		if (p->err < 0 || now_ms() >= end)
			return false;
		pump(p, (int)(end - now_ms()));
	}
	return true;
}

int tu_send(struct tu_proc *p, const char *line)
{
	size_t n = strlen(line);

	if (p->in < 0)
		return -1;
	if (write(p->in, line, n) != (ssize_t)n || write(p->in, "\n", 1) != 1)
		return -1;
	return 0;
}

void tu_close_stdin(struct tu_proc *p)
{
	if (p->in >= 0)
		close(p->in);
	p->in = -1;
}

int tu_finish(struct tu_proc *p, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	while ((p->out >= 0 || p->err >= 0) && now_ms() < end)
		pump(p, (int)(end - now_ms()));
	while (!p->reaped && now_ms() < end) {
		if (waitpid(p->pid, &p->status, WNOHANG) == p->pid)
			p->reaped = true;
		else
			usleep(10000);
	}
	if (!p->reaped)
		return -1;
	if (WIFEXITED(p->status))
		return WEXITSTATUS(p->status);
	return 128 + WTERMSIG(p->status);
}

void tu_cleanup(struct tu_proc *p)
{
	if (p->pid > 0 && !p->reaped) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &p->status, 0);
		p->reaped = true;
	}
	tu_close_stdin(p);
	if (p->out >= 0)
		close(p->out);
	if (p->err >= 0)
		close(p->err);
	p->out = p->err = -1;
	free(p->buf);
	free(p->ebuf);
	p->buf = p->ebuf = NULL;
	p->len = p->cap = p->used = p->elen = p->ecap = 0;
}

const char *tu_rest(struct tu_proc *p)
{
	return p->buf ? p->buf + p->used : "";
}

/* ---- the workload ------------------------------------------------------ */

int tu_blocker_start(struct tu_blocker *b, const char *exe, const char *args)
{
	char cmd[PATH_MAX * 2];
	char *argv[64];
	char *tok, *save;
	const char *l;
	int n = 0;

	memset(b, 0, sizeof(*b));
	snprintf(cmd, sizeof(cmd), "%s -g -H %s",
		 tu_out_path(exe[0] == '/' ? exe + 1 : exe), args ? args : "");
	if (exe[0] == '/')
		snprintf(cmd, sizeof(cmd), "%s -g -H %s", exe,
			 args ? args : "");
	for (tok = strtok_r(cmd, " ", &save); tok && n < 63;
	     tok = strtok_r(NULL, " ", &save))
		argv[n++] = strdup(tok);
	argv[n] = NULL;
	if (tu_spawn(&b->p, argv, 0))
		return -1;
	while (n > 0)
		free(argv[--n]);
	l = tu_wait_for(&b->p, "ready ", 10000);
	if (!l)
		return -1;
	b->pid = atoi(l + 6);
	return b->pid > 0 ? 0 : -1;
}

int tu_blocker_run(struct tu_blocker *b, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	const char *l;

	if (tu_send(&b->p, "go"))
		return -1;
	while ((l = tu_read_line(
			&b->p,
			(int)(end - now_ms() > 0 ? end - now_ms() : 0)))) {
		struct tu_ring_stats *s;

		if (!strcmp(l, "done"))
			return 0;
		if (!strncmp(l, "wait ", 5) && b->nr_timed < TU_MAX_TIMED) {
			struct tu_timed *t = &b->timed[b->nr_timed];

			if (sscanf(l,
				   "wait ring=%31s side=%7s us=%llu "
				   "min_us=%llu",
				   t->ring, t->side, &t->us, &t->min_us) == 4)
				b->nr_timed++;
			continue;
		}
		if (strncmp(l, "stats ", 6) || b->nr_st == 2)
			continue;
		s = &b->st[b->nr_st];
		if (sscanf(l,
			   "stats ring=%31s write_waits=%llu read_waits=%llu",
			   s->ring, &s->write_waits, &s->read_waits) == 3)
			b->nr_st++;
	}
	return -1;
}

int tu_blocker_end(struct tu_blocker *b)
{
	int rc;

	tu_send(&b->p, "bye");
	tu_close_stdin(&b->p);
	rc = tu_finish(&b->p, 10000);
	return rc;
}

const struct tu_ring_stats *tu_blocker_stats(const struct tu_blocker *b,
					     const char *ring)
{
	int i;

	for (i = 0; i < b->nr_st; i++)
		if (!strcmp(b->st[i].ring, ring))
			return &b->st[i];
	return NULL;
}

int tu_blocker_nr_timed(const struct tu_blocker *b, const char *ring,
			const char *side)
{
	int i, n = 0;

	for (i = 0; i < b->nr_timed; i++)
		n += !strcmp(b->timed[i].ring, ring) &&
		     !strcmp(b->timed[i].side, side);
	return n;
}

const char *tu_check_slots(const struct tu_blocker *b, const char *ring,
			   const char *side, const unsigned long long *slots,
			   int nr_slots, unsigned long long unit_us)
{
	static char why[2048];
	int lo[TU_MAX_TIMED], hi[TU_MAX_TIMED], n = 0;
	bool used[TU_MAX_TIMED] = { false };
	size_t off = 0;
	int i, s;

	if (nr_slots > TU_SLOTS)
		nr_slots = TU_SLOTS;
	for (i = 0; i < b->nr_timed; i++) {
		const struct tu_timed *t = &b->timed[i];
		unsigned long long low = t->min_us < t->us ? t->min_us : t->us;

		if (strcmp(t->ring, ring) || strcmp(t->side, side))
			continue;
		lo[n] = tu_slot_of(low / unit_us);
		hi[n] = tu_slot_of(t->us / unit_us);
		if (lo[n] >= nr_slots)
			lo[n] = nr_slots - 1;
		if (hi[n] >= nr_slots)
			hi[n] = nr_slots - 1;
		n++;
	}
	/*
	 * Match the traced counts to the waits' [lo, hi] slot ranges: slot
	 * by slot upwards, each count goes to the open wait whose range ends
	 * first (the greedy that finds a matching of intervals to points
	 * when there is one).
	 */
	for (s = 0; s < nr_slots; s++) {
		unsigned long long k;

		for (k = 0; k < slots[s]; k++) {
			int best = -1;

			for (i = 0; i < n; i++)
				if (!used[i] && lo[i] <= s && s <= hi[i] &&
				    (best < 0 || hi[i] < hi[best]))
					best = i;
			if (best < 0)
				goto differ;
			used[best] = true;
		}
		for (i = 0; i < n; i++)
			if (!used[i] && hi[i] <= s)
				goto differ;
	}
	for (i = 0; i < n; i++)
		if (!used[i])
			goto differ;
	return NULL;
differ:
	off += snprintf(
		why + off, sizeof(why) - off,
		"%s/%s: traced slots do not match the waits made; traced:",
		ring, side);
	for (s = 0; s < nr_slots; s++)
		if (slots[s])
			off += snprintf(why + off, sizeof(why) - off,
					" [%d]=%llu", s, slots[s]);
	off += snprintf(why + off, sizeof(why) - off,
			"; waits (least..timed us):");
	for (i = 0; i < b->nr_timed && off < sizeof(why) - 32; i++)
		if (!strcmp(b->timed[i].ring, ring) &&
		    !strcmp(b->timed[i].side, side))
			off += snprintf(why + off, sizeof(why) - off,
					" %llu..%llu", b->timed[i].min_us,
					b->timed[i].us);
	return why;
}

/* ---- bringlat text output ---------------------------------------------- */

int tu_parse_text(const char *text, struct tu_hist *h, int max)
{
	const char *line = text;
	int n = 0;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		char buf[512];
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		unsigned long long low, high, count;
		struct tu_hist *cur = n ? &h[n - 1] : NULL;

		if (len >= sizeof(buf))
			len = sizeof(buf) - 1;
		memcpy(buf, line, len);
		buf[len] = '\0';
		line = nl ? nl + 1 : NULL;

		if (!strncmp(buf, "ring = ", 7) && n < max) {
			char *p, *comma;

			cur = &h[n++];
			memset(cur, 0, sizeof(*cur));
			p = buf + 7;
			comma = strstr(p, ", ");
			if (!comma)
				continue;
			*comma = '\0';
			snprintf(cur->ring, sizeof(cur->ring), "%.31s", p);
			p = comma + 2;
			snprintf(cur->side, sizeof(cur->side), "%.*s",
				 (int)strcspn(p, ", "), p);
			if (strstr(p, "pid = "))
				cur->pid = strtoul(strstr(p, "pid = ") + 6,
						   NULL, 10);
			else if (strstr(p, "tid = "))
				cur->pid = strtoul(strstr(p, "tid = ") + 6,
						   NULL, 10);
		} else if (cur && sscanf(buf, "waits = %llu", &count) == 1) {
			const char *e = strstr(buf, "errors = ");

			cur->waits = count;
			if (e)
				cur->errors = strtoull(e + 9, NULL, 10);
		} else if (cur && sscanf(buf, " %llu -> %llu : %llu", &low,
					 &high, &count) == 3) {
			int s = tu_slot_of(high);

			if (s >= 0 && s < TU_SLOTS) {
				cur->slots[s] = count;
				cur->low[s] = low;
			}
		}
	}
	return n;
}

const struct tu_hist *tu_find_hist(const struct tu_hist *h, int n,
				   const char *ring, const char *side,
				   unsigned int pid)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(h[i].ring, ring) && !strcmp(h[i].side, side) &&
		    (pid == 0 || h[i].pid == pid))
			return &h[i];
	return NULL;
}

unsigned long long tu_hist_sum(const struct tu_hist *h)
{
	unsigned long long s = 0;
	int i;

	for (i = 0; i < TU_SLOTS; i++)
		s += h->slots[i];
	return s;
}

int tu_hist_only_slot(const struct tu_hist *h)
{
	int i, only = -1;

	for (i = 0; i < TU_SLOTS; i++) {
		if (!h->slots[i])
			continue;
		if (only >= 0)
			return -1;
		only = i;
	}
	return only;
}

int tu_slot_of(unsigned long long v)
{
	int s = 0;

	while (v > 1) {
		v >>= 1;
		s++;
	}
	return s;
}

/* ---- JSON ---------------------------------------------------------------- */

struct jp {
	const char *s;
	int depth;
};

static void skip_ws(struct jp *p)
{
	while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')
		p->s++;
}

static struct tu_json *jnew(enum tu_json_type t)
{
	struct tu_json *j = calloc(1, sizeof(*j));

	if (!j)
		abort();
	j->type = t;
	return j;
}

static char *parse_jstring(struct jp *p)
{
	size_t cap = 32, len = 0;
	char *out = malloc(cap);

	if (*p->s != '"')
		goto bad;
	p->s++;
	while (*p->s != '"') {
		char c = *p->s;

		if (!c || (unsigned char)c < 0x20)
			goto bad;
		if (c == '\\') {
			p->s++;
			switch (*p->s) {
			case '"':
				c = '"';
				break;
			case '\\':
				c = '\\';
				break;
			case '/':
				c = '/';
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'n':
				c = '\n';
				break;
			case 'r':
				c = '\r';
				break;
			case 't':
				c = '\t';
				break;
			case 'u': {
				unsigned int v;

				if (sscanf(p->s + 1, "%4x", &v) != 1)
					goto bad;
				c = v < 0x80 ? (char)v : '?';
				p->s += 4;
				break;
			}
			default:
				goto bad;
			}
		}
		if (len + 2 > cap)
			out = realloc(out, cap *= 2);
		out[len++] = c;
		p->s++;
	}
	p->s++;
	out[len] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

static struct tu_json *parse_value(struct jp *p);

static struct tu_json *parse_container(struct jp *p, char close)
{
	struct tu_json *j = jnew(close == ']' ? TU_JARR : TU_JOBJ);
	struct tu_json **tail = &j->child;

	p->s++;
	skip_ws(p);
	if (*p->s == close) {
		p->s++;
		return j;
	}
	for (;;) {
		struct tu_json *v;
		char *key = NULL;

		skip_ws(p);
		if (close == '}') {
			key = parse_jstring(p);
			if (!key)
				goto bad;
			skip_ws(p);
			if (*p->s != ':') {
				free(key);
				goto bad;
			}
			p->s++;
		}
		v = parse_value(p);
		if (!v) {
			free(key);
			goto bad;
		}
		v->key = key;
		*tail = v;
		tail = &v->next;
		skip_ws(p);
		if (*p->s == ',') {
			p->s++;
			continue;
		}
		if (*p->s == close) {
			p->s++;
			return j;
		}
		goto bad;
	}
bad:
	tu_json_free(j);
	return NULL;
}

static struct tu_json *parse_value(struct jp *p)
{
	struct tu_json *j;
	char *end;

	skip_ws(p);
	if (++p->depth > 64)
		return NULL;
	switch (*p->s) {
	case '{':
		j = parse_container(p, '}');
		break;
	case '[':
		j = parse_container(p, ']');
		break;
	case '"': {
		char *s = parse_jstring(p);

		if (!s)
			return NULL;
		j = jnew(TU_JSTR);
		j->str = s;
		break;
	}
	case 't':
	case 'f':
	case 'n':
		if (!strncmp(p->s, "true", 4) || !strncmp(p->s, "null", 4)) {
			j = jnew(p->s[0] == 't' ? TU_JBOOL : TU_JNULL);
			j->num = p->s[0] == 't';
			p->s += 4;
		} else if (!strncmp(p->s, "false", 5)) {
			j = jnew(TU_JBOOL);
			p->s += 5;
		} else {
			return NULL;
		}
		break;
	default:
		if (*p->s != '-' && (*p->s < '0' || *p->s > '9'))
			return NULL;
		j = jnew(TU_JNUM);
		j->num = strtod(p->s, &end);
		if (end == p->s) {
			free(j);
			return NULL;
		}
		p->s = end;
	}
	p->depth--;
	return j;
}

struct tu_json *tu_json_parse(const char *text)
{
	struct jp p = { .s = text };
	struct tu_json *j = parse_value(&p);

	if (!j)
		return NULL;
	skip_ws(&p);
	if (*p.s) {
		tu_json_free(j);
		return NULL;
	}
	return j;
}

void tu_json_free(struct tu_json *j)
{
	while (j) {
		struct tu_json *next = j->next;

		tu_json_free(j->child);
		free(j->str);
		free(j->key);
		free(j);
		j = next;
	}
}

struct tu_json *tu_json_get(const struct tu_json *obj, const char *key)
{
	struct tu_json *c;

	if (!obj || obj->type != TU_JOBJ)
		return NULL;
	for (c = obj->child; c; c = c->next)
		if (c->key && !strcmp(c->key, key))
			return c;
	return NULL;
}

struct tu_json *tu_json_path(const struct tu_json *obj, const char *path)
{
	char buf[256], *tok, *save;
	const struct tu_json *cur = obj;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && cur;
	     tok = strtok_r(NULL, ".", &save))
		cur = tu_json_get(cur, tok);
	return (struct tu_json *)cur;
}

int tu_json_len(const struct tu_json *arr)
{
	const struct tu_json *c;
	int n = 0;

	if (!arr || (arr->type != TU_JARR && arr->type != TU_JOBJ))
		return 0;
	for (c = arr->child; c; c = c->next)
		n++;
	return n;
}

struct tu_json *tu_json_at(const struct tu_json *arr, int i)
{
	struct tu_json *c;

	if (!arr)
		return NULL;
	for (c = arr->child; c && i > 0; c = c->next)
		i--;
	return c;
}

/* How many perf events (uprobes) pid holds, from bpftool perf list. */
int tu_perf_events_of(pid_t pid)
{
	char cmd[128], buf[256];
	int n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "bpftool perf list 2>/dev/null | grep -c '^pid %d '", pid);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		n = atoi(buf);
	pclose(f);
	return n;
}
