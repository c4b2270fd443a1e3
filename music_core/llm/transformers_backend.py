"""A local causal LM through transformers (Gemma or any model with a chat template).

torch and transformers are imported when an analyst is built, never at module import. Greedy decoding
with a bounded ``max_new_tokens``; torch's CPU threads are set deliberately (the process is shared with
ASR and embedding); CUDA is used only when present. One generation at a time per analyst: the comparison
stage's worker threads share it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from music_core.llm.prompt import build_prompt, clean_note
from music_core.llm.types import AnalystError, AnalystNote, Prompt, PromptInput

MAX_NEW_TOKENS_LIMIT = 1024


class TransformersAnalyst:
    def __init__(self, model: str, *, max_new_tokens: int = 256, threads: int = 2) -> None:
        if not 1 <= max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise ValueError(f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT}")
        import torch  # heavy: imported when the backend is built
        from transformers import AutoModelForCausalLM, AutoTokenizer

        local = Path(model).expanduser().exists()
        source = str(Path(model).expanduser()) if local else model
        torch.set_num_threads(max(1, threads))
        self._torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
        self.model = (
            AutoModelForCausalLM.from_pretrained(source, local_files_only=local, dtype=dtype)
            .to(self.device)
            .eval()
        )
        self.max_new_tokens = max_new_tokens
        self.model_id = f"transformers:{Path(source).name if local else model}"
        self._lock = threading.Lock()

    def render(self, prompt: Prompt) -> tuple[str, bool]:
        """The text fed to the model and whether it came from the tokenizer's chat template."""
        if not getattr(self.tokenizer, "chat_template", None):
            return f"{prompt.system}\n\n{prompt.user}\n\nAnswer:", False
        messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]
        try:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # noqa: BLE001 - templates that refuse a system turn (older Gemma): merge it
            merged = [{"role": "user", "content": f"{prompt.system}\n\n{prompt.user}"}]
            text = self.tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        return str(text), True

    def generate(self, text: str, templated: bool) -> str:
        # A chat template already writes the BOS token; adding it again confuses Gemma.
        inputs: Any = self.tokenizer(text, return_tensors="pt", add_special_tokens=not templated)
        inputs = {k: v.to(self.device) for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        with self._lock, self._torch.inference_mode():
            out = self.model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=pad
            )
        new_tokens = out[0, inputs["input_ids"].shape[1] :]
        return str(self.tokenizer.decode(new_tokens, skip_special_tokens=True))

    def analyse(self, prompt_input: PromptInput) -> AnalystNote:
        text, templated = self.render(build_prompt(prompt_input))
        try:
            answer = self.generate(text, templated)
        except (RuntimeError, ValueError, IndexError) as exc:  # e.g. out of memory, prompt too long
            raise AnalystError(f"generation failed: {type(exc).__name__}: {str(exc)[:200]}") from exc
        return AnalystNote(clean_note(answer), self.model_id)
