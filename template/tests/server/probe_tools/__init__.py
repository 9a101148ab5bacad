"""Test-only tools, resources and prompts the server's tests serve in place of the project's own,
registered the same way.

One component per piece of machinery: caller_identity (public: who the server thinks the caller is),
tenant_records (`data:read`, reads the caller's tenant, records one argument), admin_status
(`admin`, its own rate limit), unexpected_failure and fetch_status (public), count_steps (public,
async: progress and client logging); record_index, record_title and review_record (`data:read`: a
resource, a resource template with its own rate limit, a prompt).
"""
