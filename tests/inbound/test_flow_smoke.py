from casemsg.inbound import router
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message


def test_us_consent_flow_through_sandbox(api, sandbox):
    c = api.case({"contact_phone_number": "12066171234"})
    r = api.post("messages", {"recipient": {"case_id": c["case_id"]}, "text": "Hello"})
    assert r.json()["error"]["code"] == "NO_CONSENT"
    r = api.post(f"cases/{c['case_id']}/opt-in-request")
    assert r.status_code == 202, r.content
    pipeline.deliver_due()
    out = api.get("sandbox/outbox").json()["items"]
    assert [m["text"] for m in out] == ["Do you consent to receiving SMS messaging? Reply YES or NO."]
    r = api.post("sandbox/incoming", {"phone_number": "+12066171234", "text": " yes "})
    assert r.status_code == 202
    router.process_due()
    assert api.get(f"cases/{c['case_id']}").json()["properties"]["contact_phone_number_is_verified"] == "1"
    contact = api.contact(c["case_id"])
    assert contact["sms"]["ok"] and contact["two_way"]
    r = api.post("messages", {"recipient": {"case_id": c["case_id"]}, "text": "Hello {case.name}"})
    assert r.json()["status"] == "queued"
    pipeline.deliver_due()
    api.post("sandbox/incoming", {"phone_number": "12066171234", "text": "STOP"})
    router.process_due()
    pipeline.deliver_due()
    texts = [m["text"] for m in api.get("sandbox/outbox").json()["items"]]
    assert texts[0].startswith("You are unsubscribed")
    r = api.post("messages", {"recipient": {"case_id": c["case_id"]}, "text": "More"})
    assert r.json()["error"]["code"] == "PHONE_OPTED_OUT"
    kinds = [x["kind"] for x in api.get("consents").json()["items"]]
    assert kinds == ["request", "consent", "opt_out"]
    assert Message.objects.filter(direction="in").count() == 2
