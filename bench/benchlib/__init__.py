"""The stack benchmark's orchestrator side (standard library only): see bench/stack_bench.py."""
