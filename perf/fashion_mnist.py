"""Fashion-MNIST for the perf/ scripts that run PyTorch, as dptrain sees it: from Debian's
dataset-fashion-mnist package, pixels / 255 standardised with the training images' mean and
standard deviation (one scalar each, as dptrain fits them)."""
import gzip
import os

DATA = "/usr/share/datasets/fashion-mnist"


def _read(name, offset):
    import numpy as np

    with gzip.open(os.path.join(DATA, name)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load(with_test=False):
    """numpy arrays (x_train, y_train) or, with_test, (x_train, y_train, x_test, y_test):
    x float32 [n x 784] standardised, y int64."""
    import numpy as np

    xtr = _read("train-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float32) / 255
    mean, std = xtr.mean(), xtr.std()
    out = [(xtr - mean) / std, _read("train-labels-idx1-ubyte.gz", 8).astype(np.int64)]
    if with_test:
        xte = _read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float32) / 255
        out += [(xte - mean) / std, _read("t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)]
    return tuple(out)
