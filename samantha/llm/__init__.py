"""Local LLM: llama.cpp in a worker process, versioned prompts, constrained output, triage."""
