/* tools/inspect.c: hf-inspect (being written; see issue 2). */
#include "cli.h"

int cmd_inspect(int argc, char **argv)
{
	return die("hf-inspect", "not built yet");
}
