"""`update_case`: set a property of the sender's case, e.g. WEIGHT 3.2 → weight_kg = 3.2."""

from __future__ import annotations

from collections.abc import Mapping

from casemsg.cases import services as case_services
from casemsg.cases.models import Case
from casemsg.core.fields import Param
from casemsg.inbound.actions.base import NOT_REGISTERED, KeywordAction, KeywordContext

REST = "{rest}"  # stands for the words after the keyword


class UpdateCase(KeywordAction):
    name = "update_case"
    description = "Set property_name of the sender's case to property_value ({rest} = the words after the keyword)."
    params = (
        Param("property_name", "Case property", required=True, help="The property of the sender's case to set."),
        Param(
            "property_value",
            "Value",
            default=REST,
            help="The value to set; {rest} stands for the words after the keyword.",
        ),
    )
    texts = (NOT_REGISTERED,)

    def handle(self, ctx: KeywordContext) -> str:
        if not isinstance(ctx.contact, Case):
            ctx.send_text(NOT_REGISTERED.key)
            return "keyword_no_case"
        params = ctx.params
        value = (params.get("property_value") or REST).replace(REST, ctx.rest)
        ctx.contacts_changed = True  # e.g. a new contact_phone_number moves the registry
        change = case_services.CaseChange(properties={params["property_name"]: value})
        case_services.update_case(ctx.project, ctx.contact, change)
        return ctx.answered()

    def summary(self, params: Mapping[str, str], labels: Mapping[str, Mapping[str, str]]) -> str:
        return f"{params.get('property_name', '')} = {params.get('property_value') or REST}"


ACTION = UpdateCase()
