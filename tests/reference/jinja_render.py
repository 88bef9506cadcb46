#!/usr/bin/python3
"""Reference renderer for cllm's Jinja interpreter (tests/test_jinja.c).

Renders every template in tests/reference/jinja_templates/ over every
conversation in tests/reference/jinja_cases.json, with add_generation_prompt
false and true, exactly as Hugging Face's apply_chat_template sets Jinja up:
an ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the
loopcontrols extension, raise_exception and strftime_now as globals and
tojson as json.dumps(ensure_ascii=False, ...). Prints one JSON array of
cases: template (or source, for the short "snippets" that pin down
expressions, filters and whitespace control), conversation, add_generation_prompt, the context given to
render, and either "output" or "error" (the exception's message).

CLLM_JINJA_TEMPLATES=DIR renders the templates of DIR instead (tests/interop/
templates.sh points it at llama.cpp's models/templates, read in place);
templates without an entry in special_tokens get <s> and </s>.

Needs Debian's python3-jinja2 (run with /usr/bin/python3); it exits non-zero
without it, so the C test fails rather than skips.
"""
import json
import os
import sys

import jinja2
from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    raise TemplateError("strftime_now is not deterministic; pass date_string")


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    with open(os.path.join(HERE, "jinja_cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    env = environment()
    tdir = os.environ.get("CLLM_JINJA_TEMPLATES") or os.path.join(HERE, "jinja_templates")
    out = []
    for fname in sorted(os.listdir(tdir)):
        if not fname.endswith(".jinja"):
            continue
        name = fname[: -len(".jinja")]
        with open(os.path.join(tdir, fname), encoding="utf-8", newline="") as f:
            template = env.from_string(f.read())
        bos, eos = cases["special_tokens"].get(name, ["<s>", "</s>"])
        for conv in cases["conversations"]:
            for agp in (False, True):
                ctx = {"messages": conv["messages"], "add_generation_prompt": agp, "bos_token": bos, "eos_token": eos}
                if "tools" in conv:
                    ctx["tools"] = conv["tools"]
                ctx.update(cases.get("extra", {}).get(name, {}))
                case = {"template": name, "conversation": conv["name"], "add_generation_prompt": agp, "context": ctx}
                try:
                    case["output"] = template.render(**ctx)
                except TemplateError as e:
                    case["error"] = str(e)
                except Exception as e:  # TypeError etc.: the template cannot render this conversation
                    case["error"] = f"{type(e).__name__}: {e}"
                out.append(case)
    for i, src in enumerate(cases["snippets"]):
        ctx = cases["snippet_context"]
        case = {"source": src, "conversation": f"snippet {i}", "add_generation_prompt": False, "context": ctx}
        try:
            case["output"] = env.from_string(src).render(**ctx)
        except TemplateError as e:
            case["error"] = str(e)
        except Exception as e:
            case["error"] = f"{type(e).__name__}: {e}"
        out.append(case)
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    print(f"jinja {jinja2.__version__}: {len(out)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
