/* Tests for lib/hub/http.c: how failed responses become errors, which are
 * retried and how long to wait. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "hub/internal.h"

static struct hf_hub hub = {
	.endpoint = "https://hub.test",
	.origin = "https://hub.test",
	.retries = 5,
};

static const char url[] = "https://hub.test/org/m/resolve/main/config.json";

static struct hub_resp resp(long status, const char *code, const char *msg)
{
	struct hub_resp rs;

	memset(&rs, 0, sizeof(rs));
	rs.status = status;
	rs.linked_size = rs.length = -1;
	snprintf(rs.error_code, sizeof(rs.error_code), "%s", code);
	snprintf(rs.error_msg, sizeof(rs.error_msg), "%s", msg);
	return rs;
}

static void expect(struct hub_resp rs, const char *file, int code,
		   const char *msg)
{
	struct hf_err err = { 0 };

	assert_int_equal(hub_error(&err, &hub, &rs, url, "org/m", "main", file, 1),
			 code);
	assert_int_equal(err.code, code);
	assert_string_equal(err.msg, msg);
}

static void test_errors_name_repo_revision_and_file(void **state)
{
	expect(resp(404, "RevisionNotFound", "Invalid rev id: main"), NULL,
	       HF_ENOTFOUND, "revision 'main' not found in 'org/m'");
	expect(resp(404, "EntryNotFound", "Entry not found"), "config.json",
	       HF_ENOTFOUND, "file 'config.json' not found in 'org/m' at revision 'main'");
	expect(resp(401, "RepoNotFound", "Repository not found"), NULL,
	       HF_ENOTFOUND, "repository 'org/m' not found, or private and no "
	       "token was given (set HF_TOKEN) (401: Repository not found)");
	expect(resp(401, "GatedRepo", "Please log in."), NULL, HF_EAUTH,
	       "'org/m' is gated (401): Please log in.");
	expect(resp(403, "GatedRepo", "Ask for access."), NULL, HF_EAUTH,
	       "'org/m' is gated (403): Ask for access.");
	expect(resp(401, "", "Invalid credentials in Authorization header"), NULL,
	       HF_EAUTH, "invalid token (401 from hub.test): Invalid credentials "
	       "in Authorization header");
	expect(resp(403, "", "fine-grained token lacks read"), NULL, HF_EAUTH,
	       "access to 'org/m' forbidden (403): fine-grained token lacks read");
	expect(resp(403, "", "Access to this resource is disabled."), NULL,
	       HF_EAUTH, "'org/m' is disabled: Access to this resource is disabled.");
	expect(resp(503, "", ""), NULL, HF_ENET, "server error 503 from hub.test");
}

static void test_error_body_json_is_the_message(void **state)
{
	struct hub_resp rs = resp(401, "", "");
	char body[] = "{\"error\": [\"Invalid credentials in Authorization header\"]}";

	rs.body = body;
	rs.body_len = strlen(body);
	expect(rs, NULL, HF_EAUTH, "invalid token (401 from hub.test): Invalid "
	       "credentials in Authorization header");
}

static void test_token_holder_gets_another_not_found(void **state)
{
	hub.token = "hf_x";
	expect(resp(401, "RepoNotFound", "Repository not found"), NULL,
	       HF_ENOTFOUND, "repository 'org/m' not found, or the token cannot "
	       "read it (401: Repository not found)");
	hub.token = NULL;
}

static void test_rate_limit_message_says_the_wait(void **state)
{
	struct hub_resp rs = resp(429, "", "");
	struct hf_err err = { 0 };

	strcpy(rs.retry_after, "30");
	hub_error(&err, &hub, &rs, url, "org/m", "main", NULL, 6);
	assert_string_equal(err.msg, "rate limited by hub.test (429) (after 6 "
			    "attempts); it asks to wait 30 s");
}

static void test_connection_errors(void **state)
{
	struct hub_resp rs = resp(0, "", "");
	struct hf_err err = { 0 };

	rs.curl = CURLE_COULDNT_CONNECT;
	strcpy(rs.curl_msg, "Failed to connect");
	assert_true(hub_retryable(&rs));
	hub_error(&err, &hub, &rs, url, "org/m", "main", NULL, 3);
	assert_int_equal(err.code, HF_ENET);
	assert_string_equal(err.msg, "cannot reach hub.test (after 3 attempts): "
			    "Failed to connect");
	rs.curl = CURLE_OPERATION_TIMEDOUT;
	hub_error(&err, &hub, &rs, url, "org/m", "main", NULL, 1);
	assert_string_equal(err.msg, "timed out talking to hub.test: Failed to connect");
}

static void test_what_is_retried(void **state)
{
	long yes[] = { 408, 429, 500, 502, 503, 504 };
	long no[] = { 200, 206, 302, 400, 401, 403, 404, 416 };
	struct hub_resp rs;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		rs = resp(yes[i], "", "");
		if (!hub_retryable(&rs))
			fail_msg("status %ld is not retried", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		rs = resp(no[i], "", "");
		if (hub_retryable(&rs))
			fail_msg("status %ld is retried", no[i]);
	}
	rs = resp(0, "", "");
	rs.curl = CURLE_WRITE_ERROR;	/* our disk, not the network */
	assert_false(hub_retryable(&rs));
}

static void test_429_waits_what_the_server_asks(void **state)
{
	struct hub_resp rs = resp(429, "", "");

	strcpy(rs.retry_after, "3");
	for (int i = 0; i < 20; i++) {
		double d = hub_retry_delay(&rs, 0);

		if (d < 3.0 || d >= 4.0)
			fail_msg("delay %g for Retry-After: 3", d);
	}
	rs = resp(500, "", "");
	for (int i = 0; i < 20; i++) {
		double d = hub_retry_delay(&rs, 2);

		if (d < 2.0 || d > 4.0)
			fail_msg("delay %g for the third retry", d);
	}
}

static void feed(struct hub_resp *rs, const char *line)
{
	hub_header_line(rs, line, strlen(line));
}

static void test_header_lines_of_an_lfs_head(void **state)
{
	struct hub_resp rs;

	memset(&rs, 0, sizeof(rs));
	feed(&rs, "HTTP/1.1 302 Found\r\n");
	assert_int_equal(rs.linked_size, -1);
	feed(&rs, "x-repo-commit: 0123456789abcdef0123456789abcdef01234567\r\n");
	feed(&rs, "ETag: \"4e41703eb133c04d64979d4a11d48e0530b4b49a\"\r\n");
	feed(&rs, "X-Linked-ETag:   \"b8da20a9\"  \r\n");
	feed(&rs, "X-LINKED-SIZE: 632240\r\n");
	feed(&rs, "Content-Length: 0\r\n");
	feed(&rs, "Location: https://cdn.test/x?sig=a:b\r\n");
	feed(&rs, "X-Error-Message: a: colon inside\r\n");
	feed(&rs, "\r\n");
	assert_string_equal(rs.commit, "0123456789abcdef0123456789abcdef01234567");
	assert_string_equal(rs.etag, "\"4e41703eb133c04d64979d4a11d48e0530b4b49a\"");
	assert_string_equal(rs.linked_etag, "\"b8da20a9\"");
	assert_int_equal(rs.linked_size, 632240);
	assert_int_equal(rs.length, 0);
	assert_string_equal(rs.location, "https://cdn.test/x?sig=a:b");
	assert_string_equal(rs.error_msg, "a: colon inside");
	/* the next response of the same transfer starts clean */
	feed(&rs, "HTTP/1.1 200 OK\r\n");
	assert_string_equal(rs.commit, "");
	assert_string_equal(rs.location, "");
	assert_int_equal(rs.linked_size, -1);
}

static void test_bad_sizes_are_ignored(void **state)
{
	struct hub_resp rs;

	memset(&rs, 0, sizeof(rs));
	feed(&rs, "HTTP/1.1 200 OK\r\n");
	feed(&rs, "Content-Length: 12abc\r\n");
	feed(&rs, "X-Linked-Size: -5\r\n");
	assert_int_equal(rs.length, -1);
	assert_int_equal(rs.linked_size, -1);
	feed(&rs, "Content-Range: bytes 5-9/10\r\n");
	feed(&rs, "Retry-After: 30\r\n");
	feed(&rs, "RateLimit: \"api\";r=0;t=55\r\n");
	assert_string_equal(rs.content_range, "bytes 5-9/10");
	assert_true(hf_hub_retry_after(rs.retry_after, rs.ratelimit) == 55.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors_name_repo_revision_and_file),
		cmocka_unit_test(test_error_body_json_is_the_message),
		cmocka_unit_test(test_token_holder_gets_another_not_found),
		cmocka_unit_test(test_rate_limit_message_says_the_wait),
		cmocka_unit_test(test_connection_errors),
		cmocka_unit_test(test_what_is_retried),
		cmocka_unit_test(test_429_waits_what_the_server_asks),
		cmocka_unit_test(test_header_lines_of_an_lfs_head),
		cmocka_unit_test(test_bad_sizes_are_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
