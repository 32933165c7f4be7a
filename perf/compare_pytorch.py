#!/usr/bin/python3
"""Side-by-side training throughput: dptrain vs PyTorch (Debian's python3-torch) on the same
model, data, optimizer and batch sizes, in one invocation on the same machine.

    perf/compare_pytorch.py [--batches 128,256,512] [--threads 1,2] [--rounds 3] [--reps 5]
                            [--steps 100]

Model 784-256-128-10 (ReLU), SGD momentum 0.9, Fashion-MNIST from the dataset-fashion-mnist
package, normalised with the training set's mean/std. Each figure is the median samples/s of
--reps timed runs of --steps steps after 20 warm-up steps, as `dptrain bench` measures.

PyTorch gets every thread setting a user would try, and its best one counts:
  intra-op   torch.set_num_threads(t) only. Debian's PyTorch does its GEMMs in the system BLAS
             (libblas.so.3, BLIS by default), which takes its thread count from the environment,
             so here the GEMMs stay on one thread;
  +blas      also OMP_NUM_THREADS=t and BLIS_NUM_THREADS=t, so the GEMMs use t threads too;
  +passive   that plus OMP_WAIT_POLICY=PASSIVE.
Its default thread count (torch.get_num_threads()) is measured as well. The whole set is
measured --rounds times, interleaved, every ratio is taken within one round, and the median
(and min-max) over rounds is reported, because a shared machine drifts by tens of percent from
minute to minute. Writes perf/compare_pytorch.csv.
Needs: apt-get install python3-torch (the script says so and exits 0 when it is missing)."""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import time

import fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = ("intra-op", "+blas", "+passive")


def torch_worker(args):
    """Measures PyTorch in this process (thread settings must precede the first op)."""
    import torch

    torch.set_num_threads(args.worker_threads)
    x, y = (torch.from_numpy(a) for a in fashion_mnist.load())
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


def torch_rate(threads, batch, setting, args):
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "BLIS_NUM_THREADS", "OMP_WAIT_POLICY"):
        env.pop(k, None)
    if setting != "intra-op":
        env["OMP_NUM_THREADS"] = env["BLIS_NUM_THREADS"] = str(threads)
    if setting == "+passive":
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


def measure_round(batch, threads, default_threads, args):
    """One round: dptrain, then every PyTorch setting, back to back, so that the ratios of
    this round share the machine's state of the moment. Returns dptrain's rates by thread
    count and PyTorch's by (threads, setting); one thread has a single setting."""
    dpt = dptrain_rates(batch, threads, args)
    tor = {}
    for t in sorted(set(threads + [default_threads])):
        for setting in SETTINGS if t > 1 else SETTINGS[:1]:
            tor[(t, setting)] = torch_rate(t, batch, setting, args)
    return dpt, tor


def torch_best_at(tor, t):
    return max(v for (tt, _), v in tor.items() if tt == t)


def median_and_range(values):
    return statistics.median(values), min(values), max(values)


def summarise(batch, t, rounds, default_threads):
    """One CSV row: medians of the rates over the rounds, and the median (min, max) of the
    per-round ratios. A ratio is only ever taken between figures of the same round."""
    med = statistics.median
    row = dict(batch=batch, threads=t, rounds=len(rounds),
               dptrain=med([d[t] for d, _ in rounds]))
    for setting in SETTINGS:
        vals = [tor[(t, setting)] for _, tor in rounds if (t, setting) in tor]
        row["torch_" + setting.strip("+").replace("-", "_")] = med(vals) if vals else float("nan")
    row["torch_best_same_threads"] = med([torch_best_at(tor, t) for _, tor in rounds])
    row["torch_default"] = med([tor[(default_threads, "intra-op")] for _, tor in rounds])
    row["torch_best"] = med([max(tor.values()) for _, tor in rounds])
    for name, ratios in (
            ("ratio_same_threads", [d[t] / torch_best_at(tor, t) for d, tor in rounds]),
            ("ratio_vs_torch_best", [d[t] / max(tor.values()) for d, tor in rounds])):
        row[name], row[name + "_min"], row[name + "_max"] = median_and_range(ratios)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="128,256,512")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--worker-threads", type=int)
    p.add_argument("--worker-batch", type=int)
    args = p.parse_args()
    if args.worker_threads:
        return torch_worker(args)
    if args.rounds < 1 or args.reps < 1 or args.steps < 1:
        p.error("--rounds, --reps and --steps must be at least 1")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: apt-get install python3-torch (comparison skipped)")
        return 0
    import torch
    default_threads = torch.get_num_threads()
    threads = [int(t) for t in args.threads.split(",")]
    rows = []
    print(f"PyTorch {torch.__version__}, default threads {default_threads}; {args.rounds} "
          f"interleaved rounds, each rate the median of {args.reps} x {args.steps} steps")
    for batch in map(int, args.batches.split(",")):
        rounds = []
        for r in range(args.rounds):
            rounds.append(measure_round(batch, threads, default_threads, args))
            dpt, tor = rounds[-1]
            print(f"  batch {batch} round {r + 1}: dptrain " +
                  ", ".join(f"{t} thr {dpt[t]:.0f}" for t in threads) + "; torch " +
                  ", ".join(f"{t} thr {s} {v:.0f}" for (t, s), v in tor.items()), flush=True)
        rows += [summarise(batch, t, rounds, default_threads) for t in threads]
    print(f"{'batch':>6} {'threads':>7} {'dptrain':>10} {'torch best':>10} "
          f"{'ratio (min-max)':>18} {'torch overall best':>18} {'ratio (min-max)':>18}")
    for w in rows:
        print(f"{w['batch']:>6} {w['threads']:>7} {w['dptrain']:>10.0f} "
              f"{w['torch_best_same_threads']:>10.0f} "
              f"{w['ratio_same_threads']:>6.2f} ({w['ratio_same_threads_min']:.2f}-"
              f"{w['ratio_same_threads_max']:.2f}) {w['torch_best']:>18.0f} "
              f"{w['ratio_vs_torch_best']:>6.2f} ({w['ratio_vs_torch_best_min']:.2f}-"
              f"{w['ratio_vs_torch_best_max']:.2f})")
    with open(os.path.join(ROOT, "perf", "compare_pytorch.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print("wrote perf/compare_pytorch.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
