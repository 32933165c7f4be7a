#!/usr/bin/python3
"""Test accuracy of one training recipe, dptrain vs PyTorch, over several seeds.

    perf/compare_accuracy.py [--model mlp|cnn] [--seeds N] [--first-seed S] [--epochs E]
                             [--lr F] [--schedule constant|cosine] [--batch-size B]
                             [--micro-batch M] [--torch-threads T] [--limit N]
                             [--only torch|dptrain] [--append FILE] [--summarise FILE]

Both programs train the same model on Fashion-MNIST (inputs standardised with the training
set's mean/std), batch 128 with a fresh shuffle per epoch (the last, partial batch included),
SGD momentum 0.9, mean cross-entropy, and report the test accuracy after every epoch.
  mlp  784-256-128-10 (ReLU), PyTorch's default initialisation (dptrain's); defaults: 3 epochs,
       lr 0.05, constant (`dptrain train`'s defaults), 12 seeds.
  cnn  conv:32:3,bn,relu,maxpool:2,conv:64:3,bn,relu,maxpool:2,dense:128,relu,dropout:0.3,
       dense:10 (PyTorch: compare_pytorch.torch_model, dptrain's initialisation); defaults:
       10 epochs, lr 0.05, cosine, 5 seeds.
--schedule cosine is dptrain's `cosine:T_max=E` with E = --epochs: its default clock is the
epoch (docs/schedules.md, unit=epoch), so the LR of epoch e is 0.5 lr (1 + cos(pi e / E)),
constant within the epoch; PyTorch gets the same from CosineAnnealingLR(T_max=E) stepped at
each epoch's end. The dptrain command is
    build/dptrain train --data fashion-mnist --model SPEC --optimizer sgd:momentum=0.9
        --lr 0.05 --lr-schedule cosine:T_max=10 --epochs 10 --batch-size 128 --seed S
        --quiet --out DIR
(--lr-schedule constant for --schedule constant). dptrain normalises with batch-norm
statistics per micro-shard (a ghost batch: 16 rows for this CNN by default) and pools the
shards' statistics into the batch's for the running statistics (one momentum update per step,
as PyTorch does); --micro-batch 128 makes it normalise over the whole batch too. After a handful of steps (a --limit
smoke test) PyTorch's running statistics are still far from the data's, so its test accuracy
is much lower; over full epochs the difference vanishes.

--limit N trains both on the first N training samples only (a smoke test; the test split
stays whole). --only runs one program. Every finished (program, seed) prints a line at once
and, with --append FILE, adds a CSV row there (header written when the file is new), so long
runs can be split across invocations (--first-seed) and one program at a time;
--summarise FILE prints the per-recipe summary of such a file and runs nothing.
Per program the summary is the mean, standard deviation, minimum and maximum of the final
accuracy (for mlp also how many seeds end at 0.86 or more, --threshold). Seeds are not
comparable one to one (the programs draw different random numbers), the distributions are.
PyTorch runs on --torch-threads threads (default all cores) with OMP_WAIT_POLICY=PASSIVE
unless the environment sets it (faster here, same result). Needs python3-torch (skips PyTorch
with a message when it is missing)."""
import argparse
import csv
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import compare_pytorch
import fashion_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ)  # as called, before torch_setup sets OMP_WAIT_POLICY for PyTorch
SPECS = {"mlp": "dense:256,relu,dense:128,relu,dense:10", "cnn": compare_pytorch.CNN_SPEC}
DEFAULTS = {"mlp": dict(epochs=3, schedule="constant", seeds=12, threshold=0.86),
            "cnn": dict(epochs=10, schedule="cosine", seeds=5, threshold=None)}
RECIPE = ("model", "epochs", "lr", "schedule", "batch_size", "micro_batch", "limit")
FIELDS = ("program",) + RECIPE + ("seed", "final_accuracy", "accuracies", "seconds")


def dptrain_run(args, seed):
    schedule = f"cosine:T_max={args.epochs}" if args.schedule == "cosine" else "constant"
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as data_dir:
        data = fashion_mnist.write_subset(data_dir, args.limit) if args.limit else "fashion-mnist"
        cmd = [os.path.join(ROOT, "build", "dptrain"), "train", "--data", data,
               "--model", SPECS[args.model], "--optimizer", "sgd:momentum=0.9",
               "--lr", repr(args.lr), "--lr-schedule", schedule, "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--seed", str(seed), "--quiet",
               "--out", out]
        if args.micro_batch:
            cmd += ["--micro-batch", str(args.micro_batch)]
        run = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
        if run.returncode:
            sys.exit(f"dptrain failed (exit {run.returncode}): {' '.join(cmd)}\n{run.stderr}")
        with open(os.path.join(out, "metrics.csv")) as f:
            return [float(r["val_accuracy"]) for r in csv.DictReader(f)]


def torch_setup(args):
    # Passive OpenMP waits: the CNN trains ~1.5x faster in wall time on this 2-core machine
    # (the result is the same); libgomp reads this when torch loads it. dptrain's subprocesses
    # get the caller's environment (dptrain_run passes ENV).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(args.torch_threads or os.cpu_count())
    data = fashion_mnist.load(with_test=True, limit=args.limit, image=args.model == "cnn")
    return torch, [torch.from_numpy(a) for a in data]


def torch_run(torch, data, args, seed):
    xtr, ytr, xte, yte = data
    torch.manual_seed(seed)
    net = compare_pytorch.torch_model(torch, args.model)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
             if args.schedule == "cosine" else None)
    loss_fn = torch.nn.CrossEntropyLoss()
    b = args.batch_size
    accs = []
    for _ in range(args.epochs):
        net.train()
        perm = torch.randperm(xtr.shape[0])
        for i in range(0, xtr.shape[0], b):
            idx = perm[i:i + b]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xtr[idx]), ytr[idx]).backward()
            opt.step()
        if sched:
            sched.step()
        net.eval()  # running batch-norm statistics, no dropout
        with torch.no_grad():
            correct = sum((net(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
                          for i in range(0, xte.shape[0], 1000))
        accs.append(correct / xte.shape[0])
    return accs


def summary(name, finals, threshold=None):
    sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
    tail = (f"; {sum(a >= threshold for a in finals)} of {len(finals)} seeds end at "
            f"{threshold} or more" if threshold else f" over {len(finals)} seeds")
    print(f"{name}: final accuracy mean {statistics.mean(finals):.4f} sd {sd:.4f} "
          f"min {min(finals):.4f} max {max(finals):.4f}" + tail)


def summarise_file(path):
    """Groups the rows of an --append file by recipe and program (dptrain's --micro-batch,
    when given, names a program of its own: the PyTorch rows of the recipe stay in the
    group). A seed run twice counts once, with its last result."""
    groups = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            key = tuple(r[k] for k in RECIPE if k != "micro_batch")
            name = r["program"] + (f" (micro-batch {r['micro_batch']})"
                                   if r["micro_batch"] not in ("", "0") else "")
            groups.setdefault(key, {}).setdefault(name, {})[r["seed"]] = \
                float(r["final_accuracy"])
    for key, programs in groups.items():
        recipe = dict(zip((k for k in RECIPE if k != "micro_batch"), key))
        print(", ".join(f"{k} {v or '-'}" for k, v in recipe.items()))
        threshold = DEFAULTS.get(recipe["model"], {}).get("threshold")
        for name in sorted(programs):
            summary(f"  {name}", list(programs[name].values()), threshold)


def append_row(path, row):
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=list(SPECS), default="mlp")
    p.add_argument("--seeds", type=int, help="how many seeds (default 12 mlp, 5 cnn)")
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--epochs", type=int, help="default 3 (mlp), 10 (cnn)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--schedule", choices=("constant", "cosine"),
                   help="default constant (mlp), cosine (cnn); cosine: T_max = --epochs")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--micro-batch", type=int, default=0,
                   help="dptrain's --micro-batch (default 0: its own choice)")
    p.add_argument("--torch-threads", type=int, default=0,
                   help="PyTorch's thread count (default 0: all cores)")
    p.add_argument("--limit", type=int, help="train on the first N training samples only")
    p.add_argument("--threshold", type=float,
                   help="also count the seeds ending at this accuracy or more (default 0.86 "
                        "for mlp, none for cnn)")
    p.add_argument("--only", choices=("torch", "dptrain"))
    p.add_argument("--append", metavar="FILE", help="append a CSV row per finished run")
    p.add_argument("--summarise", metavar="FILE", help="summarise an --append file and exit")
    args = p.parse_args()
    if args.summarise:
        summarise_file(args.summarise)
        return 0
    for k, v in DEFAULTS[args.model].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.seeds < 1 or args.epochs < 1 or args.batch_size < 1 or args.micro_batch < 0 \
            or args.torch_threads < 0:
        p.error("--seeds, --epochs and --batch-size must be at least 1, --micro-batch and "
                "--torch-threads at least 0")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        p.error("--lr must be a positive number")
    if args.limit is not None and not 1 <= args.limit <= 60000:
        p.error("--limit must be between 1 and 60000")
    programs = ["dptrain", "pytorch"] if args.only is None else \
        ["pytorch" if args.only == "torch" else "dptrain"]
    torch = data = None
    if "pytorch" in programs:
        try:
            torch, data = torch_setup(args)
        except ImportError:
            print("PyTorch is not installed: apt-get install python3-torch (PyTorch skipped)")
            programs.remove("pytorch")
    print(f"model {args.model}, {args.epochs} epochs, lr {args.lr} {args.schedule}, batch "
          f"{args.batch_size}" + (f", first {args.limit} training samples" if args.limit else "")
          + f"; seeds {args.first_seed}..{args.first_seed + args.seeds - 1}", flush=True)
    results = {name: [] for name in programs}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name in programs:
            t0 = time.perf_counter()
            accs = (dptrain_run(args, seed) if name == "dptrain"
                    else torch_run(torch, data, args, seed))
            seconds = time.perf_counter() - t0
            results[name].append(accs[-1])
            print(f"seed {seed:>3} {name:>8}: " + " ".join(f"{a:.4f}" for a in accs) +
                  f"  ({seconds:.0f} s)", flush=True)
            if args.append:
                row = {k: getattr(args, k) for k in RECIPE}
                row.update(program=name, seed=seed, final_accuracy=f"{accs[-1]:.4f}",
                           accuracies=" ".join(f"{a:.4f}" for a in accs),
                           seconds=f"{seconds:.1f}", limit=args.limit or "",
                           micro_batch=args.micro_batch if name == "dptrain" else "")
                append_row(args.append, row)
    for name, finals in results.items():
        if finals:
            summary(name, finals, args.threshold)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
