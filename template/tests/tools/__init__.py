"""Tests of the project's own tools, called through the server as a client calls them."""
