#!/usr/bin/env python3
"""The scaling model of docs/distributed.md: predicted efficiency of data-parallel training on
p nodes from a measured per-node compute rate and the exchange's alpha-beta cost.

  step compute  T_c = B / (p * X)             B global batch, X samples/s of one node
  exchange      T_x = 2 (p - 1) alpha + 2 (p - 1) / p * 4 N / beta     (ring; N parameters)
  efficiency    E   = T_c / (T_c + T_x)       (no overlap: dptrain exchanges after backward)

Prints one table per link, and for each model the smallest global batch (a power of two)
that keeps E >= 0.85 at 64 nodes. Inputs are the measured rates of docs/performance.md and
perf/mpi_scaling.sh; override them with flags (--help).
"""
import argparse

LINKS = [  # name, alpha seconds, beta bytes/s
    ("shared memory (measured)", None, None),
    ("10 GbE (TCP)", 30e-6, 1.1e9),
    ("25 GbE (TCP)", 15e-6, 2.8e9),
    ("100 GbE (RoCE)", 3e-6, 11.0e9),
]

# name, parameters, samples/s of one 16-core node, default global batch
MODELS = [
    # 98.9k samples/s on 1 core here (docs/performance.md) x 16 x 0.85
    ("MLP 784-256-128-10", 235146, 98900 * 16 * 0.85, 2048),
    # 205 images/s on 1 core (docs/performance.md) x 16 x 0.85
    ("ResNet-20 (CIFAR)", 269722, 205 * 16 * 0.85, 2048),
    # a ResNet-50-sized model: ~24.6 GFLOP per training sample at 224x224, at the 62 GFLOP/s
    # a core that ResNet-20 gets here (248 MFLOP x 205/s... x 16 x 0.85)
    ("25M-parameter CNN (ResNet-50-like)", 25.6e6, 62e9 * 16 * 0.85 / 24.6e9, 2048),
]


def efficiency(p, batch, rate, params, alpha, beta):
    t_c = batch / (p * rate)
    t_x = 0.0 if p == 1 else 2 * (p - 1) * alpha + 2 * (p - 1) / p * 4 * params / beta
    return t_c / (t_c + t_x), t_c, t_x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shm-alpha", type=float, default=5e-6, help="seconds (bench_exchange, small)")
    ap.add_argument("--shm-beta", type=float, default=3e9, help="bytes/s (bench_exchange, 16 MiB)")
    ap.add_argument("--nodes", default="1,4,8,16,32,64")
    a = ap.parse_args()
    nodes = [int(x) for x in a.nodes.split(",")]
    for name, alpha, beta in LINKS:
        alpha = a.shm_alpha if alpha is None else alpha
        beta = a.shm_beta if beta is None else beta
        print(f"\n{name}: alpha {alpha * 1e6:.1f} us, beta {beta / 1e9:.2f} GB/s")
        print("| model | batch | " + " | ".join(f"{p} nodes" for p in nodes) + " | batch for E>=0.85 at 64 |")
        print("|---|---:|" + "---:|" * len(nodes) + "---:|")
        for m, params, rate, batch in MODELS:
            cells = [f"{efficiency(p, batch, rate, params, alpha, beta)[0]:.2f}" for p in nodes]
            need = None
            for k in range(6, 25):
                if efficiency(64, 2**k, rate, params, alpha, beta)[0] >= 0.85:
                    need = 2**k
                    break
            print(f"| {m} | {batch} | " + " | ".join(cells) + f" | {need if need else '> 16M'} |")


if __name__ == "__main__":
    main()
