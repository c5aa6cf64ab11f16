"""Many small models, generated: logistic regressions as ONNX graphs (MatMul, Add, Sigmoid, fed
one tensor from columns an input map names) and linear regressions as PMML documents (inputs
by name), each over its own few of a table's columns, so that one table's rows can name a
thousand different models, each reading different columns."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

#: The table's feature columns; each model reads a few of them.
COLUMNS = [f"c{i}" for i in range(12)]


def onnx_logistic(seed: int, width: int) -> bytes:
    """sigmoid(x @ W + b) over an input tensor `x` of `width` float columns."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = numpy_helper.from_array(rng.normal(size=(width, 1)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(1,)).astype(np.float32), "B")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["z"]),
            helper.make_node("Add", ["z", "B"], ["y"]),
            helper.make_node("Sigmoid", ["y"], ["probability"]),
        ],
        f"logistic_{seed}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None, 1])],
        [weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def pmml_linear(seed: int, fields: list[str]) -> bytes:
    """A PMML RegressionModel: intercept + sum(coefficient * field)."""
    rng = np.random.default_rng(seed)
    names = [*fields, "y"]
    data = "".join(f'<DataField name="{f}" optype="continuous" dataType="double"/>' for f in names)
    mining = "".join(f'<MiningField name="{f}"/>' for f in fields)
    terms = "".join(
        f'<NumericPredictor name="{f}" coefficient="{c!r}"/>'
        for f, c in zip(fields, rng.normal(size=len(fields)).tolist(), strict=True)
    )
    return (
        '<?xml version="1.0"?><PMML version="4.4" xmlns="http://www.dmg.org/PMML-4_4">'
        f'<Header/><DataDictionary numberOfFields="{len(names)}">{data}</DataDictionary>'
        '<RegressionModel functionName="regression"><MiningSchema>'
        f'{mining}<MiningField name="y" usageType="target"/></MiningSchema>'
        f'<RegressionTable intercept="{rng.normal()!r}">{terms}</RegressionTable>'
        "</RegressionModel></PMML>"
    ).encode()


def models(count: int) -> dict[str, tuple[bytes, str | None]]:
    """`count` models by id: even ids ONNX (an input map naming 3 to 5 columns), odd ids PMML
    (2 to 4 fields by name); each picks its own columns."""
    out: dict[str, tuple[bytes, str | None]] = {}
    rng = np.random.default_rng(count)
    for k in range(count):
        picked = [COLUMNS[i] for i in rng.choice(len(COLUMNS), 3 + k % 3, replace=False)]
        if k % 2 == 0:
            out[f"m{k}"] = (onnx_logistic(k, len(picked)), "x=" + ",".join(picked))
        else:
            out[f"m{k}"] = (pmml_linear(k, picked[:-1]), None)
    return out


def rows(model_ids: list[str], n: int, seed: int = 0, nulls: float = 0.02) -> pa.Table:
    """n rows naming the models at random (a few NULL ids), the feature columns normal with
    some NULLs."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.array(model_ids, dtype=object), n)
    ids[rng.random(n) < nulls] = None
    data: dict[str, pa.Array] = {"model_id": pa.array(ids.tolist(), pa.string())}
    for name in COLUMNS:
        values = rng.normal(size=n)
        data[name] = pa.array(values, mask=rng.random(n) < 0.01)
    return pa.table(data)


def each_alone(table: pa.Table, kind: object, source_for: Callable[[str], object]) -> list:
    """Each model scored by the core over its own rows only (`source_for(model_id)`: a model
    table holding it), put back in row order (NULL for a NULL id): the reference a statement
    over many models must equal."""
    from byom.scoring import score_batch

    ids = table["model_id"].to_pylist()
    out: list = [None] * len(ids)
    for model_id in sorted({i for i in ids if i is not None}):
        at = [k for k, i in enumerate(ids) if i == model_id]
        own = table.take(pa.array(at))
        row = pa.StructArray.from_arrays(
            [c.combine_chunks() for c in own.columns], names=own.column_names
        )
        source = source_for(model_id)
        got = score_batch((kind,), own["model_id"], [row], source)[0].to_pylist()
        for k, value in zip(at, got, strict=True):
            out[k] = value
    return out
