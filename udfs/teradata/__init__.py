"""Teradata: the SCRIPT table operator entry point, SQL generation and deployment."""
