"""Make every ref() of our own dbt nodes package-safe: ref('x') -> ref('trackhouse', 'x').

trackhouse is also a dbt package. Inside a package, a one-argument ref('touchpoints')
resolves to the ROOT project's node of that name first, so a consumer's own model
`touchpoints` would silently be read by our marts. A two-argument ref names the
package and can never be shadowed.

Rewrites one-argument refs whose (literal) name is one of this project's models,
seeds or snapshots, in .sql and .yml files under models/, macros/, seeds/,
snapshots/ and tests/dbt/. Refs built from variables (ref(model_name)) and refs of
names we do not define (the root project's models) stay as they are. Idempotent:
run it again after a merge brings new one-argument refs.

    python scripts/package_refs.py          # rewrite in place, list the files
    python scripts/package_refs.py --check  # exit 1 (and list them) if any is left
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEARCHED = ("models", "macros", "seeds", "snapshots", "tests/dbt", "analyses")
NODE_DIRS = {"models": (".sql", ".py"), "seeds": (".csv",), "snapshots": (".sql",)}
# ref( 'name' ) or ref("name"), exactly one literal argument.
ONE_ARG_REF = re.compile(r"""\bref\(\s*(['"])([A-Za-z0-9_]+)\1\s*\)""")


def project_name(root: Path) -> str:
    match = re.search(
        r"^name:\s*['\"]?([A-Za-z0-9_]+)", (root / "dbt_project.yml").read_text(), re.M
    )
    if not match:
        sys.exit(f"no `name:` in {root / 'dbt_project.yml'}")
    return match.group(1)


def own_nodes(root: Path) -> set[str]:
    names: set[str] = set()
    for folder, suffixes in NODE_DIRS.items():
        for path in (root / folder).rglob("*"):
            if path.suffix in suffixes:
                names.add(path.stem)
    return names


def in_yaml_flow(text: str, start: int) -> bool:
    """True if position `start` is an unquoted scalar inside a YAML flow collection
    ({...} or [...]) on its line, where the comma of a two-argument ref would end it."""
    line = text[text.rfind("\n", 0, start) + 1 : start]
    if line.rstrip().endswith(("'", '"')):
        return False
    depth = 0
    for char in line:
        depth += char in "{["
        depth -= char in "}]"
    return depth > 0


def rewrite(text: str, package: str, names: set[str], yaml: bool = False) -> str:
    def replace(match: re.Match[str]) -> str:
        quote, name = match.group(1), match.group(2)
        if name not in names:
            return match.group(0)
        new = f"ref({quote}{package}{quote}, {quote}{name}{quote})"
        if yaml and in_yaml_flow(text, match.start()):
            # A flow-style mapping needs the value quoted once it holds a comma.
            other = '"' if quote == "'" else "'"
            new = f"{other}{new}{other}"
        return new

    return ONE_ARG_REF.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a file would change"
    )
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the dbt project (default: this repository)"
    )
    args = parser.parse_args(argv)
    package, names = project_name(args.root), own_nodes(args.root)
    changed = []
    for folder in SEARCHED:
        for path in sorted((args.root / folder).rglob("*")):
            if path.suffix not in (".sql", ".yml", ".yaml") or not path.is_file():
                continue
            text = path.read_text()
            new = rewrite(text, package, names, yaml=path.suffix != ".sql")
            if new != text:
                changed.append(path.relative_to(args.root))
                if not args.check:
                    path.write_text(new)
    for path in changed:
        print(path)
    if args.check and changed:
        print(
            f"{len(changed)} file(s) have one-argument refs; run: python scripts/package_refs.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
