"""Sentiment-based keyframe selection (seed 3.1), one small pure function per rule.

Inputs are per-sampled-frame arrays: ``times`` (seconds), ``scores`` (sentiment intensity, see
``sentiment.intensity``) and ``diffs`` (mean absolute grey-level change from the previous decoded
frame). Every function returns indices into those arrays, so each rule is tested on made-up sequences.

The rules, in the seed's order:
1. ``best_per_second``: keep the highest-scoring frame of each second;
2. ``discard_below``: drop candidates scoring under the sentiment threshold;
3. ``rank_by_score``: order the candidates by score (ties: earlier first);
4. ``pick_per_slot``: split the clip into N equal time slots and take, per slot, the candidate with the
   largest inter-frame difference (ties: the better-ranked one);
5. ``top_up``: when fewer than N survive, add the remaining ranked candidates, then the per-second
   winners that fell under the threshold (by score), then any other sampled frame, farthest in time
   from those already chosen first, so a short clip still gets N frames spread over its length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Keyframe:
    index: int  # into the sampled-frame arrays
    reason: str  # "slot", "candidate", "below_threshold" or "fill"


def best_per_second(times: Sequence[float], scores: Sequence[float]) -> list[int]:
    """Index of the highest-scoring frame in each whole second (ties: the earliest), in time order."""
    best: dict[int, int] = {}
    for i, (t, s) in enumerate(zip(times, scores)):
        second = int(np.floor(t))
        if second not in best or s > scores[best[second]]:
            best[second] = i
    return [best[k] for k in sorted(best)]


def discard_below(candidates: Sequence[int], scores: Sequence[float], threshold: float) -> list[int]:
    """Candidates whose score reaches the threshold (order kept)."""
    return [i for i in candidates if scores[i] >= threshold]


def rank_by_score(candidates: Sequence[int], scores: Sequence[float]) -> list[int]:
    """Candidates by descending score; equal scores keep their original (time) order."""
    return sorted(candidates, key=lambda i: -scores[i])


def time_slot(t: float, duration: float, n: int) -> int:
    """Which of n equal slots of [0, duration) time t falls in (clamped to the last slot)."""
    if duration <= 0:
        return 0
    return int(min(n - 1, max(0, np.floor(t / duration * n))))


def pick_per_slot(ranked: Sequence[int], times: Sequence[float], diffs: Sequence[float],
                  n: int, duration: float) -> list[int]:
    """Per time slot, the ranked candidate with the largest inter-frame difference; in time order."""
    chosen: dict[int, int] = {}
    for i in ranked:  # better-ranked first, so a tie on difference keeps the better score
        slot = time_slot(times[i], duration, n)
        if slot not in chosen or diffs[i] > diffs[chosen[slot]]:
            chosen[slot] = i
    return sorted(chosen.values(), key=lambda i: times[i])


def farthest_in_time(selected: Sequence[int], pool: Sequence[int], times: Sequence[float],
                     scores: Sequence[float], k: int) -> list[int]:
    """Greedily add k frames from pool, each the farthest in time from all chosen (ties: higher score)."""
    chosen = list(selected)
    remaining = [i for i in pool if i not in set(chosen)]
    added: list[int] = []
    while remaining and len(added) < k:
        def gap(i: int) -> float:
            return min((abs(times[i] - times[j]) for j in chosen), default=float("inf"))
        best = max(remaining, key=lambda i: (gap(i), scores[i], -i))
        chosen.append(best)
        added.append(best)
        remaining.remove(best)
    return added


def top_up(selected: Sequence[int], ranked: Sequence[int], below: Sequence[int], times: Sequence[float],
           scores: Sequence[float], n: int) -> list[Keyframe]:
    """Fill ``selected`` up to n keyframes (see the module docstring for the order); in time order."""
    out = [Keyframe(i, "slot") for i in selected]
    taken = set(selected)
    for reason, pool in (("candidate", ranked), ("below_threshold", rank_by_score(below, scores))):
        for i in pool:
            if len(out) >= n:
                break
            if i not in taken:
                out.append(Keyframe(i, reason))
                taken.add(i)
    if len(out) < n:
        everything = rank_by_score(range(len(times)), scores)
        for i in farthest_in_time(sorted(taken), everything, times, scores, n - len(out)):
            out.append(Keyframe(i, "fill"))
    return sorted(out[:n], key=lambda k: times[k.index])


def select_keyframes(times: Sequence[float], scores: Sequence[float], diffs: Sequence[float],
                     n: int, threshold: float, duration: float) -> list[Keyframe]:
    """All five rules in order: at most n keyframes (fewer only if the clip has fewer sampled frames)."""
    if len(times) == 0 or n <= 0:
        return []
    per_second = best_per_second(times, scores)
    kept = discard_below(per_second, scores, threshold)
    below = [i for i in per_second if i not in set(kept)]
    ranked = rank_by_score(kept, scores)
    slotted = pick_per_slot(ranked, times, diffs, n, duration)
    return top_up(slotted, ranked, below, times, scores, n)
