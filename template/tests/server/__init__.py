"""Tests of the server itself, with test-only tools of their own (probe_tools), never the project's."""
