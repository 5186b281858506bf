"""Results travel: docs/sharing.md's commands against a real S3-compatible server
(SeaweedFS on 127.0.0.1), a bare git repository as the git remote, and a colleague's clone."""

import subprocess
import time
from pathlib import Path

import pytest
from conftest import PipelineRepo, documented_commands


@pytest.mark.e2e
def test_readme_commands_keep_the_credentials_in_config_local_only(shared_project):
    author, s3 = shared_project.author, shared_project.s3
    local = (author.root / ".dvc" / "config.local").read_text()
    assert s3.key in local and s3.secret in local
    committed = (author.root / ".dvc" / "config").read_text()
    assert "url = s3://dvc/mnist-vae-dvc" in committed and s3.endpoint in committed
    assert author.run("git", "check-ignore", ".dvc/config.local").returncode == 0
    assert author.git_status() == []  # pushed, nothing left over
    # Nowhere in the history that reached the git remote.
    origin = PipelineRepo(shared_project.origin)
    revisions = origin.run("git", "rev-list", "--all").stdout.split()
    for secret in (s3.key, s3.secret):
        found = origin.run("git", "grep", "-F", secret, *revisions, check=False)
        assert found.returncode == 1, found.stdout  # 1: no match


@pytest.mark.e2e
def test_a_fresh_clone_pulls_data_and_models_from_s3_and_is_up_to_date(shared_project, tmp_path):
    assert any(key.startswith("mnist-vae-dvc/") for key in shared_project.s3.keys("dvc"))
    clone = shared_project.clone(tmp_path / "colleague")
    assert not (clone.root / "models" / "vae.pt").exists()
    clone.run("dvc", "pull")
    assert "Data and pipelines are up to date." in clone.run("dvc", "status").stdout
    author = shared_project.author.outputs()
    assert clone.outputs() == author  # data, models, metrics, plots: the same bytes


@pytest.mark.e2e
def test_the_model_artifact_is_fetched_by_name_through_the_remote(shared_project, tmp_path):
    """README's lines: a version tag pushed, then `dvc artifacts get` from the bare git
    repository, which has no DVC cache: the file comes from S3."""
    s3 = shared_project.s3
    url = {"https://github.com/YOU/mnist-vae-dvc": str(shared_project.origin)}
    tag, push, get = documented_commands("docs/sharing.md", "With a DVC remote", url, block=1)
    shared_project.author.run(*tag)
    shared_project.author.run(*push)
    elsewhere = PipelineRepo(tmp_path / "elsewhere")
    elsewhere.root.mkdir()
    elsewhere.run(*get, AWS_ACCESS_KEY_ID=s3.key, AWS_SECRET_ACCESS_KEY=s3.secret)
    model = (shared_project.author.root / "models" / "vae.pt").read_bytes()
    assert (elsewhere.root / "vae.pt").read_bytes() == model


def _connections_to(port: int) -> set[str]:
    """The local ends of this machine's established TCP connections to 127.0.0.1:`port`."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if state == "01" and int(remote.split(":")[1], 16) == port:  # 01: ESTABLISHED
            found.add(local)
    return found


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_a_push_the_server_dies_in_completes_when_pushed_again(shared_project, reproduced_repo):
    """The server is frozen (SIGSTOP) so that `dvc push` is surely under way, talking to it,
    when it is killed (SIGKILL). After a restart on the same data, the same push completes,
    and a fresh clone pulls every output byte for byte."""
    s3, repo = shared_project.s3, reproduced_repo
    repo.run("dvc", "remote", "add", "-d", "storage", "s3://dvc/cut-off")
    repo.run("dvc", "remote", "modify", "storage", "endpointurl", s3.endpoint)
    repo.commit("DVC remote: the S3 server")
    for words in shared_project.credentials:
        repo.run(*words)
    outputs, cache = repo.outputs(), sorted((repo.root / ".dvc" / "cache").rglob("*"))
    port, earlier = s3.ports["s3.port"], _connections_to(s3.ports["s3.port"])
    push = None
    try:
        s3.freeze()
        push = subprocess.Popen(["dvc", "push"], cwd=repo.root, env=repo.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 120  # only a hang gets there
        while not _connections_to(port) - earlier and push.poll() is None:
            assert time.monotonic() < deadline, "dvc push never connected"
            time.sleep(0.05)
        s3.kill()
        _, said = push.communicate(timeout=600)
    except BaseException:  # a hang, or the deadline's assertion: no `dvc push` left behind
        if push is not None:
            push.kill()
            push.communicate()
        raise
    finally:
        if s3.process is not None:
            s3.kill()
        s3.start()
    assert push.returncode != 0, said
    assert [line for line in said.splitlines() if line.startswith("ERROR")], said
    assert repo.outputs() == outputs  # the workspace and the cache as they were
    assert sorted((repo.root / ".dvc" / "cache").rglob("*")) == cache

    repo.run("dvc", "push")
    clone = PipelineRepo(repo.root.parent / "clone")
    subprocess.run(["git", "clone", "-q", str(repo.root), str(clone.root)], check=True,
                   capture_output=True)  # fmt: skip
    for words in shared_project.credentials:
        clone.run(*words)
    clone.run("dvc", "pull")
    assert clone.outputs() == outputs
    assert "Data and pipelines are up to date." in clone.run("dvc", "status").stdout
