"""Issue #17, finding 1 replayed on the exports: a session whose stored times reach back
to year 1 (data written before validation bounded them) still gets a small report and
a PDF, because the chart draws only the session's last two days."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import text

from tests.clock import FakeClock
from tests.exports.conftest import NURSE, EsketamineSession, bearer
from vitalsd.store.engine import create_engine


async def backdate(database: Path, session_id: int) -> None:
    """What the penetration test stored through the API before the fix."""
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE sessions SET started_at = '0001-01-02 00:00:00' WHERE id = :id"),
                {"id": session_id},
            )
            await connection.execute(
                text(
                    "INSERT INTO side_effects (session_id, effect, severity, observed_at, "
                    "recorded_by) VALUES (:id, 'nausea', 1, '1900-01-01 00:00:00', 'nurse')"
                ),
                {"id": session_id},
            )
    finally:
        await engine.dispose()


async def test_a_session_backdated_to_year_1_gets_a_small_report_and_a_pdf(
    client: httpx.AsyncClient,
    esketamine_session: EsketamineSession,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    await backdate(tmp_path / "vitalsd.sqlite3", esketamine_session.id)
    url = f"/api/sessions/{esketamine_session.id}/report"
    html = await client.get(url, headers=bearer(NURSE, clock))
    assert html.status_code == 200
    assert len(html.content) < 200_000  # 6.2 MB before the fix
    assert "1900-01-01" in html.text  # listed in the side effects table, not charted
    pdf = await client.get(f"{url}.pdf", headers=bearer(NURSE, clock))
    assert pdf.status_code == 200  # FPDFSvgLimitExceeded (500) before the fix
    assert pdf.headers["content-type"] == "application/pdf"


async def test_the_report_page_may_style_itself_but_runs_no_script(
    client: httpx.AsyncClient, esketamine_session: EsketamineSession, clock: FakeClock
) -> None:
    response = await client.get(
        f"/api/sessions/{esketamine_session.id}/report", headers=bearer(NURSE, clock)
    )
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "style-src 'unsafe-inline'" in policy
    assert "script-src" not in policy  # default-src 'none' covers scripts: none run
    assert "frame-ancestors 'none'" in policy
    assert response.headers["cache-control"] == "no-store"
