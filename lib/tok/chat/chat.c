/* lib/tok/chat/chat.c: find a model's chat templates and special tokens,
 * and render conversations as transformers' apply_chat_template does. */
#define _GNU_SOURCE	/* memmem, strndup */
#include "tok/chat/chat.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/json.h"
#include "tok/chat/jinja.h"

struct tmpl {
	char *name;
	struct jnode *body;
};

struct hf_chat {
	struct tmpl *t;
	size_t n;
	struct jv *special;	/* name -> str (or list of str) */
};

static const char *const special_names[] = {
	"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
	"cls_token", "mask_token", NULL,
};

void hf_chat_free(struct hf_chat *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->t[i].name);
		jj_node_free(c->t[i].body);
	}
	free(c->t);
	jv_unref(c->special);
	free(c);
}

size_t hf_chat_count(const struct hf_chat *c)
{
	return c ? c->n : 0;
}

const char *hf_chat_name(const struct hf_chat *c, size_t i)
{
	return c && i < c->n ? c->t[i].name : NULL;
}

/* Whether kid i of n runs in a new frame of its own (which jinja2 does
 * not start "soft"). */
static int new_frame(const struct jnode *n, size_t i)
{
	switch (n->kind) {
	case JN_FOR:
		return i != 1;	/* all but the iterable */
	case JN_MACRO:
	case JN_SET_BLOCK:
	case JN_FILTER_BLOCK:
		return 1;
	case JN_CALL_BLOCK:
		return i != 0;	/* all but the call */
	case JN_WITH:
		return i == 0;	/* the body */
	default:
		return 0;
	}
}

/* Jinja reports unknown filters and tests when it compiles, except
 * inside if statements and if expressions of the same frame (a "soft"
 * frame), where the error waits until the call runs. */
static int check_names(const struct jnode *n, int soft, struct hf_err *err)
{
	if (!n)
		return 0;
	if (n->kind == JN_IF || n->kind == JN_COND)
		soft = 1;
	if (!soft && n->kind == JN_FILTER && !jb_has_filter(n->name))
		return hf_err_set(err, HF_EFORMAT, "line %d: no filter named "
				  "'%s'", n->line, n->name);
	if (!soft && n->kind == JN_TEST && !jb_has_test(n->name))
		return hf_err_set(err, HF_EFORMAT, "line %d: no test named "
				  "'%s'", n->line, n->name);
	for (size_t i = 0; i < n->nkids; i++)
		if (check_names(n->kids[i], soft && !new_frame(n, i), err))
			return err->code;
	return 0;
}

static int compile(struct jnode **out, const char *src, size_t len,
		   struct hf_err *err)
{
	struct jtoks toks;
	int rc;

	*out = NULL;
	rc = jj_lex(&toks, src, len, err);
	if (rc)
		return rc;
	rc = jj_parse(out, &toks, err);
	jj_toks_free(&toks);
	if (!rc)
		jx_mark_folds(*out, 0);
	if (!rc && (check_names(*out, 0, err) || jj_scope(*out, err))) {
		jj_node_free(*out);
		*out = NULL;
		rc = err->code;
	}
	return rc;
}

static int add_template(struct hf_chat *c, const char *name, const char *src,
			size_t len, const char *where, struct hf_err *err)
{
	struct tmpl *nt;
	struct jnode *body;
	size_t at = c->n;

	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->t[i].name, name))
			at = i;
	if (compile(&body, src, len, err)) {
		if (!where)
			return hf_err_prefix(err, "chat template '%s'", name);
		return hf_err_prefix(err, "%s: chat template '%s'", where,
				     name);
	}
	if (at < c->n) {	/* a later source replaces the template */
		jj_node_free(c->t[at].body);
		c->t[at].body = body;
		return 0;
	}
	nt = realloc(c->t, (c->n + 1) * sizeof(*nt));
	if (!nt) {
		jj_node_free(body);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	c->t = nt;
	/* "default" goes first */
	if (!strcmp(name, "default")) {
		memmove(c->t + 1, c->t, c->n * sizeof(*nt));
		at = 0;
	}
	c->t[at].name = strdup(name);
	c->t[at].body = body;
	c->n++;
	if (!c->t[at].name)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	return 0;
}

/* A special token: a string, or an AddedToken object's "content". */
static const char *token_text(const json_t *v)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
		return json_string_value(json_object_get(v, "content"));
	return NULL;
}

static int load_special(struct hf_chat *c, const json_t *cfg,
			struct hf_err *err)
{
	const json_t *extra;

	c->special = jv_dict(JV_DICT);
	if (!c->special)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (!json_is_object(cfg))
		return 0;
	for (int i = 0; special_names[i]; i++) {
		const char *s = token_text(json_object_get(cfg,
							   special_names[i]));

		if (s && jv_dict_sets(c->special, special_names[i],
				      jv_strz(s)))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	extra = json_object_get(cfg, "additional_special_tokens");
	if (json_is_array(extra) && json_array_size(extra)) {
		struct jv *l = jv_list(0);
		size_t i;
		json_t *x;

		if (!l)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
		json_array_foreach(extra, i, x) {
			const char *s = token_text(x);

			if (s && jv_list_push(l, jv_strz(s))) {
				jv_unref(l);
				return hf_err_set(err, HF_ENOMEM,
						  "out of memory");
			}
		}
		if (jv_dict_sets(c->special, "additional_special_tokens", l))
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	return 0;
}

/* tokenizer_config.json's "chat_template": a string or a list of
 * {"name", "template"}. */
static int load_config_templates(struct hf_chat *c, const json_t *ct,
				 const char *where, struct hf_err *err)
{
	size_t i;
	json_t *x;

	if (!ct || json_is_null(ct))
		return 0;
	if (json_is_string(ct))
		return add_template(c, "default", json_string_value(ct),
				    json_string_length(ct), where, err);
	if (!json_is_array(ct))
		return hf_err_set(err, HF_EFORMAT, "%s: 'chat_template' must "
				  "be a string or a list", where);
	json_array_foreach(ct, i, x) {
		const json_t *name = json_object_get(x, "name");
		const json_t *src = json_object_get(x, "template");

		if (!json_is_string(name) || !json_is_string(src))
			return hf_err_set(err, HF_EFORMAT, "%s: chat_template"
					  "[%zu] needs string 'name' and "
					  "'template'", where, i);
		if (add_template(c, json_string_value(name),
				 json_string_value(src),
				 json_string_length(src), where, err))
			return err->code;
	}
	return 0;
}

int hf_chat_load_string(struct hf_chat **out, const char *template_src,
			const json_t *tokenizer_config, struct hf_err *err)
{
	struct hf_chat *c = calloc(1, sizeof(*c));
	struct hf_err local = { 0 };

	if (!err)
		err = &local;

	*out = NULL;
	if (!c)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (load_special(c, tokenizer_config, err) ||
	    add_template(c, "default", template_src, strlen(template_src),
			 NULL, err)) {
		hf_chat_free(c);
		return err->code;
	}
	*out = c;
	return 0;
}

static int load_file_template(struct hf_chat *c, const char *dir,
			      const char *file, const char *name,
			      struct hf_err *err)
{
	char *path = hf_path_join(dir, file), *src = NULL;
	size_t len;
	int rc;

	if (!path)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	rc = hf_file_read(&src, &len, path, err);
	if (!rc)
		rc = add_template(c, name, src, len, path, err);
	free(src);
	free(path);
	return rc;
}

/* additional_chat_templates/<name>.jinja */
static int load_extra_dir(struct hf_chat *c, const char *model_dir,
			  struct hf_err *err)
{
	char *dir = hf_path_join(model_dir, "additional_chat_templates");
	struct dirent *e;
	DIR *d;
	int rc = 0;

	if (!dir)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	d = opendir(dir);
	while (d && !rc && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char *name;

		if (n <= 6 || strcmp(e->d_name + n - 6, ".jinja"))
			continue;
		name = strndup(e->d_name, n - 6);
		if (!name) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			break;
		}
		rc = load_file_template(c, dir, e->d_name, name, err);
		free(name);
	}
	if (d)
		closedir(d);
	free(dir);
	return rc;
}

int hf_chat_load(struct hf_chat **out, const char *model_dir,
		 struct hf_err *err)
{
	struct hf_chat *c = calloc(1, sizeof(*c));
	char *cfg_path = hf_path_join(model_dir, "tokenizer_config.json");
	char *jinja_path = hf_path_join(model_dir, "chat_template.jinja");
	char *json_path = hf_path_join(model_dir, "chat_template.json");
	json_t *cfg = NULL, *legacy = NULL;
	struct hf_err local = { 0 };
	int rc = 0;

	if (!err)
		err = &local;
	*out = NULL;
	if (!c || !cfg_path || !jinja_path || !json_path) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto out;
	}
	if (hf_file_exists(cfg_path) &&
	    (rc = hf_json_load_file(&cfg, cfg_path, err)))
		goto out;
	if (cfg && !json_is_object(cfg)) {
		rc = hf_err_set(err, HF_EFORMAT, "'%s': not a JSON object",
				cfg_path);
		goto out;
	}
	if ((rc = load_special(c, cfg, err)))
		goto out;
	if (hf_file_exists(jinja_path)) {
		rc = load_file_template(c, model_dir, "chat_template.jinja",
					"default", err);
	} else if (cfg && json_object_get(cfg, "chat_template") &&
		   !json_is_null(json_object_get(cfg, "chat_template"))) {
		rc = load_config_templates(c, json_object_get(cfg,
				"chat_template"), cfg_path, err);
	} else if (hf_file_exists(json_path)) {
		rc = hf_json_load_file(&legacy, json_path, err);
		if (!rc)
			rc = load_config_templates(c, json_object_get(legacy,
					"chat_template"), json_path, err);
	}
	if (!rc)
		rc = load_extra_dir(c, model_dir, err);
	if (!rc && !c->n)
		rc = hf_err_set(err, HF_ENOTFOUND, "no chat template in '%s' "
				"(looked for chat_template.jinja, "
				"tokenizer_config.json and "
				"chat_template.json)", model_dir);
out:
	json_decref(cfg);
	json_decref(legacy);
	free(cfg_path);
	free(jinja_path);
	free(json_path);
	if (rc) {
		hf_chat_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

static const struct tmpl *pick(const struct hf_chat *c, const char *name,
			       const json_t *tools, struct hf_err *err)
{
	size_t i;

	if (name) {
		for (i = 0; i < c->n; i++)
			if (!strcmp(c->t[i].name, name))
				return &c->t[i];
		hf_err_set(err, HF_ENOTFOUND, "no chat template named '%s'",
			   name);
		return NULL;
	}
	if (c->n == 1)
		return &c->t[0];
	if (tools && !json_is_null(tools))
		for (i = 0; i < c->n; i++)
			if (!strcmp(c->t[i].name, "tool_use"))
				return &c->t[i];
	for (i = 0; i < c->n; i++)
		if (!strcmp(c->t[i].name, "default"))
			return &c->t[i];
	hf_err_set(err, HF_ENOTFOUND, "several chat templates and none "
		   "named 'default': pass a template name");
	return NULL;
}

static int set_json(struct jv *g, const char *name, const json_t *v)
{
	return jv_dict_sets(g, name, v ? jv_from_json(v) : JV_NONE_P);
}

int hf_chat_render(const struct hf_chat *c, const char *template_name,
		   const json_t *messages, const json_t *tools,
		   const json_t *documents, int add_generation_prompt,
		   const json_t *extra_vars, char **out, struct hf_err *err)
{
	const struct tmpl *t;
	struct jctx cx = { .err = err };
	struct jbuf b = { 0 };
	struct jv *g;
	const char *k;
	json_t *v;
	struct hf_err local = { 0 };
	int rc = 0;

	if (!err)
		err = &local;
	*out = NULL;
	hf_err_clear(err);
	t = pick(c, template_name, tools, err);
	if (!t)
		return err->code;
	if (extra_vars && !json_is_object(extra_vars))
		return hf_err_set(err, HF_EINVAL, "template variables must be "
				  "a JSON object");
	g = jv_dict(JV_DICT);
	if (!g)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->special->u.dict.n; i++)
		if (jv_dict_set(g, jv_ref(c->special->u.dict.k[i]),
				jv_ref(c->special->u.dict.v[i])))
			goto oom;
	if (set_json(g, "messages", messages) ||
	    set_json(g, "tools", tools) ||
	    set_json(g, "documents", documents) ||
	    jv_dict_sets(g, "add_generation_prompt",
			 jv_bool(add_generation_prompt)))
		goto oom;
	if (extra_vars)
		json_object_foreach((json_t *)extra_vars, k, v)
			if (set_json(g, k, v))
				goto oom;
	cx.tname = t->name;
	if (jx_render(&cx, t->body, g, &b)) {
		rc = err->code ? err->code : HF_ENOMEM;
		if (!err->code)
			hf_err_set(err, HF_ENOMEM, "out of memory");
		else if (!cx.raised)
			hf_err_prefix(err, "chat template '%s'", t->name);
		jbuf_free(&b);
		jv_unref(g);
		return rc;
	}
	jv_unref(g);
	if (b.oom) {
		jbuf_free(&b);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	if (!b.s) {
		b.s = strdup("");
		if (!b.s)
			return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	*out = b.s;
	return 0;
oom:
	jv_unref(g);
	return hf_err_set(err, HF_ENOMEM, "out of memory");
}
