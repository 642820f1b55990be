"""Steady-state SRE: the LangGraph loop, its nodes, the write-ahead action ledger, incidents."""
