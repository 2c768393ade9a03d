// SPDX-License-Identifier: GPL-2.0
/*
 * install_test - the io layer as "make install" lays it out ("make check"
 * installs into $BRING_OUT/selftests/destdir, PREFIX /usr/local):
 *
 *  - bring_io.h, libbring_io.so.0, libbring_io.a and libbring_io.pc are
 *    there; the header is the source tree's;
 *  - every bring_io_*() that include/bring_io.h declares is exported by
 *    libbring_io.so in a LIBBRING_IO_* node, and nothing else is;
 *  - each has a man page naming it, its header and that node, and
 *    bring_io(7) is there; the fields of the options and stats structs
 *    and the BRING_IO_* constants are on the pages; the pages render
 *    without groff warnings;
 *  - Documentation/examples/shipper.c compiles against the installed
 *    layout with "pkg-config --cflags --libs libbring_io" (and with the
 *    static archives), and ships a file to a file and a TCP client's
 *    lines to a file, byte for byte.
 *
 * Every check reads the installed tree: a file left out of "make
 * install", a symbol left out of io/libbring_io.map or a page left out
 * of man/ fails here.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "../bpf/bpf_test_util.h"
#include "io_test_util.h"

#ifndef INSTALL_TEST_CC
#define INSTALL_TEST_CC "cc"
#endif
/* The sanitizer flags of this build: the installed library has them. */
#ifndef INSTALL_TEST_SAN
#define INSTALL_TEST_SAN ""
#endif

#define DESTDIR "selftests/destdir"
#define PREFIX "/usr/local"
#define MAX_FUNCS 128
#define WAIT_MS 20000

/* What include/bring_io.h declares: BRING_API ... bring_io_NAME(. */
struct funcs {
	char name[MAX_FUNCS][64];
	int n;
};

/* The dynamic symbols libbring_io.so defines, with their nodes. */
struct exports {
	char name[MAX_FUNCS * 2][64];
	char node[MAX_FUNCS * 2][32];
	int n;
};

static const char *prefix_path(const char *rel)
{
	static char path[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], PATH_MAX, "%s%s/%s", tu_out_path(DESTDIR), PREFIX,
		 rel);
	return path[i];
}

/* The names of the functions @hdr declares with BRING_API; -1 when a
 * BRING_API declaration is no bring_io_ function. */
static int parse_header(const char *hdr, struct funcs *f)
{
	const char *p = hdr, *paren, *end, *start;

	f->n = 0;
	while ((p = strstr(p, "BRING_API"))) {
		p += strlen("BRING_API");
		paren = strchr(p, '(');
		if (!paren)
			return -1;
		for (end = paren; end > p && isspace((unsigned char)end[-1]);)
			end--;
		for (start = end; start > p && (isalnum((unsigned char)start[-1]) ||
						 start[-1] == '_');)
			start--;
		if (end - start >= 64 || strncmp(start, "bring_io_", 9) ||
		    f->n == MAX_FUNCS)
			return -1;
		snprintf(f->name[f->n++], 64, "%.*s", (int)(end - start), start);
	}
	return f->n;
}

/* nm -D --defined-only @lib: "ADDR T name@@NODE" lines. */
static int read_exports(const char *lib, struct exports *x)
{
	char cmd[PATH_MAX + 64], line[512], type, sym[256], *at;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s' 2>&1", lib);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	x->n = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*s %c %255s", &type, sym) != 2)
			continue;
		at = strchr(sym, '@');
		if (type == 'A' && !at)
			continue; /* the definition of a version node */
		if (x->n == MAX_FUNCS * 2)
			break;
		if (at) {
			*at++ = '\0';
			at += *at == '@'; /* "@@": the default version */
		}
		if (snprintf(x->name[x->n], sizeof(x->name[0]), "%s", sym) <
			    (int)sizeof(x->name[0]) &&
		    snprintf(x->node[x->n], sizeof(x->node[0]), "%s",
			     at ? at : "") <
			    (int)sizeof(x->node[0]))
			x->n++;
	}
	return pclose(f) ? -1 : x->n;
}

static const char *export_node(const struct exports *x, const char *name)
{
	int i;

	for (i = 0; i < x->n; i++)
		if (!strcmp(x->name[i], name))
			return x->node[i];
	return NULL;
}

static bool declared(const struct funcs *f, const char *name)
{
	int i;

	for (i = 0; i < f->n; i++)
		if (!strcmp(f->name[i], name))
			return true;
	return false;
}

/* Section @sh (".SH NAME") of the page @page, up to the next .SH; a
 * static buffer, "" when it has none. */
static const char *section(const char *page, const char *sh)
{
	static char buf[8192];
	const char *s = strstr(page, sh), *e;

	buf[0] = '\0';
	if (!s)
		return buf;
	s += strlen(sh);
	e = strstr(s, "\n.SH ");
	if (!e)
		e = s + strlen(s);
	snprintf(buf, sizeof(buf), "%.*s", (int)(e - s), s);
	return buf;
}

/* The installed page man3/@name.3, following one ".so man3/X.3". */
static char *man_page(const char *name, char *path, size_t len)
{
	char rel[160], target[128], *page;
	size_t n;

	snprintf(rel, sizeof(rel), "share/man/man3/%s.3", name);
	snprintf(path, len, "%s", prefix_path(rel));
	page = slurp(path, &n);
	if (page && sscanf(page, ".so %127s", target) == 1) {
		free(page);
		snprintf(rel, sizeof(rel), "share/man/%s", target);
		snprintf(path, len, "%s", prefix_path(rel));
		page = slurp(path, &n);
	}
	return page;
}

/* Run "sh -c @cmd"; its exit status, its output in @p (tu_cleanup()). */
static int sh(struct tu_proc *p, const char *cmd, int timeout_ms)
{
	if (tu_spawn_sh(p, cmd, NULL, TU_STDIN_NULL))
		return -1;
	return tu_finish(p, timeout_ms);
}

FIXTURE(install)
{
	char dir[64];
	char env[4 * PATH_MAX]; /* pkg-config's view of the destdir */
	char shipper[PATH_MAX], in[PATH_MAX], out[PATH_MAX];
	char *want;
	size_t want_len;
};

FIXTURE_SETUP(install)
{
	unsigned int lines = getenv("BRING_SANITIZED") ? 5000 : 50000, i;
	size_t cap;

	strcpy(self->dir, "/tmp/install_test.XXXXXX");
	ASSERT_NE_NULL(mkdtemp(self->dir));
	snprintf(self->env, sizeof(self->env),
		 "export PKG_CONFIG_SYSROOT_DIR='%s' "
		 "PKG_CONFIG_PATH='%s' LD_LIBRARY_PATH='%s';",
		 tu_out_path(DESTDIR), prefix_path("lib/pkgconfig"),
		 prefix_path("lib"));
	snprintf(self->shipper, sizeof(self->shipper), "%s/shipper", self->dir);
	snprintf(self->in, sizeof(self->in), "%s/in", self->dir);
	snprintf(self->out, sizeof(self->out), "%s/out", self->dir);
	/* Lines of 1 to 200 bytes: a 64 KiB ring wraps many times. */
	cap = (size_t)lines * 220;
	self->want = malloc(cap);
	ASSERT_NE_NULL(self->want);
	for (i = 0; i < lines; i++)
		self->want_len += snprintf(self->want + self->want_len,
					   cap - self->want_len, "%08u %.*s\n",
					   i, (int)(i * 7919 % 192),
					   "the quick brown fox jumps over the "
					   "lazy dog the quick brown fox jumps "
					   "over the lazy dog the quick brown "
					   "fox jumps over the lazy dog the "
					   "quick brown fox jumps over the lazy "
					   "dog the quick brown fox jumps over "
					   "the lazy dog");
	ASSERT_EQ(0, spew(self->in, self->want, self->want_len));
}

FIXTURE_TEARDOWN(install)
{
	char cmd[128];

	free(self->want);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		TH_LOG("cannot remove %s", self->dir);
}

/*
 * Compile the example against the installed layout: @how is the
 * compiler's arguments after the source (pkg-config calls in them see
 * only the destdir's .pc files first).
 */
static int build_example(struct __test_metadata *_metadata,
			 FIXTURE_DATA(install) *self, const char *how)
{
	char cmd[8 * PATH_MAX];
	struct tu_proc p;
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "%s %s %s -Wall -Wextra -Werror -o '%s' '%s' %s 2>&1", self->env,
		 INSTALL_TEST_CC, INSTALL_TEST_SAN, self->shipper,
		 tu_src_path("Documentation/examples/shipper.c"), how);
	rc = sh(&p, cmd, 60000);
	if (rc)
		TH_LOG("%s\nsaid: %s", cmd, p.buf ? p.buf : "");
	tu_cleanup(&p);
	return rc;
}

/* Run the example: @ring, then the URIs in @uris. Its exit status and,
 * in @p, what it said (stderr merged). */
static int run_example(FIXTURE_DATA(install) *self, struct tu_proc *p,
		       const char *args, bool wait)
{
	char cmd[8 * PATH_MAX];

	if (snprintf(cmd, sizeof(cmd), "%s exec '%s' %s", self->env,
		     self->shipper, args) >= (int)sizeof(cmd))
		return -1;
	if (tu_spawn_sh(p, cmd, NULL, TU_STDIN_NULL | TU_MERGE_STDERR))
		return -1;
	return wait ? tu_finish(p, WAIT_MS) : 0;
}

static bool same_as_want(struct __test_metadata *_metadata,
			 FIXTURE_DATA(install) *self, const char *path)
{
	size_t len = 0;
	char *got = slurp(path, &len);
	bool same = got && len == self->want_len &&
		    !memcmp(got, self->want, len);

	if (!same)
		TH_LOG("%s: %zu bytes, want %zu, %s", path, len,
		       self->want_len, got ? "differ" : "cannot be read");
	free(got);
	return same;
}

TEST_F(install, files_installed)
{
	static const char *const files[] = {
		"include/bring.h", "include/bring_io.h",
		"lib/libbring.so.0", "lib/libbring_io.so.0",
		"lib/libbring_io.so", "lib/libbring_io.a",
		"lib/pkgconfig/libbring_io.pc", "share/man/man7/bring_io.7",
	};
	char *inst, *src;
	unsigned int i;
	size_t a, b;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		EXPECT_EQ(0, access(prefix_path(files[i]), R_OK))
			TH_LOG("%s is not installed (make install DESTDIR=)",
			       prefix_path(files[i]));
	inst = slurp(prefix_path("include/bring_io.h"), &a);
	src = slurp(tu_src_path("include/bring_io.h"), &b);
	ASSERT_NE_NULL(src);
	EXPECT_TRUE(inst && a == b && !memcmp(inst, src, a))
		TH_LOG("the installed bring_io.h is not include/bring_io.h");
	free(inst);
	free(src);
}

TEST_F(install, every_function_exported_in_its_node)
{
	struct funcs f;
	struct exports x;
	const char *node;
	size_t len;
	char *hdr;
	int i;

	hdr = slurp(prefix_path("include/bring_io.h"), &len);
	ASSERT_NE_NULL(hdr) TH_LOG("bring_io.h is not installed");
	ASSERT_LT(0, parse_header(hdr, &f))
		TH_LOG("a BRING_API declaration that is no bring_io_*()");
	free(hdr);
	ASSERT_TRUE(declared(&f, "bring_io_new") && declared(&f, "bring_io_run"));
	ASSERT_LT(0, read_exports(prefix_path("lib/libbring_io.so.0"), &x))
		TH_LOG("nm cannot read the installed libbring_io.so.0");
	for (i = 0; i < f.n; i++) {
		node = export_node(&x, f.name[i]);
		EXPECT_TRUE(node && !strncmp(node, "LIBBRING_IO_", 12))
			TH_LOG("%s is declared but not exported in a "
			       "LIBBRING_IO_ node (io/libbring_io.map): %s",
			       f.name[i], node ? node : "not exported");
	}
	/* Nothing else: the library's internals stay hidden. */
	for (i = 0; i < x.n; i++)
		EXPECT_TRUE(declared(&f, x.name[i]))
			TH_LOG("libbring_io.so exports %s, which bring_io.h "
			       "does not declare", x.name[i]);
}

/*
 * The installed static archives define the API and nothing else: their
 * internals are local (ld -r, objcopy --localize-hidden), so a program
 * linking them statically cannot clash with an internal name.
 */
TEST_F(install, static_archives_export_the_api_only)
{
	static const struct {
		const char *lib, *prefix;
	} ar[] = { { "lib/libbring.a", "bring_" },
		   { "lib/libbring_io.a", "bring_io_" } };
	char cmd[PATH_MAX + 64], line[512], sym[256];
	unsigned int i, api;
	FILE *f;

	for (i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd), "nm -g --defined-only '%s' 2>&1",
			 prefix_path(ar[i].lib));
		f = popen(cmd, "r");
		ASSERT_NE_NULL(f);
		api = 0;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%*s %*c %255s", sym) != 1)
				continue; /* "member.o:" and blank lines */
#ifdef __SANITIZE_THREAD__
			/* io/kafka.c's thrd_* over libc's and its
			 * suppressions, for TSan only */
			if (!strncmp(sym, "thrd_", 5) ||
			    !strcmp(sym, "__tsan_default_suppressions"))
				continue;
#endif
			EXPECT_EQ(0, strncmp(sym, ar[i].prefix,
					     strlen(ar[i].prefix)))
				TH_LOG("%s defines %s for all to see", ar[i].lib,
				       sym);
			api++;
		}
		EXPECT_EQ(0, pclose(f)) TH_LOG("nm %s failed", ar[i].lib);
		EXPECT_LT(10, api) TH_LOG("%s: %u API symbols", ar[i].lib, api);
	}
}

TEST_F(install, every_function_has_a_man_page)
{
	char path[PATH_MAX], want[160], *page;
	struct exports x;
	const char *node, *s;
	struct funcs f;
	size_t len;
	char *hdr;
	int i;

	hdr = slurp(tu_src_path("include/bring_io.h"), &len);
	ASSERT_NE_NULL(hdr);
	ASSERT_LT(0, parse_header(hdr, &f));
	free(hdr);
	ASSERT_LT(0, read_exports(prefix_path("lib/libbring_io.so.0"), &x));
	for (i = 0; i < f.n; i++) {
		page = man_page(f.name[i], path, sizeof(path));
		EXPECT_NE_NULL(page) TH_LOG("no man page for %s (man/%s.3)",
					    f.name[i], f.name[i]);
		if (!page)
			continue;
		s = section(page, ".SH NAME");
		EXPECT_NE_NULL(strstr(s, f.name[i]))
			TH_LOG("%s: NAME does not name %s", path, f.name[i]);
		s = section(page, ".SH SYNOPSIS");
		snprintf(want, sizeof(want), "%s(", f.name[i]);
		EXPECT_TRUE(strstr(s, "#include <bring_io.h>") && strstr(s, want))
			TH_LOG("%s: SYNOPSIS lacks bring_io.h or %s", path, want);
		node = export_node(&x, f.name[i]);
		s = section(page, ".SH VERSIONS");
		EXPECT_TRUE(node && *node && strstr(s, node))
			TH_LOG("%s: VERSIONS does not name %s's node %s", path,
			       f.name[i], node ? node : "(not exported)");
		free(page);
	}
}

/*
 * The names of the fields of "struct @name {" in @hdr, one after the
 * other, NUL-separated in @out (an unnamed bit-field has none); how many.
 */
static int struct_fields(const char *hdr, const char *name, char *out,
			 size_t len)
{
	const char *p = strstr(hdr, name), *end, *semi, *start;
	int n = 0;

	if (!p || !(end = strstr(p, "\n};")))
		return -1;
	for (p = strchr(p, '\n'); p && (semi = strchr(p, ';')) && semi < end;
	     p = semi + 1) {
		for (start = semi; start > p && (isalnum((unsigned char)start[-1]) ||
						 start[-1] == '_');)
			start--;
		if (start == semi || isdigit((unsigned char)*start) ||
		    (size_t)(semi - start) + 1 >= len)
			continue;
		memcpy(out, start, semi - start);
		out += semi - start;
		*out++ = '\0';
		len -= semi - start + 1;
		n++;
	}
	return n;
}

/* Is @word in @text, not as part of a longer name? */
static bool has_word(const char *text, const char *word)
{
	size_t n = strlen(word);
	const char *p;

	for (p = text; (p = strstr(p, word)); p += n)
		if ((p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_')) &&
		    !(isalnum((unsigned char)p[n]) || p[n] == '_'))
			return true;
	return false;
}

/*
 * What bring_io.h declares besides functions is documented too: each
 * field of the options and stats structs on the page of the function
 * that takes it, each BRING_IO_* constant on some bring_io page.
 */
TEST_F(install, every_field_and_constant_is_documented)
{
	static const struct {
		const char *decl, *page;
	} structs[] = {
		{ "struct bring_io_opts {", "bring_io_new" },
		{ "struct bring_io_stats {", "bring_io_get_stats" },
		{ "struct bring_io_endpoint_stats {", "bring_io_source_stats" },
	};
	char path[PATH_MAX], fields[4096], *hdr, *page, *all, *f;
	const char *p, *e;
	size_t len, total = 0;
	struct funcs fn;
	unsigned int i;
	int n, k, checked = 0;

	hdr = slurp(tu_src_path("include/bring_io.h"), &len);
	ASSERT_NE_NULL(hdr);
	for (i = 0; i < sizeof(structs) / sizeof(structs[0]); i++) {
		n = struct_fields(hdr, structs[i].decl, fields, sizeof(fields));
		ASSERT_LT(2, n) TH_LOG("cannot read %s in bring_io.h",
				       structs[i].decl);
		page = man_page(structs[i].page, path, sizeof(path));
		ASSERT_NE_NULL(page);
		for (f = fields, k = 0; k < n; f += strlen(f) + 1, k++)
			EXPECT_TRUE(has_word(page, f))
				TH_LOG("%s: no word of %.*s's field %s", path,
				       (int)strlen(structs[i].decl) - 2,
				       structs[i].decl, f);
		free(page);
	}
	/* Every page of the io layer, one after the other. */
	ASSERT_LT(0, parse_header(hdr, &fn));
	all = calloc(1, 1);
	ASSERT_NE_NULL(all);
	for (k = 0; k < fn.n; k++) {
		page = man_page(fn.name[k], path, sizeof(path));
		if (!page)
			continue; /* every_function_has_a_man_page says so */
		len = strlen(page);
		all = realloc(all, total + len + 1);
		ASSERT_NE_NULL(all);
		memcpy(all + total, page, len + 1);
		total += len;
		free(page);
	}
	page = slurp(prefix_path("share/man/man7/bring_io.7"), &len);
	ASSERT_NE_NULL(page);
	all = realloc(all, total + len + 1);
	ASSERT_NE_NULL(all);
	memcpy(all + total, page, len + 1);
	free(page);
	for (p = hdr; (p = strstr(p, "BRING_IO_")); p = e) {
		char name[64];

		for (e = p; isalnum((unsigned char)*e) || *e == '_'; e++)
			;
		snprintf(name, sizeof(name), "%.*s", (int)(e - p), p);
		if (!strcmp(name, "BRING_IO_H"))
			continue; /* the include guard */
		checked++;
		EXPECT_TRUE(has_word(all, name))
			TH_LOG("%s is in no bring_io man page", name);
	}
	EXPECT_LT(10, checked);
	free(all);
	free(hdr);
}

/* groff -ww: every warning; man(7) pages, tables (-t). */
TEST_F(install, man_pages_render_without_warnings)
{
	char cmd[2 * PATH_MAX];
	struct tu_proc p;
	const char *at;
	int rc;

	if (access("/usr/bin/groff", X_OK))
		SKIP(return, "groff is not installed (groff-base)");
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && n=0 && for f in man3/bring_io_*.3 man7/bring_io.7; do "
		 "  grep -q '^\\.so ' $f && continue; n=$((n+1)); "
		 "  LC_ALL=C.UTF-8 groff -ww -t -man -z $f 2>&1 | sed \"s|^|$f: |\"; "
		 "done; echo pages $n",
		 prefix_path("share/man"));
	rc = sh(&p, cmd, 60000);
	ASSERT_EQ(0, rc);
	EXPECT_EQ(0, strncmp(p.buf ? p.buf : "", "pages ", 6))
		TH_LOG("groff warns:\n%s", p.buf ? p.buf : "");
	at = p.buf ? strstr(p.buf, "pages ") : NULL;
	EXPECT_LT(5, at ? atoi(at + 6) : 0) TH_LOG("too few pages: %s", p.buf);
	tu_cleanup(&p);
}

TEST_F(install, example_ships_a_file)
{
	char args[4 * PATH_MAX], cmd[PATH_MAX + 32];
	struct tu_proc p;

	ASSERT_EQ(0, build_example(_metadata, self,
				   "$(pkg-config --cflags --libs libbring_io)"));
	/* It links the shared library, not the build tree's objects. */
	snprintf(cmd, sizeof(cmd), "readelf -d '%s'", self->shipper);
	ASSERT_EQ(0, sh(&p, cmd, 10000));
	EXPECT_NE_NULL(strstr(p.buf, "[libbring_io.so.0]")) TH_LOG("%s", p.buf);
	tu_cleanup(&p);

	/* A memory ring of 64 KiB. */
	snprintf(args, sizeof(args), "mem:65536 'file:%s' 'file:%s'", self->in,
		 self->out);
	EXPECT_EQ(0, run_example(self, &p, args, true)) TH_LOG("%s", p.buf);
	EXPECT_TRUE(same_as_want(_metadata, self, self->out));
	EXPECT_NE_NULL(strstr(p.buf, "source file:")) TH_LOG("%s", p.buf);
	EXPECT_NE_NULL(strstr(p.buf, "reader sink0 lag 0")) TH_LOG("%s", p.buf);
	tu_cleanup(&p);

	/* A file ring: the same bytes, once. */
	unlink(self->out);
	snprintf(args, sizeof(args), "'file:%s/ring' 'file:%s' 'file:%s'",
		 self->dir, self->in, self->out);
	EXPECT_EQ(0, run_example(self, &p, args, true)) TH_LOG("%s", p.buf);
	EXPECT_TRUE(same_as_want(_metadata, self, self->out));
	tu_cleanup(&p);
}

TEST_F(install, example_ships_tcp_lines)
{
	char args[4 * PATH_MAX];
	const char *at;
	struct tu_proc p;
	size_t off;
	ssize_t n;
	int port, fd;

	ASSERT_EQ(0, build_example(_metadata, self,
				   "$(pkg-config --cflags --libs libbring_io)"));
	snprintf(args, sizeof(args), "mem:1048576 tcp-listen:127.0.0.1:0 "
		 "'file:%s'", self->out);
	ASSERT_EQ(0, run_example(self, &p, args, false));
	at = tu_wait_for(&p, "shipper: tcp-listen:127.0.0.1:0: listening "
			 "on port ", WAIT_MS);
	ASSERT_NE_NULL(at) TH_LOG("no port said: %s", p.buf ? p.buf : "");
	port = atoi(strrchr(at, ' ') + 1);
	ASSERT_LT(0, port);
	fd = loopback_to(SOCK_STREAM, port);
	ASSERT_LE(0, fd);
	for (off = 0; off < self->want_len; off += n) {
		n = write(fd, self->want + off, self->want_len - off);
		if (n <= 0)
			break;
	}
	close(fd);
	ASSERT_EQ(self->want_len, off);
	EXPECT_TRUE(wait_size(self->out, self->want_len, WAIT_MS));
	/* A signal stops it: it drains, prints its figures, exits 0. */
	kill(p.pid, SIGTERM);
	EXPECT_EQ(0, tu_finish(&p, WAIT_MS)) TH_LOG("%s", p.buf);
	EXPECT_TRUE(same_as_want(_metadata, self, self->out));
	EXPECT_NE_NULL(strstr(p.buf, "source tcp-listen:127.0.0.1:0"))
		TH_LOG("%s", p.buf);
	tu_cleanup(&p);
}

/* The archives and the .pc's private dependencies: libbring_io.a and
 * libbring.a in, the rest from Requires.private and Libs.private. */
TEST_F(install, example_links_statically)
{
	char how[4 * PATH_MAX], args[4 * PATH_MAX], cmd[PATH_MAX + 32];
	struct tu_proc p;

	snprintf(how, sizeof(how),
		 "$(pkg-config --cflags libbring_io) '%s' '%s' "
		 "$(pkg-config --libs $(pkg-config --print-requires-private "
		 "libbring_io)) -lpthread",
		 prefix_path("lib/libbring_io.a"), prefix_path("lib/libbring.a"));
	ASSERT_EQ(0, build_example(_metadata, self, how));
	snprintf(cmd, sizeof(cmd), "readelf -d '%s'", self->shipper);
	ASSERT_EQ(0, sh(&p, cmd, 10000));
	EXPECT_EQ(NULL, strstr(p.buf, "libbring")) TH_LOG("%s", p.buf);
	tu_cleanup(&p);

	snprintf(args, sizeof(args), "mem:65536 'file:%s' 'file:%s'", self->in,
		 self->out);
	EXPECT_EQ(0, run_example(self, &p, args, true)) TH_LOG("%s", p.buf);
	EXPECT_TRUE(same_as_want(_metadata, self, self->out));
	tu_cleanup(&p);
}

/* The example's own errors: one line, exit 1 (2 for usage). */
TEST_F(install, example_says_bad_arguments)
{
	char args[4 * PATH_MAX];
	struct tu_proc p;

	ASSERT_EQ(0, build_example(_metadata, self,
				   "$(pkg-config --cflags --libs libbring_io)"));
	EXPECT_EQ(2, run_example(self, &p, "mem:65536 stdin:", true));
	EXPECT_NE_NULL(strstr(p.buf, "usage: shipper")) TH_LOG("%s", p.buf);
	tu_cleanup(&p);
	EXPECT_EQ(1, run_example(self, &p, "mem:x stdin: stdout:", true));
	EXPECT_NE_NULL(strstr(p.buf, "shipper: mem:x: Invalid argument"))
		TH_LOG("%s", p.buf);
	tu_cleanup(&p);
	snprintf(args, sizeof(args), "mem:65536 'file:%s/nonexistent' stdout:",
		 self->dir);
	EXPECT_EQ(1, run_example(self, &p, args, true));
	EXPECT_NE_NULL(strstr(p.buf, "No such file or directory"))
		TH_LOG("%s", p.buf);
	tu_cleanup(&p);
}

TEST_HARNESS_MAIN
