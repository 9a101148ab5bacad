"""The project's tests: `server/` tests the server (template-owned), `tools/` tests your tools."""
