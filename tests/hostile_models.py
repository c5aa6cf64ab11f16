"""Model files that attack the scoring process, shared by the engine tests."""

from __future__ import annotations

SECRET = "top-secret-payroll-figures"


def onnx_reading_file(location: str = "secret.txt", length: int = len(SECRET)) -> bytes:
    """An ONNX model whose only initializer is stored "externally" in `location`, relative to
    the scoring process's working directory: it returns those bytes, one per row, as floats
    (a Gather over the file picks byte x of it), so a refusal is the only safe answer."""
    from onnx import TensorProto, helper

    data = TensorProto(name="leak", data_type=TensorProto.UINT8, dims=[length])
    data.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = data.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT64),
            helper.make_node("Reshape", ["xi", "flat"], ["idx"]),
            helper.make_node("Gather", ["leak", "idx"], ["byte"]),
            helper.make_node("Cast", ["byte"], ["y"], to=TensorProto.FLOAT),
        ],
        "leak",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
        initializer=[data, helper.make_tensor("flat", TensorProto.INT64, [1], [-1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()
