"""The server's tools: every function marked with `@tool` in a module of this package is served.

Add a tool by adding a module here; import what it needs from the toolkit module.
"""
