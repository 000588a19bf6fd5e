/* lib/core/lineedit.c: see lineedit.h. */
#include "core/lineedit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <utf8proc.h>

#include "core/utf8.h"

#define HIST_MAX 1000

enum { ESC = 27, DEL = 127 };

void hf_le_begin(struct hf_le *e)
{
	e->len = e->pos = e->nseq = 0;
	if (e->buf)
		e->buf[0] = 0;
	e->hidx = e->nhist;
	free(e->saved);
	e->saved = NULL;
	e->rows = 1;
	e->crow = 0;
}

static int reserve(struct hf_le *e, size_t need)
{
	char *p;
	size_t cap = e->cap ? e->cap : 64;

	if (need + 1 <= e->cap)
		return 0;
	while (cap < need + 1)
		cap *= 2;
	if (!(p = realloc(e->buf, cap)))
		return -1;
	if (!e->cap)
		p[0] = 0;
	e->buf = p;
	e->cap = cap;
	return 0;
}

static int set_line(struct hf_le *e, const char *s)
{
	size_t n = strlen(s);

	if (reserve(e, n))
		return -1;
	memcpy(e->buf, s, n + 1);
	e->len = e->pos = n;
	return 0;
}

static int insert(struct hf_le *e, const unsigned char *s, size_t n)
{
	if (reserve(e, e->len + n))
		return -1;
	memmove(e->buf + e->pos + n, e->buf + e->pos, e->len - e->pos + 1);
	memcpy(e->buf + e->pos, s, n);
	e->len += n;
	e->pos += n;
	return 0;
}

static void erase(struct hf_le *e, size_t from, size_t to)
{
	memmove(e->buf + from, e->buf + to, e->len - to + 1);
	e->len -= to - from;
	if (e->pos > to)
		e->pos -= to - from;
	else if (e->pos > from)
		e->pos = from;
}

/* The code point boundaries on either side of byte offset i. */
static size_t prev_cp(const struct hf_le *e, size_t i)
{
	while (i > 0 && ((unsigned char)e->buf[--i] & 0xC0) == 0x80)
		;
	return i;
}

static size_t next_cp(const struct hf_le *e, size_t i)
{
	while (i < e->len && ((unsigned char)e->buf[++i] & 0xC0) == 0x80)
		;
	return i;
}

static int is_word(char c)
{
	return c != ' ' && c != '\t';
}

static size_t prev_word(const struct hf_le *e, size_t i)
{
	while (i > 0 && !is_word(e->buf[i - 1]))
		i--;
	while (i > 0 && is_word(e->buf[i - 1]))
		i--;
	return i;
}

static size_t next_word(const struct hf_le *e, size_t i)
{
	while (i < e->len && !is_word(e->buf[i]))
		i++;
	while (i < e->len && is_word(e->buf[i]))
		i++;
	return i;
}

static int history_move(struct hf_le *e, int up)
{
	if (up ? e->hidx == 0 : e->hidx >= e->nhist)
		return 0;
	if (up && e->hidx == e->nhist) {
		free(e->saved);
		if (!(e->saved = strdup(e->buf ? e->buf : "")))
			return -1;
	}
	e->hidx += up ? -1 : 1;
	return set_line(e, e->hidx == e->nhist ? e->saved : e->hist[e->hidx]);
}

int hf_le_history_add(struct hf_le *e, const char *line)
{
	char *copy;

	if (!*line || (e->nhist && !strcmp(e->hist[e->nhist - 1], line)))
		return 0;
	if (!(copy = strdup(line)))
		return -1;
	if (e->nhist == HIST_MAX) {
		free(e->hist[0]);
		memmove(e->hist, e->hist + 1, (HIST_MAX - 1) * sizeof(*e->hist));
		e->nhist--;
	} else {
		char **h = realloc(e->hist, (e->nhist + 1) * sizeof(*h));

		if (!h) {
			free(copy);
			return -1;
		}
		e->hist = h;
	}
	e->hist[e->nhist++] = copy;
	e->hidx = e->nhist;
	return 0;
}

/* A complete escape sequence in e->seq (ESC [ ... final, ESC O x, ESC x). */
static enum hf_le_status escape(struct hf_le *e)
{
	const unsigned char *s = e->seq;
	size_t n = e->nseq;
	unsigned char fin = s[n - 1];
	int ctrl = n >= 4 && memchr(s, ';', n) && s[n - 2] == '5';
	int rc = 0;

	if (n == 2) {			/* Meta + key */
		if (fin == 'b' || fin == 'B')
			e->pos = prev_word(e, e->pos);
		else if (fin == 'f' || fin == 'F')
			e->pos = next_word(e, e->pos);
		else if (fin == DEL || fin == 8)
			erase(e, prev_word(e, e->pos), e->pos);
		return HF_LE_MORE;
	}
	if (fin == '~') {		/* ESC [ n ~ */
		int k = atoi((const char *)s + 2);

		if (k == 1 || k == 7)
			e->pos = 0;
		else if (k == 4 || k == 8)
			e->pos = e->len;
		else if (k == 3 && e->pos < e->len)
			erase(e, e->pos, next_cp(e, e->pos));
		return HF_LE_MORE;
	}
	switch (fin) {
	case 'A':
		rc = history_move(e, 1);
		break;
	case 'B':
		rc = history_move(e, 0);
		break;
	case 'C':
		e->pos = ctrl ? next_word(e, e->pos) : next_cp(e, e->pos);
		break;
	case 'D':
		e->pos = ctrl ? prev_word(e, e->pos) : prev_cp(e, e->pos);
		break;
	case 'H':
		e->pos = 0;
		break;
	case 'F':
		e->pos = e->len;
		break;
	}
	return rc ? HF_LE_NOMEM : HF_LE_MORE;
}

enum hf_le_status hf_le_key(struct hf_le *e, unsigned char c)
{
	if (!e->buf && reserve(e, 0))
		return HF_LE_NOMEM;
	if (e->nseq && e->seq[0] == ESC) {
		e->seq[e->nseq++] = c;
		/* ESC x, ESC O x, or ESC [ params... final (0x40..0x7E) */
		if ((e->nseq == 2 && c != '[' && c != 'O') ||
		    (e->nseq == 3 && e->seq[1] == 'O') ||
		    (e->nseq >= 3 && e->seq[1] == '[' && c >= 0x40 &&
		     c <= 0x7E)) {
			enum hf_le_status st = escape(e);

			e->nseq = 0;
			return st;
		}
		if (e->nseq == sizeof(e->seq))	/* too long: drop it */
			e->nseq = 0;
		return HF_LE_MORE;
	}
	if (e->nseq) {			/* inside a UTF-8 sequence */
		uint32_t cp;
		size_t want = e->seq[0] >= 0xF0 ? 4 : e->seq[0] >= 0xE0 ? 3 : 2;

		if ((c & 0xC0) != 0x80) {	/* broken: drop what we had */
			e->nseq = 0;
			return hf_le_key(e, c);
		}
		e->seq[e->nseq++] = c;
		if (e->nseq < want)
			return HF_LE_MORE;
		e->nseq = 0;
		if (hf_utf8_decode((const char *)e->seq, want, &cp) !=
		    (int)want)
			return HF_LE_MORE;
		return insert(e, e->seq, want) ? HF_LE_NOMEM : HF_LE_MORE;
	}
	switch (c) {
	case ESC:
		e->seq[0] = c;
		e->nseq = 1;
		return HF_LE_MORE;
	case '\r':
	case '\n':
		return HF_LE_LINE;
	case 1:				/* C-a */
		e->pos = 0;
		return HF_LE_MORE;
	case 2:				/* C-b */
		e->pos = prev_cp(e, e->pos);
		return HF_LE_MORE;
	case 3:				/* C-c */
		return HF_LE_INTR;
	case 4:				/* C-d */
		if (!e->len)
			return HF_LE_EOF;
		if (e->pos < e->len)
			erase(e, e->pos, next_cp(e, e->pos));
		return HF_LE_MORE;
	case 5:				/* C-e */
		e->pos = e->len;
		return HF_LE_MORE;
	case 6:				/* C-f */
		e->pos = next_cp(e, e->pos);
		return HF_LE_MORE;
	case 8:				/* C-h */
	case DEL:
		if (e->pos)
			erase(e, prev_cp(e, e->pos), e->pos);
		return HF_LE_MORE;
	case 11:			/* C-k */
		erase(e, e->pos, e->len);
		return HF_LE_MORE;
	case 12:			/* C-l */
		return HF_LE_CLEAR;
	case 14:			/* C-n */
		return history_move(e, 0) ? HF_LE_NOMEM : HF_LE_MORE;
	case 16:			/* C-p */
		return history_move(e, 1) ? HF_LE_NOMEM : HF_LE_MORE;
	case 21:			/* C-u */
		erase(e, 0, e->pos);
		return HF_LE_MORE;
	case 23:			/* C-w */
		erase(e, prev_word(e, e->pos), e->pos);
		return HF_LE_MORE;
	}
	if (c < 0x20)			/* other controls, tab included */
		return HF_LE_MORE;
	if (c < 0x80)
		return insert(e, &c, 1) ? HF_LE_NOMEM : HF_LE_MORE;
	if (c >= 0xC2 && c <= 0xF4) {	/* a UTF-8 lead byte */
		e->seq[0] = c;
		e->nseq = 1;
	}
	return HF_LE_MORE;
}

/* Terminal columns taken by s[0..n). */
static size_t width(const char *s, size_t n)
{
	size_t w = 0, i = 0;

	while (i < n) {
		uint32_t cp;
		int k = hf_utf8_decode(s + i, n - i, &cp);

		if (k <= 0) {
			i++;
			w++;
			continue;
		}
		i += (size_t)k;
		if (cp >= 0x20) {
			int cw = utf8proc_charwidth((utf8proc_int32_t)cp);

			w += cw > 0 ? (size_t)cw : 0;
		}
	}
	return w;
}

struct out {
	char *s;
	size_t len, cap;
	int oom;
};

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = o->cap - o->len;

		va_start(ap, fmt);
		n = vsnprintf(o->s ? o->s + o->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			o->len += (size_t)n;
			return;
		}
		{
			size_t cap = o->cap ? o->cap * 2 : 256;
			char *p;

			while (cap < o->len + (size_t)n + 1)
				cap *= 2;
			if (!(p = realloc(o->s, cap))) {
				o->oom = 1;
				return;
			}
			o->s = p;
			o->cap = cap;
		}
	}
}

char *hf_le_render(struct hf_le *e, const char *prompt)
{
	struct out o = { 0 };
	size_t cols = e->cols > 0 ? (size_t)e->cols : 80;
	size_t pw = width(prompt, strlen(prompt));
	size_t total, cur, end_row, crow, i;
	const char *line = e->buf ? e->buf : "";

	/* from the cursor's row down to the last row drawn, then clear
	 * each row going up to the first */
	if (e->rows > e->crow + 1)
		put(&o, "\x1b[%zuB", e->rows - e->crow - 1);
	for (i = 1; i < e->rows; i++)
		put(&o, "\r\x1b[K\x1b[1A");
	put(&o, "\r\x1b[K%s%s", prompt, line);
	total = pw + width(line, e->len);
	cur = pw + width(line, e->pos);
	/* at an exact multiple of the width the terminal has not wrapped
	 * yet: wrap now so the cursor arithmetic below holds */
	if (total && total % cols == 0)
		put(&o, "\r\n");
	end_row = total / cols;
	crow = cur / cols;
	if (end_row > crow)
		put(&o, "\x1b[%zuA", end_row - crow);
	put(&o, "\r");
	if (cur % cols)
		put(&o, "\x1b[%zuC", cur % cols);
	e->rows = end_row + 1;
	e->crow = crow;
	if (o.oom) {
		free(o.s);
		return NULL;
	}
	return o.s;
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t k = write(fd, s, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		s += k;
		n -= (size_t)k;
	}
	return 0;
}

static int redraw(struct hf_le *e, const char *prompt, int fd_out)
{
	struct winsize ws;
	char *s;
	int rc;

	if (ioctl(fd_out, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		e->cols = ws.ws_col;
	if (!(s = hf_le_render(e, prompt)))
		return -1;
	rc = write_all(fd_out, s, strlen(s));
	free(s);
	return rc;
}

char *hf_le_readline(struct hf_le *e, const char *prompt, int fd_in,
		     int fd_out, enum hf_le_status *status)
{
	struct termios saved, raw;
	enum hf_le_status st = HF_LE_MORE;
	char *line = NULL;

	if (tcgetattr(fd_in, &saved) < 0) {
		errno = ENOTTY;
		*status = HF_LE_EOF;
		return NULL;
	}
	/* TCSANOW, not TCSAFLUSH: keys typed ahead (while a reply was
	 * streaming) stay queued for this line */
	raw = saved;
	raw.c_iflag &= ~(tcflag_t)(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
	raw.c_cflag |= CS8;
	raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN | ISIG);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(fd_in, TCSANOW, &raw) < 0) {
		errno = ENOTTY;
		*status = HF_LE_EOF;
		return NULL;
	}
	hf_le_begin(e);
	if (redraw(e, prompt, fd_out))
		st = HF_LE_EOF;
	while (st == HF_LE_MORE) {
		unsigned char c;
		ssize_t k = read(fd_in, &c, 1);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			st = HF_LE_EOF;
			break;
		}
		st = hf_le_key(e, c);
		if (st == HF_LE_CLEAR) {
			write_all(fd_out, "\x1b[H\x1b[2J", 7);
			e->rows = 1;
			e->crow = 0;
			st = HF_LE_MORE;
		}
		if (st == HF_LE_MORE && !e->nseq && redraw(e, prompt, fd_out))
			st = HF_LE_EOF;
	}
	/* leave the cursor after the line */
	e->pos = e->len;
	redraw(e, prompt, fd_out);
	write_all(fd_out, st == HF_LE_INTR ? "^C\r\n" : "\r\n",
		  st == HF_LE_INTR ? 4 : 2);
	tcsetattr(fd_in, TCSANOW, &saved);
	if (st == HF_LE_LINE && !(line = strdup(e->buf)))
		st = HF_LE_NOMEM;
	*status = st;
	return line;
}

void hf_le_free(struct hf_le *e)
{
	size_t i;

	for (i = 0; i < e->nhist; i++)
		free(e->hist[i]);
	free(e->hist);
	free(e->buf);
	free(e->saved);
	memset(e, 0, sizeof(*e));
}
