"""The native anchor of `npm run bench`: the bench's training step in PyTorch on one CPU thread.

Same shapes as bench/setup.ts (llama: vocabulary 512, d 128, 2 layers, 4 heads, MLP 512, untied head,
RMSNorm, rotary positions, SiLU gating), the same loss (w * CE + (1 - w) * k2 / 2 with
k2 = (logp - refLogp)^2 / 2 to a frozen reference copy, over the response mask), AdamW with the engine's
defaults (betas 0.9 / 0.95, global-norm clip 1) and the same batch (16 sequences of 64 tokens). The
initialisation differs (it does not change the cost). Debian's python3-torch multiplies through the system
BLAS: with only the reference libblas3 it is some 20 times slower than with OpenBLAS
(`apt-get install libopenblas0-pthread`), so the output names the BLAS in use.

Prints one JSON line: {"torch", "threads", "blas", "tokens_per_s", "tokens_per_cpu_s", "step_s", "step_cpu_s"}:
throughput by the clock and by process CPU time (on a shared machine the clock counts other processes' turns).
Usage: python3 bench/torch-anchor.py [--steps N] (default 8 timed steps after 1 warm-up step).
"""

import argparse
import json
import math
import os
import time

# One thread everywhere: OpenBLAS and OpenMP read these when torch loads (torch.set_num_threads sets OpenMP's).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F

VOCAB, D, LAYERS, HEADS, MLP, BATCH, TIME = 512, 128, 2, 4, 512, 16, 64
HEAD_DIM = D // HEADS
EPS = 1e-5


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.input_norm = torch.nn.Parameter(torch.ones(D))
        self.post_norm = torch.nn.Parameter(torch.ones(D))
        self.q = torch.nn.Linear(D, D, bias=False)
        self.k = torch.nn.Linear(D, D, bias=False)
        self.v = torch.nn.Linear(D, D, bias=False)
        self.o = torch.nn.Linear(D, D, bias=False)
        self.gate = torch.nn.Linear(D, MLP, bias=False)
        self.up = torch.nn.Linear(D, MLP, bias=False)
        self.down = torch.nn.Linear(MLP, D, bias=False)

    def forward(self, x, cos, sin, causal):
        b, t, _ = x.shape
        h = rms_norm(x, self.input_norm)
        q = self.q(h).view(b, t, HEADS, HEAD_DIM).transpose(1, 2)
        k = self.k(h).view(b, t, HEADS, HEAD_DIM).transpose(1, 2)
        v = self.v(h).view(b, t, HEADS, HEAD_DIM).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(HEAD_DIM) + causal
        attn = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, D)
        x = x + self.o(attn)
        h = rms_norm(x, self.post_norm)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


def rms_norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rope(x, cos, sin):
    x1, x2 = x[..., : HEAD_DIM // 2], x[..., HEAD_DIM // 2 :]
    return x * cos + torch.cat((-x2, x1), -1) * sin


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, D)
        self.blocks = torch.nn.ModuleList(Block() for _ in range(LAYERS))
        self.norm = torch.nn.Parameter(torch.ones(D))
        self.head = torch.nn.Linear(D, VOCAB, bias=False)
        inv = 1.0 / (10000 ** (torch.arange(0, HEAD_DIM, 2).float() / HEAD_DIM))
        freqs = torch.outer(torch.arange(TIME).float(), inv)
        emb = torch.cat((freqs, freqs), -1)
        self.register_buffer("cos", emb.cos())
        self.register_buffer("sin", emb.sin())
        self.register_buffer("causal", torch.full((TIME, TIME), -1e9).triu(1))

    def label_logp(self, ids, labels):
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x, self.cos, self.sin, self.causal)
        logits = self.head(rms_norm(x, self.norm))
        return logits.log_softmax(-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)


def blas_name():
    """The BLAS library torch's process has mapped (Debian's torch uses the system libblas.so.3)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                if "blas" in line:
                    return os.path.basename(os.path.dirname(line.split()[-1])) + "/" + os.path.basename(line.split()[-1])
    except OSError:
        pass
    return "unknown"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Model()
    reference = Model()
    reference.load_state_dict(model.state_dict())
    reference.requires_grad_(False)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)

    def step():
        seq = torch.randint(4, VOCAB, (BATCH, TIME + 1))
        ids, labels = seq[:, :-1], seq[:, 1:]
        mask = (torch.arange(1, TIME + 1) >= 16).float().expand(BATCH, TIME)
        weights = torch.rand(BATCH, TIME)
        with torch.no_grad():
            ref = reference.label_logp(ids, labels)
        logp = model.label_logp(ids, labels)
        k2 = 0.5 * (logp - ref) ** 2
        per = weights * -logp + (1 - weights) * 0.5 * k2
        loss = (per * mask).sum() / mask.sum()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        return loss.item()

    step()  # warm-up
    seconds = []
    cpu = []
    for _ in range(args.steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "blas": blas_name(),
                "tokens_per_s": BATCH * TIME * len(seconds) / sum(seconds),
                "tokens_per_cpu_s": BATCH * TIME * len(cpu) / sum(cpu),
                "step_s": [round(s, 5) for s in seconds],
                "step_cpu_s": [round(s, 5) for s in cpu],
            }
        )
    )


if __name__ == "__main__":
    main()
