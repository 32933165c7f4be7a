#!/usr/bin/python3
"""Side-by-side training throughput: dptrain vs PyTorch (Debian's python3-torch) on the same
model, data, optimizer and batch sizes, in one invocation on the same machine.

    perf/compare_pytorch.py [--batches 128,256,512] [--threads 1,2] [--reps 5] [--steps 100]

Model 784-256-128-10 (ReLU), SGD momentum 0.9, Fashion-MNIST from the dataset-fashion-mnist
package, normalised with the training set's mean/std. Each figure is the median samples/s of
--reps timed runs of --steps steps after 20 warm-up steps, as `dptrain bench` measures. PyTorch
runs at every thread count given, at its default thread count, and with OMP_WAIT_POLICY=PASSIVE
(which helps it at 2+ threads); "best" is its fastest setting. Writes perf/compare_pytorch.csv.
Needs: apt-get install python3-torch (the script says so and exits 0 when it is missing)."""
import argparse
import csv
import gzip
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist"


def torch_worker(args):
    """Measures PyTorch in this process (thread settings must precede the first op)."""
    import numpy as np
    import torch

    torch.set_num_threads(args.worker_threads)
    with gzip.open(os.path.join(DATA, "train-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255
    with gzip.open(os.path.join(DATA, "train-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    x = (x - x.mean()) / x.std()
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    b = args.worker_batch
    perm = torch.randperm(x.shape[0])
    usable = (x.shape[0] // b) * b
    pos = 0

    def steps(n):
        nonlocal pos
        for _ in range(n):
            idx = perm[pos:pos + b]
            pos = (pos + b) % usable
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()

    steps(20)
    rates = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        steps(args.steps)
        rates.append(args.steps * b / (time.perf_counter() - t0))
    print(f"{statistics.median(rates):.1f}")


def torch_rate(threads, batch, args, passive=False):
    env = dict(os.environ)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run([sys.executable, __file__, "--worker-threads", str(threads),
                          "--worker-batch", str(batch), "--reps", str(args.reps),
                          "--steps", str(args.steps)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def dptrain_rates(batch, threads, args):
    """samples/s per thread count from `dptrain bench --modes strong`."""
    out_dir = os.path.join(ROOT, "perf", "out-compare")
    subprocess.run([os.path.join(ROOT, "build", "dptrain"), "bench", "--modes", "strong",
                    "--threads", ",".join(map(str, threads)), "--batch", str(batch),
                    "--reps", str(args.reps), "--steps", str(args.steps), "--out", out_dir],
                   check=True, capture_output=True)
    with open(os.path.join(out_dir, "bench.csv")) as f:
        return {int(r["threads"]): float(r["samples_per_second"]) for r in csv.DictReader(f)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="128,256,512")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--worker-threads", type=int)
    p.add_argument("--worker-batch", type=int)
    args = p.parse_args()
    if args.worker_threads:
        return torch_worker(args)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: apt-get install python3-torch (comparison skipped)")
        return 0
    import torch
    default_threads = torch.get_num_threads()
    threads = [int(t) for t in args.threads.split(",")]
    rows = []
    print(f"PyTorch {torch.__version__}, default threads {default_threads}; "
          f"median of {args.reps} x {args.steps} steps")
    print(f"{'batch':>6} {'threads':>7} {'dptrain':>10} {'torch':>10} {'torch-passive':>13} "
          f"{'ratio':>6} {'vs torch best':>13}")
    for batch in map(int, args.batches.split(",")):
        dpt = dptrain_rates(batch, threads, args)
        tor = {t: torch_rate(t, batch, args) for t in sorted(set(threads + [default_threads]))}
        passive = {t: torch_rate(t, batch, args, True) for t in tor if t > 1}
        best = max(list(tor.values()) + list(passive.values()))
        for t in threads:
            pas = passive.get(t, float("nan"))
            rows.append(dict(batch=batch, threads=t, dptrain=dpt[t], torch=tor[t],
                             torch_passive=pas, torch_default=tor[default_threads],
                             torch_best=best, ratio_same_threads=dpt[t] / tor[t],
                             ratio_vs_torch_best=dpt[t] / best))
            print(f"{batch:>6} {t:>7} {dpt[t]:>10.0f} {tor[t]:>10.0f} {pas:>13.0f} "
                  f"{dpt[t] / tor[t]:>6.2f} {dpt[t] / best:>13.2f}")
    with open(os.path.join(ROOT, "perf", "compare_pytorch.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print("wrote perf/compare_pytorch.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
