#!/usr/bin/env bash
# Quick start, command 1: set up, build, and run the main job: train the default MLP on
# Fashion-MNIST on all cores (3 epochs, batch 128, SGD momentum 0.9, lr 0.03) and write the
# run directory runs/fashion-mnist (config.txt, metrics.csv, checkpoints, metrics.png).
# Extra arguments go to `dptrain train` (e.g. --epochs 15 --lr-schedule cosine:T_max=15).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
rm -rf runs/fashion-mnist
exec build/dptrain train --data fashion-mnist --out runs/fashion-mnist --plot "$@"
