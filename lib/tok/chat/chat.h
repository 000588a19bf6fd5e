/* lib/tok/chat/chat.h: render chat templates (a Jinja subset) the way
 * transformers' apply_chat_template does. */
#ifndef HF_TOK_CHAT_H
#define HF_TOK_CHAT_H

#include <jansson.h>
#include <stddef.h>

#include "core/err.h"

struct hf_chat;	/* opaque: parsed templates + special tokens of one model */

/* Load the chat template(s) of a model directory: chat_template.jinja if
 * present, else tokenizer_config.json's "chat_template" (a string, or a
 * list of {"name", "template"}), else the legacy chat_template.json
 * ({"chat_template": ...}); named extras in additional_chat_templates/
 * <name>.jinja. Special tokens (bos_token, eos_token, unk_token, sep_token,
 * pad_token, cls_token, mask_token, additional_special_tokens) come from
 * tokenizer_config.json, as strings or AddedToken objects. No template:
 * HF_ENOTFOUND. A syntax error: HF_EFORMAT naming the template and line. */
int hf_chat_load(struct hf_chat **out, const char *model_dir,
		 struct hf_err *err);

/* One template from a string; special tokens from tokenizer_config (may
 * be NULL). The template is named "default". */
int hf_chat_load_string(struct hf_chat **out, const char *template_src,
			const json_t *tokenizer_config, struct hf_err *err);

void hf_chat_free(struct hf_chat *c);	/* NULL is fine */

/* Template names, "default" first when there is one. Borrowed, valid
 * until hf_chat_free(). */
size_t hf_chat_count(const struct hf_chat *c);
const char *hf_chat_name(const struct hf_chat *c, size_t i);

/* Render messages (a JSON array of {"role", "content", ...}) with the
 * template called template_name, or when NULL the one transformers picks
 * ("tool_use" when tools are given and it exists, else "default", else
 * the only one). tools and documents: JSON arrays or NULL (passed as
 * none). extra_vars: a JSON object of further template variables (e.g.
 * {"enable_thinking": false}) or NULL; they override the special tokens.
 * On success *out is a malloc'd NUL-terminated UTF-8 string the caller
 * frees. A template that calls raise_exception(msg) fails with HF_EINVAL
 * and err->msg == msg exactly; other template errors give HF_EINVAL
 * ("chat template 'NAME': line N: ..."); limits on output size, loop work
 * and recursion depth give HF_ERANGE. */
int hf_chat_render(const struct hf_chat *c, const char *template_name,
		   const json_t *messages, const json_t *tools,
		   const json_t *documents, int add_generation_prompt,
		   const json_t *extra_vars, char **out, struct hf_err *err);

#endif
