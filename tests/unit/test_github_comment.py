"""``evalharness github-comment``: the exact requests to GitHub's REST API (httpx.MockTransport), one comment
per pull request, updated in place, and errors that say what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from evalharness.cli import main
from evalharness.errors import UsageError
from evalharness.github import MARKER, MAX_BODY, GitHubError, comment_from_cli, post_comment, with_marker

TOKEN = "ghs_secret123"


class FakeGitHub:
    """Answers as api.github.com does: the pull request's comments in pages, a new comment, an edit."""

    def __init__(self, pages: list[list[dict[str, Any]]], status: int = 200) -> None:
        self.pages = pages
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status, json={"message": "Resource not accessible by integration"})
        if request.method == "GET":
            page = int(request.url.params.get("page", "1"))
            headers = {}
            if page < len(self.pages):
                headers["Link"] = (f'<https://api.github.com/repositories/1/issues/7/comments?per_page=100&page='
                                   f'{page + 1}>; rel="next"')
            return httpx.Response(200, json=self.pages[page - 1], headers=headers)
        body = json.loads(request.content)["body"]
        number = 99 if request.method == "POST" else int(request.url.path.rsplit("/", 1)[1])
        return httpx.Response(201 if request.method == "POST" else 200,
                              json={"id": number, "body": body, "html_url": f"https://github.com/o/r/pull/7#c{number}"})


def test_the_first_comment_is_created_with_the_marker(tmp_path: Path) -> None:
    github = FakeGitHub([[{"id": 1, "body": "LGTM"}]])
    posted = post_comment("### ✅ no regression\n", repo="o/r", number=7, token=TOKEN,
                          transport=httpx.MockTransport(github))
    assert (posted.action, posted.comment_id) == ("created", 99)
    get, post = github.requests
    assert (get.method, str(get.url)) == ("GET", "https://api.github.com/repos/o/r/issues/7/comments?per_page=100")
    assert (post.method, str(post.url)) == ("POST", "https://api.github.com/repos/o/r/issues/7/comments")
    assert json.loads(post.content) == {"body": f"### ✅ no regression\n\n{MARKER}\n"}
    for request in github.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Accept"] == "application/vnd.github+json"
        assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"


def test_a_later_run_edits_its_own_comment_found_on_a_later_page() -> None:
    mine = {"id": 42, "body": f"old table\n\n{MARKER}\n"}
    github = FakeGitHub([[{"id": 1, "body": "LGTM"}], [{"id": 2, "body": None}, mine]])
    posted = post_comment("### ❌ 1 regression\n", repo="o/r", number=7, token=TOKEN,
                          transport=httpx.MockTransport(github))
    assert (posted.action, posted.comment_id) == ("updated", 42)
    assert [(r.method, r.url.path) for r in github.requests] == [
        ("GET", "/repos/o/r/issues/7/comments"), ("GET", "/repositories/1/issues/7/comments"),
        ("PATCH", "/repos/o/r/issues/comments/42")]
    assert json.loads(github.requests[-1].content)["body"] == f"### ❌ 1 regression\n\n{MARKER}\n"


def test_a_refusal_says_which_request_and_what_permission(capsys: pytest.CaptureFixture[str]) -> None:
    github = FakeGitHub([[]], status=403)
    with pytest.raises(GitHubError) as caught:
        post_comment("x", repo="o/r", number=7, token=TOKEN, transport=httpx.MockTransport(github))
    message = str(caught.value)
    assert message.startswith("GitHub answered HTTP 403 to listing the comments of o/r#7: Resource not accessible")
    assert "pull-requests: write" in message and TOKEN not in message and caught.value.exit_code == 3


def test_an_unreachable_api_is_an_error_not_a_traceback() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(GitHubError, match=r"GitHub could not be reached at https://api\.github\.com"):
        post_comment("x", repo="o/r", number=7, token=TOKEN, transport=httpx.MockTransport(refuse))


def test_a_body_too_long_for_github_is_cut_and_keeps_its_marker() -> None:
    text = with_marker("| row |\n" * 20_000)
    assert len(text) <= MAX_BODY and text.rstrip().endswith(MARKER) and "cut to fit a comment" in text
    assert with_marker(f"a\n{MARKER}\n") == f"a\n{MARKER}\n"


def test_the_command_reads_repository_pull_request_and_token_from_the_actions_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "comparison.md"
    body.write_text("### table\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_REPOSITORY", "octo/repo")
    monkeypatch.setenv("GITHUB_REF", "refs/pull/12/merge")
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example.com/api/v3")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github = FakeGitHub([[]])
    posted = comment_from_cli(str(body), repo=None, number=None, token_env="GITHUB_TOKEN", api_url=None,
                              transport=httpx.MockTransport(github))
    assert posted.action == "created"
    assert str(github.requests[1].url) == "https://ghe.example.com/api/v3/repos/octo/repo/issues/12/comments"

    monkeypatch.delenv("GITHUB_TOKEN")
    assert main(["github-comment", str(body)]) == 2
    assert "the environment variable GITHUB_TOKEN holds no token" in capsys.readouterr().err
    monkeypatch.setenv("GITHUB_REF", "refs/heads/main")
    with pytest.raises(UsageError, match="--pr NUMBER is needed"):
        comment_from_cli(str(body), repo=None, number=None, token_env="GITHUB_TOKEN", api_url=None)
    with pytest.raises(UsageError, match=r"missing\.md: cannot read the comment body"):
        comment_from_cli(str(tmp_path / "missing.md"), repo="o/r", number=1, token_env="GITHUB_TOKEN", api_url=None)
