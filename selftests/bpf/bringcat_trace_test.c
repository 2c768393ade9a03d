// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * bringcat_trace_test - bringcat's waits, seen by the tracers an operator
 * points at it: bringlat -l and the bpftrace one-liners of
 * Documentation/tracing.rst marked ".. bringcat-recipe: NAME", both run
 * against the installed layout ("make check" installs into
 * $BRING_OUT/selftests/destdir, as "make install DESTDIR=" does), in the
 * three io modes. Their figures must agree with bringcat's own --stats
 * full and empty wait times within 10%.
 *
 * The workload: a source (stdin) that sends a line every 250 ms for a
 * second (the sink waits for data: reader waits), then a burst that a
 * slowly read stdout cannot take (the source waits for space: writer
 * waits).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "bpf_test_util.h"
#include "../io/io_test_util.h"

#define DOC "Documentation/tracing.rst"
#define DOC_BRINGCAT "/usr/local/bin/bringcat"
#define DESTDIR "selftests/destdir"
#define LINE_LEN 100
#define SLOW_READ 65536 /* bytes per read of bringcat's stdout ... */
#define SLOW_READ_US 20000 /* ... every 20 ms: 3.2 MB/s */

static const char *installed(const char *what)
{
	static char path[2][PATH_MAX];
	static int i;

	i ^= 1;
	snprintf(path[i], PATH_MAX, "%s", tu_out_path(DESTDIR "/usr/local/bin/"));
	strncat(path[i], what, PATH_MAX - strlen(path[i]) - 1);
	return path[i];
}

struct workload {
	int in_fd; /* bringcat's stdin */
	size_t burst; /* bytes of the burst */
	size_t written;
};

static void *feed(void *arg)
{
	struct workload *w = arg;
	char line[LINE_LEN], *buf;
	size_t i;
	int k;

	memset(line, 'x', LINE_LEN - 1);
	line[LINE_LEN - 1] = '\n';
	/* The sink waits for data: about a second, in four waits and more. */
	for (k = 0; k < 4; k++) {
		usleep(250 * 1000);
		if (write(w->in_fd, line, LINE_LEN) == LINE_LEN)
			w->written += LINE_LEN;
	}
	/* The source waits for space. */
	buf = malloc(w->burst);
	if (buf) {
		for (i = 0; i + LINE_LEN <= w->burst; i += LINE_LEN)
			memcpy(buf + i, line, LINE_LEN);
		for (i = 0; i < w->burst;) {
			ssize_t n = write(w->in_fd, buf + i, w->burst - i);

			if (n <= 0)
				break;
			i += n;
		}
		w->written += i;
		free(buf);
	}
	close(w->in_fd);
	return NULL;
}

struct waits {
	double full_s, empty_s; /* bringcat --stats */
	size_t in, out;
	int rc;
};

/*
 * Run the installed bringcat (@mode_flag, then --stats) on the workload,
 * reading its stdout slowly; its stderr goes to @errpath.
 */
static void run_bringcat(struct __test_metadata *_metadata,
			 const char *mode_flag, const char *errpath,
			 struct waits *wt)
{
	const char *exe = installed("bringcat");
	/*
	 * Not scaled down when sanitized: the slow reader sets the pace
	 * (about 1.3 s of full waits), not bringcat's CPU.
	 */
	struct workload w = { .burst = ((4 << 20) / LINE_LEN) * LINE_LEN };
	int in[2], out[2], efd;
	char *buf = malloc(SLOW_READ);
	pthread_t t;
	ssize_t n;
	pid_t pid;

	ASSERT_NE_NULL(buf);
	ASSERT_EQ(0, pipe2(in, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(out, O_CLOEXEC));
	efd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_GE(efd, 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(efd, 2);
		execl(exe, exe, mode_flag, "--stats", "-b", "mem:256K", "-i", "-",
		      "-o", "-", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(efd);
	w.in_fd = in[1];
	ASSERT_EQ(0, pthread_create(&t, NULL, feed, &w));
	wt->out = 0;
	while ((n = read(out[0], buf, SLOW_READ)) > 0) {
		wt->out += n;
		usleep(SLOW_READ_US);
	}
	close(out[0]);
	pthread_join(t, NULL);
	free(buf);
	wt->in = w.written;
	wt->rc = wait_rc(pid, 20000);
	wt->full_s = final_stat_secs(errpath, "full waits ");
	wt->empty_s = final_stat_secs(errpath, "empty waits ");
}

/* |traced - own| within 10% of own, and seconds of waiting to compare. */
#define EXPECT_AGREES(own, traced, what)                                   \
	do {                                                               \
		EXPECT_GE((own), 0.5) TH_LOG("%s: only %.3fs", what, (own));  \
		EXPECT_LE(fabs((traced) - (own)), 0.1 * (own))              \
			TH_LOG("%s: traced %.3fs, --stats %.3fs", what,      \
			       (traced), (own));                            \
	} while (0)

FIXTURE(bc)
{
	char dir[64];
	char err[PATH_MAX];
	const char *flag;
};

IO_MODE_VARIANTS(bc);

FIXTURE_SETUP(bc)
{
	if (access(installed("bringcat"), X_OK))
		SKIP(return, "%s missing: \"make check\" installs it there",
		     installed("bringcat"));
	if (io_mode_missing(variant->mode))
		SKIP(return, "%s", io_mode_missing(variant->mode));
	self->flag = io_mode_flag(variant->mode, "--quiet");
	strcpy(self->dir, "/tmp/bringcat_trace.XXXXXX");
	ASSERT_NE_NULL(mkdtemp(self->dir));
	snprintf(self->err, sizeof(self->err), "%s/err", self->dir);
}

FIXTURE_TEARDOWN(bc)
{
	if (self->dir[0]) {
		unlink(self->err);
		rmdir(self->dir);
	}
}

/* The last line of @text that starts with '{'. */
static char *last_json_line(const char *text)
{
	const char *p = text, *last = NULL;

	for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (*p == '{')
			last = p;
	return last ? strndup(last, strcspn(last, "\n")) : NULL;
}

TEST_F_TIMEOUT(bc, bringlat_agrees_with_stats, 120)
{
	char *argv[] = { (char *)installed("bringlat"), "-l",
			 (char *)installed("bringcat"), "-j", "-R", NULL };
	double wsum = 0, rsum = 0;
	struct tu_json *j, *hists;
	struct waits wt;
	struct tu_proc bl;
	char *line;
	int i, readers = 0;

	if (tu_bringlat_skip_reason())
		SKIP(return, "%s", tu_bringlat_skip_reason());
	if (access(argv[0], X_OK))
		SKIP(return, "%s not installed (no BPF toolchain)", argv[0]);
	/* Attached to the binary before it runs: every wait is seen. */
	ASSERT_EQ(0, tu_spawn(&bl, argv, TU_STDIN_NULL));
	ASSERT_TRUE(tu_wait_stderr(&bl, "Tracing bring waits", 20000))
		TH_LOG("bringlat: %s", bl.ebuf);
	run_bringcat(_metadata, self->flag, self->err, &wt);
	kill(bl.pid, SIGINT);
	ASSERT_EQ(0, tu_finish(&bl, 15000));
	ASSERT_EQ(0, wt.rc);
	EXPECT_EQ(wt.in, wt.out);

	line = last_json_line(bl.buf);
	ASSERT_NE_NULL(line) TH_LOG("bringlat said: %s", bl.buf);
	j = tu_json_parse(line);
	ASSERT_NE_NULL(j) TH_LOG("not JSON: %s", line);
	hists = tu_json_get(j, "hists");
	ASSERT_NE_NULL(hists);
	for (i = 0; i < tu_json_len(hists); i++) {
		struct tu_json *h = tu_json_at(hists, i);
		struct tu_json *side = tu_json_get(h, "side");
		struct tu_json *reader = tu_json_get(h, "reader");
		double s = tu_json_get(h, "total_ns")->num / 1e9;

		EXPECT_STREQ("bringcat", tu_json_get(h, "ring")->str);
		if (!strcmp(side->str, "writer")) {
			wsum += s;
			EXPECT_NULL(reader);
		} else {
			rsum += s;
			/* -R: the sink's reader, by name */
			ASSERT_NE_NULL(reader);
			EXPECT_STREQ("-", reader->str); /* named after -o - */
			readers++;
		}
	}
	EXPECT_EQ(1, readers);
	EXPECT_AGREES(wt.full_s, wsum, "writer waits (full)");
	EXPECT_AGREES(wt.empty_s, rsum, "reader waits (empty)");
	tu_json_free(j);
	free(line);
	tu_cleanup(&bl);
}

/* The one-liner after ".. bringcat-recipe: @name", for the installed tree. */
static char *bringcat_recipe(const char *name)
{
	char line[4096], marker[128], *cmd = NULL, *p, *at;
	bool next = false;
	FILE *f = fopen(tu_src_path(DOC), "r");

	if (!f)
		return NULL;
	snprintf(marker, sizeof(marker), ".. bringcat-recipe: %s\n", name);
	while (!cmd && fgets(line, sizeof(line), f)) {
		if (!strcmp(line, marker)) {
			next = true;
			continue;
		}
		p = strstr(line, "# bpftrace ");
		if (!next || !p)
			continue;
		p[strcspn(p, "\n")] = '\0';
		p += 2;
		/* Every DOC_BRINGCAT becomes the installed one; exec: the
		 * SIGINT goes to bpftrace, not to sh. */
		cmd = calloc(1, 8192);
		if (cmd)
			strcpy(cmd, "exec ");
		while (cmd && (at = strstr(p, DOC_BRINGCAT))) {
			strncat(cmd, p, at - p);
			strcat(cmd, installed("bringcat"));
			p = at + strlen(DOC_BRINGCAT);
		}
		if (cmd)
			strcat(cmd, p);
	}
	fclose(f);
	return cmd;
}

/* "@map[key]: N" in @text: N, or -1. */
static double bt_value(const char *text, const char *map_key)
{
	const char *p = strstr(text, map_key);

	return p ? strtod(p + strlen(map_key), NULL) : -1;
}

/* The one-liner, in one io mode: io_uring where it works. */
TEST_TIMEOUT(bpftrace_recipe_agrees_with_stats, 120)
{
	enum io_mode mode = io_mode_missing(IO_MODE_URING) ? IO_MODE_FALLBACK :
							     IO_MODE_URING;
	char dir[] = "/tmp/bringcat_trace.XXXXXX", err[64];
	struct tu_proc bt;
	struct waits wt;
	const char *l;
	char *cmd;
	int want, i;

	if (tu_bpftrace_skip_reason())
		SKIP(return, "%s", tu_bpftrace_skip_reason());
	if (access(installed("bringcat"), X_OK))
		SKIP(return, "%s missing: \"make check\" installs it there",
		     installed("bringcat"));
	ASSERT_NE_NULL(mkdtemp(dir));
	snprintf(err, sizeof(err), "%s/err", dir);
	cmd = bringcat_recipe("wait_totals");
	ASSERT_NE_NULL(cmd) TH_LOG("no '.. bringcat-recipe: wait_totals' in " DOC);
	ASSERT_EQ(0, tu_spawn_sh(&bt, cmd, NULL, TU_STDIN_NULL | TU_MERGE_STDERR));
	l = tu_wait_for(&bt, "Attaching ", 30000);
	ASSERT_NE_NULL(l) TH_LOG("bpftrace: %s", bt.buf);
	/* "Attaching" comes before the attachment itself. */
	want = atoi(l + 10);
	for (i = 0; i < 300 && tu_perf_events_of(bt.pid) < want; i++)
		usleep(50000);
	run_bringcat(_metadata, io_mode_flag(mode, "--quiet"), err, &wt);
	unlink(err);
	rmdir(dir);
	kill(bt.pid, SIGINT);
	tu_finish(&bt, 15000);
	ASSERT_EQ(0, wt.rc);
	EXPECT_AGREES(wt.full_s, bt_value(bt.buf, "@full_ns[bringcat]: ") / 1e9,
		      "bpftrace writer waits");
	EXPECT_AGREES(wt.empty_s, bt_value(bt.buf, "@empty_ns[-]: ") / 1e9,
		      "bpftrace reader waits");
	free(cmd);
	tu_cleanup(&bt);
}

TEST_HARNESS_MAIN
