"""The map picture of the crime statistics: missing and mislocated crimes over Greater Manchester.

Drawn in the OS National Grid (metres), as OPUS holds its places: the ten districts are a faint
base of every live postcode (``mappings/gm_postcodes.csv``, coloured by district, named at their
middle); on them the crimes OPUS holds that iOPS lacks (lost, or not migrated — where OPUS has
them), and the crimes iOPS places elsewhere (a line from where OPUS has them to where iOPS puts
them) or outside Greater Manchester altogether (shown where OPUS has them, or where their
coordinates would be if latitude and longitude were swapped back). The legend gives the counts.

matplotlib with the Agg backend (no display needed); the PNG is returned as bytes, written
beside the other reports and placed in the workbook by the caller. Nothing is cached on disk.
"""

from __future__ import annotations

import csv
import io
from functools import lru_cache

from core.errors import ConfigError
from mappings.reference import TABLE_DIR
from reconcile.stats import GreaterManchester, to_grid

POSTCODES_FILE = TABLE_DIR / "gm_postcodes.csv"
#: reference/README: wherever gm_postcodes.csv is used, this attribution is kept.
ATTRIBUTION = ("Contains OS data © Crown copyright and database right 2025. Contains Royal Mail data © Royal Mail "
               "copyright and database right 2025. Contains National Statistics data © Crown copyright and "
               "database right 2025.")

#: Faint district colours (the base must not compete with the crimes drawn on it).
_DISTRICT_COLOURS = ("#8dd3c7", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
                     "#bc80bd", "#ccebc5", "#ffed6f")
PAD = 1500  # metres around the postcodes
_PIXEL = 70  # metres per pixel of the base picture
MISSING_COLOUR, NOT_MIGRATED_COLOUR, MOVED_COLOUR, OUTSIDE_COLOUR = "#c62828", "#ef6c00", "#6a1b9a", "#1565c0"


def _postcodes():
    """(eastings, northings, district codes) of every live GM postcode; read per picture (~0.2 s)."""
    eastings, northings, districts = [], [], []
    try:
        with POSTCODES_FILE.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            try:
                ie, inn, idist = (header.index(name) for name in ("easting", "northing", "district_code"))
            except ValueError:
                raise ConfigError(f"{POSTCODES_FILE}: needs columns easting, northing, district_code") from None
            for row in reader:
                try:
                    eastings.append(int(row[ie]))
                    northings.append(int(row[inn]))
                except (IndexError, ValueError):
                    del eastings[len(northings):]  # keep the lists aligned
                    continue
                districts.append(row[idist])
    except FileNotFoundError:
        raise ConfigError(f"reference table missing: {POSTCODES_FILE}") from None
    return eastings, northings, districts


@lru_cache(maxsize=1)
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: a report is drawn on servers and in CI
    import matplotlib.pyplot as plt

    return plt


def draw_crime_map(statistics, district_names: dict[str, str], districts=(), *, dpi: int = 110) -> bytes:
    """The PNG of ``statistics.points`` (``reconcile.stats.CrimeStatistics``) over the districts."""
    import numpy as np

    plt = _pyplot()
    from matplotlib import patheffects
    from matplotlib.colors import to_rgba

    halo = patheffects.withStroke(linewidth=3, foreground="white", alpha=0.8)  # names readable over points
    points = statistics.points
    area = GreaterManchester(districts) if districts else None

    fig, ax = plt.subplots(figsize=(11, 9.4), dpi=dpi)
    try:
        eastings, northings, codes = _postcodes()
        e_all, n_all = np.asarray(eastings, dtype=float), np.asarray(northings, dtype=float)
        code_arr = np.asarray(codes)
        if len(e_all):
            # The base as one picture: each postcode a pixel (of ~70 m) in its district's colour —
            # one image for matplotlib to draw, not 71,643 markers.
            e0, n0 = e_all.min() - PAD, n_all.min() - PAD
            width = int((e_all.max() + PAD - e0) // _PIXEL) + 1
            height = int((n_all.max() + PAD - n0) // _PIXEL) + 1
            base = np.zeros((height, width, 4), dtype=np.uint8)  # bytes: matplotlib converts no floats
            ix = ((e_all - e0) // _PIXEL).astype(int)
            iy = ((n_all - n0) // _PIXEL).astype(int)
        for i, code in enumerate(sorted(set(codes))):
            mask = code_arr == code
            base[iy[mask], ix[mask]] = [round(255 * v) for v in to_rgba(_DISTRICT_COLOURS[i % len(_DISTRICT_COLOURS)],
                                                                         0.55)]
            ax.text(float(np.median(e_all[mask])), float(np.median(n_all[mask])),
                    district_names.get(code, code), ha="center", va="center", fontsize=12, color="#263238",
                    zorder=6, fontweight="bold", path_effects=[halo])
        if len(e_all):
            ax.imshow(base, origin="lower", extent=(e0, e0 + width * _PIXEL, n0, n0 + height * _PIXEL),
                      interpolation="nearest", zorder=1)

        handles = []

        def plot(xy, **style):
            xy = [p for p in xy if p is not None and p[0] is not None and p[1] is not None]
            if xy:
                xs, ys = zip(*xy)
            else:
                xs, ys = [], []
            return ax.scatter(xs, ys, zorder=5, **style)

        handles.append(plot(points.missing, s=12, color=MISSING_COLOUR, edgecolors="white", linewidths=0.4,
                            label=f"lost in iOPS, no reason known: {len(points.missing):,} (where OPUS has them)"))
        handles.append(plot(points.not_migrated, s=14, marker="^", color=NOT_MIGRATED_COLOUR, edgecolors="white",
                            linewidths=0.4,
                            label=f"not migrated (rejected by the mapping): {len(points.not_migrated):,}"))

        moved, outside = [], []
        for legacy_e, legacy_n, lat, lon in points.mislocated:
            inside = area.contains(lat, lon) if area is not None else True
            (outside if not inside else moved).append((legacy_e, legacy_n, lat, lon))
        new_grid = to_grid([p[2] for p in moved], [p[3] for p in moved])
        for (legacy_e, legacy_n, _, _), where in zip(moved, new_grid):
            if legacy_e is not None and where is not None:
                ax.plot([legacy_e, where[0]], [legacy_n, where[1]], color=MOVED_COLOUR, linewidth=0.7, alpha=0.7,
                        zorder=4)
        handles.append(plot(new_grid, s=30, marker="x", color=MOVED_COLOUR, linewidths=1.2,
                            label=f"placed elsewhere by iOPS (line from OPUS's place): {len(moved):,}"))
        # Outside the area: drawn where OPUS has them, else where the coordinates would be swapped back.
        swapped_back = to_grid([p[3] for p in outside], [p[2] for p in outside])
        shown = [(e, n) if e is not None else back for (e, n, _, _), back in zip(outside, swapped_back)]
        handles.append(plot(shown, s=20, marker="D", facecolors="none", edgecolors=OUTSIDE_COLOUR, linewidths=0.9,
                            label=f"placed outside Greater Manchester by iOPS (e.g. latitude/longitude swapped): "
                                  f"{len(outside):,}, shown where they belong"))

        if len(e_all):
            ax.set_xlim(e_all.min() - PAD, e_all.max() + PAD)
            ax.set_ylim(n_all.min() - PAD, n_all.max() + PAD)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_color("#b0bec5")
        go_live = f" (go-live {statistics.go_live:%d %B %Y})" if statistics.go_live else ""
        ax.set_title(f"Crimes OPUS holds that iOPS lacks or misplaces{go_live}", fontsize=13, loc="left")
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, -0.01), fontsize=9, frameon=False,
                  ncol=1, markerscale=1.3)
        fig.text(0.01, 0.008, ATTRIBUTION, fontsize=6.5, color="#546e7a", ha="left", va="bottom")
        fig.subplots_adjust(left=0.02, right=0.98, top=0.95, bottom=0.17)
        buffer = io.BytesIO()
        # Light compression: a third of the saving time for a somewhat larger file.
        fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 3})
        return buffer.getvalue()
    finally:
        plt.close(fig)
