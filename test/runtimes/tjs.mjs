// test/runtimes/tjs.mjs: Transformers.js pipelines on an exported model
// repository, loaded from the local directory with remote models off, for
// test/e2e/export_onnx.sh to compare with hf-run.
//
//   node tjs.mjs generate DIR DTYPE N < prompt lines
//     pipeline("text-generation"), greedy (do_sample false), N new tokens
//     at most: {"prompt": ..., "generated_text": ...} a line
//   node tjs.mjs embed DIR DTYPE < text lines
//     pipeline("feature-extraction"), mean pooling, no normalisation:
//     {"text": ..., "embedding": [...]} a line
// DTYPE is Transformers.js' dtype: fp32, fp16, q8 or q4 (which file of
// DIR/onnx it loads: model.onnx, model_fp16, model_quantized, model_q4).
import fs from 'node:fs';
import path from 'node:path';
import { env, pipeline } from '@huggingface/transformers';

const [mode, dir, dtype, n] = process.argv.slice(2);
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = path.dirname(path.resolve(dir)) + '/';
const id = path.basename(path.resolve(dir));
const lines = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l.length);
const opts = { dtype, device: 'cpu', local_files_only: true };

if (mode === 'generate') {
	const gen = await pipeline('text-generation', id, opts);
	for (const prompt of lines) {
		const [r] = await gen(prompt, {
			max_new_tokens: Number(n), do_sample: false,
		});
		process.stdout.write(JSON.stringify({
			prompt, generated_text: r.generated_text,
		}) + '\n');
	}
} else if (mode === 'embed') {
	const fe = await pipeline('feature-extraction', id, opts);
	for (const text of lines) {
		const t = await fe(text, { pooling: 'mean', normalize: false });
		process.stdout.write(JSON.stringify({
			text, embedding: Array.from(t.data),
		}) + '\n');
	}
} else {
	process.stderr.write(`tjs.mjs: unknown mode '${mode}'\n`);
	process.exit(2);
}
