"""Gateway type name → adapter class. Adding a gateway type is one module plus one line here."""

from __future__ import annotations

from functools import cache

from casemsg.gateways.base import GatewayType


@cache
def gateway_types() -> dict[str, type[GatewayType]]:
    from casemsg.gateways.africastalking import AfricasTalkingGateway
    from casemsg.gateways.http import HttpGateway
    from casemsg.gateways.sandbox import SandboxGateway
    from casemsg.gateways.telerivet import TelerivetGateway
    from casemsg.gateways.twilio import TwilioGateway

    types = (SandboxGateway, HttpGateway, TwilioGateway, TelerivetGateway, AfricasTalkingGateway)
    return {t.type_name: t for t in types}


def adapter_for(gateway) -> GatewayType:
    return gateway_types()[gateway.type](gateway)
