"""``evalharness github-comment BODY_FILE``: post a pull request comment, or update the one posted before.

The comment carries a hidden marker (an HTML comment GitHub does not show); a later call finds the comment with
the same marker among the pull request's comments and edits it, so a pull request keeps one evalharness comment
however often its checks run. The token is read from an environment variable and sent only in the
``Authorization`` header. ``transport`` lets tests see the exact requests (httpx.MockTransport).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from evalharness.errors import EvalHarnessError, UsageError

API_URL = "https://api.github.com"
MARKER = "<!-- evalharness-comment -->"
#: GitHub refuses a comment body longer than this.
MAX_BODY = 65_536


class GitHubError(EvalHarnessError):
    """GitHub refused a request or could not be reached; the message says which, with GitHub's own words
    (exit 3, as a run that could not complete)."""


@dataclass(frozen=True)
class Posted:
    action: str  # "created" or "updated"
    url: str
    comment_id: int


def with_marker(body: str, marker: str = MARKER) -> str:
    """``body`` ending with ``marker`` (once), cut to fit GitHub's limit."""
    text = body if marker in body else body.rstrip() + "\n\n" + marker + "\n"
    if len(text) > MAX_BODY:
        note = "\n\n… (cut to fit a comment; the full text is in the job summary)\n\n" + marker + "\n"
        text = text.replace(marker, "")[: MAX_BODY - len(note)] + note
    return text


def _check(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 400:
        try:
            said = response.json().get("message", response.text)
        except ValueError:
            said = response.text
        hint = ""
        if response.status_code in (401, 403):
            hint = " (the token needs the pull-requests: write or issues: write permission)"
        raise GitHubError(f"GitHub answered HTTP {response.status_code} to {what}: {str(said)[:300]}{hint}")
    return response.json()


def _comments(client: httpx.Client, repo: str, number: int) -> Iterator[dict[str, Any]]:
    url: str | None = f"/repos/{repo}/issues/{number}/comments"
    params: dict[str, Any] | None = {"per_page": 100}
    while url:
        response = client.get(url, params=params)
        yield from _check(response, f"listing the comments of {repo}#{number}")
        url = response.links.get("next", {}).get("url")
        params = None  # the next link carries its own query


def post_comment(body: str, *, repo: str, number: int, token: str, api_url: str = API_URL,
                 marker: str = MARKER, transport: httpx.BaseTransport | None = None) -> Posted:
    """Create the pull request's comment, or update the earlier one that carries ``marker``."""
    if "/" not in repo:
        raise UsageError(f"--repo {repo!r}: want OWNER/NAME")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "evalharness"}
    text = with_marker(body, marker)
    try:
        return _post(text, repo, number, marker, httpx.Client(base_url=api_url.rstrip("/"), headers=headers,
                                                              timeout=30.0, transport=transport))
    except httpx.HTTPError as exc:
        raise GitHubError(f"GitHub could not be reached at {api_url}: {exc}") from exc


def _post(text: str, repo: str, number: int, marker: str, client: httpx.Client) -> Posted:
    with client:
        mine = next((c for c in _comments(client, repo, number) if marker in (c.get("body") or "")), None)
        if mine is not None:
            data = _check(client.patch(f"/repos/{repo}/issues/comments/{mine['id']}", json={"body": text}),
                          f"updating comment {mine['id']}")
            return Posted("updated", str(data.get("html_url", "")), int(data["id"]))
        data = _check(client.post(f"/repos/{repo}/issues/{number}/comments", json={"body": text}),
                      f"commenting on {repo}#{number}")
        return Posted("created", str(data.get("html_url", "")), int(data["id"]))


def comment_from_cli(body_file: str, *, repo: str | None, number: int | None, token_env: str,
                     api_url: str | None, transport: httpx.BaseTransport | None = None) -> Posted:
    """The command's arguments, with GitHub Actions' environment as defaults (``GITHUB_REPOSITORY``,
    ``GITHUB_API_URL``, the pull request number from ``GITHUB_REF`` ``refs/pull/N/merge``)."""
    try:
        body = open(body_file, encoding="utf-8").read()  # noqa: SIM115 - read at once
    except OSError as exc:
        raise UsageError(f"{body_file}: cannot read the comment body ({exc.strerror})") from exc
    repo = repo or os.environ.get("GITHUB_REPOSITORY")
    if not repo:
        raise UsageError("--repo OWNER/NAME is needed (GITHUB_REPOSITORY is not set)")
    if number is None:
        ref = os.environ.get("GITHUB_REF", "")
        parts = ref.split("/")
        if len(parts) >= 3 and parts[:2] == ["refs", "pull"] and parts[2].isdigit():
            number = int(parts[2])
        else:
            raise UsageError("--pr NUMBER is needed (GITHUB_REF is not a pull request's ref)")
    token = os.environ.get(token_env, "")
    if not token:
        raise UsageError(f"the environment variable {token_env} holds no token; set it to a GitHub token "
                         "(in a workflow: env: {" + f"{token_env}: " + "${{ github.token }}})")
    return post_comment(body, repo=repo, number=number, token=token,
                        api_url=api_url or os.environ.get("GITHUB_API_URL") or API_URL, transport=transport)
