"""How a simulated cuff pairs: Just Works, a displayed passkey, or refusing."""

from __future__ import annotations

from bumble import pairing

from simulators.cuff_core import CuffCore


def pairing_config(cuff: CuffCore) -> pairing.PairingConfig:
    """How the cuff answers a pairing request, by its `security` setting."""
    if cuff.config.security == "passkey":
        passkey = cuff.config.passkey

        class DisplayPasskey(pairing.PairingDelegate):
            async def generate_passkey(self) -> int:
                return passkey

            async def display_number(self, number: int, digits: int) -> None:
                cuff._log("display shows passkey %0*d", digits, number)

        delegate: pairing.PairingDelegate = DisplayPasskey(
            io_capability=pairing.PairingDelegate.DISPLAY_OUTPUT_ONLY
        )
    elif cuff.config.security == "refuse":

        class Refuse(pairing.PairingDelegate):
            async def accept(self) -> bool:
                cuff._log("refused a pairing request")
                return False

        delegate = Refuse(io_capability=pairing.PairingDelegate.NO_OUTPUT_NO_INPUT)
    else:
        delegate = pairing.PairingDelegate(io_capability=pairing.PairingDelegate.NO_OUTPUT_NO_INPUT)
    return pairing.PairingConfig(
        sc=True,
        mitm=cuff.config.security == "passkey",
        bonding=True,
        delegate=delegate,
        identity_address_type=pairing.PairingConfig.AddressType.RANDOM,
    )
