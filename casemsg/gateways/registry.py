"""Gateway type name → adapter class. Adding a gateway type is one module plus one line here."""

from __future__ import annotations

from casemsg.gateways.africastalking import AfricasTalkingGateway
from casemsg.gateways.base import GatewayType
from casemsg.gateways.http import HttpGateway
from casemsg.gateways.sandbox import SandboxGateway
from casemsg.gateways.telerivet import TelerivetGateway
from casemsg.gateways.twilio import TwilioGateway

# One line per gateway type.
GATEWAY_TYPES: dict[str, type[GatewayType]] = {
    t.type_name: t for t in (SandboxGateway, HttpGateway, TwilioGateway, TelerivetGateway, AfricasTalkingGateway)
}


def gateway_types() -> dict[str, type[GatewayType]]:
    return GATEWAY_TYPES


def adapter_for(gateway) -> GatewayType:
    return gateway_types()[gateway.type](gateway)
