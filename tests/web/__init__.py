"""Tests of the shared web layer, the placeholder apps and serving."""
