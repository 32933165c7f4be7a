#!/usr/bin/env python3
"""The learning-rate study of docs/lr-study.md, run with `dptrain sweep` only.

Usage: perf/lr_study.py [OUT_DIR] [--parts 1,2,3,4,5,6] [--epochs N] [--cnn-epochs N]

Parts (each a sweep directory under OUT_DIR; a rerun continues, finished trials are kept):
  1  MLP, SGD+momentum, constant LR from 1e-4 to 3 (log grid), 3 seeds
  2  MLP, 9 schedules x 3 optimizers, each at its best rate of a 3-rate grid (seed 1), then
     that rate with 3 seeds
  3  MLP, large batches 128 -> 4096 with linear / sqrt scaling, with and without a one-epoch
     warmup; LARS and LAMB at 4096
  4  lr-find's suggestions against part 1's best rate
  5  part 1's grid with successive halving: the compute it saves and whether it keeps the winner
  6  the small CNN on a 10% subset of Fashion-MNIST: constant LR grid, 3 seeds
  7  the small CNN: parts 2 (5 schedules x 3 optimizers), 4 and 5 on the same subset
Writes OUT_DIR/report.md (the tables of docs/lr-study.md) and copies the sweep plots next to it.
Needs build/dptrain (scripts/setup.sh) and Debian's dataset-fashion-mnist.
"""
import argparse
import csv
import gzip
import math
import os
import shutil
import statistics
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "dptrain")
FMNIST = "/usr/share/datasets/fashion-mnist"
SEEDS = "1,2,3"
# The study's models with the initialisation it was measured with (He-normal convolutions,
# Xavier dense layers: the defaults before 2026-12-07, docs/models.md "Initialisation").
MLP = "dense:256:xavier,relu,dense:128:xavier,relu,dense:10:xavier"
SMALL_CNN = ("conv:32:3:init=he,bn,relu,maxpool:2,conv:64:3:init=he,bn,relu,maxpool:2,"
             "dense:128:xavier,relu,dense:10:xavier")


def with_model(args):
    """args, with the study's MLP unless they name a model."""
    return list(args) if "--model" in args else list(args) + ["--model", MLP]

# Part 2: schedules for E epochs (steps_per_epoch is filled in for onecycle by dptrain itself).
def schedules(e):
    half = max(1, e // 2)
    return [
        ("constant", "constant", "none"),
        ("step", "step:step_size=%d,gamma=0.3" % half, "none"),
        ("multistep", "multistep:milestones=%d/%d,gamma=0.3" % (half, max(half + 1, e - 1)), "none"),
        ("exponential", "exponential:gamma=0.7", "none"),
        ("cosine", "cosine:T_max=%d" % e, "none"),
        ("cosine-restarts", "cosine-restarts:T_0=2,T_mult=2", "none"),
        ("onecycle", "onecycle", "none"),
        ("warmup+cosine", "cosine:T_max=%d" % e, "linear:steps=422"),
        ("plateau", "plateau:patience=1,factor=0.3", "none"),
    ]

OPTIMIZERS = [
    ("sgd+momentum", "sgd:momentum=0.9", ["0.01", "0.03", "0.1"]),
    ("adam", "adam", ["0.0003", "0.001", "0.003"]),
    ("adamw", "adamw:weight_decay=0.01", ["0.0003", "0.001", "0.003"]),
]


def sweep(out, grid, flags, seeds=SEEDS, extra=()):
    """Runs (or continues) one sweep; returns its trials.csv rows."""
    cmd = [BIN, "sweep", "--out", out, "--grid", grid, "--seeds", seeds, "--parallel", "2",
           "--threads", "2", "--data", "fashion-mnist"] + with_model(list(flags) + list(extra))
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    with open(out + ".txt", "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    if rc != 0:
        sys.exit("sweep failed (%d): see %s.txt" % (rc, out))
    with open(os.path.join(out, "trials.csv")) as f:
        return list(csv.DictReader(f))


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def by_config(rows, key):
    """{value of key: [final val_accuracy of each finished seed]}, and statuses."""
    out, status = {}, {}
    for r in rows:
        k = r[key] if key else "all"
        status.setdefault(k, []).append(r["status"])
        if r["status"] in ("done", "stopped early"):
            out.setdefault(k, []).append(num(r["final_val_accuracy"]))
    return out, status


def mean_std(v):
    if not v:
        return "—"
    m = statistics.mean(v)
    s = statistics.stdev(v) if len(v) > 1 else 0.0
    return "%.4f ± %.4f" % (m, s)


def best_epochs_note(rows):
    return sum(int(r["epochs"]) for r in rows)


def part1(out, epochs):
    grid = "lr=0.0001/0.0003/0.001/0.003/0.01/0.03/0.1/0.3/1/3"
    rows = sweep(os.path.join(out, "p1-fixed"), grid,
                 ["--val-split", "0.1", "--epochs", str(epochs), "--optimizer", "sgd:momentum=0.9"])
    acc, status = by_config(rows, "lr")
    lines = ["| lr | final val accuracy (mean ± std, 3 seeds) | train loss (last epoch, mean) | trials |",
             "|---|---|---|---|"]
    best = None
    for lr in grid[3:].split("/"):
        tl = []
        for r in rows:
            if r["lr"] == lr and r["status"] in ("done", "stopped early"):
                with open(os.path.join(r["dir"], "metrics.csv")) as f:
                    m = list(csv.DictReader(f))
                tl.append(num(m[-1]["train_loss"]))
        st = status.get(lr, [])
        lines.append("| %s | %s | %s | %s |" % (
            lr, mean_std(acc.get(lr, [])), "%.4f" % statistics.mean(tl) if tl else "—",
            ", ".join(sorted(set(st)))))
        if acc.get(lr) and len(acc[lr]) == 3 and (best is None or statistics.mean(acc[lr]) > best[1]):
            best = (lr, statistics.mean(acc[lr]))
    return "\n".join(lines), best, rows


def part2(out, epochs, prefix="p2", data=("--val-split", "0.1"), only=None, optimizers=None):
    lines = ["| schedule | optimizer | best lr (of 3, seed 1) | final val accuracy (3 seeds) |",
             "|---|---|---|---|"]
    results = []
    for oname, ospec, rates in optimizers or OPTIMIZERS:
        for sname, sspec, wspec in schedules(epochs):
            if only and sname not in only:
                continue
            tag = "%s-%s" % (oname.replace("+", ""), sname.replace("+", "-"))
            grid = "lr=%s;lr-schedule={%s};warmup={%s}" % ("/".join(rates), sspec, wspec)
            rows = sweep(os.path.join(out, prefix + "a-" + tag), grid,
                         list(data) + ["--epochs", str(epochs), "--optimizer", ospec],
                         seeds="1")
            acc, _ = by_config(rows, "lr")
            scored = [(statistics.mean(v), lr) for lr, v in acc.items() if v]
            if not scored:
                lines.append("| %s | %s | all diverged | — |" % (sname, oname))
                continue
            best_lr = max(scored)[1]
            grid = "lr=%s;lr-schedule={%s};warmup={%s}" % (best_lr, sspec, wspec)
            rows = sweep(os.path.join(out, prefix + "b-" + tag), grid,
                         list(data) + ["--epochs", str(epochs), "--optimizer", ospec])
            acc, _ = by_config(rows, None)
            v = acc.get("all", [])
            results.append((statistics.mean(v) if v else float("nan"), sname, oname, best_lr, v))
            lines.append("| %s | %s | %s | %s |" % (sname, oname, best_lr, mean_std(v)))
    return "\n".join(lines), sorted(results, reverse=True)


def part3(out, epochs):
    lines = ["| batch | lr scaling (ref 128, base 0.05) | warmup | final val accuracy (3 seeds) |",
             "|---|---|---|---|"]
    train = 54000
    rows = sweep(os.path.join(out, "p3-b128"), "lr=0.05",
                 ["--val-split", "0.1", "--epochs", str(epochs), "--batch-size", "128"])
    acc, _ = by_config(rows, None)
    lines.append("| 128 | none (lr 0.05) | none | %s |" % mean_std(acc.get("all", [])))
    for b in (512, 2048, 4096):
        steps = max(1, train // b)
        grid = "lr-scaling=none/linear:ref_batch=128/sqrt:ref_batch=128;warmup=none/{linear:steps=%d}" % steps
        rows = sweep(os.path.join(out, "p3-b%d" % b), grid,
                     ["--val-split", "0.1", "--epochs", str(epochs), "--batch-size", str(b),
                      "--lr", "0.05"])
        for rule in ("none", "linear:ref_batch=128", "sqrt:ref_batch=128"):
            for w in ("none", "linear:steps=%d" % steps):
                v = [num(r["final_val_accuracy"]) for r in rows
                     if r["lr-scaling"] == rule and r["warmup"] == w and r["status"] in ("done", "stopped early")]
                st = sorted(set(r["status"] for r in rows if r["lr-scaling"] == rule and r["warmup"] == w))
                lines.append("| %d | %s | %s | %s%s |" % (b, rule, "1 epoch" if w != "none" else "none",
                                                          mean_std(v), "" if st == ["done"] else " (" + ", ".join(st) + ")"))
    steps = train // 4096
    for name, spec, rates in (("lars", "lars:momentum=0.9", "0.5/1.6/5"),
                              ("lamb", "lamb", "0.002/0.006/0.02")):
        rows = sweep(os.path.join(out, "p3-%s-rates" % name), "lr=" + rates,
                     ["--val-split", "0.1", "--epochs", str(epochs), "--batch-size", "4096",
                      "--optimizer", spec, "--warmup", "linear:steps=%d" % steps], seeds="1")
        acc, _ = by_config(rows, "lr")
        scored = [(statistics.mean(v), lr) for lr, v in acc.items() if v]
        if not scored:
            lines.append("| 4096 | %s (all rates diverged) | 1 epoch | — |" % name)
            continue
        best_lr = max(scored)[1]
        rows = sweep(os.path.join(out, "p3-%s" % name), "lr=" + best_lr,
                     ["--val-split", "0.1", "--epochs", str(epochs), "--batch-size", "4096",
                      "--optimizer", spec, "--warmup", "linear:steps=%d" % steps])
        acc, _ = by_config(rows, None)
        lines.append("| 4096 | %s, lr %s (best of %s) | 1 epoch | %s |" % (name, best_lr, rates, mean_std(acc.get("all", []))))
    return "\n".join(lines)


def part4(out, name="p4-lr-find.csv", extra=()):
    csv_path = os.path.join(out, name)
    cmd = [BIN, "lr-find", "--data", "fashion-mnist", "--optimizer", "sgd:momentum=0.9",
           "--threads", "2", "--out", csv_path] + with_model(extra)
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True)
    return (res.stdout + res.stderr).strip()


def part5(out, epochs, p1_rows, p1_best):
    grid = "lr=0.0001/0.0003/0.001/0.003/0.01/0.03/0.1/0.3/1/3"
    rows = sweep(os.path.join(out, "p5-halving"), grid,
                 ["--val-split", "0.1", "--epochs", str(epochs), "--optimizer", "sgd:momentum=0.9"],
                 extra=["--halving", "eta=3,min_epochs=1"])
    full = best_epochs_note(p1_rows)
    spent = best_epochs_note(rows)
    acc, _ = by_config(rows, "lr")
    finished = [(statistics.mean(v), lr) for lr, v in acc.items() if v]
    winner = max(finished)[1] if finished else "none"
    return full, spent, winner, p1_best


def subset_10pct(out):
    """A 10% subset of Fashion-MNIST's training set (the first 6000 images) beside its test set,
    as an mnist:DIR directory of IDX files."""
    d = os.path.join(out, "fmnist-10pct")
    os.makedirs(d, exist_ok=True)
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    for n in names:
        dst = os.path.join(d, n)
        if os.path.exists(dst):
            continue
        with gzip.open(os.path.join(FMNIST, n)) as f:
            data = f.read()
        if n.startswith("train"):
            magic, count = struct.unpack(">II", data[:8])
            header = 16 if "images" in n else 8
            item = 784 if "images" in n else 1
            data = data[:4] + struct.pack(">I", 6000) + data[8:header] + data[header:header + 6000 * item]
        with gzip.open(dst, "wb") as f:
            f.write(data)
    return d


def part6(out, epochs):
    d = subset_10pct(out)
    grid = "lr=0.003/0.01/0.03/0.1/0.3/1"
    cmd_flags = ["--epochs", str(epochs), "--model", SMALL_CNN, "--optimizer", "sgd:momentum=0.9"]
    rows = sweep(os.path.join(out, "p6-cnn"), grid, cmd_flags + ["--data", "mnist:" + d])
    acc, status = by_config(rows, "lr")
    lines = ["| lr | final test accuracy (mean ± std, 3 seeds) | trials |", "|---|---|---|"]
    for lr in grid[3:].split("/"):
        lines.append("| %s | %s | %s |" % (lr, mean_std(acc.get(lr, [])), ", ".join(sorted(set(status.get(lr, []))))))
    return "\n".join(lines)


CNN_OPTIMIZERS = [
    ("sgd+momentum", "sgd:momentum=0.9", ["0.003", "0.01", "0.03"]),
    ("adam", "adam", ["0.0003", "0.001", "0.003"]),
    ("adamw", "adamw:weight_decay=0.01", ["0.0003", "0.001", "0.003"]),
]


def cnn_parts(out, epochs):
    """Parts 2, 4 and 5 for the small CNN on the 10% subset."""
    d = subset_10pct(out)
    data = ("--data", "mnist:" + d, "--model", SMALL_CNN)
    table, ranked = part2(out, epochs, prefix="p7", data=data,
                          only=("constant", "multistep", "cosine", "onecycle", "plateau"),
                          optimizers=CNN_OPTIMIZERS)
    text = ["## 7. Schedules x optimizers (small CNN, 10% subset)", "", table, "",
            "ranked by the mean:", ""]
    text += ["- %.4f %s + %s at lr %s" % (m, sn, o, lr) for m, sn, o, lr, v in ranked]
    text += ["", "## 8. lr-find (small CNN, 10% subset, SGD+momentum 0.9)", "", "```",
             part4(out, "p8-lr-find-cnn.csv", ["--data", "mnist:" + d, "--model", SMALL_CNN]),
             "```", ""]
    grid = "lr=0.003/0.01/0.03/0.1/0.3/1"
    rows = sweep(os.path.join(out, "p9-cnn-halving"), grid,
                 ["--epochs", str(epochs), "--model", SMALL_CNN, "--optimizer", "sgd:momentum=0.9",
                  "--data", "mnist:" + d], extra=["--halving", "eta=3,min_epochs=1"])
    with open(os.path.join(out, "p6-cnn", "trials.csv")) as f:
        full_rows = list(csv.DictReader(f))
    acc, _ = by_config(rows, "lr")
    finished = [(statistics.mean(v), lr) for lr, v in acc.items() if v]
    facc, _ = by_config(full_rows, "lr")
    fbest = max((statistics.mean(v), lr) for lr, v in facc.items() if v)
    text += ["## 9. Successive halving on part 6's grid (small CNN)", "",
             "epochs trained: full grid %d, halving %d (%.0f%% saved); winner with halving: lr %s;"
             " full grid's best: lr %s" % (best_epochs_note(full_rows), best_epochs_note(rows),
                                          100.0 * (1 - best_epochs_note(rows) / best_epochs_note(full_rows)),
                                          max(finished)[1] if finished else "none", fbest[1]), ""]
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default=os.path.join(ROOT, "perf", "out", "lr-study"))
    ap.add_argument("--parts", default="1,2,3,4,5,6,7")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--cnn-epochs", type=int, default=5)
    a = ap.parse_args()
    parts = set(int(p) for p in a.parts.split(","))
    os.makedirs(a.out, exist_ok=True)
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    report = ["# LR study results", "", "CPU: %s, %d cores; epochs %d (MLP), %d (CNN)" % (
        cpu, os.cpu_count(), a.epochs, a.cnn_epochs), ""]
    p1_rows, p1_best = [], None
    if 1 in parts or 5 in parts:
        table, p1_best, p1_rows = part1(a.out, a.epochs)
        report += ["## 1. Fixed learning rate (MLP, SGD+momentum 0.9, batch 128)", "", table, "",
                   "best: lr %s (mean %.4f)" % p1_best if p1_best else "best: none", ""]
    if 2 in parts:
        table, ranked = part2(a.out, a.epochs)
        report += ["## 2. Schedules x optimizers (MLP)", "", table, "", "ranked by the mean:", ""]
        for m, s, o, lr, v in ranked:
            report.append("- %.4f %s + %s at lr %s" % (m, s, o, lr))
        report.append("")
    if 3 in parts:
        report += ["## 3. Large batches (MLP)", "", part3(a.out, a.epochs), ""]
    if 4 in parts:
        report += ["## 4. lr-find (MLP, SGD+momentum 0.9, batch 128)", "", "```", part4(a.out), "```", ""]
    if 5 in parts:
        full, spent, winner, best = part5(a.out, a.epochs, p1_rows, p1_best)
        report += ["## 5. Successive halving on part 1's grid", "",
                   "epochs trained: full grid %d (10 rates x 3 seeds x %d), halving %d (%.0f%% saved);"
                   " winner with halving: lr %s; full grid's best: lr %s" % (
                       full, a.epochs, spent, 100.0 * (1 - spent / full) if full else 0, winner,
                       best[0] if best else "none"), ""]
    if 6 in parts:
        report += ["## 6. Small CNN, 10% of Fashion-MNIST (6000 images), SGD+momentum 0.9", "",
                   part6(a.out, a.cnn_epochs), ""]
    if 7 in parts:
        report += cnn_parts(a.out, a.cnn_epochs)
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write("\n".join(report) + "\n")
    print("\n".join(report))


if __name__ == "__main__":
    main()
