"""Results travel: README's "Share results" commands against a real S3-compatible server
(SeaweedFS on 127.0.0.1), a bare git repository as the git remote, and a colleague's clone."""

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
