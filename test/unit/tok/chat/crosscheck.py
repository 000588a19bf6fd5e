#!/usr/bin/env python3
"""Check the expectations of lang.c against Python Jinja2 set up the way
transformers sets up chat templates (utils/chat_template_utils.py):
ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
the {% generation %} tag, tojson = json.dumps(ensure_ascii=False),
raise_exception and strftime_now. The expectations in lang.c were worked
out by hand from Jinja2's source; this confirms them where Jinja2 is
installed. Exit 77 (meson: skipped) without python3's jinja2."""
import json
import os
import re
import sys
from datetime import datetime

try:
    import jinja2
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("jinja2 is not installed: skipped")
    sys.exit(77)


class AssistantTracker(Extension):
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        call = self.call_method("_render")
        return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                       extensions=[AssistantTracker,
                                                   jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda f: datetime.now().strftime(f)
    return env


STRING = r'"(?:[^"\\]|\\.)*"'


def c_string(parts):
    """The value of adjacent C string literals (the escapes lang.c uses)."""
    s = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', parts))
    return s.encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = open(os.path.join(here, "lang.c"), encoding="utf-8").read()
    m = re.search(r"static const char vars_json\[\] =\n((?:\s*%s\n?)+);" % STRING, src)
    variables = json.loads(c_string(m.group(1)))
    variables.update(messages=variables["msgs"], add_generation_prompt=True,
                     tools=None, documents=None)
    cases = re.findall(r"\{ ((?:%s\s*)+),\s*\n?\s*((?:%s\s*)+)\}" % (STRING, STRING), src)
    bad = 0
    for tmpl, want in cases:
        tmpl, want = c_string(tmpl), c_string(want)
        try:
            got = environment().from_string(tmpl).render(**json.loads(json.dumps(variables)))
        except Exception as e:  # the case expects output, so any error is a failure
            got = "%s: %s" % (type(e).__name__, e)
        if got != want:
            bad += 1
            print("template: %r\n  lang.c: %r\n  jinja2: %r" % (tmpl, want, got))
    print("%d lang.c cases, %d differ from Jinja2 %s" % (len(cases), bad, jinja2.__version__))
    if len(cases) < 100:
        print("too few cases found: the parser of lang.c is broken")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
