"""toskit/node/tosnode/steps.py: the per-step timing of hibernate and restore, and criu's own time
read from its log across one runtime call."""

import os
import time

import pytest

from toskit.node.tosnode.steps import DUMP_FINISHED, RESTORE_FINISHED, CriuLog, Steps, parse_line

DUMP_LOG = b"""(00.000000) Version: 4.1.1 (gitid 0)
(00.004210) Dumping processes (pid: 4242 comm: tos-session-age)
(03.512000) Writing image inventory
(07.250413) Dumping finished successfully
"""
RESTORE_LOG = b"""(00.000000) Version: 4.1.1 (gitid 0)
(00.994499) Forking task with 1 pid (flags 0x7c028000)
(11.020000) Restore finished successfully. Tasks resumed.
"""


def test_steps_line_round_trips_and_split_keeps_the_whole():
    steps = Steps("hibernate", "acme")
    with steps.step("pause"):
        pass
    steps.seconds["checkpoint"] = 10.0
    steps.split("checkpoint", "criu dump", 7.25, "runc")
    found = parse_line(f"acme: hibernated to hib-1\n{steps.line()}", "hibernate")
    assert list(found) == ["pause", "criu dump", "runc"]
    assert found["criu dump"] + found["runc"] == pytest.approx(10.0)


def test_a_split_without_criu_time_leaves_the_step_whole():
    steps = Steps("restore", "acme")
    steps.seconds["start"] = 12.0
    steps.split("start", "criu restore", None, "docker archive and runtime")
    assert steps.seconds == {"start": 12.0}


def test_parse_line_names_what_is_missing():
    with pytest.raises(ValueError, match="no 'restore steps' line"):
        parse_line("acme: restored from hib-1 in 9.0 s", "restore")


@pytest.mark.parametrize("after, finished, expected", [
    (DUMP_LOG, DUMP_FINISHED, 7.250413),
    (RESTORE_LOG, RESTORE_FINISHED, 11.02),
    (DUMP_LOG.replace(b"Dumping finished successfully", b"Error (criu/cr-dump.c): failed"), DUMP_FINISHED, None),
    (RESTORE_LOG, DUMP_FINISHED, None),  # another criu took the log meanwhile
])
def test_criu_log_reads_the_run_written_during_the_call(tmp_path, after, finished, expected):
    log = tmp_path / "tos-criu.log"
    watch = CriuLog(log)
    log.write_bytes(after)
    assert watch.seconds(finished) == expected


def test_a_log_not_written_during_the_call_is_an_earlier_run(tmp_path):
    log = tmp_path / "tos-criu.log"
    log.write_bytes(DUMP_LOG)
    os.utime(log, (time.time() - 60, time.time() - 60))
    assert CriuLog(log).seconds(DUMP_FINISHED) is None


def test_no_criu_log_gives_no_time(tmp_path):
    assert CriuLog(tmp_path / "absent.log").seconds(DUMP_FINISHED) is None
