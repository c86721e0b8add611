#!/usr/bin/env python3
"""Renders the golden chat-template cases (cases.json) with Python's jinja2 in the environment
transformers' apply_chat_template uses (src/transformers/utils/chat_template_utils.py:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]),
raise_exception, tojson(ensure_ascii=False), strftime_now), and checks the renders the upstream
test suites expect (upstream.json) on the way. Run: python3 gen.py (writes cases.json)."""
import json, sys
from datetime import datetime
import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda f: datetime.now().strftime(f)

def render(src, messages, add_generation_prompt, vars):
    kw = dict(vars)
    kw.setdefault("tools", None)
    kw.setdefault("documents", None)
    try:
        return {"expected": env.from_string(src).render(messages=messages, add_generation_prompt=add_generation_prompt, **kw)}
    except jinja2.exceptions.TemplateError as e:
        return {"error": str(e)}

CHAT = [{"role": "user", "content": "Hello, how are you?"},
        {"role": "assistant", "content": "I'm doing great. How can I help you today?"},
        {"role": "user", "content": "I'd like to show off how chat templating works!"}]
SYSTEM = [{"role": "system", "content": "You are a friendly chatbot who always responds in the style of a pirate"}] + CHAT
BAD_ORDER = [{"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Hello?"}]
TWO_USERS = [{"role": "user", "content": "One"}, {"role": "user", "content": "Two"}]
SPACES = [{"role": "user", "content": "  padded question  "}, {"role": "assistant", "content": "  padded answer  "},
          {"role": "user", "content": "ünïcödé ✓ \"quotes\""}]

TOKENS = {
    "llama-2.jinja": {"bos_token": "<s>", "eos_token": "</s>", "USE_DEFAULT_PROMPT": True},
    "mistral-7b-instruct-v0.1.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "mixtral-8x7b-instruct-v0.1.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "deepseek-llm-7b-chat.jinja": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
    "deepseek-r1.jinja": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
    "qwen1.5-72b-chat.jinja": {"bos_token": None, "eos_token": "<|im_end|>"},
    "qwen2.5-7b-instruct.jinja": {"bos_token": None, "eos_token": "<|im_end|>"},
    "qwen2.5-vl-7b-instruct.jinja": {"bos_token": None, "eos_token": "<|im_end|>"},
    "qwen3-0.6b.jinja": {"bos_token": None, "eos_token": "<|im_end|>"},
    "llama-3-8b-instruct.jinja": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama-3.1-8b-instruct.jinja": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "date_string": "26 Jul 2024"},
    "gemma-2b-it.jinja": {"bos_token": "<bos>", "eos_token": "<eos>"},
    "phi-3-mini-4k-instruct.jinja": {"bos_token": "<s>", "eos_token": "<|endoftext|>"},
    "zephyr-7b-beta.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
}

EXTRA = {
    "qwen3-0.6b.jinja": [
        ("thinking off", CHAT, True, {"enable_thinking": False}),
        ("thinking on", CHAT, True, {"enable_thinking": True}),
        ("reasoning in history", [{"role": "user", "content": "2+2?"},
                                  {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
                                  {"role": "user", "content": "and 3+3?"}], True, {}),
    ],
    "qwen2.5-vl-7b-instruct.jinja": [
        ("image and video", [{"role": "user", "content": [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "Describe."}]}], True, {}),
        ("image ids", [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}], True, {"add_vision_id": True}),
    ],
}

def main():
    upstream = json.load(open("upstream.json"))
    bad = 0
    cases = []
    for f, vars in TOKENS.items():
        src = open(f).read()
        for u in upstream.get(f, {}).get("upstream", []):
            d = dict(u["data"])
            msgs = d.pop("messages")
            agp = d.pop("add_generation_prompt", False)
            r = render(src, msgs, agp, d)
            if r.get("expected") != u["target"]:
                print(f"{f}: jinja2 differs from the upstream target of {u['key']}", file=sys.stderr)
                bad += 1
            cases.append({"template": f, "name": "upstream " + u["key"], "messages": msgs, "add_generation_prompt": agp, "vars": d, **r})
        plan = [("chat", CHAT, False, {}), ("chat+gen", CHAT, True, {}), ("system", SYSTEM, False, {}),
                ("system+gen", SYSTEM, True, {}), ("bad order", BAD_ORDER, True, {}), ("two users", TWO_USERS, True, {}),
                ("spaces", SPACES, True, {})] + EXTRA.get(f, [])
        for name, msgs, agp, extra in plan:
            v = {**vars, **extra}
            cases.append({"template": f, "name": name, "messages": msgs, "add_generation_prompt": agp, "vars": v, **render(src, msgs, agp, v)})
    json.dump(cases, open("cases.json", "w"), indent=1, ensure_ascii=False)
    print(len(cases), "cases,", sum("error" in c for c in cases), "raising;", bad, "upstream mismatches", file=sys.stderr)
    sys.exit(1 if bad else 0)

main()
