"""bench/criu_floor.py: the ratios and targets of make bench-hibernation, and the step that a
missed target names."""

from bench.criu_floor import judge, table, targets


def entry(hibernate: dict, restore: dict, dump_to_volume: float = 10.0) -> dict:
    return {"image_mb": 64.0, "pause_s_median": 0.02, "volume_raw_mb_per_s": {"write": 20.0, "read": 10.0},
            "criu_alone": {"image_mb": 64.0, "criu_dump_to_tmpfs_s": 6.0, "criu_dump_to_volume_s": dump_to_volume,
                           "copy_tmpfs_to_volume_s": 3.0, "sha256_in_ram_s": 0.5},
            "hibernate_steps": hibernate, "restore_steps": restore}


def test_a_change_close_to_criu_alone_meets_its_targets():
    judged = judge(entry({"pause": 0.02, "criu dump": 9.0, "docker archive and runtime": 3.0},
                         {"open": 1.0, "criu restore": 8.0, "docker archive and runtime": 2.0}))
    assert judged["ratios"]["hibernate_vs_criu_alone"] == 1.2 and judged["ratios"]["restore_vs_criu_alone"] == 1.38
    assert judged["held_back_by"] == {}
    assert all(targets({"64": judged}).values())


def test_a_missed_target_names_the_costliest_step_that_is_not_criu():
    judged = judge(entry({"criu dump": 9.0, "docker archive and runtime": 20.0, "verify": 5.0},
                         {"open": 1.0, "verify": 7.0, "criu restore": 8.0, "docker archive and runtime": 6.0}))
    assert judged["held_back_by"] == {"hibernate": {"step": "docker archive and runtime", "s": 20.0},
                                      "restore": {"step": "verify", "s": 7.0}}
    missed = targets({"64": judged})
    assert not missed["hibernate_within_1_5_x_criu_alone"] and not missed["restore_within_1_5_x_criu_alone"]
    row = "| 64 MB | 64.0 MiB | hibernate | 34.0 s | criu dump 9.00, docker archive and runtime 20.00"
    assert row in table({"64": judged})


def test_the_rate_targets_bind_only_where_criu_alone_reaches_half_the_raw_rate():
    slow_criu = judge(entry({"criu dump": 30.0}, {"criu restore": 30.0}, dump_to_volume=30.0))
    assert slow_criu["ratios"]["criu_alone_vs_raw_write"] < 0.5  # criu alone: 2.1 MB/s of 20
    assert targets({"64": slow_criu})["checkpoint_ge_half_raw_write_where_criu_reaches_it"]
    slow_flush = judge(entry({"criu dump": 3.0, "flush": 4.0}, {"criu restore": 5.0}, dump_to_volume=5.0))
    assert slow_flush["ratios"]["criu_alone_vs_raw_write"] >= 0.5
    assert slow_flush["ratios"]["checkpoint_vs_raw_write"] < 0.5
    assert not targets({"64": slow_flush})["checkpoint_ge_half_raw_write_where_criu_reaches_it"]
    # The read-back (verify) is not the checkpoint's: it counts against the 1.5 x, not the write rate.
    quick = judge(entry({"criu dump": 2.0, "flush": 2.0, "verify": 9.0}, {"criu restore": 5.0}, dump_to_volume=5.0))
    assert targets({"64": quick})["checkpoint_ge_half_raw_write_where_criu_reaches_it"]
    assert quick["held_back_by"]["hibernate"] == {"step": "verify", "s": 9.0}
