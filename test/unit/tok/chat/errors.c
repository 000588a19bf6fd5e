/* Errors and limits of lib/tok/chat, and how templates are found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tok/chat/chat.h"

/* Load and render tmpl with one user message; returns the error code. */
static int try_render(const char *tmpl, struct hf_err *err, char **out)
{
	json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user", "content",
				 "hi");
	struct hf_chat *c = NULL;
	int rc;

	*out = NULL;
	rc = hf_chat_load_string(&c, tmpl, NULL, err);
	if (!rc)
		rc = hf_chat_render(c, NULL, msgs, NULL, NULL, 0, NULL, out,
				    err);
	hf_chat_free(c);
	json_decref(msgs);
	return rc;
}

static void expect_error(const char *tmpl, int code, const char *part)
{
	struct hf_err err = { 0 };
	char *out;
	int rc = try_render(tmpl, &err, &out);

	if (rc != code || !strstr(err.msg, part))
		fail_msg("template %s\n  got rc %d '%s', want rc %d with '%s'",
			 tmpl, rc, err.msg, code, part);
	assert_null(out);
}

static void test_raise_exception_gives_the_template_message(void **state)
{
	struct hf_err err = { 0 };
	char *out;

	assert_int_equal(try_render("{% if messages[0].role == 'user' %}"
		"{{ raise_exception('Bad role: ' ~ messages[0].role) }}"
		"{% endif %}", &err, &out), HF_EINVAL);
	assert_string_equal(err.msg, "Bad role: user");
	assert_null(out);
}

static void test_syntax_errors_name_the_line(void **state)
{
	expect_error("line1\n{% if %}", HF_EFORMAT, "line 2");
	expect_error("a\n\n{% foo %}", HF_EFORMAT, "line 3: unknown tag 'foo'");
	expect_error("a\n{{ x", HF_EFORMAT, "line 2");
	expect_error("{% for x in y %}\n\nno end", HF_EFORMAT, "endfor");
	expect_error("{{ (1 }}", HF_EFORMAT, "line 1");
	expect_error("\n{{ 1 + }}", HF_EFORMAT, "line 2");
	expect_error("{% break %}", HF_EFORMAT, "outside of a loop");
	expect_error("{{ 'abc }}", HF_EFORMAT, "unterminated string");
	expect_error("{# never closed", HF_EFORMAT, "comment");
	expect_error("{% if true %}{% endfor %}", HF_EFORMAT, "endfor");
	expect_error("{% set 1 = 2 %}", HF_EFORMAT, "assign");
	expect_error("{% set true = 42 %}", HF_EFORMAT, "assign");
	expect_error("{% for none in x %}{% endfor %}", HF_EFORMAT, "assign");
	expect_error("{{ foo is string is sequence }}", HF_EFORMAT,
		     "cannot chain");
	/* unknown filters fail when compiled, except inside if */
	expect_error("{{ 'x' | nosuch }}", HF_EFORMAT, "no filter named 'nosuch'");
	expect_error("{{ 1 is nosuch }}", HF_EFORMAT, "no test named 'nosuch'");
}

static void test_unknown_filter_in_untaken_branch_renders(void **state)
{
	struct hf_err err = { 0 };
	char *out;

	assert_int_equal(try_render("a{% if false %}{{ x | nosuch }}"
				    "{% endif %}", &err, &out), 0);
	assert_string_equal(out, "a");
	free(out);
	expect_error("{% if true %}{{ 1 | nosuch }}{% endif %}", HF_EINVAL,
		     "no filter named 'nosuch'");
	/* a loop or macro body is a new frame, which is not soft */
	expect_error("{% if false %}{% for x in y %}{{ x | nosuch }}"
		     "{% endfor %}{% endif %}", HF_EFORMAT, "nosuch");
	expect_error("{% if false %}{% macro m() %}{{ x | nosuch }}"
		     "{% endmacro %}{% endif %}", HF_EFORMAT, "nosuch");
}

static void test_runtime_errors_name_template_and_line(void **state)
{
	expect_error("{{ 1 }}\n{{ 1 + 'a' }}", HF_EINVAL,
		     "chat template 'default': line 2: unsupported operand "
		     "type(s) for +: 'int' and 'str'");
	expect_error("{{ foo.bar }}", HF_EINVAL, "'foo' is undefined");
	expect_error("{{ messages[0].nope.x }}", HF_EINVAL,
		     "'dict object' has no attribute 'nope'");
	expect_error("{{ foo + 1 }}", HF_EINVAL, "'foo' is undefined");
	expect_error("{{ nosuch() }}", HF_EINVAL, "'nosuch' is undefined");
	expect_error("{{ [1].append(2) }}", HF_EINVAL, "unsafe");
	expect_error("{{ 'a' in none }}", HF_EINVAL, "not iterable");
	expect_error("{{ '</think>' in messages[0].nothing.x }}", HF_EINVAL,
		     "no attribute 'nothing'");
	expect_error("{{ 1 // 0 }}", HF_EINVAL, "by zero");
	expect_error("{{ 1 < 'a' }}", HF_EINVAL, "not supported between");
	expect_error("{% for a, b in [1] %}{% endfor %}", HF_EINVAL,
		     "not iterable");
	expect_error("{{ 9223372036854775807 + 1 }}", HF_EINVAL, "overflow");
	expect_error("{{ {} | tojson(indent=[1]) }}", HF_EINVAL, "indent");
	expect_error("{{ [1, 2] | tojson ~ (x | tojson) }}", HF_EINVAL,
		     "not JSON serializable");
	expect_error("{% set x = 1 %}{% set x.a = 2 %}", HF_EINVAL,
		     "non-namespace");
	/* generators have no len(), no reversed() and no JSON form */
	expect_error("{{ [1] | select('odd') | length }}", HF_EINVAL,
		     "object of type 'generator' has no len()");
	expect_error("{{ [1] | map('string') | last }}", HF_EINVAL,
		     "'generator' object is not reversible");
	expect_error("{{ {'a': 1}.keys() | tojson }}", HF_EINVAL,
		     "Object of type dict_keys is not JSON serializable");
	/* Python's argument checks */
	expect_error("{{ [1] | sort(nope=1) }}", HF_EINVAL,
		     "unexpected keyword argument 'nope'");
	expect_error("{{ 'a' | upper(1) }}", HF_EINVAL, "positional argument");
	expect_error("{{ true is true(1) }}", HF_EINVAL, "takes 1 argument");
	expect_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", HF_EINVAL,
		     "takes not more than 1 argument");
	expect_error("{% macro m(a) %}{% endmacro %}{{ m(b=1) }}", HF_EINVAL,
		     "takes no keyword argument 'b'");
	expect_error("{{ x | int }}", HF_EINVAL, "'x' is undefined");
	expect_error("{{ '{} }'.format(1) }}", HF_EINVAL, "Single '}'");
	expect_error("{{ 01 }}", HF_EFORMAT, "line 1");
}

static void test_limits_stop_runaway_templates(void **state)
{
	/* recursion */
	expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
		     HF_ERANGE, "maximum recursion depth exceeded");
	/* work */
	expect_error("{% for i in range(100000) %}{% for j in range(100000) %}"
		     "{% endfor %}{% endfor %}", HF_ERANGE, "steps");
	/* output size */
	expect_error("{% set s = 'x' * 1000000 %}{% for i in range(100) %}"
		     "{{ s }}{% endfor %}", HF_ERANGE, "bytes");
	expect_error("{{ 'x' * 100000000000 }}", HF_ERANGE, "bytes");
	/* the sandbox's MAX_RANGE */
	expect_error("{{ range(1000000) | length }}", HF_EINVAL, "Range too big");
	/* parser nesting */
	{
		char deep[2000];
		size_t n = 0;

		n += sprintf(deep + n, "{{ ");
		for (int i = 0; i < 600; i++)
			deep[n++] = '(';
		deep[n++] = '1';
		for (int i = 0; i < 600; i++)
			deep[n++] = ')';
		sprintf(deep + n, " }}");
		expect_error(deep, HF_EFORMAT, "nested too deeply");
	}
	/* a namespace cannot be stored in itself (no reference cycles) */
	expect_error("{% set ns = namespace(a=1) %}{% set ns.a = ns %}",
		     HF_EINVAL, "namespace");
	expect_error("{% set ns = namespace(a=1) %}{% set d = {'x': [ns]} %}"
		     "{% set ns.a = d.get %}", HF_EINVAL, "namespace");
	expect_error("{% set ns = namespace() %}{{ namespace(x=[ns]) }}",
		     HF_EINVAL, "namespace");
}

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *render_named(struct hf_chat *c, const char *name,
			  const json_t *tools, struct hf_err *err)
{
	json_t *msgs = json_pack("[]");
	char *out = NULL;

	hf_chat_render(c, name, msgs, tools, NULL, 0, NULL, &out, err);
	json_decref(msgs);
	return out;
}

static void test_named_templates_and_file_priority(void **state)
{
	struct hf_err err = { 0 };
	struct hf_chat *c = NULL;
	json_t *tools = json_pack("[{s:s}]", "type", "function");
	char *out;

	strcpy(tmpdir, "/tmp/hf-chat-test-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));

	/* no template at all */
	write_file("tokenizer_config.json", "{\"bos_token\": \"<s>\"}");
	assert_int_equal(hf_chat_load(&c, tmpdir, &err), HF_ENOTFOUND);
	assert_non_null(strstr(err.msg, tmpdir));

	/* a list of named templates; default first, tool_use with tools */
	write_file("tokenizer_config.json", "{\"bos_token\": {\"content\": "
		   "\"<s>\", \"__type\": \"AddedToken\"}, \"chat_template\": "
		   "[{\"name\": \"tool_use\", \"template\": \"T{{ bos_token }}"
		   "\"}, {\"name\": \"default\", \"template\": \"D{{ bos_token "
		   "}}\"}], \"model_max_length\": "
		   "1000000000000000019884624838656}");
	assert_int_equal(hf_chat_load(&c, tmpdir, &err), 0);
	assert_int_equal(hf_chat_count(c), 2);
	assert_string_equal(hf_chat_name(c, 0), "default");
	assert_string_equal(hf_chat_name(c, 1), "tool_use");
	assert_null(hf_chat_name(c, 2));
	out = render_named(c, NULL, NULL, &err);
	assert_string_equal(out, "D<s>");
	free(out);
	out = render_named(c, NULL, tools, &err);
	assert_string_equal(out, "T<s>");
	free(out);
	out = render_named(c, "tool_use", NULL, &err);
	assert_string_equal(out, "T<s>");
	free(out);
	assert_null(render_named(c, "nosuch", NULL, &err));
	assert_int_equal(err.code, HF_ENOTFOUND);
	assert_non_null(strstr(err.msg, "'nosuch'"));
	hf_chat_free(c);

	/* chat_template.jinja beats tokenizer_config.json */
	write_file("chat_template.jinja", "J{{ bos_token }}\n");
	assert_int_equal(hf_chat_load(&c, tmpdir, &err), 0);
	out = render_named(c, NULL, NULL, &err);
	assert_string_equal(out, "J<s>");
	free(out);
	hf_chat_free(c);

	/* a syntax error names the file and the template */
	write_file("chat_template.jinja", "ok\n{% if %}");
	assert_int_equal(hf_chat_load(&c, tmpdir, &err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "chat_template.jinja"));
	assert_non_null(strstr(err.msg, "line 2"));

	{
		char path[256];

		snprintf(path, sizeof(path), "%s/chat_template.jinja", tmpdir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/tokenizer_config.json", tmpdir);
		unlink(path);
	}
	/* the legacy chat_template.json */
	write_file("chat_template.json", "{\"chat_template\": \"L{{ 1 + 1 }}\"}");
	assert_int_equal(hf_chat_load(&c, tmpdir, &err), 0);
	out = render_named(c, NULL, NULL, &err);
	assert_string_equal(out, "L2");
	free(out);
	hf_chat_free(c);
	{
		char path[256];

		snprintf(path, sizeof(path), "%s/chat_template.json", tmpdir);
		unlink(path);
	}
	rmdir(tmpdir);
	json_decref(tools);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raise_exception_gives_the_template_message),
		cmocka_unit_test(test_syntax_errors_name_the_line),
		cmocka_unit_test(test_unknown_filter_in_untaken_branch_renders),
		cmocka_unit_test(test_runtime_errors_name_template_and_line),
		cmocka_unit_test(test_limits_stop_runaway_templates),
		cmocka_unit_test(test_named_templates_and_file_priority),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
