"""Model types of the native evaluator, by PMML element name.

To add one: write a module here with a `ModelPlan` subclass (see `base.py`) and a
`compile_<type>(ctx, element) -> ModelPlan` function, and register it in `MODEL_TYPES`.
"""

from __future__ import annotations

from collections.abc import Callable
from xml.etree.ElementTree import Element

from byom.pmml.models.base import ModelPlan, ModelResult
from byom.pmml.models.clustering import compile_clustering
from byom.pmml.models.general_regression import compile_general_regression
from byom.pmml.models.mining import compile_mining
from byom.pmml.models.naive_bayes import compile_naive_bayes
from byom.pmml.models.neural_network import compile_neural_network
from byom.pmml.models.regression import compile_regression
from byom.pmml.models.ruleset import compile_ruleset
from byom.pmml.models.scorecard import compile_scorecard
from byom.pmml.models.svm import compile_svm
from byom.pmml.models.tree import compile_tree
from byom.pmml.scope import Context

__all__ = ["MODEL_TYPES", "ModelPlan", "ModelResult", "compile_model"]

#: PMML model element -> its compiler. Every other model element is refused as unsupported.
MODEL_TYPES: dict[str, Callable[[Context, Element], ModelPlan]] = {
    "RegressionModel": compile_regression,
    "TreeModel": compile_tree,
    "SupportVectorMachineModel": compile_svm,
    "Scorecard": compile_scorecard,
    "NeuralNetwork": compile_neural_network,
    "NaiveBayesModel": compile_naive_bayes,
    "ClusteringModel": compile_clustering,
    "RuleSetModel": compile_ruleset,
    "MiningModel": compile_mining,
    "GeneralRegressionModel": compile_general_regression,
}

#: Model elements PMML 4.4 defines (to tell "not supported yet" from "not a model").
KNOWN_MODELS = {
    "AnomalyDetectionModel", "AssociationModel", "BayesianNetworkModel", "BaselineModel",
    "ClusteringModel", "GaussianProcessModel", "GeneralRegressionModel", "MiningModel",
    "NaiveBayesModel", "NearestNeighborModel", "NeuralNetwork", "RegressionModel",
    "RuleSetModel", "SequenceModel", "Scorecard", "SupportVectorMachineModel", "TextModel",
    "TimeSeriesModel", "TreeModel",
}  # fmt: skip


def compile_model(ctx: Context, element: Element) -> ModelPlan:
    compiler = MODEL_TYPES.get(element.tag)
    if compiler is None:
        what = (
            f"<{element.tag}>"
            if element.tag in KNOWN_MODELS
            else f"unknown element <{element.tag}>"
        )
        raise ctx.doc.unsupported(element, what)
    if element.get("isScorable", "true") == "false":
        raise ctx.doc.invalid(element, 'is marked isScorable="false"')
    ctx.depth += 1
    if ctx.depth > 50:
        raise ctx.doc.invalid(element, "nests models more than 50 levels deep")
    try:
        return compiler(ctx, element)
    finally:
        ctx.depth -= 1
