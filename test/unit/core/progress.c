/* Tests for lib/core/progress.c: what the bar says (bar, percentage,
 * amounts, rate, time left, time taken), that it draws nothing off a
 * terminal, and that it redraws at most ten times a second. stderr goes
 * to a temporary file for each test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/progress.h"

static FILE *cap;
static int saved = -1;

static int grab(void **state)
{
	cap = tmpfile();
	assert_non_null(cap);
	fflush(stderr);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fileno(cap), 2), 2);
	return 0;
}

static int release(void **state)
{
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	fclose(cap);
	return 0;
}

/* What stderr got since grab(), NUL-terminated; the caller frees it. */
static char *got(void)
{
	long n;
	char *s;

	fflush(stderr);
	n = lseek(fileno(cap), 0, SEEK_END);
	assert_true(n >= 0);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(pread(fileno(cap), s, (size_t)n, 0), n);
	return s;
}

/* A bar that has been running for el seconds. The figures of the tests
 * come out the same if a test is held up for up to half a second. */
static void start(struct hf_progress *p, const char *label, uint64_t total,
		  int bytes, double el)
{
	hf_progress_init(p, label, total, bytes);
	p->enabled = 1;		/* as on a terminal */
	p->start = hf_now() - el;
}

static void test_off_a_terminal_draws_nothing(void **state)
{
	struct hf_progress p;
	char *s;

	setenv("HF_PROGRESS", "1", 1);
	hf_progress_init(&p, "Fetching", 100, 1);
	assert_int_equal(p.enabled, 0);	/* stderr is a file */
	hf_progress_update(&p, 50);
	hf_progress_finish(&p);
	s = got();
	assert_string_equal(s, "");
	free(s);
	unsetenv("HF_PROGRESS");
}

static void test_bytes_rate_and_time_left(void **state)
{
	struct hf_progress p;
	char *s;

	start(&p, "Fetching 2 files", 2000000000000, 1, 20000);
	hf_progress_update(&p, 1000000000000);
	s = got();
	assert_string_equal(s, "\rFetching 2 files [############------------]"
			    "  50% 1.0 TB/2.0 TB 50.0 MB/s ETA 5h33m\033[K");
	free(s);
}

static void test_redraws_at_most_ten_times_a_second(void **state)
{
	struct hf_progress p;
	char *s;

	start(&p, "x", 10000, 0, 1000);
	hf_progress_update(&p, 1000);
	hf_progress_update(&p, 2000);	/* too soon: not drawn */
	s = got();
	assert_non_null(strstr(s, " 10% 1000/10000 1/s ETA 2h30m"));
	assert_null(strstr(s, " 20%"));
	free(s);
	assert_int_equal(p.done, 2000);	/* but counted */
}

static void test_long_waits_read_as_hours_and_minutes(void **state)
{
	struct hf_progress p;
	char *s;

	start(&p, "x", 13600, 0, 3600);
	hf_progress_update(&p, 3600);	/* 1/s: 10000 s left */
	s = got();
	assert_non_null(strstr(s, "ETA 2h46m"));
	free(s);
}

static void test_finish_says_how_long_it_took(void **state)
{
	struct hf_progress p;
	char *s;

	start(&p, "Fetching 1 file", 2000, 1, 125);
	p.done = 2000;
	hf_progress_finish(&p);
	s = got();
	assert_non_null(strstr(s, "[########################] 100% "
			       "2.0 kB/2.0 kB 16 B/s in 2m05s\033[K\n"));
	free(s);
}

/* A restarted download can count more than the total for a moment. */
static void test_more_than_the_total_stays_at_the_total(void **state)
{
	struct hf_progress p;
	char *s;

	start(&p, "x", 100, 0, 100);
	hf_progress_update(&p, 150);
	s = got();
	assert_non_null(strstr(s, "[########################] 100% 100/100"
			       " 1/s ETA 0.0s"));
	free(s);
}

static void test_no_total_shows_a_count_and_a_rate(void **state)
{
	struct hf_progress p;
	char *s;

	start(&p, "perplexity", 0, 0, 1000);
	hf_progress_update(&p, 500000);
	hf_progress_finish(&p);
	s = got();
	assert_non_null(strstr(s, "\rperplexity 500000 500/s\033[K"));
	assert_non_null(strstr(s, "\rperplexity 500000 500/s in 16m40s\033[K\n"));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_off_a_terminal_draws_nothing,
						grab, release),
		cmocka_unit_test_setup_teardown(test_bytes_rate_and_time_left,
						grab, release),
		cmocka_unit_test_setup_teardown(
			test_redraws_at_most_ten_times_a_second, grab, release),
		cmocka_unit_test_setup_teardown(
			test_long_waits_read_as_hours_and_minutes, grab, release),
		cmocka_unit_test_setup_teardown(test_finish_says_how_long_it_took,
						grab, release),
		cmocka_unit_test_setup_teardown(
			test_more_than_the_total_stays_at_the_total, grab, release),
		cmocka_unit_test_setup_teardown(
			test_no_total_shows_a_count_and_a_rate, grab, release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
