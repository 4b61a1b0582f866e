"""Plain-text rendering of a generated store's profile (``synth.profile.Profile``)."""

from __future__ import annotations

from synth.profile import QUIRKS, TABLE_ORDER, Profile

_SCOPES = (("dates", "Dates (all date columns)"), ("times", "Times (all time columns)"), ("crime", "CRIME"),
           ("nominal", "NOMINAL"), ("crime_nom", "CRIME_NOM"), ("intel", "INTEL"))


def render_profile(profile: Profile, *, width: int = 62) -> str:
    lines = [f"OPUS store {profile.url}"]
    first, last = profile.facts.get("first_recorded"), profile.facts.get("last_recorded")
    if first:
        lines.append(f"crimes recorded {first} to {last}")
    lines.append("")
    lines.append(f"{'table':<{width}}{'rows':>10}")
    for name in TABLE_ORDER:
        lines.append(f"  {name.upper():<{width - 2}}{profile.tables.get(name, 0):>10,}")
    groups = profile.distributions.get("offence_group", {})
    if groups:
        total = sum(groups.values()) or 1
        lines.append("")
        lines.append(f"{'offence group (live crimes the Home Office return counts)':<{width}}{'crimes':>10}")
        for group, n in groups.items():
            lines.append(f"  {group[:width - 10]:<{width - 10}}{n / total:>7.1%} {n:>10,}")
    forms = profile.distributions.get("crime.rec_date form", {})
    if forms:
        lines.append("")
        lines.append("REC_DATE forms: " + ", ".join(f"{k} {v:,}" for k, v in forms.items()))
    lines.append("")
    lines.append(f"{'quirk':<{width}}{'count':>10}")
    for scope, title in _SCOPES:
        lines.append(f"  {title}")
        for name, words in QUIRKS.items():
            if name.split(".", 1)[0] == scope:
                lines.append(f"    {words[:width - 4]:<{width - 4}}{profile.quirks.get(name, 0):>10,}")
    if "longest_intel_text" in profile.facts:
        lines.append("")
        lines.append(f"longest INT_TEXT: {profile.facts['longest_intel_text']:,} characters")
    return "\n".join(lines)
