"""Runs inside bench/.lleaves-venv (lleaves pins an llvmlite older than byom's): compiles a
LightGBM text model with lleaves, then times one-thread passes over a saved matrix on command.

    python lleaves_worker.py MODEL.txt X.npy CACHE.o

Prints one JSON line after compiling ({"compile_s", "cached"}), then reads stdin: each line
"run" times one `predict(X, n_jobs=1)` and prints {"s": seconds, "sum": sum of predictions};
end of input ends it. Kept to the standard library and numpy: it runs in its own venv.
"""

import json
import os
import sys
import time

import lleaves
import numpy as np


def main() -> None:
    model_file, data, cache = sys.argv[1:4]
    X = np.ascontiguousarray(np.load(data), dtype=np.float64)
    cached = os.path.exists(cache)
    started = time.perf_counter()
    model = lleaves.Model(model_file=model_file)
    model.compile(cache=cache)
    print(json.dumps({"compile_s": time.perf_counter() - started, "cached": cached}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            continue
        started = time.perf_counter()
        p = model.predict(X, n_jobs=1)
        took = time.perf_counter() - started
        print(json.dumps({"s": took, "sum": float(p.sum(dtype=np.float64))}), flush=True)


if __name__ == "__main__":
    main()
