#!/usr/bin/python3
"""The PyTorch baseline of scripts/bench/finetune: the training loop of
hf-finetune written for the benchmark in plain torch (Debian's
python3-torch, no transformers): a Llama-style decoder in float32 from a
model directory's config.json and model.safetensors, the causal-LM loss
(labels shifted inside, mean over the batch), global-norm clipping and
torch.optim.AdamW, full fine-tuning or LoRA (A, B on every targeted
linear, base frozen, update scaled by alpha / r).

usage: finetune_torch.py --model DIR --data FILE.jsonl [--batch N]
       [--steps N] [--threads N] [--lr R] [--lora-r R] [--lora-alpha A]

Reads the first batch*steps records of FILE ({"ids": [...]}, all of one
length) in order; prints one JSON object a step: step, loss, secs (wall
time of the step: forward, backward, clipping, optimizer), tokens.
"""
import argparse
import json
import math
import mmap
import struct
import sys
import time

import torch
import torch.nn.functional as F

ST_DTYPES = {"F32": torch.float32, "F16": torch.float16,
             "BF16": torch.bfloat16}


def load_safetensors(path):
    """name -> float32 tensor (copied out of the file)."""
    out = {}
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    n = struct.unpack("<Q", mm[:8])[0]
    hdr = json.loads(mm[8:8 + n])
    base = 8 + n
    for name, v in hdr.items():
        if name == "__metadata__":
            continue
        a, b = v["data_offsets"]
        t = torch.frombuffer(bytearray(mm[base + a:base + b]),
                             dtype=ST_DTYPES[v["dtype"]])
        out[name] = t.reshape(v["shape"]).to(torch.float32)
    mm.close()
    return out


class Linear(torch.nn.Module):
    """y = x W^T (+ scale (x A^T) B^T with LoRA)."""

    def __init__(self, w, lora_r=0, scale=1.0, train_base=True):
        super().__init__()
        self.weight = torch.nn.Parameter(w, requires_grad=train_base)
        self.lora_r = lora_r
        if lora_r:
            out_f, in_f = w.shape
            a = torch.empty(lora_r, in_f)
            torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))
            self.lora_A = torch.nn.Parameter(a)
            self.lora_B = torch.nn.Parameter(torch.zeros(out_f, lora_r))
            self.scale = scale

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.lora_r:
            y = y + F.linear(F.linear(x, self.lora_A), self.lora_B) * \
                self.scale
        return y


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Llama(torch.nn.Module):
    def __init__(self, cfg, sd, lora_r, lora_alpha, targets):
        super().__init__()
        self.H = cfg["hidden_size"]
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg.get("num_key_value_heads", self.nh)
        self.hd = cfg.get("head_dim", self.H // self.nh)
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        theta = cfg.get("rope_theta", 10000.0)
        full = lora_r == 0
        scale = lora_alpha / lora_r if lora_r else 1.0

        def lin(name, short):
            r = lora_r if (lora_r and short in targets) else 0
            return Linear(sd[name], r, scale, full)

        def vec(name):
            return torch.nn.Parameter(sd[name], requires_grad=full)

        self.embed = vec("model.embed_tokens.weight")
        self.tied = "lm_head.weight" not in sd
        if not self.tied:
            self.lm_head = vec("lm_head.weight")
        self.norm = vec("model.norm.weight")
        self.layers = torch.nn.ModuleList()
        for i in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{i}."
            L = torch.nn.Module()
            L.ln1 = vec(p + "input_layernorm.weight")
            L.ln2 = vec(p + "post_attention_layernorm.weight")
            for s in ("q_proj", "k_proj", "v_proj", "o_proj"):
                setattr(L, s, lin(p + "self_attn." + s + ".weight", s))
            for s in ("gate_proj", "up_proj", "down_proj"):
                setattr(L, s, lin(p + "mlp." + s + ".weight", s))
            self.layers.append(L)
        self.inv_freq = 1.0 / (theta ** (torch.arange(
            0, self.hd, 2, dtype=torch.float32) / self.hd))

    def forward(self, ids):
        B, T = ids.shape
        pos = torch.arange(T, dtype=torch.float32)
        fr = torch.outer(pos, self.inv_freq)
        emb = torch.cat((fr, fr), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, T), float("-inf")).triu(1)
        rep = self.nh // self.nkv
        x = F.embedding(ids, self.embed)
        for L in self.layers:
            h = rmsnorm(x, L.ln1, self.eps)
            q = L.q_proj(h).view(B, T, self.nh, self.hd).transpose(1, 2)
            k = L.k_proj(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
            v = L.v_proj(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            s = q @ k.transpose(-1, -2) / math.sqrt(self.hd) + mask
            a = torch.softmax(s, dim=-1) @ v
            a = a.transpose(1, 2).reshape(B, T, self.nh * self.hd)
            x = x + L.o_proj(a)
            h = rmsnorm(x, L.ln2, self.eps)
            x = x + L.down_proj(F.silu(L.gate_proj(h)) * L.up_proj(h))
        x = rmsnorm(x, self.norm, self.eps)
        return F.linear(x, self.embed if self.tied else self.lm_head)


ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
              "up_proj", "down_proj")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--lora-r", type=int, default=0)
    ap.add_argument("--lora-alpha", type=float, default=8.0)
    ap.add_argument("--target", default="all-linear")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with open(a.model + "/config.json") as f:
        cfg = json.load(f)
    targets = ALL_LINEAR if a.target == "all-linear" else \
        tuple(a.target.split(","))
    model = Llama(cfg, load_safetensors(a.model + "/model.safetensors"),
                  a.lora_r, a.lora_alpha, targets)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0)
    with open(a.data) as f:
        recs = [json.loads(l)["ids"] for l in f if l.strip()]
    need = a.batch * a.steps
    if len(recs) < need:
        sys.exit(f"{a.data}: {len(recs)} records, {need} needed")
    for s in range(a.steps):
        ids = torch.tensor(recs[s * a.batch:(s + 1) * a.batch],
                           dtype=torch.long)
        t0 = time.perf_counter()
        logits = model(ids)
        V = logits.shape[-1]
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V),
                               ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        secs = time.perf_counter() - t0
        print(json.dumps({"step": s + 1, "loss": loss.item(), "secs": secs,
                          "tokens": int(ids.numel())}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
