#!/usr/bin/python3
"""Side-by-side training throughput: dptrain vs PyTorch (Debian's python3-torch) on the same
model, data, optimizer and batch sizes, in one invocation on the same machine.

    perf/compare_pytorch.py [--model mlp|cnn|resnet20] [--batches 128,256,512] [--threads 1,2]
                            [--rounds 3] [--reps R] [--steps S] [--warmup W]

--model picks the network, its data and its optimizer (the same in both programs):
  mlp       784-256-128-10 (ReLU) on Fashion-MNIST, SGD momentum 0.9 (the default);
  cnn       conv:32:3,bn,relu,maxpool:2,conv:64:3,bn,relu,maxpool:2,dense:128,relu,dropout:0.3,
            dense:10 on Fashion-MNIST (1x28x28), SGD momentum 0.9;
  resnet20  dptrain's preset (He et al. 2016 CIFAR ResNet-20, zero-padding shortcuts, 269,722
            parameters) on random CIFAR-shaped images (dptrain --data synthetic:2048,3,32,32,10,
            PyTorch random tensors of that shape: speed does not depend on the values), SGD
            momentum 0.9 and weight decay 1e-4.
Fashion-MNIST comes from the dataset-fashion-mnist package, normalised with the training set's
mean/std. The PyTorch models (torch_model below) are built layer for layer like dptrain's and
initialised as dptrain does. Each figure is the median samples/s of --reps timed runs of
--steps steps after --warmup warm-up steps, as `dptrain bench` measures. Defaults: 5 x 100
steps after 20 for mlp, 3 x 20 steps after 5 for the image networks (a ResNet-20 step at batch
512 takes a second or more here).

PyTorch gets every thread setting a user would try, and its best one counts:
  intra-op   torch.set_num_threads(t) only. Debian's PyTorch does its GEMMs in the system BLAS
             (libblas.so.3, BLIS by default), which takes its thread count from the environment,
             so here the GEMMs stay on one thread;
  +blas      also OMP_NUM_THREADS=t and BLIS_NUM_THREADS=t, so the GEMMs use t threads too;
  +passive   that plus OMP_WAIT_POLICY=PASSIVE.
Its default thread count (torch.get_num_threads()) is measured as well. Both programs run with
glibc's malloc told to keep freed memory (GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4G,
trim_threshold=64G, see KEEP_HEAP): PyTorch allocates fresh tensors every step, and where glibc
hands them back to the kernel each time, every step pays for page faults again; on the AMD EPYC
VM of docs/performance.md that made PyTorch 3.4x slower on the small CNN (508 against 1,742
samples/s on one thread). dptrain allocates nothing inside a step, so the setting is neutral
for it. The whole set is
measured --rounds times, interleaved, every ratio is taken within one round, and the median
(and min-max) over rounds is reported, because a shared machine drifts by tens of percent from
minute to minute. Writes perf/compare_pytorch.csv for mlp and perf/compare_pytorch-MODEL.csv
(compare_pytorch-cnn.csv, compare_pytorch-resnet20.csv) for the others, same columns.
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
KEEP_HEAP = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=68719476736"
CNN_SPEC = ("conv:32:3,bn,relu,maxpool:2,conv:64:3,bn,relu,maxpool:2,dense:128,relu,"
            "dropout:0.3,dense:10")
RESNET20_PARAMS = 269722
# Per model: dptrain's --model (None: its default, the MLP), --data (None: fashion-mnist),
# --optimizer (None: its default, sgd:momentum=0.9), and the PyTorch SGD weight decay.
MODELS = {
    "mlp": dict(spec=None, data=None, optimizer=None, weight_decay=0.0),
    "cnn": dict(spec=CNN_SPEC, data=None, optimizer=None, weight_decay=0.0),
    "resnet20": dict(spec="resnet20", data="synthetic:2048,3,32,32,10",
                     optimizer="sgd:momentum=0.9,weight_decay=1e-4", weight_decay=1e-4),
}


def torch_model(torch, name):
    """The PyTorch twin of dptrain's model `name` (mlp, cnn, resnet20), initialised as dptrain
    initialises it. Layers written without init= (mlp, cnn) start from PyTorch's own defaults,
    which are dptrain's (init=torch: weights and biases U(+-1/sqrt(fan_in))); the resnet20
    preset spells out He-normal conv weights (fan_in), a Xavier-uniform dense layer and zero
    biases, set here. Batch norm: gamma 1, beta 0, eps 1e-5, momentum 0.1 in both."""
    nn = torch.nn
    if name == "mlp":
        net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                            nn.Linear(128, 10))
    elif name == "cnn":
        net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                            nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 128),
                            nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))
    elif name == "resnet20":
        net = _resnet_cifar(torch, 3)
        n = sum(p.numel() for p in net.parameters() if p.requires_grad)
        assert n == RESNET20_PARAMS, f"ResNet-20 has {n} parameters, dptrain's {RESNET20_PARAMS}"
    else:
        raise ValueError(f"unknown model {name!r}")
    if name != "resnet20":
        return net
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
        elif isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is not None:
            nn.init.zeros_(m.bias)
    return net


def _resnet_cifar(torch, n):
    """He et al. 2016's CIFAR ResNet-(6n+2) as dptrain's preset builds it: a stage that halves
    the size starts with a shortcut x[:, :, ::2, ::2] whose channels are zero-padded at the end
    (dptrain's zpad: input channel c stays channel c)."""
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.stride, self.pad = stride, cout - cin

        def forward(self, x):
            out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            sc = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
            if self.pad:
                sc = F.pad(sc, (0, 0, 0, 0, 0, self.pad))
            return F.relu(out + sc)

    layers = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for stage in range(3):
        for k in range(n):
            cout = 16 << stage
            layers.append(Block(cin, cout, 2 if stage > 0 and k == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def torch_worker(args):
    """Measures PyTorch in this process (thread settings must precede the first op)."""
    import torch

    torch.set_num_threads(args.worker_threads)
    torch.manual_seed(1)
    if args.model == "resnet20":
        x = torch.randn(2048, 3, 32, 32)
        y = torch.randint(0, 10, (2048,))
    else:
        x, y = (torch.from_numpy(a) for a in fashion_mnist.load(image=args.model == "cnn"))
    if args.model == "mlp":  # today's MLP figures: PyTorch's own initialisation
        model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                    torch.nn.Linear(256, 128), torch.nn.ReLU(),
                                    torch.nn.Linear(128, 10))
    else:
        model = torch_model(torch, args.model)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9,
                          weight_decay=MODELS[args.model]["weight_decay"])
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

    steps(args.warmup)
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
    env["GLIBC_TUNABLES"] = KEEP_HEAP
    if setting != "intra-op":
        env["OMP_NUM_THREADS"] = env["BLIS_NUM_THREADS"] = str(threads)
    if setting == "+passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run([sys.executable, __file__, "--model", args.model,
                          "--worker-threads", str(threads), "--worker-batch", str(batch),
                          "--reps", str(args.reps), "--steps", str(args.steps),
                          "--warmup", str(args.warmup)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def dptrain_rates(batch, threads, args):
    """samples/s per thread count from `dptrain bench --modes strong`."""
    out_dir = os.path.join(ROOT, "perf", "out-compare")
    cmd = [os.path.join(ROOT, "build", "dptrain"), "bench", "--modes", "strong",
           "--threads", ",".join(map(str, threads)), "--batch", str(batch),
           "--reps", str(args.reps), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--out", out_dir]
    m = MODELS[args.model]
    for flag in ("data", "spec", "optimizer"):
        if m[flag]:
            cmd += ["--model" if flag == "spec" else "--" + flag, m[flag]]
    subprocess.run(cmd, check=True, capture_output=True,
                   env=dict(os.environ, GLIBC_TUNABLES=KEEP_HEAP))
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
    p.add_argument("--model", choices=list(MODELS), default="mlp")
    p.add_argument("--batches", default="128,256,512")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--reps", type=int, help="default 5 (mlp), 3 (image networks)")
    p.add_argument("--steps", type=int, help="default 100 (mlp), 20 (image networks)")
    p.add_argument("--warmup", type=int, help="default 20 (mlp), 5 (image networks)")
    p.add_argument("--worker-threads", type=int)
    p.add_argument("--worker-batch", type=int)
    args = p.parse_args()
    for name, mlp, image in (("reps", 5, 3), ("steps", 100, 20), ("warmup", 20, 5)):
        if getattr(args, name) is None:
            setattr(args, name, mlp if args.model == "mlp" else image)
    if args.worker_threads:
        return torch_worker(args)
    if args.rounds < 1 or args.reps < 1 or args.steps < 1 or args.warmup < 0:
        p.error("--rounds, --reps and --steps must be at least 1, --warmup at least 0")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: apt-get install python3-torch (comparison skipped)")
        return 0
    import torch
    default_threads = torch.get_num_threads()
    threads = [int(t) for t in args.threads.split(",")]
    if args.model == "resnet20" and max(map(int, args.batches.split(","))) > 2048:
        p.error("--model resnet20 trains on 2048 synthetic images: batches up to 2048")
    rows = []
    print(f"model {args.model}; PyTorch {torch.__version__}, default threads {default_threads}; "
          f"{args.rounds} interleaved rounds, each rate the median of {args.reps} x "
          f"{args.steps} steps after {args.warmup}")
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
    name = "compare_pytorch" + ("" if args.model == "mlp" else "-" + args.model) + ".csv"
    with open(os.path.join(ROOT, "perf", name), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print("wrote perf/" + name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
