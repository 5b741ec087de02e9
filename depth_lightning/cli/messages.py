"""One line for an error in the command line or the configs, instead of Hydra's report."""

from __future__ import annotations

import re


def hydra_message(e: BaseException) -> str:
    """One line for a Hydra or OmegaConf error about the command line or the configs."""
    from hydra.errors import MissingConfigException, OverrideParseException

    text = str(e)
    if isinstance(e, MissingConfigException):
        missing = re.search(r"Could not find '([^']+)'", text)
        options = re.findall(r"^\t(\S+)$", text, flags=re.M)
        where = missing.group(1) if missing else text.splitlines()[0]
        group, _, name = where.rpartition("/")
        return (f"{group}={name}" if group else where) + ": no such option" + (
            f" (choose from {', '.join(o for o in options if o != 'common')})" if options else "")
    if isinstance(e, OverrideParseException):
        return f"{e.override}: not an override of the form key=value ({text.splitlines()[0]})"
    if isinstance(e, OSError) and e.filename:
        return f"paths.log_dir: cannot create {e.filename} ({e.strerror})"
    override = re.match(r"Could not override '([^']+)'", text)
    if override and "+" in text:
        key = override.group(1)
        return f"{key}: not a setting of this command (add a new one with +{key}=...)"
    lines = []
    while e is not None:
        lines += [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        e = e.__cause__
    return "; ".join(dict.fromkeys(ln for ln in lines if not ln.startswith(
        ("full_key:", "object_type", "Config search path", "provider="))))


def yaml_message(e: Exception) -> str:
    """One line for a config file that is not valid YAML: the file, line and column where the
    parser stopped, what it expected, and where the construct it was reading began."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    if mark is None:
        return f"a config file is not valid YAML ({' '.join(str(e).split())})"
    start = getattr(e, "context_mark", None)
    began = f" {e.context} from line {start.line + 1}, column {start.column + 1}" \
        if start is not None and getattr(e, "context", None) else ""
    problem = getattr(e, "problem", None) or "a syntax error"
    return (f"{mark.name}: line {mark.line + 1}, column {mark.column + 1}: not valid YAML "
            f"({problem}{began})")
