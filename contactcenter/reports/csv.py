"""CSV export that spreadsheets cannot turn into formulas.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
run as a formula by Excel, LibreOffice and Google Sheets (CSV injection, OWASP
"CSV Injection"); such text cells get a leading apostrophe, which the
spreadsheet shows as text. Numbers are written as numbers (a negative number
is data, not a formula), so figures stay sortable.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

DANGEROUS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value: Any) -> Any:
    """Return a cell value that a spreadsheet shows as the text or number it is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    text = str(value)
    if text.startswith(DANGEROUS):
        return "'" + text
    return text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Return CSV text (RFC 4180 quoting, CRLF line ends) with every cell made safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def report_tables(report: dict[str, Any]) -> list[tuple[str, Sequence[str], list[list[Any]]]]:
    """Return a report's figures as named tables (section, header, rows) for export."""
    tables: list[tuple[str, Sequence[str], list[list[Any]]]] = []
    tables.append(("volume by hour", ["hour", "tickets"],
                   [[h, c] for h, c in enumerate(report["volume"]["by_hour"])]))
    tables.append(("volume by day", ["day", "tickets"],
                   [[d["day"], d["count"]] for d in report["volume"]["by_day"]]))
    tables.append(("response times", ["measure", "count", "mean_s", "median_s", "p90_s"], [
        [name, d["count"], d["mean_seconds"], d["median_seconds"], d["p90_seconds"]]
        for name, d in (("first response", report["first_response"]),
                        ("resolution", report["resolution"]))]))
    tables.append(("service level", ["queue", "kind", "target_s", "answered", "within_target",
                                     "abandoned", "service_level", "abandonment", "asa_s"],
                   [[r["queue"], r["kind"], r["target_seconds"], r["answered"],
                     r["within_target"], r["abandoned"], r["service_level"], r["abandonment"],
                     r["asa_seconds"]] for r in report["service_levels"]]))
    tables.append(("tiers", ["tier", "answered", "abandoned", "abandonment", "asa_s",
                             "median_wait_s", "p90_wait_s"],
                   [[t["tier"], t["answered"], t["abandoned"], t["abandonment"],
                     t["asa_seconds"], t["median_wait_seconds"], t["p90_wait_seconds"]]
                    for t in report["tiers"]]))
    fcr = report["fcr"]
    tables.append(("first contact resolution", ["solved", "first_contact", "rate",
                                                "with_article"],
                   [[fcr["solved"], fcr["first_contact"], fcr["rate"], fcr["with_article"]]]))
    c = report["csat"]
    tables.append(("csat", ["responses", "average", "satisfied_share", "1", "2", "3", "4", "5"],
                   [[c["responses"], c["average"], c["satisfied_share"],
                     *(c["by_score"][str(k)] for k in range(1, 6))]]))
    if report.get("sla"):
        tables.append(("sla per policy", ["policy", "kind", "clocks", "met", "breached",
                                          "attainment"],
                       [[x["policy"], x["kind"], x["clocks"], x["met"], x["breached"],
                         x["attainment"]] for x in report["sla"]["policies"]]))
        tables.append(("sla per contract", ["contract", "level", "clocks", "met", "breached",
                                            "attainment"],
                       [[x["contract"], x["level"], x["clocks"], x["met"], x["breached"],
                         x["attainment"]] for x in report["sla"]["contracts"]]))
    if report.get("cross_sell"):
        tables.append(("cross-sell", ["tier", "shown", "accepted", "declined", "not_relevant",
                                      "conversion"],
                       [[x["tier"], x["shown"], x["accepted"], x["declined"], x["not_relevant"],
                         x["conversion"]] for x in report["cross_sell"]["tiers"]]))
    return tables


def report_csv(report: dict[str, Any]) -> str:
    """Return the whole report as one CSV: a section column, then each table's columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for section, header, rows in report_tables(report):
        writer.writerow([safe_cell(section), *(safe_cell(h) for h in header)])
        for row in rows:
            writer.writerow([safe_cell(section), *(safe_cell(v) for v in row)])
        writer.writerow([])
    return out.getvalue()
