/* tools/cli.c: helpers every command shares. */
#include "cli.h"

#include "core/file.h"
#include "hub/hub.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int die_err(const char *prog, const struct hf_err *err)
{
	fprintf(stderr, "%s: %s\n", prog,
		err->msg[0] ? err->msg : hf_err_name(err->code));
	return 1;
}

int die(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int die_usage(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", prog);
	return 2;
}

int die_bad_option(const char *prog, int c, char **argv)
{
	const char *arg = argv[optind - 1];
	int len = (int)strcspn(arg, "=");

	/* a short option is named by optopt (it may sit inside "-qj"), a
	 * long one by its word, without any "=value" */
	if (strncmp(arg, "--", 2) && optopt > 0 && optopt < 128) {
		if (c == ':')
			return die_usage(prog, "option '-%c' needs a value", optopt);
		return die_usage(prog, "unknown option '-%c'", optopt);
	}
	if (c == ':')
		return die_usage(prog, "option '%.*s' needs a value", len, arg);
	if (optopt && arg[len] == '=')	/* glibc: a known flag given a value */
		return die_usage(prog, "option '%.*s' takes no value", len, arg);
	return die_usage(prog, "unknown option '%.*s'", len, arg);
}

static volatile sig_atomic_t sigint_seen, sigint_soft;

static void on_sigint(int sig)
{
	sigint_seen = 1;
	if (!sigint_soft) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
}

void interrupt_soft(int on)
{
	static int installed;

	if (!installed) {
		struct sigaction sa, old;

		/* a SIGINT the parent ignores (a background job) stays so */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_sigint;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESTART;
		if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaction(SIGINT, &sa, NULL);
		installed = 1;
	}
	sigint_soft = on;
}

int interrupted(void)
{
	return sigint_seen;
}

void interrupt_clear(void)
{
	sigint_seen = 0;
}

void interrupt_exit(void)
{
	fflush(stdout);
	signal(SIGINT, SIG_DFL);
	raise(SIGINT);
	_exit(130);	/* SIGINT was blocked or ignored */
}

int finish_stdout(const char *prog)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: cannot write to standard output: %s\n",
			prog, strerror(errno));
		return 1;
	}
	return 0;
}

int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int parse_double(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

int resolve_model(char **out, const char *arg, struct hf_err *err)
{
	char *repo = NULL, *rev = NULL;

	if (!strcmp(arg, "-") || hf_file_exists(arg) || hf_dir_exists(arg) ||
	    !strchr(arg, '/') || arg[0] == '.' || arg[0] == '/' ||
	    hf_hub_parse_spec(&repo, &rev, arg, NULL)) {
		*out = strdup(arg);
		return *out ? 0 : hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	free(repo);
	free(rev);
	return hf_hub_resolve_model(out, arg, err);
}
