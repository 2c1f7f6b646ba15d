"""Regression: linear regression."""

from zoo.models.regression.linear import LinearRegression

__all__ = ["LinearRegression"]
