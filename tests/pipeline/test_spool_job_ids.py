"""Untrusted job ids never reach a path or key; spool files stay private and never outlive a task."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest
from privacy_pipeline.job_ids import checked_job_id
from privacy_pipeline.spool import SPOOL_PREFIX, spool_file, sweep_stale_spools

# ------------------------------------------------------------------------------------------- job ids


@pytest.mark.parametrize(
    "job_id", ["6fc09b53-c24f-4a6c-9ca2-c6076b0842b6", "DI-3f9d2e11-4c7a-481f-8f58-f49a113fd158", "a", "A_1"]
)
def test_adobe_job_ids_are_accepted_unchanged(job_id):
    assert checked_job_id(job_id) == job_id


@pytest.mark.parametrize(
    "job_id",
    ["", "..", "../x", "a/../../x", "/etc/passwd", "C:\\x", "a\\b", "a/b", ".hidden", "a.zip", "-rf", "_x",
     "a\x00b", "a\nb", "x" * 129, "ｘ", "jöb", "a b", "a%2F..", "a\u200bb", "6fc09b53\n"],
)
def test_unsafe_job_ids_are_refused_without_echoing_them(job_id):
    with pytest.raises(ValueError) as raised:
        checked_job_id(job_id)
    assert job_id not in str(raised.value) or not job_id


def test_a_job_id_that_is_not_a_string_is_refused():
    with pytest.raises(ValueError):
        checked_job_id(12345)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- spool


def test_spool_is_private_and_removed_on_return(tmp_path):
    with spool_file(tmp_path) as spool:
        spool.handle.write(b"personal data")
        assert spool.folder.name.startswith(SPOOL_PREFIX) and spool.folder.parent == tmp_path
        assert stat.S_IMODE(spool.folder.stat().st_mode) == 0o700
        assert stat.S_IMODE(spool.path.stat().st_mode) == 0o600
    assert not spool.folder.exists()


def test_spool_is_removed_when_the_body_raises(tmp_path):
    with pytest.raises(RuntimeError), spool_file(tmp_path) as spool:
        spool.handle.write(b"x")
        raise RuntimeError("download failed")
    assert list(tmp_path.iterdir()) == []


def test_spool_refuses_a_name_with_a_path(tmp_path):
    with pytest.raises(ValueError), spool_file(tmp_path, name="../x"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_killed_task_s_spool_is_swept_at_the_next_start_and_a_live_one_is_not(tmp_path):
    child = textwrap.dedent(
        """
        import sys, time
        from privacy_pipeline.spool import spool_file
        with spool_file(sys.argv[1]) as spool:
            spool.handle.write(b"PK" + bytes(1024 * 1024))
            spool.handle.flush()
            print(spool.folder, flush=True)
            time.sleep(60)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", child, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        left = process.stdout.readline().strip()
    finally:
        os.kill(process.pid, signal.SIGKILL)  # no cleanup runs: the folder stays, as after a worker crash
        process.wait(timeout=30)
    assert os.path.isdir(left) and os.listdir(left) == ["content.zip"]
    with spool_file(tmp_path) as live:
        # The killed task's process is gone: its folder goes at the next start, whatever its age;
        # the live task's folder (its process runs and it keeps changing) stays.
        removed = sweep_stale_spools(tmp_path, max_age_seconds=3600)
        assert [str(path) for path in removed] == [left]
        assert live.path.exists() and not os.path.exists(left)
        later = time.time() + 3601  # the clock moves instead of the test sleeping
        os.utime(live.folder, (later, later))
        os.utime(live.path, (later, later))
        assert sweep_stale_spools(tmp_path, max_age_seconds=3600, now=later + 1) == []


def test_sweep_leaves_other_names_links_and_other_owners_alone(tmp_path):
    (tmp_path / "unrelated").mkdir()
    (tmp_path / f"{SPOOL_PREFIX}file").write_bytes(b"not a folder")
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / f"{SPOOL_PREFIX}link").symlink_to(target)
    legacy = tmp_path / "privacy-zip-abc"
    legacy.mkdir()
    expected_left = ["unrelated", f"{SPOOL_PREFIX}file", f"{SPOOL_PREFIX}link", "target"]
    if os.geteuid() == 0:  # only root can give a folder to another user
        foreign = tmp_path / f"{SPOOL_PREFIX}foreign"
        foreign.mkdir()
        os.chown(foreign, os.geteuid() + 4242, -1)
        expected_left.append(foreign.name)
    removed = sweep_stale_spools(tmp_path, max_age_seconds=0, now=time.time() + 10)
    assert removed == [legacy]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(expected_left)


def test_sweep_of_a_missing_root_is_a_no_op(tmp_path):
    assert sweep_stale_spools(tmp_path / "missing") == []
