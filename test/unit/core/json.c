/* Tests for lib/core/json.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/json.h"

static json_t *parse(const char *s)
{
	struct hf_err err = { 0 };
	json_t *v = NULL;

	assert_int_equal(hf_json_load_buf(&v, s, strlen(s), "t", &err), 0);
	return v;
}

static void test_load_error_names_file_line_column(void **state)
{
	struct hf_err err = { 0 };
	json_t *v;

	assert_int_equal(hf_json_load_buf(&v, "{\n \"a\": }", 9,
					  "config.json", &err), HF_EFORMAT);
	assert_null(v);
	assert_non_null(strstr(err.msg, "'config.json'"));
	assert_non_null(strstr(err.msg, "line 2"));
}

static void test_int_accepts_integral_reals_and_huge_values(void **state)
{
	json_t *o = parse("{\"a\": 3, \"b\": 4.0, \"c\": "
			  "1000000000000000019884624838656, \"d\": 1.5}");
	struct hf_err err = { 0 };
	int64_t v;

	assert_int_equal(hf_json_int(o, "a", 0, &v, "t", &err), 0);
	assert_int_equal(v, 3);
	assert_int_equal(hf_json_int(o, "b", 0, &v, "t", &err), 0);
	assert_int_equal(v, 4);
	assert_int_equal(hf_json_int(o, "c", 0, &v, "t", &err), 0);
	assert_int_equal(v, INT64_MAX);
	assert_int_equal(hf_json_int(o, "d", 0, &v, "cfg", &err), HF_EFORMAT);
	assert_string_equal(err.msg, "cfg: key 'd' must be an integer");
	assert_int_equal(hf_json_int(o, "zz", 7, &v, "t", &err), 0);
	assert_int_equal(v, 7);
	json_decref(o);
}

static void test_required_keys_report_missing(void **state)
{
	json_t *o = parse("{\"s\": \"x\", \"n\": null}");
	struct hf_err err = { 0 };
	const char *s;
	int64_t i;

	assert_int_equal(hf_json_req_str(o, "s", &s, "t", &err), 0);
	assert_string_equal(s, "x");
	assert_int_equal(hf_json_req_int(o, "n", &i, "config.json", &err),
			 HF_EFORMAT);
	assert_string_equal(err.msg, "config.json: missing key 'n'");
	assert_int_equal(hf_json_req_str(o, "s2", &s, "t", &err), HF_EFORMAT);
	json_decref(o);
}

static void test_bool_and_num_type_checks(void **state)
{
	json_t *o = parse("{\"b\": true, \"n\": 1e-6, \"s\": \"no\"}");
	struct hf_err err = { 0 };
	double d;
	int b;

	assert_int_equal(hf_json_bool(o, "b", 0, &b, "t", &err), 0);
	assert_true(b);
	assert_int_equal(hf_json_num(o, "n", 0, &d, "t", &err), 0);
	assert_true(d == 1e-6);
	assert_int_equal(hf_json_bool(o, "s", 0, &b, "t", &err), HF_EFORMAT);
	assert_int_equal(hf_json_num(o, "s", 0, &d, "t", &err), HF_EFORMAT);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_error_names_file_line_column),
		cmocka_unit_test(test_int_accepts_integral_reals_and_huge_values),
		cmocka_unit_test(test_required_keys_report_missing),
		cmocka_unit_test(test_bool_and_num_type_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
