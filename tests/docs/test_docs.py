#!/usr/bin/env python3
"""test_docs — the generated manuals, bash completion and sample hcd.conf
say exactly what the programs do: every command, option and key, and
nothing else.

  test_docs.py HC HCD HC.1 HCD.8 HCD.CONF.5 HC-COMPLETION HCD.CONF.SAMPLE

The expected sets come from the programs' human help (`hc --help`, `hc NOUN
--help`, `hc NOUN VERB --help`, `hcd --help`): another rendering of the same
tables than the JSON the generator reads, so a generator that drops or
invents an entry fails here.  The config keys come from hcd itself
(`hcd --print-config` walks keys[]), and the sample hcd.conf is fed back to
hcd's own parser.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
    return cond


def same(expected, got, what):
    expected, got = set(expected), set(got)
    check(not (expected - got), "%s: missing %s" % (what, sorted(expected - got)))
    check(not (got - expected), "%s: not in the table %s" % (what, sorted(got - expected)))


def run(argv, ok=True):
    p = subprocess.run(argv, capture_output=True, text=True)
    if ok and p.returncode != 0:
        sys.exit("%s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr))
    return p


def unroff(text):
    """Roff source → the words a reader sees (enough for these pages)."""
    text = re.sub(r"\\f[BIRP]", "", text)
    text = text.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")
    text = re.sub(r"\\\[u([0-9A-F]{4})\]", lambda m: chr(int(m.group(1), 16)), text)
    return text.replace("\\(lq", '"').replace("\\(rq", '"')


def roff_sections(path):
    """{".SH title": [lines]} of a page, in roff source."""
    out, cur = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            if line.startswith(".SH "):
                cur = unroff(line[4:]).strip('"')
                out[cur] = []
            elif cur:
                out[cur].append(line)
    return out


def tagged(lines):
    """The tag line after each .TP, unroffed."""
    return [unroff(lines[i + 1]) for i, l in enumerate(lines[:-1]) if l == ".TP"]


def help_opts(text, header):
    """Option names of a help text's section that starts with header."""
    names, on = [], False
    for line in text.splitlines():
        if line.startswith(header):
            on = True
        elif on and not line.strip():
            on = False
        elif on and line.startswith("  -"):
            names.append(line.split()[0])
    return names


# ---- hc ------------------------------------------------------------------------


def hc_expected(hc):
    """{command: [options]}, globals, {command: summary} from hc's --help."""
    top = run([hc, "--help"]).stdout
    nouns = []
    for line in top.splitlines():
        if line.startswith("  hc "):
            n = line.split()[1]
            if n not in nouns:
                nouns.append(n)
    globals_ = help_opts(top, "Global options")
    cmds, summaries = {}, {}

    def command(words):
        out = run([hc] + words + ["--help"]).stdout.splitlines()
        cmds[" ".join(words)] = help_opts("\n".join(out), "Options:")
        summaries[" ".join(words)] = out[2]

    for n in nouns:
        text = run([hc, n, "--help"]).stdout
        if text.startswith("usage: hc %s VERB" % n):
            for line in text.splitlines():
                if line.startswith("  hc %s " % n):
                    command([n, line.split()[2]])
        else:
            command([n])
    return cmds, globals_, summaries


def check_hc_page(page, cmds, globals_, summaries):
    sec = roff_sections(page)
    same(globals_, [t.split()[0] for t in tagged(sec.get("GLOBAL OPTIONS", []))], "hc.1 GLOBAL OPTIONS")
    got, cur = {}, None
    lines = sec.get("COMMANDS", [])
    for i, l in enumerate(lines[:-1]):
        if l != ".TP":
            continue
        tag = unroff(lines[i + 1])
        if tag.startswith("hc "):
            # "hc vm create NAME ...": the name is the bold words before the usage.
            m = re.match(r"\\fBhc ([^\\]*)\\fR", lines[i + 1])
            cur = unroff(m.group(1)).strip() if m else tag
            got[cur] = []
            check(unroff(lines[i + 2]).lower().startswith(summaries.get(cur, "?").lower().rstrip(".")),
                  "hc.1: %s: summary is not the table's" % cur)
        elif tag.startswith("--") and cur:
            got[cur].append(tag.split()[0])
    same(cmds.keys(), got.keys(), "hc.1 commands")
    for c in cmds:
        if c in got:
            same(cmds[c], got[c], "hc.1 options of 'hc %s'" % c)
    # No option the program does not have, anywhere in the page.
    known = set(globals_) | {o for opts in cmds.values() for o in opts}
    with open(page, encoding="utf-8") as f:
        mentioned = set(re.findall(r"--[a-z][a-z0-9-]*", unroff(f.read())))
    same(known, mentioned, "hc.1 options mentioned anywhere")


def complete(script, words):
    """COMPREPLY of the completion function for a command line whose last
    word is being completed."""
    line = " ".join("'%s'" % w for w in words)
    prog = ('source "$1"; COMP_WORDS=(%s); COMP_CWORD=%d; _hc; printf "%%s\\n" "${COMPREPLY[@]}"'
            % (line, len(words) - 1))
    out = run(["bash", "-c", prog, "bash", script]).stdout
    return [w for w in out.splitlines() if w]


def check_completion(script, cmds, globals_):
    nouns = sorted({c.split()[0] for c in cmds})
    same(nouns, complete(script, ["hc", ""]), "completion of nouns")
    same(globals_, complete(script, ["hc", "--"]), "completion of global options")
    for n in nouns:
        verbs = [c.split()[1] for c in cmds if c.startswith(n + " ")]
        if verbs:
            same(verbs, complete(script, ["hc", n, ""]), "completion of the verbs of '%s'" % n)
    for c, opts in cmds.items():
        want = set(opts) | set(globals_)
        same(want, complete(script, ["hc"] + c.split() + ["--"]), "completion of options of 'hc %s'" % c)
    # A value is not a word of the command: "--url X vm cr" still completes the verb.
    check(complete(script, ["hc", "--url", "unix:/x", "vm", "cr"]) == ["create"],
          "completion: the value of --url taken for a noun")
    # File options complete file names.
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "kernel-file"), "w").close()
        got = complete(script, ["hc", "image", "import", "x", "--kernel", os.path.join(d, "ker")])
        check(got == [os.path.join(d, "kernel-file")], "completion: --kernel does not complete files: %s" % got)


# ---- hcd -----------------------------------------------------------------------


def check_hcd(hcd, page8, page5, sample):
    table = json.loads(run([hcd, "--config", "/dev/null", "--print-config"]).stdout)
    keys = table["keys"]
    for k in keys:
        check(k["help"].strip() != "", "src/common/config.c keys[]: %s.%s has no help text" % (k["section"], k["name"]))

    # hcd(8): the options of `hcd --help`, then every key as an option.
    opts = [o.split("=")[0] for o in help_opts(run([hcd, "--help"]).stdout, "Runs the hackcloud")]
    tags = [t.split()[0].split("=")[0] for t in tagged(roff_sections(page8).get("OPTIONS", []))]
    as_opt = ["--" + (k["name"] if k["section"] == "hcd" else k["section"] + "." + k["name"]).replace("_", "-")
              for k in keys]
    same(opts + as_opt, tags, "hcd.8 OPTIONS")

    # hcd.conf(5): one entry per key, under its section.
    got = []
    for title, lines in roff_sections(page5).items():
        m = re.fullmatch(r"\[(\w+)\] SECTION", title)
        if m:
            got += [m.group(1).lower() + "." + t.split(" = ")[0] for t in tagged(lines)]
    same(["%s.%s" % (k["section"], k["name"]) for k in keys], got, "hcd.conf.5 keys")

    # The sample: every key once, under its section; uncommented, hcd's own
    # parser takes it and ends up with the defaults.
    section, shown, active = None, [], []
    with open(sample, encoding="utf-8") as f:
        for line in f.read().splitlines():
            if re.fullmatch(r"\[\w+\]", line):
                section = line[1:-1]
                active.append(line)
            m = re.fullmatch(r"#(\w+) =(?: (.*))?", line)
            if m:
                shown.append("%s.%s" % (section, m.group(1)))
                if m.group(2):
                    active.append("%s = %s" % (m.group(1), m.group(2)))
    same(["%s.%s" % (k["section"], k["name"]) for k in keys], shown, "sample hcd.conf keys")
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write("\n".join(active) + "\n")
        f.flush()
        loaded = json.loads(run([hcd, "--config", f.name, "--print-config"]).stdout)["keys"]
        check(loaded == keys, "the sample hcd.conf, uncommented, does not load as the defaults")
        f.write("no_such_key = 1\n")
        f.flush()
        check(run([hcd, "--config", f.name, "--print-config"], ok=False).returncode != 0,
              "hcd took an unknown key: the sample check above proves nothing")
    # Nothing from the build machine (the host name) leaks into the sample.
    host = os.uname().nodename
    with open(sample, encoding="utf-8") as f:
        check(not re.search(r"=\s*%s\s*$" % re.escape(host), f.read(), re.M),
              "the sample hcd.conf carries this machine's host name")


def main(argv):
    if len(argv) != 8:
        sys.exit(__doc__)
    hc, hcd, hc1, hcd8, hcdconf5, completion, sample = argv[1:]
    cmds, globals_, summaries = hc_expected(hc)
    check(len(cmds) > 10 and len(globals_) > 3, "hc's help lists too little: %d commands" % len(cmds))
    check_hc_page(hc1, cmds, globals_, summaries)
    check_completion(completion, cmds, globals_)
    check_hcd(hcd, hcd8, hcdconf5, sample)
    for f in FAILS:
        print("FAIL:", f)
    print("docs: %d commands, %d global options, %d failures" % (len(cmds), len(globals_), len(FAILS)))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main(sys.argv)
