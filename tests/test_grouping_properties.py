"""Property: a batch whose rows name models at random scores each row exactly as a batch of
that model alone would, in the original order, with NULL for a NULL model id."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from helpers import IRIS_FEATURES, LINEAR_PMML
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from byom.outputs import OutputKind
from byom.scoring import InMemoryModels, score_batch

ROW = st.fixed_dictionaries(
    {
        "model_id": st.sampled_from(["multi", "lin", None]),
        **{c: st.floats(0.0, 8.0) for c in IRIS_FEATURES},
        "x": st.floats(-5, 5) | st.none(),
        "z": st.floats(-5, 5) | st.none(),
        "color": st.sampled_from(["red", "blue"]) | st.none(),
    }
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(ROW, min_size=1, max_size=60))
def test_mixed_batch_equals_per_model_batches(iris_logreg, rows):
    models = InMemoryModels()
    models.add("multi", iris_logreg[1], ",".join(IRIS_FEATURES))
    models.add("lin", LINEAR_PMML)
    table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [("model_id", pa.string())]
            + [(c, pa.float64()) for c in [*IRIS_FEATURES, "x", "z"]]
            + [("color", pa.string())]
        ),
    )
    row = pa.StructArray.from_arrays(
        [c.combine_chunks() for c in table.columns], names=table.column_names
    )
    mixed = score_batch((OutputKind.PREDICT,), table["model_id"], [row], models)[0].to_pylist()
    assert len(mixed) == len(rows)
    for model_id in ("multi", "lin"):
        idx = [i for i, r in enumerate(rows) if r["model_id"] == model_id]
        if not idx:
            continue
        ids = pa.array([model_id] * len(idx))
        alone = score_batch((OutputKind.PREDICT,), ids, [row.take(pa.array(idx))], models)
        assert alone[0].to_pylist() == [mixed[i] for i in idx]
    assert all(mixed[i] is None for i, r in enumerate(rows) if r["model_id"] is None)
    scores = score_batch((OutputKind.SCORE,), table["model_id"], [row], models)[0]
    scores = scores.to_numpy(zero_copy_only=False)
    for i, r in enumerate(rows):
        if r["model_id"] == "lin" and r["x"] is not None and r["color"] is not None:
            expected = 1 + 2 * r["x"] - 0.5 * (r["z"] or 0.0) + (3 if r["color"] == "red" else 0)
            assert np.isclose(scores[i], expected, rtol=1e-12, atol=1e-12)
