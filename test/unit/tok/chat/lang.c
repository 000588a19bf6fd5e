/* Language features of lib/tok/chat on small templates. Each expected
 * string is what Python Jinja2 3.1 prints with transformers' settings
 * (trim_blocks, lstrip_blocks, loopcontrols, ImmutableSandboxedEnvironment,
 * tojson = json.dumps(ensure_ascii=False)), worked out from the Jinja2
 * source (lexer.py, parser.py, filters.py, tests.py) and Python's rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tok/chat/chat.h"

struct case_ {
	const char *tmpl;
	const char *want;
};

/* Variables every case sees. */
static const char vars_json[] =
	"{\"d\": {\"a\": 1, \"b\": [2, 3]}, \"s\": \"Hello\", \"n\": null,"
	" \"msgs\": [{\"role\": \"system\", \"content\": \"S\"},"
	"  {\"role\": \"user\", \"content\": \"U1\", \"n\": 2},"
	"  {\"role\": \"assistant\", \"content\": \"A1\", \"flag\": true},"
	"  {\"role\": \"user\", \"content\": \"U2\", \"n\": 1}]}";

static char *render(const char *tmpl, struct hf_err *err, int *rc)
{
	json_error_t je;
	json_t *vars = json_loads(vars_json, 0, &je);
	struct hf_chat *c = NULL;
	char *out = NULL;

	assert_non_null(vars);
	*rc = hf_chat_load_string(&c, tmpl, NULL, err);
	if (!*rc)
		*rc = hf_chat_render(c, NULL, json_object_get(vars, "msgs"),
				     NULL, NULL, 1, vars, &out, err);
	hf_chat_free(c);
	json_decref(vars);
	return out;
}

static void run(const struct case_ *cases, size_t n)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		struct hf_err err = { 0 };
		int rc;
		char *got = render(cases[i].tmpl, &err, &rc);

		if (rc) {
			fprintf(stderr, "case %zu: %s\n  error: %s\n", i,
				cases[i].tmpl, err.msg);
			bad++;
		} else if (strcmp(got, cases[i].want)) {
			fprintf(stderr, "case %zu: %s\n  got:  [%s]\n"
				"  want: [%s]\n", i, cases[i].tmpl, got,
				cases[i].want);
			bad++;
		}
		free(got);
	}
	assert_int_equal(bad, 0);
}

#define RUN(t) run(t, sizeof(t) / sizeof(t[0]))

static void test_whitespace_control_matches_jinja(void **state)
{
	static const struct case_ t[] = {
		/* trim_blocks: the newline after a block tag goes */
		{ "{% if true %}\nyes\n{% endif %}\nend", "yes\nend" },
		/* lstrip_blocks: indentation before a block tag goes */
		{ "a\n    {% if true %}x{% endif %}\nb", "a\nxb" },
		{ "   {% if true %}x{% endif %}", "x" },
		/* neither touches {{ }} */
		{ "a\n  {{ 'x' }}\nb", "a\n  x\nb" },
		{ "a  \n {%- if true -%}  \n b {%- endif %}", "ab" },
		{ "x  {{- 'y' -}}  z", "xyz" },
		{ "  {%+ if true %}x{% endif %}", "  x" },
		{ "{% if true +%}\nx{% endif %}", "\nx" },
		{ "a {# c #} b", "a  b" },
		{ "a\n  {# c #}\nb", "a\nb" },
		{ "a {#- c -#} b", "ab" },
		/* one trailing newline of the template is dropped */
		{ "x\n", "x" },
		{ "x\n\n", "x\n" },
		{ "a\r\nb", "a\nb" },
		{ "{% raw %}{{ x }}{% endraw %}", "{{ x }}" },
		/* text before a tag with something else on the line stays */
		{ "a {% if true %}b{% endif %}", "a b" },
		{ "{{ '{' ~ '}' }}", "{}" },
		{ "{{ {'a': {'b': 1}} }}", "{'a': {'b': 1}}" },
	};
	RUN(t);
}

/* Cases from Jinja2's own test suite (tests/test_lexnparse.py), with
 * the expectations it asserts for trim_blocks + lstrip_blocks. */
static void test_cases_from_the_jinja_test_suite(void **state)
{
	static const struct case_ t[] = {
		{ "1  {%- raw -%}   2   {%- endraw -%}   3", "123" },
		{ "bar\n{% raw %}\n  {{baz}}2 spaces\n{% endraw %}\nfoo",
		  "bar\n\n  {{baz}}2 spaces\nfoo" },
		{ "{{ 1_2.3_4e5_6 }}|{{ 25.6e-10 }}|{{ 1e0 }}|{{ 10e1 }}|"
		  "{{ 2.5e100 }}|{{ 12_34_56 }}|{{ 3_4.5_6 }}",
		  "1.234e+57|2.56e-09|1.0|100.0|2.5e+100|123456|34.56" },
		{ "{{ [1, 2] ~ 'foo' }}|{{ 2 * (3 < 5) }}|{{{'foo':'bar'}.foo}}|"
		  "{{ \"foo\"|upper + \"bar\"|upper }}", "[1, 2]foo|2|bar|FOOBAR" },
		{ "{{ (1 + 1 * 2) - 3 / 2 }}|{{ 2**3 }}|{{ +3 }}|{{ [1, 2, 3].0 }}"
		  "|{{ [[1]].0.0 }}", "1.5|8|3|1|1" },
		{ "{{ (1, 2,) }}|{{ [1, 2,] }}|{{ {1: 2,} }}|{{ 1, }}|{{ 1, 2 }}",
		  "(1, 2)|[1, 2]|{1: 2}|(1,)|(1, 2)" },
		{ "{% for x in 1, 2 %}{{ x }}{% endfor %}"
		  "{% for x in 3, %}{{ x }}{% endfor %}", "123" },
		{ "{{ 42 is string or 42 is number }}|{{ not 42 in range(100) }}|"
		  "{{ 2 * 3 + 4 % 2 + 1 - 2 }}", "True|False|5" },
		{ "{% set foo = 0 %}{% for item in [1, 2] %}{% set foo = 1 %}"
		  "{% endfor %}{{ foo }}", "0" },
		{ "{{ -{'bar': 42}['bar'] }}|{{ -{'bar': 42}['bar']|abs }}|"
		  "{{ {(1, 2): 'x'}[1, 2] }}", "-42|42|x" },
		{ "    {% if True %}\n    {% endif %}", "" },
		{ "{# I'm a comment #}\n    {% for item in range(3) %}\n"
		  "    {{ item }}\n    {% endfor %}\n", "    0\n    1\n    2\n" },
		{ "{# c #}\n    {%+ for item in range(5) -%}\n        {{ item }}\n"
		  "    {%- endfor %}", "    01234" },
		{ "    {# c #}\n    {% for item in range(5) -%}\n        {{ item }}"
		  "\n    {%- endfor %}", "01234" },
		{ "    {% set x = \" {% str %} \" %}{{ x }}", " {% str %} " },
		{ "\n\n\n{% set hello = 1 %}", "\n\n\n" },
		{ "{{ true }}|{{ false }}|{{ none }}|{{ none is defined }}|"
		  "{{ missing is defined }}", "True|False|None|True|False" },
		{ "{{ True }}|{{ true }}|{{ TRUE }}", "True|True|" },
	};
	RUN(t);
}

static void test_values_print_as_python(void **state)
{
	static const struct case_ t[] = {
		{ "{{ none }}|{{ n }}|{{ true }}|{{ False }}", "None|None|True|False" },
		{ "{{ [1, 'a', none, true] }}", "[1, 'a', None, True]" },
		{ "{{ d }}", "{'a': 1, 'b': [2, 3]}" },
		{ "{{ (1, 2) }}{{ (1,) }}{{ () }}", "(1, 2)(1,)()" },
		{ "{{ 1.0 }} {{ 1/2 }} {{ 4/2 }} {{ 1e20 }} {{ 1.5e-7 }}",
		  "1.0 0.5 2.0 1e+20 1.5e-07" },
		{ "{{ 0.1 + 0.2 }}", "0.30000000000000004" },
		{ "{{ [\"it's\"] }}{{ ['a\\nb'] }}", "[\"it's\"]['a\\nb']" },
		{ "[{{ undefined_name }}]", "[]" },
		{ "{{ 'a\\tb\\\\n' }}|{{ \"\\u00e9\\x41\" }}", "a\tb\\n|\xc3\xa9" "A" },
		{ "{{ 'a' 'b' }}{{ 1_000 }}", "ab1000" },
		{ "{{ d.items() | list }}", "[('a', 1), ('b', [2, 3])]" },
	};
	RUN(t);
}

static void test_operators_follow_python_and_jinja_precedence(void **state)
{
	static const struct case_ t[] = {
		{ "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }}",
		  "3 -4 2 -2" },
		{ "{{ 2 ** 10 }} {{ 2 ** -1 }} {{ 1 + 2 * 3 }}", "1024 0.5 7" },
		/* Jinja binds unary minus tighter than ** (unlike Python) */
		{ "{{ -2 ** 2 }}", "4" },
		{ "{{ 'ab' * 3 }}{{ 2 * [0] }}", "ababab[0, 0]" },
		{ "{{ 1 ~ 2 ~ none ~ undefined_name }}", "12None" },
		{ "{{ 'a' + 'b' }}{{ [1] + [2] }}", "ab[1, 2]" },
		{ "[{{ 1 if false }}]{{ 'y' if 1 > 0 else 'n' }}", "[]y" },
		{ "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ true == 1 }}",
		  "True False True True" },
		{ "{{ 'b' in 'abc' }} {{ 2 not in [1, 3] }} {{ 'a' in d }} "
		  "{{ 'x' in undefined_name }}", "True True True False" },
		{ "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ not none }} {{ [] or none }}",
		  "x b True None" },
		{ "{{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ 'h\xc3\xa9llo'[1] }}",
		  "el olleh \xc3\xa9" },
		{ "{{ [1, 2, 3, 4][-2:] }} {{ [1, 2, 3, 4, 5][::2] }} "
		  "{{ [1, 2, 3][-1] }} {{ [1, 2, 3][5:] }}",
		  "[3, 4] [1, 3, 5] 3 []" },
		{ "{{ d.a }}{{ d['a'] }}{{ d.b.0 }}{{ d['b'][-1] }}", "1123" },
		{ "{{ {'k': 'v'}['k'] }}{{ [[1, 2]][0][1] }}", "v2" },
	};
	RUN(t);
}

static void test_statements_for_if_set_scoping(void **state)
{
	static const struct case_ t[] = {
		{ "{% for x in [] %}x{% else %}empty{% endfor %}", "empty" },
		{ "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}"
		  "{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}"
		  "{{ loop.last }}{{ loop.length }}|{% endfor %}",
		  "1032TrueFalse3|2121FalseFalse3|3210FalseTrue3|" },
		{ "{% for x in [1, 2, 3] %}{{ loop.previtem }}-"
		  "{{ loop.nextitem }},{% endfor %}", "-2,1-3,2-," },
		{ "{% for x in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}",
		  "aba" },
		{ "{% for x in range(6) if x is even %}{{ x }}{{ loop.last }} "
		  "{% endfor %}", "0False 2False 4True " },
		{ "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};"
		  "{% endfor %}", "a=1;b=2;" },
		{ "{% for k in d %}{{ k }}{% endfor %}", "ab" },
		{ "{% for x in range(10) %}{% if x == 2 %}{% continue %}"
		  "{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}"
		  "{% endfor %}", "013" },
		{ "{% for m in msgs if m.role != 'system' %}{{ loop.index }}"
		  "{{ m.content }}{% endfor %}", "1U12A13U2" },
		{ "{% if false %}a{% elif n is none %}b{% else %}c{% endif %}", "b" },
		/* a set in a loop body lives for one iteration */
		{ "{% set x = 1 %}{% for i in range(2) %}{% set x = x + 10 %}"
		  "{{ x }},{% endfor %}{{ x }}", "11,11,1" },
		/* if does not make a scope */
		{ "{% if true %}{% set y = 2 %}{% endif %}{{ y }}", "2" },
		{ "{% set ns = namespace(n=0, s='') %}{% for i in range(3) %}"
		  "{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", "3" },
		{ "{% set b %}hi {{ 1 }}{% endset %}[{{ b }}]", "[hi 1]" },
		{ "{% set b | upper %}hi{% endset %}{{ b }}", "HI" },
		{ "{% set a, b = 1, 2 %}{{ a }}{{ b }}", "12" },
		{ "{% with a = 1 %}{{ a }}{% endwith %}[{{ a }}]", "1[]" },
		{ "{% generation %}x{% endgeneration %}", "x" },
		{ "{% for x in 'ab' %}{{ loop }}{{ loop is mapping }}{% endfor %}",
		  "<LoopContext 1/2>False<LoopContext 2/2>False" },
		{ "{% filter upper %}abc{{ s }}{% endfilter %}", "ABCHELLO" },
		{ "{% set outer = 'o' %}{% for a in [1, 2] %}{% for b in [3] %}"
		  "{{ outer }}{{ a }}{{ b }}{{ loop.index }}{% endfor %}"
		  "{% endfor %}", "o131o231" },
	};
	RUN(t);
}

/* jinja2's frames (idtracking.py): a name first assigned in a frame
 * starts Undefined there, hiding the template variable, unless an
 * enclosing frame uses it or the assignment is inside an if. */
static void test_scoping_follows_jinja_frames(void **state)
{
	static const struct case_ t[] = {
		{ "{{ s }}|{% set s = 'q' %}{{ s }}", "Hello|q" },
		{ "{% for i in [1] %}[{{ s }}]{% endfor %}{% set s = 'q' %}", "[]" },
		{ "{% for i in [1] %}[{{ s }}]{% endfor %}"
		  "{% if true %}{% set s = 'q' %}{% endif %}", "[Hello]" },
		{ "{% macro m() %}[{{ s }}]{% endmacro %}{{ m() }}{% set s = 2 %}"
		  "{{ m() }}", "[][2]" },
		{ "{% for i in [1] %}{% for j in [1] %}[{{ s }}]{% endfor %}"
		  "{% set s = 5 %}{% endfor %}", "[]" },
		{ "{% set s = 1 %}{% for i in [1] %}{% for j in [1] %}{{ s }}"
		  "{% endfor %}{% set s = 5 %}{% endfor %}", "1" },
		{ "{% for i in [1, 2] %}{{ s }}{% set s = i %}{% endfor %}",
		  "HelloHello" },
		{ "{% set s = s ~ '!' %}{{ s }}", "Hello!" },
		{ "{% set b %}{% set y = 1 %}{% endset %}[{{ y }}]"
		  "{% filter upper %}{% set z = 1 %}{% endfilter %}[{{ z }}]",
		  "[][]" },
	};
	RUN(t);
}

static void test_macros_and_call_blocks(void **state)
{
	static const struct case_ t[] = {
		{ "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}"
		  "{% endmacro %}{{ greet('A') }} {{ greet('B', punct='?') }}",
		  "Hi A! Hi B?" },
		{ "{% macro m(a) %}[{{ a }}]{% endmacro %}{{ m() }}", "[]" },
		{ "{% macro wrap() %}[{{ caller() }}]{% endmacro %}"
		  "{% call wrap() %}in{% endcall %}", "[in]" },
		{ "{% macro m() %}{{ caller(5) }}{% endmacro %}"
		  "{% call(x) m() %}x={{ x }}{% endcall %}", "x=5" },
		{ "{% macro fact(n) %}{% if n <= 1 %}1{% else %}"
		  "{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}"
		  "{{ fact(5) }}", "120" },
		{ "{% set g = 'G' %}{% macro m() %}{{ g }}{% endmacro %}{{ m() }}",
		  "G" },
		{ "{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}"
		  "{{ m(1, k=2) }}", "(1,){'k': 2}" },
		/* a macro closes over the frame it is defined in */
		{ "{% with x = 5 %}{% macro mm() %}[{{ x }}]{% endmacro %}"
		  "{{ mm() }}{% endwith %}", "[5]" },
	};
	RUN(t);
}

static void test_tests(void **state)
{
	static const struct case_ t[] = {
		{ "{{ x is defined }}{{ x is not defined }}{{ d is defined }}",
		  "FalseTrueTrue" },
		{ "{{ none is none }}{{ n is none }}{{ 0 is none }}",
		  "TrueTrueFalse" },
		{ "{{ 'a' is string }}{{ 1 is string }}{{ {} is mapping }}"
		  "{{ [] is mapping }}", "TrueFalseTrueFalse" },
		{ "{{ [] is iterable }}{{ 'a' is iterable }}{{ 1 is iterable }}"
		  "{{ d is iterable }}{{ [] is sequence }}{{ 1 is sequence }}",
		  "TrueTrueFalseTrueTrueFalse" },
		{ "{{ 1.5 is number }}{{ 'a' is number }}{{ 1 is integer }}"
		  "{{ 1.0 is float }}{{ true is boolean }}",
		  "TrueFalseTrueTrueTrue" },
		{ "{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}"
		  "{{ 9 is divisibleby(4) }}", "TrueTrueTrueFalse" },
		{ "{{ 'a' is equalto 'a' }}{{ 1 is eq 2 }}{{ 1 is ne 2 }}"
		  "{{ 2 is gt 1 }}{{ 2 is le 1 }}", "TrueFalseTrueTrueFalse" },
		{ "{{ true is true }}{{ 1 is true }}{{ false is false }}"
		  "{{ 0 is false }}", "TrueFalseTrueFalse" },
		{ "{{ 'ab' is lower }}{{ 'Ab' is upper }}{{ 'AB' is upper }}",
		  "TrueFalseTrue" },
		{ "{{ 2 is in [1, 2] }}{{ range is callable }}{{ n is sameas none }}",
		  "TrueTrueTrue" },
		{ "{{ msgs | selectattr('flag') | map(attribute='role') | list }}",
		  "['assistant']" },
	};
	RUN(t);
}

static void test_filters(void **state)
{
	static const struct case_ t[] = {
		{ "[{{ '  a b \\n' | trim }}][{{ 'xxaxx' | trim('x') }}]",
		  "[a b][a]" },
		{ "{{ {'a': [1, 2.5, none, true], '\xc3\xa9': '\xc3\xbc\"'} | tojson }}",
		  "{\"a\": [1, 2.5, null, true], \"\xc3\xa9\": \"\xc3\xbc\\\"\"}" },
		{ "{{ {'a': [1, 2], 'b': {}} | tojson(indent=2) }}",
		  "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}" },
		{ "{{ 'a\\nb<>&\\x01' | tojson }}", "\"a\\nb<>&\\u0001\"" },
		{ "{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}",
		  "{\"a\": 2, \"b\": 1}" },
		{ "{{ 1.0 | tojson }} {{ (1, 2) | tojson }} {{ {1: 2} | tojson }}",
		  "1.0 [1, 2] {\"1\": 2}" },
		{ "{{ [1e16, 1.5e-7, -0.0, 1e300, 123456789.123, 2**62] | tojson }}"
		  "|{{ {'\\u00e9': 'x'} | tojson(ensure_ascii=true) }}"
		  "|{{ [1, [2]] | tojson(separators=(',', ':')) }}"
		  "|{{ {'a': none} | tojson(indent='..') }}",
		  "[1e+16, 1.5e-07, -0.0, 1e+300, 123456789.123, "
		  "4611686018427387904]|{\"\\u00e9\": \"x\"}|[1,[2]]|"
		  "{\n..\"a\": null\n}" },
		{ "{{ 'h\xc3\xa9llo' | length }}{{ [1, 2] | count }}{{ d | length }}"
		  "{{ undefined_name | length }}", "5220" },
		{ "{{ 'hello WORLD' | capitalize }}|{{ 'hello wORLD-foo' | title }}|"
		  "{{ \"they're\" | title }}|{{ 'aB' | upper }}{{ 'aB' | lower }}",
		  "Hello world|Hello World-Foo|They're|ABab" },
		{ "{% for k, v in {'x': 1} | items %}{{ k }}{{ v }}{% endfor %}", "x1" },
		{ "{{ [1, 2, 3] | join(', ') }}|{{ ['a', 'b'] | join }}|"
		  "{{ msgs | join('/', attribute='role') }}",
		  "1, 2, 3|ab|system/user/assistant/user" },
		{ "{{ x | default('d') }}[{{ '' | default('d') }}]"
		  "{{ '' | default('d', true) }}{{ n | d('z') }}{{ x | d }}",
		  "d[]dNone" },
		{ "{{ msgs | selectattr('role', 'equalto', 'user') | "
		  "map(attribute='content') | join(',') }}", "U1,U2" },
		{ "{{ msgs | rejectattr('role', '==', 'user') | "
		  "map(attribute='content') | list }}", "['S', 'A1']" },
		{ "{{ [1, 2, 3, 4] | select('odd') | list }}"
		  "{{ [1, 2, 3, 4] | reject('odd') | list }}", "[1, 3][2, 4]" },
		{ "{{ [1, 2] | map('string') | join('-') }} "
		  "{{ msgs | map(attribute='n', default=0) | list }}",
		  "1-2 [0, 2, 0, 1]" },
		{ "{{ [1, 2, 3] | first }}{{ [1, 2, 3] | last }}{{ 'abc' | first }}"
		  "[{{ [] | first }}]", "13a[]" },
		{ "{{ 'aaa' | replace('a', 'b', 2) }} {{ 'ab' | replace('', '-') }}",
		  "bba -a-b-" },
		{ "{{ '42' | int + 1 }} {{ 'x' | int }} {{ '3.7' | int }} "
		  "{{ 3.9 | int }} {{ 'x' | int(7) }} {{ ' 12 ' | int }}",
		  "43 0 3 3 7 12" },
		{ "{{ '2.5' | float }} {{ 1 | string ~ 'a' }} {{ '1e3' | float }}"
		  " {{ 'x' | float }}", "2.5 1a 1000.0 0.0" },
		{ "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|"
		  "{{ 'a\\n\\nc' | indent(1, blank=true) }}|{{ 'a\\nb' | indent('>') }}",
		  "a\n  b\n\n  c|  a\n  b|a\n \n c|a\n>b" },
		{ "{{ 'ab' | list }}{{ d | list }}", "['a', 'b']['a', 'b']" },
		{ "{{ ['a', 'A', 'b', 'a'] | unique | list }}", "['a', 'b']" },
		{ "{{ [1, 2, 3] | reverse | list }}{{ 'abc' | reverse }}",
		  "[3, 2, 1]cba" },
		{ "{{ [3, 1, 2] | sort }}{{ ['b', 'A', 'c'] | sort }}"
		  "{{ [3, 1, 2] | sort(reverse=true) }}"
		  "{{ ['b', 'A'] | sort(case_sensitive=true) }}",
		  "[1, 2, 3]['A', 'b', 'c'][3, 2, 1]['A', 'b']" },
		{ "{{ msgs | selectattr('n') | sort(attribute='n') | "
		  "map(attribute='content') | join }}", "U2U1" },
		{ "{{ -3 | abs }}{{ 'x' | safe }}{{ 2.5 | round }} "
		  "{{ 2.675 | round(2) }} {{ 3.14159 | round(2) }} "
		  "{{ 2.1 | round(0, 'ceil') }} {{ 7 | round }}",
		  "3x2.0 2.67 3.14 3.0 7" },
		{ "{{ {'b': 1, 'A': 2} | dictsort }}", "[('A', 2), ('b', 1)]" },
		{ "{{ [1, 2, 3] | batch(2) | list }}", "[[1, 2], [3]]" },
		{ "{{ 'a b  c' | wordcount }} {{ '<a>' | e }}", "3 &lt;a&gt;" },
		{ "{{ [3, 1, 2] | max }}{{ [3, 1, 2] | min }}{{ [1, 2] | sum }}",
		  "313" },
		{ "{{ '%s-%d' | format('a', 3) }} {{ '%s!' % 'x' }}", "a-3 x!" },
		/* safe and escape give markupsafe.Markup, which escapes what
		 * is added to it; macro output is a plain str here */
		{ "{{ '<a>' | e | e }}|{{ '<a>' | safe + '<' }}|{{ '\"' + ('<' | safe) }}"
		  "|{{ ('<x>' | safe).upper() + '&' }}|{{ ['x' | safe] }}|"
		  "{% macro m() %}<{{ 1 }}>{% endmacro %}{{ m() + '<' }}",
		  "&lt;a&gt;|<a>&lt;|&#34;<|<X>&amp;|[Markup('x')]|<1><" },
	};
	RUN(t);
}

static void test_string_and_dict_methods(void **state)
{
	static const struct case_ t[] = {
		{ "[{{ '  x  '.strip() }}][{{ 'xxhixx'.strip('x') }}]"
		  "[{{ '  x '.lstrip() }}][{{ ' x  '.rstrip() }}]"
		  "[{{ '\\n\\nx\\n'.lstrip('\\n') }}]",
		  "[x][hi][x ][ x][x\n]" },
		{ "{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}"
		  "{{ 'a b c'.split(' ', 1) }}{{ 'a-b-c'.rsplit('-', 1) }}",
		  "['a', 'b', '', 'c']['a', 'b']['a', 'b c']['a-b', 'c']" },
		{ "{{ 'x</think>y'.split('</think>')[-1] }}", "y" },
		{ "{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith('bc') }}"
		  "{{ 'abc'.startswith(('x', 'a')) }}{{ 'abc'.endswith('x') }}",
		  "TrueTrueTrueFalse" },
		{ "{{ s.upper() }}{{ s.lower() }}|{{ 'hello world'.title() }}|"
		  "{{ \"they're\".title() }}|{{ 'aBC'.capitalize() }}",
		  "HELLOhello|Hello World|They'Re|Abc" },
		{ "{{ 'aXbX'.replace('X', '-') }} {{ '{} and {}'.format(1, 'b') }}"
		  " {{ '{name}!'.format(name='x') }} {{ ', '.join(['a', 'b']) }}",
		  "a-b- 1 and b x! a, b" },
		{ "{{ 'abcb'.find('b') }}{{ 'abcb'.rfind('b') }}"
		  "{{ 'abcb'.count('b') }}{{ '12'.isdigit() }}",
		  "132True" },
		{ "{{ d.get('a') }} {{ d.get('zz', 'def') }} {{ d.get('zz') }} "
		  "{{ d.keys() | list }} {{ d.values() | list }}",
		  "1 def None ['a', 'b'] [1, [2, 3]]" },
		{ "{{ [1, 2, 2].count(2) }}{{ [1, 2].index(2) }}", "21" },
		{ "{{ 'ab.txt'.removesuffix('.txt') }}{{ 'ab'.removeprefix('x') }}"
		  "|{{ 'a=b=c'.partition('=') }}{{ 'a=b=c'.rpartition('=') }}"
		  "{{ 'abc'.partition('x') }}",
		  "abab|('a', '=', 'b=c')('a=b', '=', 'c')('abc', '', '')" },
		{ "[{{ 'ab'.ljust(4) }}][{{ 'ab'.rjust(4, '*') }}]"
		  "[{{ 'a'.center(4) }}][{{ 'ab'.center(5) }}][{{ '-4'.zfill(4) }}]"
		  "[{{ 'aB'.swapcase() }}]",
		  "[ab  ][**ab][ a  ][  ab ][-004][Ab]" },
	};
	RUN(t);
}

/* Filters such as select, map and items return Python generators, and
 * dict.keys()/values()/items() return views: they differ from lists. */
static void test_generators_and_dict_views(void **state)
{
	static const struct case_ t[] = {
		{ "{{ d.items() }}|{{ d.keys() }}|{{ d.values() }}",
		  "dict_items([('a', 1), ('b', [2, 3])])|dict_keys(['a', 'b'])|"
		  "dict_values([1, [2, 3]])" },
		/* a generator is true even when it yields nothing */
		{ "{% if [] | select('odd') %}T{% else %}F{% endif %}"
		  "{% if [] %}T{% else %}F{% endif %}", "TF" },
		{ "{{ [1, 2] | select('odd') | list | length }}"
		  "{{ d.keys() | length }}{{ [1] | map('string') | first }}"
		  "{{ {'a': 1} | items | list }}", "121[('a', 1)]" },
		{ "[{{ ([1, 2] | select('odd'))[0] }}]{{ [3, 1] | reverse | list }}"
		  "{{ [3, 1] | select | reverse }}", "[][1, 3][1, 3]" },
		/* arguments are checked only for a true input */
		{ "{{ undefined_x | items | list }}{{ [] | map('nosuch') | list }}",
		  "[][]" },
	};
	RUN(t);
}

static void test_undefined_behaves_like_jinja_default(void **state)
{
	static const struct case_ t[] = {
		{ "[{{ foo }}][{{ foo | length }}][{% for x in foo %}x{% endfor %}]",
		  "[][0][]" },
		{ "[{{ d.missing }}][{{ d['missing'] }}][{{ foo ~ 'a' }}]"
		  "[{{ not foo }}][{{ foo | default('z') }}]",
		  "[][][a][True][z]" },
		{ "[{{ none.x }}][{{ n['x'] }}][{{ s.nosuch }}]", "[][][]" },
		{ "{% if foo %}y{% else %}n{% endif %}{{ foo == foo }}"
		  "{{ foo is defined }}{{ [1][3] is defined }}",
		  "nTrueFalseFalse" },
		{ "[{{ foo | trim }}][{{ foo | upper }}][{{ foo | join }}]"
		  "[{{ foo | list }}]", "[][][][[]]" },
	};
	RUN(t);
}

static void test_globals_and_special_tokens(void **state)
{
	json_t *cfg = json_pack("{s:s, s:{s:s}, s:n, s:[s]}", "bos_token",
				"<s>", "eos_token", "content", "</s>",
				"unk_token", "additional_special_tokens",
				"<x>");
	struct hf_err err = { 0 };
	struct hf_chat *c = NULL;
	char *out = NULL, want[64];
	time_t now = time(NULL);
	struct tm tm;

	assert_int_equal(hf_chat_load_string(&c,
		"{{ bos_token }}|{{ eos_token }}|{{ unk_token is defined }}|"
		"{{ additional_special_tokens }}|{{ range(2, 8, 3) | list }}|"
		"{{ messages | length }}|{{ add_generation_prompt }}|"
		"{{ tools }}|{{ documents }}|{{ enable_thinking }}|"
		"{{ strftime_now('%Y') }}|{{ dict(a=1) }}", cfg, &err), 0);
	{
		json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user",
					 "content", "x");
		json_t *extra = json_pack("{s:b, s:s}", "enable_thinking", 0,
					  "eos_token", "E");

		assert_int_equal(hf_chat_render(c, NULL, msgs, NULL, NULL, 0,
						extra, &out, &err), 0);
		json_decref(msgs);
		json_decref(extra);
	}
	localtime_r(&now, &tm);
	strftime(want, sizeof(want), "%Y", &tm);
	{
		char full[512];

		snprintf(full, sizeof(full), "<s>|E|False|['<x>']|[2, 5]|1|"
			 "False|None|None|False|%s|{'a': 1}", want);
		assert_string_equal(out, full);
	}
	free(out);
	hf_chat_free(c);
	json_decref(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whitespace_control_matches_jinja),
		cmocka_unit_test(test_cases_from_the_jinja_test_suite),
		cmocka_unit_test(test_values_print_as_python),
		cmocka_unit_test(test_operators_follow_python_and_jinja_precedence),
		cmocka_unit_test(test_statements_for_if_set_scoping),
		cmocka_unit_test(test_scoping_follows_jinja_frames),
		cmocka_unit_test(test_macros_and_call_blocks),
		cmocka_unit_test(test_tests),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_string_and_dict_methods),
		cmocka_unit_test(test_generators_and_dict_views),
		cmocka_unit_test(test_undefined_behaves_like_jinja_default),
		cmocka_unit_test(test_globals_and_special_tokens),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
