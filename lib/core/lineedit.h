/* lib/core/lineedit.h: a small line editor for interactive terminals.
 *
 * Emacs-style keys (the subset shells agree on), UTF-8 aware, with
 * wide characters counted as two columns and lines that wrap across
 * several terminal rows. The editing itself is a state machine fed one
 * byte at a time (hf_le_key) and a renderer that produces the escape
 * sequences for the current state (hf_le_render), so both are testable
 * without a terminal; hf_le_readline drives them on a real one.
 *
 * Keys: printable text inserts; Enter ends the line; Left/Right, C-b/C-f
 * move by character, M-b/M-f and C-Left/C-Right by word; Home/End, C-a/C-e;
 * Backspace, Delete, C-d (end of input on an empty line); C-k kills to the
 * end, C-u to the start, C-w (and M-Backspace) the previous word; Up/Down,
 * C-p/C-n walk the history; C-l clears the screen; C-c abandons the line. */
#ifndef HF_CORE_LINEEDIT_H
#define HF_CORE_LINEEDIT_H

#include <stddef.h>

enum hf_le_status {
	HF_LE_MORE,	/* keep feeding keys */
	HF_LE_LINE,	/* Enter: the line in buf is complete */
	HF_LE_EOF,	/* C-d on an empty line */
	HF_LE_INTR,	/* C-c: the line was abandoned */
	HF_LE_CLEAR,	/* C-l: clear the screen, then redraw */
	HF_LE_NOMEM,
};

struct hf_le {
	char *buf;		/* the line, NUL-terminated */
	size_t len, cap;
	size_t pos;		/* cursor, a byte offset on a code point */
	char **hist;		/* oldest first */
	size_t nhist, hidx;	/* hidx == nhist: editing a fresh line */
	char *saved;		/* the fresh line while browsing history */
	unsigned char seq[16];	/* pending escape sequence or UTF-8 bytes */
	size_t nseq;
	int cols;		/* terminal width used by hf_le_render */
	size_t rows, crow;	/* rows drawn last time, cursor row in them */
};

/* Starts a fresh line (history and width are kept). */
void hf_le_begin(struct hf_le *e);

/* Feeds one input byte; returns what the caller should do next. */
enum hf_le_status hf_le_key(struct hf_le *e, unsigned char c);

/* Appends a line to the history (empty lines and repeats of the last one
 * are skipped; the oldest entries go past 1000). Returns 0, or -1 on
 * ENOMEM. */
int hf_le_history_add(struct hf_le *e, const char *line);

/* The escape sequences that redraw prompt + line over what the previous
 * render drew, leaving the terminal cursor at e->pos; malloc'd, NUL
 * terminated, NULL on ENOMEM. Uses e->cols (80 when unset). */
char *hf_le_render(struct hf_le *e, const char *prompt);

/* Reads one line from the terminal fd_in, echoing to fd_out, in raw mode
 * restored before returning. Returns the line (malloc'd, without the
 * newline) with *status HF_LE_LINE, or NULL with *status HF_LE_EOF
 * (C-d or end of input), HF_LE_INTR (C-c) or HF_LE_NOMEM; when fd_in is
 * not a terminal, NULL with HF_LE_EOF and errno ENOTTY. */
char *hf_le_readline(struct hf_le *e, const char *prompt, int fd_in,
		     int fd_out, enum hf_le_status *status);

void hf_le_free(struct hf_le *e);

#endif
