"""The HTML report: one self-contained file (inline CSS, base64 images, hand-made inline SVG, no JS).

Sections: the fused result (feature level and score level side by side), a timeline of per-second
sentiment with the chosen keyframes marked, per-stream contributions, the keyframe contact sheet with
face boxes and labels, the faces, and the audio and motion summaries.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from emotiond.analyze.sentiment import SENTIMENTS

COLOURS = {"positive": "#2e9d57", "neutral": "#8a8f98", "negative": "#d0453c"}
STREAM_TITLES = {"faces": "Faces", "scene": "Scene / visual", "audio": "Audio", "flow": "Optical flow"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:1140px;margin:0 auto;padding:20px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:26px 0 10px;border-bottom:1px solid #d9dce2;padding-bottom:4px}
.muted{color:#667085}.small{font-size:12px}
.cards{display:flex;gap:14px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 14px;flex:1;min-width:260px}
.big{font-size:26px;font-weight:650}
.bar{display:flex;height:16px;border-radius:4px;overflow:hidden;background:#e6e8ec;margin:6px 0}
.bar span{display:block;height:100%}
.legend span{display:inline-block;margin-right:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e7}
th,td{padding:6px 8px;border-bottom:1px solid #eceef2;text-align:left;vertical-align:top}
th{background:#f8f9fb;font-weight:600}
.sheet{display:grid;grid-template-columns:repeat(4,1fr);gap:10px}
.kf{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:6px}
.kf svg{width:100%;height:auto;display:block;border-radius:4px}
.faces{display:flex;flex-wrap:wrap;gap:8px}
.face{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:4px;width:104px;text-align:center;font-size:12px}
.face img{width:96px;height:96px;object-fit:cover;border-radius:4px}
.warn{background:#fff6e5;border:1px solid #f0c36d;border-radius:6px;padding:8px 12px;margin:10px 0}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def data_uri(image_bgr: np.ndarray, fmt: str = ".jpg", quality: int = 82) -> str:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == ".jpg" else []
    ok, buf = cv2.imencode(fmt, image_bgr, params)
    if not ok:
        raise ValueError("image encoding failed")
    mime = "image/jpeg" if fmt == ".jpg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.tobytes()).decode('ascii')}"


def sentiment_bar(probs: Mapping[str, float] | None) -> str:
    if not probs:
        return '<div class="bar"></div>'
    spans = "".join(f'<span title="{s} {probs.get(s, 0):.0%}" style="width:{100 * probs.get(s, 0):.2f}%;'
                    f'background:{COLOURS[s]}"></span>' for s in SENTIMENTS)
    return f'<div class="bar">{spans}</div>'


def legend() -> str:
    return '<div class="legend small">' + "".join(
        f'<span><i style="background:{COLOURS[s]}"></i>{s}</span>' for s in SENTIMENTS) + "</div>"


def timeline_svg(result: Mapping[str, Any], width: int = 1080, height: int = 260) -> str:
    """Per-second mean sentiment (lines) and best frame score (dots), keyframes as numbered markers."""
    duration = max(float(result["clip"]["duration_s"]), 1e-6)
    left, right, top, bottom = 44, 14, 26, 34
    pw, ph = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + pw * min(max(t, 0.0), duration) / duration

    def y(v: float) -> float:
        return top + ph * (1.0 - min(max(v, 0.0), 1.0))

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
              f'role="img" aria-label="sentiment timeline">'),
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#d0d4db"/>']
    threshold = float(result["settings"]["sentiment_threshold"])
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}" '
                 f'stroke="#b0b6c0" stroke-dasharray="4 4"/><text x="{left + pw - 4}" y="{y(threshold) - 4:.1f}" '
                 f'font-size="11" text-anchor="end" fill="#667085">threshold {threshold:g}</text>')
    for v in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end" fill="#667085">{v:g}</text>')
    step = max(1, int(np.ceil(duration / 16)))
    for t in range(0, int(np.floor(duration)) + 1, step):
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#667085"/>'
                     f'<text x="{x(t):.1f}" y="{top + ph + 17}" font-size="11" text-anchor="middle" fill="#667085">{t}s</text>')
    seconds = result["timeline"]
    for s in SENTIMENTS:
        pts = " ".join(f"{x(e['second'] + 0.5):.1f},{y(e['sentiment'][s]):.1f}" for e in seconds)
        if pts:
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{COLOURS[s]}" stroke-width="2.2"/>')
            parts.extend(f'<circle cx="{x(e["second"] + 0.5):.1f}" cy="{y(e["sentiment"][s]):.1f}" r="3" '
                         f'fill="{COLOURS[s]}"/>' for e in seconds)
    for i, k in enumerate(result["keyframes"], 1):
        kx = x(float(k["time"]))
        parts.append(f'<line x1="{kx:.1f}" x2="{kx:.1f}" y1="{top}" y2="{top + ph}" stroke="#3b5bdb" '
                     f'stroke-opacity="0.35"/><rect x="{kx - 4:.1f}" y="{y(k["score"]) - 4:.1f}" width="8" height="8" '
                     f'fill="#3b5bdb" transform="rotate(45 {kx:.1f} {y(k["score"]):.1f})"/>'
                     f'<text x="{kx:.1f}" y="{top - 8}" font-size="10" text-anchor="middle" fill="#3b5bdb">{i}</text>')
    parts.append(f'<text x="{left}" y="{height - 2}" font-size="11" fill="#667085">lines: mean sentiment of the '
                 f'sampled frames per second (no face = neutral) · blue diamonds: keyframes at their score</text>')
    parts.append("</svg>")
    return "".join(parts)


def keyframe_svg(image_bgr: np.ndarray, scale: float, keyframe: Mapping[str, Any]) -> str:
    """The thumbnail with face boxes and labels drawn as SVG on top (crisp at any zoom)."""
    h, w = image_bgr.shape[:2]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}">',
             f'<image href="{data_uri(image_bgr)}" x="0" y="0" width="{w}" height="{h}"/>']
    for face in keyframe["faces"]:
        bx, by, bw, bh = (v * scale for v in face["box"])
        side = max(face["sentiment"], key=face["sentiment"].get)
        colour = COLOURS[side]
        label = f"{face['label']} {face['confidence']:.0%}"
        ty = by - 4 if by > 16 else by + bh + 13
        parts.append(f'<rect x="{bx:.1f}" y="{by:.1f}" width="{bw:.1f}" height="{bh:.1f}" fill="none" '
                     f'stroke="{colour}" stroke-width="2.5"/>'
                     f'<rect x="{bx:.1f}" y="{ty - 11:.1f}" width="{7 * len(label) + 6}" height="14" fill="{colour}" '
                     'opacity="0.9"/>'
                     f'<text x="{bx + 3:.1f}" y="{ty:.1f}" font-size="11" fill="#fff" font-family="sans-serif">'
                     f'{_e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def hbar(value: float, scale: float, colour: str, width: int = 160) -> str:
    """A small horizontal bar for a non-negative contribution (scale: value of a full bar)."""
    w = 0 if scale <= 0 else round(width * min(1.0, max(0.0, value) / scale))
    return (f'<svg width="{width + 44}" height="12"><rect width="{w}" height="12" rx="2" fill="{colour}"/>'
            f'<text x="{w + 4}" y="10" font-size="10" fill="#444">{value:.2f}</text></svg>')


def direction_svg(features: Mapping[str, float], size: int = 120) -> str:
    """The flow direction histogram as a rose: bin 0 points right, counting counter-clockwise."""
    bins = [float(features.get(f"flow.dir_{i}", 0.0)) for i in range(8)]
    peak = max(bins) or 1.0
    c = size / 2
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}">',
             f'<circle cx="{c}" cy="{c}" r="{c - 4}" fill="#fff" stroke="#d0d4db"/>']
    for i, v in enumerate(bins):
        r = (c - 6) * v / peak
        a0, a1 = np.deg2rad(i * 45 - 20), np.deg2rad(i * 45 + 20)
        pts = [(c, c), (c + r * np.cos(a0), c - r * np.sin(a0)), (c + r * np.cos(a1), c - r * np.sin(a1))]
        parts.append('<polygon points="' + " ".join(f"{px:.1f},{py:.1f}" for px, py in pts) + '" fill="#3b5bdb" opacity="0.75"/>')
    parts.append("</svg>")
    return "".join(parts)


def mel_image(mel_db: np.ndarray, height: int = 128, width: int = 520) -> str:
    """The Mel spectrogram as a colour-mapped PNG (low bands at the bottom)."""
    lo, hi = float(np.percentile(mel_db, 2)), float(np.percentile(mel_db, 99.5))
    norm = np.clip((mel_db - lo) / max(hi - lo, 1e-6), 0, 1)
    img = cv2.applyColorMap((np.flipud(norm) * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_NEAREST)
    return (f'<img alt="Mel spectrogram" src="{data_uri(img, ".png")}" '
            f'style="width:100%;max-width:{width}px;image-rendering:pixelated">')


def _fused_card(title: str, block: Mapping[str, Any], note: str) -> str:
    if not block.get("probabilities"):
        return (f'<div class="card"><div class="muted">{_e(title)}</div><div class="big">—</div>'
                f'<div class="small">{_e(block.get("reason", ""))}</div></div>')
    probs = block["probabilities"]
    line = " · ".join(f"{s} {probs[s]:.0%}" for s in SENTIMENTS)
    return (f'<div class="card"><div class="muted">{_e(title)}</div>'
            f'<div class="big" style="color:{COLOURS[block["label"]]}">{_e(block["label"])}</div>'
            f'{sentiment_bar(probs)}<div class="small">{_e(line)} · valence {block["valence"]:+.2f}</div>'
            f'<div class="small muted">{_e(note)}</div></div>')


def streams_table(result: Mapping[str, Any]) -> str:
    feat = result["fusion"]["feature_level"]
    contributions = feat["contributions"]
    used = result["fusion"]["score_level"].get("weights_used", {})
    peak = max([v for c in contributions.values() for v in c.values()] + [1e-6])
    rows = []
    for name, stream in result["streams"].items():
        sent = stream.get("sentiment")
        val = stream.get("valence")
        status = "yes" if stream.get("available") else f'no — {_e(stream.get("reason") or "")}'
        extra = f' · arousal {stream["arousal"]:.2f}' if stream.get("arousal") is not None else ""
        bars = "<br>".join(f'<span class="small" style="display:inline-block;width:62px">{s}</span>'
                           f'{hbar(contributions[name][s], peak, COLOURS[s])}' for s in SENTIMENTS)
        rows.append(
            f"<tr><td><b>{_e(STREAM_TITLES.get(name, name))}</b><br><span class='small muted'>available: {status}</span></td>"
            f"<td style='width:200px'>{sentiment_bar(sent)}<span class='small'>"
            f"{f'valence {val:+.2f}' if val is not None else 'no valence'}{_e(extra)}</span></td>"
            f"<td>{bars}</td><td class='small'>{used.get(name, 0):.0%}</td>"
            f"<td class='small'>{len(stream['features'])}</td></tr>")
    return ("<table><tr><th>stream</th><th>stream sentiment</th><th>feature-level contribution to each logit</th>"
            "<th>score-level weight</th><th>features</th></tr>" + "".join(rows) + "</table>")


def faces_strip(result: Mapping[str, Any], thumbnails: Mapping[int, np.ndarray], scale: float) -> str:
    cells = []
    for face in result["faces"]:
        thumb = thumbnails.get(face["frame"])
        if thumb is None:
            continue
        x, y, w, h = (round(v * scale) for v in face["box"])
        crop = thumb[max(0, y):y + h, max(0, x):x + w]
        if crop.size == 0:
            continue
        crop = cv2.resize(crop, (96, 96), interpolation=cv2.INTER_AREA)
        top = max(face["probabilities"], key=face["probabilities"].get)
        cells.append(f'<div class="face"><img alt="face" src="{data_uri(crop)}"><br><b>{_e(top)}</b> '
                     f'{face["probabilities"][top]:.0%}<br><span class="muted">{face["time"]:.2f}s</span>'
                     f'{sentiment_bar(face["sentiment"])}</div>')
    return '<div class="faces">' + "".join(cells) + "</div>" if cells else '<p class="muted">No faces found on the keyframes.</p>'


def render_report(result: Mapping[str, Any], thumbnails: Mapping[int, np.ndarray], scale: float,
                  mel_db: np.ndarray | None = None) -> str:
    clip = result["clip"]
    fusion = result["fusion"]
    feat, score = fusion["feature_level"], fusion["score_level"]
    trained = "trained" if feat["trained"] else "rule-based weights (not trained; see docs/analyze.md)"
    warnings = "".join(f'<div class="warn">{_e(w)}</div>' for w in result.get("warnings", []))
    sheet = []
    for i, k in enumerate(result["keyframes"], 1):
        thumb = thumbnails.get(k["frame"])
        pic = keyframe_svg(thumb, scale, k) if thumb is not None else '<div class="muted">frame not decodable</div>'
        label = k["label"] or "no face"
        sheet.append(f'<div class="kf">{pic}<div class="small"><b>#{i}</b> {k["time"]:.2f}s · score {k["score"]:.2f} · '
                     f'{_e(label)} <span class="muted">({_e(k["reason"])})</span></div></div>')
    audio = result["streams"]["audio"]
    audio_html = f'<p class="muted">{_e(audio.get("reason") or "no audio")}</p>'
    if audio.get("source"):
        segs = ", ".join(f'{s["start"]:.2f}–{s["end"]:.2f}s' for s in audio.get("segments", [])) or "none"
        probs = audio.get("probabilities")
        prob_line = " · ".join(f"{k} {v:.0%}" for k, v in probs.items()) if probs else _e(audio.get("reason"))
        audio_html = (f'<p class="small">Source: {_e(audio["source"])} · {audio.get("duration_s", 0):.1f} s · '
                      f'speech segments: {_e(segs)}'
                      f'<br>Audio-emotion model (speech segments, duration-weighted): {_e(prob_line)}</p>'
                      + (mel_image(mel_db) if mel_db is not None else "")
                      + '<p class="small muted">Mel spectrogram: 128 bands, FFT window 1024, hop 512 (seed parameters).</p>')
    flow = result["streams"]["flow"]
    ff = flow["features"]
    flow_html = (f'<div style="display:flex;gap:16px;align-items:center">{direction_svg(ff)}<div class="small">'
                 f'Farneback flow on {flow.get("pairs", 0)} frame pairs (frames {_e(flow.get("frames", []))})<br>'
                 f'mean speed {ff["flow.speed_mean"]:.3f}, 90th percentile {ff["flow.speed_p90"]:.3f} frame widths/s<br>'
                 f'moving pixels {ff["flow.moving"]:.0%} · '
                 'rose: direction histogram (right = rightward, up = upward)</div></div>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>emotiond analyze — {_e(clip["path"])}</title>
<style>{CSS}</style></head><body><main>
<h1>Group emotion: {_e(clip["path"])}</h1>
<div class="muted">{clip["duration_s"]:.1f} s · {clip["width"]}×{clip["height"]} · {clip["fps"]:g} fps · {clip["frames"]} frames ·
{result["sampled_frames"]} scored ({result["frames_with_faces"]} with faces) · {len(result["keyframes"])} keyframes ·
{len(result["faces"])} faces kept · emotiond {_e(result["emotiond"])}</div>
{warnings}
<h2>Result</h2>
<div class="cards">
{_fused_card("Feature-level fusion (concatenated features → linear layer → softmax)", feat, trained)}
{_fused_card("Score-level fusion (weighted mean of stream sentiments)", score,
             "weights " + ", ".join(f"{k} {v:.0%}" for k, v in score.get("weights_used", {}).items()))}
</div>
{legend()}
<h2>Sentiment over time</h2>
<div class="card">{timeline_svg(result)}</div>
<h2>Streams and their contributions</h2>
{streams_table(result)}
<h2>Keyframes</h2>
<div class="sheet">{"".join(sheet)}</div>
<h2>Faces ({len(result["faces"])})</h2>
{faces_strip(result, thumbnails, scale)}
<h2>Audio</h2>
<div class="card">{audio_html}</div>
<h2>Motion</h2>
<div class="card">{flow_html}</div>
<p class="small muted">Sentiment: positive = happy + surprise, neutral = neutral, negative = angry + disgust + fear + sad
(expression model, FER2013 classes). Valence = positive − negative. Keyframe score = max(positive, negative).</p>
</main></body></html>
"""
