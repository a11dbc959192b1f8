"""U — template helpers of the staff UI shell: navigation, icons and the inline SVG charts.

Icons are inline SVG (no icon font, no network) so they inherit the text colour and
need no extra request; decorative ones are hidden from screen readers, meaningful ones
carry a label.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from rapport.core.registry import nav_for

register = template.Library()

# Feather-style 24×24 stroke paths (MIT-licensed shapes, redrawn).
ICON_PATHS: dict[str, str] = {
    "home": '<path d="M3 10.5 12 3l9 7.5"/><path d="M5 9.5V21h14V9.5"/><path d="M10 21v-6h4v6"/>',
    "people": '<circle cx="9" cy="8" r="3.5"/><path d="M2.5 20c0-3.6 2.9-6 6.5-6s6.5 2.4 6.5 6"/>'
              '<circle cx="17" cy="9" r="2.5"/><path d="M16.5 14.2c2.8.3 5 2.4 5 5.3"/>',
    "person": '<circle cx="12" cy="8" r="4"/><path d="M4 21c0-4.4 3.6-7 8-7s8 2.6 8 7"/>',
    "organisation": '<rect x="4" y="3" width="11" height="18" rx="1"/><path d="M15 9h5v12h-5"/>'
                    '<path d="M8 7h3M8 11h3M8 15h3"/>',
    "search": '<circle cx="11" cy="11" r="7"/><path d="m20 20-4-4"/>',
    "email": '<rect x="3" y="5" width="18" height="14" rx="2"/><path d="m3 7 9 6 9-6"/>',
    "phone": '<path d="M5 3h4l2 5-2.5 1.5a11 11 0 0 0 6 6L16 13l5 2v4a2 2 0 0 1-2 2A16 16 0 0 1 3 5a2 2 0 0 1 2-2z"/>',
    "address": '<path d="M12 21s-7-6.1-7-11.5a7 7 0 0 1 14 0C19 14.9 12 21 12 21z"/><circle cx="12" cy="9.5" r="2.5"/>',
    "social": '<circle cx="12" cy="12" r="4"/><path d="M16 8v5a3 3 0 0 0 6 0v-1a10 10 0 1 0-4 8"/>',
    "url": '<path d="M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1"/>'
           '<path d="M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1"/>',
    "sms": '<path d="M4 4h16v12H8l-4 4z"/><path d="M8 9h8M8 12h5"/>',
    "meeting": '<rect x="3" y="5" width="18" height="16" rx="2"/><path d="M3 10h18M8 3v4M16 3v4"/>',
    "post": '<path d="M4 4h16v16H4z"/><path d="M4 8h16"/><path d="M8 12h8M8 16h5"/>',
    "web": '<circle cx="12" cy="12" r="9"/><path d="M3 12h18M12 3a14 14 0 0 1 0 18M12 3a14 14 0 0 0 0 18"/>',
    "in_person": '<circle cx="8" cy="7" r="3"/><circle cx="16" cy="7" r="3"/><path d="M2 20c0-3 2.7-5 6-5s6 2 6 5"/>'
                 '<path d="M14 15.2c.6-.1 1.3-.2 2-.2 3.3 0 6 2 6 5"/>',
    "press": '<path d="M4 5h13v14H6a2 2 0 0 1-2-2z"/><path d="M17 9h3v8a2 2 0 0 1-2 2"/><path d="M8 9h5M8 13h5"/>',
    "internal": '<path d="M4 20h4L19 9l-4-4L4 16z"/><path d="m13 7 4 4"/>',
    "menu": '<path d="M3 6h18M3 12h18M3 18h18"/>',
    "logout": '<path d="M15 4h4v16h-4"/><path d="M10 8l-4 4 4 4M6 12h10"/>',
    "plus": '<path d="M12 5v14M5 12h14"/>',
    "edit": '<path d="M4 20h4L19 9l-4-4L4 16z"/>',
    "trash": '<path d="M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13"/>',
    "check": '<path d="m5 12 5 5 9-10"/>',
    "star": '<path d="m12 3 2.8 5.8 6.2.9-4.5 4.4 1 6.2L12 17.4l-5.5 2.9 1-6.2L3 9.7l6.2-.9z"/>',
    "thumbs_up": '<path d="M7 10v11H3V10zM7 10l4-7a2 2 0 0 1 3 2l-1 5h6a2 2 0 0 1 2 2.3l-1.3 7A2 2 0 0 1 17.7 21H7"/>',
    "alert": '<path d="M12 3 2 20h20z"/><path d="M12 10v4M12 17v.5"/>',
    "briefcase": '<rect x="3" y="7" width="18" height="13" rx="2"/><path d="M9 7V4h6v3M3 12h18"/>',
    "clock": '<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>',
    "tag": '<path d="M3 3h8l10 10-8 8L3 11z"/><circle cx="7.5" cy="7.5" r="1.5"/>',
}

# Which icon stands for a timeline channel or a contact-point kind.
CHANNEL_ICONS = {"email": "email", "phone": "phone", "sms": "sms", "meeting": "meeting", "post": "post",
                 "web": "web", "social": "social", "in_person": "in_person", "press": "press",
                 "internal": "internal"}


@register.simple_tag
def icon(name: str, label: str = "", css: str = "") -> SafeString:
    """An inline SVG icon; with ``label`` it is announced (role=img), otherwise hidden."""
    paths = ICON_PATHS.get(CHANNEL_ICONS.get(name, name), ICON_PATHS["internal"])
    classes = f"icon {css}".strip()
    if label:
        head = format_html('<svg class="{}" viewBox="0 0 24 24" role="img" aria-label="{}" focusable="false">'
                           "<title>{}</title>", classes, label, label)
    else:
        head = format_html('<svg class="{}" viewBox="0 0 24 24" aria-hidden="true" focusable="false">', classes)
    return mark_safe(head + paths + "</svg>")  # noqa: S308 - paths are constants above


@register.simple_tag(takes_context=True)
def nav_items(context: dict) -> list[dict[str, Any]]:
    """The navigation entries the signed-in user may see, with the current one marked."""
    request = context.get("request")
    if request is None:
        return []
    current = getattr(getattr(request, "resolver_match", None), "view_name", "") or ""
    items = []
    for item in nav_for(request.user):
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        section = item.url_name.rsplit("-", 1)[0]
        active = current == item.url_name or (item.url_name != "home" and current.startswith(section))
        items.append({"label": item.label, "url": url, "icon": item.icon, "active": active})
    return items


@register.inclusion_tag("core/partials/stacked_bars.html")
def stacked_bars(chart: dict[str, Any], title: str, height: int = 180) -> dict[str, Any]:
    """Server-rendered stacked bar chart: ``chart`` = {"labels": [...], "series": [{key, label, values}]}.

    Each bar keeps its numbers in a <title> so hovering (or a screen reader) gives the value.
    """
    labels: list[str] = chart.get("labels", [])
    series: list[dict] = chart.get("series", [])
    totals = [sum(s["values"][i] for s in series) for i in range(len(labels))]
    peak = max(totals or [0]) or 1
    width, left, bottom, top = 640, 36, 22, 8
    plot_h = height - bottom - top
    slot = (width - left) / max(len(labels), 1)
    bar_w = max(slot * 0.62, 2)
    bars = []
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        segments = []
        for s in series:
            value = s["values"][i]
            if not value:
                continue
            h = value / peak * plot_h
            y -= h
            segments.append({"key": s["key"], "x": round(x, 1), "y": round(y, 1), "w": round(bar_w, 1),
                             "h": round(h, 1), "title": f"{label}: {value} {s['label'].lower()}"})
        bars.append({"label": label, "x": round(x + bar_w / 2, 1), "segments": segments,
                     "total": totals[i], "show_label": i % 2 == 0 or len(labels) <= 6})
    ticks = [{"value": round(peak * f), "y": round(top + plot_h - plot_h * f, 1)} for f in (0, 0.5, 1)]
    return {"bars": bars, "series": series, "ticks": ticks, "title": title, "width": width,
            "height": height, "left": left, "base_y": top + plot_h, "label_y": height - 6,
            "table": [{"label": lab, "values": [s["values"][i] for s in series]} for i, lab in enumerate(labels)]}
