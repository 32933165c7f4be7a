#!/usr/bin/python3
"""Test accuracy of the default 3-epoch recipe, dptrain vs PyTorch, over several seeds.

    perf/compare_accuracy.py [--seeds 12] [--epochs 3]

The recipe of `dptrain train` with its defaults: model 784-256-128-10 (ReLU), Glorot-uniform
weights and zero biases, inputs standardised with the training set's mean/std, batch 128 with
a fresh shuffle per epoch, SGD lr 0.05 momentum 0.9, mean cross-entropy. Each seed is run in
both; the script prints the test accuracy after every epoch and, per program, the mean,
standard deviation and minimum of the final accuracy and how many seeds end at 0.86 or more.
Seeds are not comparable one to one (the programs draw different random numbers), the
distributions are. Needs python3-torch (skips PyTorch with a message when it is missing)."""
import argparse
import csv
import os
import statistics
import subprocess
import tempfile

import fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dptrain_run(seed, epochs):
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([os.path.join(ROOT, "build", "dptrain"), "train", "--epochs", str(epochs),
                        "--seed", str(seed), "--quiet", "--out", out], check=True,
                       capture_output=True)
        with open(os.path.join(out, "metrics.csv")) as f:
            return [float(r["val_accuracy"]) for r in csv.DictReader(f)]


def torch_setup():
    import torch

    torch.set_num_threads(os.cpu_count())
    return torch, [torch.from_numpy(a) for a in fashion_mnist.load(with_test=True)]


def torch_run(torch, data, seed, epochs):
    xtr, ytr, xte, yte = data
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 128), torch.nn.ReLU(),
                              torch.nn.Linear(128, 10))
    for layer in net:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    accs = []
    for _ in range(epochs):
        perm = torch.randperm(xtr.shape[0])
        for i in range(0, xtr.shape[0], 128):
            idx = perm[i:i + 128]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xtr[idx]), ytr[idx]).backward()
            opt.step()
        with torch.no_grad():
            accs.append((net(xte).argmax(1) == yte).float().mean().item())
    return accs


def summary(name, finals):
    sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
    print(f"{name}: final accuracy mean {statistics.mean(finals):.4f} sd {sd:.4f} "
          f"min {min(finals):.4f} max {max(finals):.4f}; "
          f"{sum(a >= 0.86 for a in finals)} of {len(finals)} seeds end at 0.86 or more")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=12)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    if args.seeds < 1 or args.epochs < 1:
        p.error("--seeds and --epochs must be at least 1")
    try:
        torch, data = torch_setup()
    except ImportError:
        print("PyTorch is not installed: apt-get install python3-torch (PyTorch skipped)")
        torch = None
    results = {"dptrain": [], "pytorch": []}
    for seed in range(1, args.seeds + 1):
        runs = {"dptrain": dptrain_run(seed, args.epochs)}
        if torch:
            runs["pytorch"] = torch_run(torch, data, seed, args.epochs)
        for name, accs in runs.items():
            results[name].append(accs[-1])
            print(f"seed {seed:>3} {name:>8}: " + " ".join(f"{a:.4f}" for a in accs),
                  flush=True)
    for name, finals in results.items():
        if finals:
            summary(name, finals)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
