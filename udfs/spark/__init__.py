"""Spark: vectorized Arrow UDFs `score`, `predict` and `predict_json` for Spark SQL."""

from udfs.spark._engine import byom_error
from udfs.spark.functions import SparkRegistration, refresh, register, sql
from udfs.spark.store import SparkModelStore

__all__ = ["SparkModelStore", "SparkRegistration", "byom_error", "refresh", "register", "sql"]
