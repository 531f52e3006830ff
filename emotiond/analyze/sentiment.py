"""Positive / neutral / negative sentiment from the 7 expression classes: the one mapping analyze uses.

The seed scores group sentiment in three classes (GroupEmoW: positive, neutral, negative); our
expression and audio models speak the FER2013 seven. The mapping sums probabilities:

    positive = happy + surprise
    neutral  = neutral
    negative = angry + disgust + fear + sad

Surprise is counted as positive because in a group/party scene it mostly goes with pleasant arousal;
this is a choice, not a measurement. Caveat: four classes feed "negative" and two feed "positive", so
a flat (uninformative) 7-class output maps to 4/7 negative — judge weak evidence with that in mind.
Labels the mapping does not know (e.g. "calm" before an audio model's own label map) count nowhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

SENTIMENTS: tuple[str, ...] = ("positive", "neutral", "negative")
SENTIMENT_OF: Mapping[str, str] = {
    "happy": "positive",
    "surprise": "positive",
    "neutral": "neutral",
    "angry": "negative",
    "disgust": "negative",
    "fear": "negative",
    "sad": "negative",
}
NEUTRAL = np.array([0.0, 1.0, 0.0])


def sentiment_matrix(labels: Sequence[str]) -> np.ndarray:
    """A (len(labels), 3) 0/1 matrix; ``probs @ matrix`` gives positive/neutral/negative mass."""
    m = np.zeros((len(labels), len(SENTIMENTS)))
    for i, label in enumerate(labels):
        target = SENTIMENT_OF.get(label)
        if target is not None:
            m[i, SENTIMENTS.index(target)] = 1.0
    return m


def to_sentiment(labels: Sequence[str], probs: np.ndarray) -> np.ndarray:
    """Map class probabilities to a (positive, neutral, negative) distribution that sums to 1.

    Mass on unmapped labels is dropped and the rest renormalised; no mapped mass at all gives neutral.
    """
    p = np.clip(np.asarray(probs, dtype=np.float64).reshape(-1), 0.0, None)
    s = p @ sentiment_matrix(labels)
    total = float(s.sum())
    return s / total if total > 0 else NEUTRAL.copy()


def valence(sentiment: np.ndarray) -> float:
    """Signed valence in [-1, 1]: positive mass minus negative mass."""
    s = np.asarray(sentiment, dtype=np.float64)
    return float(s[0] - s[2])


def intensity(sentiment: np.ndarray) -> float:
    """How strongly a frame leans to one polar side: max(positive, negative), in [0, 1].

    This is the keyframe score (seed 3.1 scores "emotional intensity"): a neutral frame scores 0.
    """
    s = np.asarray(sentiment, dtype=np.float64)
    return float(max(s[0], s[2]))


def label_of(sentiment: np.ndarray) -> str:
    return SENTIMENTS[int(np.argmax(sentiment))]
