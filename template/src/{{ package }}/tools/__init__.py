"""The server's tools, resources and prompts: every function marked with `@tool`, `@resource` or
`@prompt` in a module of this package is served.

Add one by adding a module here; import what it needs from the toolkit module.
"""
