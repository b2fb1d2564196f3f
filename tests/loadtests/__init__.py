"""Tests of the trace and roster formats, converters and generator."""
