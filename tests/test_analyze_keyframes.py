"""Each keyframe rule (seed 3.1) on constructed score sequences."""

from __future__ import annotations

import pytest
from emotiond.analyze.keyframes import (
    best_per_second,
    discard_below,
    farthest_in_time,
    pick_per_slot,
    rank_by_score,
    select_keyframes,
    time_slot,
    top_up,
)


def test_best_per_second_keeps_the_top_frame_of_each_second_in_time_order():
    times = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.25, 2.5]
    scores = [0.1, 0.9, 0.3, 0.2, 0.4, 0.8, 0.6, 0.6]
    # second 0 -> index 1, second 1 -> index 5, second 2: tie 0.6/0.6 -> the earlier, index 6
    assert best_per_second(times, scores) == [1, 5, 6]


def test_best_per_second_skips_seconds_without_frames():
    assert best_per_second([0.2, 3.1, 3.9], [0.5, 0.1, 0.7]) == [0, 2]


def test_discard_below_keeps_scores_at_or_above_the_threshold_in_order():
    scores = [0.2, 0.5, 0.49, 0.9, 0.5]
    assert discard_below([4, 0, 1, 2, 3], scores, 0.5) == [4, 1, 3]
    assert discard_below([0, 1], scores, 1.0) == []


def test_rank_by_score_is_descending_and_stable_on_ties():
    scores = [0.3, 0.8, 0.8, 0.1, 0.9]
    assert rank_by_score([0, 1, 2, 3, 4], scores) == [4, 1, 2, 0, 3]
    assert rank_by_score([2, 1], scores) == [2, 1]  # equal scores keep the given order


@pytest.mark.parametrize("t, expected", [(0.0, 0), (2.49, 0), (2.5, 1), (9.99, 3), (10.0, 3), (-1.0, 0)])
def test_time_slot_splits_the_clip_into_equal_slots(t, expected):
    assert time_slot(t, 10.0, 4) == expected


def test_pick_per_slot_takes_the_largest_difference_in_each_slot():
    times = [0.5, 1.5, 2.0, 6.0, 6.5, 9.0]
    diffs = [0.1, 0.4, 0.2, 0.05, 0.3, 0.0]
    ranked = [0, 1, 2, 3, 4, 5]
    # 2 slots of 5 s: slot 0 = {0, 1, 2} -> 1 (diff .4); slot 1 = {3, 4, 5} -> 4 (diff .3)
    assert pick_per_slot(ranked, times, diffs, 2, 10.0) == [1, 4]


def test_pick_per_slot_breaks_difference_ties_by_rank_and_leaves_empty_slots_empty():
    times = [1.0, 2.0, 3.0]
    diffs = [0.2, 0.2, 0.2]
    # rank says 2 is best: with equal differences it wins the slot
    assert pick_per_slot([2, 0, 1], times, diffs, 4, 16.0) == [2]


def test_farthest_in_time_spreads_added_frames():
    times = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    scores = [0.0] * 7
    # from frame 0, the farthest is 6, then the middle 3
    assert farthest_in_time([0], range(7), times, scores, 2) == [6, 3]


def test_top_up_fills_in_the_documented_order_and_returns_time_order():
    times = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    scores = [0.9, 0.8, 0.2, 0.7, 0.1, 0.3]
    selected = [0]
    ranked = [0, 1, 3]  # candidates above the threshold
    below = [5, 2]  # per-second winners under it
    out = top_up(selected, ranked, below, times, scores, 5)
    # slot pick, then remaining candidates 1, 3, then below-threshold by score: 5 (.3), then 2 (.2)
    assert [k.index for k in out] == [0, 1, 2, 3, 5]
    assert {k.index: k.reason for k in out} == {0: "slot", 1: "candidate", 3: "candidate", 5: "below_threshold",
                                               2: "below_threshold"}


def test_top_up_uses_other_frames_when_the_candidates_run_out():
    times = [0.0, 0.5, 1.0, 1.5, 2.0]
    scores = [0.9, 0.1, 0.1, 0.1, 0.1]
    out = top_up([0], [0], [], times, scores, 3)
    assert [(k.index, k.reason) for k in out] == [(0, "slot"), (2, "fill"), (4, "fill")]


def test_top_up_never_exceeds_n():
    out = top_up([0, 1, 2], [0, 1, 2, 3], [4], [0.0, 1.0, 2.0, 3.0, 4.0], [1.0] * 5, 2)
    assert len(out) == 2


def test_select_keyframes_applies_all_rules():
    # 8 seconds, 2 sampled frames per second; faces (high scores) in seconds 0-3 and 6
    times = [i * 0.5 for i in range(16)]
    scores = [0.9, 0.95, 0.8, 0.6, 0.7, 0.75, 0.9, 0.9, 0.0, 0.1, 0.0, 0.2, 0.85, 0.8, 0.3, 0.0]
    diffs = [0.0, 0.1, 0.5, 0.2, 0.1, 0.3, 0.05, 0.4, 0.0, 0.0, 0.0, 0.0, 0.3, 0.1, 0.0, 0.0]
    out = select_keyframes(times, scores, diffs, n=4, threshold=0.5, duration=8.0)
    # per second winners: 1, 2, 5, 6 (tie .9/.9 -> earlier), 9, 11, 12, 14
    # above .5: 1, 2, 5, 6, 12; 4 slots of 2 s: slot0 {1, 2} -> 2 (diff .5), slot1 {5, 6} -> 5 (.3),
    # slot2 {12} -> 12, slot3 has none; topped up with the best-ranked remaining candidate: 1 (.95)
    assert [(k.index, k.reason) for k in out] == [(1, "candidate"), (2, "slot"), (5, "slot"), (12, "slot")]


def test_select_keyframes_on_a_short_clip_returns_every_sampled_frame_when_n_is_larger():
    out = select_keyframes([0.0, 0.5, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], n=16, threshold=0.5, duration=1.5)
    assert sorted(k.index for k in out) == [0, 1, 2]


def test_select_keyframes_on_nothing_is_empty():
    assert select_keyframes([], [], [], 16, 0.5, 0.0) == []
