/* tools/pull.c: hf-pull, download a model from the Hub into the shared
 * (huggingface_hub) cache and print its snapshot directory. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/log.h"
#include "hub/hub.h"

static const char usage[] =
	"usage: hf-pull <repo>[@<revision>] [<file>...] [--include <glob>]...\n"
	"               [--exclude <glob>]... [--revision <revision>]\n"
	"               [--repo-type model|dataset|space] [--local-dir <dir>]\n"
	"               [--cache-dir <dir>] [--token <token>] [-j <jobs>]\n"
	"               [--offline] [--dry-run] [--quiet]\n";

enum {
	OPT_INCLUDE = 256, OPT_EXCLUDE, OPT_REVISION, OPT_REPO_TYPE,
	OPT_LOCAL_DIR, OPT_CACHE_DIR, OPT_TOKEN, OPT_OFFLINE, OPT_DRY_RUN,
};

static const struct option longopts[] = {
	{ "include", required_argument, NULL, OPT_INCLUDE },
	{ "exclude", required_argument, NULL, OPT_EXCLUDE },
	{ "revision", required_argument, NULL, OPT_REVISION },
	{ "repo-type", required_argument, NULL, OPT_REPO_TYPE },
	{ "local-dir", required_argument, NULL, OPT_LOCAL_DIR },
	{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
	{ "token", required_argument, NULL, OPT_TOKEN },
	{ "jobs", required_argument, NULL, 'j' },
	{ "offline", no_argument, NULL, OPT_OFFLINE },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int cmd_pull(int argc, char **argv)
{
	static const char prog[] = "hf-pull";
	struct hf_err err = { 0 };
	struct hf_hub_opts opts = { 0 };
	struct hf_hub_request req = { 0 };
	struct hf_hub *h = NULL;
	struct hf_hub_plan *p = NULL;
	const char **inc = NULL, **exc = NULL;
	char *repo = NULL, *spec_rev = NULL;
	const char *revision = NULL;
	int dry_run = 0, c, rc = 1;
	long jobs;

	inc = calloc((size_t)argc + 1, sizeof(*inc));
	exc = calloc((size_t)argc + 1, sizeof(*exc));
	if (!inc || !exc) {
		rc = die(prog, "out of memory");
		goto out;
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hj:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			rc = finish_stdout(prog);
			goto out;
		case OPT_INCLUDE:
			inc[req.ninclude++] = optarg;
			break;
		case OPT_EXCLUDE:
			exc[req.nexclude++] = optarg;
			break;
		case OPT_REVISION:
			revision = optarg;
			break;
		case OPT_REPO_TYPE:
			if (!strcmp(optarg, "model")) {
				req.type = HF_HUB_MODEL;
			} else if (!strcmp(optarg, "dataset")) {
				req.type = HF_HUB_DATASET;
			} else if (!strcmp(optarg, "space")) {
				req.type = HF_HUB_SPACE;
			} else {
				rc = die_usage(prog, "--repo-type: '%s' is not "
					       "model, dataset or space", optarg);
				goto out;
			}
			break;
		case OPT_LOCAL_DIR:
			req.local_dir = optarg;
			break;
		case OPT_CACHE_DIR:
			opts.cache_dir = optarg;
			break;
		case OPT_TOKEN:
			opts.token = optarg;
			break;
		case 'j':
			if (parse_long(optarg, 1, 64, &jobs)) {
				rc = die_usage(prog, "-j: '%s' is not a number "
					       "from 1 to 64", optarg);
				goto out;
			}
			opts.jobs = (int)jobs;
			break;
		case OPT_OFFLINE:
			opts.offline = 1;
			break;
		case OPT_DRY_RUN:
			dry_run = 1;
			break;
		case 'q':
			opts.quiet = 1;
			break;
		default:
			rc = die_bad_option(prog, c, argv);
			goto out;
		}
	}
	if (optind >= argc) {
		rc = die_usage(prog, "a repo id is required");
		goto out;
	}
	if (hf_hub_parse_spec(&repo, &spec_rev, argv[optind], &err)) {
		rc = die_usage(prog, "%s", err.msg);
		goto out;
	}
	if (spec_rev && revision && strcmp(spec_rev, revision)) {
		rc = die_usage(prog, "revision '%s' in '%s' and --revision "
			       "'%s' disagree", spec_rev, argv[optind], revision);
		goto out;
	}
	if (opts.quiet)
		hf_log_set_level(HF_LOG_ERROR);
	req.repo_id = repo;
	req.revision = spec_rev ? spec_rev : revision;
	req.files = (const char *const *)argv + optind + 1;
	req.nfiles = (size_t)(argc - optind - 1);
	req.include = inc;
	req.exclude = exc;
	if (hf_hub_open(&h, &opts, &err) || hf_hub_plan(&p, h, &req, &err)) {
		rc = die_err(prog, &err);
		goto out;
	}
	if (dry_run) {
		size_t nfetch = 0;

		for (size_t i = 0; i < p->nfiles; i++) {
			const struct hf_hub_file *f = &p->files[i];

			printf("%llu\t%s\t%s\n", (unsigned long long)f->size,
			       f->cached ? "cached" : "fetch", f->path);
			nfetch += !f->cached;
		}
		if (!opts.quiet)
			fprintf(stderr, "%s: %zu file%s, %zu to fetch (%llu bytes), "
				"commit %s\n", prog, p->nfiles,
				p->nfiles == 1 ? "" : "s", nfetch,
				(unsigned long long)p->bytes, p->commit);
		rc = finish_stdout(prog);
		goto out;
	}
	if (hf_hub_fetch(h, p, &err)) {
		rc = die_err(prog, &err);
		goto out;
	}
	printf("%s\n", p->dir);
	rc = finish_stdout(prog);
out:
	hf_hub_plan_free(p);
	hf_hub_free(h);
	free(repo);
	free(spec_rev);
	free(inc);
	free(exc);
	return rc;
}
