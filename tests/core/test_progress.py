import logging

from core.progress import LineProgress, progress_bar


def test_line_progress_logs_each_tenth_and_the_end(caplog):
    caplog.set_level(logging.INFO, logger="dcign")
    bar = LineProgress(total=95, desc="train faces-dcign", unit="step")
    for _ in range(95):
        bar.update(1)
        bar.set_postfix(loss="1.0")
    lines = [r.getMessage() for r in caplog.records]
    # every 10 steps (rounded tenth of 95) and once at the end
    assert len(lines) == 10
    assert lines[0].startswith("train faces-dcign: 10/95 step (11%)")
    assert lines[-1].startswith("train faces-dcign: 95/95 step (100%)")
    assert "loss=1.0" in lines[-1]


def test_line_progress_resumed_and_big_updates(caplog):
    caplog.set_level(logging.INFO, logger="dcign")
    bar = LineProgress(total=1000, desc="render faces", unit="img", initial=480)
    bar.update(15)   # 495: below the next tenth (500)
    bar.update(320)  # 815: crosses 500..800 at once -> one line
    bar.update(185)  # 1000
    lines = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[1].split()[0] for m in lines] == ["815/1000", "1000/1000"]


def test_progress_bar_kinds():
    assert isinstance(progress_bar(10, "x", "step", live=False), LineProgress)
    quiet = progress_bar(10, "x", "step", live=False, enabled=False)
    assert not isinstance(quiet, LineProgress) and quiet.disable
    quiet.close()
