/* tools/hf.c: the multi-call binary. Dispatches on basename(argv[0]) minus
 * "hf-" (so hf-run can be a link to hf), else on the first word (hf run). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tensor/matmul.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
#define HF_COMMAND(name, summary) { #name, cmd_##name, summary },
#include "commands.h"
#undef HF_COMMAND
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(void)
{
	fputs("usage: hf <command> [<args>...]\n"
	      "       hf-<command> [<args>...]\n"
	      "       hf --version\n\ncommands:\n", stdout);
	for (size_t i = 0; i < NCOMMANDS; i++)
		printf("  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs("\n'hf <command> --help' describes one command.\n", stdout);
}

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	const struct command *c;

	/* "| head": a reader that goes away ends us quietly, by SIGPIPE,
	 * even where a parent left SIGPIPE ignored (EPIPE would make each
	 * command report a failed write) */
	signal(SIGPIPE, SIG_DFL);
	base = base ? base + 1 : argv[0];
	if (!strncmp(base, "hf-", 3)) {
		c = find(base + 3);
		if (!c) {
			fprintf(stderr, "hf: '%s' is not an hf command\n",
				base);
			return 2;
		}
		return c->fn(argc, argv);
	}
	if (argc < 2) {
		fputs("hf: a command is required:", stderr);
		for (size_t i = 0; i < NCOMMANDS; i++)
			fprintf(stderr, " %s", commands[i].name);
		fputs("\nTry 'hf --help' for more information.\n", stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		if (argc > 2 && (c = find(argv[2]))) {
			char *av[] = { argv[2], "--help", NULL };

			return c->fn(2, av);
		}
		usage();
		return finish_stdout("hf");
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		/* the kernels hf_matmul chose (HF_CPU overrides) */
		printf("hf %s\ncpu %s\n", HF_VERSION, hf_matmul_isa_name());
		return finish_stdout("hf");
	}
	c = find(argv[1]);
	if (!c) {
		fprintf(stderr, "hf: '%s' is not an hf command\n"
			"Try 'hf --help' for more information.\n", argv[1]);
		return 2;
	}
	/* argv[1] becomes the program name; getopt starts after it */
	return c->fn(argc - 1, argv + 1);
}
