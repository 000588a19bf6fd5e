#!/usr/bin/env node
/*
 * Time llama.cpp (through the npm package node-llama-cpp, CPU only) on a
 * GGUF file the way llama-bench's pp<N>/tg<M> do, and print one JSON line.
 *
 * usage: node scripts/bench/llamacpp.mjs -m <model.gguf> [-t <threads>]
 *            [--pp <n>] [--tg <m>] [--reps <r>] [--flash-attn on|off|auto]
 *            [-v]
 *        node scripts/bench/llamacpp.mjs -m <model.gguf> --greedy <id,id,..>
 *            [-n <tokens>] [-t <threads>]
 *
 *   -t       threads (2)
 *   --pp     prompt tokens (512), --tg generated tokens (128)
 *   --reps   timed repetitions of each test (1); the JSON has each
 *            rate and their median
 *   -v       copy llama.cpp's log to stderr
 *   --greedy no timing: print {"ids": [...]}, the n (8) token ids
 *            llama.cpp generates greedily after the given prompt ids, to
 *            hold against hf-run --jsonl --temperature 0 on {"ids": [...]}
 *
 * Both tests start from an empty KV cache, after a short warm-up pass
 * (16 prompt tokens, 2 generated) that pages the weights in:
 *   pp: evaluateWithoutGeneratingNewTokens() of n token ids (the ids
 *       scripts/bench/run gives hf-run), batch and ubatch 512, so pp512
 *       is one llama_decode of 512 tokens with logits for the last one;
 *       rate = n / elapsed.
 *   tg: evaluate([one id]) read for m tokens, temperature 0 (greedy
 *       sampling over the vocabulary, EOG tokens yielded, not stopping):
 *       m llama_decode calls of one token each; rate = m / elapsed.
 * Context size pp + tg + 16 (at least 640), KV cache f16, one sequence.
 *
 * The JSON also carries what llama.cpp reports about the model (its
 * "model params", "file type", n_vocab/n_embd/n_layer log lines and
 * llama_model_size()) and the CPU backend variant it loaded (libggml-cpu-<variant>.so: ggml picks the
 * best one the CPU supports), to check the GGUF has the right shape.
 */
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const usage = "usage: node scripts/bench/llamacpp.mjs -m <model.gguf> " +
	"[-t <threads>] [--pp <n>] [--tg <m>] [--reps <r>] " +
	"[--flash-attn on|off|auto] [-v]\n" +
	"       node scripts/bench/llamacpp.mjs -m <model.gguf> " +
	"--greedy <id,id,..> [-n <tokens>] [-t <threads>]\n";

function parseArgs(argv) {
	const o = { model: null, threads: 2, pp: 512, tg: 128, reps: 1,
		fa: "auto", verbose: false, greedy: null, n: 8 };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i], v = argv[i + 1];
		const num = () => {
			const n = Number(v);
			i++;
			if (!Number.isInteger(n) || n < 1)
				throw new Error(`bad ${a} '${v}'`);
			return n;
		};
		if (a === "-m") { o.model = v; i++; }
		else if (a === "-t") o.threads = num();
		else if (a === "--pp") o.pp = num();
		else if (a === "--tg") o.tg = num();
		else if (a === "--reps") o.reps = num();
		else if (a === "--flash-attn") {
			if (!["on", "off", "auto"].includes(v))
				throw new Error(`bad ${a} '${v}'`);
			o.fa = v;
			i++;
		} else if (a === "-n") o.n = num();
		else if (a === "--greedy") {
			o.greedy = String(v).split(",").map(Number);
			i++;
			if (o.greedy.some((x) => !Number.isInteger(x) || x < 0))
				throw new Error(`bad ${a} '${v}'`);
		} else if (a === "-v") o.verbose = true;
		else if (a === "-h" || a === "--help") {
			process.stdout.write(usage);
			process.exit(0);
		} else throw new Error(`unknown option '${a}'`);
	}
	if (!o.model)
		throw new Error("no model");
	return o;
}

/* The ids scripts/bench/run sends to hf-run: 10..1009, or 10..n_vocab-1
 * for a vocabulary smaller than 1010 (stories260k's 512). */
let idSpan = 1000;
function promptIds(n) {
	const ids = [];
	for (let i = 0; i < n; i++)
		ids.push((i * 7919) % idSpan + 10);
	return ids;
}

function median(xs) {
	const s = [...xs].sort((a, b) => a - b);
	const m = s.length >> 1;
	return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function pp(ctx, n) {
	const seq = ctx.getSequence();
	const ids = promptIds(n);
	const t0 = process.hrtime.bigint();
	await seq.evaluateWithoutGeneratingNewTokens(ids);
	const s = Number(process.hrtime.bigint() - t0) / 1e9;
	seq.dispose();
	return n / s;
}

async function tg(ctx, m) {
	const seq = ctx.getSequence();
	let k = 0;
	const t0 = process.hrtime.bigint();
	for await (const _ of seq.evaluate(promptIds(1),
	    { temperature: 0, yieldEogToken: true })) {
		if (++k >= m)
			break;
	}
	const s = Number(process.hrtime.bigint() - t0) / 1e9;
	seq.dispose();
	return m / s;
}

function grab(logs, re) {
	for (const l of logs) {
		const m = l.match(re);
		if (m)
			return m[1].trim();
	}
	return null;
}

async function main() {
	let o;
	try {
		o = parseArgs(process.argv.slice(2));
	} catch (e) {
		process.stderr.write(`llamacpp: ${e.message}\n${usage}`);
		return 2;
	}
	const logs = [];
	const llama = await getLlama({
		gpu: false, build: "never", maxThreads: 0,
		logLevel: LlamaLogLevel.debug,
		logger: (level, msg) => {
			logs.push(msg);
			if (o.verbose)
				process.stderr.write(msg.endsWith("\n") ? msg : msg + "\n");
		},
	});
	const model = await llama.loadModel({ modelPath: o.model, gpuLayers: 0 });
	const nVocab = Number(grab(logs, /n_vocab\s*=\s*(\d+)/));
	if (nVocab > 10)
		idSpan = Math.min(1000, nVocab - 10);
	const ctxSize = Math.max(640, o.pp + o.tg + 16);
	const fa = { on: true, off: false, auto: "auto" }[o.fa];
	const ctx = await model.createContext({
		contextSize: ctxSize, batchSize: 512, threads: o.threads,
		sequences: 1, flashAttention: fa,
	});
	if (o.greedy) {
		const seq = ctx.getSequence();
		const ids = [];
		for await (const t of seq.evaluate(o.greedy,
		    { temperature: 0, yieldEogToken: true })) {
			ids.push(t);
			if (ids.length >= o.n)
				break;
		}
		process.stdout.write(JSON.stringify({ ids }) + "\n");
		return 0;
	}
	await pp(ctx, 16);	/* warm-up */
	await tg(ctx, 2);
	const pps = [], tgs = [];
	for (let r = 0; r < o.reps; r++) {
		pps.push(await pp(ctx, o.pp));
		tgs.push(await tg(ctx, o.tg));
	}
	const backend = grab(logs, /loaded CPU backend from (.*)/);
	const out = {
		model: o.model,
		threads: o.threads,
		pp_tokens: o.pp, tg_tokens: o.tg,
		pp_tok_s: median(pps), tg_tok_s: median(tgs),
		pp_runs: pps, tg_runs: tgs,
		cpu_variant: backend ?
			(backend.match(/libggml-cpu-([\w-]+)\.so/) || [, backend])[1] :
			null,
		cpu_backend: backend,
		system_info: llama.systemInfo.trim(),
		llama_cpp_release: llama.llamaCppRelease.release,
		/* "auto" resolves at context creation; the debug log names
		 * the graph's FLASH_ATTN_EXT nodes when it resolved to on */
		flash_attn: ctx.flashAttention === "auto" ?
			(logs.some((l) => l.includes("FLASH_ATTN_EXT")) ?
				"auto (on)" : "auto (off)") :
			ctx.flashAttention,
		context_size: ctx.contextSize,
		batch_size: ctx.batchSize,
		model_desc: model.typeDescription,
		model_size_bytes: model.size,
		model_params: grab(logs, /model params\s*=\s*(.*)/),
		file_type: grab(logs, /file type\s*=\s*(.*)/),
		n_vocab: grab(logs, /n_vocab\s*=\s*(\d+)/),
		n_embd: grab(logs, /n_embd\s*=\s*(\d+)/),
		n_layer: grab(logs, /n_layer\s*=\s*(\d+)/),
	};
	process.stdout.write(JSON.stringify(out) + "\n");
	await ctx.dispose();
	await model.dispose();
	await llama.dispose();
	return 0;
}

main().then((rc) => { process.exitCode = rc; }, (e) => {
	process.stderr.write(`llamacpp: ${e.stack || e}\n`);
	process.exitCode = 1;
});
