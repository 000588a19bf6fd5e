/* tools/cli.h: what every command shares: errors, usage, stdout checks. */
#ifndef HF_TOOLS_CLI_H
#define HF_TOOLS_CLI_H

#include <stdio.h>

#include "core/err.h"

#define HF_COMMAND(name, summary) int cmd_##name(int argc, char **argv);
#include "commands.h"
#undef HF_COMMAND

/* Print "<prog>: <err->msg>" to stderr; returns 1 (runtime failure). */
int die_err(const char *prog, const struct hf_err *err);

/* Print "<prog>: <message>" to stderr; returns 1. */
int die(const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A usage error: "<prog>: <message>" and "Try '<prog> --help' for more
 * information." to stderr; returns 2. The usage itself goes to stdout,
 * for --help only. */
int die_usage(const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* After getopt_long (with opterr = 0 and an optstring that starts with
 * ':') returned '?' or ':': "<prog>: unknown option '--x'", "option '-j'
 * needs a value" or "option '--quiet' takes no value", as die_usage();
 * returns 2. */
int die_bad_option(const char *prog, int c, char **argv);

/* Ctrl-C. By default SIGINT ends a command at once (what it has written
 * is flushed record by record, and the line editor restores the
 * terminal itself). Between interrupt_soft(1) and interrupt_soft(0) it
 * only sets interrupted(), which a loop polls to stop at its next step;
 * the command then finishes its output and calls interrupt_exit(), which
 * flushes stdout and ends it by SIGINT, so that a shell sees status 130
 * and stops its script too. */
void interrupt_soft(int on);
int interrupted(void);
void interrupt_clear(void);
void interrupt_exit(void) __attribute__((noreturn));

/* Flush stdout and check it: returns 0, or 1 after a message if a write
 * failed (a full disk must not look like success). */
int finish_stdout(const char *prog);

/* A model argument (-m, or hf-inspect's operand) to a path: one that exists
 * (or "-") is used as is; "org/name[@rev]" that is not a local path goes
 * through the Hub cache (fetching unless HF_HUB_OFFLINE is set). A bare
 * name stays a path, so a mistyped directory is reported as such rather
 * than looked up on the network. *out is malloc'd. */
int resolve_model(char **out, const char *arg, struct hf_err *err);

/* Parse a non-negative integer option; returns 0 or -1. */
int parse_long(const char *s, long min, long max, long *out);
int parse_double(const char *s, double *out);

#endif
