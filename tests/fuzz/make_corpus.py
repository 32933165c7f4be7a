#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/: small valid (and a few nearly
valid) inputs in each target's input layout (see the comment at the top of each fuzz_*.c).
Deterministic; rerun after changing a layout:  python3 tests/fuzz/make_corpus.py"""
import gzip
import hashlib
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# ---- idx: mode byte, u16 split, payload -------------------------------------------------
def idx_images(n, h, w):
    hdr = bytes([0, 0, 8, 3]) + struct.pack(">III", n, h, w)
    return hdr + bytes((i * 37) & 0xFF for i in range(n * h * w))


def idx_labels(n, classes):
    return bytes([0, 0, 8, 1]) + struct.pack(">I", n) + bytes(i % classes for i in range(n))


def idx_seed(mode, img, lbl):
    return bytes([mode]) + struct.pack("<H", len(img)) + img + lbl


img, lbl = idx_images(4, 3, 3), idx_labels(4, 3)
put("idx", "raw_pair", idx_seed(0, img, lbl))
put("idx", "harness_gzip_both", idx_seed(6, img, lbl))
put("idx", "harness_gzip_images", idx_seed(2, img, lbl))
put("idx", "own_gzip_pair", idx_seed(0, gz(img), gz(lbl)))
put("idx", "mnist_shape", idx_seed(0, idx_images(2, 28, 28), idx_labels(2, 10)))
put("idx", "same_file", bytes([1, 0, 0]) + img)
put("idx", "labels_too_few", idx_seed(0, img, idx_labels(3, 3)))

# ---- cifar: which-file byte, then that file ------------------------------------------------
def cifar_record(label, salt):
    return bytes([label]) + bytes(((i * 13) + salt) & 0xFF for i in range(3072))


put("cifar", "batch1_one_record", bytes([0]) + cifar_record(3, 1))
put("cifar", "test_one_record", bytes([5]) + cifar_record(9, 2))
put("cifar", "batch3_two_records", bytes([2]) + cifar_record(0, 3) + cifar_record(7, 4))
put("cifar", "batch2_short", bytes([1]) + cifar_record(1, 5)[:1000])

# ---- csv: option byte, then the table ------------------------------------------------------
put("csv", "header_comma", bytes([1]) + b"a,b,c,label\n0.5,1,-2,0\n1e-3,2.5,3,1\n4,5,6,2\n")
put("csv", "no_header", bytes([0]) + b"1,2,0\n3,4,1\n5,6,1\n")
put("csv", "semicolon_label0", bytes([0b01011]) + b"x;y;z\n1;0.5;0.25\n0;1.5;2\n")
put("csv", "tab_quoted", bytes([0b101]) + b'"a"\t"b"\t"l"\n"1.5"\t2\t0\n3\t"4"\t1\n')
put("csv", "space_label1", bytes([0b10110]) + b"1 2 3\n4 5 6\n")
put("csv", "crlf", bytes([1]) + b"f1,f2,y\r\n0,1,1\r\n1,0,0\r\n")

# ---- checkpoint: mode byte (1 = harness appends the SHA-256), then the file ----------------
def checkpoint(sections, with_hash=True):
    table = b""
    # offsets depend on the table size: header 16 + entries
    tsize = 16 + sum(2 + len(n) + 16 for n, _ in sections)
    pos = tsize
    layout = []
    for name, data in sections:
        pos = (pos + 63) // 64 * 64
        layout.append((name, pos, len(data)))
        pos += len(data)
    for name, off, size in layout:
        table += struct.pack("<H", len(name)) + name + struct.pack("<QQ", off, size)
    body = b"DPTCKPT\0" + struct.pack("<II", 1, len(sections)) + table
    for (name, off, size), (_, data) in zip(layout, sections):
        body += b"\0" * (off - len(body)) + data
    return body + (hashlib.sha256(body).digest() if with_hash else b"")


secs = [(b"config", b"model=dense:4,relu,dense:2\nlr=0.1\n"),
        (b"params", struct.pack("<8f", *[0.5 * i for i in range(8)])),
        (b"state", bytes(range(40)))]
put("checkpoint", "three_sections", bytes([0]) + checkpoint(secs))
put("checkpoint", "three_sections_harness_hash", bytes([1]) + checkpoint(secs, False))
put("checkpoint", "empty", bytes([0]) + checkpoint([]))
put("checkpoint", "empty_section", bytes([1]) + checkpoint([(b"x", b"")], False))
put("checkpoint", "bad_hash", bytes([0]) + checkpoint(secs)[:-1] + b"\0")

# ---- specs: 4 number bytes, then model \n optimizer \n schedule \n warmup \n small flag ------
specs = [
    "dense:16,relu,dense:3\nsgd:momentum=0.9,nesterov=1\nstep:step_size=2,gamma=0.5\n"
    "linear:steps=5,start_factor=0.1",
    "dense:8:he,tanh,dropout:0.2,dense:4,gelu,dense:3\nsgd\ncosine:T_max=3,eta_min=0.001\n"
    "constant:steps=2,factor=0.5",
    "dense:3\nsgd:weight_decay=0.0001,dampening=0.1\nmultistep:milestones=1/3/5,gamma=0.3\n",
    "sigmoid,dense:3\nsgd:momentum=0\nonecycle:max_lr=0.5,pct_start=0.25,three_phase=1\n",
    "dense:5,relu,dense:3\nsgd\ncyclic:max_lr=1,step_size_up=3,mode=exp_range,gamma=0.9\n",
    "dense:3\nsgd\nexponential:gamma=0.9,unit=step+plateau:patience=1,factor=0.5\n",
    "dense:3\nsgd\ncosine-restarts:T_0=2,T_mult=2\n",
    "dense:3\nsgd\npolynomial:total_iters=4,power=2\nlinear:steps=3",
    "dense:3\nsgd\nlinear:start_factor=0.5,end_factor=1,total_iters=3\n",
    "dense:3\nsgd\nplateau:monitor=val_accuracy,patience=0,cooldown=1,min_lr=0.001\n",
    "dense:3\nsgd:weight_decay=0.1\nconstant\n\nbias+bn",
    "dense:3\nadam\nconstant\n\nmonitor=val_accuracy,mode=max,patience=2,min_delta=0.01",
    "dense:3\nsgd\nconstant\n\non:factor=0.25,retries=2,spike=4",
    "dense:3\nsgd\nconstant\n\nsqrt:ref_batch=512",
    "dense:3\nsgd\nconstant\n\noff",
]
for i, s in enumerate(specs):
    put("specs", "spec%02d" % i, bytes([7, 1, 9, 4]) + s.encode())
# image models: first byte >= 128 (3 channels, side 1 + (b / 4) % 16 = 8 for b = 158)
image_specs = [
    "conv:4:3,bn,relu,maxpool:2,dense:3\nsgd\n",
    "conv:4:3:stride=2:bias=0,bn,relu,res(conv:4:3,bn,relu,conv:4:3,bn),relu,gap,dense:3\nadam\n",
    "conv:2:1,res(conv:4:3:stride=2,relu|zpad:4:stride=2),avgpool:2:pad=1,flatten,dense:3\nsgd\n",
    "conv:6:3:groups=3,res(conv:6:1:pad=0|conv:6:1:pad=0,bn),gelu,dense:3\nsgd\n",
    "lenet5\nsgd\n",
]
for i, s in enumerate(image_specs):
    put("specs", "image%02d" % i, bytes([158, 1, 9, 4]) + s.encode())
# --augment and --tta (the fifth string) on an image input (3 x 8 x 8; 1 x 8 x 8 for b = 156)
augment_specs = [
    "crop:pad=2+hflip+rotate:degrees=10",
    "crop:pad=3,mode=reflect+vflip:p=0.3+translate:pixels=1.5,fill=0.5+scale:min=0.8,max=1.2",
    "affine:degrees=15,translate=2,scale_min=0.9,scale_max=1.1,shear=10+brightness:0.2+"
    "contrast:0.3+saturation:0.4",
    "noise:std=0.05+erase:p=1,area=0.1/0.3,ratio=0.5/2,value=0.5+mixup:alpha=0.4",
    "hflip:p=1+cutmix:alpha=1,p=0.5",
    "hflip+crop:pad=1",
]
for i, s in enumerate(augment_specs):
    put("specs", "augment%02d" % i, bytes([158, 1, 9, 4]) + ("dense:3\nsgd\n\n\n" + s).encode())
put("specs", "augment_grey", bytes([156, 1, 9, 4]) + b"dense:3\nsgd\n\n\nsaturation:0.2")

# ---- metrics: resume-epoch byte, then the CSV ----------------------------------------------
m = (b"epoch,lr,train_loss,val_loss,train_accuracy,val_accuracy,note\n"
     b"1,0.001,2.1000000000000001,2,0.31,0.34999999999999998,warmup\n"
     b"2,0.01,1.2,,0.62,,\"a, b\"\n")
put("metrics", "example_resume1", bytes([1]) + m)
put("metrics", "example_no_resume", bytes([255]) + m)
put("metrics", "torn_last_line", bytes([5]) + m + b"3,0.01,1.1")
put("metrics", "header_only", bytes([0]) + b"epoch,lr\n")
