"""Fixtures for the model tests: a tracking client on a fresh workspace, and small datasets."""

from __future__ import annotations
