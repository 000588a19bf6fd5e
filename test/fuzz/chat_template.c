/* libFuzzer harness: parse arbitrary bytes as a chat template and render
 * it with a small fixed conversation (system, user, assistant with a tool
 * call, tool), tools and special tokens. Any result is fine; a crash, a
 * leak or a hang is not (templates have depth, work and output limits). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tok/chat/chat.h"

static const char conv[] =
	"{\"messages\": ["
	"{\"role\": \"system\", \"content\": \"Be brief.\"},"
	"{\"role\": \"user\", \"content\": \"Weather in Oslo? \\u00e9\"},"
	"{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{"
	"\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
	"\"arguments\": {\"city\": \"Oslo\"}}}]},"
	"{\"role\": \"tool\", \"content\": \"{\\\"t\\\": -2}\"},"
	"{\"role\": \"assistant\", \"content\": \"<think>x</think>Cold.\"}],"
	"\"tools\": [{\"type\": \"function\", \"function\": {\"name\": "
	"\"get_weather\", \"parameters\": {\"type\": \"object\"}}}],"
	"\"config\": {\"bos_token\": \"<s>\", \"eos_token\": {\"content\": "
	"\"</s>\"}},"
	"\"extra\": {\"enable_thinking\": false}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static json_t *root;
	struct hf_err err = { 0 };
	struct hf_chat *c = NULL;
	char *src, *out = NULL;

	if (!root) {
		json_error_t je;

		root = json_loads(conv, 0, &je);
		if (!root)
			abort();
	}
	src = malloc(size + 1);
	if (!src)
		return 0;
	memcpy(src, data, size);
	src[size] = 0;
	/* one render per input (each may use the whole work budget): the
	 * length's parity picks tools + generation prompt or neither */
	if (!hf_chat_load_string(&c, src, json_object_get(root, "config"),
				 &err)) {
		int agp = size & 1;

		hf_chat_render(c, NULL, json_object_get(root, "messages"),
			       agp ? json_object_get(root, "tools") : NULL,
			       NULL, agp, json_object_get(root, "extra"), &out,
			       &err);
		free(out);
	}
	hf_chat_free(c);
	free(src);
	return 0;
}
