def test_case_contact_roundtrip(api):
    c = api.case({"contact_phone_number": "919812345678"})
    st = api.contact(c["case_id"])
    assert st["sms"]["ok"] is True
    assert st["phone_number"] == "919812345678"
    assert st["two_way_sms"]["error"]["code"] == "NO_TWO_WAY_PHONE_NUMBER"
