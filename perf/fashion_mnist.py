"""Fashion-MNIST for the perf/ scripts that run PyTorch, as dptrain sees it: from Debian's
dataset-fashion-mnist package, pixels / 255 standardised with the training images' mean and
standard deviation (one scalar each, as dptrain fits them). With a limit, only the first N
training samples are used (and fit the mean and standard deviation), and write_subset() writes
those same samples where dptrain reads them (`--data mnist:DIR`)."""
import gzip
import os

DATA = "/usr/share/datasets/fashion-mnist"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _read(name, offset):
    import numpy as np

    with gzip.open(os.path.join(DATA, name + ".gz")) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def _check_limit(limit):
    if limit is not None and not 1 <= limit <= 60000:
        raise ValueError(f"limit {limit}: Fashion-MNIST has 60000 training samples")


def load(with_test=False, limit=None, image=False):
    """numpy arrays (x_train, y_train) or, with_test, (x_train, y_train, x_test, y_test):
    x float32 standardised, [n x 784] or, image, [n x 1 x 28 x 28]; y int64. limit: only the
    first N training samples (the test split stays whole)."""
    import numpy as np

    _check_limit(limit)
    n = limit or 60000
    shape = (-1, 1, 28, 28) if image else (-1, 784)
    xtr = _read(FILES[0], 16)[:n * 784].reshape(shape).astype(np.float32) / 255
    mean, std = xtr.mean(), xtr.std()
    out = [(xtr - mean) / std, _read(FILES[1], 8)[:n].astype(np.int64)]
    if with_test:
        xte = _read(FILES[2], 16).reshape(shape).astype(np.float32) / 255
        out += [(xte - mean) / std, _read(FILES[3], 8).astype(np.int64)]
    return tuple(out)


def write_subset(directory, limit):
    """Makes DIR a `--data mnist:DIR` for dptrain holding the first `limit` training samples
    (raw IDX files with the original headers' dimensions) and the whole test split (links to
    the package's files). Returns the data spec."""
    import numpy as np

    _check_limit(limit)
    images, labels = _read(FILES[0], 16), _read(FILES[1], 8)
    for name, magic, dims, data in ((FILES[0], 0x0803, (limit, 28, 28), images[:limit * 784]),
                                    (FILES[1], 0x0801, (limit,), labels[:limit])):
        with open(os.path.join(directory, name), "wb") as f:
            f.write(np.array((magic,) + dims, ">u4").tobytes())
            f.write(data.tobytes())
    for name in FILES[2:]:
        os.symlink(os.path.join(DATA, name + ".gz"), os.path.join(directory, name + ".gz"))
    return "mnist:" + directory
