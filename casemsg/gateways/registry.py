"""The one list of gateway types: type name → `GatewayType` subclass. Every other place (config
validation, the webhooks, the pipeline, the API's list of types) reads it from here.

Adding a gateway type takes three steps (CONTRIBUTING.md, checklist 1, in full):

1. One module, casemsg/gateways/<type>.py: a `GatewayType` subclass that declares `type_name`, `title`,
   `config_schema` (and `required_one_of`, `extra_opt_out_words` when needed), and implements `send_one`
   (build the request, `self.post(...)`, classify the `HttpReply`; `classify_http` is the default reading)
   plus the webhooks it has: `parse_inbound`, `parse_status`, `verify_request`, `inbound_response`.
2. One line in `GATEWAY_TYPES` below (and its import).
3. Its fake provider for the tests: a `Provider` subclass speaking the provider's documented HTTP API in
   fakes/gateways.py, with its line in `PROVIDERS` (and a fixture in tests/servers/fixtures.py), and
   tests/gateways/test_<type>.py sending through it (CONTRIBUTING.md's checklist has the rest).
"""

from __future__ import annotations

from casemsg.gateways.africastalking import AfricasTalkingGateway
from casemsg.gateways.base import GatewayType
from casemsg.gateways.http import HttpGateway
from casemsg.gateways.models import Gateway
from casemsg.gateways.sandbox import SandboxGateway
from casemsg.gateways.smpp import SmppGateway
from casemsg.gateways.telerivet import TelerivetGateway
from casemsg.gateways.twilio import TwilioGateway
from casemsg.gateways.whatsapp_meta import MetaCloudGateway
from casemsg.gateways.whatsapp_sandbox import WhatsAppSandboxGateway
from casemsg.gateways.whatsapp_twilio import TwilioWhatsAppGateway

# One line per gateway type.
GATEWAY_TYPES: dict[str, type[GatewayType]] = {
    t.type_name: t
    for t in (
        SandboxGateway,
        HttpGateway,
        TwilioGateway,
        TelerivetGateway,
        AfricasTalkingGateway,
        SmppGateway,
        MetaCloudGateway,
        TwilioWhatsAppGateway,
        WhatsAppSandboxGateway,
    )
}


def gateway_types() -> dict[str, type[GatewayType]]:
    return GATEWAY_TYPES


def adapter_for(gateway: Gateway) -> GatewayType:
    return GATEWAY_TYPES[gateway.type](gateway)


def extra_opt_out_words(gateway: Gateway) -> frozenset[str]:
    """The opt-out words the gateway's provider acts on beyond the standard ones (none for an unknown type)."""
    t = GATEWAY_TYPES.get(gateway.type)
    return t.extra_opt_out_words if t is not None else frozenset()
