"""The package version, read by the build backend and reported in the ``sdk`` field."""

__version__ = "0.1.0"
