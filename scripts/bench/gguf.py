#!/usr/bin/env python3
"""Convert a Hugging Face model directory (config.json, model.safetensors,
tokenizer.json if there is one) of model_type llama or qwen2 into a GGUF v3
file that llama.cpp loads, for running llama.cpp on the same weights as
hf in scripts/bench/run.

usage: scripts/bench/gguf.py [--pre <name>] <model-dir> [<out.gguf>]
       scripts/bench/gguf.py --dump <file.gguf>

  <out.gguf>  default <model-dir>/model.gguf; written to a temporary name
              and renamed, so a file that exists is complete
  --pre       tokenizer.ggml.pre (llama.cpp's pre-tokenizer name) instead
              of the one guessed from tokenizer.json
  --dump      print a GGUF file's metadata (arrays shortened) and tensors

Python 3 standard library only. The conventions are those of llama.cpp's
convert_hf_to_gguf.py with --outtype equal to the weights' own type:
  - 2-D weights keep their type (F32, F16 or BF16); 1-D tensors (norms,
    qwen2's q/k/v biases) and llama3's rope_freqs are stored F32
  - model_type llama: the rows of q_proj and k_proj are permuted from HF's
    rotate-half layout to the interleaved pairs llama.cpp's rope expects
    (per head, row s * hd/2 + j moves to j * 2 + s); qwen2 is not
  - rope_scaling llama3 becomes the rope_freqs.weight tensor of factors
  - tied embeddings: no output.weight (llama.cpp reuses token_embd)
  - tokenizer "gpt2" (byte-level BPE): tokens padded to vocab_size with
    [PAD<i>] (UNUSED), added tokens CONTROL when special else
    USER_DEFINED, merges as "a b"
The generated benchmark models (scripts/gen-model) have no tokenizer.json:
then a stand-in byte-level vocab is written (the 256 byte symbols, the
config's bos/eos as control tokens, the rest [PAD<i>], no merges). It
tokenizes any text into bytes; the benchmark feeds token ids, so only the
vocabulary's size matters.
"""
import json
import math
import mmap
import os
import struct
import sys

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGN = 32

# gguf metadata value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
# ggml tensor types, and llama.cpp's general.file_type for each
GGML = {"F32": 0, "F16": 1, "BF16": 30}
FILE_TYPE = {"F32": 0, "F16": 1, "BF16": 32}
ELSIZE = {"F32": 4, "F16": 2, "BF16": 2}
# SentencePiece-style token types, as llama.cpp reads them
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

HF_TO_GGUF = {  # per-layer tensors, after "model.layers.N."
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


class ConvertError(Exception):
    pass


# --- writing ------------------------------------------------------------

def gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
          F32: "<f", BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}


def gvalue(vtype, v):
    if vtype == STR:
        return gstr(v)
    return struct.pack(SCALAR[vtype], v)


def kv_bytes(key, vtype, v, itype=None):
    """One metadata pair; an ARR takes the items' type as itype."""
    out = gstr(key) + struct.pack("<I", vtype)
    if vtype != ARR:
        return out + gvalue(vtype, v)
    out += struct.pack("<IQ", itype, len(v))
    if itype == STR:
        return out + b"".join(gstr(s) for s in v)
    return out + struct.pack("<%d%s" % (len(v), SCALAR[itype][1]), *v)


def write_gguf(path, kvs, tensors):
    """kvs: [(key, type, value[, item type])]; tensors: [(name, dims
    (ne[0] first, the fastest-varying), ggml type name, nbytes, fill)],
    fill(f) writing exactly nbytes to f."""
    offs, off = [], 0
    for _, _, _, nbytes, _ in tensors:
        offs.append(off)
        off += nbytes + (-nbytes % ALIGN)
    head = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(tensors),
                                    len(kvs))]
    head += [kv_bytes(*kv) for kv in kvs]
    for (name, dims, t, _, _), o in zip(tensors, offs):
        head.append(gstr(name) + struct.pack("<I", len(dims)) +
                    struct.pack("<%dQ" % len(dims), *dims) +
                    struct.pack("<IQ", GGML[t], o))
    head = b"".join(head)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(head + b"\0" * (-len(head) % ALIGN))
        for _, _, _, nbytes, fill in tensors:
            start = f.tell()
            fill(f)
            if f.tell() - start != nbytes:
                raise ConvertError("internal: a tensor wrote %d bytes, not %d"
                                   % (f.tell() - start, nbytes))
            f.write(b"\0" * (-nbytes % ALIGN))
    os.replace(tmp, path)


# --- reading safetensors -------------------------------------------------

def open_safetensors(path):
    """(header dict, mmap of the file, offset of the data)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    header.pop("__metadata__", None)
    return header, mm, 8 + n


def to_f32(raw, dtype):
    """Little-endian bytes of dtype F32, F16 or BF16 as F32 bytes."""
    if dtype == "F32":
        return bytes(raw)
    n = len(raw) // 2
    if dtype == "F16":
        return struct.pack("<%df" % n, *struct.unpack("<%de" % n, raw))
    out = bytearray(4 * n)  # bf16 is the high half of an f32
    out[2::4] = raw[0::2]
    out[3::4] = raw[1::2]
    return bytes(out)


def permute_rows(raw, nrows, n_head):
    """llama.cpp's q/k permutation on whole rows: within each of n_head
    heads of hd rows, row s * hd/2 + j becomes row j * 2 + s."""
    rb = len(raw) // nrows
    hd = nrows // n_head
    out = []
    for h in range(n_head):
        for j in range(hd // 2):
            for s in range(2):
                r = h * hd + s * (hd // 2) + j
                out.append(raw[r * rb:(r + 1) * rb])
    return b"".join(out)


# --- the model ----------------------------------------------------------

def llama3_rope_factors(cfg, hd):
    """rope_freqs for rope_scaling llama3, as convert_hf_to_gguf.py makes
    them (note: original_max_position_embeddings is read from the top
    level of config.json there, so it is 8192 for Llama 3.x)."""
    rs = cfg["rope_scaling"]
    base = cfg.get("rope_theta", 10000.0)
    factor = rs.get("factor", 8.0)
    lo = rs.get("low_freq_factor", 1.0)
    hi = rs.get("high_freq_factor", 4.0)
    old = cfg.get("original_max_position_embeddings", 8192)
    lo_wl, hi_wl = old / lo, old / hi
    out = []
    for i in range(0, hd, 2):
        freq = 1.0 / base ** (i / hd)
        wl = 2 * math.pi / freq
        if wl < hi_wl:
            out.append(1.0)
        elif wl > lo_wl:
            out.append(factor)
        else:
            smooth = (old / wl - lo) / (hi - lo)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return out


def guess_pre(tok, cfg):
    """llama.cpp's tokenizer.ggml.pre for a tokenizer.json (convert_hf_to_
    gguf.py hashes a tokenization instead; this reads the pre-tokenizer),
    or for the shape when there is none."""
    if tok is None:
        v = cfg["vocab_size"]
        if cfg["model_type"] == "qwen2":
            return "qwen2"
        return {49152: "smollm", 128256: "llama-bpe"}.get(v, "default")
    pt = json.dumps(tok.get("pre_tokenizer"))
    if "(?i:'s|'t|'re|'ve|'m|'ll|'d)" in pt:
        return "llama-bpe" if "\\\\p{N}{1,3}" in pt else "qwen2"
    if '"Digits"' in pt and '"individual_digits": true' in pt:
        return "smollm"
    if pt.startswith('{"type": "ByteLevel"'):
        return "gpt-2"
    return "default"


def byte_symbols():
    """GPT-2's printable stand-ins for the 256 byte values."""
    keep = (list(range(ord("!"), ord("~") + 1)) +
            list(range(ord("¡"), ord("¬") + 1)) +
            list(range(ord("®"), ord("ÿ") + 1)))
    sym, n = {}, 0
    for b in range(256):
        if b in keep:
            sym[b] = chr(b)
        else:
            sym[b] = chr(256 + n)
            n += 1
    return [sym[b] for b in range(256)]


def vocab(d, cfg):
    """(tokens, token types, merges, pre, has tokenizer.json)."""
    n = cfg["vocab_size"]
    path = os.path.join(d, "tokenizer.json")
    tok = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            tok = json.load(f)
    tokens, types = [None] * n, [UNUSED] * n
    merges = []
    if tok is not None:
        m = tok.get("model", {})
        if m.get("type") != "BPE":
            raise ConvertError("'%s': model type '%s', only BPE is supported"
                               % (path, m.get("type")))
        for t, i in m["vocab"].items():
            if i < n:
                tokens[i], types[i] = t, NORMAL
        for a in tok.get("added_tokens", []):
            i = a["id"]
            if i < n:
                tokens[i] = a["content"]
                types[i] = CONTROL if a.get("special") else USER_DEFINED
        for mg in m.get("merges", []):
            if isinstance(mg, list):  # [a, b]: spaces spelled as byte-level
                mg = " ".join(p.replace(" ", chr(ord(" ") + 256)) for p in mg)
            merges.append(mg)
    else:
        bos, eos = cfg.get("bos_token_id"), cfg.get("eos_token_id")
        special = {}
        if bos is not None:
            special[bos] = "<|begin_of_text|>" if bos != eos else \
                "<|endoftext|>"
        if eos is not None and eos != bos:
            special[eos] = "<|end_of_text|>"
        for i, t in special.items():
            tokens[i], types[i] = t, CONTROL
        free = (i for i in range(n) if i not in special)
        for s, i in zip(byte_symbols(), free):
            tokens[i], types[i] = s, NORMAL
    for i in range(n):
        if tokens[i] is None:
            tokens[i] = "[PAD%d]" % i
    return tokens, types, merges, guess_pre(tok, cfg), tok is not None


def convert(d, out, pre=None):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    arch = cfg.get("model_type")
    if arch not in ("llama", "qwen2"):
        raise ConvertError("'%s': model_type '%s', not llama or qwen2"
                           % (d, arch))
    st = os.path.join(d, "model.safetensors")
    header, mm, base = open_safetensors(st)
    h = cfg["hidden_size"]
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_head)
    hd = cfg.get("head_dim") or h // n_head
    n_layer = cfg["num_hidden_layers"]

    dtypes = {t["dtype"] for t in header.values() if len(t["shape"]) == 2}
    if len(dtypes) != 1 or next(iter(dtypes)) not in GGML:
        raise ConvertError("'%s': 2-D tensors of types %s; want one of "
                           "F32, F16, BF16" % (st, sorted(dtypes)))
    wtype = dtypes.pop()

    tensors = []

    def add(gname, hname, permute_heads=None):
        t = header[hname]
        a, b = (base + x for x in t["data_offsets"])
        shape = t["shape"]
        one_d = len(shape) == 1
        ttype = "F32" if one_d else t["dtype"]
        nbytes = (b - a) // ELSIZE[t["dtype"]] * ELSIZE[ttype]

        def fill(f):
            raw = memoryview(mm)[a:b]
            if permute_heads:
                raw = permute_rows(raw, shape[0], permute_heads)
            if one_d:
                raw = to_f32(raw, t["dtype"])
            f.write(raw)
        tensors.append((gname, shape[::-1], ttype, nbytes, fill))

    if cfg.get("rope_scaling") and \
            cfg["rope_scaling"].get("rope_type") == "llama3" and arch == "llama":
        fac = llama3_rope_factors(cfg, hd)
        raw = struct.pack("<%df" % len(fac), *fac)
        tensors.append(("rope_freqs.weight", [len(fac)], "F32", len(raw),
                        lambda f, raw=raw: f.write(raw)))
    add("token_embd.weight", "model.embed_tokens.weight")
    for i in range(n_layer):
        for hn, gn in HF_TO_GGUF.items():
            for kind in ("weight", "bias"):
                name = "model.layers.%d.%s.%s" % (i, hn, kind)
                if name not in header:
                    continue
                heads = None
                if arch == "llama" and gn == "attn_q":
                    heads = n_head
                elif arch == "llama" and gn == "attn_k":
                    heads = n_kv
                add("blk.%d.%s.%s" % (i, gn, kind), name, heads)
    add("output_norm.weight", "model.norm.weight")
    if "lm_head.weight" in header and not cfg.get("tie_word_embeddings"):
        add("output.weight", "lm_head.weight")
    known = {"model.embed_tokens.weight", "model.norm.weight",
             "lm_head.weight"} | {
        "model.layers.%d.%s.%s" % (i, hn, k) for i in range(n_layer)
        for hn in HF_TO_GGUF for k in ("weight", "bias")}
    extra = sorted(set(header) - known)
    if extra:
        raise ConvertError("'%s': tensors with no GGUF name: %s"
                           % (st, ", ".join(extra[:5])))

    tokens, types, merges, guessed, has_tok = vocab(d, cfg)
    name = os.path.basename(os.path.normpath(d))
    A = arch + "."
    kvs = [
        ("general.architecture", STR, arch),
        ("general.type", STR, "model"),
        ("general.name", STR, name),
        ("general.file_type", U32, FILE_TYPE[wtype]),
        ("general.quantization_version", U32, 2),
        ("general.alignment", U32, ALIGN),
        (A + "block_count", U32, n_layer),
        (A + "context_length", U32, cfg["max_position_embeddings"]),
        (A + "embedding_length", U32, h),
        (A + "feed_forward_length", U32, cfg["intermediate_size"]),
        (A + "attention.head_count", U32, n_head),
        (A + "attention.head_count_kv", U32, n_kv),
        (A + "rope.freq_base", F32, float(cfg.get("rope_theta", 10000.0))),
        (A + "attention.layer_norm_rms_epsilon", F32,
         float(cfg["rms_norm_eps"])),
    ]
    if "head_dim" in cfg:
        kvs += [(A + "attention.key_length", U32, hd),
                (A + "attention.value_length", U32, hd)]
    if arch == "llama":
        kvs += [(A + "vocab_size", U32, cfg["vocab_size"]),
                (A + "rope.dimension_count", U32, hd)]
    kvs += [
        ("tokenizer.ggml.model", STR, "gpt2"),
        ("tokenizer.ggml.pre", STR, pre or guessed),
        ("tokenizer.ggml.tokens", ARR, tokens, STR),
        ("tokenizer.ggml.token_type", ARR, types, I32),
        ("tokenizer.ggml.merges", ARR, merges, STR),
    ]
    for key, ck in (("bos_token_id", "bos_token_id"),
                    ("eos_token_id", "eos_token_id")):
        if isinstance(cfg.get(ck), int):
            kvs.append(("tokenizer.ggml." + key, U32, cfg[ck]))
    tc = os.path.join(d, "tokenizer_config.json")
    if has_tok and os.path.exists(tc):
        with open(tc, encoding="utf-8") as f:
            tcfg = json.load(f)
        for k in ("add_bos_token", "add_eos_token"):
            if isinstance(tcfg.get(k), bool):
                kvs.append(("tokenizer.ggml." + k, BOOL, tcfg[k]))
        if isinstance(tcfg.get("chat_template"), str):
            kvs.append(("tokenizer.chat_template", STR,
                        tcfg["chat_template"]))
    try:
        write_gguf(out, kvs, tensors)
    finally:
        mm.close()
    nparams = sum(n // ELSIZE[t] for _, _, t, n, _ in tensors)
    return nparams, os.path.getsize(out)


# --- dump ---------------------------------------------------------------

def dump(path):
    with open(path, "rb") as f:
        data = f.read(64 << 20)  # the metadata is well inside this
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string():
        nonlocal pos
        n = take("<Q")
        s = data[pos:pos + n].decode("utf-8", "replace")
        pos += n
        return s

    def value(t):
        if t == STR:
            return string()
        if t == ARR:
            it, n = take("<IQ")
            items = [value(it) for _ in range(n)]
            return items
        return take(SCALAR[t])

    if data[:4] != GGUF_MAGIC:
        raise ConvertError("'%s': not a GGUF file" % path)
    pos = 4
    version, nt, nkv = take("<IQQ")
    print("version %d, %d tensors, %d metadata keys" % (version, nt, nkv))
    for _ in range(nkv):
        k = string()
        v = value(take("<I"))
        if isinstance(v, list):
            v = "[%d] %s%s" % (len(v), ", ".join(repr(x) for x in v[:6]),
                               ", ..." if len(v) > 6 else "")
        elif isinstance(v, str) and len(v) > 80:
            v = repr(v[:80]) + "..."
        print("%-44s %s" % (k, v))
    names = {v: k for k, v in GGML.items()}
    total = 0
    for _ in range(nt):
        name = string()
        nd = take("<I")
        dims = [take("<Q") for _ in range(nd)]
        t, off = take("<IQ")
        n = 1
        for x in dims:
            n *= x
        total += n
        print("%-32s %-5s %-20s @%d" % (name, names.get(t, t),
                                        "x".join(map(str, dims)), off))
    print("%d parameters" % total)


def main(argv):
    pre = None
    args = []
    it = iter(argv)
    try:
        for a in it:
            if a == "--pre":
                pre = next(it)
            elif a == "--dump":
                dump(next(it))
                return 0
            elif a in ("-h", "--help"):
                print(__doc__)
                return 0
            elif a.startswith("-"):
                raise StopIteration
            else:
                args.append(a)
    except StopIteration:
        args = []
    except ConvertError as e:
        sys.stderr.write("gguf: %s\n" % e)
        return 1
    if len(args) not in (1, 2):
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    out = args[1] if len(args) == 2 else os.path.join(args[0], "model.gguf")
    try:
        nparams, size = convert(args[0], out, pre)
    except (ConvertError, OSError, KeyError, ValueError) as e:
        sys.stderr.write("gguf: %s\n" % e)
        return 1
    sys.stderr.write("gguf: %s: %d parameters, %.1f MB\n"
                     % (out, nparams, size / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
