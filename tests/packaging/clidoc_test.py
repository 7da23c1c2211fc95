#!/usr/bin/env python3
"""clidoc_test.py BERTH DOCS: every subcommand and flag `berth --help` shows,
at every level, is offered by the generated completion (bash and fish run for
real; zsh parsed by zsh and read) and documented in its man page (DOCS/man1,
written by the build), which man renders without a warning.

The command tree is read from CLI11's own --help output, not from the
generator, so a verb or flag another module adds is checked as soon as it
exists, and a generator that drops one fails here."""
import os
import re
import shutil
import subprocess
import sys

BERTH, DOCS = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def help_tree(path):
    """{path tuple: (flags, subcommands)} from `berth PATH --help`."""
    out = subprocess.run([BERTH, *path, "--help"], capture_output=True, text=True, check=True).stdout
    flags, subs, section = [], [], None
    for line in out.splitlines():
        if re.match(r"^\S.*:$", line):
            section = line
            continue
        m = re.match(r"^  (\S+)", line)
        if not m:
            continue
        if section == "Options:" and m.group(1).startswith("-"):
            flags += [f for f in m.group(1).split(",") if f.startswith("-")]
        elif section == "Subcommands:":
            subs.append(m.group(1))
    tree = {tuple(path): (flags, subs)}
    for sub in subs:
        tree.update(help_tree([*path, sub]))
    return tree


def bash_offers(script, words):
    """COMPREPLY of the generated bash completion for `berth WORDS...`."""
    prog = (f'source "{script}"\nCOMP_WORDS=(berth {" ".join(words)})\n'
            f'COMP_CWORD={len(words)}\n_berth\nprintf "%s\\n" "${{COMPREPLY[@]}}"\n')
    return set(subprocess.run(["bash", "-c", prog], capture_output=True, text=True,
                              check=True).stdout.split())


def fish_offers(script, line):
    prog = f'source "{script}"; complete -C "{line}"'
    out = subprocess.run(["fish", "-N", "-c", prog], capture_output=True, text=True,
                         check=True).stdout
    return {row.split("\t")[0] for row in out.splitlines()}


def man_text(page):
    env = dict(os.environ, MANWIDTH="200", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="0")
    run = subprocess.run(["man", "--warnings", "-E", "ascii", "-l", page], capture_output=True,
                         text=True, env=env)
    check(run.returncode == 0 and not run.stderr.strip(),
          f"man warns on {page}: {run.stderr.strip()}")
    return re.sub(r".\x08", "", run.stdout)


tree = help_tree([])
check(len(tree) > 20, f"only {len(tree)} commands in berth's --help tree")
docs = {shell: subprocess.run([BERTH, "completion", shell], capture_output=True, text=True,
                              check=True).stdout for shell in ("bash", "zsh", "fish")}
scripts = {}
for shell, text in docs.items():
    scripts[shell] = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"berth-clidoc-{os.getpid()}.{shell}")
    with open(scripts[shell], "w") as f:
        f.write(text)
subprocess.run(["zsh", "-n", scripts["zsh"]], check=True)

for path, (flags, subs) in tree.items():
    name = " ".join(["berth", *path])
    offered = bash_offers(scripts["bash"], [*path, "-"])
    check(set(flags) <= offered, f"bash: {name} - misses {sorted(set(flags) - offered)}")
    if subs:
        offered = bash_offers(scripts["bash"], [*path, ""])
        check(set(subs) <= offered, f"bash: {name} misses {sorted(set(subs) - offered)}")
    zsh_row = re.search(rf'^  "{re.escape(name)}" "(.*)"$', docs["zsh"].split("_berth_flags=(")[1],
                        re.M)
    check(zsh_row and set(flags) <= set(zsh_row.group(1).split()), f"zsh: {name} flags")
    offered = fish_offers(scripts["fish"], f"{name} -")
    longs = {f for f in flags if f.startswith("--")}
    check(longs <= offered, f"fish: {name} - misses {sorted(longs - offered)}")
    if subs:
        offered = fish_offers(scripts["fish"], f"{name} ")
        check(set(subs) <= offered, f"fish: {name} misses {sorted(set(subs) - offered)}")
    page = os.path.join(DOCS, "man1", "-".join(["berth", *path]) + ".1")
    if not os.path.exists(page):
        failures.append(f"no man page {page}")
        continue
    text = man_text(page)
    for word in flags + subs:
        check(re.search(rf"(^|[\s,]){re.escape(word)}($|[\s,.])", text, re.M),
              f"man: {page} does not mention {word}")

for path in scripts.values():
    os.unlink(path)
for f in failures:
    print("FAIL:", f)
print(f"{len(tree)} commands checked, {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
