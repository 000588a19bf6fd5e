// test/runtimes/ort.mjs: run an exported ONNX file in onnxruntime-node and
// print what it computes as JSON, for test/e2e/export_onnx.sh to compare
// with hf-run.
//
//   node ort.mjs decoder MODEL.onnx < {"prompts": [[ids]...], "pad": id}
//     {"full": [[T][V]] per prompt, one call, past of length 0;
//      "cached": [[T][V]] per prompt: all but the last two tokens in one
//        call, then one token a call, each fed the present of the last;
//      "batch": [[T][V]] for prompts req.batch (default [0, 1]) as one left-padded batch of
//        2 (position_ids cumsum(mask) - 1, pads 1, as generate() makes
//        them), the rows of each prompt's own tokens}
//   node ort.mjs encoder MODEL.onnx < {"prompts": [[ids]...],
//                                      "types": [[ids]...], "pad": id}
//     {"out": {name: [per prompt value]} for every output, one prompt a
//      call; "batch": {name: [per prompt value]} for prompts req.batch as
//      one right-padded batch, pad rows cut (last_hidden_state, logits
//      per token) or kept (pooled); "mean": [[H]] mean of
//      last_hidden_state per prompt over the batch's mask}
// Geometry (layers, kv heads, head_dim) comes from the config.json two
// directories up (DIR/onnx/MODEL.onnx).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');

const [mode, file] = process.argv.slice(2);
const req = JSON.parse(fs.readFileSync(0, 'utf8'));
const cfg = JSON.parse(fs.readFileSync(
	path.join(path.dirname(path.dirname(file)), 'config.json'), 'utf8'));
const session = await ort.InferenceSession.create(file, {
	graphOptimizationLevel: 'all', intraOpNumThreads: 1,
});

// The prompts of the batch: req.batch (indices, as reference.json's
// batch.prompts), else the first two.
const bi = req.batch ?? [0, 1];
const pick = () => bi.map((i) => req.prompts[i]);

const i64 = (rows) => new ort.Tensor('int64',
	BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);

// rows [b][t] of a [B, T, X] tensor as nested arrays.
function rows3(t) {
	const [B, T, X] = t.dims, out = [];
	for (let b = 0; b < B; b++) {
		const r = [];
		for (let i = 0; i < T; i++)
			r.push(Array.from(t.data.subarray((b * T + i) * X,
							  (b * T + i + 1) * X)));
		out.push(r);
	}
	return out;
}

function rows2(t) {
	const [B, X] = t.dims, out = [];
	for (let b = 0; b < B; b++)
		out.push(Array.from(t.data.subarray(b * X, (b + 1) * X)));
	return out;
}

async function decoder() {
	const L = cfg.num_hidden_layers ?? cfg.n_layer;
	const heads = cfg.num_attention_heads ?? cfg.n_head;
	const kvh = cfg.num_key_value_heads ?? heads;
	const hd = cfg.head_dim ?? (cfg.hidden_size ?? cfg.n_embd) / heads;
	const empty = (B) => {
		const p = {};
		for (let l = 0; l < L; l++)
			for (const kv of ['key', 'value'])
				p[`past_key_values.${l}.${kv}`] = new ort.Tensor(
					'float32', new Float32Array(0), [B, kvh, 0, hd]);
		return p;
	};
	// one call: ids [B][S], mask [B][P + S], positions [B][S], past
	async function step(ids, mask, pos, past) {
		const r = await session.run({
			input_ids: i64(ids), attention_mask: i64(mask),
			position_ids: i64(pos), ...past,
		});
		const next = {};
		for (let l = 0; l < L; l++)
			for (const kv of ['key', 'value'])
				next[`past_key_values.${l}.${kv}`] = r[`present.${l}.${kv}`];
		return { logits: rows3(r.logits), past: next };
	}
	const out = { full: [], cached: [], batch: [] };
	for (const p of req.prompts) {
		const T = p.length, range = (a, b) =>
			Array.from({ length: b - a }, (_, i) => a + i);
		const r = await step([p], [p.map(() => 1)], [range(0, T)], empty(1));
		out.full.push(r.logits[0]);
		const n0 = T > 2 ? T - 2 : 1;
		let s = await step([p.slice(0, n0)], [range(0, n0).map(() => 1)],
				   [range(0, n0)], empty(1));
		const rows = [...s.logits[0]];
		for (let t = n0; t < T; t++) {
			s = await step([[p[t]]], [range(0, t + 1).map(() => 1)], [[t]],
				       s.past);
			rows.push(s.logits[0][0]);
		}
		out.cached.push(rows);
	}
	const two = pick(), W = Math.max(...two.map((p) => p.length));
	const ids = two.map((p) => [...Array(W - p.length).fill(req.pad), ...p]);
	const mask = two.map((p) => [...Array(W - p.length).fill(0),
				     ...p.map(() => 1)]);
	const pos = mask.map((m) => {
		let c = 0;
		return m.map((v) => (c += v, v ? c - 1 : 1));
	});
	const b = await step(ids, mask, pos, empty(2));
	two.forEach((p, i) => out.batch.push(b.logits[i].slice(W - p.length)));
	return out;
}

async function encoder() {
	const hasTypes = session.inputNames.includes('token_type_ids');
	const feed = (ids, mask, types) => {
		const f = { input_ids: i64(ids), attention_mask: i64(mask) };
		if (hasTypes)
			f.token_type_ids = i64(types);
		return f;
	};
	const value = (t) => t.dims.length === 3 ? rows3(t) : rows2(t);
	const out = { out: {}, batch: {}, mean: [] };
	for (const name of session.outputNames) {
		out.out[name] = [];
		out.batch[name] = [];
	}
	for (const [i, p] of req.prompts.entries()) {
		const types = req.types?.[i] ?? p.map(() => 0);
		const r = await session.run(feed([p], [p.map(() => 1)], [types]));
		for (const name of session.outputNames)
			out.out[name].push(value(r[name])[0]);
	}
	const two = pick(), W = Math.max(...two.map((p) => p.length));
	const ids = two.map((p) => [...p, ...Array(W - p.length).fill(req.pad)]);
	const mask = two.map((p) => [...p.map(() => 1), ...Array(W - p.length).fill(0)]);
	const types = two.map((p, i) => [...(req.types?.[bi[i]] ?? p.map(() => 0)),
					 ...Array(W - p.length).fill(0)]);
	const r = await session.run(feed(ids, mask, types));
	for (const name of session.outputNames) {
		const v = value(r[name]);
		two.forEach((p, i) => out.batch[name].push(
			r[name].dims.length === 3 ? v[i].slice(0, p.length) : v[i]));
	}
	if (r.last_hidden_state) {
		const h = rows3(r.last_hidden_state);
		two.forEach((p, i) => {
			const H = h[i][0].length, s = new Float64Array(H);
			for (let t = 0; t < p.length; t++)
				for (let k = 0; k < H; k++)
					s[k] += h[i][t][k];
			out.mean.push(Array.from(s, (x) => x / p.length));
		});
	}
	return out;
}

const result = mode === 'decoder' ? await decoder() : await encoder();
process.stdout.write(JSON.stringify(result) + '\n');
