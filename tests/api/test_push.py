"""Web Push over REST (issue #15): a user's devices, and what a notification's service
worker may do with the token its payload carried."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import SECRET, FakeClock, Ward
from tests.api.test_alerts import Auth, severe_alert
from tests.notify.push_service import Device
from vitalsd.clinic import Clinic
from vitalsd.domain import Role
from vitalsd.notify import push_actions

OWN = "http://vitalsd.test"


def subscription(
    device: Device, endpoint: str = "https://push.example.net/v1/abc"
) -> dict[str, object]:
    """What `PushSubscription.toJSON()` gives."""
    return {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": {"p256dh": device.p256dh, "auth": device.auth},
    }


async def action_token(clinic: Clinic, clock: FakeClock, alert_id: int, user: str = "nurse") -> str:
    account = await clinic.get_account(user)
    return push_actions.issue(
        SECRET,
        username=user,
        token_version=account.token_version,
        alert_id=alert_id,
        key=f"{alert_id}:raised:0:push:1",
        now=clock(),
    )


async def test_the_vapid_public_key_is_made_once_and_served_to_signed_in_users(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    assert (await client.get("/api/push/vapid-public-key")).status_code == 401
    first = await client.get("/api/push/vapid-public-key", headers=auth[Role.NURSE])
    again = await client.get("/api/push/vapid-public-key", headers=auth[Role.CLINICIAN])
    assert first.status_code == 200
    assert first.json() == again.json()
    assert len(first.json()["public_key"]) == 87  # 65 bytes, base64url


async def test_a_nurse_subscribes_lists_and_unsubscribes_her_device(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    added = await client.post(
        "/api/push/subscriptions",
        json=subscription(Device("phone")),
        headers={**auth[Role.NURSE], "User-Agent": "Phone/1.0"},
    )
    assert added.status_code == 201, added.text
    listed = await client.get("/api/push/subscriptions", headers=auth[Role.NURSE])
    assert [(d["id"], d["user_agent"]) for d in listed.json()] == [
        (added.json()["id"], "Phone/1.0")
    ]
    others = await client.get("/api/push/subscriptions", headers=auth[Role.CLINICIAN])
    assert others.json() == []

    theirs = await client.delete(
        f"/api/push/subscriptions/{added.json()['id']}", headers=auth[Role.CLINICIAN]
    )
    assert theirs.status_code == 404
    removed = await client.delete(
        f"/api/push/subscriptions/{added.json()['id']}", headers=auth[Role.NURSE]
    )
    assert removed.status_code == 204
    assert (await client.get("/api/push/subscriptions", headers=auth[Role.NURSE])).json() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "http://10.0.0.5/internal"}, "endpoint"),
        ({"endpoint": "file:///etc/passwd"}, "endpoint"),
        ({"keys": {"p256dh": "AAAA", "auth": Device("x").auth}}, "p256dh"),
        ({"keys": {"p256dh": Device("x").p256dh, "auth": "not base64!"}}, "auth"),
    ],
)
async def test_a_subscription_that_is_no_push_service_is_refused_with_why(
    client: httpx.AsyncClient, auth: Auth, change: dict[str, object], field: str
) -> None:
    body = {**subscription(Device("phone")), **change}
    response = await client.post("/api/push/subscriptions", json=body, headers=auth[Role.NURSE])
    assert response.status_code == 422
    assert field in str(response.json()["detail"])


async def test_the_notifications_acknowledge_is_the_dashboards_acknowledge_with_its_audit(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic, clock: FakeClock
) -> None:
    alert = await severe_alert(client, auth, ward)
    token = await action_token(clinic, clock, alert["id"])

    # As the service worker sends it: same origin, no cookie, no CSRF header.
    acked = await client.post(
        "/api/push/actions/acknowledge", json={"token": token}, headers={"Origin": OWN}
    )

    assert acked.status_code == 200, acked.text
    assert (acked.json()["state"], acked.json()["acknowledged_by"]) == ("acknowledged", "nurse")
    audit = await client.get("/api/audit", params={"entity": "alert"}, headers=auth[Role.ADMIN])
    assert ("nurse", "acknowledged", alert["id"]) in [
        (a["actor"], a["action"], a["entity_id"]) for a in audit.json()
    ]
    replay = await client.post("/api/push/actions/acknowledge", json={"token": token})
    assert replay.status_code == 409


async def test_an_acknowledge_from_another_origin_is_refused(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic, clock: FakeClock
) -> None:
    alert = await severe_alert(client, auth, ward)
    token = await action_token(clinic, clock, alert["id"])
    response = await client.post(
        "/api/push/actions/acknowledge",
        json={"token": token},
        headers={"Origin": "http://vitalsd.test:8080"},
    )
    assert response.status_code == 403


async def test_an_expired_forged_or_revoked_action_is_refused(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic, clock: FakeClock
) -> None:
    alert = await severe_alert(client, auth, ward)
    expired = await action_token(clinic, clock, alert["id"])
    clock.advance(seconds=push_actions.ACTION_TTL.total_seconds() + 1)
    response = await client.post("/api/push/actions/acknowledge", json={"token": expired})
    assert (response.status_code, "expired" in response.json()["detail"]) == (401, True)

    forged = push_actions.issue(
        b"not-the-daemons-secret-not-the-d",
        username="nurse",
        token_version=0,
        alert_id=alert["id"],
        key="k",
        now=clock(),
    )
    response = await client.post("/api/push/actions/acknowledge", json={"token": forged})
    assert response.status_code == 401

    revoked = await action_token(clinic, clock, alert["id"])
    await client.post("/api/auth/logout", headers=auth[Role.NURSE])  # every token ends
    response = await client.post("/api/push/actions/acknowledge", json={"token": revoked})
    assert response.status_code == 401
    still = await client.get(f"/api/alerts/{alert['id']}", headers=auth[Role.CLINICIAN])
    assert still.json()["state"] == "active"


async def test_a_push_token_is_no_bearer_token(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic, clock: FakeClock
) -> None:
    alert = await severe_alert(client, auth, ward)
    token = await action_token(clinic, clock, alert["id"])
    response = await client.get("/api/alerts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_a_shown_receipt_needs_the_notifications_own_token(
    client: httpx.AsyncClient, auth: Auth, ward: Ward, clinic: Clinic, clock: FakeClock
) -> None:
    alert = await severe_alert(client, auth, ward)
    token = await action_token(clinic, clock, alert["id"])
    other_key = await client.post(
        "/api/push/receipts", json={"key": "999:raised:0:push:1", "state": "shown", "token": token}
    )
    assert other_key.status_code == 401
    no_token = await client.post(
        "/api/push/receipts", json={"key": f"{alert['id']}:raised:0:push:1", "state": "shown"}
    )
    assert no_token.status_code == 422
