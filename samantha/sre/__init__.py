"""Steady-state SRE: the agent graph, its nodes, and the progressive-rollout controller."""
