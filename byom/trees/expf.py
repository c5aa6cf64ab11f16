"""glibc's `expf` in numpy, bit for bit, and the float32 transforms XGBoost builds on it.

XGBoost's sigmoid is `1.0f / (1.0f + expf(-x))` and its exp objectives call `expf`, from the C
library it is linked against (glibc on Linux). numpy's float32 `exp` is a different
approximation (1 ulp apart on a fifth of the values), and rounding float64 `exp` to float32
differs from glibc where glibc is not correctly rounded; so this module runs glibc's own
algorithm (ARM's optimized-routines `expf`: a 32-entry table of 2^(i/32) and a cubic, in
double), with its special cases, on whole arrays.
"""

from __future__ import annotations

import numpy as np

_N = 32
#: Bits of 2^(i/32), minus i << 47, so adding k << 47 scales by 2^(k/32).
_TAB = np.array(
    [
        0x3FF0000000000000, 0x3FEFD9B0D3158574, 0x3FEFB5586CF9890F, 0x3FEF9301D0125B51,
        0x3FEF72B83C7D517B, 0x3FEF54873168B9AA, 0x3FEF387A6E756238, 0x3FEF1E9DF51FDEE1,
        0x3FEF06FE0A31B715, 0x3FEEF1A7373AA9CB, 0x3FEEDEA64C123422, 0x3FEECE086061892D,
        0x3FEEBFDAD5362A27, 0x3FEEB42B569D4F82, 0x3FEEAB07DD485429, 0x3FEEA47EB03A5585,
        0x3FEEA09E667F3BCD, 0x3FEE9F75E8EC5F74, 0x3FEEA11473EB0187, 0x3FEEA589994CCE13,
        0x3FEEACE5422AA0DB, 0x3FEEB737B0CDC5E5, 0x3FEEC49182A3F090, 0x3FEED503B23E255D,
        0x3FEEE89F995AD3AD, 0x3FEEFF76F2FB5E47, 0x3FEF199BDD85529C, 0x3FEF3720DCEF9069,
        0x3FEF5818DCFBA487, 0x3FEF7C97337B9B5F, 0x3FEFA4AFA2A490DA, 0x3FEFD0765B6E4540,
    ],
    dtype=np.uint64,
)  # fmt: skip
_INVLN2N = float.fromhex("0x1.71547652b82fep+0") * _N
#: _INVLN2N in two parts, the first of 28 significant bits so that its product with a float32
#: is exact: glibc's FMA build computes r = z - kd from the unrounded z = _INVLN2N * x.
_INVLN2N_HI = float(
    (np.array([_INVLN2N]).view(np.uint64) & ~np.uint64(2**25 - 1)).view(np.float64)[0]
)
_INVLN2N_LO = _INVLN2N - _INVLN2N_HI
_SHIFT = float.fromhex("0x1.8p+52")
_C0 = float.fromhex("0x1.c6af84b912394p-5") / _N / _N / _N
_C1 = float.fromhex("0x1.ebfce50fac4f3p-3") / _N / _N
_C2 = float.fromhex("0x1.62e42ff0c52d6p-1") / _N
#: Above it expf overflows to inf, below the other bound it underflows to 0.
_OVERFLOW = np.float32(float.fromhex("0x1.62e42ep6"))
_UNDERFLOW = np.float32(-float.fromhex("0x1.9fe368p6"))


def expf(x: np.ndarray) -> np.ndarray:
    """glibc's expf of a float32 array, as float32."""
    x = np.asarray(x, dtype=np.float32)
    xd = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        z = _INVLN2N * xd
        kd = z + _SHIFT
        ki = np.nan_to_num(kd).view(np.uint64)
        kd = kd - _SHIFT
        r = (_INVLN2N_HI * xd - kd) + _INVLN2N_LO * xd
        t = _TAB[(ki % _N).astype(np.intp)] + (ki << np.uint64(47))
        s = t.view(np.float64)
        y = (_C2 * r + 1.0) + (_C0 * r + _C1) * (r * r)
        out = (y * s).astype(np.float32)
    out = np.where(x > _OVERFLOW, np.float32(np.inf), out)
    out = np.where(x < _UNDERFLOW, np.float32(0.0), out)
    return np.where(np.isnan(x), x, out)


def sigmoid(margin: np.ndarray) -> np.ndarray:
    """XGBoost's `1.0f / (1.0f + expf(-x))`, in float32."""
    m = np.asarray(margin, dtype=np.float32)
    one = np.float32(1.0)
    return one / (one + expf(-m))


def softmax(margins: np.ndarray) -> np.ndarray:
    """XGBoost's softmax of each row: float32 exps of x - max, summed in double in class
    order, each divided by the sum rounded to float32."""
    m = np.asarray(margins, dtype=np.float32)
    e = expf(m - m.max(axis=1, keepdims=True))
    total = np.zeros(len(m), dtype=np.float64)
    for j in range(m.shape[1]):  # class order, as XGBoost adds
        total += e[:, j]
    return e / total.astype(np.float32)[:, None]
