"""Optional LLM analysis of a transcript-vs-lyrics comparison (off by default).

Backends: a local transformers causal LM (``transformers``) or an OpenAI-compatible chat endpoint
(``openai``). Build one with :func:`music_core.llm.factory.build_analyst`; heavy imports are lazy.
"""
