/* Tests for lib/core/lineedit.c: the key state machine, the renderer,
 * and a real read through a pseudo-terminal. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "core/lineedit.h"

/* Feeds every byte of keys; returns the status of the last one. */
static enum hf_le_status feed(struct hf_le *e, const char *keys)
{
	enum hf_le_status st = HF_LE_MORE;

	for (; *keys; keys++)
		st = hf_le_key(e, (unsigned char)*keys);
	return st;
}

static void check(const char *keys, const char *line, size_t pos)
{
	struct hf_le e = { 0 };

	hf_le_begin(&e);
	feed(&e, keys);
	assert_string_equal(e.buf, line);
	assert_int_equal(e.pos, pos);
	hf_le_free(&e);
}

static void test_insert_and_move(void **state)
{
	check("abc", "abc", 3);
	check("abc\x1b[D\x1b[DX", "aXbc", 2);	/* Left twice, insert */
	check("abc\x02\x02X", "aXbc", 2);	/* C-b */
	check("abc\x01X", "Xabc", 1);		/* C-a */
	check("abc\x01\x05X", "abcX", 4);	/* C-e */
	check("abc\x1b[H\x1b[FX", "abcX", 4);	/* Home, End */
	check("abc\x1b[1~\x06X", "aXbc", 2);	/* Home (vt), C-f */
	check("abc\x1bOH!", "!abc", 1);		/* Home (SS3) */
	check("ab\x1b[C\x1b[CX", "abX", 3);	/* Right at the end stays */
	check("\x1b[D\x1b[Da", "a", 1);		/* Left at the start stays */
}

static void test_delete_and_kill(void **state)
{
	check("abc\x7f", "ab", 2);			/* Backspace */
	check("abc\x08", "ab", 2);			/* C-h */
	check("abc\x01\x1b[3~", "bc", 0);		/* Delete */
	check("abc\x01\x04", "bc", 0);			/* C-d mid-line */
	check("hello world\x02\x02\x0b", "hello wor", 9);	/* C-k */
	check("hello world\x02\x02\x15", "ld", 0);	/* C-u */
	check("one two  three\x17", "one two  ", 9);	/* C-w */
	check("one two  \x17", "one ", 4);		/* C-w over spaces */
	check("one two\x1b\x7f", "one ", 4);		/* M-Backspace */
}

static void test_word_motion(void **state)
{
	check("one two three\x1b" "b\x1b" "bX", "one Xtwo three", 5);
	check("one two three\x01\x1b" "fX", "oneX two three", 4);
	check("one two three\x1b[1;5DX", "one two Xthree", 9);
	check("one two\x01\x1b[1;5CX", "oneX two", 4);
}

static void test_utf8_is_one_unit(void **state)
{
	/* é (2 bytes), € (3), 😀 (4): Backspace and Left take whole code
	 * points */
	check("a\xC3\xA9\x7f", "a", 1);
	check("\xE2\x82\xAC\xF0\x9F\x98\x80\x1b[DX",
	      "\xE2\x82\xAC" "X\xF0\x9F\x98\x80", 4);
	check("\xF0\x9F\x98\x80\x01\x1b[3~", "", 0);
	/* a broken sequence is dropped, the byte after it kept */
	check("\xC3" "b", "b", 1);
	check("\xFF" "c", "c", 1);
}

static void test_statuses(void **state)
{
	struct hf_le e = { 0 };

	hf_le_begin(&e);
	assert_int_equal(hf_le_key(&e, 4), HF_LE_EOF);	/* C-d, empty */
	assert_int_equal(feed(&e, "x\x03"), HF_LE_INTR);
	assert_int_equal(hf_le_key(&e, 12), HF_LE_CLEAR);
	assert_int_equal(hf_le_key(&e, '\r'), HF_LE_LINE);
	assert_int_equal(hf_le_key(&e, '\n'), HF_LE_LINE);
	/* an escape sequence split anywhere still parses */
	hf_le_begin(&e);
	assert_int_equal(feed(&e, "ab\x1b"), HF_LE_MORE);
	assert_int_equal(feed(&e, "["), HF_LE_MORE);
	assert_int_equal(feed(&e, "D"), HF_LE_MORE);
	assert_int_equal(e.pos, 1);
	/* tabs and other controls are ignored */
	feed(&e, "\t\x07\x1a");
	assert_string_equal(e.buf, "ab");
	hf_le_free(&e);
}

static void test_history(void **state)
{
	struct hf_le e = { 0 };

	assert_int_equal(hf_le_history_add(&e, "first"), 0);
	assert_int_equal(hf_le_history_add(&e, "second"), 0);
	assert_int_equal(hf_le_history_add(&e, "second"), 0);	/* repeat */
	assert_int_equal(hf_le_history_add(&e, ""), 0);
	assert_int_equal(e.nhist, 2);
	hf_le_begin(&e);
	feed(&e, "draft");
	feed(&e, "\x1b[A");
	assert_string_equal(e.buf, "second");
	feed(&e, "\x10");			/* C-p */
	assert_string_equal(e.buf, "first");
	feed(&e, "\x1b[A");			/* past the oldest: stays */
	assert_string_equal(e.buf, "first");
	feed(&e, "\x0e\x1b[B");			/* C-n, Down */
	assert_string_equal(e.buf, "draft");	/* the fresh line is back */
	assert_int_equal(e.pos, 5);
	feed(&e, "\x1b[B");
	assert_string_equal(e.buf, "draft");
	hf_le_free(&e);
	/* the oldest entries go past 1000 */
	for (int i = 0; i < 1005; i++) {
		char s[16];

		snprintf(s, sizeof(s), "line %d", i);
		assert_int_equal(hf_le_history_add(&e, s), 0);
	}
	assert_int_equal(e.nhist, 1000);
	assert_string_equal(e.hist[0], "line 5");
	hf_le_free(&e);
}

static void test_render_single_row(void **state)
{
	struct hf_le e = { 0 };
	char *s;

	hf_le_begin(&e);
	e.cols = 20;
	feed(&e, "hello\x1b[D\x1b[D");
	s = hf_le_render(&e, "> ");
	/* clear, draw, cursor to column 2 + 3 */
	assert_string_equal(s, "\r\x1b[K> hello\r\x1b[5C");
	free(s);
	hf_le_free(&e);
}

static void test_render_wraps_and_wide_chars(void **state)
{
	struct hf_le e = { 0 };
	char *s;

	hf_le_begin(&e);
	e.cols = 10;
	/* 2 + 12 = 14 columns: two rows, cursor at the end (row 1, col 4) */
	feed(&e, "abcdefghijkl");
	s = hf_le_render(&e, "> ");
	assert_string_equal(s, "\r\x1b[K> abcdefghijkl\r\x1b[4C");
	free(s);
	assert_int_equal(e.rows, 2);
	assert_int_equal(e.crow, 1);
	/* cursor home: up one row; the next render first clears row 1 */
	feed(&e, "\x01");
	s = hf_le_render(&e, "> ");
	assert_string_equal(s, "\r\x1b[K\x1b[1A\r\x1b[K> abcdefghijkl"
			    "\x1b[1A\r\x1b[2C");
	free(s);
	assert_int_equal(e.crow, 0);
	/* from row 0 of 2, the next render moves down before clearing */
	s = hf_le_render(&e, "> ");
	assert_true(!strncmp(s, "\x1b[1B\r\x1b[K\x1b[1A", 10));
	free(s);
	hf_le_free(&e);

	/* exactly the width: wrap by hand so the cursor math holds */
	hf_le_begin(&e);
	e.cols = 10;
	feed(&e, "abcdefgh");
	s = hf_le_render(&e, "> ");
	assert_string_equal(s, "\r\x1b[K> abcdefgh\r\n\r");
	free(s);
	assert_int_equal(e.rows, 2);
	hf_le_free(&e);

	/* CJK characters take two columns each */
	hf_le_begin(&e);
	e.cols = 80;
	feed(&e, "\xE4\xBD\xA0\xE5\xA5\xBD");	/* 你好 */
	s = hf_le_render(&e, "> ");
	assert_true(strstr(s, "\r\x1b[6C") != NULL);
	free(s);
	hf_le_free(&e);
}

static void test_readline_on_a_pty(void **state)
{
	int master, slave;
	struct termios before, after;
	struct hf_le e = { 0 };
	enum hf_le_status st;
	char *line, echo[4096];
	ssize_t n;
	size_t got;
	const char keys[] = "hi\x1b[Dx\r" "again\x03" "\x04";

	assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
	/* keys reach the slave as they are written: raw input, so the line
	 * discipline neither signals on C-c nor maps CR; ECHO and IXON on,
	 * so that the restored mode can be told from the editor's own */
	assert_int_equal(tcgetattr(slave, &before), 0);
	cfmakeraw(&before);
	before.c_lflag |= ECHO;
	before.c_iflag |= IXON;
	assert_int_equal(tcsetattr(slave, TCSANOW, &before), 0);
	assert_int_equal(tcgetattr(slave, &before), 0);
	assert_int_equal(write(master, keys, sizeof(keys) - 1),
			 (ssize_t)sizeof(keys) - 1);
	line = hf_le_readline(&e, "> ", slave, slave, &st);
	assert_int_equal(st, HF_LE_LINE);
	assert_string_equal(line, "hxi");
	hf_le_history_add(&e, line);
	free(line);
	/* C-c abandons the second line */
	assert_null(hf_le_readline(&e, "> ", slave, slave, &st));
	assert_int_equal(st, HF_LE_INTR);
	/* C-d on an empty line is the end */
	assert_null(hf_le_readline(&e, "> ", slave, slave, &st));
	assert_int_equal(st, HF_LE_EOF);
	/* the terminal's mode is back as it was */
	assert_int_equal(tcgetattr(slave, &after), 0);
	assert_int_equal(after.c_lflag, before.c_lflag);
	assert_int_equal(after.c_iflag, before.c_iflag);
	assert_true(after.c_lflag & ECHO);
	assert_true(after.c_iflag & IXON);
	/* what was echoed ends with the edited line and a newline */
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	got = 0;
	while (got < sizeof(echo) - 1 &&
	       (n = read(master, echo + got, sizeof(echo) - 1 - got)) > 0)
		got += (size_t)n;
	assert_true(got > 0);
	echo[got] = 0;
	assert_non_null(strstr(echo, "> hxi"));
	assert_non_null(strstr(echo, "^C"));
	hf_le_free(&e);
	close(master);
	close(slave);

	/* not a terminal */
	{
		int p[2];

		assert_int_equal(pipe(p), 0);
		assert_null(hf_le_readline(&e, "> ", p[0], p[1], &st));
		assert_int_equal(st, HF_LE_EOF);
		close(p[0]);
		close(p[1]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_and_move),
		cmocka_unit_test(test_delete_and_kill),
		cmocka_unit_test(test_word_motion),
		cmocka_unit_test(test_utf8_is_one_unit),
		cmocka_unit_test(test_statuses),
		cmocka_unit_test(test_history),
		cmocka_unit_test(test_render_single_row),
		cmocka_unit_test(test_render_wraps_and_wide_chars),
		cmocka_unit_test(test_readline_on_a_pty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
