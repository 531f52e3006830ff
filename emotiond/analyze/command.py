"""`emotiond analyze CLIP`: run the analysis, write the JSON and/or the HTML report, summarise.

Exit statuses (sysexits): 0 done, 65 unreadable/corrupt clip or audio file, 66 clip missing,
73 an output file cannot be written; model (69) and config (78) errors come from the CLI's handler.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from emotiond.analyze.clip import analyze_clip
from emotiond.analyze.progress import Progress
from emotiond.analyze.report import render_report
from emotiond.analyze.video import ClipError
from emotiond.config import Config
from emotiond.exitcodes import EX_CANTCREAT, EX_OK, EX_USAGE


def _write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    Path(path).write_text(text, encoding="utf-8")


def summary(result: dict[str, Any]) -> str:
    feat, score = result["fusion"]["feature_level"], result["fusion"]["score_level"]
    parts = [(f"{result['clip']['path']}: {feat['label']} (feature level {feat['probabilities'][feat['label']]:.0%}, "
              f"valence {feat['valence']:+.2f})")]
    if score.get("available"):
        parts.append(f"score level {score['label']} (valence {score['valence']:+.2f})")
    parts.append(f"{len(result['keyframes'])} keyframes, {len(result['faces'])} faces")
    return "; ".join(parts)


def run(args: Any, config: Config) -> int:
    """args: clip, audio, keyframes, json, report (argparse namespace from emotiond.cli)."""
    if args.keyframes is not None and not 1 <= args.keyframes <= 256:
        print("emotiond: error: --keyframes must be from 1 to 256", file=sys.stderr)
        return EX_USAGE
    try:
        analysis = analyze_clip(args.clip, config, audio_path=args.audio, keyframes=args.keyframes,
                                progress=Progress())
    except ClipError as exc:
        print(f"emotiond: error: {exc}", file=sys.stderr)
        return exc.exit_status
    for warning in analysis.result["warnings"]:
        print(f"emotiond: warning: {warning}", file=sys.stderr)
    text = json.dumps(analysis.result, indent=2) + "\n"
    try:
        if args.json:
            _write(args.json, text)
        if args.report:
            _write(args.report, render_report(analysis.result, analysis.thumbnails, analysis.thumb_scale,
                                              analysis.mel_db))
    except OSError as exc:
        print(f"emotiond: error: cannot write {exc.filename or 'output'}: {exc.strerror or exc}", file=sys.stderr)
        return EX_CANTCREAT
    if not args.json and not args.report:
        sys.stdout.write(text)
    print(summary(analysis.result), file=sys.stderr)
    return EX_OK
