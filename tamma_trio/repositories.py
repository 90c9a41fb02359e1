"""Repository names as each forge allows them, and the directory name a workspace gives one.

GitHub names a repository ``owner/name``; GitLab names a project by its full path, which may run
through subgroups (``group/subgroup/project``). Both end up in task payloads, subjects and
workspace directories, so a name is checked against the rules of the forge it comes from before
it is stored, and no accepted name can climb out of a directory (no ``.``/``..``/empty segment,
no separator inside a segment).
"""

from __future__ import annotations

import re

# GitHub: an owner is 1-39 letters, digits or '-'; a name 1-100 letters, digits, '.', '_' or
# '-', never "." or "..".
_GITHUB_SHAPE = re.compile(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")
GITHUB_RULE = (
    "must be owner/name: an owner of 1-39 letters, digits or '-', "
    "a name of 1-100 letters, digits, '.', '_' or '-' (not '.' or '..')"
)

# GitLab: each segment (group, subgroups, project) holds letters, digits, '_', '-' and '.', starts
# with a letter, digit or '_' (so never "." or ".."), and does not end in '.', '.git' or
# '.atom'. A group nests at most 20 subgroups: 22 segments at most.
_GITLAB_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")
_GITLAB_BAD_ENDINGS = (".", ".git", ".atom")
GITLAB_MAX_SEGMENTS = 22
GITLAB_MAX_LENGTH = 1024
GITLAB_RULE = (
    "must be a GitLab full path group/project or group/subgroup/.../project: 2-22 segments of "
    "letters, digits, '_', '-' or '.', each starting with a letter, digit or '_' and not ending "
    "in '.', '.git' or '.atom'"
)


def is_github_name(value: str) -> bool:
    return bool(_GITHUB_SHAPE.fullmatch(value)) and value.split("/")[1] not in (".", "..")


def is_gitlab_path(value: str) -> bool:
    segments = value.split("/")
    return (
        len(value) <= GITLAB_MAX_LENGTH
        and 2 <= len(segments) <= GITLAB_MAX_SEGMENTS
        and all(_gitlab_segment(segment) for segment in segments)
    )


def _gitlab_segment(segment: str) -> bool:
    return bool(_GITLAB_SEGMENT.fullmatch(segment)) and not segment.endswith(_GITLAB_BAD_ENDINGS)


def check_github(value: str) -> str:
    """``value`` when GitHub allows it as ``owner/name``; ValueError naming the rule otherwise."""
    if not is_github_name(value):
        raise ValueError(GITHUB_RULE)
    return value


def check_gitlab(value: str) -> str:
    """``value`` when GitLab allows it as a project's full path; ValueError otherwise."""
    if not is_gitlab_path(value):
        raise ValueError(GITLAB_RULE)
    return value


def check_any(value: str) -> str:
    """A name some forge allows: what a stored payload may hold. The door an event came through
    checks it against its own forge's rule (``check_for``)."""
    if not (is_github_name(value) or is_gitlab_path(value)):
        raise ValueError(f"{GITHUB_RULE}; or on GitLab, {GITLAB_RULE}")
    return value


def check_for(forge_kind: str, value: str) -> str:
    """The rule of the configured forge: GitLab's full paths on GitLab, ``owner/name`` on GitHub
    and the local forge (which takes GitHub's shape)."""
    return check_gitlab(value) if forge_kind == "gitlab" else check_github(value)


def workspace_dirname(repository: str) -> str:
    """One directory name per repository, never shared by two and never a path.

    ``owner/name`` keeps its historical ``owner__name`` (so existing clones stay where they are)
    whenever that spelling cannot be another repository's: GitHub owners hold no '_', so the
    first "__" splits it back. Anything else (subgroups, a namespace with '_') joins its
    segments with '+', which no GitHub or GitLab name contains, so the two spellings never meet.
    """
    segments = repository.split("/")
    if any(segment in ("", ".", "..") or "\\" in segment for segment in segments):
        raise ValueError(f"repository {repository!r} cannot name a directory")
    if len(segments) == 2 and "_" not in segments[0]:
        return "__".join(segments)
    return "+".join(segments)
