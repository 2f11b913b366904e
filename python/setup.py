"""Builds the cffi extension `roost._roost_ffi` (see roost/_build_ffi.py)."""

from setuptools import setup

setup(cffi_modules=["roost/_build_ffi.py:ffibuilder"])
