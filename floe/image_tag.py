"""The project image's tag, derived from what goes into the image.

``docker build`` sees the Dockerfile and the build context: the repository minus what
``.dockerignore`` excludes (today: ``pyproject.toml``, ``uv.lock`` and ``demo/`` without caches and
build outputs). The tag is a digest of exactly that — the Dockerfile, the ignore file and every
context file's path, executable bit and bytes — so:

- a change to any file that reaches the image (a dbt model, the generator, the lock) gives a new
  tag, the synthesized manifests name it, and ``kubectl apply`` rolls exactly the pods that run the
  project image (Jobs get new names: they run again);
- no change gives the same tag: ``dist/`` stays byte-identical and ``make image`` finds the image
  already built (``docker image inspect``) and builds nothing.

The context is selected with the rules of Docker's own matcher (moby/patternmatcher, used by the
BuildKit dockerfile frontend): patterns cleaned like ``filepath.Clean`` with a leading ``/`` dropped,
``*`` and ``?`` never cross ``/``, ``**`` spans directories, a pattern also matches every file under a
matching directory (``MatchesOrParentMatches``), ``!`` re-includes, and the last matching pattern wins.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = "Dockerfile"
DOCKERIGNORE = ".dockerignore"
#: ``project_image.tag`` that asks for the derived tag (the default).
CONTENT = "content"
PREFIX = "src-"


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def _compile(pattern: str) -> re.Pattern[str]:
    """moby/patternmatcher ``Pattern.compile`` for '/' separators."""
    out = "^"
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1  # treat "**/" as "**"
                out += ".*" if i + 1 >= n else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < n:
            i += 1
            out += re.escape(pattern[i])
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out += re.escape(ch)
            else:
                body = pattern[i + 1:end]
                out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
                i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


def parse_ignore(text: str) -> list[Pattern]:
    """The patterns of a .dockerignore file (moby/patternmatcher/ignorefile ``ReadAll``)."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        line = posixpath.normpath(line) if line else line
        line = line.lstrip("/") or "."
        patterns.append(Pattern(line, exclusion, _compile(line)))
    return patterns


def excluded(path: str, patterns: list[Pattern]) -> bool:
    """``MatchesOrParentMatches``: is ``path`` (relative, '/'-separated) left out of the context?"""
    matched = False
    parent = posixpath.dirname(path)
    parents = parent.split("/") if parent else []
    for pattern in patterns:
        if pattern.exclusion != matched:
            continue
        hit = pattern.match(path) or any(pattern.match("/".join(parents[: i + 1])) for i in range(len(parents)))
        if hit:
            matched = not pattern.exclusion
    return matched


def _may_reinclude(directory: str, patterns: list[Pattern]) -> bool:
    """Could a ``!`` pattern bring back something under an excluded ``directory``? (Else skip it.)"""
    for p in patterns:
        if not p.exclusion:
            continue
        literal = re.split(r"[*?\[\\]", p.text, maxsplit=1)[0]
        if literal != p.text and "/" not in literal:
            return True  # a wildcard in the first component: anything may match
        if literal.startswith(directory + "/") or literal == directory or directory.startswith(literal.rstrip("/") + "/") or not literal:
            return True
    return False


def _prunable(directory: str, patterns: list[Pattern]) -> bool:
    """Is everything under ``directory`` left out, so the walk need not enter it? The last pattern
    matching the directory (or a parent) also matches every path under it, so only a ``!`` pattern
    after that one could bring something back."""
    last = None
    parents = directory.split("/")
    for index, pattern in enumerate(patterns):
        if any(pattern.match("/".join(parents[: i + 1])) for i in range(len(parents))):
            last = index
    if last is None or patterns[last].exclusion:
        return False
    return not _may_reinclude(directory, patterns[last + 1:])


def context_files(root: Path | None = None) -> list[str]:
    """The files ``docker build`` sends from ``root`` (default: this checkout; relative paths, sorted)."""
    root = root or REPO
    ignore = root / DOCKERIGNORE
    patterns = parse_ignore(ignore.read_text()) if ignore.exists() else []
    found = []
    for current, dirs, files in os.walk(root):
        rel_dir = Path(current).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        keep = []
        for d in sorted(dirs):
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if not _prunable(rel, patterns):
                keep.append(d)
        dirs[:] = keep
        for f in files:
            rel = f"{rel_dir}/{f}" if rel_dir else f
            if not excluded(rel, patterns):
                found.append(rel)
    return sorted(found)


def content_digest(root: Path | None = None) -> str:
    root = root or REPO
    digest = hashlib.sha256()
    for name in (DOCKERFILE, DOCKERIGNORE):
        path = root / name
        data = path.read_bytes() if path.exists() else b""
        digest.update(f"{name}\0{len(data)}\0".encode() + data)
    for rel in context_files(root):
        path = root / rel
        if path.is_symlink():
            data, mode = os.readlink(path).encode(), "l"
        else:
            data, mode = path.read_bytes(), "x" if path.stat().st_mode & stat.S_IXUSR else "-"
        digest.update(f"{rel}\0{mode}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


def content_tag(root: Path | None = None) -> str:
    """``src-<12 hex>``: the tag of the image ``docker build`` makes from ``root`` now."""
    return PREFIX + content_digest(root)[:12]
