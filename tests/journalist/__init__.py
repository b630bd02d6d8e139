"""Tests of the journalist web app."""
